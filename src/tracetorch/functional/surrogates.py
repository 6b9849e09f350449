r"""Spike functions: a Heaviside step forward, a smooth surrogate derivative backward (BPTT).

With :math:`v = m - \theta` (membrane minus threshold), the spike is :math:`s = [v \ge 0]`.
Its derivative is zero almost everywhere, so BPTT replaces it by a surrogate:

- ``fast_sigmoid``: :math:`\partial s / \partial v = 1 / (1 + k|v|)^2` (SuperSpike),
- ``atan``: :math:`\partial s / \partial v = (k/2) / (1 + (\pi k v / 2)^2)`,

with slope ``k`` (``scale``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "SURROGATES",
    "atan",
    "fast_sigmoid",
    "get_surrogate",
    "heaviside",
    "surrogate_derivative",
]


def heaviside(v: Tensor) -> Tensor:
    """The spike ``[v >= 0]`` in ``v``'s dtype, no gradient."""
    return (v >= 0).to(v.dtype)


class _FastSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(v: Tensor, scale: float) -> Tensor:
        return heaviside(v)

    @staticmethod
    def setup_context(ctx, inputs, output):
        v, scale = inputs
        ctx.save_for_backward(v)
        ctx.scale = scale

    @staticmethod
    def backward(ctx, grad: Tensor):
        (v,) = ctx.saved_tensors
        return grad / (1 + ctx.scale * v.abs()) ** 2, None


class _ATan(torch.autograd.Function):
    @staticmethod
    def forward(v: Tensor, scale: float) -> Tensor:
        return heaviside(v)

    @staticmethod
    def setup_context(ctx, inputs, output):
        v, scale = inputs
        ctx.save_for_backward(v)
        ctx.scale = scale

    @staticmethod
    def backward(ctx, grad: Tensor):
        (v,) = ctx.saved_tensors
        k = ctx.scale
        return grad * (k / 2) / (1 + (math.pi * k * v / 2) ** 2), None


def fast_sigmoid(v: Tensor, scale: float = 10.0) -> Tensor:
    """Heaviside forward, ``1 / (1 + scale |v|)^2`` backward."""
    return _FastSigmoid.apply(v, scale)


def atan(v: Tensor, scale: float = 2.0) -> Tensor:
    """Heaviside forward, ``(scale/2) / (1 + (pi scale v / 2)^2)`` backward."""
    return _ATan.apply(v, scale)


def _fast_sigmoid_derivative(v: Tensor, scale: float = 10.0) -> Tensor:
    w = v.abs().mul_(scale).add_(1)  # one temporary, then in place
    return w.mul_(w).reciprocal_()


def _atan_derivative(v: Tensor, scale: float = 2.0) -> Tensor:
    w = v * (math.pi * scale / 2)
    return w.mul_(w).add_(1).reciprocal_().mul_(scale / 2)


fast_sigmoid.derivative = _fast_sigmoid_derivative  # type: ignore[attr-defined]
atan.derivative = _atan_derivative  # type: ignore[attr-defined]


def surrogate_derivative(spike_fn: Callable[..., Tensor], v: Tensor) -> Tensor:
    r"""The surrogate derivative :math:`\psi = \partial s/\partial v` of ``spike_fn`` at ``v``.

    Uses the function's ``derivative`` attribute when it has one (the registered surrogates),
    else autograd on one evaluation. It is what eligibility learning multiplies its traces by,
    the same factor BPTT uses at each step.
    """
    derivative = getattr(spike_fn, "derivative", None)
    if derivative is not None:
        return derivative(v)
    with torch.enable_grad():
        w = v.detach().requires_grad_()
        (g,) = torch.autograd.grad(spike_fn(w).sum(), w)
    return g


SURROGATES: dict[str, Callable[..., Tensor]] = {"fast_sigmoid": fast_sigmoid, "atan": atan}
"""Surrogate spike functions by name, the values ``surrogate=`` accepts (:func:`get_surrogate`)."""


def get_surrogate(name: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Look a surrogate up by name; a callable is returned as it is."""
    if callable(name):
        return name
    try:
        return SURROGATES[name]
    except KeyError:
        raise ValueError(
            f"unknown surrogate {name!r}; expected one of {sorted(SURROGATES)} or a callable"
        ) from None
