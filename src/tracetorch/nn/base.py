"""The common base of tracetorch's dense layers: parameters, state and input checks."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import functional as tf
from ..learning.bptt import LEARNING_MODES
from ..learning.trace import trace_apply, trace_backward

__all__ = ["TraceLayer"]


def _check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _as_float64(value: float | Tensor, name: str) -> Tensor:
    """``value`` (a number or a tensor) as a float64 tensor; a TypeError naming ``name`` else."""
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}") from None


def _check_open_unit(value: float | Tensor, name: str) -> Tensor:
    t = _as_float64(value, name)
    # Checked in float32 too: 1 - 1e-12 would round to 1.0 in a float32 layer (c / 0).
    t32 = t.float()
    if not bool(((t > 0) & (t < 1) & (t32 > 0) & (t32 < 1)).all()):
        raise ValueError(f"{name} must be in (0, 1) (also after rounding to float32), got {value}")
    return t


def _broadcast(value: Tensor, size: int, name: str) -> Tensor:
    if value.dim() == 0:
        return value.expand(size).clone()
    if value.shape != (size,):
        raise ValueError(
            f"{name} must be a float or a tensor of shape ({size},), got {tuple(value.shape)}"
        )
    return value.clone()


class TraceLayer(nn.Module):
    r"""Base class of the dense spiking layers (:class:`LIF`, :class:`LI`, :class:`LIS`).

    It owns what they share: the weight ``[out, in]`` and optional bias ``[out]``, the membrane
    decay :math:`\beta` per output neuron, the input-trace decay :math:`d` per input channel,
    the state (membrane ``[B, out]``, input trace ``[B, in]``, steps since reset) and the
    input checks. A subclass supplies its dynamics (``_dynamics``) and its average output
    (``average_output``), both from :mod:`tracetorch.functional`.

    Decays are stored as logits and mapped through a sigmoid, so they stay in (0, 1) under any
    optimizer step. Learning modes: ``"trace"`` (default, constant memory) or ``"bptt"``
    (surrogate gradients through time, the exact reference; see :func:`tracetorch.bptt`).

    A sequence ``[T, B, in]`` without a graph (trace mode, inference) takes the fast path of
    :meth:`advance`, chunk by chunk: ``chunk_size`` (constructor argument or attribute; default
    ``None``, automatic, see :meth:`chunk_steps`) sets the steps per chunk. See
    ``docs/speed.md``.
    """

    step_dim = 2  # rank of one step [B, F]; a sequence is [T, B, F]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        beta: float | Tensor = 0.9,
        trace_decay: float | Tensor | None = None,
        horizon: float | None = None,
        bias_correction: bool = True,
        learn_weight: bool = True,
        learn_bias: bool = True,
        learn_beta: bool = True,
        learn_trace_decay: bool = False,
        learning: str = "trace",
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _check_int(in_features, "in_features")
        self.out_features = _check_int(out_features, "out_features")
        if trace_decay is not None and horizon is not None:
            raise ValueError("give trace_decay or horizon, not both")
        if horizon is not None:
            trace_decay = tf.decay_from_horizon(horizon)
        if trace_decay is None:
            trace_decay = self.default_trace_decay
        self._init_beta = _broadcast(_check_open_unit(beta, "beta"), out_features, "beta")
        self._init_trace_decay = _broadcast(
            _check_open_unit(trace_decay, "trace_decay"), in_features, "trace_decay"
        )
        if learning not in LEARNING_MODES:
            raise ValueError(f"learning must be one of {LEARNING_MODES}, got {learning!r}")
        self.learning = learning
        self.bias_correction = bool(bias_correction)
        self.chunk_size = chunk_size

        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.beta_raw = nn.Parameter(torch.empty(out_features, **factory))
        self.trace_decay_raw = nn.Parameter(torch.empty(in_features, **factory))
        self.register_buffer("membrane", None, persistent=False)
        self.register_buffer("trace", None, persistent=False)
        self.steps = 0  # steps since reset, for the bias correction of the trace
        # Subclasses add their own parameters, then call reset_parameters().
        self.weight.requires_grad_(learn_weight)
        if self.bias is not None:
            self.bias.requires_grad_(learn_bias)
        self.beta_raw.requires_grad_(learn_beta)
        self.trace_decay_raw.requires_grad_(learn_trace_decay)

    default_trace_decay: float = 0.95

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """Weight and bias as in :class:`torch.nn.Linear`; decays back to their initial values."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.beta_raw.copy_(torch.logit(self._init_beta))
            self.trace_decay_raw.copy_(torch.logit(self._init_trace_decay))

    @property
    def beta(self) -> Tensor:
        """Membrane decay per output neuron, ``[out_features]``, in (0, 1)."""
        return torch.sigmoid(self.beta_raw)

    @property
    def trace_decay(self) -> Tensor:
        """Input-trace decay per input channel, ``[in_features]``, in (0, 1)."""
        return torch.sigmoid(self.trace_decay_raw)

    def trace_parameters(self) -> list[nn.Parameter]:
        """This layer's own parameters, in a fixed order (the inputs of its autograd node)."""
        return list(self.parameters(recurse=False))

    # ------------------------------------------------------------------ state
    def reset_states(self) -> None:
        """Forget the membrane and the trace; the next input starts a new sequence.

        The state is rebuilt lazily from the next input, so the batch size may change.
        """
        self.membrane = None
        self.trace = None
        self.steps = 0

    def detach_states(self) -> None:
        """Cut the graph through time of the state (BPTT mode), keeping its values."""
        if self.membrane is not None:
            self.membrane = self.membrane.detach()

    def _prepare_state(self, batch: int) -> None:
        if self.membrane is None:
            p = self.weight
            self.membrane = torch.zeros(batch, self.out_features, device=p.device, dtype=p.dtype)
            self.trace = torch.zeros(batch, self.in_features, device=p.device, dtype=p.dtype)
        elif self.membrane.shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}: batch size changed from {self.membrane.shape[0]} to "
                f"{batch} in the middle of a sequence; call reset_states() first"
            )

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> bool:
        """Validate ``x``; return True for a sequence ``[T, B, F]``, False for a step ``[B, F]``."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input must be a torch.Tensor, got {type(x).__name__}")
        if not torch.is_floating_point(x):
            raise TypeError(
                f"{name}: input must be a floating-point tensor, got {x.dtype} "
                "(convert spikes with x.float())"
            )
        if x.dim() not in (self.step_dim, self.step_dim + 1):
            raise ValueError(
                f"{name}: input must have shape [B, {self.in_features}] (one step) or "
                f"[T, B, {self.in_features}] (a sequence), got {tuple(x.shape)}"
            )
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{name}: expected in_features={self.in_features} in the last dimension of "
                f"the input, got shape {tuple(x.shape)}"
            )
        if x.dtype != self.weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(
                f"{name}: input dtype {x.dtype} does not match the parameters' dtype "
                f"{self.weight.dtype}; convert one of them (x.to(...) or layer.to(...))"
            )
        if x.device != self.weight.device:
            raise ValueError(
                f"{name}: input is on {x.device} but the parameters are on {self.weight.device}"
            )
        return x.dim() == self.step_dim + 1

    def forward(self, x: Tensor) -> Tensor:
        """Advance the layer by one step ``[B, in]`` or a sequence ``[T, B, in]``.

        Returns the actual output, ``[B, out]`` or ``[T, B, out]``. In trace mode the call is
        one autograd node: ``loss.backward()`` on this output learns through the layer's
        local graph, built from its state at backward time.
        """
        sequence = self._check_input(x)
        self._prepare_state(x.shape[1] if sequence else x.shape[0])
        if self.learning == "bptt" and torch.is_grad_enabled():
            return self._advance(x, sequence, bptt=True)
        if torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters(recurse=False))
        ):
            return trace_apply(self, x)
        with torch.no_grad():
            return self._advance(x, sequence, bptt=False)

    def advance(self, x: Tensor) -> Tensor:
        """Run the dynamics on ``x`` without a graph, update the state, return the output.

        The fast path: a sequence ``[T, B, in]`` is processed in chunks of :meth:`chunk_steps`
        steps. Per chunk, the currents of all its steps are one matrix multiply written
        straight into the output buffer, the neuron recursion overwrites them in place
        (``*_run_`` of :mod:`tracetorch.functional`) and the input trace advances in closed
        form (:func:`~tracetorch.functional.trace_run`). Besides the output ``[T, B, out]`` and
        the new state, nothing of size ``T`` is allocated.
        """
        return self._advance(x, x.dim() == self.step_dim + 1, bptt=False)

    #: Bytes of one chunk's outputs (``chunk x B x out_features``) that the automatic chunk size
    #: aims at, and its cap in steps. Measured (``python -m benchmarks.speed --chunks``, 1 thread):
    #: the best chunk keeps the outputs of a chunk at 1-8 MiB, e.g. 128 steps at B=64 and
    #: hidden 128, 32 at B=256, 16 at B=64 and hidden 512; small chunks pay a fixed cost of
    #: about twenty small ops per chunk, large ones fall out of cache.
    CHUNK_BYTES = 4 * 2**20
    MAX_CHUNK_STEPS = 128

    @property
    def chunk_size(self) -> int | None:
        """Steps per chunk of the no-graph sequence path: a positive int, or ``None`` (default)
        for the automatic size of :meth:`chunk_steps`.

        It bounds the temporaries of a sequence call (the trace's weighted sum of one chunk,
        the softmax of LIS) and keeps each chunk's currents in cache while the recursion runs
        over them. It does not change the results beyond float rounding of the trace.
        """
        return self.__dict__.get("_chunk_size")

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        self.__dict__["_chunk_size"] = None if value is None else _check_int(value, "chunk_size")

    def chunk_steps(self, batch: int) -> int:
        """The chunk size in steps for a batch of ``batch``: :attr:`chunk_size` if set, else
        ``CHUNK_BYTES // (batch * out_features * bytes per element)``, between 1 and
        ``MAX_CHUNK_STEPS``.

        Feeding a stream to a network in blocks of ``min(l.chunk_steps(B) for l in layers)``
        steps keeps every layer's outputs of a block in cache: the fastest way to run a long
        sequence (``docs/speed.md``).
        """
        if self.chunk_size is not None:
            return self.chunk_size
        per_step = max(1, batch * self.out_features * self.weight.element_size())
        return max(1, min(self.MAX_CHUNK_STEPS, self.CHUNK_BYTES // per_step))

    def _advance(self, x: Tensor, sequence: bool, bptt: bool) -> Tensor:
        xs = x if sequence else x.unsqueeze(0)
        out = self._advance_graph(xs) if bptt else self._advance_fast(xs)
        self.steps += xs.shape[0]
        return out if sequence else out[0]

    def _advance_graph(self, xs: Tensor) -> Tensor:
        """BPTT: currents and dynamics with a graph through time; the trace without one."""
        c = F.linear(xs, self.weight, self.bias)
        m = self.membrane
        out, self.membrane = self._dynamics(c.to(m.dtype), m, True)
        with torch.no_grad():
            trace, size = self.trace, self.chunk_steps(xs.shape[1])
            d, w = self._trace_decay_and_weights(xs.shape[0], size)
            for start in range(0, xs.shape[0], size):
                trace = self._trace_chunk(trace, xs[start : start + size], d, w)
            self.trace = trace
        return out

    def _advance_fast(self, xs: Tensor) -> Tensor:
        """No graph: chunk by chunk, currents into the output buffer, dynamics in place."""
        if torch.is_grad_enabled():  # advance() called directly with autograd on
            with torch.no_grad():
                return self._advance_fast(xs)
        steps, size = xs.shape[0], self.chunk_steps(xs.shape[1])
        state = self._buffers  # plain dict access: nn.Module.__setattr__ costs microseconds
        m, trace = state["membrane"], state["trace"]
        out = m.new_empty((steps, *m.shape))
        d, w = self._trace_decay_and_weights(steps, size)
        for start in range(0, steps, size):
            xc, oc = xs[start : start + size], out[start : start + size]
            trace = self._trace_chunk(trace, xc, d, w)  # xc is read twice while it is in cache
            self._current_into(xc, oc)
            res, m = self._dynamics(oc, m, False)
            if res is not oc:  # a subclass whose dynamics are not in place
                oc.copy_(res)
        state["membrane"], state["trace"] = m, trace
        return out

    def _current_into(self, xc: Tensor, oc: Tensor) -> None:
        """``oc [L, B, out] <- W xc + b``: one matrix multiply, no temporary (outside AMP)."""
        x2, o2 = xc.reshape(-1, self.in_features), oc.view(-1, self.out_features)
        if x2.dtype != o2.dtype or torch.is_autocast_enabled(xc.device.type):
            o2.copy_(F.linear(x2, self.weight, self.bias))
        elif self.bias is None:
            torch.mm(x2, self.weight.t(), out=o2)
        else:
            torch.addmm(self.bias, x2, self.weight.t(), out=o2)

    def _trace_decay_and_weights(
        self, steps: int, chunk: int
    ) -> tuple[Tensor | float, Tensor | None]:
        """The trace decay for :func:`trace_run` and, for chunks, its weights (once per call).

        The decay is a Python number when all channels share it, which makes the closed form
        one matrix-vector product. On the CPU both are cached and reused while the stored
        ``trace_decay_raw`` keeps its values (one comparison per call instead of about a dozen
        small ops); elsewhere they are recomputed, without the shared-decay check (it would
        synchronise the device).
        """
        raw = self.trace_decay_raw.detach()
        if steps <= 1:
            return torch.sigmoid(raw), None
        size = min(steps, chunk)
        cached = self.__dict__.get("_trace_cache")
        if (
            cached is not None
            and cached[0].dtype == raw.dtype
            and cached[0].device == raw.device
            and cached[2].shape[0] >= size
            and torch.equal(cached[0], raw)
        ):
            return cached[1], cached[2]
        d = torch.sigmoid(raw)
        if raw.device.type != "cpu":
            return d, tf.trace_weights(d, size, like=self.trace)
        if bool((d == d[0]).all()):
            d = float(d[0])  # a number: trace_run's one-BLAS-call form
        w = tf.trace_weights(d, chunk, like=self.trace)
        self.__dict__["_trace_cache"] = (raw.clone(), d, w)
        return d, w

    def _trace_chunk(
        self, trace: Tensor, xc: Tensor, d: Tensor | float, w: Tensor | None
    ) -> Tensor:
        """The trace after chunk ``xc``, in the trace's dtype (float32 under AMP)."""
        if torch.is_autocast_enabled(xc.device.type):
            with torch.autocast(xc.device.type, enabled=False):
                return tf.trace_run(trace, xc.to(trace.dtype), d, weights=w)
        return tf.trace_run(trace, xc.to(trace.dtype), d, weights=w)

    def _dynamics(self, c: Tensor, m: Tensor, bptt: bool) -> tuple[Tensor, Tensor]:
        """``(outputs [T, B, out], last membrane)`` from currents ``c [T, B, out]``.

        With ``bptt=True``: out of place, differentiable (surrogate spikes). With
        ``bptt=False`` (called under ``no_grad`` on a chunk): ``c`` is a buffer the layer owns,
        and the dynamics may overwrite it with the outputs and return it (the in-place
        ``*_run_`` functions); ``m`` must not be modified.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ learning
    def average_input(self) -> Tensor:
        """``a = t (1 - d)`` (bias-corrected: ``/ (1 - d^n)``), ``[B, in]``; differentiable in d."""
        if self.trace is None:
            raise RuntimeError(f"{type(self).__name__} has no state: run a forward pass first")
        steps = self.steps if self.bias_correction else None
        return tf.trace_mean(self.trace.detach(), self.trace_decay, steps)

    def _output_steps(self) -> int | None:
        """Steps since reset for the young-sequence correction of an average output, or None."""
        return self.steps if self.bias_correction else None

    def average_output(self, a: Tensor) -> Tensor:
        """The layer's average output for average input ``a`` (the local graph)."""
        raise NotImplementedError

    def backward(self, learning_signal: Tensor) -> Tensor:
        """Learn from an explicit signal ``dL/d(output)`` ``[B, out]``, without autograd.

        Accumulates gradients into the parameters' ``.grad`` and returns the learning signal
        for the layer upstream, ``dL/da`` ``[B, in]``.
        """
        if not isinstance(learning_signal, Tensor):
            raise TypeError("learning_signal must be a torch.Tensor")
        if self.membrane is None:
            raise RuntimeError(f"{type(self).__name__} has no state: run a forward pass first")
        expected = (self.membrane.shape[0], self.out_features)
        if tuple(learning_signal.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: learning_signal must have shape {list(expected)} "
                f"[B, out_features], got {tuple(learning_signal.shape)}"
            )
        return trace_backward(self, learning_signal)

    def extra_repr(self) -> str:
        parts = [
            f"in_features={self.in_features}",
            f"out_features={self.out_features}",
            f"bias={self.bias is not None}",
        ]
        if self.learning != "trace":
            parts.append(f"learning={self.learning!r}")
        for flag, p, default in self._learn_flags():
            if p is not None and p.requires_grad != default:
                parts.append(f"{flag}={p.requires_grad}")
        return ", ".join(parts)

    def _learn_flags(self) -> list[tuple[str, Tensor | None, bool]]:
        """``(flag, parameter, default)`` of each ``learn_*`` switch, for the repr."""
        return [
            ("learn_weight", self.weight, True),
            ("learn_bias", self.bias, True),
            ("learn_beta", self.beta_raw, True),
            ("learn_trace_decay", self.trace_decay_raw, False),
        ]
