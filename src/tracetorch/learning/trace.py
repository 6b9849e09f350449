r"""Trace learning inside PyTorch autograd.

A tracetorch layer called on an input becomes **one** autograd node, whatever the number of
timesteps. Its forward advances the layer's state without building a graph and returns the
actual output. Its backward builds the layer's local graph of one step from the state **at
backward time**:

.. math::
    a = \bar t(d), \qquad r = f(W a + b;\ \beta, \theta, \dots)

and differentiates :math:`r` against the learning signal :math:`g = \partial L/\partial
\text{output}` (summed over the timesteps the loss touched). It fills the gradients of the
parameters and returns :math:`\partial L/\partial a` as the gradient of the input, which is
the learning signal of the layer upstream. Nothing is saved per timestep, so memory and
backward cost do not grow with the sequence length.

A layer takes part by providing four hooks (see :class:`tracetorch.nn.TraceLayer`):
``trace_parameters()``, ``advance(x)``, ``average_input()`` and ``average_output(a)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["TraceFunction", "trace_apply", "local_gradients", "trace_backward"]


def local_gradients(
    layer, learning_signal: Tensor, params: Sequence[torch.nn.Parameter] | None = None
) -> tuple[Tensor, list[Tensor | None]]:
    """Differentiate ``layer``'s local graph against a learning signal.

    Args:
        layer: a tracetorch layer (provides ``average_input`` and ``average_output``).
        learning_signal: ``dL/d(average output)``, shape ``[B, out_features]``.
        params: the parameters to differentiate; default ``layer.trace_parameters()``.

    Returns:
        ``(dL/da [B, in_features], [grad for each of params, None where it needs none])``.
    """
    if params is None:
        params = layer.trace_parameters()
    with torch.enable_grad():
        a = layer.average_input()
        if not a.requires_grad:
            a.requires_grad_()
        r = layer.average_output(a)
        wanted = [p for p in params if p.requires_grad]
        grads = torch.autograd.grad(r, [a, *wanted], learning_signal.to(r.dtype), allow_unused=True)
    by_param = dict(zip([id(p) for p in wanted], grads[1:], strict=True))
    return grads[0], [by_param.get(id(p)) for p in params]


class TraceFunction(torch.autograd.Function):
    """``output = layer.advance(x)`` forward (no graph); the local graph backward.

    Called as ``TraceFunction.apply(x, layer, *layer.trace_parameters())``. ``x`` is one step
    ``[B, in]`` or a sequence ``[T, B, in]``. For a sequence, the gradient returned for ``x`` is
    ``dL/da / T`` expanded over time (a view, no ``[T, B, in]`` allocation), so that its sum over
    time, which is what the upstream layer uses, is ``dL/da``.
    """

    @staticmethod
    def forward(x: Tensor, layer, *params: Tensor) -> Tensor:
        return layer.advance(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, layer = inputs[0], inputs[1]
        ctx.layer = layer
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        ctx.sequence = x.dim() == layer.step_dim + 1

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        layer = ctx.layer
        signal = grad_output.sum(0) if ctx.sequence else grad_output
        params = layer.trace_parameters()
        grad_a, grads = local_gradients(layer, signal, params)
        needs = ctx.needs_input_grad[2:]
        grads = [g if need else None for g, need in zip(grads, needs, strict=True)]
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_a.to(ctx.input_dtype)
            if ctx.sequence:
                steps = ctx.input_shape[0]
                grad_x = (grad_x / steps).unsqueeze(0).expand(ctx.input_shape)
        return (grad_x, None, *grads)


def trace_apply(layer, x: Tensor) -> Tensor:
    """Run ``layer`` on ``x`` as one autograd node (see :class:`TraceFunction`)."""
    return TraceFunction.apply(x, layer, *layer.trace_parameters())


def trace_backward(layer, learning_signal: Tensor) -> Tensor:
    """Explicit learning without autograd's ``loss.backward()``.

    Accumulates the local-graph gradients into ``.grad`` of ``layer``'s parameters and returns
    the learning signal for the layer upstream, ``dL/da`` of shape ``[B, in_features]``.
    """
    params = layer.trace_parameters()
    grad_a, grads = local_gradients(layer, learning_signal, params)
    for p, g in zip(params, grads, strict=True):
        if g is None:
            continue
        p.grad = g.detach().clone() if p.grad is None else p.grad + g
    return grad_a.detach()
