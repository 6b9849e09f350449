"""Build a neuron outside tracetorch, then train it with trace learning and with BPTT.

The neuron is a LIF with a **hard reset to zero** (what NIR's ``LIF`` does on export; the
library's ``LIF`` subtracts the threshold instead). Everything a user writes is between the
two ``# --- neuron`` markers: the functional part (state, parameters, reference step, an
optional in-place run, the average output) and a thin module. The tutorial is
``docs/custom-neuron.md``.

    python examples/custom_neuron.py            # full run: 30 epochs trace + 30 epochs BPTT
    python examples/custom_neuron.py --quick    # a few seconds: 1 epoch of 8 batches each
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

import tracetorch as tt
from tracetorch import functional as tf

# --- neuron: begin ---------------------------------------------------------------------
# Hard-reset LIF. Per step, with input current c = W x + b:
#
#     m <- beta m + c,    s = [m >= theta],    m <- m (1 - s)
#
# Average output (trace learning): from m = 0 under a constant c the membrane climbs as
# m_k = c (1 - beta^k) / (1 - beta) until it reaches theta, and the spike resets it to 0, so
# the neuron fires every n = ceil(x) steps, x = ln(1 - rho / c) / ln(beta), where
# rho = (1 - beta) theta is the rheobase (below it m never reaches theta). The smooth rate
# replaces ceil(x) by x + offset (offset 1/2: the mean of ceil(x) - x) and is
# 1 / max(x + offset, 1), with softplus corners near the rheobase and at rate 1.


class HardResetState(NamedTuple):
    """``membrane`` ``[B, F]``, after the reset of the last step."""

    membrane: Tensor


class HardResetParams(NamedTuple):
    """Decay ``beta``, threshold ``theta`` (``[F]`` or numbers), the spike function."""

    beta: Tensor | float
    theta: Tensor | float
    spike_fn: Callable[[Tensor], Tensor] = tf.heaviside


def hard_reset_step(
    c: Tensor, state: HardResetState, p: HardResetParams
) -> tuple[Tensor, HardResetState]:
    """One step, out of place and differentiable (BPTT). ``c: [B, F]`` -> ``(spikes, state)``."""
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    m = torch.addcmul(c, state.membrane, beta)  # beta m + c, one rounding
    s = p.spike_fn(m - p.theta)
    return s, HardResetState(m - m * s)  # m (1 - s): exact for s in {0, 1}


def hard_reset_run_(
    c: Tensor, state: HardResetState, p: HardResetParams
) -> tuple[Tensor, HardResetState]:
    """Optional fast path: the step over ``c [T, B, F]``, spikes written into ``c``.

    Three kernels per step and no allocation; the values of :func:`hard_reset_step` bit for
    bit (the test pins it). ``state`` is left alone. Run it under ``torch.no_grad()``.
    """
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    theta = torch.as_tensor(p.theta, dtype=c.dtype, device=c.device)
    m = state.membrane.clone()
    for c_t in c.unbind(0):
        torch.addcmul(c_t, m, beta, out=m)
        torch.ge(m, theta, out=c_t)
        m.addcmul_(m, c_t, value=-1)
    return c, HardResetState(m)


def hard_reset_rate(
    c: Tensor, beta: Tensor, theta: Tensor, offset: float = 0.5, sharpness: float = 10.0
) -> Tensor:
    """Smooth firing rate in (0, 1) under a constant current ``c [..., F]`` (see above)."""
    rho = theta * (1 - beta)
    excess = F.softplus(c / rho - 1, beta=sharpness).clamp_min(1e-12)  # (c - rho) / rho > 0
    x = torch.log1p(1 / excess) / -torch.log(beta)  # = ln(1 - rho / c) / ln(beta)
    return 1 / (1 + F.softplus(x + offset - 1, beta=sharpness))  # 1 / max(x + offset, 1)


class HardResetLIF(tt.nn.SpikingLayer):
    """LIF neurons with a hard reset to zero behind a dense weight.

    Arguments as :class:`tracetorch.nn.LIF`; ``rate_fn`` defaults to :func:`hard_reset_rate`.
    """

    state_type = HardResetState
    step = staticmethod(hard_reset_step)
    fast_run = staticmethod(hard_reset_run_)

    def __init__(self, in_features: int, out_features: int, **kwargs) -> None:
        kwargs.setdefault("rate_fn", hard_reset_rate)
        super().__init__(in_features, out_features, **kwargs)
        self.reset_parameters()

    def neuron_params(self, bptt: bool) -> HardResetParams:
        return HardResetParams(self.beta, self.threshold, self.spike_fn(bptt))

    def average_output(self, a: Tensor) -> Tensor:
        return self.rate_fn(self.input_current(a), self.beta, self.threshold)


# --- neuron: end -----------------------------------------------------------------------

F64 = torch.float64
GOLDEN_CURRENT = [0.5, 0.5, 0.5, 0.25, 1.0]  # beta 0.5, theta 0.75: exact in binary
GOLDEN_SPIKES = [0.0, 1.0, 0.0, 0.0, 1.0]
GOLDEN_MEMBRANE = [0.5, 0.0, 0.5, 0.5, 0.0]  # a subtractive reset would end at 0.5
CURRENTS = [0.09, 0.105, 0.12, 0.15, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0, 1.5]  # c / theta


def check_golden() -> None:
    """The reference step against the trajectory computed by hand (float64, exact)."""
    p = HardResetParams(beta=0.5, theta=0.75)
    state = HardResetState(torch.zeros(1, 1, dtype=F64))
    spikes, membranes = [], []
    for c in GOLDEN_CURRENT:
        s, state = hard_reset_step(torch.full((1, 1), c, dtype=F64), state, p)
        spikes.append(s.item())
        membranes.append(state.membrane.item())
    assert spikes == GOLDEN_SPIKES and membranes == GOLDEN_MEMBRANE, (spikes, membranes)
    print(f"golden trajectory ok: spikes {spikes}, membrane {membranes}")


def rate_table(beta: float = 0.9, steps: int = 2000) -> list[tuple[float, ...]]:
    """``(c / theta, simulated, exact 1 / n, average output)`` for constant currents."""
    c = torch.tensor(CURRENTS, dtype=F64)
    b, theta = torch.tensor(beta, dtype=F64), torch.tensor(1.0, dtype=F64)
    m0 = HardResetState(torch.zeros(1, len(c), dtype=F64))
    spikes, _ = tf.run(hard_reset_step, c.expand(steps, 1, -1), m0, HardResetParams(b, theta))
    rho = theta * (1 - b)
    n = torch.where(c > rho, torch.ceil(torch.log(1 - rho / c) / torch.log(b)), torch.inf)
    exact = torch.where(c >= theta, 1.0, 1 / n)
    average = hard_reset_rate(c, b, theta)
    columns = (c, spikes.mean(0)[0], exact, average)
    return list(zip(*(t.tolist() for t in columns), strict=True))


def train(learning: str, task: tt.data.Digits, epochs: int, max_batches: int | None, seed: int):
    """Train ``HardResetLIF(64, 128) -> LI(128, 10)`` (the digits recipe); ``(net, history)``."""
    tt.training.seed_everything(seed)
    net = tt.nn.Sequential(HardResetLIF(64, 128), tt.nn.LI(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    trainer = tt.training.Trainer(
        net, opt, learning=learning, batch_size=32, scheduler=sched, progress=False,
        max_batches=max_batches,
    )  # fmt: skip
    return net, trainer.fit(task, epochs)


def main(epochs: int = 30, steps: int = 25, max_batches: int | None = None, seed: int = 0) -> dict:
    """Golden check, rate table, then trace and BPTT training on digits; returns the figures."""
    torch.set_num_threads(1)
    check_golden()
    print("\nc/theta  simulated  exact 1/n  average output   (beta 0.9, theta 1)")
    results: dict = {"rates": rate_table()}
    for c, simulated, exact, average in results["rates"]:
        print(f"{c:7.3f}  {simulated:9.4f}  {exact:9.4f}  {average:14.4f}")
    task = tt.data.Digits(steps=steps, seed=seed)
    for learning in ("trace", "bptt"):
        start = time.perf_counter()
        net, history = train(learning, task, epochs, max_batches, seed)
        results[learning] = acc = history["test_accuracy"][-1]
        seconds = time.perf_counter() - start
        print(
            f"\n{learning}: test accuracy {100 * acc:.2f}% after {epochs} epochs ({seconds:.1f} s)"
        )
        if learning == "trace":  # cosine of trace vs BPTT gradients, 256 test digits
            x, y = next(task.batches("test", 256, shuffle=False))
            fidelity = tt.gradient_fidelity(net, x, y, lambda o, y: F.cross_entropy(o[-1], y))
            results["fidelity"] = fidelity
            print("trace vs BPTT gradient cosine:")
            print("  " + ", ".join(f"{name} {cos:.3f}" for name, cos in fidelity.items()))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch of 8 batches per mode")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        main(epochs=1, steps=args.steps, max_batches=8, seed=args.seed)
    else:
        main(epochs=args.epochs, steps=args.steps, seed=args.seed)
