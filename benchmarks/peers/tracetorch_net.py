"""tracetorch: ``tt.nn.Sequential(LIF, LIF, LI)`` (or ``RLIF`` hidden layers), in trace
learning (default), eligibility or BPTT mode."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

import tracetorch as tt

from ..common import NetSpec
from . import Runner


class TracetorchRunner(Runner):
    """The network as a user writes it; each chunk goes through the fast sequence path."""

    name = "tracetorch"

    def __init__(
        self,
        spec: NetSpec,
        learning: str = "trace",
        lif_kwargs: dict[str, Any] | None = None,
        li_kwargs: dict[str, Any] | None = None,
        **layer_kwargs: Any,
    ) -> None:
        lif_kw = {**layer_kwargs, **(lif_kwargs or {})}
        li_kw = {**layer_kwargs, **(li_kwargs or {})}
        layers: list[torch.nn.Module] = []
        sizes = spec.sizes
        hidden = tt.nn.RLIF if spec.neuron == "rlif" else tt.nn.LIF
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers.append(hidden(n_in, n_out, beta=spec.beta, threshold=spec.threshold, **lif_kw))
        layers.append(tt.nn.LI(sizes[-2], sizes[-1], beta=spec.readout_beta, **li_kw))
        self.module = tt.nn.Sequential(*layers)
        self.learning = learning
        tt.learning.set_learning(self.module, learning)

    def reset(self) -> None:
        self.module.reset_states()

    def run(self, chunk: Tensor) -> Tensor:
        return self.module(chunk)[-1]

    def spikes(self, chunk: Tensor) -> list[Tensor]:
        outs, x = [], chunk
        for layer in self.module:
            x = layer(x)
            outs.append(x)
        return outs

    def linears(self) -> list[tuple[Tensor, Tensor]]:
        return [(layer.weight, layer.bias) for layer in self.module]


def build(spec: NetSpec, learning: str = "trace", **kwargs: Any) -> TracetorchRunner:
    """``learning``: ``"trace"``, ``"eligibility"`` or ``"bptt"``; ``lif_kwargs`` /
    ``li_kwargs`` go to one layer type, any other keyword to every layer (e.g. ``horizon=``,
    ``bias_correction=``)."""
    return TracetorchRunner(spec, learning, **kwargs)
