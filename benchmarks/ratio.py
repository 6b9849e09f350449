"""Speed ratios, measured interleaved: ``python -m benchmarks.ratio [--steps 1000] [--rounds 9]``.

The ratio "snnTorch train step / tracetorch train step" is the figure a reader takes away, so
it is measured so that it survives a re-run (issue 13):

- each library runs in its own long-lived process (one thread, glibc's default allocator, as
  a user runs), built and warmed up once (a short step and a full step);
- the driver then asks them for one timed training step each, **in turn** (A, B, C, A, B,
  C, ...; the order rotates every round so that no library always runs first); only one
  process computes at any time, the others wait on their stdin;
- each round gives one ratio per peer (its time / tracetorch's time in the same round), so
  a slow drift of the machine hits both sides of a ratio alike;
- the table gives the median ratio over the rounds and its spread (min-max and IQR); a ratio
  whose min-max spread is more than :data:`MAX_SPREAD` of its median is flagged.

The load average and the cores busy in other processes are recorded before the run and
after every round; a round timed while other processes kept more than half the cores busy is
marked. Writes ``benchmarks/results/ratio.json`` (``--out DIR``: ``DIR/ratio.json``).

One training step is the cost case's (:mod:`benchmarks.cost`): reset, ``T`` steps of a
Bernoulli(0.2) stream in chunks of 100, cross-entropy on the readout at the last step,
backward, Adam step; 64-128-128-10, batch 64.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import RESULTS, ROOT, THREAD_ENV, NetSpec, machine_info, write_json
from .guard import BusyError, SuiteLock, loud, snapshot, too_busy, wait_until_quiet

BASE = "tracetorch"
LIBRARIES = ["tracetorch", "snntorch", "norse", "spikingjelly"]
STEPS = [1000]
ROUNDS = 9
#: a ratio whose (max - min) / median over the rounds exceeds this is flagged
MAX_SPREAD = 0.20


# ----------------------------------------------------------------------------- server
def serve(lib: str, steps: int, chunk: int, batch: int, p: float, seed: int) -> None:
    """Build ``lib``'s network, warm up, then time one training step per ``go`` on stdin."""
    import gc

    import torch

    from .common import bernoulli_stream, set_threads
    from .common import train_step as common_train_step
    from .peers import build

    set_threads(1)
    torch.manual_seed(seed)
    spec = NetSpec()
    runner = (
        build("tracetorch", spec, learning="bptt") if lib == "tracetorch-bptt" else build(lib, spec)
    )
    opt = torch.optim.Adam(runner.parameters(), lr=1e-3)
    y = torch.randint(0, spec.n_out, (batch,), generator=torch.Generator().manual_seed(1))

    def train_step(n: int) -> None:
        common_train_step(runner, opt, bernoulli_stream(n, batch, spec.n_in, p, chunk, seed), y)

    train_step(min(steps, chunk))
    train_step(steps)
    print("READY " + json.dumps({"lib": lib, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        gc.collect()
        t0, c0 = time.perf_counter(), time.thread_time()
        train_step(steps)
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        print(f"TIME {wall!r} {cpu!r}", flush=True)


class _Server:
    def __init__(self, lib: str, steps: int, chunk: int, batch: int, p: float, timeout_s: float):
        cmd = [sys.executable, "-m", "benchmarks.ratio", "serve", "--lib", lib]
        cmd += ["--steps", str(steps), "--chunk", str(chunk), "--batch", str(batch), "--p", str(p)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env.update(THREAD_ENV)
        self.lib, self.timeout_s = lib, timeout_s
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._expect("READY")

    def _expect(self, tag: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self.close()
                raise RuntimeError(f"{self.lib}: no {tag} within {self.timeout_s:.0f} s")
            line = self.proc.stdout.readline()
            if not line:
                err = (self.proc.stderr.read() or "").strip().splitlines()[-3:]
                raise RuntimeError(f"{self.lib} exited: {' | '.join(err)}")
            if line.startswith(tag + " "):
                return line[len(tag) + 1 :]

    def step(self) -> tuple[float, float]:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        wall, cpu = self._expect("TIME").split()
        return float(wall), float(cpu)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# ----------------------------------------------------------------------------- statistics
def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile of ``values`` (``q`` in [0, 1])."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summarize(values: list[float], max_spread: float = MAX_SPREAD) -> dict[str, Any]:
    """Median, min, max, quartiles and relative spread ``(max - min) / median``; flagged if
    the spread exceeds ``max_spread``."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    spread = (hi - lo) / med if med else float("inf")
    return {
        "median": med,
        "min": lo,
        "max": hi,
        "q1": quantile(values, 0.25),
        "q3": quantile(values, 0.75),
        "spread": spread,
        "flagged": spread > max_spread or len(values) < 3,
        "n": len(values),
        "values": values,
    }


# ----------------------------------------------------------------------------- driver
def measure(
    libs: list[str],
    steps: int,
    rounds: int,
    *,
    chunk: int = 100,
    batch: int = 64,
    p: float = 0.2,
    timeout_s: float = 600.0,
    log=print,
) -> dict[str, Any]:
    """Interleaved training-step times of ``libs`` at ``steps``; ratios to :data:`BASE`."""
    servers: dict[str, _Server] = {}
    errors: dict[str, str] = {}
    try:
        for lib in libs:  # built and warmed up one after the other
            try:
                servers[lib] = _Server(lib, steps, chunk, batch, p, timeout_s)
            except RuntimeError as e:
                errors[lib] = str(e)
                log(f"  ratio: {lib} unavailable: {e}")
        names = list(servers)
        times: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        loads, order = [], []
        for r in range(rounds):
            k = r % max(len(names), 1)
            turn = names[k:] + names[:k]
            order.append(turn)
            for lib in turn:
                wall, c = servers[lib].step()
                times[lib].append(wall)
                cpu[lib].append(c)
            snap = snapshot()
            snap["contended"] = too_busy(snap, use_loadavg=False) is not None
            loads.append(snap)
            log(
                f"  ratio: T={steps} round {r + 1}/{rounds}: "
                + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in names)
                + ("  [busy]" if snap["contended"] else "")
            )
    finally:
        for s in servers.values():
            s.close()
    ratios = {}
    if BASE in times:
        for lib in names:
            if lib != BASE:
                vals = [a / b for a, b in zip(times[lib], times[BASE], strict=True)]
                ratios[lib] = summarize(vals)
    return {
        "steps": steps,
        "rounds": rounds,
        "times": {n: summarize(v) for n, v in times.items()},
        "cpu_times": {n: summarize(v) for n, v in cpu.items()},
        "ratios": ratios,
        "order": order,
        "loads": loads,
        "contended_rounds": sum(s["contended"] for s in loads),
        "errors": errors,
    }


def run_ratio(
    libs: list[str] = LIBRARIES,
    steps_list: list[int] = STEPS,
    rounds: int = ROUNDS,
    *,
    log=print,
) -> dict[str, Any]:
    """Every T of ``steps_list``; the JSON document of ``ratio.json`` (without the machine)."""
    rows = [measure(libs, t, rounds, log=log) for t in steps_list]
    for row in rows:
        for lib, s in row["ratios"].items():
            flag = "  FLAGGED: spread > 20 %" if s["flagged"] else ""
            log(
                f"  ratio: T={row['steps']}: {lib} / {BASE} = {s['median']:.2f}x "
                f"(min-max {s['min']:.2f}-{s['max']:.2f}, IQR {s['q1']:.2f}-{s['q3']:.2f}){flag}"
            )
    return {
        "settings": {
            "libs": libs,
            "steps": steps_list,
            "rounds": rounds,
            "base": BASE,
            "max_spread": MAX_SPREAD,
            "net": "64-128-128-10",
            "batch": 64,
            "chunk": 100,
            "threads": 1,
            "allocator": "glibc default",
        },
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratio", description=__doc__)
    sub = parser.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="(internal) one library's timing process")
    s.add_argument("--lib", required=True)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--chunk", type=int, default=100)
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--p", type=float, default=0.2)
    s.add_argument("--seed", type=int, default=0)
    parser.add_argument("--libs", default=",".join(LIBRARIES))
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--out", type=Path, help="folder for ratio.json (default: results)")
    parser.add_argument("--allow-load", action="store_true", help="time on a busy machine")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        serve(args.lib, args.steps, args.chunk, args.batch, args.p, args.seed)
        return 0
    try:
        with SuiteLock("python -m benchmarks.ratio"):
            pre = wait_until_quiet(args.allow_load, what="the ratio case")
            env = machine_info(threads=1)
            doc = run_ratio(
                args.libs.split(","), [int(t) for t in args.steps.split(",")], args.rounds
            )
    except BusyError as e:
        loud(str(e))
        return 2
    doc = {"machine": env, "pre": pre, "post": snapshot(), **doc}
    doc["command"] = "python -m benchmarks.ratio " + " ".join(argv or sys.argv[1:])
    write_json((args.out or RESULTS) / "ratio.json", doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
