"""Long-run check: ``python -m benchmarks.longrun [--steps 1000000] [--dtype float32|bfloat16]``.

A ``LIF(16, 64) -> LI(64, 4)`` network runs on an endless random spike stream, fed in chunks
of ``--chunk`` steps (default 1000) without any reset, and learns by trace learning (Adam,
cross-entropy on the last step of each chunk) once per chunk. After every chunk it checks:

- every parameter and every state tensor is finite;
- each layer's input trace is within its bound ``max|x| / (1 - d)`` per channel (``max|x|``
  over everything the layer has seen);
- decays stay strictly below 1 and thresholds within ``[1e-6, 1e6]``;

and at 10^4, 10^5, 10^6 steps (each power of ten up to ``--steps``, and the end) it records the
process's resident memory: current RSS (``/proc/self/statm``) and peak RSS
(``resource.getrusage``). RSS must stay flat: the growth after the first checkpoint must stay
under ``--rss-tolerance-mib`` (default 16 MiB). Prints a table; exits 1 on any violation.

``tests/test_longrun.py`` runs the same function for 20,000 steps in both dtypes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.nn import parameters as P

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class LongRunResult:
    """Checkpoints ``(steps, RSS MiB, peak RSS MiB, mean loss since the last checkpoint, s)``
    and the violations found."""

    dtype: str
    rows: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def table(self) -> str:
        lines = [
            f"long run, {self.dtype}: LIF(16, 64) -> LI(64, 4), trace learning (Adam)",
            f"{'steps':>10} {'RSS MiB':>9} {'peak MiB':>9} {'mean loss':>9} {'s':>8}",
        ]
        for steps, rss, peak, loss, secs in self.rows:
            lines.append(f"{steps:>10,} {rss:>9.1f} {peak:>9.1f} {loss:>9.3f} {secs:>8.1f}")
        lines.append("OK" if self.ok else "VIOLATIONS:\n  " + "\n  ".join(self.violations[:20]))
        return "\n".join(lines)


def rss_mib() -> float:
    """Current resident memory of this process in MiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _checkpoints(steps: int, chunk: int) -> list[int]:
    marks = [10**k for k in range(4, 13) if 10**k <= steps]
    marks.append(steps)
    return sorted({-(-m // chunk) * chunk for m in marks})


def _check(net, seen_max, violations: list[str], step: int) -> None:
    """Finite parameters and states, trace bounds, decay and threshold ranges."""
    for name, p in net.named_parameters():
        if not torch.isfinite(p).all():
            violations.append(f"step {step}: parameter {name} is not finite")
    for i, layer in enumerate(net):
        for name, t in zip(
            (*layer.state_type._fields, "trace"), (*layer.state, layer.trace), strict=True
        ):
            if not torch.isfinite(t).all():
                violations.append(f"step {step}: layer {i} {name} is not finite")
            if t.dtype != layer.state_dtype:
                violations.append(f"step {step}: layer {i} {name} is {t.dtype}")
        d = layer.trace_decay.detach().double()
        bound = seen_max[i] / (1 - d)
        excess = layer.trace.detach().double().abs().amax(0) - bound * (1 + 1e-5)
        if (excess > 0).any():
            violations.append(
                f"step {step}: layer {i} trace exceeds max|x|/(1-d) by {float(excess.max()):.3g}"
            )
        for pname in ("beta", "trace_decay"):
            v = getattr(layer, pname).detach()
            if not bool(((v > 0) & (v < 1)).all()):
                violations.append(f"step {step}: layer {i} {pname} left (0, 1)")
        if hasattr(layer, "threshold"):
            th = layer.threshold.detach()
            if not bool(((th >= P.THRESHOLD_MIN) & (th <= P.THRESHOLD_MAX)).all()):
                violations.append(f"step {step}: layer {i} threshold left [1e-6, 1e6]")


def run_longrun(
    steps: int = 10**6,
    dtype: torch.dtype = torch.float32,
    *,
    chunk: int = 1000,
    batch: int = 1,
    lr: float = 1e-3,
    seed: int = 0,
    rss_tolerance_mib: float = 16.0,
    verbose: bool = False,
) -> LongRunResult:
    """Run the long-run check; returns the checkpoints table and any violations."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    net = tt.nn.Sequential(tt.nn.LIF(16, 64), tt.nn.LI(64, 4)).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    result = LongRunResult(dtype=str(dtype).removeprefix("torch."))
    marks = _checkpoints(steps, chunk)
    seen_max = [torch.zeros(16, dtype=torch.float64), torch.zeros(64, dtype=torch.float64)]
    rates = torch.full((16,), 0.05)
    rates[:4] = 0.3  # one group of four inputs fires more; which one says the label
    done, start, loss_sum, loss_n = 0, time.perf_counter(), 0.0, 0
    rss_first: float | None = None
    while done < steps:
        length = min(chunk, steps - done)
        group = int(torch.randint(4, (1,), generator=gen))
        p = rates.roll(4 * group).expand(length, batch, 16)
        x = (torch.rand(p.shape, generator=gen) < p).to(dtype)
        y = torch.full((batch,), group)
        seen_max[0] = torch.maximum(seen_max[0], x.double().abs().amax((0, 1)))
        hidden = net[0](x)
        seen_max[1] = torch.maximum(seen_max[1], hidden.detach().double().abs().amax((0, 1)))
        out = net[1](hidden)
        loss = F.cross_entropy(out[-1].float(), y)
        opt.zero_grad(set_to_none=False)  # keep the gradient buffers: a flat footprint
        loss.backward()
        opt.step()
        loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
        done += length
        _check(net, seen_max, result.violations, done)
        if not torch.isfinite(loss):
            result.violations.append(f"step {done}: loss is not finite")
        if done in marks:
            rss = rss_mib()
            rss_first = rss if rss_first is None else rss_first
            loss_value, loss_sum, loss_n = loss_sum / loss_n, 0.0, 0
            row = (done, rss, peak_rss_mib(), loss_value, time.perf_counter() - start)
            result.rows.append(row)
            if verbose:
                print(f"  {done:>10,} steps  RSS {rss:7.1f} MiB  loss {loss_value:.3f}", flush=True)
            if rss - rss_first > rss_tolerance_mib:
                result.violations.append(
                    f"step {done}: RSS grew {rss - rss_first:.1f} MiB since step {marks[0]}"
                )
        if len(result.violations) > 50:
            break
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10**6)
    parser.add_argument("--dtype", choices=[*DTYPES, "both"], default="both")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--rss-tolerance-mib", type=float, default=16.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = list(DTYPES) if args.dtype == "both" else [args.dtype]
    ok = True
    for name in names:
        res = run_longrun(
            args.steps,
            DTYPES[name],
            chunk=args.chunk,
            rss_tolerance_mib=args.rss_tolerance_mib,
            verbose=True,
        )
        print(res.table(), flush=True)
        ok &= res.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
