"""SpikingJelly (activation_based): ``layer.Linear`` + ``neuron.LIFNode``, multi-step mode.

``LIFNode(tau=10, decay_input=False, v_reset=None)`` charges ``H = V - V / tau + X`` (so
``beta = 1 - 1/tau = 0.9`` exactly) and soft-resets ``V = H - theta S``: the tracetorch LIF.
Each chunk ``[t, B, F]`` goes through in ``step_mode="m"`` (its fast path; on CPU the ``torch``
backend). SpikingJelly has no leaky-integrator readout with a persistent state
(``NonSpikingLIFNode`` restarts from zero at every call), so the readout is a ``LIFNode`` with
``v_threshold=1e9`` (it never fires) whose membrane ``.v`` is read. Beta and threshold are
fixed. Surrogate: ``surrogate.ATan()`` (alpha 2), as tracetorch's ``"atan"``.
"""

from __future__ import annotations

from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import Tensor, nn

from ..common import NetSpec
from . import Runner, require_lif

NEVER = 1e9


class SpikingjellyRunner(Runner):
    name = "spikingjelly"

    def __init__(self, spec: NetSpec) -> None:
        sizes = spec.sizes
        mods: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            mods.append(layer.Linear(n_in, n_out, step_mode="m"))
            mods.append(self._lif(spec.beta, spec.threshold))
        mods.append(layer.Linear(sizes[-2], sizes[-1], step_mode="m"))
        self.readout = self._lif(spec.readout_beta, NEVER)
        mods.append(self.readout)
        self.module = nn.Sequential(*mods)

    @staticmethod
    def _lif(beta: float, threshold: float) -> neuron.LIFNode:
        return neuron.LIFNode(
            tau=float(1 / (1 - beta)),
            decay_input=False,
            v_threshold=float(threshold),
            v_reset=None,
            surrogate_function=surrogate.ATan(),
            step_mode="m",
        )

    def reset(self) -> None:
        functional.reset_net(self.module)

    def run(self, chunk: Tensor) -> Tensor:
        self.module(chunk)
        return self.readout.v

    def spikes(self, chunk: Tensor) -> list[Tensor]:
        outs, x = [], chunk
        self.readout.store_v_seq = True
        for mod in self.module:
            x = mod(x)
            if isinstance(mod, neuron.LIFNode):
                outs.append(x if mod is not self.readout else mod.v_seq)
        self.readout.store_v_seq = False
        return outs

    def linears(self) -> list[tuple[Tensor, Tensor]]:
        return [(m.weight, m.bias) for m in self.module if isinstance(m, nn.Linear)]


def build(spec: NetSpec) -> SpikingjellyRunner:
    require_lif(spec)
    return SpikingjellyRunner(spec)
