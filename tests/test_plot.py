"""Plots: every function returns a figure that saves to PNG, draws into given axes, and fails
clearly without matplotlib."""

from __future__ import annotations

import sys

import pytest
import torch

import tracetorch as tt
from tracetorch import plot
from tracetorch.metrics import MultiTimescaleMeter, record_outputs

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


def saves(fig, tmp_path, name="fig.png") -> bool:
    path = tmp_path / name
    fig.savefig(path, dpi=40)
    return path.read_bytes()[:4] == b"\x89PNG"


def test_spike_raster(tmp_path):
    spikes = (torch.rand(50, 3, 20) < 0.1).float()
    fig = plot.spike_raster(spikes, batch=1, title="layer", max_neurons=10)
    assert isinstance(fig, Figure) and saves(fig, tmp_path)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == pytest.approx(9.5)  # 10 neurons shown
    n_dots = len(ax.collections[0].get_offsets())
    assert n_dots == int(spikes[:, 1, :10].sum())
    with pytest.raises(ValueError, match="batch=5"):
        plot.spike_raster(spikes, batch=5)
    with pytest.raises(TypeError, match="tensor"):
        plot.spike_raster([[0, 1]])


def test_trace_curves_and_traces(tmp_path):
    x = torch.ones(30, 2)
    t = plot.traces(x, 0.5)
    assert t[-1].tolist() == pytest.approx([2.0, 2.0])  # stationary value x / (1 - d)
    fig = plot.trace_curves(x, decay=0.5, labels=["a", "b"], average=True)
    assert saves(fig, tmp_path)
    line = fig.axes[0].lines[0].get_ydata()
    assert line[-1] == pytest.approx(1.0)  # the average input t (1 - d) -> x
    with pytest.raises(ValueError, match="labels"):
        plot.trace_curves(x, labels=["only one"])


def test_metric_meter_and_training_curves(tmp_path):
    meter = MultiTimescaleMeter("loss", decays=(0.0, 0.9))
    for i in range(20):
        meter.update(1.0 / (i + 1))
    fig = plot.metric_meter(meter, log_y=True)
    assert len(fig.axes[0].lines) == 2 and saves(fig, tmp_path)
    with pytest.raises(TypeError, match="MultiTimescaleMeter"):
        plot.metric_meter([1, 2])
    history = {
        "epoch": [1, 2],
        "train_loss": [1.0, 0.5],
        "test_loss": [1.1, 0.7],
        "train_accuracy": [0.5, 0.8],
        "test_accuracy": [0.4, 0.7],
    }
    acc = MultiTimescaleMeter("accuracy")
    acc.update(0.5)
    fig = plot.training_curves(history, {"loss": meter, "accuracy": acc}, title="run")
    assert len(fig.axes) == 2 and saves(fig, tmp_path, "curves.png")


def test_activity_and_drawing_into_given_axes(tmp_path):
    net = tt.nn.Sequential(tt.nn.LIF(6, 12), tt.nn.LI(12, 3))
    x = (torch.rand(40, 2, 6) < 0.3).float()
    rec = record_outputs(net, x)
    fig = plot.activity(rec, title="net")
    assert len(fig.axes) == 3 and saves(fig, tmp_path)
    assert "spikes" in fig.axes[1].get_title() and "values" in fig.axes[2].get_title()
    with pytest.raises(ValueError, match="empty"):
        plot.activity({})
    own = Figure()
    ax = own.add_subplot()
    assert plot.spike_raster(x, ax=ax) is own


def test_plot_needs_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"tracetorch\[plot\]"):
        plot.spike_raster(torch.zeros(3, 2))
