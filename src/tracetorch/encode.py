r"""Encoders: turn real-valued data into spike sequences ``[T, B, F]`` (time first).

- :func:`rate`: Bernoulli rate coding, :math:`s_t \sim \mathrm{Bernoulli}(p_{\max} x)`;
- :func:`poisson`: Poisson counts per step, :math:`s_t \sim \mathrm{Poisson}(\lambda_{\max} x)`;
- :func:`latency`: one spike per feature, earlier for larger values;
- :func:`delta`: send-on-delta events of a signal that changes over time.

Every encoder takes features in [0, 1] (``delta``: any real signal) and returns floats of
0.0/1.0 (``poisson``: counts), of the input's dtype and device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["delta", "latency", "poisson", "rate"]

LATENCY_METHODS = ("linear", "log")


def _check_features(x: Tensor, name: str = "x", unit: bool = True) -> None:
    """``x`` must be a finite floating-point tensor, in [0, 1] if ``unit``.

    NaN is checked first and on its own: it fails every comparison, so a range check
    (``x.min() < 0``) alone lets it through, and it then surfaces deep in torch (an internal
    assert in ``bernoulli``, an out-of-bounds index in ``latency``) or silently (``delta``).
    """
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor")
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite value(s)")
    if unit and x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1]; scale it first")


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    return steps


def rate(
    x: Tensor, steps: int, *, max_prob: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Bernoulli rate coding: each step, feature ``x_f`` in [0, 1] spikes with probability
    ``max_prob * x_f``.

    Args:
        x: features in [0, 1], ``[B, F]`` (any trailing shape).
        steps: number of timesteps ``T``.
        max_prob: spike probability of a feature equal to 1.
        generator: for reproducible spikes.

    Returns:
        spikes (0.0/1.0) of shape ``[T, *x.shape]``, dtype of ``x``.

    Example:
        >>> tt.encode.rate(torch.tensor([[0.0, 0.5, 1.0]]), 4).shape
        torch.Size([4, 1, 3])
    """
    _check_features(x)
    _check_steps(steps)
    if not 0.0 < max_prob <= 1.0:
        raise ValueError(f"max_prob must be in (0, 1], got {max_prob}")
    p = (x * max_prob).unsqueeze(0).expand(steps, *x.shape)
    return torch.bernoulli(p, generator=generator)


def poisson(
    x: Tensor, steps: int, *, max_rate: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Poisson rate coding: each step, feature ``x_f`` emits
    :math:`n \sim \mathrm{Poisson}(\lambda_{\max} x_f)` spikes (a count, possibly > 1).

    The limit of many Bernoulli sub-steps: use it when several spikes per step are allowed
    (a coarse time grid); :func:`rate` keeps one spike per step at most.

    Args:
        x: features in [0, 1], ``[B, F]`` (any trailing shape).
        steps: number of timesteps ``T``.
        max_rate: mean spikes per step :math:`\lambda_{\max}` of a feature equal to 1 (> 0).
        generator: for reproducible spikes.

    Returns:
        spike counts (non-negative whole floats) of shape ``[T, *x.shape]``.
    """
    _check_features(x)
    _check_steps(steps)
    if not max_rate > 0 or math.isinf(max_rate):
        raise ValueError(f"max_rate must be a finite number > 0, got {max_rate}")
    lam = (x * max_rate).unsqueeze(0).expand(steps, *x.shape).contiguous()
    return torch.poisson(lam, generator=generator)


def latency(
    x: Tensor,
    steps: int,
    *,
    method: str = "linear",
    tau: float | None = None,
    threshold: float = 0.0,
) -> Tensor:
    r"""Latency (time-to-first-spike) coding: each feature spikes once, larger values earlier.

    Spike step of feature ``x_f``:

    - ``"linear"``: :math:`t_f = \mathrm{round}\big((1 - x_f)(T - 1)\big)`: 1 at step 0,
      0 at the last step;
    - ``"log"``: :math:`t_f = \min\big(\mathrm{round}(\tau \ln(1/x_f)), T - 1\big)`, the time
      an RC membrane charged by ``x_f`` takes to reach a fixed level; ``tau`` defaults to
      ``(T - 1) / ln(100)`` so that ``x_f = 0.01`` spikes at the last step.

    Features ``x_f <= threshold`` stay silent.

    Args:
        x: features in [0, 1], ``[B, F]`` (any trailing shape).
        steps: number of timesteps ``T``.
        method: ``"linear"`` or ``"log"``.
        tau: time constant of ``"log"``, in steps.
        threshold: features at or below it emit no spike.

    Returns:
        spikes (0.0/1.0) of shape ``[T, *x.shape]``, at most one per feature.
    """
    _check_features(x)
    _check_steps(steps)
    if method not in LATENCY_METHODS:
        raise ValueError(f"method must be one of {LATENCY_METHODS}, got {method!r}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    if method == "linear":
        if tau is not None:
            raise ValueError("tau applies to method='log' only")
        t = torch.round((1 - x) * (steps - 1))
    else:
        if tau is None:
            tau = (steps - 1) / math.log(100.0) if steps > 1 else 1.0
        if not tau > 0:
            raise ValueError(f"tau must be > 0 steps, got {tau}")
        t = torch.round(tau * -torch.log(x.clamp_min(1e-30))).clamp(max=steps - 1)
    out = torch.zeros(steps, *x.shape, dtype=x.dtype, device=x.device)
    out.scatter_(0, t.long().unsqueeze(0), 1.0)
    return out * (x > threshold).to(x.dtype)


def delta(
    x: Tensor,
    threshold: float = 0.1,
    *,
    off: bool = True,
    reference: Tensor | None = None,
) -> Tensor:
    r"""Send-on-delta coding of a signal ``x`` ``[T, ...]`` (an event camera's pixel rule).

    Each channel keeps a reference level :math:`\ell` (``reference``, default 0). At step
    :math:`t` an **ON** event fires if :math:`x_t - \ell \ge \vartheta`, an **OFF** event if
    :math:`\ell - x_t \ge \vartheta`; on either event the reference moves to :math:`x_t`. A
    constant signal is silent after its onset; a slow drift fires once per
    :math:`\vartheta` of change.

    Args:
        x: signal ``[T, B, F]`` (any trailing shape), real-valued.
        threshold: the change :math:`\vartheta > 0` that fires an event.
        off: also emit OFF events, concatenated after the ON events along the last
            dimension (``[T, B, 2F]``); ``False``: ON events only (``[T, B, F]``).
        reference: initial reference level, broadcastable to ``x[0]``.

    Returns:
        events (0.0/1.0), ``[T, ..., 2F]`` with ``off`` else ``[T, ..., F]``.

    Example:
        >>> sig = torch.tensor([0.0, 0.05, 0.2, 0.2, 0.0]).view(5, 1, 1)
        >>> tt.encode.delta(sig, 0.1)[:, 0]      # columns ON, OFF
        tensor([[0., 0.], [0., 0.], [1., 0.], [0., 0.], [0., 1.]])
    """
    _check_features(x, unit=False)
    if x.dim() < 2:
        raise ValueError(
            f"x must be a sequence [T, ...] with at least 2 dims, got {tuple(x.shape)}"
        )
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    if x.shape[0] == 0:
        shape = (*x.shape[:-1], 2 * x.shape[-1]) if off else x.shape
        return x.new_zeros(shape)
    level = torch.zeros_like(x[0]) if reference is None else torch.as_tensor(reference).to(x)
    _check_features(level, "reference", unit=False)
    try:
        level = level.expand_as(x[0]).clone()
    except RuntimeError:
        raise ValueError(
            f"reference must broadcast to one step of x, {tuple(x.shape[1:])}, got "
            f"{tuple(level.shape)}"
        ) from None
    on, offs = torch.zeros_like(x), torch.zeros_like(x)
    for t in range(x.shape[0]):
        up = x[t] - level >= threshold
        down = level - x[t] >= threshold
        on[t] = up.to(x.dtype)
        offs[t] = down.to(x.dtype)
        level = torch.where(up | down, x[t], level)
    return torch.cat([on, offs], dim=-1) if off else on
