r"""Current-based (synaptic) LIF: the input charges a decaying synaptic current first.

Per step, with input current :math:`c = W x + b`, synaptic decay :math:`\alpha \in (0, 1)`:

.. math::
    I \leftarrow \alpha I + c, \qquad m \leftarrow \beta m + I, \qquad
    s = [m \ge \theta], \qquad m \leftarrow m - \theta s.

Two time constants: the synapse smooths the input over about :math:`1/(1-\alpha)` steps
before the membrane sees it (NIR's ``CubaLIF``).

Average output (trace learning): under a constant :math:`c` the current settles at
:math:`c/(1-\alpha)`, so the rate is the LIF rate of that current,
:math:`r = f(c/(1-\alpha);\ \beta, \theta)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .surrogates import heaviside

__all__ = ["SynapticParams", "SynapticState", "synaptic_average", "synaptic_step"]


class SynapticState(NamedTuple):
    """``current`` ``[B, F]`` (synaptic) and ``membrane`` ``[B, F]``."""

    current: Tensor
    membrane: Tensor


class SynapticParams(NamedTuple):
    """Membrane decay ``beta``, synaptic decay ``alpha``, threshold ``theta``, spike."""

    beta: Tensor | float
    alpha: Tensor | float
    theta: Tensor | float
    spike_fn: Callable[[Tensor], Tensor] = heaviside
    detach_reset: bool = False  # the reset carries no gradient (as e-prop)


def synaptic_step(
    c: Tensor, state: SynapticState, p: SynapticParams
) -> tuple[Tensor, SynapticState]:
    """One synaptic-LIF step. ``c: [B, F]``. Returns ``(spikes [B, F], new state)``."""
    alpha = torch.as_tensor(p.alpha, dtype=c.dtype, device=c.device)
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    i = torch.addcmul(c, state.current, alpha)
    u = torch.addcmul(i, state.membrane, beta)
    s = p.spike_fn(u - p.theta)
    return s, SynapticState(i, u - p.theta * (s.detach() if p.detach_reset else s))


def synaptic_average(
    c: Tensor,
    beta: Tensor,
    alpha: Tensor,
    theta: Tensor,
    rate_fn: Callable[[Tensor, Tensor, Tensor], Tensor],
) -> Tensor:
    r"""The rate :math:`f(c/(1-\alpha); \beta, \theta)` under a constant current ``c: [B, F]``."""
    return rate_fn(c / (1 - alpha), beta, theta)
