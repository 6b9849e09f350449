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
``trace_parameters()``, ``advance(x)``, ``average_input()`` and ``average_output(a)``, and
a ``state_version`` counter that rises with every change of its state.

**Stale outputs.** Because the backward reads the state at backward time, an output whose
layer has moved on since its forward (another call, a reset, a reloaded stream) or whose
parameters were changed in place (an optimizer step) would silently get gradients of another
state. The node records both versions and its backward raises instead, as autograd does for
a tensor "modified by an inplace operation". Inside :func:`latest_state` the check is off and
every backward uses the latest state: right for a loss summed over the calls of one stream
(each call's node then learns from the same, latest state), at the cost the docs describe.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["TraceFunction", "latest_state", "local_gradients", "trace_apply", "trace_backward"]

_latest = {"depth": 0}


@contextmanager
def latest_state() -> Iterator[None]:
    """Let trace-mode backwards inside the block use the layers' latest state.

    Without it, the backward of an output raises ``RuntimeError`` when its layer advanced,
    was reset, or had a parameter changed in place since that output's forward. Use it for a
    loss on the outputs of several calls of one stream, knowing that the learning signals of
    all those calls then act on the one latest average (a loss on the mean output over time
    loses the timing of the signal; ``docs/how-it-works.md``).

    Example:
        >>> outs = [net(chunk) for chunk in stream]          # several calls
        >>> loss = sum(F.cross_entropy(o[-1], y) for o in outs)
        >>> with tt.learning.latest_state():
        ...     loss.backward()
    """
    _latest["depth"] += 1
    try:
        yield
    finally:
        _latest["depth"] -= 1


def _fresh(ctx, layer, grad_output: Tensor) -> bool:
    """True if the node may learn; False if it receives no signal at all (skip it, e.g. an
    earlier call of a stacked per-step loop); RuntimeError if its state is stale."""
    try:
        _check_fresh(ctx, layer)
    except RuntimeError:
        if not bool(grad_output.any()):  # checked only here: it reads the whole signal
            return False
        raise
    return True


def _check_fresh(ctx, layer) -> None:
    if _latest["depth"]:
        return
    name = type(layer).__name__
    if layer.state_version != ctx.state_version:
        raise RuntimeError(
            f"{name}: this output's state is gone: the layer was called again, reset or "
            "reloaded after the forward that made it, and trace learning differentiates the "
            "state at backward time. Call backward before the next forward (learn every k "
            "steps: forward, backward, step), or, for a loss over several calls of one "
            "stream, wrap the backward in tt.learning.latest_state()."
        )
    params = ctx.saved_params
    if any(p._version != v for p, v in zip(params, ctx.param_versions, strict=True)):
        raise RuntimeError(
            f"{name}: a parameter was modified in place (e.g. optimizer.step()) between this "
            "output's forward and its backward; call backward before stepping the optimizer, "
            "or wrap the backward in tt.learning.latest_state() to use the new values."
        )


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
    def gradients(layer, signal: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        """``(dL/da, parameter gradients)`` of the learning rule for ``signal`` (a subclass,
        e.g. eligibility learning, swaps the rule and keeps the rest of the node)."""
        return local_gradients(layer, signal, layer.trace_parameters())

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, layer, params = inputs[0], inputs[1], inputs[2:]
        ctx.layer = layer
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        ctx.sequence = x.dim() == layer.step_dim + 1
        ctx.state_version = layer.state_version
        ctx.saved_params = params  # references, not copies: only their versions are read
        ctx.param_versions = tuple(p._version for p in params)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        layer = ctx.layer
        if not _fresh(ctx, layer, grad_output):
            return (None, None, *(None for _ in ctx.param_versions))
        if ctx.sequence and grad_output.shape[0] > 1 and _first_trace_node_of_this_backward():
            _warn_if_spread(grad_output, layer)
        signal = grad_output.sum(0) if ctx.sequence else grad_output
        grad_a, grads = ctx._forward_cls.gradients(layer, signal)
        needs = ctx.needs_input_grad[2:]
        grads = [g if need else None for g, need in zip(grads, needs, strict=True)]
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_a.to(ctx.input_dtype)
            if ctx.sequence:
                steps = ctx.input_shape[0]
                grad_x = (grad_x / steps).unsqueeze(0).expand(ctx.input_shape)
        return (grad_x, None, *grads)


def _first_trace_node_of_this_backward() -> bool:
    """True for the first trace node a backward pass reaches: the one the loss touches.

    Layers further upstream receive the (time-uniform) signal of a layer downstream, which is
    by design; only the signal the loss itself sends is worth a warning.
    """
    task = getattr(torch._C, "_current_graph_task_id", lambda: -1)()
    first = task != _latest.get("task")
    _latest["task"] = task
    return first and task != -1


def _warn_if_spread(grad_output: Tensor, layer) -> None:
    """Warn when a sequence's learning signal spans several timesteps (it is summed into one).

    Only the first step is read unless it carries a signal (a loss on the mean or on every
    step does; one on the last steps does not), so the usual backward pays one step's scan.
    """
    if not bool(grad_output[0].any()):
        return
    touched = int((grad_output.flatten(1) != 0).any(dim=1).sum())
    if touched > 1:
        warnings.warn(
            f"{type(layer).__name__}: the loss touches {touched} timesteps of a sequence output; "
            "trace learning sums their signals onto one average output, which loses their "
            "timing (a loss on the mean output over time trains far worse than one on the "
            "last step; docs/how-it-works.md). Put the loss on the last step, or use BPTT.",
            UserWarning,
            stacklevel=2,
        )


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
