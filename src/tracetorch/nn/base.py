"""TraceLayer: the common base of every tracetorch layer (dense or convolutional).

A layer type supplies only its neuron (a state NamedTuple, a reference step and its
parameters, from :mod:`tracetorch.functional`), its synapse (dense by default) and its
average output. This class owns the rest, each part in one place:

- parameters: weight, bias, membrane decay ``beta`` and input-trace decay ``d``, stored raw
  and mapped (:mod:`tracetorch.nn.parameters`);
- state: the neuron state, the input trace, the steps since reset and a version counter,
  saved and restored mid-stream by :meth:`stream_state_dict` / :meth:`load_stream_state_dict`;
- execution over a sequence (:mod:`tracetorch.nn.execution`);
- learning: the autograd node of trace mode (:mod:`tracetorch.learning.trace`), BPTT mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import functional as tf
from ..functional import _compiled
from ..learning import eprop
from ..learning.modes import check_mode
from ..learning.trace import trace_apply, trace_backward
from . import parameters as P
from .execution import advance_fast, advance_graph

__all__ = ["TraceLayer", "finite"]


def finite(state: NamedTuple, trace: Tensor) -> bool:
    """Whether the state's first field (the one the input drives) and the trace are finite.

    One fused check, ``isfinite(sum + sum)``: NaN and inf propagate through the sums, and a
    bounded membrane cannot overflow them.
    """
    return bool(torch.isfinite(state[0].sum() + trace.sum()))


class TraceLayer(nn.Module):
    r"""Base class of tracetorch layers; ``isinstance(m, TraceLayer)`` says "a tracetorch layer".

    It owns the weight ``[out, in]`` and optional bias ``[out]``, the membrane decay
    :math:`\beta` per output neuron, the input-trace decay :math:`d` per input channel, the
    state (the neuron's state NamedTuple, the input trace ``[B, in]``, steps since reset) and
    the input checks. Decays are stored as logits and thresholds as inverse softplus; the
    mapped values stay strictly in range under any optimizer step (see
    :mod:`tracetorch.nn.parameters`). float16/bfloat16 layers keep state, traces and decays in
    float32.

    **Learning modes**: ``"trace"`` (default, constant memory: each call is one autograd node
    whose backward differentiates the local graph built from the state at backward time) or
    ``"bptt"`` (surrogate gradients through time; see :func:`tracetorch.bptt`).

    **Stale outputs**: a trace-mode output is bound to the state and parameters it came from.
    If the layer advanced, was reset or reloaded, or a parameter changed in place (an
    optimizer step) between the forward and the backward, the backward raises a
    ``RuntimeError``; :func:`tracetorch.learning.latest_state` opts in to using the latest
    state instead (``docs/how-it-works.md``).

    A subclass defines:

    - ``state_type``: the neuron's state NamedTuple (its fields become non-persistent
      buffers, e.g. ``layer.membrane``);
    - ``step``: the reference step ``(c, state, params) -> (output, state)`` (a staticmethod)
      and optionally ``fast_run``, an in-place run pinned to it by tests;
    - :meth:`neuron_params` and :meth:`average_output`;
    - for another synapse than a dense one: :meth:`synapse`, :meth:`output_shape` and the
      input checks (see :class:`tracetorch.nn.ConvLIF`).
    """

    step_dim: ClassVar[int] = 2  # rank of one step [B, F]; a sequence is [T, B, F]
    state_type: ClassVar[type]
    step: ClassVar[Callable[..., Any]]
    fast_run: ClassVar[Callable[..., Any] | None] = None
    default_trace_decay: ClassVar[float] = 0.95
    #: Whether ``beta`` learns unless ``learn_beta`` says otherwise (readouts: no; see
    #: ``docs/defaults.md``).
    default_learn_beta: ClassVar[bool] = True
    #: Raise when the state becomes NaN or infinite during a call (a NaN input otherwise hides
    #: behind spikes that stay 0/1). One small reduction per call; turn off for speed on a GPU.
    check_finite: ClassVar[bool] = True

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
        learn_beta: bool | None = None,
        learn_trace_decay: bool = False,
        learning: str = "trace",
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        weight_shape: tuple[int, ...] | None = None,
        trace_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.in_features = P.check_positive_int(in_features, "in_features")
        self.out_features = P.check_positive_int(out_features, "out_features")
        if trace_decay is not None and horizon is not None:
            raise ValueError("give trace_decay or horizon, not both")
        if horizon is not None:
            trace_decay = tf.decay_from_horizon(horizon)
        if trace_decay is None:
            trace_decay = self.default_trace_decay
        channels = trace_channels or in_features
        self._init_beta = P.broadcast(P.check_unit_interval(beta, "beta"), out_features, "beta")
        self._init_trace_decay = P.broadcast(
            P.check_unit_interval(trace_decay, "trace_decay"), channels, "trace_decay"
        )
        self.learning = check_mode(learning)
        self.bias_correction = bool(bias_correction)
        self.chunk_size = chunk_size

        factory = {"device": device, "dtype": dtype}
        shape = weight_shape or (out_features, in_features)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.beta_raw = nn.Parameter(torch.empty(out_features, **factory))
        self.trace_decay_raw = nn.Parameter(torch.empty(channels, **factory))
        reserved = {"trace", "steps", "state_version", "state"}
        for name in self.state_type._fields:
            if name in reserved or hasattr(type(self), name) or name in self._parameters:
                raise TypeError(
                    f"{type(self).__name__}: state field {name!r} of {self.state_type.__name__} "
                    "clashes with a name of the layer; rename the field"
                )
        for name in (*self.state_type._fields, "trace"):
            self.register_buffer(name, None, persistent=False)
        self.__dict__["steps"] = 0  # steps since reset (bias correction of the trace)
        #: Eligibility mode: the decay with which the consumer of this layer's output filters
        #: it (``None``: wired by Sequential; 0 for a memoryless consumer).
        self.eligibility_filter: float | None = None
        self.__dict__["state_version"] = 0
        # Subclasses add their own parameters, then call reset_parameters().
        self.weight.requires_grad_(learn_weight)
        if self.bias is not None:
            self.bias.requires_grad_(learn_bias)
        self.beta_raw.requires_grad_(self.default_learn_beta if learn_beta is None else learn_beta)
        self.trace_decay_raw.requires_grad_(learn_trace_decay)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("step", "fast_run"):  # plain functions: the reference step takes no self
            fn = cls.__dict__.get(name)
            if callable(fn) and not isinstance(fn, (staticmethod, classmethod, type)):
                setattr(cls, name, staticmethod(fn))

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """Weight and bias as in :class:`torch.nn.Linear`; decays back to their initial values."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.beta_raw.copy_(P.decay_logit(self._init_beta))
            self.trace_decay_raw.copy_(P.decay_logit(self._init_trace_decay))

    @property
    def beta(self) -> Tensor:
        """Membrane decay per output neuron, ``[out_features]``, in (0, 1) (state dtype)."""
        return P.to_decay(self.beta_raw)

    @property
    def trace_decay(self) -> Tensor:
        """Input-trace decay per input channel, in (0, 1) (state dtype)."""
        return P.to_decay(self.trace_decay_raw)

    @property
    def state_dtype(self) -> torch.dtype:
        """dtype of the state and trace: the parameters' (float32 for float16/bfloat16)."""
        return P.state_dtype(self.weight.dtype)

    def trace_parameters(self) -> list[nn.Parameter]:
        """This layer's own parameters, in a fixed order (the inputs of its autograd node)."""
        return list(self.parameters(recurse=False))

    # ------------------------------------------------------------------ neuron hooks
    def neuron_params(self, bptt: bool) -> NamedTuple:
        """The parameters of :attr:`step` (mapped values; with a surrogate spike if ``bptt``)."""
        raise NotImplementedError

    def fast_params(self) -> NamedTuple:
        """:meth:`neuron_params` without a graph, cached while the parameters keep their values
        (version counters and storage) and the layer its reset options: a per-step loop then
        maps its decays and thresholds once, not at every call."""
        key = (
            tuple((p._version, p.data_ptr()) for p in self._parameters.values() if p is not None),
            tuple(getattr(self, name, None) for name in ("reset", "zero_diagonal")),
        )
        cached = self.__dict__.get("_fast_params")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, self.neuron_params(bptt=False))
            self.__dict__["_fast_params"] = cached
        return cached[1]

    def average_output(self, a: Tensor) -> Tensor:
        """The layer's average output for average input ``a`` (the local graph)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ synapse
    def synapse_with(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """The current ``weight x + bias`` of inputs ``x [..., in]`` (any leading dimensions)."""
        return F.linear(x, weight, bias)

    def synapse(self, x: Tensor) -> Tensor:
        """The current of inputs ``x`` with the layer's own weight and bias."""
        return self.synapse_with(x, self.weight, self.bias)

    def input_current(self, x: Tensor) -> Tensor:
        """:meth:`synapse` in the state dtype (float32 for half-precision layers), with graph."""
        dtype = self.state_dtype
        if self.weight.dtype == dtype or torch.is_autocast_enabled(x.device.type):
            return self.synapse(x).to(dtype)
        bias = None if self.bias is None else self.bias.to(dtype)
        return self.synapse_with(x.to(dtype), self.weight.to(dtype), bias)

    def current_into(self, xc: Tensor, oc: Tensor) -> None:
        """``oc [L, B, out] <- W xc + b``: one matrix multiply, no temporary (outside AMP)."""
        x2, o2 = xc.reshape(-1, self.in_features), oc.view(-1, self.out_features)
        if (
            x2.dtype != o2.dtype
            or self.weight.dtype != o2.dtype
            or torch.is_autocast_enabled(xc.device.type)
        ):
            o2.copy_(F.linear(x2, self.weight, self.bias))
        elif self.bias is None:
            torch.mm(x2, self.weight.t(), out=o2)
        else:
            torch.addmm(self.bias, x2, self.weight.t(), out=o2)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one step's output features for one step's input features."""
        return (self.out_features,)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> NamedTuple | None:
        """The neuron state (a ``state_type`` NamedTuple of ``[B, ...]`` tensors), or None."""
        fields = [self._buffers[name] for name in self.state_type._fields]
        return None if fields[0] is None else self.state_type(*fields)

    def _store(self, state: NamedTuple | None, trace: Tensor | None, steps: int) -> None:
        if state is None:
            self.__dict__.pop("_eligibility", None)
        buffers = self._buffers  # plain dict access: nn.Module.__setattr__ costs microseconds
        fields = self.state_type._fields
        for name, value in zip(fields, state or (None,) * len(fields), strict=True):
            buffers[name] = value
        buffers["trace"] = trace
        self.__dict__["steps"] = steps
        self.__dict__["state_version"] += 1

    def reset_states(self) -> None:
        """Forget the state and the trace; the next input starts a new sequence.

        The state is rebuilt lazily from the next input, so the batch size may change.
        """
        self._store(None, None, 0)

    def detach_states(self) -> None:
        """Cut the graph through time of the state (BPTT mode), keeping its values."""
        state = self.state
        if state is not None:
            detached = self.state_type(*(t.detach() for t in state))
            for name, value in zip(self.state_type._fields, detached, strict=True):
                self._buffers[name] = value

    def stream_state_dict(self) -> dict[str, Tensor]:
        """The stream state: every state tensor, the trace and the steps since reset.

        Keys are the state's field names, ``"trace"`` and ``"steps"`` (an int64 scalar
        tensor), so the dict goes through ``torch.save(..., weights_only)`` loading.
        Restored by :meth:`load_stream_state_dict`, a stream continues bit for bit. Empty
        (only ``steps = 0``) before the first input or after a reset.
        """
        out: dict[str, Tensor] = {"steps": torch.tensor(self.steps, dtype=torch.int64)}
        state = self.state
        if state is not None:
            for name, value in zip(self.state_type._fields, state, strict=True):
                out[name] = value.detach().clone()
            out["trace"] = self.trace.detach().clone()
            out.update(eprop.eligibility_state_dict(self))
        return out

    def load_stream_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Restore a :meth:`stream_state_dict`; the next input continues that stream."""
        if not isinstance(state_dict, dict) or "steps" not in state_dict:
            raise TypeError(
                f"{type(self).__name__}.load_stream_state_dict expects the dict of "
                "stream_state_dict() (with a 'steps' entry)"
            )
        steps = int(state_dict["steps"])
        names = [*self.state_type._fields, "trace"]
        prefix = "eligibility."
        elig = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        present = [n for n in names if n in state_dict]
        if not present:
            self._store(None, None, steps)
            return
        missing = [n for n in names if n not in state_dict]
        if missing:
            raise KeyError(f"{type(self).__name__}: stream state misses {missing}")
        p = self.weight
        tensors = [state_dict[n].to(device=p.device, dtype=self.state_dtype) for n in names]
        self._store(self.state_type(*tensors[:-1]), tensors[-1], steps)
        eprop.load_eligibility_state(self, elig)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        # New parameters make the stream state of the old ones stale: start a new sequence.
        super()._load_from_state_dict(*args, **kwargs)
        self.reset_states()

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001
        super()._apply(fn, recurse)
        dtype = self.state_dtype
        for name in (*self.state_type._fields, "trace"):  # .half() keeps float32 states
            value = self._buffers[name]
            if value is not None and value.dtype != dtype:
                self._buffers[name] = value.to(dtype)
        return self

    def _prepare_state(self, x: Tensor, sequence: bool) -> None:
        batch = x.shape[1] if sequence else x.shape[0]
        state = self.state
        if state is None:
            features = tuple(x.shape[2:] if sequence else x.shape[1:])
            p, dtype = self.weight, self.state_dtype
            like = torch.empty((batch, *self.output_shape(features)), device=p.device, dtype=dtype)
            trace = torch.zeros((batch, *features), device=p.device, dtype=dtype)
            self._store(self.initial_state(like), trace, 0)
        elif state[0].shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}: batch size changed from {state[0].shape[0]} to "
                f"{batch} in the middle of a sequence; call reset_states() first"
            )

    # ------------------------------------------------------------------ forward
    def initial_state(self, like: Tensor) -> NamedTuple:
        """The state at the start of a sequence: zeros of ``like``'s shape ``[B, out...]``,
        dtype and device for every field. Override for another start (a resting potential)."""
        return self.state_type(*(torch.zeros_like(like) for _ in self.state_type._fields))

    def _check_features(self, x: Tensor) -> None:
        """ValueError unless the feature dimensions of ``x`` fit (dense: the last one)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: expected in_features={self.in_features} in the last "
                f"dimension of the input, got shape {tuple(x.shape)}"
            )

    def _input_spec(self) -> str:
        return f"[B, {self.in_features}] (one step) or [T, B, {self.in_features}] (a sequence)"

    def _check_input(self, x: Tensor) -> bool:
        """Validate ``x``; return True for a sequence, False for one step."""
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
                f"{name}: input must have shape {self._input_spec()}, got {tuple(x.shape)}"
            )
        self._check_features(x)
        if x.dim() == self.step_dim + 1 and x.shape[0] == 0:
            raise ValueError(f"{name}: the input sequence is empty (T = 0)")
        if x.shape[-self.step_dim] == 0:
            raise ValueError(f"{name}: the input batch is empty (B = 0)")
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
        """Advance the layer by one step ``[B, ...]`` or a sequence ``[T, B, ...]``.

        Returns the actual output, ``[B, out...]`` or ``[T, B, out...]``. In trace mode the
        call is one autograd node: ``loss.backward()`` on this output learns through the
        layer's local graph, built from its state at backward time.
        """
        sequence = self._check_input(x)
        self._prepare_state(x, sequence)
        if self.learning == "bptt" and torch.is_grad_enabled():
            return self._advance(x, sequence, bptt=True)
        grad = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters(recurse=False))
        )
        if self.learning == "eligibility":
            if grad:
                return eprop.eligibility_apply(self, x)
            if self.training:  # a step between learning points: the traces must see it too
                with torch.no_grad():
                    return eprop.advance(self, x)
        elif grad:
            return trace_apply(self, x)
        with torch.no_grad():
            return self._advance(x, sequence, bptt=False)

    def advance(self, x: Tensor) -> Tensor:
        """Run the dynamics on ``x`` without a graph, update the state, return the output.

        The fast path (:func:`tracetorch.nn.execution.advance_fast`): a sequence is processed
        in chunks of :meth:`chunk_steps` steps.
        """
        with torch.no_grad():
            return self._advance(x, x.dim() == self.step_dim + 1, bptt=False)

    def _advance(self, x: Tensor, sequence: bool, bptt: bool) -> Tensor:
        xs = x if sequence else x.unsqueeze(0)
        run = advance_graph if bptt else advance_fast
        out, state, trace = run(self, xs, self.state, self.trace)
        self._store(state, trace, self.steps + xs.shape[0])
        if self.check_finite and not finite(state, trace):
            raise FloatingPointError(
                f"{type(self).__name__}: the state or the input trace became NaN or infinite "
                "during this call; the input or the parameters contain NaN/inf or overflow "
                "(check with torch.isfinite). Call reset_states() before the next sequence."
            )
        if out.dtype != self.weight.dtype and not torch.is_autocast_enabled(x.device.type):
            out = out.to(self.weight.dtype)
        return out if sequence else out[0]

    #: Bytes of one chunk's outputs (``chunk x B x out``) that the automatic chunk size aims
    #: at, and its cap in steps. Measured (``python -m benchmarks.speed --chunks``, 1 thread):
    #: the best chunk keeps the outputs of a chunk at 1-8 MiB, e.g. 128 steps at B=64 and
    #: hidden 128, 32 at B=256, 16 at B=64 and hidden 512; small chunks pay a fixed cost of
    #: about twenty small ops per chunk, large ones fall out of cache.
    CHUNK_BYTES: ClassVar[int] = 4 * 2**20
    MAX_CHUNK_STEPS: ClassVar[int] = 128
    #: the layer's no-graph recursion is one the ``"compile"`` and ``"triton"`` backends fuse
    #: (LIF, LI, LIS: ``lif_run_``/``li_run_`` with one parameter per feature)
    fused_recursion: ClassVar[bool] = False

    @property
    def chunk_size(self) -> int | None:
        """Steps per chunk of the no-graph sequence path: a positive int, or ``None`` (default)
        for the automatic size of :meth:`chunk_steps`. It does not change the results beyond
        float rounding of the trace.
        """
        return self.__dict__.get("_chunk_size")

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        self.__dict__["_chunk_size"] = (
            None if value is None else P.check_positive_int(value, "chunk_size")
        )

    def chunk_steps(self, batch: int) -> int:
        """The chunk size in steps for a batch of ``batch``: :attr:`chunk_size` if set, else
        ``CHUNK_BYTES // (batch * output elements * bytes per element)``, between 1 and
        ``MAX_CHUNK_STEPS``. Under the ``"compile"`` backend a layer whose recursion it fuses
        (:attr:`fused_recursion`) gets a multiple of its block (``BLOCK_STEPS`` = 32 steps), at
        least one block: that backend fuses whole blocks only.
        """
        if self.chunk_size is not None:
            return self.chunk_size
        state = self.state
        elements = state[0][0].numel() if state is not None else self.out_features
        per_step = max(1, batch * elements * torch.finfo(self.state_dtype).bits // 8)
        steps = max(1, min(self.MAX_CHUNK_STEPS, self.CHUNK_BYTES // per_step))
        if self.fused_recursion and tf.get_backend() == "compile":
            k = _compiled.BLOCK_STEPS
            steps = max(k, steps - steps % k)
        return steps

    # ------------------------------------------------------------------ learning
    def average_input(self) -> Tensor:
        """``a = t (1 - d)`` (bias-corrected: ``/ (1 - d^n)``), ``[B, in...]``, differentiable
        in d."""
        if self.trace is None:
            raise RuntimeError(f"{type(self).__name__} has no state: run a forward pass first")
        steps = self.steps if self.bias_correction else None
        d = self.trace_decay.view(-1, *(1,) * (self.trace.dim() - 2))
        return tf.trace_mean(self.trace.detach(), d, steps)

    def _output_steps(self) -> int | None:
        """Steps since reset for the young-sequence correction of an average output, or None."""
        return self.steps if self.bias_correction else None

    def backward(self, learning_signal: Tensor) -> Tensor:
        """Learn from an explicit signal ``dL/d(output)`` ``[B, out...]``, without autograd.

        Uses the state as it is now. Accumulates gradients into the parameters' ``.grad``
        and returns the learning signal for the layer upstream, ``dL/da`` ``[B, in...]``.
        """
        if not isinstance(learning_signal, Tensor):
            raise TypeError("learning_signal must be a torch.Tensor")
        state = self.state
        if state is None:
            raise RuntimeError(f"{type(self).__name__} has no state: run a forward pass first")
        expected = tuple(state[0].shape)
        if tuple(learning_signal.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}: learning_signal must have shape {list(expected)} "
                f"(the output of one step), got {tuple(learning_signal.shape)}"
            )
        return trace_backward(self, learning_signal)

    def __prepare_scriptable__(self) -> nn.Module:
        raise TypeError(
            f"torch.jit.script does not support tracetorch layers ({type(self).__name__}): "
            "their state and learning modes are Python. Use torch.compile, or run eagerly."
        )

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
            ("learn_beta", self.beta_raw, self.default_learn_beta),
            ("learn_trace_decay", self.trace_decay_raw, False),
        ]
