"""Case 2, accuracy: tracetorch trace learning, tracetorch BPTT and snnTorch BPTT, same network.

Tasks come from :mod:`tracetorch.data` (``digits`` at T=25, ``yinyang``, ``evidence`` at
several delays, and ``evidence-hard-1000``: click contrast 0.05-0.25 instead of 0.2-0.8, delay
1,000). ``task_config`` accepts any ``evidence-<delay>`` and ``evidence-hard-<delay>``.
Every method trains the same architecture (``n_in-128-128-n_out``: LIF, LIF, LI readout;
beta 0.9, threshold 1) with Adam, cross-entropy on the readout at the last step,
the same data, epochs and learning rate; 3 seeds (seed = initialisation, data split and spike
noise); test accuracy mean +- std.

The temporal tasks (``order``: which of two cues came first, equal spike counts in both
classes; ``seqdigits``: a digit fed row by row) carry their label in the timing of events,
where trace learning (a rate rule) is expected to lose. They also run tracetorch's
eligibility mode and a non-spiking GRU of the same width and depth (the ceiling), and come
with recurrent hidden layers (``order-rlif``, ``seqdigits-rlif``: ``tt.nn.RLIF`` and
snnTorch's ``RLeaky``). Each run is a fresh subprocess
(``python -m benchmarks.accuracy job '<json>'``) with one thread; ``jobs`` of them run at once.

Trace-learning runs also measure gradient fidelity (:mod:`benchmarks.fidelity`) at
initialisation and after training, on the first test batches.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .common import ROOT, THREAD_ENV

METHODS = ["tracetorch-trace", "tracetorch-bptt", "snntorch-bptt"]
#: the methods of the temporal tasks: the three above, eligibility mode (e-prop's detached
#: reset, and the reset kept in the traces) and the GRU ceiling
ELIGIBILITY_METHODS = ["tracetorch-eligibility", "tracetorch-eligibility-kept"]
TEMPORAL_METHODS = [*METHODS, *ELIGIBILITY_METHODS, "gru"]
#: the temporal tasks with recurrent hidden layers (the GRU ceiling is the same as above)
RLIF_METHODS = [*METHODS, *ELIGIBILITY_METHODS]
#: every method any task runs, in the order of the report's columns
ALL_METHODS = TEMPORAL_METHODS

#: per task: constructor arguments of tracetorch.data, training settings, tracetorch options
FULL_TASKS: dict[str, dict[str, Any]] = {
    # the recipe of examples/digits.py and `tracetorch demo` (docs/defaults.md), at batch 64
    "digits": {"task": "digits", "task_kwargs": {"steps": 25}, "epochs": 30, "lr": 5e-3},
    "yinyang": {"task": "yinyang", "task_kwargs": {}, "epochs": 20, "lr": 2e-3},
    **{f"evidence-{d}": None for d in (0, 100, 300, 1000)},
    # harder: all methods reach >= 99.4 % at the default contrast (0.2-0.8); here the two
    # click rates differ by 5-25 % and the evidence must be held for 1,000 steps
    "evidence-hard-1000": None,
    # timing tasks (the epochs, learning rate and batch of benchmarks/temporal.py; the network
    # is this benchmark's, with a fixed readout beta): trace learning is expected to lose
    "order": {
        "task": "order",
        "task_kwargs": {},
        "epochs": 30,
        "lr": 3e-3,
        "methods": TEMPORAL_METHODS,
    },
    "order-rlif": {
        "task": "order",
        "task_kwargs": {},
        "epochs": 30,
        "lr": 3e-3,
        "neuron": "rlif",
        "methods": RLIF_METHODS,
    },
    "seqdigits": {
        "task": "seqdigits",
        "task_kwargs": {},
        "epochs": 40,
        "lr": 3e-3,
        "batch": 32,
        "methods": TEMPORAL_METHODS,
    },
    "seqdigits-rlif": {
        "task": "seqdigits",
        "task_kwargs": {},
        "epochs": 40,
        "lr": 3e-3,
        "batch": 32,
        "neuron": "rlif",
        "methods": RLIF_METHODS,
    },
}
#: per-trial click contrast (c_min, c_max) of the ``evidence-hard-*`` tasks (default 0.2-0.8)
HARD_CONTRAST = (0.05, 0.25)


def task_config(name: str) -> dict[str, Any]:
    """Settings of task ``name``: a key of :data:`FULL_TASKS`, ``evidence-<delay>`` or
    ``evidence-hard-<delay>`` (any delay, e.g. ``evidence-1000``, ``evidence-hard-3000``)."""
    m = re.fullmatch(r"evidence-(hard-)?(\d+)", name)
    if m:
        kwargs: dict[str, Any] = {"delay": int(m.group(2))}
        if m.group(1):
            kwargs["contrast"] = list(HARD_CONTRAST)
        return {
            "task": "evidence",
            "task_kwargs": kwargs,
            "epochs": 10,
            "lr": 2e-3,
            # a slow readout holds the evidence through the delay (time constant = trial)
            "readout_beta": "trial",
            # traces that average over the whole trial (the evidence is at its start)
            "tt_kwargs": {"horizon": "trial"},
        }
    if FULL_TASKS.get(name) is not None:
        return FULL_TASKS[name]
    raise ValueError(
        f"unknown task {name!r}; expected one of {sorted(FULL_TASKS)}, evidence-<delay> or "
        "evidence-hard-<delay>"
    )


FULL_TASKS.update({k: task_config(k) for k, v in FULL_TASKS.items() if v is None})
#: trace-learning options of the design, tried against the default (the ``ablation`` case)
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no-bias-correction": {"bias_correction": False},
    "log-rate": {"lif_kwargs": {"rate_fn": "log"}},
    # the readout's input-trace decay tied to its membrane decay (exact LI reconstruction)
    "tied-readout": {"li_kwargs": {"trace_decay": "readout_beta", "horizon": None}},
    "short-horizon": {"horizon": 20.0},
}
ABLATION_TASKS = ("digits", "evidence-100", "evidence-300")

FIDELITY_TASKS = {
    "digits",
    "evidence-0",
    "evidence-100",
    "evidence-300",
    "evidence-1000",
    "evidence-hard-1000",
}


def quick_tasks() -> dict[str, dict[str, Any]]:
    """Small versions for ``--quick``: digits (2 epochs), evidence at delay 100 (512 trials)."""
    digits = {**FULL_TASKS["digits"], "epochs": 2}
    ev = FULL_TASKS["evidence-100"]
    evidence = {
        **ev,
        "task_kwargs": {**ev["task_kwargs"], "train_size": 512, "test_size": 256},
        "epochs": 4,
    }
    return {"digits": digits, "evidence-100": evidence}


# ----------------------------------------------------------------------------- one run
def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, one level deep for the ``*_kwargs`` dicts."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
    return out


def _substitute(value: Any, names: dict[str, Any]) -> Any:
    """Replace the placeholder strings (``"trial"``, ``"readout_beta"``) by their values."""
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    return names.get(value, value) if isinstance(value, str) else value


def _make_task(name: str, seed: int, kwargs: dict[str, Any]):
    import tracetorch as tt

    if hasattr(tt.data, "get_task"):
        return tt.data.get_task(name, seed=seed, **kwargs)
    if name == "digits":
        return _DigitsFallback(seed=seed, **kwargs)
    raise RuntimeError(f"tracetorch.data has no task {name!r} (no tt.data.get_task yet)")


class _DigitsFallback:
    """Digits from ``tt.data.load_digits`` + ``tt.encode.rate``, until ``tt.data`` has tasks."""

    n_inputs, n_classes = 64, 10

    def __init__(self, steps: int = 25, seed: int = 0) -> None:
        import tracetorch as tt

        self.steps, self.seed = steps, seed
        xtr, ytr, xte, yte = tt.data.load_digits(seed=seed)
        self._data = {"train": (xtr, ytr), "test": (xte, yte)}

    def batches(self, split: str, batch_size: int = 64, *, epoch: int = 0, **_: Any):
        import torch

        import tracetorch as tt

        x, y = self._data[split]
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch + (split == "test"))
        order = torch.randperm(len(y), generator=gen) if split == "train" else torch.arange(len(y))
        for start in range(0, len(y), batch_size):
            ids = order[start : start + batch_size]
            yield tt.encode.rate(x[ids], self.steps, generator=gen), y[ids]


def _build(method: str, spec, tt_kwargs: dict[str, Any]):
    from .peers import build

    if method == "tracetorch-trace":
        return build("tracetorch", spec, learning="trace", **tt_kwargs)
    if method == "tracetorch-bptt":
        return build("tracetorch", spec, learning="bptt", **tt_kwargs)
    if method == "tracetorch-eligibility":
        return build("tracetorch", spec, learning="eligibility", **tt_kwargs)
    if method == "tracetorch-eligibility-kept":
        kept = {**tt_kwargs.get("lif_kwargs", {}), "eligibility_reset": "kept"}
        return build(
            "tracetorch", spec, learning="eligibility", **{**tt_kwargs, "lif_kwargs": kept}
        )
    if method == "snntorch-bptt":
        return build("snntorch", spec)
    if method == "gru":
        return build("gru", spec)
    raise ValueError(f"unknown method {method!r}; expected one of {ALL_METHODS}")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (task, method, seed); return accuracy, timings and (trace) fidelity."""
    import torch
    import torch.nn.functional as F

    from . import fidelity
    from .common import NetSpec, set_threads

    set_threads(1)
    seed = int(job["seed"])
    torch.manual_seed(seed)
    task = _make_task(job["task"], seed, job.get("task_kwargs", {}))
    steps = int(task.steps)
    readout_beta = job.get("readout_beta", 0.9)
    if readout_beta == "trial":
        readout_beta = 1.0 - 1.0 / steps
    tt_kwargs = _merge(job.get("tt_kwargs", {}), VARIANTS[job.get("variant", "default")])
    tt_kwargs = _substitute(tt_kwargs, {"trial": float(steps), "readout_beta": readout_beta})
    spec = NetSpec(
        n_in=task.n_inputs,
        hidden=(128, 128),
        n_out=task.n_classes,
        readout_beta=readout_beta,
        neuron=job.get("neuron", "lif"),
    )
    runner = _build(job["method"], spec, tt_kwargs)
    opt = torch.optim.Adam(runner.parameters(), lr=job["lr"])
    # every method: Adam with the learning rate annealed to 0 over the epochs (cosine)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(job["epochs"]))
    chunk, batch = int(job.get("chunk", 1000)), int(job.get("batch", 64))
    result: dict[str, Any] = {**job, "steps": steps, "readout_beta": readout_beta}

    def forward(x) -> torch.Tensor:
        runner.reset()
        for c in fidelity.iter_chunks(x, chunk):
            out = runner.run(c)
        return out

    def evaluate() -> float:
        correct = total = 0
        with torch.no_grad():
            for x, y in task.batches("test", batch):
                correct += int((forward(x).argmax(-1) == y).sum())
                total += len(y)
        return 100.0 * correct / total

    fid_batches = []
    if job.get("fidelity") and job["method"] == "tracetorch-trace":
        it = task.batches("test", batch)
        fid_batches = [next(it) for _ in range(int(job.get("fidelity_batches", 2)))]
        result["fidelity_init"] = fidelity.measure(runner.module, fid_batches, chunk)

    t0 = time.perf_counter()
    budget = float(job.get("budget_s", 1e9))
    epochs_done, losses = 0, []
    for epoch in range(int(job["epochs"])):
        total, n = 0.0, 0
        for x, y in task.batches("train", batch, epoch=epoch):
            loss = F.cross_entropy(forward(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
            if time.perf_counter() - t0 > budget:
                break
        sched.step()
        losses.append(total / max(n, 1))
        epochs_done = epoch + 1
        if time.perf_counter() - t0 > budget:
            result["stopped"] = f"time budget of {budget:.0f} s reached after {epochs_done} epochs"
            break
    result["train_s"] = time.perf_counter() - t0
    result["epochs_done"] = epochs_done
    result["train_loss"] = losses
    result["test_acc"] = evaluate()
    if fid_batches:
        result["fidelity_final"] = fidelity.measure(runner.module, fid_batches, chunk)
    return result


# ----------------------------------------------------------------------------- driver
def _run_subprocess(job: dict[str, Any], python: str, timeout_s: float) -> dict[str, Any]:
    cmd = [python, "-m", "benchmarks.accuracy", "job", json.dumps(job)]
    env = {**os.environ, **THREAD_ENV}
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return {**job, "error": f"killed after {timeout_s:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {**job, "error": f"job exited {proc.returncode}: {' | '.join(tail)}"}


def run_accuracy(
    tasks: dict[str, dict[str, Any]],
    methods: list[str] | None = None,
    seeds: list[int] = (0, 1, 2),
    *,
    jobs: int = 2,
    budget_s: float = 1800.0,
    fidelity_tasks: set[str] = FIDELITY_TASKS,
    variants: list[str] = ("default",),
    skip: set[str] = frozenset(),
    python: str = sys.executable,
    log=print,
    on_row=None,
) -> list[dict[str, Any]]:
    """Run every (task, method, seed) as a subprocess, ``jobs`` at a time; return the rows.

    ``on_row(row)`` is called as each run ends (one call at a time), e.g. to save the rows so
    far: a run of hours that is stopped keeps what it measured.

    ``methods=None`` runs each task's own ``methods`` (the temporal tasks add eligibility
    mode and the GRU ceiling) or :data:`METHODS`; a list runs those of them the task has.
    ``skip``: methods left out (a peer library that is not installed). ``variants`` (names
    in :data:`VARIANTS`) apply to tracetorch trace learning only; a variant other than
    ``"default"`` runs without the fidelity measurement.
    """
    todo = []
    for key, cfg in tasks.items():
        cfg = dict(cfg)
        own = cfg.pop("methods", METHODS)
        task_methods = [m for m in own if (methods is None or m in methods) and m not in skip]
        for method in task_methods:
            for variant in variants if method == "tracetorch-trace" else ["default"]:
                for seed in seeds:
                    todo.append(
                        {
                            **cfg,
                            "key": key,
                            "method": method,
                            "variant": variant,
                            "seed": seed,
                            "budget_s": budget_s,
                            "fidelity": key in fidelity_tasks and variant == "default",
                        }
                    )

    if not todo:
        raise ValueError(
            f"no run: none of the methods {methods} (minus {sorted(skip)}) is one of these "
            f"tasks' methods ({ {k: cfg.get('methods', METHODS) for k, cfg in tasks.items()} })"
        )

    def one(job: dict[str, Any]) -> dict[str, Any]:
        row = _run_subprocess(job, python, timeout_s=budget_s * 2 + 600)
        status = row.get("error") or (
            f"acc {row['test_acc']:5.1f}%  {row['train_s']:6.0f} s  {row['epochs_done']} epochs"
        )
        name = job["method"] + ("" if job["variant"] == "default" else f"[{job['variant']}]")
        log(f"  accuracy: {job['key']:14s} {name:17s} seed {job['seed']}  {status}")
        if on_row is not None:
            with lock:
                on_row(row)
        return row

    lock = threading.Lock()

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, todo))


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{task: {method: {"mean", "std", "n"}}}`` of the test accuracies, tasks in the order
    of :data:`FULL_TASKS` (others after them, as they come)."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if "test_acc" in r:
            method = r["method"]
            if r.get("variant", "default") != "default":
                method += f"[{r['variant']}]"
            acc.setdefault(r["key"], {}).setdefault(method, []).append(r["test_acc"])
    rank = {k: i for i, k in enumerate(FULL_TASKS)}
    ordered = sorted(acc, key=lambda k: rank.get(k, len(rank)))  # stable: others as they come
    return {
        key: {
            m: {
                "mean": statistics.fmean(v),
                "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                "n": len(v),
            }
            for m, v in acc[key].items()
        }
        for key in ordered
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy")
    sub = parser.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("job", help="run one job (JSON) in this process")
    j.add_argument("spec")
    args = parser.parse_args(argv)
    if args.cmd == "job":
        print("RESULT " + json.dumps(run_job(json.loads(args.spec))), flush=True)


if __name__ == "__main__":
    main()
