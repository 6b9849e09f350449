r"""Constructor checks and the mapping of stored (raw) parameters to their constrained values.

Decays (:math:`\beta`, :math:`d`, :math:`\alpha`) are stored as logits and thresholds as
inverse softplus, so any optimizer step leaves them in range. Two guards make that true in
floating point, not only in exact arithmetic:

- a decay is computed in the layer's **state dtype** (float32 for float16/bfloat16 layers:
  0.999 rounds to exactly 1.0 in bfloat16) and clamped below the largest number under 1 of
  that dtype, so ``1 - beta`` never reaches 0 (``sigmoid(17.0) == 1.0`` in float32);
- a threshold is clamped into ``[THRESHOLD_MIN, THRESHOLD_MAX]``.

Outside the clamps the gradient is zero, as for any clamp: the parameter stops moving
instead of becoming NaN.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "THRESHOLD_MAX",
    "THRESHOLD_MIN",
    "broadcast",
    "check_positive_int",
    "check_threshold",
    "check_unit_interval",
    "decay_logit",
    "positive_raw",
    "state_dtype",
    "to_decay",
    "to_threshold",
]

THRESHOLD_MIN = 1e-6
THRESHOLD_MAX = 1e6


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of states, traces and decays of a layer whose parameters are ``dtype``.

    float16 and bfloat16 layers keep them in float32 (their decays near 1 round to 1, and a
    membrane that decays by 0.999 per step cannot be represented); others keep their dtype.
    """
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def to_decay(raw: Tensor) -> Tensor:
    """``sigmoid(raw)`` in the state dtype, strictly inside (0, 1) in that dtype."""
    dtype = state_dtype(raw.dtype)
    one_below = 1.0 - torch.finfo(dtype).eps / 2
    return torch.sigmoid(raw.to(dtype)).clamp(max=one_below)


def to_threshold(raw: Tensor) -> Tensor:
    """``softplus(raw)`` in the state dtype, clamped into ``[THRESHOLD_MIN, THRESHOLD_MAX]``."""
    return F.softplus(raw.to(state_dtype(raw.dtype))).clamp(THRESHOLD_MIN, THRESHOLD_MAX)


def decay_logit(value: Tensor) -> Tensor:
    """The raw (logit) value of a decay."""
    return torch.logit(value)


def positive_raw(value: Tensor) -> Tensor:
    """The raw value ``softplus^-1(value) = value + log(1 - exp(-value))`` of a positive value."""
    return value + torch.log(-torch.expm1(-value))


def check_positive_int(value: Any, name: str) -> int:
    """``value`` if it is a positive int; a TypeError or ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _as_float64(value: float | Tensor, name: str) -> Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}") from None


def check_unit_interval(value: float | Tensor, name: str) -> Tensor:
    """``value`` as float64 if every element is in (0, 1), also after rounding to float32."""
    t = _as_float64(value, name)
    t32 = t.float()  # 1 - 1e-12 would round to 1.0 in a float32 layer (c / 0)
    if not bool(((t > 0) & (t < 1) & (t32 > 0) & (t32 < 1)).all()):
        raise ValueError(f"{name} must be in (0, 1) (also after rounding to float32), got {value}")
    return t


def check_threshold(value: float | Tensor, name: str = "threshold") -> Tensor:
    """``value`` as float64 if every element is in ``[THRESHOLD_MIN, THRESHOLD_MAX]``."""
    t = _as_float64(value, name)
    # float32 1e-6 is a hair below float64 1e-6: compare with a relative slack of 1e-6
    if not bool(((t >= THRESHOLD_MIN * (1 - 1e-6)) & (t <= THRESHOLD_MAX * (1 + 1e-6))).all()):
        raise ValueError(
            f"{name} must be in [{THRESHOLD_MIN:g}, {THRESHOLD_MAX:g}] (scale the input "
            f"currents instead), got {value}"
        )
    return t


def check_nonnegative(value: float | Tensor, name: str) -> Tensor:
    """``value`` as float64 if every element is finite and >= 0."""
    t = _as_float64(value, name)
    if not bool((torch.isfinite(t) & (t >= 0)).all()):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return t


def broadcast(value: Tensor, size: int, name: str) -> Tensor:
    """A 0-dim ``value`` repeated ``size`` times, or a ``[size]`` one copied; else ValueError."""
    if value.dim() == 0:
        return value.expand(size).clone()
    if value.shape != (size,):
        raise ValueError(
            f"{name} must be a float or a tensor of shape ({size},), got {tuple(value.shape)}"
        )
    return value.clone()
