r"""Eligibility learning: timing-aware gradients in constant memory (e-prop).

Trace learning sees each layer's *average* input and so cannot credit timing. BPTT sees every
step and costs O(T) memory. Eligibility learning keeps, per layer and per sample, forward-mode
derivatives of the neuron's own dynamics (eligibility traces): for one hidden layer under a
leaky readout they make the gradient equal to BPTT's (with the reset detached, or kept: see
below), in memory independent of T.

**Spiking layers** (:class:`~tracetorch.nn.LIF`, :class:`~tracetorch.nn.RLIF`), pre-reset
membrane :math:`u(t) = \beta m(t-1) + W x(t) + b\ [+ V s(t-1)]`, :math:`s = H(u - \theta)`,
surrogate derivative :math:`\psi(t) = \partial s/\partial u`, reset detached:

.. math::
    e(t) &= \beta\, e(t-1) + x(t) &\quad& \text{(eligibility vector: } \partial u(t)/\partial W) \\
    E(t) &= \kappa\, E(t-1) + \psi(t)\, e(t) && \text{(filtered by the consumer's decay } \kappa)

per output-input pair ``[B, out, in]``; likewise for the bias (input 1), for :math:`\beta`
(input :math:`m(t-1)`), for :math:`\theta` (input :math:`-\beta s(t-1)`, and
:math:`\partial s/\partial\theta = \psi (e_\theta - 1)`), and for RLIF's :math:`V` (input
:math:`s(t-1)`, e-prop's approximation: the influence of a spike through *other* neurons'
later spikes is dropped). With the learning signal :math:`L_j = \partial L/\partial s_j`
from the consumer (for an ``LI`` readout :math:`L = g V`, :math:`g = \partial L/\partial m`),
:math:`\nabla W_{ji} = \sum_b L_{bj} E_{bji}`.

Over a chunk of :math:`n` steps the update is a contraction over time, done with BLAS: with
:math:`G(t) = \sum_{t' \ge t} \kappa^{n-t'} \beta^{t'-t} \psi(t')` (one backward recursion
over ``[B, out]`` tensors),

.. math::
    E(n) = \kappa^n E(0) + \beta G(1)\, e(0) + \textstyle\sum_t G(t)\, x(t)^\top,
    \qquad e(n) = \beta^n e(0) + \textstyle\sum_t \beta^{n-t} x(t)^\top,

two batched matrix products ``[B, out, n] @ [B, n, in]`` per chunk.

With ``eligibility_reset="kept"`` (LIF, RLIF) the reset's derivative stays in: the decay
:math:`\beta` of these recursions becomes :math:`a(t) = \beta(1 - \theta\psi(t))` per sample
and neuron (:func:`_spiking_chunk_reset_kept`), and one hidden layer gets BPTT's gradients with
the reset kept.

**Readouts** (:class:`~tracetorch.nn.LI`, :class:`~tracetorch.nn.LIS`): exact. The membrane
:math:`m(T) = \sum_t \beta^{T-t} (W x(t) + b)`, so :math:`\partial m_j/\partial W_{ji}` is the
input trace filtered by the readout's own :math:`\beta_j`, and :math:`\partial m/\partial\beta`
an eligibility of input :math:`m(t-1)`.

**The filter** :math:`\kappa` of a layer is the decay of the layer its spikes feed, wired by
:class:`~tracetorch.nn.Sequential` (``layer.eligibility_filter``; 0 for a memoryless consumer
such as ``nn.Linear``). **Deeper nets**: the signal passed upstream,
:math:`L^{\text{low}} = (L \odot \bar\psi \cdot \gamma)\, W` with :math:`\bar\psi` the
:math:`\kappa`-average of :math:`\psi` and the gain :math:`\gamma = 1/(1 - \min)` of the
two decays :math:`\kappa, \beta` (the lower layer is then filtered by their maximum; the gain
keeps the total weight of the two filters in series), is an approximation
(``docs/learning-modes.md``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .trace import TraceFunction

__all__ = [
    "EligibilityFunction",
    "eligibility_apply",
    "eligibility_filter_of",
    "filter_of",
    "supports",
    "wire_filters",
]


def _spiking_kinds() -> dict[type, bool]:
    from ..nn import LIF, RLIF

    return {LIF: False, RLIF: True}


def _stepwise_kinds() -> tuple[type, ...]:
    """Neurons whose eligibility runs step by step (time-varying factors: no closed form)."""
    from ..nn import ALIF, Synaptic

    return (ALIF, Synaptic)


def _readout_kinds() -> dict[type, bool]:
    from ..nn import LI, LIS

    return {LI: False, LIS: True}


def supports(layer) -> bool:
    """Whether ``layer`` has an eligibility rule (LIF, RLIF, ALIF, Synaptic, LI, LIS)."""
    kind = type(layer)
    return kind in _spiking_kinds() or kind in _readout_kinds() or kind in _stepwise_kinds()


def _require(layer) -> None:
    if getattr(layer, "reset", "subtract") != "subtract":
        raise NotImplementedError(
            f"learning='eligibility' needs the subtractive reset; {type(layer).__name__} has "
            f"reset={layer.reset!r} (use 'trace' or 'bptt')"
        )
    from ..nn import ConvLIF

    if not supports(layer):
        why = (
            ": a convolution's shared weights do not factor per output-input pair"
            if isinstance(layer, ConvLIF)
            else ""
        )
        raise NotImplementedError(
            f"learning='eligibility' is not available for {type(layer).__name__} (it is for "
            f"LIF, RLIF, ALIF, Synaptic, LI and LIS); use 'trace' or 'bptt' for this layer{why}"
        )


def filter_of(layer) -> float:
    """The filter ``kappa`` this layer's eligibility uses: set by hand, wired, or 0."""
    explicit = layer.eligibility_filter
    if explicit is not None:
        return float(explicit)
    return float(layer.__dict__.get("_wired_filter", 0.0))


def wire_filters(layers) -> None:
    """Give each layer of a chain (in order) the filter of the tracetorch layer it feeds.

    The last layer's consumer is the loss (filter 0); modules that are not tracetorch layers
    (``nn.Linear``, ``Flatten``, ...) are memoryless and pass the filter through.
    """
    from ..nn.base import TraceLayer

    downstream = 0.0
    for layer in reversed(list(layers)):
        if not isinstance(layer, TraceLayer):
            continue
        layer.__dict__["_wired_filter"] = downstream
        if supports(layer):
            downstream = eligibility_filter_of(layer)


def eligibility_filter_of(layer) -> float:
    """The decay with which ``layer``'s consumers should filter their eligibility.

    A readout: the mean of its ``beta``. A spiking layer: the larger of its own filter and the
    mean of its ``beta`` (its membrane carries an input's influence that long).
    """
    beta = float(layer.beta.detach().mean())
    if type(layer) in _readout_kinds():
        return beta
    return max(filter_of(layer), beta)


# ----------------------------------------------------------------------------- state
def _zeros_state(layer, batch: int, n_in: int) -> dict[str, Tensor]:
    out = layer.state[0].shape[-1]
    z = {"device": layer.weight.device, "dtype": layer.state_dtype}
    if isinstance(layer, _stepwise_kinds()):
        state = {"k": torch.zeros(batch, out, **z), "steps_k": torch.zeros((), **z)}
        for name in _stepwise_params(layer):
            shape = (batch, out, n_in) if name == "weight" else (batch, out)
            for part in ("M", "X", "E"):  # dm/dP, d(auxiliary state)/dP, filtered ds/dP
                state[f"{part}_{name}"] = torch.zeros(shape, **z)
        return state
    if type(layer) in _readout_kinds():
        return {
            "e_w": torch.zeros(batch, out, n_in, **z),
            "e_b": torch.zeros(batch, out, **z),
            "e_beta": torch.zeros(batch, out, **z),
        }
    small = ("e_b", "E_b", "e_beta", "E_beta", "e_th", "E_th", "k")
    state = {name: torch.zeros(batch, out, **z) for name in small}
    state["e_w"] = torch.zeros(batch, out, n_in, **z)
    state["E_w"] = torch.zeros(batch, out, n_in, **z)
    state["steps_k"] = torch.zeros((), **z)  # sum of kappa^age: normalises k
    state["s_last"] = torch.zeros(batch, out, **z)  # spikes of the last step, s(t-1)
    # the last step's psi: with the reset kept, its factor beta (1 - theta psi) carries e(0)
    state["psi_last"] = torch.zeros(batch, out, **z)
    return state


def _state(layer, batch: int, n_in: int) -> dict[str, Tensor]:
    state = layer.__dict__.get("_eligibility")
    fresh = layer.__dict__.get("_eligibility_version") == layer.state_version
    if state is not None and fresh:
        return state
    if layer.steps:  # the layer advanced without its eligibility traces
        raise RuntimeError(
            f"{type(layer).__name__}: switched to learning='eligibility' in the middle of a "
            "sequence, or ran part of it in eval mode without autograd; the eligibility traces "
            "need the whole sequence: reset_states() first (and keep the model in train mode)"
        )
    return _zeros_state(layer, batch, n_in)


# ----------------------------------------------------------------------------- forward
def advance(layer, x: Tensor) -> Tensor:
    """Run ``layer`` on ``x`` without a graph, updating its state and eligibility traces."""
    _require(layer)
    return _advance(layer, x)


def _advance(layer, x: Tensor) -> Tensor:
    """Run ``layer`` on ``x`` without a graph, updating its state and eligibility traces."""
    from .. import functional as tf
    from ..nn.execution import _trace_decay_and_weights, _trace_run

    sequence = x.dim() == layer.step_dim + 1
    xs = x if sequence else x.unsqueeze(0)
    steps, batch = xs.shape[0], xs.shape[1]
    recurrent = _spiking_kinds().get(type(layer), False)
    n_in = layer.in_features + (layer.out_features if recurrent else 0)
    elig = _state(layer, batch, n_in)
    size = layer.chunk_steps(batch)
    state, trace = layer.state, layer.trace
    p = layer.fast_params()
    out = state[0].new_empty((steps, *state[0].shape))
    d, w = _trace_decay_and_weights(layer, steps, size)
    readout = type(layer) in _readout_kinds()
    for start in range(0, steps, size):
        xc, oc = xs[start : start + size], out[start : start + size]
        trace = _trace_run(trace, xc, d, w)
        layer.current_into(xc, oc)
        xin = xc.to(layer.state_dtype)
        if isinstance(layer, _stepwise_kinds()):
            if _keeps_reset(layer):
                raise ValueError(
                    f"{type(layer).__name__}: eligibility_reset='kept' is implemented for LIF "
                    "and RLIF only; use 'detached'"
                )
            state = _stepwise_chunk(layer, elig, xin, oc, state, p)
            res = oc
        elif readout:  # the membranes (LI's run), then LIS's softmax of them
            prev = state.membrane
            res, state = tf.li_run_(oc, tf.LIState(prev), tf.LIParams(p.beta))
            _readout_chunk(layer, elig, xin, prev, oc)
            if _readout_kinds()[type(layer)]:
                oc.copy_(torch.softmax(oc, dim=-1))
        else:
            psi, m_prev, s_prev = _spiking_steps(layer, oc, state, p, elig)
            state = layer.__dict__.pop("_last_state")
            if recurrent:
                xin = torch.cat([xin, s_prev], dim=-1)
            _spiking_chunk(layer, elig, xin, psi, m_prev, s_prev)
            res = oc
        if res is not oc:
            oc.copy_(res)
    layer._store(state, trace, layer.steps + steps)
    layer.__dict__["_eligibility"] = elig
    layer.__dict__["_eligibility_version"] = layer.state_version
    from ..nn.base import finite

    if layer.check_finite and not finite(state, trace):
        raise FloatingPointError(
            f"{type(layer).__name__}: the state became NaN or infinite during this call"
        )
    if out.dtype != layer.weight.dtype:
        out = out.to(layer.weight.dtype)
    return out if sequence else out[0]


def _spiking_steps(layer, oc: Tensor, state, p, elig: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Step a LIF/RLIF layer over the chunk's currents ``oc`` (overwritten by the spikes).

    Returns ``(psi, m(t-1), s(t-1))``, each ``[L, B, out]``; the new state is left on the layer.
    The loop is the in-place form of the reference step (three kernels per step, one more for
    RLIF's recurrent current), recording the pre-reset membrane ``u``; everything else is
    computed over the whole chunk at once. The eligibility tests pin it to the reference step
    through BPTT (which runs it).
    """
    from ..functional import surrogate_derivative

    theta = torch.as_tensor(p.theta, dtype=oc.dtype, device=oc.device)
    beta = torch.as_tensor(p.beta, dtype=oc.dtype, device=oc.device)
    recurrent = getattr(p, "recurrent", None)
    u = torch.empty_like(oc)
    m = state.membrane
    s_last = elig["s_last"]
    us, cs = u.unbind(0), oc.unbind(0)  # views made once, not at every step
    for t, (u_t, c_t) in enumerate(zip(us, cs, strict=True)):
        if recurrent is not None:
            torch.addmm(c_t, s_last if t == 0 else cs[t - 1], recurrent.t(), out=u_t)
            torch.addcmul(u_t, m, beta, out=u_t)
        else:
            torch.addcmul(c_t, m, beta, out=u_t)
        torch.ge(u_t, theta, out=c_t)
        m = torch.addcmul(u_t, c_t, theta, value=-1)
    psi = surrogate_derivative(layer.surrogate, u - theta)
    # m(t-1) and s(t-1), shifted by one step: one buffer each, no concatenation
    m_prev = torch.empty_like(u)
    m_prev[0] = state.membrane
    torch.addcmul(u[:-1], oc[:-1], theta, value=-1, out=m_prev[1:])
    s_prev = torch.empty_like(u)
    s_prev[0] = s_last
    s_prev[1:] = oc[:-1]
    elig["s_last"] = oc[-1].clone()
    layer.__dict__["_last_state"] = (
        type(state)(m, oc[-1].clone()) if recurrent is not None else type(state)(m)
    )
    return psi, m_prev, s_prev


def _powers(base: Tensor, n: int) -> Tensor:
    """``base ** k`` for ``k = 0..n-1`` as ``[n, *base.shape]``."""
    k = torch.arange(n, dtype=base.dtype, device=base.device)
    return base.unsqueeze(0) ** k.view(n, *(1,) * base.dim())


def _keeps_reset(layer) -> bool:
    mode = getattr(layer, "eligibility_reset", "detached")
    if mode not in ("detached", "kept"):
        raise ValueError(
            f"{type(layer).__name__}.eligibility_reset must be 'detached' or 'kept', got {mode!r}"
        )
    return mode == "kept"


def _spiking_chunk(layer, elig: dict, x: Tensor, psi: Tensor, m_prev: Tensor, s_prev: Tensor):
    """Advance a spiking layer's eligibility traces over one chunk (see the module doc)."""
    if _keeps_reset(layer):
        _spiking_chunk_reset_kept(layer, elig, x, psi, m_prev, s_prev)
        return
    n = psi.shape[0]
    beta = layer.beta.detach()  # [out]
    kappa = torch.as_tensor(filter_of(layer), dtype=psi.dtype)
    kpow = _powers(kappa, n).flip(0).view(n, 1, 1)  # kappa^(n-t), t = 1..n
    # G(t) = kappa^(n-t) psi(t) + beta G(t+1), backwards over the chunk
    g = torch.mul(psi, kpow)
    k_chunk = g.sum(0)  # sum_t kappa^(n-t) psi(t), before the recursion overwrites g
    gs = g.unbind(0)
    for t in range(n - 2, -1, -1):
        gs[t].addcmul_(gs[t + 1], beta)
    g1 = g[0] * beta  # beta G(1): the weight of e(0)
    bpow = _powers(beta, n).flip(0)  # beta^(n-t), [n, out]
    kn = kappa**n
    # big traces: [B, out, in]
    gt = g.permute(1, 2, 0)  # [B, out, n]
    xt = x.permute(1, 0, 2)  # [B, n, in]
    e_w, big_e = elig["e_w"], elig["E_w"]
    big_e.mul_(kn).addcmul_(e_w, g1.unsqueeze(-1)).baddbmm_(gt, xt)
    # one GEMM [out, n] @ [n, B * in] (x is [n, B, in] contiguous: a view, no copy)
    new_e = torch.mm(bpow.t(), x.reshape(n, -1)).view(-1, x.shape[1], x.shape[2])
    e_w.mul_((beta**n).view(1, -1, 1)).add_(new_e.transpose(0, 1))
    # small traces: [B, out], inputs 1 (bias), m(t-1) (beta), -beta s(t-1) (threshold; the
    # factor -beta is applied to the sums, not to an [n, B, out] temporary)
    bpow3 = bpow.unsqueeze(1)
    for name, inp, scale in (("b", None, None), ("beta", m_prev, None), ("th", s_prev, -beta)):
        e, big = elig["e_" + name], elig["E_" + name]
        contrib = g.sum(0) if inp is None else (g * inp).sum(0)
        new_e = bpow.sum(0) if inp is None else (bpow3 * inp).sum(0)
        if scale is not None:
            contrib.mul_(scale)
            new_e.mul_(scale)
        big.mul_(kn).addcmul_(e, g1).add_(contrib)
        if name == "th":
            big.sub_(k_chunk)
        e.mul_(beta**n).add_(new_e)
    elig["k"].mul_(kn).add_(k_chunk)
    elig["steps_k"].mul_(kn).add_(kpow.sum())
    _remember_last_step(elig, psi)


def _remember_last_step(elig: dict, psi: Tensor) -> None:
    """Keep the last step's ``psi`` (the reset-kept form's carry needs it), in either form, so
    that ``eligibility_reset`` can change between calls."""
    elig["psi_last"] = psi[-1].clone()


def _spiking_chunk_reset_kept(
    layer, elig: dict, x: Tensor, psi: Tensor, m_prev: Tensor, s_prev: Tensor
) -> None:
    r""":func:`_spiking_chunk` with the reset in the derivatives (``eligibility_reset="kept"``).

    With :math:`m = u - \theta s` differentiated through :math:`s` too,
    :math:`\partial m/\partial u = 1 - \theta\psi`, so the membrane's decay in the
    eligibility recursions becomes :math:`a(t) = \beta (1 - \theta \psi(t))`, per sample and
    neuron: :math:`\varepsilon(t) = a(t-1)\,\varepsilon(t-1) + x(t)` for the weight (and
    likewise the bias, input 1; :math:`\beta`, input :math:`m(t-1)`; :math:`\theta`, input
    :math:`\beta(\theta\psi(t-1) - s(t-1))`), :math:`E \leftarrow \kappa E + \psi\varepsilon`.
    Over a chunk, :math:`G(t) = \kappa^{n-t}\psi(t) + a(t) G(t+1)` and the weights
    :math:`A(t) = \prod_{t \le t' < n} a(t')` replace the powers of :math:`\beta`; the two
    contractions over time stay batched matrix products. For one hidden layer the gradients
    equal BPTT's with the reset kept (``tests/test_eprop.py``).
    """
    n = psi.shape[0]
    beta = layer.beta.detach()  # [out]
    theta = layer.threshold.detach().to(psi.dtype)
    kappa = torch.as_tensor(filter_of(layer), dtype=psi.dtype)
    kpow = _powers(kappa, n).flip(0).view(n, 1, 1)  # kappa^(n-t)
    a = beta * (1 - theta * psi)  # [n, B, out]: dm(t)/dm(t-1) through u and the reset
    g = torch.mul(psi, kpow)
    k_chunk = g.sum(0)
    gs, as_ = g.unbind(0), a.unbind(0)
    for t in range(n - 2, -1, -1):
        gs[t].addcmul_(gs[t + 1], as_[t])
    psi0 = elig.setdefault("psi_last", torch.zeros_like(psi[0]))  # (older saved traces: none)
    a0 = beta * (1 - theta * psi0)  # a of the step before the chunk: the weight of e(0)
    g1 = g[0] * a0
    # weights[i] = a_i a_(i+1) ... a_(n-2) (1 for the last step): the weight of input i in the
    # chunk's last e; the e of the previous chunk carries a0 * weights[0]
    weights = torch.empty_like(a)  # [n, B, out]; a loop of [B, out] products: cumprod over the
    weights[-1] = 1  # outer dimension (with two flips) cost 30x more (2026-11-30)
    ws = weights.unbind(0)
    for t in range(n - 2, -1, -1):
        torch.mul(as_[t], ws[t + 1], out=ws[t])
    carry = a0 * weights[0]
    kn = kappa**n
    gt = g.permute(1, 2, 0)  # [B, out, n]
    xt = x.permute(1, 0, 2)  # [B, n, in]
    e_w, big_e = elig["e_w"], elig["E_w"]
    big_e.mul_(kn).addcmul_(e_w, g1.unsqueeze(-1)).baddbmm_(gt, xt)
    e_w.mul_(carry.unsqueeze(-1)).baddbmm_(weights.permute(1, 2, 0), xt)
    psi_prev = torch.cat([elig["psi_last"].unsqueeze(0), psi[:-1]])
    th_input = beta * (theta * psi_prev - s_prev)
    for name, inp in (("b", None), ("beta", m_prev), ("th", th_input)):
        e, big = elig["e_" + name], elig["E_" + name]
        contrib = g.sum(0) if inp is None else (g * inp).sum(0)
        new_e = weights.sum(0) if inp is None else (weights * inp).sum(0)
        big.mul_(kn).addcmul_(e, g1).add_(contrib)
        if name == "th":
            big.sub_(k_chunk)
        e.mul_(carry).add_(new_e)
    elig["k"].mul_(kn).add_(k_chunk)
    elig["steps_k"].mul_(kn).add_(kpow.sum())
    _remember_last_step(elig, psi)


def _readout_chunk(layer, elig: dict, x: Tensor, prev: Tensor, membranes: Tensor) -> None:
    """Exact readout eligibilities over one chunk: filtered inputs, bias and beta terms."""
    n = x.shape[0]
    beta = layer.beta.detach()
    bpow = _powers(beta, n).flip(0)  # beta^(n-t), [n, out]
    m_before = torch.cat([prev.unsqueeze(0), membranes[:-1]])  # m(t-1)
    new_e = torch.mm(bpow.t(), x.reshape(n, -1)).view(-1, x.shape[1], x.shape[2])  # one GEMM
    elig["e_w"].mul_((beta**n).view(1, -1, 1)).add_(new_e.transpose(0, 1))
    elig["e_b"].mul_(beta**n).add_(bpow.sum(0))
    # e_beta(t) = beta e_beta(t-1) + m(t-1)
    elig["e_beta"].mul_(beta**n).add_((bpow.unsqueeze(1) * m_before).sum(0))


def _stepwise_params(layer) -> list[str]:
    names = ["weight", "beta", "threshold", "alpha"]
    if layer.bias is not None:
        names.append("bias")
    if hasattr(layer, "rho_raw"):
        names.append("rho")
    return names


def _stepwise_chunk(layer, elig: dict, x: Tensor, oc: Tensor, state, p):
    r"""Step an ALIF or Synaptic layer over a chunk, with forward-mode eligibilities.

    For each parameter :math:`P`, with the neuron's own dynamics only (reset ``s`` detached):
    ALIF (:math:`\vartheta = \theta + \rho a`), tangents :math:`M = \partial m/\partial P`,
    :math:`X = \partial a/\partial P`:

    .. math::
        U = \beta M + u_P, \quad D = \rho X + \vartheta_P, \quad S = \psi (U - D), \quad
        M \leftarrow U - D s, \quad X \leftarrow \alpha X + a_P + S

    Synaptic, :math:`X = \partial I/\partial P`:
    :math:`X \leftarrow \alpha X + I_P`, :math:`U = \beta M + X + u_P`,
    :math:`S = \psi (U - \theta_P)`, :math:`M \leftarrow U - \theta_P s`; both filter
    :math:`E \leftarrow \kappa E + S`. The direct terms (:math:`u_P`, ...) are the input
    :math:`x` for the weight, 1 for the bias, :math:`m(t-1)` for :math:`\beta`, 1 for
    :math:`\theta`, :math:`a(t-1)` for :math:`\rho` (threshold) and :math:`\alpha`
    (adaptation), :math:`I(t-1)` for the synaptic :math:`\alpha`.
    """
    from ..functional import surrogate_derivative

    adaptive = hasattr(layer, "rho_raw")
    beta = p.beta
    alpha = p.alpha
    kappa = filter_of(layer)
    names = _stepwise_params(layer)
    one = torch.ones_like(state.membrane)
    for t in range(oc.shape[0]):
        m_prev = state.membrane
        aux_prev = state.adaptation if adaptive else state.current
        s, state = layer.step(oc[t], state, p)
        if adaptive:
            vartheta = p.theta + p.rho * aux_prev
            u = state.membrane + vartheta * s
        else:
            vartheta = p.theta
            u = state.membrane + p.theta * s
        psi = surrogate_derivative(layer.surrogate, u - vartheta)
        for name in names:
            big = name == "weight"
            M, X, E = elig["M_" + name], elig["X_" + name], elig["E_" + name]
            direct = x[t].unsqueeze(1) if big else one  # [B, 1, in] or [B, out]
            sp, ps, bt = (
                (s, psi, beta)
                if not big
                else (s.unsqueeze(-1), psi.unsqueeze(-1), beta.unsqueeze(-1))
            )
            al = alpha.unsqueeze(-1) if big else alpha
            if adaptive:
                rho = p.rho.unsqueeze(-1) if big else p.rho
                u_p = direct if name in ("weight", "bias") else (m_prev if name == "beta" else 0)
                d_p = {"threshold": 1.0, "rho": aux_prev}.get(name, 0)
                a_p = aux_prev if name == "alpha" else 0
                U = bt * M + u_p
                D = rho * X + d_p
                S = ps * (U - D)
                M.copy_(U - D * sp)
                X.mul_(al).add_(S + a_p)
            else:
                i_p = direct if name in ("weight", "bias") else (aux_prev if name == "alpha" else 0)
                u_p = m_prev if name == "beta" else 0
                th_p = 1.0 if name == "threshold" else 0.0
                X.mul_(al).add_(i_p)
                U = bt * M + X + u_p
                S = ps * (U - th_p)
                M.copy_(U - th_p * sp)
            E.mul_(kappa).add_(S)
        elig["k"].mul_(kappa).add_(psi)
        elig["steps_k"].mul_(kappa).add_(1.0)
        oc[t] = s
    return state


# ----------------------------------------------------------------------------- backward
def _mapped(layer) -> dict[str, Tensor]:
    """The mapped parameters (with their graph from the raw ones)."""
    out = {"weight": layer.weight, "beta": layer.beta}
    if layer.bias is not None:
        out["bias"] = layer.bias
    if hasattr(layer, "threshold_raw"):
        out["threshold"] = layer.threshold
    if hasattr(layer, "recurrent_raw"):
        out["recurrent"] = layer.recurrent
    if hasattr(layer, "alpha_raw"):
        out["alpha"] = layer.alpha
    if hasattr(layer, "rho_raw"):
        out["rho"] = layer.rho
    return out


def gradients(layer, signal: Tensor) -> tuple[Tensor, list[Tensor | None]]:
    """``(upstream signal [B, in], grads of layer.trace_parameters())`` for ``signal``.

    ``signal`` is ``dL/d(output)`` at the latest step, ``[B, out]``.
    """
    elig = layer.__dict__.get("_eligibility")
    if elig is None:
        raise RuntimeError(f"{type(layer).__name__} has no eligibility state: run a forward first")
    signal = signal.to(layer.state_dtype)
    with torch.enable_grad():
        mapped = _mapped(layer)
    g: dict[str, Tensor] = {}
    if isinstance(layer, _stepwise_kinds()):
        for name in _stepwise_params(layer):
            big = elig["E_" + name]
            if name == "weight":
                g[name] = torch.einsum("bj,bji->ji", signal, big)
            else:
                g[name] = (signal * big).sum(0)
        upstream = _upstream(layer, signal, elig, mapped["weight"].detach())
    elif type(layer) in _readout_kinds():
        if _readout_kinds()[type(layer)]:  # LIS: through the softmax of the last membrane
            p = torch.softmax(layer.membrane, dim=-1)
            signal = p * (signal - (signal * p).sum(-1, keepdim=True))
        g["weight"] = torch.einsum("bj,bji->ji", signal, elig["e_w"])
        g["beta"] = (signal * elig["e_beta"]).sum(0)
        if "bias" in mapped:
            g["bias"] = (signal * elig["e_b"]).sum(0)
        upstream = signal @ mapped["weight"].detach().to(signal.dtype)
    else:
        big = torch.einsum("bj,bji->ji", signal, elig["E_w"])
        n_in = layer.in_features
        g["weight"] = big[:, :n_in]
        if "recurrent" in mapped:
            g["recurrent"] = big[:, n_in:]
        g["beta"] = (signal * elig["E_beta"]).sum(0)
        g["threshold"] = (signal * elig["E_th"]).sum(0)
        if "bias" in mapped:
            g["bias"] = (signal * elig["E_b"]).sum(0)
        upstream = _upstream(layer, signal, elig, mapped["weight"].detach())
    params = layer.trace_parameters()
    names = [n for n in g if mapped[n].requires_grad]
    wanted = [p for p in params if p.requires_grad]
    grads: tuple = ()
    if wanted and names:
        grads = torch.autograd.grad(
            [mapped[n] for n in names],
            wanted,
            [g[n].to(mapped[n].dtype) for n in names],
            allow_unused=True,
        )
    by_param = dict(zip(map(id, wanted), grads, strict=False))
    return upstream, [by_param.get(id(p)) for p in params]


_MAX_DECAY = 0.999  # caps the gain of _upstream at 1,000


def _upstream(layer, signal: Tensor, elig: dict, weight: Tensor) -> Tensor:
    """The learning signal for the layer below: ``(L * psi_bar * gain) W`` (an approximation)."""
    kappa = filter_of(layer)
    beta = float(layer.beta.detach().mean())
    norm = elig["steps_k"].clamp_min(1e-12)
    psi_bar = elig["k"] / norm
    # kappa- and beta-filters in series weigh 1/((1-kappa)(1-beta)) in all; one filter of the
    # larger decay weighs 1/(1-max): the gain 1/(1-min) keeps the total (and stays finite when
    # the two decays are equal, where matching the tail, 1/(1-min/max), would diverge)
    gain = 1.0 / (1.0 - min(kappa, beta, _MAX_DECAY))
    return (signal * psi_bar * gain) @ weight.to(signal.dtype)


# ----------------------------------------------------------------------------- autograd
class EligibilityFunction(TraceFunction):
    """``output = layer`` run with eligibility traces (no graph); backward from the traces.

    Same contract as :class:`~tracetorch.learning.TraceFunction`: one node per layer call,
    nothing saved per step, outputs bound to their state (the stale-state guard).
    """

    @staticmethod
    def forward(x: Tensor, layer, *params: Tensor) -> Tensor:
        return _advance(layer, x)

    gradients = staticmethod(gradients)  # the eligibility rule (module level, above)


def eligibility_apply(layer, x: Tensor) -> Tensor:
    """Run ``layer`` on ``x`` in eligibility mode as one autograd node."""
    _require(layer)
    return EligibilityFunction.apply(x, layer, *layer.trace_parameters())


def load_eligibility_state(layer, state: dict[str, Tensor]) -> None:
    """Restore eligibility traces saved by :func:`eligibility_state_dict` (``{}``: none)."""
    if not state:
        layer.__dict__.pop("_eligibility", None)
        return
    p = layer.weight
    layer.__dict__["_eligibility"] = {
        k: v.to(device=p.device, dtype=layer.state_dtype).clone() for k, v in state.items()
    }
    layer.__dict__["_eligibility_version"] = layer.state_version


def eligibility_state_dict(layer) -> dict[str, Any]:
    """The eligibility traces of ``layer`` (for its stream state), empty if none."""
    elig = layer.__dict__.get("_eligibility")
    if elig is None:
        return {}
    return {f"eligibility.{k}": v.clone() for k, v in elig.items()}
