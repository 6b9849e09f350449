"""Speed of the multi-step fast path: ``python -m benchmarks.speed [--quick]``.

Three ways to run the same network (``n_in=64 - hidden - hidden - 10``: LIF, LIF, LI readout;
beta 0.9, threshold 1, subtractive reset) over a stream of ``T`` steps, batch ``B``, one thread:

- **floor**: a plain per-step PyTorch loop under ``no_grad``, no library, written as tight as
  plain PyTorch allows: per step and layer one ``addmm`` into a reused buffer, then the
  membrane (one fused multiply-add), the spike (``ge`` into a reused buffer) and the reset, all
  in place. Its *train* step adds what trace learning needs per step (one in-place update of
  each layer's input trace) and, at the end, the same local-graph backward as tracetorch
  written by hand, then an Adam step.
- **per-step**: ``tt.nn.Sequential`` called once per step, ``net(x[t])``.
- **multi-step**: the same network called on blocks of the stream, ``net(x[i:i+L])`` with
  ``L = min(layer.chunk_steps(B))`` (the layers' automatic chunk size): one matrix multiply per
  layer and block, the neuron recursion in place, the input trace in closed form.
  ``multi C++`` is the same with ``tt.functional.set_backend("cpp")`` (the recursion as one
  compiled loop).

*train* = reset, ``T`` forward steps, cross-entropy on the readout's last output,
``backward()`` (trace learning: one local graph per layer), Adam step. Times are wall-clock
microseconds **per step**, the median over interleaved repeats (every path once per round, so
that load on a shared machine hits all paths alike). The input is a fixed Bernoulli(0.2) block
of at most 1000 steps, cycled, so input generation is not timed and memory does not grow.

A per-step path whose run would take longer than ``--max-run-s`` is timed on the first ``N``
steps only (marked ``*``): its cost per step does not depend on ``T``, and its train time
then amortizes the one backward over ``N`` rather than ``T`` steps (an upper bound).

``peak MiB``: the peak of bytes allocated during a multi-step train step (PyTorch's profiler,
allocations minus frees): states, one chunk's outputs, the local graphs and the gradients (the
parameters and Adam's state exist before the step). Flat in ``T`` means that the stream is
processed in constant memory.

Writes ``benchmarks/results/speed.json`` and ``docs/img/speed.png`` and prints a markdown table
(``--quick``: ``out/speed-quick/``). ``--chunks`` prints the sweep of chunk sizes that set the
default.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tracetorch as tt

from .common import RESULTS, ROOT, NetSpec, machine_info, set_threads, write_json
from .guard import BusyError, SuiteLock, loud, wait_until_quiet

FULL = {"batch": [1, 64, 256], "hidden": [128, 1024], "steps": [100, 1000, 10_000]}
QUICK = {"batch": [1, 64], "hidden": [128], "steps": [100, 1000, 4000]}
PATHS = ("floor", "per-step", "multi", "multi-cpp")
INPUT_BLOCK = 1000  # steps of input made once and cycled
P_SPIKE = 0.2


# ----------------------------------------------------------------------------- the network
def build_net(spec: NetSpec) -> tt.nn.Sequential:
    sizes = spec.sizes
    layers: list[nn.Module] = [
        tt.nn.LIF(a, b, beta=spec.beta, threshold=spec.threshold)
        for a, b in zip(sizes[:-2], sizes[1:-1], strict=True)
    ]
    layers.append(tt.nn.LI(sizes[-2], sizes[-1], beta=spec.readout_beta))
    return tt.nn.Sequential(*layers)


def _steps(x: Tensor, steps: int) -> Iterator[Tensor]:
    """``steps`` single steps ``[B, n_in]``, cycling through the input block ``x``."""
    for t in range(steps):
        yield x[t % len(x)]


def _chunks(x: Tensor, steps: int, size: int) -> Iterator[Tensor]:
    """The stream of ``steps`` steps as chunks ``[<= size, B, n_in]``, cycling through ``x``."""
    done = 0
    while done < steps:
        start = done % len(x)
        n = min(size, steps - done, len(x) - start)
        yield x[start : start + n]
        done += n


class Floor:
    """The same network as a plain per-step PyTorch loop (see the module docstring)."""

    def __init__(self, net: tt.nn.Sequential) -> None:
        self.layers = []
        for layer in net:
            p = {
                "W": nn.Parameter(layer.weight.detach().clone()),
                "b": nn.Parameter(layer.bias.detach().clone()),
                "beta_raw": nn.Parameter(layer.beta_raw.detach().clone()),
                "d": layer.trace_decay.detach().clone(),
            }
            if isinstance(layer, tt.nn.LIF):
                p["theta_raw"] = nn.Parameter(layer.threshold_raw.detach().clone())
            self.layers.append(p)
        self.params = [v for p in self.layers for v in p.values() if isinstance(v, nn.Parameter)]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)

    @torch.no_grad()
    def _run(self, x: Tensor, steps: int, traces: bool) -> None:
        batch = x.shape[1]
        state = []
        for p in self.layers:
            n_out, n_in = p["W"].shape
            lif = "theta_raw" in p
            state.append(
                {
                    "Wt": p["W"].detach().t(),  # a transposed view: MKL's fastest small GEMM
                    "b": p["b"].detach(),
                    "beta": torch.sigmoid(p["beta_raw"]),
                    "theta": F.softplus(p["theta_raw"]) if lif else None,
                    "m": x.new_zeros(batch, n_out),
                    "c": x.new_empty(batch, n_out),
                    "s": x.new_empty(batch, n_out) if lif else None,
                    "t": x.new_zeros(batch, n_in),
                    "d": p["d"],
                }
            )
        for x_t in _steps(x, steps):
            h = x_t
            for s in state:
                if traces:
                    torch.addcmul(h, s["t"], s["d"], out=s["t"])
                torch.addmm(s["b"], h, s["Wt"], out=s["c"])
                torch.addcmul(s["c"], s["m"], s["beta"], out=s["m"])
                if s["theta"] is None:
                    h = s["m"]
                    continue
                torch.ge(s["m"], s["theta"], out=s["s"])
                s["m"].addcmul_(s["s"], s["theta"], value=-1)
                h = s["s"]
        self.state, self.steps = state, steps

    def forward(self, x: Tensor, steps: int) -> None:
        self._run(x, steps, traces=False)

    def train_step(self, x: Tensor, steps: int, y: Tensor) -> None:
        self._run(x, steps, traces=True)
        readout = self.state[-1]["m"].clone().requires_grad_()
        (signal,) = torch.autograd.grad(F.cross_entropy(readout, y), readout)
        self.opt.zero_grad(set_to_none=True)
        for p, s in zip(reversed(self.layers), reversed(self.state), strict=True):
            d = s["d"]
            a = (s["t"] * (1 - d) / (1 - d**self.steps)).requires_grad_()
            c = F.linear(a, p["W"], p["b"])
            beta = torch.sigmoid(p["beta_raw"])
            if "theta_raw" in p:
                r = tt.functional.mean_field_rate(c, beta, F.softplus(p["theta_raw"]))
                wrt = [a, p["W"], p["b"], p["beta_raw"], p["theta_raw"]]
            else:
                r = tt.functional.li_average(c, beta)
                wrt = [a, p["W"], p["b"], p["beta_raw"]]
            grads = torch.autograd.grad(r, wrt, signal)
            for param, g in zip(wrt[1:], grads[1:], strict=True):
                param.grad = g
            signal = grads[0]
        self.opt.step()


class Tracetorch:
    """tracetorch's per-step and multi-step paths on one network."""

    def __init__(self, net: tt.nn.Sequential) -> None:
        self.net = net
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        self.chunk = 0  # steps per call of the multi-step path; set by chunk_for()

    def chunk_for(self, batch: int) -> int:
        """Blocks of the smallest automatic chunk of the layers (``docs/speed.md``)."""
        self.chunk = min(layer.chunk_steps(batch) for layer in self.net)
        return self.chunk

    def _feed(self, x: Tensor, steps: int, multi: bool) -> Tensor:
        self.net.reset_states()
        out = None
        if multi:
            for xc in _chunks(x, steps, self.chunk):
                out = self.net(xc)[-1]
        else:
            for x_t in _steps(x, steps):
                out = self.net(x_t)
        return out

    def forward(self, x: Tensor, steps: int, multi: bool) -> None:
        with torch.no_grad():
            self._feed(x, steps, multi)

    def train_step(self, x: Tensor, steps: int, y: Tensor, multi: bool) -> None:
        out = self._feed(x, steps, multi)
        loss = F.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


# ----------------------------------------------------------------------------- measuring
#: The clock of every timing: wall-clock by default; ``--clock cpu`` takes this thread's CPU
#: time instead, which on a shared machine leaves out the time spent waiting for a core.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
_clock = CLOCKS["wall"]


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = _clock()
    fn()
    return _clock() - start


def _set_backend(name: str) -> None:
    tt.functional.set_backend("cpp" if name == "multi-cpp" else "torch")


def measure_cell(
    batch: int,
    hidden: int,
    steps: int,
    paths: tuple[str, ...],
    budget_s: float,
    max_rounds: int,
    max_run_s: float,
    memory: bool,
    seed: int = 0,
) -> dict[str, Any]:
    """Forward and train time per step of each path for one (B, hidden, T)."""
    torch.manual_seed(seed)
    spec = NetSpec(hidden=(hidden, hidden))
    x = (torch.rand(min(steps, INPUT_BLOCK), batch, spec.n_in) < P_SPIKE).float()
    y = torch.randint(0, spec.n_out, (batch,))
    net = build_net(spec)
    floor, tracer = Floor(net), Tracetorch(net)
    tracer.chunk_for(batch)

    def runners(path: str, n: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
        if path == "floor":
            return (lambda: floor.forward(x, n)), (lambda: floor.train_step(x, n, y))
        multi = path != "per-step"
        return (
            lambda: tracer.forward(x, n, multi),
            lambda: tracer.train_step(x, n, y, multi),
        )

    # Probe: per-step cost of each path from a short run, to cap the per-step paths' runs.
    probe = min(steps, 20)
    timed_steps: dict[str, int] = {}
    for path in paths:
        _set_backend(path)
        fwd, _ = runners(path, probe)
        fwd()
        per_step = _timed(fwd) / probe
        n = steps
        if path in ("floor", "per-step") and per_step * steps > max_run_s:
            n = max(probe, int(max_run_s / per_step))
        timed_steps[path] = n

    times: dict[str, dict[str, list[float]]] = {p: {"fwd": [], "train": []} for p in paths}
    started = time.perf_counter()
    for round_ in range(max_rounds):
        for path in paths:
            _set_backend(path)
            n = timed_steps[path]
            fwd, train = runners(path, n)
            if round_ == 0:  # warm-up: lazy state, optimizer state, allocator
                runners(path, min(n, 2 * tracer.chunk))[1]()
            times[path]["fwd"].append(_timed(fwd) / n)
            times[path]["train"].append(_timed(train) / n)
        elapsed = time.perf_counter() - started
        if (elapsed > budget_s and round_ >= 2) or elapsed > 3 * budget_s:
            break
    result: dict[str, Any] = {"batch": batch, "hidden": hidden, "steps": steps}
    for path in paths:
        result[path] = {
            "fwd_us": 1e6 * statistics.median(times[path]["fwd"]),
            "train_us": 1e6 * statistics.median(times[path]["train"]),
            "rounds": len(times[path]["fwd"]),
            "timed_steps": timed_steps[path],
        }
    if memory and "multi" in paths:
        _set_backend("multi")
        result["multi"]["train_peak_bytes"] = tt.metrics.peak_allocated_bytes(
            lambda: tracer.train_step(x, steps, y, multi=True)
        )
    _set_backend("multi")
    return result


def sweep_chunk_sizes(
    sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256),
    cells: tuple[tuple[int, int], ...] = (
        (1, 128),
        (16, 128),
        (64, 128),
        (256, 128),
        (64, 512),
        (256, 1024),
    ),
    min_steps: int = 512,
    rounds: int = 3,
) -> dict[str, dict[int, float]]:
    """Multi-step forward us/step vs chunk size (stream chunks = layer chunks), per (B, hidden)."""
    out: dict[str, dict[int, float]] = {}
    for batch, hidden in cells:
        torch.manual_seed(0)
        spec = NetSpec(hidden=(hidden, hidden))
        steps = max(min_steps, 2 * max(sizes))
        if batch * hidden >= 256 * 1024:
            steps = 2 * max(sizes)
        x = (torch.rand(min(steps, INPUT_BLOCK), batch, spec.n_in) < P_SPIKE).float()
        tracer = Tracetorch(build_net(spec))
        times: dict[int, list[float]] = {s: [] for s in sizes}
        for _ in range(rounds):
            for size in sizes:
                for layer in tracer.net:
                    layer.chunk_size = size
                tracer.chunk = size
                tracer.forward(x, 2 * size, True)
                run = functools.partial(tracer.forward, x, steps, True)
                times[size].append(_timed(run) / steps)
        cell = f"B={batch}, hidden={hidden}"
        out[cell] = {s: 1e6 * statistics.median(v) for s, v in times.items()}
        best = min(out[cell].values())
        print(
            cell,
            " ".join(f"{k}:{v:.1f}({v / best:.2f})" for k, v in out[cell].items()),
            file=sys.stderr,
            flush=True,
        )
    return out


# ----------------------------------------------------------------------------- report
def _fmt(v: float | None, mark: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    s = f"{v:.0f}" if v >= 100 else f"{v:.1f}"
    return s + ("*" if mark else "")


def markdown_table(rows: list[dict[str, Any]], paths: tuple[str, ...]) -> str:
    names = {"floor": "floor", "per-step": "per-step", "multi": "multi", "multi-cpp": "multi C++"}
    head = ["B", "hidden", "T"]
    head += [f"fwd {names[p]}" for p in paths] + [f"train {names[p]}" for p in paths]
    head += ["multi / floor", "C++ / floor", "train / fwd (multi)", "peak MiB (multi train)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["batch"]), str(r["hidden"]), str(r["steps"])]
        for kind in ("fwd_us", "train_us"):
            for p in paths:
                d = r.get(p)
                cells.append(_fmt(d and d[kind], bool(d) and d["timed_steps"] < r["steps"]))
        floor, multi, cpp = r.get("floor"), r.get("multi"), r.get("multi-cpp")
        cells.append(f"{multi['fwd_us'] / floor['fwd_us']:.2f}" if floor and multi else "n/a")
        cells.append(f"{cpp['fwd_us'] / floor['fwd_us']:.2f}" if floor and cpp else "n/a")
        cells.append(f"{multi['train_us'] / multi['fwd_us']:.2f}" if multi else "n/a")
        peak = multi and multi.get("train_peak_bytes")
        cells.append(f"{peak / 2**20:.2f}" if peak else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's goals at B=64, hidden 128, checked on these rows."""
    out = []
    sel = [r for r in rows if r["batch"] == 64 and r["hidden"] == 128 and r.get("multi")]
    for r in sel:
        m, f = r["multi"], r.get("floor")
        if f:
            ok = m["fwd_us"] <= f["fwd_us"]
            out.append(
                f"T={r['steps']}: multi fwd {m['fwd_us']:.1f} vs floor {f['fwd_us']:.1f} us/step "
                f"({m['fwd_us'] / f['fwd_us']:.2f}x): {'met' if ok else 'NOT met'}"
            )
        c = r.get("multi-cpp")
        if f and c:
            ok = c["fwd_us"] <= f["fwd_us"]
            out.append(
                f"T={r['steps']}: multi C++ fwd {c['fwd_us']:.1f} vs floor {f['fwd_us']:.1f} "
                f"us/step ({c['fwd_us'] / f['fwd_us']:.2f}x): {'met' if ok else 'NOT met'}"
            )
        ok = m["train_us"] <= 1.2 * m["fwd_us"]
        out.append(
            f"T={r['steps']}: multi train / fwd = {m['train_us'] / m['fwd_us']:.2f} "
            f"(goal <= 1.2): {'met' if ok else 'NOT met'}"
        )
    for batch, hidden in sorted({(r["batch"], r["hidden"]) for r in rows}):
        cell = [r for r in rows if (r["batch"], r["hidden"]) == (batch, hidden) and r.get("multi")]
        peaks = {r["steps"]: r["multi"].get("train_peak_bytes") for r in cell}
        peaks = {k: v for k, v in peaks.items() if v}
        if len(peaks) < 2:
            continue
        # Runs shorter than one block allocate a smaller block: compare from the second T on.
        ref_t = sorted(peaks)[1] if len(peaks) > 2 else min(peaks)
        ref, top = peaks[ref_t], max(peaks.values())
        ok = top <= 1.05 * ref + 2**20
        out.append(
            f"memory B={batch} hidden={hidden}: peak of a train step "
            + ", ".join(f"{v / 2**20:.1f} MiB (T={k})" for k, v in sorted(peaks.items()))
            + f": {'flat' if ok else 'NOT flat'} in T"
        )
    return out


def plot(rows: list[dict[str, Any]], paths: tuple[str, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r["batch"] for r in rows})
    hiddens = sorted({r["hidden"] for r in rows})
    fig, axes = plt.subplots(
        len(hiddens), len(batches), figsize=(4 * len(batches), 3.2 * len(hiddens)), squeeze=False
    )
    styles = {"floor": "k--", "per-step": "C1-o", "multi": "C0-o", "multi-cpp": "C2-o"}
    for i, hidden in enumerate(hiddens):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            sel = sorted(
                (r for r in rows if r["batch"] == batch and r["hidden"] == hidden),
                key=lambda r: r["steps"],
            )
            ts = [r["steps"] for r in sel]
            for p in paths:
                if all(r.get(p) for r in sel) and sel:
                    ax.plot(ts, [r[p]["fwd_us"] for r in sel], styles[p], label=f"{p} fwd")
            if sel and all(r.get("multi") for r in sel):
                ax.plot(ts, [r["multi"]["train_us"] for r in sel], "C0:s", label="multi train")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"B={batch}, hidden={hidden}", fontsize=10)
            ax.set_xlabel("T (steps)")
            ax.set_ylabel("us / step")
            ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("tracetorch speed per step (1 thread; lower is better)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small grid, about a minute")
    parser.add_argument("--batch", help="comma-separated batch sizes (default: the grid's)")
    parser.add_argument("--hidden", help="comma-separated hidden sizes")
    parser.add_argument("--steps", help="comma-separated sequence lengths T")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"subset of {PATHS}")
    parser.add_argument("--budget", type=float, help="seconds of repeats per cell")
    parser.add_argument("--max-run-s", type=float, help="cap of one per-step-path run (s)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory column")
    parser.add_argument("--chunks", action="store_true", help="only sweep chunk sizes")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time or this thread's CPU time",
    )
    parser.add_argument("--out", type=Path, help="folder for results/ and img/")
    parser.add_argument(
        "--allow-load", action="store_true", help="time on a busy machine (marked; not published)"
    )
    args = parser.parse_args(argv)
    # one timed benchmark at a time, on a quiet machine (issue 13; benchmarks/guard.py)
    try:
        with SuiteLock("python -m benchmarks.speed"):
            pre = wait_until_quiet(args.allow_load or args.quick, what="the speed benchmark")
            return _main(args, pre)
    except BusyError as e:
        loud(str(e))
        return 2


def _main(args: argparse.Namespace, pre: dict[str, Any]) -> int:

    set_threads(1)
    global _clock
    _clock = CLOCKS[args.clock]
    if args.chunks:
        sweep_chunk_sizes()
        return 0
    grid = dict(QUICK if args.quick else FULL)
    for key in ("batch", "hidden", "steps"):
        if getattr(args, key):
            grid[key] = [int(v) for v in getattr(args, key).split(",")]
    paths = tuple(p for p in args.paths.split(",") if p)
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise SystemExit(f"unknown paths {sorted(unknown)}; expected a subset of {PATHS}")
    budget = args.budget if args.budget is not None else (2.0 if args.quick else 8.0)
    max_run_s = args.max_run_s if args.max_run_s is not None else (2.0 if args.quick else 10.0)
    out_dir = args.out or (ROOT / "out" / "speed-quick" if args.quick else None)
    json_path = (out_dir / "results" if out_dir else RESULTS) / "speed.json"
    png_path = (out_dir / "img" if out_dir else ROOT / "docs" / "img") / "speed.png"

    info = machine_info(threads=1)
    info["clock"] = args.clock
    info["pre"] = pre
    if "multi-cpp" in paths:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tt.functional.set_backend("cpp")
        info["cpp_build_or_load_s"] = round(time.perf_counter() - start, 2)
        if caught or tt.functional._cpp._module() is None:
            print("C++ kernels unavailable; dropping the multi-cpp path", file=sys.stderr)
            paths = tuple(p for p in paths if p != "multi-cpp")
        tt.functional.set_backend("torch")

    rows = []
    start = time.perf_counter()
    for hidden in grid["hidden"]:
        for batch in grid["batch"]:
            for steps in grid["steps"]:
                r = measure_cell(
                    batch,
                    hidden,
                    steps,
                    paths,
                    budget_s=budget,
                    max_rounds=7,
                    max_run_s=max_run_s,
                    memory=not args.no_memory,
                )
                rows.append(r)
                write_json(json_path, {"machine": info, "grid": grid, "paths": paths, "rows": rows})
                print(
                    f"B={batch} hidden={hidden} T={steps}: "
                    + ", ".join(f"{p} {r[p]['fwd_us']:.1f}/{r[p]['train_us']:.1f}" for p in paths)
                    + " us/step (fwd/train)",
                    file=sys.stderr,
                    flush=True,
                )
    info["wall_s"] = round(time.perf_counter() - start, 1)
    info["loadavg_at_end"] = os.getloadavg()
    table = markdown_table(rows, paths)
    verdicts = goals(rows)
    result = {"machine": info, "grid": grid, "paths": paths, "rows": rows, "goals": verdicts}
    write_json(json_path, result)
    plot(rows, paths, png_path)
    cmd = "python -m benchmarks.speed" + (" --quick" if args.quick else "")
    loads = [
        ", ".join(f"{v:.1f}" for v in info[k] or ()) for k in ("loadavg_at_start", "loadavg_at_end")
    ]
    report = "\n".join(
        [
            f"<!-- {cmd} --clock {args.clock}; {info['date']}; {info['cpu']};",
            f"     torch {info['versions']['torch']}; 1 thread; {info['wall_s']} s;",
            f"     load average {loads[0]} at start, {loads[1]} at end -->",
            "",
            table,
            "",
            "`*`: timed on the first steps only (see `benchmarks/speed.py`).",
            "",
            *("- " + line for line in verdicts),
        ]
    )
    json_path.with_suffix(".md").write_text(report + "\n")
    print(report)
    print(f"\nwrote {json_path}, its .md and {png_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
