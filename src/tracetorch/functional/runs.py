r"""Sequences from one reference step: every neuron's multi-step forms derive from its step.

A neuron is a step function ``step(c, state, p) -> (output, state)`` on one timestep
(``c: [B, ...]`` the synaptic current, ``state`` a NamedTuple of tensors, ``p`` its
parameters). Over a sequence ``c: [T, B, ...]``:

- :func:`run` applies the step ``T`` times, out of place: differentiable, so with a
  surrogate spike it is backpropagation through time;
- :func:`run_` applies it ``T`` times writing each output into ``c``: the generic fast path
  (no autograd), used by neurons that have no hand-written in-place form.

Both give the step's values bit for bit (they *are* the step); hand-written in-place forms
(:func:`~tracetorch.functional.lif_run_`, ...) are pinned to the step by tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["run", "run_"]

Step = Callable[[Tensor, Any, Any], tuple[Tensor, Any]]


def run(step: Step, c: Tensor, state: Any, p: Any) -> tuple[Tensor, Any]:
    """``step`` over ``c [T, B, ...]``, out of place. Returns ``(outputs [T, B, ...], state)``."""
    outputs = []
    for c_t in c.unbind(0):
        out, state = step(c_t, state, p)
        outputs.append(out)
    if not outputs:
        return c.new_empty(c.shape), state
    return torch.stack(outputs), state


def run_(step: Step, c: Tensor, state: Any, p: Any) -> tuple[Tensor, Any]:
    """``step`` over ``c [T, B, ...]``, each output written into ``c`` (which the caller owns).

    Run it under ``torch.no_grad()``. Returns ``(c, state)``.
    """
    for c_t in c.unbind(0):
        out, state = step(c_t, state, p)
        c_t.copy_(out)
    return c, state
