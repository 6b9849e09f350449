r"""Measuring training: multi-timescale running averages, firing rates, memory.

- :class:`MultiTimescaleMeter`: running averages of a metric at several decays at once, the
  metric's own trace (as the original traceTorch's measurement manager): with decay
  :math:`d`, :math:`t \leftarrow d\,t + v` and the average is :math:`t (1 - d) / (1 - d^n)`
  after :math:`n` values (bias-corrected, so young averages are not pulled to zero).
- :class:`FiringRates`: mean spikes per neuron and step of each spiking layer (forward hooks).
- :func:`record_outputs`: every layer's output over a sequence, for rasters.
- :func:`peak_memory_mb`, :func:`current_memory_mb`: process memory, without psutil.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "FiringRates",
    "MultiTimescaleMeter",
    "accuracy",
    "current_memory_mb",
    "peak_allocated_bytes",
    "peak_memory_mb",
    "record_outputs",
    "spiking_layers",
]


class MultiTimescaleMeter:
    r"""Running averages of one metric at several timescales.

    Each decay :math:`d_k` keeps a trace :math:`t_k \leftarrow d_k t_k + v` of the values
    :math:`v`; its average is :math:`t_k (1 - d_k)`, bias-corrected by :math:`1 - d_k^n`
    (``bias_correction``). Decay 0 is the raw value; 0.9, 0.99, 0.999 average over about
    10, 100, 1000 updates. Every update is kept in :attr:`history` for plotting.

    Args:
        name: the metric's name (``"loss"``, ``"accuracy"``).
        decays: decays in [0, 1).
        bias_correction: divide by :math:`1 - d^n`.

    Example:
        >>> meter = MultiTimescaleMeter("loss")
        >>> for v in (1.0, 0.5, 0.25):
        ...     meter.update(v)
        >>> meter.average(0.0), round(meter.average(0.9), 3)
        (0.25, 0.564)
    """

    def __init__(
        self,
        name: str = "metric",
        decays: Sequence[float] = (0.0, 0.9, 0.99, 0.999),
        *,
        bias_correction: bool = True,
    ) -> None:
        decays = [float(d) for d in decays]
        if not decays:
            raise ValueError("decays must not be empty")
        for d in decays:
            if not 0.0 <= d < 1.0:
                raise ValueError(f"each decay must be in [0, 1), got {d}")
        self.name = str(name)
        self.decays = decays
        self.bias_correction = bool(bias_correction)
        self.reset()

    def reset(self) -> None:
        """Forget every value."""
        self._traces = [0.0] * len(self.decays)
        self.count = 0
        self.history: list[list[float]] = []  # one row per update: the average of each decay

    def update(self, value: float | Tensor) -> None:
        """Add one value (a float or a one-element tensor)."""
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"{self.name}: got NaN")
        self.count += 1
        self._traces = [d * t + v for d, t in zip(self.decays, self._traces, strict=True)]
        self.history.append(self.averages())

    def average(self, decay: float | None = None) -> float:
        """The average at ``decay`` (default: the slowest); NaN before any update."""
        if self.count == 0:
            return math.nan
        k = len(self.decays) - 1 if decay is None else self.decays.index(float(decay))
        d, t = self.decays[k], self._traces[k]
        norm = 1 - d**self.count if self.bias_correction else 1.0
        return t * (1 - d) / norm

    def averages(self) -> list[float]:
        """The current average of each decay, in the order of :attr:`decays`."""
        return [self.average(d) for d in self.decays]

    def state_dict(self) -> dict:
        """Everything needed to resume (plain Python types)."""
        return {
            "name": self.name,
            "decays": list(self.decays),
            "bias_correction": self.bias_correction,
            "traces": list(self._traces),
            "count": self.count,
            "history": [list(r) for r in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        self.name = state["name"]
        self.decays = list(state["decays"])
        self.bias_correction = bool(state["bias_correction"])
        self._traces = list(state["traces"])
        self.count = int(state["count"])
        self.history = [list(r) for r in state["history"]]

    def __repr__(self) -> str:
        avgs = ", ".join(
            f"{d:g}: {a:.4g}" for d, a in zip(self.decays, self.averages(), strict=True)
        )
        return f"MultiTimescaleMeter({self.name!r}, n={self.count}, {{{avgs}}})"


def spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the layers of ``model`` whose output is spikes (those with a
    ``threshold``, e.g. :class:`tracetorch.nn.LIF`), in module order."""
    return [
        (name or type(m).__name__, m)
        for name, m in model.named_modules()
        if hasattr(m, "threshold") and hasattr(m, "reset_states")
    ]


class FiringRates:
    """Mean firing rate (spikes per neuron per step) of each spiking layer of a model.

    Registers forward hooks on :func:`spiking_layers` and sums their outputs over every call
    until :meth:`reset`. Use as a context manager, or call :meth:`remove` when done.

    Example:
        >>> with FiringRates(net) as rates:
        ...     net(x)
        >>> rates.rates()          # {"0": 0.12}
    """

    def __init__(self, model: nn.Module, layers: Iterable[tuple[str, nn.Module]] | None = None):
        self.layers = list(spiking_layers(model) if layers is None else layers)
        self._sums: dict[str, Tensor | float] = {}
        self._counts: dict[str, int] = {}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.layers]
        self.reset()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if isinstance(output, Tensor):
                self._sums[name] = self._sums[name] + output.detach().sum()
                self._counts[name] += output.numel()

        return hook

    def reset(self) -> None:
        """Zero the counts."""
        self._sums = {n: 0.0 for n, _ in self.layers}
        self._counts = {n: 0 for n, _ in self.layers}

    def rates(self) -> dict[str, float]:
        """``{layer name: mean spikes per neuron and step}`` (NaN for a layer not yet run)."""
        return {
            n: float(self._sums[n]) / self._counts[n] if self._counts[n] else math.nan
            for n, _ in self.layers
        }

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> FiringRates:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@torch.no_grad()
def record_outputs(
    model: nn.Module, x: Tensor | Iterable[Tensor], *, reset: bool = True, leaves_only: bool = True
) -> dict[str, Tensor]:
    """Run ``model`` on ``x`` and return every layer's output over the whole sequence.

    Args:
        model: e.g. a :class:`tracetorch.nn.Sequential`.
        x: the input ``[T, B, F]``, or its chunks (a :class:`~tracetorch.data.SpikeStream`);
            the outputs of all chunks are concatenated, so keep ``B`` small for long ones.
        reset: call ``model.reset_states()`` before (and after, leaving no state behind).
        leaves_only: record modules without children only.

    Returns:
        ``{"input": x, layer name: output [T, B, N], ...}`` in the order the layers ran.
    """
    parts: dict[str, list[Tensor]] = {"input": []}
    handles = []
    for name, m in model.named_modules():
        if m is model or (leaves_only and next(m.children(), None) is not None):
            continue

        def hook(module, inputs, output, name=name):
            if isinstance(output, Tensor):
                parts.setdefault(name, []).append(output.detach())

        handles.append(m.register_forward_hook(hook))
    chunks = (x,) if isinstance(x, Tensor) else x
    try:
        if reset and hasattr(model, "reset_states"):
            model.reset_states()
        for chunk in chunks:
            parts["input"].append(chunk.detach())
            result = model(chunk)
            if len(handles) == 0 and isinstance(result, Tensor):
                parts.setdefault("output", []).append(result.detach())
    finally:
        for h in handles:
            h.remove()
        if reset and hasattr(model, "reset_states"):
            model.reset_states()
    return {k: torch.cat(v) for k, v in parts.items() if v}


def accuracy(output: Tensor, target: Tensor) -> float:
    """Share of rows of ``output`` ``[B, C]`` whose argmax equals ``target`` ``[B]``."""
    if output.dim() != 2 or target.shape != output.shape[:1]:
        raise ValueError(
            f"accuracy needs output [B, C] and target [B], got {tuple(output.shape)} and "
            f"{tuple(target.shape)}"
        )
    return float((output.argmax(-1) == target).float().mean())


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``), in MiB; NaN if unknown.

    It never decreases: compare runs in separate processes.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def current_memory_mb() -> float:
    """Resident memory of this process now (``/proc/self/statm``), in MiB; NaN if unknown."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return math.nan
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_allocated_bytes(fn: Callable[[], object]) -> int:
    """Peak of the bytes PyTorch allocated on the CPU and had not yet freed while ``fn()`` ran.

    Read from the profiler's memory events (``torch.profiler``, ``profile_memory=True``), so it
    counts tensors only, independent of the C allocator: the measure of a step's workspace.
    """
    import warnings

    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    events = []
    for e in prof.events():
        if e.name == "[memory]":
            events.append((e.time_range.start, e.cpu_memory_usage))
        elif e.self_cpu_memory_usage:
            events.append((e.time_range.start, e.self_cpu_memory_usage))
    current = peak = 0
    for _, nbytes in sorted(events):
        current += nbytes
        peak = max(peak, current)
    return peak
