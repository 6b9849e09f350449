"""The benchmark suite's own machinery: the quiet-machine guard, interleaved ratios, tasks,
the temporal table and the GPU check's behaviour without a GPU (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks import guard, ratio
from benchmarks.accuracy import FULL_TASKS, HARD_CONTRAST, task_config
from benchmarks.common import ROOT
from benchmarks.report import _temporal_table


# ----------------------------------------------------------------------------- guard
def test_a_second_suite_lock_is_refused(tmp_path):
    path = tmp_path / "lock"
    with guard.SuiteLock("first", path):
        with pytest.raises(guard.BusyError, match="first"), guard.SuiteLock("second", path):
            pass
    with guard.SuiteLock("third", path):  # released on exit
        pass


def test_too_busy_reads_load_and_busy_cores():
    cores = os.cpu_count() or 1
    quiet = {"loadavg": [0.1 * cores, 0, 0], "busy_cores": 0.0}
    assert guard.too_busy(quiet) is None
    assert "load average" in guard.too_busy({"loadavg": [cores, 0, 0], "busy_cores": 0.0})
    busy = {"loadavg": [0.0, 0, 0], "busy_cores": 0.9 * cores}
    assert "busy" in guard.too_busy(busy)
    assert guard.too_busy({"loadavg": [cores, 0, 0]}, use_loadavg=False) is None


def test_wait_until_quiet_refuses_or_warns(monkeypatch, capsys):
    cores = os.cpu_count() or 1
    monkeypatch.setattr(guard, "snapshot", lambda w=0.3: {"loadavg": [cores, 0, 0]})
    with pytest.raises(guard.BusyError, match="--allow-load"):
        guard.wait_until_quiet(False, wait_s=0)
    snap = guard.wait_until_quiet(True, wait_s=0)
    assert snap["forced"] and not snap["quiet"]
    assert "not quiet" in capsys.readouterr().err
    monkeypatch.setattr(guard, "snapshot", lambda w=0.3: {"loadavg": [0.0, 0, 0]})
    assert guard.wait_until_quiet(False, wait_s=0)["quiet"]


# ----------------------------------------------------------------------------- ratios
def test_summarize_flags_a_wide_spread():
    tight = ratio.summarize([6.0, 6.2, 6.1, 6.3, 6.1])
    assert tight["median"] == 6.1 and not tight["flagged"]
    assert tight["q1"] == 6.1 and tight["q3"] == 6.2
    wide = ratio.summarize([5.0, 6.1, 7.0])
    assert wide["flagged"] and wide["spread"] == pytest.approx(2.0 / 6.1)
    assert ratio.summarize([6.0, 6.0])["flagged"]  # too few rounds to tell


def test_interleaved_measurement_takes_turns():
    doc = ratio.measure(["tracetorch", "tracetorch-bptt"], steps=30, rounds=3, log=lambda _: None)
    assert doc["order"] == [
        ["tracetorch", "tracetorch-bptt"],
        ["tracetorch-bptt", "tracetorch"],
        ["tracetorch", "tracetorch-bptt"],
    ]
    r = doc["ratios"]["tracetorch-bptt"]
    assert r["n"] == 3 and r["min"] <= r["median"] <= r["max"]
    assert len(doc["times"]["tracetorch"]["values"]) == 3 and len(doc["loads"]) == 3


# ----------------------------------------------------------------------------- tasks
def test_evidence_tasks_by_name():
    assert task_config("evidence-1000")["task_kwargs"] == {"delay": 1000}
    hard = task_config("evidence-hard-2500")["task_kwargs"]
    assert hard == {"delay": 2500, "contrast": list(HARD_CONTRAST)}
    assert "evidence-hard-1000" in FULL_TASKS and FULL_TASKS["digits"]["task"] == "digits"
    with pytest.raises(ValueError, match="evidence-hard-<delay>"):
        task_config("evidence-long")


def test_hard_evidence_is_a_valid_task():
    import tracetorch as tt

    cfg = task_config("evidence-hard-10")
    task = tt.data.get_task(cfg["task"], seed=0, **cfg["task_kwargs"])
    assert task.contrast == HARD_CONTRAST and task.steps == 100 + 10 + 20


def test_temporal_tasks_run_their_own_methods(monkeypatch):
    from benchmarks import accuracy

    seen = []

    def fake(job, python, timeout_s):
        seen.append(job)
        return {**job, "error": "not run"}

    monkeypatch.setattr(accuracy, "_run_subprocess", fake)
    tasks = {k: FULL_TASKS[k] for k in ("digits", "order", "order-rlif")}
    accuracy.run_accuracy(tasks, None, [0], jobs=1, skip={"snntorch-bptt"}, log=lambda _: None)
    got = {(j["key"], j["method"]) for j in seen}
    assert got == {
        ("digits", "tracetorch-trace"),
        ("digits", "tracetorch-bptt"),
        ("order", "tracetorch-trace"),
        ("order", "tracetorch-bptt"),
        ("order", "tracetorch-eligibility"),
        ("order", "tracetorch-eligibility-kept"),
        ("order", "gru"),
        ("order-rlif", "tracetorch-trace"),
        ("order-rlif", "tracetorch-bptt"),
        ("order-rlif", "tracetorch-eligibility"),
        ("order-rlif", "tracetorch-eligibility-kept"),
    }
    assert all("methods" not in j for j in seen)
    assert {j["neuron"] for j in seen if j["key"] == "order-rlif"} == {"rlif"}


def test_methods_that_no_task_runs_are_refused():
    from benchmarks import accuracy

    with pytest.raises(ValueError, match="no run"):
        accuracy.run_accuracy({"digits": FULL_TASKS["digits"]}, ["gru"], [0], log=lambda _: None)


def test_stored_rows_merge_per_run_and_a_failure_keeps_the_old_row(tmp_path):
    from benchmarks.run import _merge_rows

    path = tmp_path / "accuracy.json"

    def row(key, seed, acc=None):
        r = {"key": key, "method": "tracetorch-trace", "variant": "default", "seed": seed}
        return {**r, "test_acc": acc} if acc is not None else {**r, "error": "killed"}

    _merge_rows(path, [row("a", 0, 90.0), row("a", 1, 91.0), row("b", 0, 80.0)], {})
    _merge_rows(path, [row("a", 0, 95.0), row("a", 1)], {})  # seed 1 failed this time
    got = {(r["key"], r["seed"]): r.get("test_acc") for r in json.loads(path.read_text())["rows"]}
    assert got == {("a", 0): 95.0, ("a", 1): 91.0, ("b", 0): 80.0}
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left behind


def test_snntorch_rleaky_runs_the_same_network_as_rlif():
    """From the same weights and input, snnTorch's RLeaky (diagonal masked, no recurrent
    bias) and tt.nn.RLIF fire the same spikes."""
    pytest.importorskip("snntorch")
    from benchmarks.common import NetSpec
    from benchmarks.peers import build

    spec = NetSpec(n_in=6, hidden=(12, 12), n_out=3, neuron="rlif")
    torch.manual_seed(0)
    tt_net, snn_net = build("tracetorch", spec, learning="bptt"), build("snntorch", spec)
    with torch.no_grad():
        for (w, b), (w2, b2) in zip(tt_net.linears(), snn_net.linears(), strict=True):
            w2.copy_(w)
            b2.copy_(b)
        for layer, lif in zip(tt_net.module, snn_net.lifs, strict=False):
            lif.recurrent.parametrizations.weight.original.copy_(layer.recurrent)
    # (input where no membrane stays above threshold after its reset: there snnTorch decides
    # the next spike on the membrane less the pending reset, tracetorch does not)
    x = (torch.rand(60, 4, 6) < 0.3).float()
    tt_net.reset()
    snn_net.reset()
    with torch.no_grad():
        ours, theirs = tt_net.spikes(x), snn_net.spikes(x)
    for a, b in zip(ours[:2], theirs[:2], strict=True):
        assert a.sum() > 20 and torch.equal(a, b)


@pytest.mark.parametrize("neuron", ["lif", "rlif"])
def test_peer_networks_of_the_temporal_tasks_train(neuron):
    """One step of every method on an order-task batch: finite loss, parameters move."""
    from benchmarks.accuracy import _build
    from benchmarks.common import NetSpec

    spec = NetSpec(n_in=8, hidden=(16, 16), n_out=2, neuron=neuron)
    x = (torch.rand(30, 4, 8) < 0.3).float()
    y = torch.tensor([0, 1, 0, 1])
    methods = [
        "tracetorch-trace",
        "tracetorch-eligibility",
        "tracetorch-eligibility-kept",
        "tracetorch-bptt",
        "gru",
    ]
    try:
        import snntorch  # noqa: F401

        methods.append("snntorch-bptt")
    except ImportError:
        pass
    for method in methods:
        torch.manual_seed(0)
        runner = _build(method, spec, {})
        before = [p.detach().clone() for p in runner.parameters()]
        runner.reset()
        runner.run(x[:20])
        loss = torch.nn.functional.cross_entropy(runner.run(x[20:]), y)
        loss.backward()
        torch.optim.SGD(runner.parameters(), lr=0.1).step()
        assert torch.isfinite(loss), method
        moved = [not torch.equal(a, b) for a, b in zip(before, runner.parameters(), strict=True)]
        assert any(moved), method
    with pytest.raises(ValueError, match="neuron"):
        NetSpec(neuron="alif")


# ----------------------------------------------------------------------------- temporal
def test_temporal_table_means_and_gru_last():
    rows = [
        {"task": "order", "net": "gru", "mode": "bptt", "seed": 0, "test_accuracy": 0.9},
        {"task": "order", "net": "lif", "mode": "bptt", "seed": 0, "test_accuracy": 0.8},
        {"task": "order", "net": "lif", "mode": "trace", "seed": 0, "test_accuracy": 0.5},
        {"task": "order", "net": "lif", "mode": "trace", "seed": 1, "test_accuracy": 0.7},
    ]
    lines = _temporal_table(rows).splitlines()[2:]
    assert lines[0].startswith("| order | lif | trace | 60.0 +- 14.1 | 2 |")
    assert lines[1].startswith("| order | lif | bptt | 80.0 | 1 |")
    assert lines[2].startswith("| order | GRU (non-spiking ceiling) | bptt | 90.0 |")


# ----------------------------------------------------------------------------- GPU check
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CPU-only machine")
def test_gpu_check_script_skips_cleanly_without_cuda():
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "gpu_check: SKIP: no CUDA device (torch.cuda.is_available() is False); nothing checked"
    )


def test_gpu_check_module_runs_on_cpu(capsys, monkeypatch):
    from benchmarks import gpu_check
    from tracetorch.functional import _compiled

    monkeypatch.setattr(_compiled, "BLOCK_STEPS", 4)  # chunks of 10: two fused blocks each

    code = gpu_check.main(
        [
            "--device",
            "cpu",
            "--batch",
            "2",
            "--hidden",
            "8",
            "--steps",
            "20,40",
            "--chunk",
            "10",
            "--libs",
            "tracetorch",
            "--total",
            "60",
            "--backends",
            "compile,triton",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "gpu_check: OK" in out
    assert out.count("gradients") == 3 and "OK (worst" in out
    assert "T=     40" in out
    compile_line = next(li for li in out.splitlines() if li.startswith("backend compile agree"))
    assert "fused calls 0" not in compile_line and compile_line.endswith("OK")
    assert "backend triton: not available" in out or "backend triton agreement" in out
