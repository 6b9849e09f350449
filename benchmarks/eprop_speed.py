"""Cost of a training step in the three learning modes: time (interleaved) and memory.

One training step = reset, forward over ``T`` steps (one call, chunked inside), cross-entropy
on the last output, backward, Adam step; net ``LIF(64, 128) -> LI(128, 10)``, batch 64,
random spikes (p = 0.2), one thread. Modes run **interleaved** (trace, eligibility, BPTT,
trace, ...), ``--reps`` repetitions after a warm-up; the table gives the median and the
min-max spread of each mode and of the per-repetition ratio eligibility / trace, and flags a
spread over 20 %. Memory: the peak bytes PyTorch allocated during one step
(:func:`tracetorch.metrics.peak_allocated_bytes`) at each ``T``. The load average is recorded
before and after; run it on a quiet machine (nothing else running).

    python -m benchmarks.eprop_speed [--steps 1000] [--reps 7] [--memory-steps 100,1000]

Writes ``benchmarks/results/eprop_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

import tracetorch as tt

RESULTS = Path(__file__).parent / "results" / "eprop_speed.json"
MODES = ("trace", "eligibility", "eligibility-kept", "bptt")


def make(mode: str) -> tuple[tt.nn.Sequential, torch.optim.Optimizer]:
    """The net in ``mode``; ``eligibility-kept``: eligibility with ``eligibility_reset="kept"``."""
    torch.manual_seed(0)
    kept = mode == "eligibility-kept"
    reset = "kept" if kept else "detached"
    net = tt.nn.Sequential(tt.nn.LIF(64, 128, eligibility_reset=reset), tt.nn.LI(128, 10))
    tt.learning.set_learning(net, "eligibility" if kept else mode)
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)


def step(net, opt, x: torch.Tensor, y: torch.Tensor) -> None:
    net.reset_states()
    loss = F.cross_entropy(net(x)[-1], y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def timing(steps: int, reps: int, modes: tuple[str, ...]) -> dict:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, 64, 64, generator=g) < 0.2).float()
    y = torch.randint(0, 10, (64,), generator=g)
    nets = {m: make(m) for m in modes}
    for m in modes:  # warm-up
        for _ in range(2):
            step(*nets[m], x, y)
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(reps):
        for m in modes:
            t0 = time.perf_counter()
            step(*nets[m], x, y)
            times[m].append(time.perf_counter() - t0)
    out = {m: _summary(v) for m, v in times.items()}
    for name in ("eligibility", "eligibility-kept"):
        if name in modes and "trace" in modes:
            ratios = [e / t for e, t in zip(times[name], times["trace"], strict=True)]
            out[f"ratio_{name.replace('-', '_')}_trace"] = _summary(ratios)
    return out


def _summary(values: list[float]) -> dict:
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0.0
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread": spread,
        "flag": spread > 0.2,
        "n": len(values),
    }


def memory(steps_list: list[int], modes: tuple[str, ...]) -> dict:
    out: dict[str, dict[int, int]] = {m: {} for m in modes}
    for steps in steps_list:
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(steps, 64, 64, generator=g) < 0.2).float()
        y = torch.randint(0, 10, (64,), generator=g)
        for m in modes:
            net, opt = make(m)
            step(net, opt, x, y)  # optimizer state exists before the measurement
            out[m][steps] = tt.metrics.peak_allocated_bytes(
                lambda n=net, o=opt, x=x, y=y: step(n, o, x, y)
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--memory-steps", default="100,1000")
    parser.add_argument("--no-bptt", action="store_true", help="leave BPTT out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    modes = MODES[:3] if args.no_bptt else MODES
    load_before = os.getloadavg()
    result = {
        "timing": timing(args.steps, args.reps, modes),
        "memory_peak_bytes": memory([int(s) for s in args.memory_steps.split(",")], modes),
        "steps": args.steps,
        "batch": 64,
        "net": "LIF(64,128)->LI(128,10)",
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "torch": torch.__version__,
        "threads": 1,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    print(
        f"T = {args.steps}, batch 64, 64-128-10, {args.reps} interleaved repetitions, "
        f"load {load_before[0]:.2f} -> {result['load_after'][0]:.2f}"
    )
    print("| mode | median s/step | min | max | spread |\n|---|---|---|---|---|")
    for m, r in result["timing"].items():
        flag = " (!)" if r["flag"] else ""
        print(
            f"| {m} | {r['median']:.4f} | {r['min']:.4f} | {r['max']:.4f} | "
            f"{100 * r['spread']:.0f} %{flag} |"
        )
    print(
        "\n| mode | "
        + " | ".join(f"peak MiB at T={s}" for s in args.memory_steps.split(","))
        + " |"
    )
    for m, by_t in result["memory_peak_bytes"].items():
        print(f"| {m} | " + " | ".join(f"{b / 2**20:.2f}" for b in by_t.values()) + " |")


def _commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
