r"""Recurrent LIF: a LIF layer that also feeds its own spikes of the previous step back.

Per step, with feed-forward current :math:`c = W x + b` and recurrent weights :math:`V`
``[F, F]`` (row ``j`` = inputs of neuron ``j``):

.. math::
    m \leftarrow \beta m + c + V s_{t-1}, \qquad s_t = [m \ge \theta], \qquad
    m \leftarrow m - \theta s_t.

Average output (trace learning): the firing rates :math:`r` that are consistent with their own
feedback, the fixed point of :math:`r = f(c + V r;\ \beta, \theta)` for the LIF rate function
:math:`f`, approximated by ``iterations`` differentiable iterations from :math:`r_0 = f(c)`
(damped by ``1/2`` so that a strongly coupled layer does not oscillate). It is a rate model:
what the recurrence adds in *timing* is invisible to it (see ``docs/neurons.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .surrogates import heaviside

__all__ = ["RLIFParams", "RLIFState", "rlif_average", "rlif_step"]


class RLIFState(NamedTuple):
    """``membrane`` ``[B, F]`` and the ``spikes`` ``[B, F]`` of the last step."""

    membrane: Tensor
    spikes: Tensor


class RLIFParams(NamedTuple):
    """Decay ``beta``, threshold ``theta`` (``[F]``), ``recurrent`` weights ``[F, F]``, spike."""

    beta: Tensor | float
    theta: Tensor | float
    recurrent: Tensor
    spike_fn: Callable[[Tensor], Tensor] = heaviside
    detach_reset: bool = False  # the reset carries no gradient (as e-prop)


def rlif_step(c: Tensor, state: RLIFState, p: RLIFParams) -> tuple[Tensor, RLIFState]:
    """One RLIF step. ``c: [B, F]``. Returns ``(spikes [B, F], new state)``."""
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    u = torch.addcmul(c, state.membrane, beta) + state.spikes @ p.recurrent.t()
    s = p.spike_fn(u - p.theta)
    return s, RLIFState(u - p.theta * (s.detach() if p.detach_reset else s), s)


def rlif_average(
    c: Tensor,
    beta: Tensor,
    theta: Tensor,
    recurrent: Tensor,
    rate_fn: Callable[[Tensor, Tensor, Tensor], Tensor],
    iterations: int = 8,
) -> Tensor:
    r"""The self-consistent rate :math:`r = f(c + V r)`, ``iterations`` damped steps from ``f(c)``.

    ``c: [B, F]``. Differentiable in everything (the iterations are unrolled).
    """
    r = rate_fn(c, beta, theta)
    for _ in range(iterations):
        r = 0.5 * r + 0.5 * rate_fn(c + r @ recurrent.t(), beta, theta)
    return r
