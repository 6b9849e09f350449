"""The non-spiking ceiling: ``nn.GRU`` with the hidden sizes of the spec, ``nn.Linear`` readout.

Not a spiking library: it shows what the data allow a recurrent network of the same width and
depth (``len(spec.hidden)`` GRU layers of ``spec.hidden[0]`` units) trained with BPTT. Its
hidden state carries over between the chunks of one sequence, with the graph.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..common import NetSpec
from . import Runner


class GRURunner(Runner):
    name = "gru"

    def __init__(self, spec: NetSpec) -> None:
        if len(set(spec.hidden)) != 1:
            raise ValueError(f"the GRU ceiling needs equal hidden sizes, got {spec.hidden}")
        self.gru = nn.GRU(spec.n_in, spec.hidden[0], num_layers=len(spec.hidden))
        self.out = nn.Linear(spec.hidden[0], spec.n_out)
        self.module = nn.ModuleDict({"gru": self.gru, "out": self.out})
        self.h: Tensor | None = None

    def reset(self) -> None:
        self.h = None

    def run(self, chunk: Tensor) -> Tensor:
        y, self.h = self.gru(chunk, self.h)
        return self.out(y[-1])

    def spikes(self, chunk: Tensor) -> list[Tensor]:
        y, self.h = self.gru(chunk, self.h)
        return [y, self.out(y)]

    def linears(self) -> list[tuple[Tensor, Tensor]]:
        return [(self.out.weight, self.out.bias)]


def build(spec: NetSpec) -> GRURunner:
    return GRURunner(spec)


__all__ = ["GRURunner", "build"]
