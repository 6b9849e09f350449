r"""Average outputs: what a neuron emits on average under a constant input current :math:`c`.

These are the local graphs of trace learning: a layer reconstructs its average input
:math:`a` from its trace, computes :math:`c = W a + b` and differentiates one of these.

LIF firing rates (spikes per step, in [0, 1]) for the discrete LIF with subtractive reset.
Summing :math:`m_t = \beta m_{t-1} + c - \theta s_t` over time gives the exact balance
:math:`r = (c - (1-\beta)\bar m)/\theta`, with :math:`\bar m` the mean membrane; the rate
functions differ in how they estimate :math:`\bar m`:

- ``mean_field``: :math:`\bar m \approx \theta/2` (membrane uniform between reset and
  threshold), clamped to [0, 1] with softplus edges so that silent and saturated neurons keep
  a small gradient:

  .. math:: r = \mathrm{smoothclamp}\big(c/\theta - (1-\beta)/2\big)

- ``log``: the leak-aware rate of a membrane that rises from 0 to :math:`\theta` towards its
  stationary value :math:`c/(1-\beta)`:

  .. math:: r = \frac{\ln\beta}{\ln\big(1 - \theta(1-\beta)/c\big)} \quad (c > (1-\beta)\theta)

Readouts: LI's average membrane is the stationary value :math:`c/(1-\beta)`; LIS's average
output is :math:`\mathrm{softmax}(c/(1-\beta))`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "smooth_clamp",
    "mean_field_rate",
    "log_rate",
    "li_average",
    "lis_average",
    "RATE_FUNCTIONS",
    "get_rate_fn",
]

RateFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def smooth_clamp(x: Tensor, sharpness: float = 10.0) -> Tensor:
    """``clamp(x, 0, 1)`` with softplus corners: ``(softplus(k x) - softplus(k (x - 1))) / k``."""
    k = sharpness
    return (F.softplus(k * x) - F.softplus(k * (x - 1))) / k


def mean_field_rate(c: Tensor, beta: Tensor, theta: Tensor) -> Tensor:
    """Smoothed mean-field LIF rate ``smoothclamp(c / theta - (1 - beta) / 2)`` (broadcasts)."""
    return smooth_clamp(c / theta - (1 - beta) / 2)


def log_rate(c: Tensor, beta: Tensor, theta: Tensor) -> Tensor:
    """Leak-aware LIF rate ``ln(beta) / ln(1 - theta (1 - beta) / c)``, 0 below rheobase, <= 1."""
    rheobase = theta * (1 - beta)
    above = c > rheobase
    # Keep the log's argument in (0, 1) on both branches so no NaN reaches the gradient.
    safe_c = torch.where(above, c, rheobase + 1)
    z = 1 - rheobase / safe_c
    r = torch.log(beta) / torch.log(z.clamp_min(torch.finfo(c.dtype).tiny))
    return torch.where(above, r.clamp(max=1.0), torch.zeros_like(r))


def li_average(c: Tensor, beta: Tensor) -> Tensor:
    """Stationary LI membrane ``c / (1 - beta)``."""
    return c / (1 - beta)


def lis_average(c: Tensor, beta: Tensor) -> Tensor:
    """Stationary LIS output ``softmax(c / (1 - beta))`` over the last dimension."""
    return torch.softmax(c / (1 - beta), dim=-1)


RATE_FUNCTIONS: dict[str, RateFn] = {"mean_field": mean_field_rate, "log": log_rate}


def get_rate_fn(name: str | RateFn) -> RateFn:
    """Look a LIF rate function up by name; a callable ``f(c, beta, theta)`` is returned as is."""
    if callable(name):
        return name
    try:
        return RATE_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown rate_fn {name!r}; expected one of {sorted(RATE_FUNCTIONS)} or a callable"
        ) from None
