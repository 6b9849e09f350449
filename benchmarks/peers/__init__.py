"""One adapter per library: the benchmark network written with that library's own public API.

Every adapter builds :class:`benchmarks.common.NetSpec` (LIF, LIF, leaky readout) and exposes the
same small surface, :class:`Runner`: ``reset()``, ``run(chunk) -> readout at the chunk's last
step``, ``parameters()`` and ``linears()`` (to copy weights between libraries). Peers are
imported lazily, so a missing peer only disables its own rows.

Discrete update each library runs (``c = W x + b``; ``beta = 0.9``, ``theta = 1``):

============== ================================================================================
library        LIF layer                                   readout
============== ================================================================================
tracetorch     ``m = beta m + c; s = [m >= theta];         ``tt.nn.LI``: ``m = beta m + c``
               m -= theta s`` (``tt.nn.LIF``)
snntorch       ``snn.Leaky(reset_mechanism="subtract",     ``snn.Leaky(reset_mechanism="none")``,
               reset_delay=False)``: same, spike at        output ``mem``
               ``m > theta``
norse          ``LIFBoxCell`` with ``reset_subtract``:     ``LIBoxCell``: same gain of 10
               ``v += dt/tau (-v + i)``, dt/tau = 0.1, so
               ``i = 10 c`` gives ``v = 0.9 v + c``
spikingjelly   ``neuron.LIFNode(tau=10, decay_input=False, ``LIFNode`` with ``v_threshold=1e9``
               v_reset=None)``: ``H = V - V/tau + X``,     (never fires), output ``.v``
               soft reset ``V = H - theta S``
floor          plain ``torch`` loop under ``no_grad``      same
============== ================================================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..common import NetSpec

__all__ = [
    "PEERS",
    "Runner",
    "StepRunner",
    "available",
    "build",
    "linear_stack",
    "peer_status",
    "require_lif",
]


class Runner:
    """A network of one library behind the common benchmark surface.

    Attributes:
        name: the library's name.
        module: the ``nn.Module`` that holds every parameter.
        learning: ``"bptt"`` (surrogate gradients through time) or ``"trace"`` (tracetorch).
    """

    name = "base"
    learning = "bptt"
    module: nn.Module

    def reset(self) -> None:
        """Start a new sequence: zero every state, drop every graph through time."""
        raise NotImplementedError

    def run(self, chunk: Tensor) -> Tensor:
        """Feed a chunk ``[t, B, n_in]``; return the readout ``[B, n_out]`` at its last step."""
        raise NotImplementedError

    def spikes(self, chunk: Tensor) -> list[Tensor]:
        """Feed a chunk and return every layer's output ``[t, B, F]`` (for the dynamics check)."""
        raise NotImplementedError

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.module.parameters()

    def linears(self) -> list[tuple[Tensor, Tensor]]:
        """``(weight [out, in], bias [out])`` per layer, in order (the synaptic weights)."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> Runner:
        self.module.train(mode)
        return self


class StepRunner(Runner):
    """A runner that steps a stack of linear layers ``fcs`` one timestep at a time.

    Subclasses provide ``_step(x [B, n_in], record) -> readout [B, n_out]`` (appending each
    layer's output to ``record[i]`` when given) and, if their state needs it before the first
    step, ``_prepare()``.
    """

    fcs: nn.ModuleList

    def _step(self, x: Tensor, record: list[list[Tensor]] | None = None) -> Tensor:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Called before each chunk (e.g. to build a state that ``reset`` left empty)."""

    def run(self, chunk: Tensor) -> Tensor:
        self._prepare()
        for x in chunk:
            out = self._step(x)
        return out

    def spikes(self, chunk: Tensor) -> list[Tensor]:
        self._prepare()
        record: list[list[Tensor]] = [[] for _ in range(len(self.fcs))]
        for x in chunk:
            self._step(x, record)
        return [torch.stack(r) for r in record]

    def linears(self) -> list[tuple[Tensor, Tensor]]:
        return [(fc.weight, fc.bias) for fc in self.fcs]


def require_lif(spec: NetSpec) -> None:
    """Refuse a spec this adapter cannot build (only tracetorch and snnTorch have RLIF)."""
    if spec.neuron != "lif":
        raise ValueError(f"this adapter builds LIF hidden layers only, not {spec.neuron!r}")


def linear_stack(spec: NetSpec) -> nn.ModuleList:
    """The synapses of ``spec`` as ``nn.Linear`` layers (default PyTorch init, as tracetorch)."""
    sizes = spec.sizes
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# name -> module in this package that defines ``build(spec, **options) -> Runner``
PEERS: dict[str, str] = {
    "tracetorch": "tracetorch_net",
    "snntorch": "snntorch_net",
    "norse": "norse_net",
    "spikingjelly": "spikingjelly_net",
    "floor": "floor",
    "gru": "gru",  # the non-spiking ceiling of the temporal tasks, not a peer library
}


def build(name: str, spec: NetSpec | None = None, **options) -> Runner:
    """Build library ``name``'s network for ``spec`` (default: the cost-case network)."""
    if name not in PEERS:
        raise ValueError(f"unknown library {name!r}; expected one of {sorted(PEERS)}")
    mod = importlib.import_module(f"{__name__}.{PEERS[name]}")
    return mod.build(spec or NetSpec(), **options)


def peer_status(name: str) -> str | None:
    """``None`` if library ``name`` imports and builds, else the reason it cannot be used."""
    try:
        build(name, NetSpec(n_in=4, hidden=(3,), n_out=2))
    except Exception as e:  # noqa: BLE001 - any failure makes the peer unavailable
        return f"{type(e).__name__}: {e}"
    return None


def available(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Split ``names`` into the usable ones and ``{name: reason}`` for the others."""
    ok, missing = [], {}
    for n in names:
        reason = peer_status(n)
        if reason is None:
            ok.append(n)
        else:
            missing[n] = reason
    return ok, missing
