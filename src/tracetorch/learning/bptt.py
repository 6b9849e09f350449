"""Switching layers between trace learning and backpropagation through time (BPTT)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from .modes import LEARNING_MODES, check_mode

__all__ = ["LEARNING_MODES", "bptt", "eligibility", "learning_mode", "set_learning", "trace_layers"]


def trace_layers(module: nn.Module) -> list[nn.Module]:
    """The tracetorch layers in ``module`` (itself included), in ``modules()`` order."""
    from ..nn.base import TraceLayer  # nn imports learning: resolve at call time

    return [m for m in module.modules() if isinstance(m, TraceLayer)]


def set_learning(module: nn.Module, mode: str) -> nn.Module:
    """Set every tracetorch layer in ``module`` to ``mode`` (one of ``LEARNING_MODES``)."""
    check_mode(mode)
    for layer in trace_layers(module):
        layer.learning = mode
    return module


@contextmanager
def learning_mode(module: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Run the tracetorch layers of ``module`` in ``mode`` inside the ``with`` block; the
    previous modes are restored on exit. Reset the states before the sequence."""
    check_mode(mode)
    layers = trace_layers(module)
    previous = [layer.learning for layer in layers]
    for layer in layers:
        layer.learning = mode
    try:
        yield module
    finally:
        for layer, old in zip(layers, previous, strict=True):
            layer.learning = old


def eligibility(module: nn.Module):  # noqa: ANN201 - a context manager
    """Run the tracetorch layers of ``module`` with eligibility traces inside the block.

    Timing-aware gradients in memory independent of T (e-prop; see
    :mod:`tracetorch.learning.eprop`): exact for one hidden LIF layer under a leaky readout
    (with ``detach_reset``). Reset the states before the sequence.

    Example:
        >>> with tt.eligibility(net):
        ...     net.reset_states()
        ...     F.cross_entropy(net(x)[-1], y).backward()
    """
    return learning_mode(module, "eligibility")


def bptt(module: nn.Module):  # noqa: ANN201 - a context manager
    """Run the tracetorch layers of ``module`` in BPTT mode inside the ``with`` block.

    The same dynamics, with a surrogate spike gradient and a graph through time: the exact
    (and O(T)-memory) reference for trace learning. Modes are restored on exit. Reset the
    states before a BPTT sequence (``module.reset_states()``).

    Example:
        >>> with tt.bptt(net):
        ...     net.reset_states()
        ...     loss = F.cross_entropy(net(x)[-1], y)
        ...     loss.backward()
    """
    return learning_mode(module, "bptt")
