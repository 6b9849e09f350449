r"""Adaptive LIF: each spike raises the neuron's threshold, which relaxes back with decay alpha.

Per step, with current :math:`c = W x + b`, adaptation :math:`A` (a trace of the neuron's
own spikes), strength :math:`\rho \ge 0` and adaptation decay :math:`\alpha \in (0, 1)`:

.. math::
    \vartheta = \theta + \rho A, \qquad m \leftarrow \beta m + c, \qquad
    s = [m \ge \vartheta], \qquad m \leftarrow m - \vartheta s, \qquad A \leftarrow \alpha A + s.

A firing neuron becomes harder to drive: the layer forgets a constant input over about
:math:`1/(1-\alpha)` steps and responds to *changes*, a memory slower than its membrane.

Average output (trace learning): at a steady rate :math:`r` the adaptation settles at
:math:`r/(1-\alpha)`, so the rate is the fixed point of

.. math:: r = f\big(c;\ \beta,\ \theta + \rho\, r/(1-\alpha)\big),

unique because :math:`f` falls as its threshold rises. It is found by bisection without a
graph; its gradient is the implicit one,
:math:`\partial r = \partial f / (1 - \partial f/\partial r)` (exact, elementwise), so no
iteration is unrolled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .surrogates import heaviside

__all__ = ["ALIFParams", "ALIFState", "alif_average", "alif_step"]


class ALIFState(NamedTuple):
    """``membrane`` ``[B, F]`` and ``adaptation`` ``[B, F]`` (the trace of own spikes)."""

    membrane: Tensor
    adaptation: Tensor


class ALIFParams(NamedTuple):
    """``beta``, ``theta``, adaptation strength ``rho`` and decay ``alpha`` (``[F]``), spike."""

    beta: Tensor | float
    theta: Tensor | float
    rho: Tensor | float
    alpha: Tensor | float
    spike_fn: Callable[[Tensor], Tensor] = heaviside
    detach_reset: bool = False  # the reset carries no gradient (as e-prop)


def alif_step(c: Tensor, state: ALIFState, p: ALIFParams) -> tuple[Tensor, ALIFState]:
    """One ALIF step. ``c: [B, F]``. Returns ``(spikes [B, F], new state)``."""
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    alpha = torch.as_tensor(p.alpha, dtype=c.dtype, device=c.device)
    threshold = p.theta + p.rho * state.adaptation
    u = torch.addcmul(c, state.membrane, beta)
    s = p.spike_fn(u - threshold)
    reset = s.detach() if p.detach_reset else s
    return s, ALIFState(u - threshold * reset, torch.addcmul(s, state.adaptation, alpha))


def alif_average(
    c: Tensor,
    beta: Tensor,
    theta: Tensor,
    rho: Tensor,
    alpha: Tensor,
    rate_fn: Callable[[Tensor, Tensor, Tensor], Tensor],
    bisections: int = 40,
) -> Tensor:
    r"""The steady rate :math:`r = f(c; \beta, \theta + \rho r / (1 - \alpha))`, ``c: [B, F]``.

    Value: bisection on :math:`[0, 1]` (``bisections`` halvings, no graph). Gradient: implicit,
    through one evaluation of ``f`` at the fixed point, scaled by
    :math:`1 / (1 - \partial f/\partial r)`.
    """
    gain = rho / (1 - alpha)
    with torch.no_grad():
        lo, hi = torch.zeros_like(c), torch.ones_like(c)
        cd, bd, td, gd = c.detach(), beta.detach(), theta.detach(), gain.detach()
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            above = rate_fn(cd, bd, td + gd * mid) < mid  # r - f(r) rises with r
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, mid)
        fixed = 0.5 * (lo + hi)
    with torch.enable_grad():
        r = fixed.detach().requires_grad_()
        f_r = rate_fn(cd, bd, td + gd * r)
        (slope,) = torch.autograd.grad(f_r.sum(), r)
    f = rate_fn(c, beta, theta + gain * fixed)
    return fixed + (f - f.detach()) / (1 - slope)
