r"""LIF, LI and LIS dynamics as pure functions of an explicit state.

Symbols: input current :math:`c = W x + b`, membrane :math:`m`, membrane decay
:math:`\beta \in (0, 1)`, threshold :math:`\theta > 0`, spikes :math:`s`.

LIF (leaky integrate and fire, subtractive reset by default):

.. math::
    m \leftarrow \beta m + c, \qquad s = [m \ge \theta], \qquad m \leftarrow m - \theta s.

With ``reset="zero"`` (``LIFParams.reset``) a spike sets the membrane to zero instead,
:math:`m \leftarrow m (1 - s)`: the hard reset of NIR's ``LIF`` (``v_reset = 0``).

LI (leaky integrator, the readout): :math:`m \leftarrow \beta m + c`; the output is :math:`m`.

LIS (leaky integrate and softmax): as LI, the output is :math:`\mathrm{softmax}(m)` over
the last dimension.

Each neuron has a **state** (a NamedTuple of tensors ``[B, F]``), **parameters** (a
NamedTuple; ``beta``/``theta`` broadcast against the state, usually ``[F]``) and one
**reference step** ``step(c, state, p) -> (output, state)``, out of place and differentiable
(BPTT uses it with a surrogate ``spike_fn``). Whole sequences run through
:func:`~tracetorch.functional.run` (differentiable) or :func:`~tracetorch.functional.run_`
(in place, no autograd). The ``*_run_`` functions below are hand-written in-place forms of
the same arithmetic for the fast path of trace mode; ``tests/test_neurons.py`` pins them to
the reference step bit for bit. The decay-and-add :math:`\beta m + c` is one fused
multiply-add (``torch.addcmul``): one rounding, one kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from . import _compiled, _cpp, _triton
from .surrogates import heaviside

__all__ = [
    "LIFParams",
    "LIFState",
    "LIParams",
    "LIState",
    "li_run_",
    "li_step",
    "lif_run_",
    "lif_step",
    "lis_run_",
    "lis_step",
]

SpikeFn = Callable[[Tensor], Tensor]


class LIFState(NamedTuple):
    """State of a LIF layer: ``membrane`` ``[B, F]`` (after the reset of the last step)."""

    membrane: Tensor


class LIFParams(NamedTuple):
    """LIF parameters: decay ``beta``, threshold ``theta`` (broadcast to ``[B, F]``), spike,
    ``detach_reset`` (the reset carries no gradient: BPTT as e-prop sees it) and the
    ``reset``: ``"subtract"`` (``m - theta s``, default) or ``"zero"`` (``m (1 - s)``).
    """

    beta: Tensor | float
    theta: Tensor | float
    spike_fn: SpikeFn = heaviside
    detach_reset: bool = False
    reset: str = "subtract"


RESETS = ("subtract", "zero")


class LIState(NamedTuple):
    """State of an LI or LIS layer: ``membrane`` ``[B, F]``."""

    membrane: Tensor


class LIParams(NamedTuple):
    """LI/LIS parameters: the membrane decay ``beta``."""

    beta: Tensor | float


def lif_step(c: Tensor, state: LIFState, p: LIFParams) -> tuple[Tensor, LIFState]:
    """One LIF step. ``c: [B, F]``. Returns ``(spikes [B, F], new state)``."""
    m = torch.addcmul(c, state.membrane, torch.as_tensor(p.beta, dtype=c.dtype, device=c.device))
    theta = torch.as_tensor(p.theta, dtype=c.dtype, device=c.device)
    s = p.spike_fn(m - theta)
    r = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        return s, LIFState(m * (1 - r))
    return s, LIFState(m - theta * r)


def li_step(c: Tensor, state: LIState, p: LIParams) -> tuple[Tensor, LIState]:
    """One leaky-integrator step ``beta * m + c``. Returns ``(membrane, new state)``."""
    m = torch.addcmul(c, state.membrane, torch.as_tensor(p.beta, dtype=c.dtype, device=c.device))
    return m, LIState(m)


def lis_step(c: Tensor, state: LIState, p: LIParams) -> tuple[Tensor, LIState]:
    """One LIS step: :func:`li_step`, output ``softmax(m)`` over the last dimension."""
    m, state = li_step(c, state, p)
    return torch.softmax(m, dim=-1), state


def lif_run_(c: Tensor, state: LIFState, p: LIFParams) -> tuple[Tensor, LIFState]:
    r"""LIF over a sequence, in place: ``c [T, B, F]`` is overwritten by the spikes.

    Per step, three kernels and no allocation:

    .. math::
        m \leftarrow \mathrm{fma}(\beta, m, c_t), \qquad
        c_t \leftarrow [m \ge \theta], \qquad m \leftarrow m - \theta c_t

    (``reset="zero"``: :math:`m \leftarrow m - m c_t`, which is :math:`m (1 - c_t)` exactly).

    ``c`` must be owned by the caller; ``state`` is not modified. Returns ``(c, new state)``,
    the values of :func:`lif_step` with the Heaviside spike, bit for bit (``p.spike_fn`` is
    not used). Run it under ``torch.no_grad()``. With ``set_backend("cpp")`` the loop is one
    compiled kernel (CPU), with the same results; with ``set_backend("compile")`` blocks of
    steps are fused by ``torch.compile`` (any device; see ``_compiled.py``) and with
    ``set_backend("triton")`` a chunk is one Triton kernel (CUDA; see ``_triton.py``): the
    same values up to the rounding of ``beta * m + c``.
    """
    beta, theta = p.beta, p.theta
    zero = p.reset == "zero"  # the C++ kernel only subtracts
    if not zero and (done := _cpp.lif_run_(c, state.membrane, beta, theta)) is not None:
        return done[0], LIFState(done[1])
    beta = torch.as_tensor(beta, dtype=c.dtype, device=c.device)
    theta = torch.as_tensor(theta, dtype=c.dtype, device=c.device)
    if _cpp.get_backend() == "triton" and (
        (m := _triton.lif_run_(c, state.membrane, beta, theta, zero)) is not None
    ):
        return c, LIFState(m)
    m0, start = state.membrane, 0
    if _cpp.get_backend() == "compile":  # whole blocks fused; the rest below
        start, m0 = _compiled.lif_run_(c, m0, beta, theta, zero)
    steps = c.unbind(0)[start:]
    if not steps:
        return c, LIFState(m0.clone())
    m = torch.addcmul(steps[0], m0, beta)  # a fresh buffer
    for t, c_t in enumerate(steps):
        if t:
            torch.addcmul(c_t, m, beta, out=m)
        torch.ge(m, theta, out=c_t)
        if zero:
            m.addcmul_(m, c_t, value=-1)
        else:
            m.addcmul_(c_t, theta, value=-1)
    return c, LIFState(m)


def li_run_(c: Tensor, state: LIState, p: LIParams) -> tuple[Tensor, LIState]:
    r"""LI over a sequence, in place: ``c [T, B, F]`` is overwritten by the membranes.

    One kernel per step, :math:`c_t \leftarrow \mathrm{fma}(\beta, c_{t-1}, c_t)` (with
    :math:`c_{-1} = m`). Returns ``(c, new state)``; ``state`` is not modified. The values of
    :func:`li_step`, bit for bit (the ``"compile"`` and ``"triton"`` backends: up to the
    rounding of the multiply-add). Run it under ``torch.no_grad()``.
    """
    if (done := _cpp.li_run_(c, state.membrane, p.beta)) is not None:
        return done[0], LIState(done[1])
    beta = torch.as_tensor(p.beta, dtype=c.dtype, device=c.device)
    if _cpp.get_backend() == "triton" and (
        (m := _triton.li_run_(c, state.membrane, beta)) is not None
    ):
        return c, LIState(m)
    prev, start = state.membrane, 0
    if _cpp.get_backend() == "compile":  # whole blocks fused; the rest below
        start, prev = _compiled.li_run_(c, prev, beta)
    for c_t in c.unbind(0)[start:]:
        torch.addcmul(c_t, prev, beta, out=c_t)
        prev = c_t
    return c, LIState(prev.clone())


def lis_run_(c: Tensor, state: LIState, p: LIParams) -> tuple[Tensor, LIState]:
    """LIS in place: :func:`li_run_`, then ``c`` is overwritten by ``softmax(membranes)``.

    The softmax needs one temporary of ``c``'s size (pass chunks to bound it).
    """
    c, state = li_run_(c, state, p)
    if c.numel():
        c.copy_(torch.softmax(c, dim=-1))
    return c, state
