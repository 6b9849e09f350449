r"""Neuron dynamics, one step and a whole sequence, as pure functions.

Symbols: input current :math:`c = W x + b`, membrane :math:`m`, membrane decay
:math:`\beta \in (0, 1)`, threshold :math:`\theta > 0`, spikes :math:`s`.

LIF (leaky integrate and fire, subtractive reset):

.. math::
    m \leftarrow \beta m + c, \qquad s = [m \ge \theta], \qquad m \leftarrow m - \theta s.

LI (leaky integrator, the readout): :math:`m \leftarrow \beta m + c`; the output is :math:`m`.

LIS (leaky integrate and softmax): as LI, the output is :math:`\mathrm{softmax}(m)` over
the features.

The membrane of all three is a trace of the current (decay :math:`\beta`), reset on a spike
for LIF. The ``*_run`` functions loop over the time axis of a current ``[T, B, F]``; the
``*_step`` functions advance one step ``[B, F]``. Whether they build a graph is up to the
caller: under ``torch.no_grad()`` they are the trace-mode forward, with autograd enabled and a
surrogate ``spike_fn`` they are BPTT.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .surrogates import heaviside

__all__ = ["lif_step", "lif_run", "li_step", "li_run", "lis_run"]

SpikeFn = Callable[[Tensor], Tensor]


def lif_step(
    c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, spike_fn: SpikeFn = heaviside
) -> tuple[Tensor, Tensor]:
    """One LIF step. ``c, m: [B, F]``; ``beta, theta: [F]``. Returns ``(spikes, membrane)``."""
    m = beta * m + c
    s = spike_fn(m - theta)
    return s, m - theta * s


def lif_run(
    c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, spike_fn: SpikeFn = heaviside
) -> tuple[Tensor, Tensor]:
    """LIF over a sequence. ``c: [T, B, F]``, ``m: [B, F]``. Returns ``(spikes [T, B, F], m)``."""
    spikes = []
    for c_t in c.unbind(0):
        s, m = lif_step(c_t, m, beta, theta, spike_fn)
        spikes.append(s)
    return torch.stack(spikes), m


def li_step(c: Tensor, m: Tensor, beta: Tensor) -> Tensor:
    """One leaky-integrator step ``beta * m + c``. Returns the new membrane (the output)."""
    return beta * m + c


def li_run(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LI over a sequence. ``c: [T, B, F]``. Returns ``(membranes [T, B, F], last membrane)``."""
    ms = []
    for c_t in c.unbind(0):
        m = li_step(c_t, m, beta)
        ms.append(m)
    return torch.stack(ms), m


def lis_run(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LIS over a sequence: LI, then a softmax over features. Returns ``(probs, membrane)``."""
    ms, m = li_run(c, m, beta)
    return torch.softmax(ms, dim=-1), m
