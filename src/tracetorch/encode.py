"""Encoders: turn real-valued features into spike sequences ``[T, B, F]`` (time first)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rate"]


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
    """
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise TypeError("x must be a floating-point tensor")
    if not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not 0.0 < max_prob <= 1.0:
        raise ValueError(f"max_prob must be in (0, 1], got {max_prob}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("x must lie in [0, 1] for rate coding; scale it first")
    p = (x * max_prob).unsqueeze(0).expand(steps, *x.shape)
    return torch.bernoulli(p, generator=generator)
