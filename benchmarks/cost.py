"""Case 1, cost vs sequence length: memory and time of one training step, per library and T.

One training step = reset, ``T`` forward steps on a streamed Bernoulli input (chunks of
``chunk`` steps made on the fly, for every library alike), cross-entropy on the readout at the
last step, backward, Adam step. Each (library, T) runs in two fresh subprocesses, one after the
other (``python -m benchmarks.cost worker --what memory|time ...``), each with one thread:

- memory, with glibc's mmap threshold fixed at 64 KiB (``MEMORY_ENV``; blocks below it live in
  the heap, so its fragmentation is included):

  - ``train_peak``: peak RSS during a training step above the RSS just before it (after a
    warm-up step, ``gc`` and ``malloc_trim``; the kernel's high-water mark is reset first);
  - ``saved``: the peak of bytes autograd holds saved for backward (distinct live storages,
    through ``saved_tensors_hooks``; a second step), independent of the allocator;
  - ``fwd_peak``: the same as ``train_peak`` for a forward pass under ``no_grad``;

- time, under glibc's default allocator, as a user runs (``THREAD_ENV``):

  - ``train_s``: median wall time of training steps (``train_cpu_times``: their CPU time; a
    wall time well above it means the process waited for a core);
  - ``fwd_s``: the same for a forward pass of ``T`` steps under ``no_grad``;
  - ``input_s``: the time to generate the input stream alone (it is inside every time above).

Load average and the cores busy in other processes are recorded before and after the timed
process (``load_before``, ``load_after``); ``contended`` marks a row timed on a busy machine.
The cost tables give absolute times; the speed *ratios* between libraries come from the
interleaved measurement of :mod:`benchmarks.ratio`.

The driver runs T in increasing order per library, extrapolates memory and time linearly in T
from the runs so far, and skips (with the reason recorded) a run that would pass the memory cap
or the time budget. A watchdog kills a worker whose RSS passes the cap anyway.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import MEMORY_ENV, ROOT, THREAD_ENV, NetSpec
from .guard import loud, snapshot, too_busy

GB = 1024**3

#: libraries of the cost case; "tracetorch-bptt" is tracetorch's own BPTT mode, for reference
COST_LIBRARIES = ["tracetorch", "tracetorch-bptt", "snntorch", "norse", "spikingjelly", "floor"]
FULL_STEPS = [50, 100, 200, 1000, 4000, 16000]
QUICK_STEPS = [50, 100, 200, 1000]


# ----------------------------------------------------------------------------- worker
def _worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one (library, T) in this process; return the result row."""
    t_start = time.perf_counter()
    import torch

    from .common import (
        SavedBytes,
        bernoulli_stream,
        peak_rss_bytes,
        release_memory,
        reset_peak_rss,
        rss_bytes,
        set_threads,
    )
    from .common import train_step as common_train_step
    from .peers import build

    set_threads(1)
    torch.manual_seed(args.seed)
    spec = NetSpec()
    lib = args.lib
    trains = lib != "floor"
    if lib == "tracetorch-bptt":
        runner = build("tracetorch", spec, learning="bptt")
    else:
        runner = build(lib, spec)
    opt = torch.optim.Adam(runner.parameters(), lr=1e-3) if trains else None
    y = torch.randint(0, spec.n_out, (args.batch,), generator=torch.Generator().manual_seed(1))

    def stream(steps: int):
        return bernoulli_stream(steps, args.batch, spec.n_in, args.p, args.chunk, args.seed)

    def train_step(steps: int) -> None:
        common_train_step(runner, opt, stream(steps), y)

    @torch.no_grad()
    def forward(steps: int) -> None:
        runner.reset()
        for chunk in stream(steps):
            runner.run(chunk)

    row: dict[str, Any] = {
        "library": lib,
        "steps": args.steps,
        "chunk": args.chunk,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
    }
    # warm-up: one short step of each kind (lazy allocations, autograd engine, Adam state)
    warm = min(args.steps, args.chunk)
    if trains:
        train_step(warm)
    forward(warm)
    row["setup_s"] = time.perf_counter() - t_start

    what = args.what
    if trains and what in ("all", "memory"):
        # 1. memory: one training step from a trimmed heap, kernel high-water mark reset
        release_memory()
        reset_peak_rss()
        base = rss_bytes()
        t0 = time.perf_counter()
        train_step(args.steps)
        first = time.perf_counter() - t0
        row["train_peak"] = peak_rss_bytes() - base
        row["baseline_rss"] = base
        row["train_first_s"] = first
        # 2. what autograd saves for backward (a separate step: the counting has a cost)
        saved = SavedBytes()
        with saved:
            train_step(args.steps)
        row["saved"] = saved.peak
        row["saved_total"] = saved.total
        row["saved_tensors"] = saved.tensors
    if trains and what in ("all", "time"):
        # 3. time: the median of ``reps`` steps (what="all", reps=0: the memory step's time)
        times, cpu = ([], []) if args.reps or what == "time" else ([first], [])
        for _ in range(max(args.reps, 1 if what == "time" else 0)):
            gc.collect()
            t0, c0 = time.perf_counter(), time.thread_time()
            train_step(args.steps)
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        row["train_s"] = statistics.median(times)
        row["train_times"] = times
        row["train_cpu_times"] = cpu
        opt.zero_grad(set_to_none=True)

    if what in ("all", "memory"):
        release_memory()
        reset_peak_rss()
        base = rss_bytes()
        forward(args.steps)
        row["fwd_peak"] = peak_rss_bytes() - base
    if what in ("all", "time"):
        times = []
        for _ in range(max(1, args.fwd_reps)):
            gc.collect()
            t0 = time.perf_counter()
            forward(args.steps)
            times.append(time.perf_counter() - t0)
        row["fwd_s"] = statistics.median(times)
        row["fwd_times"] = times
        times = []
        for _ in range(max(1, args.fwd_reps)):  # the input stream alone, part of every time
            t0 = time.perf_counter()
            for _chunk in stream(args.steps):
                pass
            times.append(time.perf_counter() - t0)
        row["input_s"] = statistics.median(times)
    row["malloc_env"] = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    row["total_s"] = time.perf_counter() - t_start
    return row


# ----------------------------------------------------------------------------- driver
def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_worker(
    lib: str,
    steps: int,
    *,
    reps: int,
    fwd_reps: int,
    chunk: int,
    batch: int,
    p: float,
    timeout_s: float,
    mem_cap: int,
    what: str = "all",
    python: str = sys.executable,
) -> dict[str, Any]:
    """Run one measurement in a fresh process; watch its RSS; return its row (or an error).

    ``what="memory"`` runs under :data:`MEMORY_ENV` (glibc's mmap threshold fixed, for RSS
    that does not depend on allocation history), ``"time"`` and ``"all"`` under the default
    allocator (:data:`THREAD_ENV`), as a user runs.
    """
    cmd = [
        python,
        "-m",
        "benchmarks.cost",
        "worker",
        "--lib",
        lib,
        "--steps",
        str(steps),
        "--reps",
        str(reps),
        "--fwd-reps",
        str(fwd_reps),
        "--chunk",
        str(chunk),
        "--batch",
        str(batch),
        "--p",
        str(p),
        "--what",
        what,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(MEMORY_ENV if what == "memory" else THREAD_ENV)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    t0, peak, killed = time.monotonic(), 0, None
    while proc.poll() is None:
        rss = _rss_of(proc.pid)
        peak = max(peak, rss)
        if rss > mem_cap:
            killed = f"killed: RSS {rss / GB:.1f} GB passed the cap of {mem_cap / GB:.1f} GB"
        elif time.monotonic() - t0 > timeout_s:
            killed = f"killed: ran past its time limit of {timeout_s:.0f} s"
        if killed:
            proc.kill()
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    base = {"library": lib, "steps": steps}
    if killed:
        return {**base, "skipped": killed, "worker_peak_rss": peak}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "worker_peak_rss": peak}
    tail = (err or out).strip().splitlines()[-3:]
    return {**base, "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}


def _extrapolate(history: list[dict], key: str, steps: int) -> float | None:
    """Linear extrapolation in T of ``key`` from the two largest measured T (None if unknown)."""
    pts = [(h["steps"], h[key]) for h in history if key in h]
    if not pts:
        return None
    if len(pts) == 1:
        t0, v0 = pts[0]
        return v0 * steps / t0
    (t1, v1), (t2, v2) = pts[-2], pts[-1]
    slope = max((v2 - v1) / (t2 - t1), 0.0)
    return max(v2 + slope * (steps - t2), v2)


def run_cost(
    libraries: list[str],
    steps_list: list[int],
    *,
    budget_s: float = 120.0,
    max_reps: int = 5,
    mem_cap_gb: float = 8.0,
    chunk: int = 100,
    batch: int = 64,
    p: float = 0.2,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Measure every (library, T); return the rows (measured, skipped or failed).

    Args:
        budget_s: time allowed per (library, T); repetitions are fitted to it and a run whose
            single training step is predicted to exceed it is skipped.
        max_reps: most timed repetitions of a step.
        mem_cap_gb: skip (and kill) a run predicted (or seen) to pass this RSS.
    """
    mem_cap = int(mem_cap_gb * GB)
    rows: list[dict[str, Any]] = []
    for lib in libraries:
        history: list[dict] = []
        for steps in sorted(steps_list):
            base = {"library": lib, "steps": steps}
            mem = _extrapolate(history, "train_peak", steps)
            t_train = _extrapolate(history, "train_s", steps) or 0.0
            t_fwd = _extrapolate(history, "fwd_s", steps) or 0.0
            one = t_train + t_fwd
            if mem is not None and mem > mem_cap:
                row = {
                    **base,
                    "skipped": f"predicted peak {mem / GB:.1f} GB > cap "
                    f"{mem_cap_gb:.0f} GB (linear in T from smaller T)",
                    "predicted_peak": mem,
                }
            elif history and t_train > budget_s:
                row = {
                    **base,
                    "skipped": f"predicted {t_train:.0f} s per training step > the "
                    f"{budget_s:.0f} s budget (linear in T from smaller T)",
                    "predicted_train_s": t_train,
                }
            else:
                # two untimed steps (memory, saved bytes) in their own process, then the timed
                reps = max_reps if one == 0 else int(max(0, min(max_reps, budget_s / one - 2)))
                log(f"  cost: {lib:16s} T={steps:>6d} reps={reps}")
                common = dict(
                    chunk=chunk,
                    batch=batch,
                    p=p,
                    timeout_s=max(6 * budget_s, 60),
                    mem_cap=mem_cap,
                )
                # memory under the fixed mmap threshold, time under the default allocator:
                # two fresh processes, one after the other, never at the same time
                row = run_worker(lib, steps, reps=0, fwd_reps=0, what="memory", **common)
                if "skipped" not in row and "error" not in row:
                    before = snapshot()
                    if too_busy(before, use_loadavg=False):
                        loud(f"cost {lib} T={steps}: timed while busy: {too_busy(before)}")
                    timed = run_worker(
                        lib, steps, reps=max(reps, 1), fwd_reps=max(reps, 1), what="time", **common
                    )
                    after = snapshot()
                    if "skipped" in timed or "error" in timed:
                        row = timed
                    else:
                        row["memory_malloc_env"] = row.pop("malloc_env", {})
                        row = {**row, **timed, "load_before": before, "load_after": after}
                        row["contended"] = too_busy(before, use_loadavg=False) is not None
                        for k in ("setup_s", "total_s", "worker_peak_rss"):
                            row.pop(k, None)
            if "skipped" in row or "error" in row:
                log(f"  cost: {lib:16s} T={steps:>6d} {row.get('skipped') or row.get('error')}")
            else:
                history.append(row)
                log(
                    f"  cost: {lib:16s} T={steps:>6d} train {row.get('train_s', float('nan')):8.3f}"
                    f" s  fwd {row['fwd_s']:8.3f} s  peak {row.get('train_peak', 0) / 2**20:9.1f}"
                    f" MiB  saved {row.get('saved', 0) / 2**20:9.1f} MiB"
                )
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost")
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="measure one (library, T) in this process")
    w.add_argument("--lib", required=True)
    w.add_argument("--steps", type=int, required=True)
    w.add_argument("--reps", type=int, default=3)
    w.add_argument("--fwd-reps", type=int, default=3)
    w.add_argument("--chunk", type=int, default=100)
    w.add_argument("--batch", type=int, default=64)
    w.add_argument("--p", type=float, default=0.2)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument(
        "--what",
        choices=("all", "memory", "time"),
        default="all",
        help="memory (run under MEMORY_ENV), time (default allocator) or both",
    )
    d = sub.add_parser("run", help="the whole cost case, printed as JSON")
    d.add_argument("--libs", default=",".join(COST_LIBRARIES))
    d.add_argument("--steps", default=",".join(map(str, QUICK_STEPS)))
    d.add_argument("--budget", type=float, default=30.0)
    d.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "worker":
        print("RESULT " + json.dumps(_worker(args)), flush=True)
    else:
        rows = run_cost(
            args.libs.split(","), [int(s) for s in args.steps.split(",")], budget_s=args.budget
        )
        text = json.dumps(rows, indent=1)
        if args.out:
            args.out.write_text(text + "\n")
        else:
            print(text)


if __name__ == "__main__":
    main()
