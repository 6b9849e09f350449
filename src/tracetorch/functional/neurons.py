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
for LIF. The decay-and-add :math:`\beta m + c` is evaluated as one fused multiply-add
(``torch.addcmul``): one rounding instead of two, and one kernel instead of two.

Three forms, with identical arithmetic (so they agree bit for bit on the same device):

- ``*_step``: one step ``[B, F]``, out of place.
- ``*_run``: a sequence ``[T, B, F]``, out of place. With autograd enabled and a surrogate
  ``spike_fn`` this is BPTT: the graph goes through every step.
- ``*_run_``: a sequence, **in place**: the current ``c`` is overwritten by the outputs, the
  membrane is updated in a single buffer, nothing is allocated per step. This is the fast
  path of trace mode and of inference; it must run without autograd (``torch.no_grad()``),
  and ``c`` must be a tensor the caller owns (not an expanded view, not a user's input).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import _cpp
from .surrogates import heaviside

__all__ = ["lif_step", "lif_run", "lif_run_", "li_step", "li_run", "li_run_", "lis_run", "lis_run_"]

SpikeFn = Callable[[Tensor], Tensor]


def lif_step(
    c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, spike_fn: SpikeFn = heaviside
) -> tuple[Tensor, Tensor]:
    """One LIF step. ``c, m: [B, F]``; ``beta, theta: [F]``. Returns ``(spikes, membrane)``."""
    m = torch.addcmul(c, m, beta)
    s = spike_fn(m - theta)
    return s, m - theta * s


def lif_run(
    c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, spike_fn: SpikeFn = heaviside
) -> tuple[Tensor, Tensor]:
    """LIF over a sequence. ``c: [T, B, F]``, ``m: [B, F]``. Returns ``(spikes [T, B, F], m)``.

    Out of place and differentiable (BPTT with a surrogate ``spike_fn``); see :func:`lif_run_`
    for the allocation-free version used without autograd.
    """
    spikes = []
    for c_t in c.unbind(0):
        s, m = lif_step(c_t, m, beta, theta, spike_fn)
        spikes.append(s)
    if not spikes:
        return c.new_empty(c.shape), m
    return torch.stack(spikes), m


def lif_run_(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    r"""LIF over a sequence, in place: ``c [T, B, F]`` is overwritten by the spikes.

    Per step, three kernels and no allocation:

    .. math::
        m \leftarrow \mathrm{fma}(\beta, m, c_t), \qquad
        c_t \leftarrow [m \ge \theta], \qquad m \leftarrow m - \theta c_t.

    Args:
        c: currents ``[T, B, F]``, owned by the caller; on return it holds the spikes (0./1.).
        m: membrane before the sequence, ``[B, F]``; it is **not** modified.
        beta, theta: decay and threshold, broadcastable to ``[B, F]`` (usually ``[F]``).

    Returns:
        ``(c, membrane after the last step)``: the same values as :func:`lif_run` with the
        Heaviside spike, bit for bit. Run it under ``torch.no_grad()``. With
        ``set_backend("cpp")`` the loop is one compiled kernel (CPU), with the same results.
    """
    if (done := _cpp.lif_run_(c, m, beta, theta)) is not None:
        return done
    theta = torch.as_tensor(theta, dtype=c.dtype, device=c.device)
    steps = c.unbind(0)
    if not steps:
        return c, m.clone()
    m = torch.addcmul(steps[0], m, beta)  # a fresh buffer: the caller's m stays as it was
    for t, c_t in enumerate(steps):
        if t:
            torch.addcmul(c_t, m, beta, out=m)
        torch.ge(m, theta, out=c_t)
        m.addcmul_(c_t, theta, value=-1)
    return c, m


def li_step(c: Tensor, m: Tensor, beta: Tensor) -> Tensor:
    """One leaky-integrator step ``beta * m + c`` (one fused multiply-add). Returns the membrane."""
    return torch.addcmul(c, m, beta)


def li_run(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LI over a sequence. ``c: [T, B, F]``. Returns ``(membranes [T, B, F], last membrane)``."""
    ms = []
    for c_t in c.unbind(0):
        m = li_step(c_t, m, beta)
        ms.append(m)
    if not ms:
        return c.new_empty(c.shape), m
    return torch.stack(ms), m


def li_run_(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    r"""LI over a sequence, in place: ``c [T, B, F]`` is overwritten by the membranes.

    One kernel per step, :math:`c_t \leftarrow \mathrm{fma}(\beta, c_{t-1}, c_t)` (with
    :math:`c_{-1} = m`). Returns ``(c, a copy of the last membrane)``; ``m`` is not modified.
    Same values as :func:`li_run`, bit for bit. Run it under ``torch.no_grad()``; with
    ``set_backend("cpp")`` the loop is one compiled kernel (CPU).
    """
    if (done := _cpp.li_run_(c, m, beta)) is not None:
        return done
    prev = m
    for c_t in c.unbind(0):
        torch.addcmul(c_t, prev, beta, out=c_t)
        prev = c_t
    return c, prev.clone()


def lis_run(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LIS over a sequence: LI, then a softmax over features. Returns ``(probs, membrane)``."""
    ms, m = li_run(c, m, beta)
    return torch.softmax(ms, dim=-1), m


def lis_run_(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LIS in place: :func:`li_run_`, then ``c`` is overwritten by ``softmax(membranes)``.

    The softmax needs one temporary of ``c``'s size (pass chunks to bound it). Returns
    ``(c, last membrane)``, the same values as :func:`lis_run`.
    """
    c, m = li_run_(c, m, beta)
    if c.numel():
        c.copy_(torch.softmax(c, dim=-1))
    return c, m
