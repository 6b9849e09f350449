r"""Input traces: the decaying memory every tracetorch layer keeps of its input.

A trace of input :math:`x` with decay :math:`d \in (0, 1)` (per input channel) is

.. math::
    t_n = d\, t_{n-1} + x_n, \qquad t_0 = 0.

Under a constant input :math:`x` it settles at the **stationary value** :math:`x / (1 - d)`,
so the **average input** of the recent window (about :math:`1/(1-d)` steps) is

.. math::
    a = t\,(1 - d) \quad\text{or, bias-corrected,}\quad a = \frac{t\,(1 - d)}{1 - d^n},

where :math:`n` is the number of steps since the trace was reset. The corrected form is the
exact exponentially weighted mean of the :math:`n` inputs seen so far (weights
:math:`d^{n-k}(1-d)/(1-d^n)` that sum to one); the uncorrected one underestimates the mean of
a young trace by the factor :math:`1 - d^n`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "trace_step",
    "trace_run",
    "trace_mean",
    "stationary_value",
    "decay_from_horizon",
    "horizon_from_decay",
    "decay_from_halflife",
    "halflife_from_decay",
    "decay_from_tau",
]


def trace_step(t: Tensor, x: Tensor, d: Tensor | float) -> Tensor:
    """One trace update ``t * d + x``. Shapes broadcast: ``t, x: [B, F]``, ``d: [F]``."""
    return t * d + x


def trace_run(t: Tensor, x: Tensor, d: Tensor) -> Tensor:
    r"""The trace after a whole sequence, in closed form (no loop over time).

    .. math:: t_T = d^T t_0 + \sum_{k=0}^{T-1} d^{T-1-k} x_k

    Args:
        t: trace before the sequence, ``[B, F]``.
        x: inputs, ``[T, B, F]``.
        d: decay per channel, ``[F]``, in (0, 1).

    Returns:
        the trace after the last step, ``[B, F]``. Equal (to float rounding) to ``T`` calls
        of :func:`trace_step`.
    """
    steps = x.shape[0]
    d = d.to(x.dtype)
    powers = torch.arange(steps - 1, -1, -1, device=x.device, dtype=x.dtype)
    weights = d.unsqueeze(0) ** powers.unsqueeze(1)  # [T, F]: d^(T-1-k)
    return t * d**steps + torch.einsum("tbf,tf->bf", x, weights)


def trace_mean(t: Tensor, d: Tensor, steps: int | None = None) -> Tensor:
    r"""The average input ``a = t (1 - d)``, divided by ``1 - d^steps`` when ``steps`` is given.

    Args:
        t: trace, ``[..., F]``.
        d: decay, broadcastable to ``t``.
        steps: steps since the trace was reset, for bias correction; ``None`` turns it off.
            With ``steps == 0`` the trace is empty and ``a`` is zero.

    Differentiable in ``t`` and ``d``.
    """
    a = t * (1 - d)
    if steps is not None:
        a = a / (1 - d ** max(int(steps), 1))
    return a


def stationary_value(x: Tensor | float, d: Tensor | float) -> Tensor | float:
    """The level ``x / (1 - d)`` a trace (or leaky membrane) settles at under constant ``x``."""
    return x / (1 - d)


def decay_from_horizon(horizon: float) -> float:
    """Decay ``d = 1 - 1/horizon``: a trace that averages over about ``horizon`` steps."""
    if not horizon > 1:
        raise ValueError(f"horizon must be > 1 step, got {horizon}")
    return 1.0 - 1.0 / horizon


def horizon_from_decay(d: float) -> float:
    """The averaging window ``1 / (1 - d)`` of decay ``d``, in steps."""
    _check_decay(d, "d")
    return 1.0 / (1.0 - d)


def decay_from_halflife(halflife: float) -> float:
    """Decay ``0.5 ** (1 / halflife)``: an input's weight halves every ``halflife`` steps."""
    if not halflife > 0:
        raise ValueError(f"halflife must be > 0 steps, got {halflife}")
    return 0.5 ** (1.0 / halflife)


def halflife_from_decay(d: float) -> float:
    """Steps after which an input's weight in the trace has halved: ``ln 0.5 / ln d``."""
    _check_decay(d, "d")
    return math.log(0.5) / math.log(d)


def decay_from_tau(tau: float) -> float:
    """Decay ``exp(-1/tau)`` of a time constant ``tau`` (in steps), as for a membrane."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0 steps, got {tau}")
    return math.exp(-1.0 / tau)


def _check_decay(d: float, name: str) -> None:
    if not 0.0 < d < 1.0:
        raise ValueError(f"{name} must be a decay in (0, 1), got {d}")
