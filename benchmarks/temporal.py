"""Temporal tasks: which networks can use time, under trace learning and BPTT.

Trains each (task, network, learning mode, seed) with the same budget (epochs, Adam,
cosine-annealed learning rate, batch size) and records the final test accuracy; a
non-spiking GRU of the same width is the ceiling. Results go to
``benchmarks/results/temporal.json`` (appended per run, with date and commit) and a
markdown table is printed (``--report``). Runs are slow on 2 cores: select with ``--runs``.

    python -m benchmarks.temporal --runs seqdigits:rlif:bptt:0 order:lif:bptt:0
    python -m benchmarks.temporal --report

A run is ``TASK:NET:MODE:SEED``; NET is one of ``NETS`` (``lif``, ``rlif``, ``alif``,
``syn``, ``lif2``, ``rlif2``, ``lif-rlif``, ``rlif-detach``, ``conv``, ``gru``); MODE
``trace``, ``eligibility`` or ``bptt``
(``gru``: ``bptt`` only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

import tracetorch as tt

RESULTS = Path(__file__).parent / "results" / "temporal.json"
HIDDEN = 128

TASKS = {
    "digits": dict(make=lambda: tt.data.Digits(steps=25), epochs=30, lr=5e-3, batch=32),
    "seqdigits": dict(make=lambda: tt.data.SequentialDigits(), epochs=40, lr=3e-3, batch=32),
    "order": dict(make=lambda: tt.data.TemporalOrder(), epochs=30, lr=3e-3, batch=64),
    "evidence-300": dict(
        make=lambda: tt.data.Evidence(delay=300), epochs=4, lr=3e-3, batch=64, chunk=250
    ),
    "evidence-20000": dict(
        make=lambda: tt.data.Evidence(delay=20000, train_size=1024, test_size=256),
        epochs=2,
        lr=3e-3,
        batch=64,
        chunk=1000,
    ),
    "digits-image-30ep": dict(
        make=lambda: tt.data.Digits(steps=25, layout="image"), epochs=30, lr=3e-3, batch=32
    ),
    "digits-image": dict(
        make=lambda: tt.data.Digits(steps=25, layout="image"), epochs=20, lr=3e-3, batch=32
    ),
}


class GRUNet(torch.nn.Module):
    """Non-spiking ceiling: ``GRU(F, H) -> Linear(H, C)`` on the same inputs."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(n_in, HIDDEN)
        self.out = torch.nn.Linear(HIDDEN, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(x)[0])


def build(net: str, task) -> torch.nn.Module:
    """The network ``net`` for ``task``; a ``+fixro`` suffix freezes the readout's beta."""
    n_in, n_out = int(torch.tensor(task.input_shape).prod()), task.n_classes
    fixed_readout = net.endswith("+fixro")
    net = net.removesuffix("+fixro")
    readout = tt.nn.LI(HIDDEN, n_out, learn_beta=not fixed_readout)
    if net == "gru":
        return GRUNet(n_in, n_out)
    if task.name == "evidence":  # the task's memory settings (slow readout, long traces)
        return tt.models.build_model(task, layers=f"{net}:64")
    if net == "conv":
        return tt.nn.Sequential(
            tt.nn.ConvLIF(1, 16, 3, padding=1),
            tt.nn.AvgPool2d(2),
            tt.nn.Flatten(),
            tt.nn.LIF(16 * 16, HIDDEN),
            readout,
        )
    if net == "conv2":
        return tt.nn.Sequential(
            tt.nn.ConvLIF(1, 16, 3, padding=1),
            tt.nn.ConvLIF(16, 32, 3, padding=1),
            tt.nn.AvgPool2d(2),
            tt.nn.Flatten(),
            tt.nn.LIF(32 * 16, HIDDEN),
            readout,
        )
    layers = {
        "lif": lambda: [tt.nn.LIF(n_in, HIDDEN)],
        "lif2": lambda: [tt.nn.LIF(n_in, HIDDEN), tt.nn.LIF(HIDDEN, HIDDEN)],
        "rlif": lambda: [tt.nn.RLIF(n_in, HIDDEN)],
        "rlif2": lambda: [tt.nn.RLIF(n_in, HIDDEN), tt.nn.RLIF(HIDDEN, HIDDEN)],
        "lif-rlif": lambda: [tt.nn.LIF(n_in, HIDDEN), tt.nn.RLIF(HIDDEN, HIDDEN)],
        "rlif-detach": lambda: [tt.nn.RLIF(n_in, HIDDEN)],  # reset detached by run()
        "alif": lambda: [tt.nn.ALIF(n_in, HIDDEN)],
        "syn": lambda: [tt.nn.Synaptic(n_in, HIDDEN)],
    }[net]()
    return tt.nn.Sequential(*layers, readout)


def run(task_name: str, net_name: str, mode: str, seed: int) -> dict:
    cfg = TASKS[task_name]
    tt.training.seed_everything(seed)
    task = cfg["make"]()
    model = build(net_name, task)
    if net_name == "rlif-detach":
        _detach_resets(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg["epochs"])
    loss_fn = lambda out, y: F.cross_entropy(out, y)  # noqa: E731
    trainer = tt.training.Trainer(
        model,
        opt,
        learning=None if net_name == "gru" else mode,
        batch_size=cfg["batch"],
        scheduler=sched,
        loss_fn=loss_fn,
        progress=False,
        chunk_size=cfg.get("chunk"),
    )
    if net_name == "gru":
        trainer.learning = "bptt"
    start = time.perf_counter()
    hist = trainer.fit(task, cfg["epochs"])
    return {
        "task": task_name,
        "net": net_name,
        "mode": mode,
        "seed": seed,
        "test_accuracy": hist["test_accuracy"][-1],
        "best_test_accuracy": max(hist["test_accuracy"]),
        "epochs": cfg["epochs"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def _detach_resets(model: torch.nn.Module) -> None:
    """Make every RLIF's reset carry no gradient (the prototype's 'detached reset')."""
    for layer in model.modules():
        if isinstance(layer, tt.nn.RLIF):
            layer.step = _rlif_step_detached_reset  # an instance attribute: not bound


def _rlif_step_detached_reset(c, state, p):
    """:func:`tracetorch.functional.rlif_step` with ``- theta s`` outside the gradient."""
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    u = torch.addcmul(c, state.membrane, beta) + state.spikes @ p.recurrent.t()
    s = p.spike_fn(u - p.theta)
    return s, tt.functional.RLIFState(u - p.theta * s.detach(), s)


def _commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cells(rows: list[dict]) -> dict[tuple, str]:
    """``{(task, net, mode): "mean ± sd (n)"}`` of the test accuracy in percent."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["task"], r["net"], r["mode"]), []).append(100 * r["test_accuracy"])
    out = {}
    for key, acc in groups.items():
        t = torch.tensor(acc, dtype=torch.float64)
        sd = f" ± {float(t.std()):.1f}" if len(acc) > 1 else ""
        out[key] = f"{float(t.mean()):.1f}{sd} ({len(acc)})"
    return out


def report() -> str:
    """One table per task: a row per network, a column per learning mode (seeds in brackets)."""
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    cells = _cells(rows)
    lines = []
    for task in sorted({k[0] for k in cells}):
        lines += [f"**{task}**", "", "| net | trace | eligibility | BPTT |", "|---|---|---|---|"]
        nets = sorted({k[1] for k in cells if k[0] == task}, key=lambda n: (n == "gru", n))
        for net in nets:
            row = [cells.get((task, net, m), "") for m in ("trace", "eligibility", "bptt")]
            lines.append(f"| {net} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=[], metavar="TASK:NET:MODE:SEED")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for spec in args.runs:
        task, net, mode, seed = spec.split(":")
        result = run(task, net, mode, int(seed))
        result.update(
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            commit=_commit(),
            torch=torch.__version__,
        )
        rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        rows.append(result)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=1))
        print(json.dumps(result), flush=True)
    if args.report or not args.runs:
        print(report())


if __name__ == "__main__":
    main()
