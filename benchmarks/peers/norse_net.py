"""Norse: ``nn.Linear`` + ``LIFBoxCell`` (no synaptic current) per layer, ``LIBoxCell`` readout.

Norse integrates ``dv/dt = (v_leak - v + i) / tau`` with an Euler step, so a step is
``v = (1 - dt/tau) v + (dt/tau) i``. With ``dt/tau = 0.1`` (its defaults: dt = 1 ms,
1/tau = 100/s) and the current scaled by ``1 / (dt/tau) = 10``, that is exactly
``v = 0.9 v + c``. ``reset_subtract`` gives the subtractive reset. Beta and threshold are fixed
(plain floats in ``LIFBoxParameters``). Surrogate: Norse's default SuperSpike (alpha 100).
"""

from __future__ import annotations

import torch
from norse.torch import LIBoxCell, LIBoxParameters, LIFBoxCell, LIFBoxParameters
from norse.torch.functional.reset import reset_subtract
from torch import Tensor, nn

from ..common import NetSpec
from . import StepRunner, linear_stack, require_lif

DT = 1e-3


class NorseRunner(StepRunner):
    name = "norse"

    def __init__(self, spec: NetSpec) -> None:
        self.fcs = linear_stack(spec)
        tau_inv = (1 - spec.beta) / DT
        self.gain = 1.0 / (DT * tau_inv)
        p = LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(tau_inv),
            v_th=torch.as_tensor(spec.threshold),
            reset_method=reset_subtract,
        )
        self.cells = nn.ModuleList(LIFBoxCell(p, dt=DT) for _ in spec.hidden)
        self.readout_gain = 1.0 / (1 - spec.readout_beta)
        self.readout = LIBoxCell(
            LIBoxParameters(tau_mem_inv=torch.as_tensor((1 - spec.readout_beta) / DT)), dt=DT
        )
        self.module = nn.ModuleDict({"fcs": self.fcs, "cells": self.cells, "readout": self.readout})
        self.states: list = []

    def reset(self) -> None:
        self.states = [None] * (len(self.cells) + 1)

    def _step(self, x: Tensor, record: list[list[Tensor]] | None = None) -> Tensor:
        s = self.states
        for i, (fc, cell) in enumerate(zip(self.fcs, self.cells, strict=False)):
            x, s[i] = cell(self.gain * fc(x), s[i])
            if record is not None:
                record[i].append(x)
        v, s[-1] = self.readout(self.readout_gain * self.fcs[-1](x), s[-1])
        if record is not None:
            record[-1].append(v)
        return v

    def _prepare(self) -> None:
        if not self.states:
            self.reset()


def build(spec: NetSpec) -> NorseRunner:
    require_lif(spec)
    return NorseRunner(spec)
