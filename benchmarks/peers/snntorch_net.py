"""snnTorch: ``nn.Linear`` + ``snn.Leaky`` per layer, stepped in a Python loop (its usual form).

``reset_delay=False`` makes the subtractive reset act in the step of the spike, as in tracetorch
(snnTorch's default, ``True``, subtracts one step later). Spikes fire at ``m > theta``
(tracetorch: ``>=``). Beta and threshold are per-neuron but fixed, snnTorch's default
(``learn_beta=False``): snnTorch learns beta unconstrained (clamped to [0, 1]), where
tracetorch learns a logit, and with a slow readout (beta 0.995) Adam's first steps wreck the
readout's memory (evidence at delay 100: 63% learnable vs 94% fixed in a probe).
Surrogate: snnTorch's default ATan (alpha 2), the same function as tracetorch's ``"atan"``.
``spec.neuron == "rlif"``: ``snn.RLeaky(all_to_all=True)`` hidden layers, a dense recurrent
``nn.Linear`` on the previous step's spikes, made the same as ``tt.nn.RLIF``'s defaults: no
self-connection (the diagonal masked by a parametrization) and no recurrent bias (zero, frozen).
Both initialise the recurrent weights uniform in +-1/sqrt(n). Same spikes from the same
weights (``tests/test_benchmarks.py``) except where a membrane reaches twice the threshold, so
that it is still at or above threshold after its reset: snnTorch then decides the next spike
on the membrane less the pending reset, tracetorch on the membrane itself.
"""

from __future__ import annotations

import snntorch as snn
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..common import NetSpec
from . import StepRunner, linear_stack


class _NoSelfConnection(nn.Module):
    """``W`` with its diagonal zeroed (``tt.nn.RLIF(zero_diagonal=True)``)."""

    def forward(self, w: Tensor) -> Tensor:
        return w * (1 - torch.eye(w.shape[0], dtype=w.dtype, device=w.device))


class SnntorchRunner(StepRunner):
    name = "snntorch"

    def __init__(self, spec: NetSpec, learn_beta: bool = False, learn_threshold: bool = False):
        self.fcs = linear_stack(spec)
        self.recurrent = spec.neuron == "rlif"
        self.lifs = nn.ModuleList(
            (snn.RLeaky if self.recurrent else snn.Leaky)(
                beta=torch.full((n,), spec.beta),
                threshold=torch.full((n,), spec.threshold),
                learn_beta=learn_beta,
                learn_threshold=learn_threshold,
                reset_mechanism="subtract",
                reset_delay=False,
                **({"linear_features": n} if self.recurrent else {}),
            )
            for n in spec.hidden
        )
        if self.recurrent:
            for lif in self.lifs:
                parametrize.register_parametrization(lif.recurrent, "weight", _NoSelfConnection())
                nn.init.zeros_(lif.recurrent.bias)
                lif.recurrent.bias.requires_grad_(False)
        self.readout = snn.Leaky(
            beta=torch.full((spec.n_out,), spec.readout_beta),
            learn_beta=learn_beta,
            reset_mechanism="none",
        )
        self.module = nn.ModuleDict({"fcs": self.fcs, "lifs": self.lifs, "readout": self.readout})

    def reset(self) -> None:
        for lif in [*self.lifs, self.readout]:
            lif.mem = torch.zeros(0)  # rebuilt from the next input (drops the graph)
            if hasattr(lif, "spk"):
                lif.spk = torch.zeros(0)  # RLeaky's previous spikes, likewise

    def _step(self, x: Tensor, record: list[list[Tensor]] | None = None) -> Tensor:
        for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs, strict=False)):
            x = lif(fc(x))[0]
            if record is not None:
                record[i].append(x)
        _, mem = self.readout(self.fcs[-1](x))
        if record is not None:
            record[-1].append(mem)
        return mem


def build(spec: NetSpec, **options) -> SnntorchRunner:
    return SnntorchRunner(spec, **options)
