r"""Plots: spike rasters, trace curves, multi-timescale metric meters, training curves.

Needs matplotlib (``pip install 'tracetorch[plot]'``), imported on first use. Every function
draws into ``ax`` when given one, else into a new :class:`matplotlib.figure.Figure` (no
pyplot state, no GUI: it works headless); it returns the figure, to show in a notebook or
save with ``fig.savefig("raster.png")``.

>>> rec = tt.metrics.record_outputs(net, x[:, :4])     # every layer's output, 4 samples
>>> tt.plot.activity(rec).savefig("activity.png")
>>> tt.plot.trace_curves(x, decay=0.95, channels=range(5))  # t <- t*d + x, per channel
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .metrics import MultiTimescaleMeter

__all__ = [
    "activity",
    "metric_meter",
    "spike_raster",
    "trace_curves",
    "traces",
    "training_curves",
]


def _figure_cls():
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("tracetorch.plot needs matplotlib: pip install 'tracetorch[plot]'") from e
    return Figure


def _axes(ax, figsize=(7, 3.5)):
    if ax is not None:
        return ax.figure, ax
    fig = _figure_cls()(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _select(x: Tensor, batch: int, name: str) -> Tensor:
    """``[T, N]`` from ``[T]``, ``[T, N]`` or ``[T, B, ...]`` (sample ``batch``, flattened)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    x = x.detach().float().cpu()
    if x.dim() == 1:
        return x.unsqueeze(1)
    if x.dim() == 2:
        return x
    if not 0 <= batch < x.shape[1]:
        raise ValueError(f"batch={batch} is out of range for {name} of shape {tuple(x.shape)}")
    return x[:, batch].reshape(x.shape[0], -1)


def spike_raster(
    spikes: Tensor,
    *,
    ax: Any = None,
    batch: int = 0,
    title: str | None = None,
    max_neurons: int | None = None,
    color: str = "black",
    size: float | None = None,
):
    """Dot raster of spikes: a dot at (step, neuron) for every nonzero entry.

    Args:
        spikes: ``[T, N]`` or ``[T, B, N]`` (``[T, B, ...]`` is flattened per sample).
        ax: draw here (a matplotlib Axes); default a new figure.
        batch: the sample to show of a batched input.
        title: axes title.
        max_neurons: show the first neurons only.
        color, size: of the dots (size default: smaller for longer sequences).

    Returns:
        the figure.
    """
    s = _select(spikes, batch, "spikes")
    if max_neurons is not None:
        s = s[:, :max_neurons]
    fig, ax = _axes(ax)
    t, n = torch.nonzero(s, as_tuple=True)
    if size is None:
        size = max(0.5, min(8.0, 2000.0 / max(1, s.shape[0])))
    ax.scatter(
        t.numpy(),
        n.numpy(),
        s=size,
        c=color,
        marker="|" if s.shape[0] < 500 else ".",
        linewidths=0.8,
    )
    ax.set_xlim(-0.5, s.shape[0] - 0.5)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    return fig


def traces(x: Tensor, decay: float | Tensor) -> Tensor:
    """The input trace over time, ``t_n = d t_{n-1} + x_n`` from ``t_0 = 0``: ``[T, ...]``."""
    out = torch.empty_like(x, dtype=torch.float32)
    t = torch.zeros_like(x[0], dtype=torch.float32)
    d = torch.as_tensor(decay, dtype=torch.float32)
    for i in range(x.shape[0]):
        t = t * d + x[i].float()
        out[i] = t
    return out


def trace_curves(
    x: Tensor,
    *,
    decay: float | Tensor | None = None,
    ax: Any = None,
    batch: int = 0,
    channels: Iterable[int] | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    average: bool = False,
):
    """Curves of values over time: membranes, outputs, or input traces.

    Args:
        x: ``[T, N]`` or ``[T, B, N]``.
        decay: if given, plot the trace of ``x`` with this decay (:func:`traces`) instead of
            ``x`` itself.
        ax, batch, title: as :func:`spike_raster`.
        channels: which channels to draw (default: the first 10).
        labels: legend labels of the drawn channels.
        average: with ``decay``, plot the average input ``t (1 - d)`` instead of the trace.

    Returns:
        the figure.
    """
    v = _select(x, batch, "x")
    if decay is not None:
        v = traces(v, decay)
        if average:
            v = v * (1 - torch.as_tensor(decay, dtype=torch.float32))
    channels = list(range(min(10, v.shape[1]))) if channels is None else list(channels)
    if labels is not None and len(labels) != len(channels):
        raise ValueError(f"labels has {len(labels)} entries for {len(channels)} channels")
    fig, ax = _axes(ax)
    steps = range(v.shape[0])
    for i, c in enumerate(channels):
        ax.plot(steps, v[:, c].numpy(), lw=1, label=labels[i] if labels else None)
    if labels:
        ax.legend(fontsize="small")
    ax.set_xlabel("step")
    ax.set_ylabel("average input" if average else "trace" if decay is not None else "value")
    if title:
        ax.set_title(title)
    return fig


def metric_meter(
    meter: MultiTimescaleMeter, *, ax: Any = None, title: str | None = None, log_y: bool = False
):
    """The running averages of a :class:`~tracetorch.metrics.MultiTimescaleMeter`, one curve
    per decay (faint for the raw values, darker for the slower averages)."""
    if not isinstance(meter, MultiTimescaleMeter):
        raise TypeError(f"meter must be a MultiTimescaleMeter, got {type(meter).__name__}")
    fig, ax = _axes(ax)
    if meter.history:
        h = torch.tensor(meter.history)
        steps = range(1, h.shape[0] + 1)
        k = len(meter.decays)
        for i, d in enumerate(meter.decays):
            alpha = 0.25 + 0.75 * (i + 1) / k
            ax.plot(
                steps,
                h[:, i].numpy(),
                lw=1 if d == 0 else 1.5,
                alpha=alpha,
                label="raw" if d == 0 else f"decay {d:g}",
            )
        ax.legend(fontsize="small")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel(meter.name)
    ax.set_title(title or meter.name)
    return fig


def training_curves(
    history: Mapping[str, Sequence[float]],
    meters: Mapping[str, MultiTimescaleMeter] | None = None,
    *,
    title: str | None = None,
):
    """Loss and accuracy of a training run: two panels, against epochs.

    Args:
        history: from :meth:`tracetorch.training.Trainer.fit` (``train_loss``, ``test_loss``,
            ``train_accuracy``, ``test_accuracy`` per epoch).
        meters: the trainer's per-batch meters (``trainer.meters``); their running averages
            are drawn too, spread over the epochs.

    Returns:
        the figure.
    """
    Figure = _figure_cls()
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    epochs = list(history.get("epoch", []))
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        meter = (meters or {}).get(metric)
        if meter is not None and meter.history and epochs:
            h = torch.tensor(meter.history)
            x = torch.arange(1, h.shape[0] + 1) * (epochs[-1] / h.shape[0])
            for j, d in enumerate(meter.decays):
                if d > 0:
                    ax.plot(
                        x.numpy(),
                        h[:, j].numpy(),
                        lw=1,
                        alpha=0.5,
                        label=f"train, batch average {d:g}",
                    )
        for split, style in (("train", "o-"), ("test", "s-")):
            values = history.get(f"{split}_{metric}")
            if values:
                ax.plot(epochs, values, style, ms=3, label=f"{split} (epoch)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if metric == "loss":
            ax.set_yscale("log")
        ax.legend(fontsize="x-small")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def activity(
    recorded: Mapping[str, Tensor],
    *,
    batch: int = 0,
    title: str | None = None,
    max_neurons: int | None = 100,
):
    """One panel per layer: a spike raster for spiking outputs, curves for real-valued ones.

    Args:
        recorded: ``{name: [T, B, N]}``, e.g. from :func:`tracetorch.metrics.record_outputs`.
        batch: the sample to show.
        max_neurons: neurons per raster.

    Returns:
        the figure.
    """
    if not recorded:
        raise ValueError("recorded is empty: nothing to plot")
    Figure = _figure_cls()
    n = len(recorded)
    fig = Figure(figsize=(9, 2.2 * n), layout="constrained")
    for i, (name, x) in enumerate(recorded.items()):
        ax = fig.add_subplot(n, 1, i + 1)
        v = _select(x, batch, name)
        binary = bool(((v == 0) | (v == 1)).all())
        if binary:
            spike_raster(v, ax=ax, max_neurons=max_neurons)
            rate = float(v.mean())
            ax.set_title(f"{name}: spikes (rate {rate:.3f} per neuron per step)", fontsize="small")
        else:
            k = min(10, v.shape[1])
            trace_curves(v, ax=ax, channels=range(k), labels=[f"unit {j}" for j in range(k)])
            ax.legend(fontsize="x-small", ncol=min(k, 5))
            ax.set_ylabel("value")
            ax.set_title(f"{name}: values (e.g. membranes)", fontsize="small")
        if i < n - 1:
            ax.set_xlabel("")
    if title:
        fig.suptitle(title)
    return fig
