"""The floor: the same dynamics as a plain per-step PyTorch loop, no autograd, no library.

What one step of the network costs with nothing around it: per step and layer an ``addmm``, a
decay, a threshold and a reset, in place where possible. It has no learning, so it appears in
the forward-time and forward-memory columns only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..common import NetSpec
from . import StepRunner, linear_stack, require_lif


class FloorRunner(StepRunner):
    name = "floor"
    learning = "none"

    def __init__(self, spec: NetSpec) -> None:
        self.fcs = linear_stack(spec)
        self.module = self.fcs
        self.beta = spec.beta
        self.readout_beta = spec.readout_beta
        self.threshold = spec.threshold
        self.mems: list[Tensor] = []

    def reset(self) -> None:
        self.mems = []

    @torch.no_grad()
    def _step(self, x: Tensor, record: list[list[Tensor]] | None = None) -> Tensor:
        if not self.mems:
            self.mems = [x.new_zeros(x.shape[0], fc.out_features) for fc in self.fcs]
        n = len(self.fcs)
        for i, (fc, m) in enumerate(zip(self.fcs, self.mems, strict=True)):
            c = torch.addmm(fc.bias, x, fc.weight.t())
            if i < n - 1:
                m.mul_(self.beta).add_(c)
                x = m.ge(self.threshold).to(m.dtype)
                m.sub_(x, alpha=self.threshold)
            else:
                m.mul_(self.readout_beta).add_(c)
                x = m
            if record is not None:
                record[i].append(x.clone())
        return x

    def run(self, chunk: Tensor) -> Tensor:
        return super().run(chunk).clone()  # the readout is a reused state buffer


def build(spec: NetSpec) -> FloorRunner:
    require_lif(spec)
    return FloorRunner(spec)
