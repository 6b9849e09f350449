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
    "trace_weights",
    "trace_mean",
    "stationary_value",
    "decay_from_horizon",
    "horizon_from_decay",
    "decay_from_halflife",
    "halflife_from_decay",
    "decay_from_tau",
]


#: Steps larger than this (elements of ``x[0]``) with a per-channel decay take the in-place
#: recursion on the CPU rather than the weighted sum: measured on a 1-thread Xeon, the sum wins
#: below (``[64, 64]``: 0.8 vs 2.5 us/step), the loop above (``[64, 1024]``: 14 vs 57 us/step).
PER_CHANNEL_LOOP_MIN = 8192


def trace_step(t: Tensor, x: Tensor, d: Tensor | float) -> Tensor:
    """One trace update ``t * d + x``. Shapes broadcast: ``t, x: [B, F]``, ``d: [F]``."""
    return t * d + x


def trace_weights(d: Tensor | float, steps: int, like: Tensor | None = None) -> Tensor:
    r"""The weights :math:`w_k = d^{T-1-k}`, ``k = 0..T-1``, of :func:`trace_run`'s closed form.

    Args:
        d: decay, 0-dim (shared) or per channel.
        steps: ``T``, an int >= 0 (0 gives an empty ``[0, *d.shape]``).
        like: a tensor whose dtype and device the weights take (default: ``d``'s).

    Returns:
        ``[T, *d.shape]``, oldest input first. Powers below the smallest normal float are 0
        (they would be subnormal, slow to multiply, and below float resolution anyway). The
        last ``r`` rows are the weights of a sequence of ``r`` steps, so one call serves every
        chunk of a stream.
    """
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be an int, got {type(steps).__name__}")
    if steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps}")
    ref = like if like is not None else torch.as_tensor(d)
    d = torch.as_tensor(d, dtype=ref.dtype, device=ref.device)
    powers = torch.arange(steps - 1, -1, -1, device=ref.device, dtype=ref.dtype)
    w = d.unsqueeze(0) ** powers.view(steps, *(1,) * d.dim())
    return w.masked_fill_(w < torch.finfo(w.dtype).tiny, 0.0)


def trace_run(t: Tensor, x: Tensor, d: Tensor | float, *, weights: Tensor | None = None) -> Tensor:
    r"""The trace after a whole sequence, without a Python loop where it pays.

    .. math:: t_T = d^T t_0 + \sum_{k=0}^{T-1} d^{T-1-k} x_k

    How it is evaluated (all forms agree with ``T`` calls of :func:`trace_step` to float
    rounding; ``T = 1`` is exactly :func:`trace_step`):

    - one decay for all channels (``d`` a Python float or a tensor of one element): the sum is
      one matrix-vector product ``w @ x.view(T, -1)``, a single read of ``x``; with ``d`` a
      float on the CPU the whole update is one BLAS call
      (``addmv(t, x.view(T, -1).T, w, beta=d^T)``). Pass a float whenever the decay is shared:
      it is the fastest form by far;
    - one decay per channel: the weighted sum ``(x * w).sum(0)`` (one temporary of ``x``'s
      size; bound it by passing chunks), or, on the CPU for steps of more than
      ``PER_CHANNEL_LOOP_MIN`` elements and without autograd, the recursion itself as one fused
      multiply-add per step in one buffer (faster there, no temporary).

    Numerics: the weights are powers computed directly (:func:`trace_weights`), not by
    repeated multiplication. In float32 the closed form is as accurate as the float32
    recursion or better: against a float64 reference both stay within ``1e-5`` relative for
    ``T = 10^4`` steps (in chunks of 64) and ``d = 0.999`` (``tests/test_fastpath.py``).

    Args:
        t: trace before the sequence, ``[B, F]`` (any shape of one step).
        x: inputs, ``[T, B, F]``.
        d: decay in (0, 1): one per channel (broadcastable to ``t``, usually ``[F]``), or one
            value for all.
        weights: optional ``trace_weights(d, T', like=x)`` for some ``T' >= T`` (its last ``T``
            rows are used), to compute them once for many chunks.

    Returns:
        the trace after the last step, a new tensor of ``t``'s shape.
    """
    steps = x.shape[0]
    if steps == 0:
        return t.clone()
    if steps == 1:
        return trace_step(t, x[0], d)
    if isinstance(d, float) and x.device.type == "cpu" and t.is_contiguous():
        # A shared decay given as a number: the whole update is one BLAS call,
        # t <- d^T t + X^T w (matrix-vector product with the scaled trace added in).
        if weights is None or weights.shape[0] < steps:
            weights = trace_weights(d, steps, like=x)
        w = weights[weights.shape[0] - steps :].reshape(steps)
        x2 = x.reshape(steps, -1)
        return torch.addmv(t.reshape(-1), x2.t(), w, beta=d**steps).view(t.shape)
    d = torch.as_tensor(d, dtype=x.dtype, device=x.device)
    shared = d.numel() == 1
    if shared:
        d = d.reshape(())
    grad = torch.is_grad_enabled() and (t.requires_grad or x.requires_grad or d.requires_grad)
    if not shared and x.device.type == "cpu" and not grad and x[0].numel() > PER_CHANNEL_LOOP_MIN:
        out = t.clone()
        for x_k in x.unbind(0):
            torch.addcmul(x_k, out, d, out=out)
        return out
    if weights is None or weights.shape[0] < steps:
        weights = trace_weights(d, steps, like=x)
    w = weights[weights.shape[0] - steps :]
    if shared:
        s = (w.reshape(steps) @ x.reshape(steps, -1)).view(x.shape[1:])
    else:
        lead = (1,) * (x.dim() - 1 - d.dim())
        s = (x * w.view(steps, *lead, *d.shape)).sum(0)
    return s.add_(t * d**steps)


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
        a = a / (1 - d ** _exponent(steps, d))
    return a


def _exponent(steps: int, d: Tensor | float) -> int:
    """``steps`` (at least 1) as an exponent of ``d``; capped for 16-bit ``d``, where a power
    above 65504 cannot be converted (and ``d**60000`` is 0 for every 16-bit ``d < 1``)."""
    n = max(int(steps), 1)
    if isinstance(d, Tensor) and d.dtype in (torch.float16, torch.bfloat16):
        n = min(n, 60000)
    return n


def stationary_value(x: Tensor | float, d: Tensor | float) -> Tensor | float:
    """The level ``x / (1 - d)`` a trace (or leaky membrane) settles at under constant ``x``."""
    return x / (1 - d)


def decay_from_horizon(horizon: float) -> float:
    """Decay ``d = 1 - 1/horizon``: a trace that averages over about ``horizon`` steps.

    ``horizon`` must be finite and > 1: an infinite horizon is ``d = 1``, a sum that never
    forgets and has no stationary value, which no trace or membrane accepts.
    """
    _check_number(horizon, "horizon")
    if not (horizon > 1 and math.isfinite(horizon)):
        raise ValueError(f"horizon must be > 1 and finite (in steps), got {horizon}")
    return _decay_below_one(1.0 - 1.0 / horizon, "horizon", horizon)


def horizon_from_decay(d: float) -> float:
    """The averaging window ``1 / (1 - d)`` of decay ``d``, in steps."""
    _check_decay(d, "d")
    return 1.0 / (1.0 - d)


def decay_from_halflife(halflife: float) -> float:
    """Decay ``0.5 ** (1 / halflife)``: an input's weight halves every ``halflife`` steps.

    ``halflife`` must be finite and > 0 (an infinite one is ``d = 1``, no decay at all).
    """
    _check_number(halflife, "halflife")
    if not (halflife > 0 and math.isfinite(halflife)):
        raise ValueError(f"halflife must be > 0 and finite (in steps), got {halflife}")
    return _decay_below_one(0.5 ** (1.0 / halflife), "halflife", halflife)


def halflife_from_decay(d: float) -> float:
    """Steps after which an input's weight in the trace has halved: ``ln 0.5 / ln d``."""
    _check_decay(d, "d")
    return math.log(0.5) / math.log(d)


def decay_from_tau(tau: float) -> float:
    """Decay ``exp(-1/tau)`` of a time constant ``tau`` (in steps), as for a membrane.

    ``tau`` must be finite and > 0 (an infinite one is ``d = 1``, a membrane that never leaks).
    """
    _check_number(tau, "tau")
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"tau must be > 0 and finite (in steps), got {tau}")
    return _decay_below_one(math.exp(-1.0 / tau), "tau", tau)


def _check_number(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number (of steps), got {type(value).__name__}")


def _decay_below_one(d: float, name: str, value: float) -> float:
    """``d``, unless it rounded to 1.0 (a finite but huge ``value``) or to 0.0 (a tiny one):
    a decay must be in (0, 1)."""
    if d <= 0.0:
        raise ValueError(
            f"{name}={value} gives a decay that rounds to 0.0; a decay must be in (0, 1)"
        )
    if d >= 1.0:
        raise ValueError(
            f"{name}={value} gives a decay that rounds to 1.0 in float64; a decay must be < 1"
        )
    return d


def _check_decay(d: float, name: str) -> None:
    if not 0.0 < d < 1.0:
        raise ValueError(f"{name} must be a decay in (0, 1), got {d}")
