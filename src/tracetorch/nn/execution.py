r"""Running a layer over a sequence: chunks, the input trace, the two execution paths.

- :func:`advance_fast` (trace mode, inference): no graph. Chunk by chunk, the currents of all
  the chunk's steps are computed at once straight into the output buffer, the neuron's
  in-place run overwrites them with the outputs, and the input trace advances in closed form
  (:func:`~tracetorch.functional.trace_run`). Besides the output ``[T, B, ...]`` and the new
  state nothing of size ``T`` is allocated.
- :func:`advance_graph` (BPTT mode): the currents and the reference step with a graph through
  time (:func:`~tracetorch.functional.run`); the trace without one.

Both take and return the layer's state; the layer stores it. See ``docs/speed.md``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from .. import functional as tf

__all__ = ["advance_fast", "advance_graph", "trace_chunks"]


def _trace_decay_and_weights(layer, steps: int, chunk: int) -> tuple[Tensor | float, Tensor | None]:
    """The trace decay for :func:`trace_run` and, for chunks, its weights (once per call).

    The decay is a Python number when all channels share it, which makes the closed form one
    matrix-vector product. On the CPU both are cached on the layer while the stored
    ``trace_decay_raw`` keeps its values; elsewhere they are recomputed, without the
    shared-decay check (it would synchronise the device).
    """
    raw = layer.trace_decay_raw.detach()
    size = max(1, min(steps, chunk))
    cached = layer.__dict__.get("_trace_cache")
    if (
        cached is not None
        and cached[0].dtype == raw.dtype
        and cached[0].device == raw.device
        and cached[2].shape[0] >= size
        and torch.equal(cached[0], raw)
    ):
        return cached[1], (cached[2] if steps > 1 else None)
    d = layer.trace_decay.detach()
    like = layer.trace
    if raw.device.type != "cpu":
        d = _per_channel(layer, d)
        return d, (tf.trace_weights(d, size, like=like) if steps > 1 else None)
    if bool((d == d[0]).all()):
        d = float(d[0])  # a number: trace_run's one-BLAS-call form
    else:
        d = _per_channel(layer, d)
    w = tf.trace_weights(d, max(chunk, size), like=like)
    layer.__dict__["_trace_cache"] = (raw.clone(), d, w)
    return d, (w if steps > 1 else None)


def _per_channel(layer, d: Tensor) -> Tensor:
    """The decay ``[C]`` shaped to broadcast against one step of the trace ``[B, C, ...]``."""
    return d.view(-1, *(1,) * (layer.trace.dim() - 2))


def trace_chunks(layer, trace: Tensor, xs: Tensor, size: int) -> Tensor:
    """The trace after the sequence ``xs [T, B, ...]``, chunk by chunk, in the trace's dtype."""
    d, w = _trace_decay_and_weights(layer, xs.shape[0], size)
    for start in range(0, xs.shape[0], size):
        trace = _trace_run(trace, xs[start : start + size], d, w)
    return trace


def _trace_run(trace: Tensor, xc: Tensor, d: Tensor | float, w: Tensor | None) -> Tensor:
    """One chunk of the trace in the trace's dtype (float32 under AMP too)."""
    autocast = torch.is_autocast_enabled(xc.device.type)
    with torch.autocast(xc.device.type, enabled=False) if autocast else nullcontext():
        return tf.trace_run(trace, xc.to(trace.dtype), d, weights=w)


def advance_fast(layer, xs: Tensor, state: Any, trace: Tensor) -> tuple[Tensor, Any, Tensor]:
    """No graph: ``(outputs [T, B, ...], state, trace)`` after the sequence ``xs``."""
    steps, batch = xs.shape[0], xs.shape[1]
    size = layer.chunk_steps(batch)
    first = state[0]
    out = first.new_empty((steps, *first.shape))
    p = layer.fast_params()
    fast_run = layer.fast_run
    d, w = _trace_decay_and_weights(layer, steps, size)
    for start in range(0, steps, size):
        xc, oc = xs[start : start + size], out[start : start + size]
        trace = _trace_run(trace, xc, d, w)  # xc is read twice while it is in cache
        layer.current_into(xc, oc)
        if fast_run is not None:
            res, state = fast_run(oc, state, p)
        else:
            res, state = tf.run_(layer.step, oc, state, p)
        if res is not oc:
            oc.copy_(res)
    return out, state, trace


def advance_graph(layer, xs: Tensor, state: Any, trace: Tensor) -> tuple[Tensor, Any, Tensor]:
    """BPTT: ``(outputs, state, trace)``, a graph through time from the currents on."""
    c = layer.input_current(xs)
    out, state = tf.run(layer.step, c, state, layer.neuron_params(bptt=True))
    with torch.no_grad():
        trace = trace_chunks(layer, trace, xs, layer.chunk_steps(xs.shape[1]))
    return out, state, trace
