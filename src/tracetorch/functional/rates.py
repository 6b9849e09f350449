r"""Average outputs: what a neuron emits on average under a constant input current :math:`c`.

These are the local graphs of trace learning: a layer reconstructs its average input
:math:`a` from its trace, computes :math:`c = W a + b` and differentiates one of these.

**LIF firing rates** (spikes per step, in [0, 1]) of the discrete LIF with subtractive reset,

.. math::
    m \leftarrow \beta m + c, \qquad s = [m \ge \theta], \qquad m \leftarrow m - \theta s,

from :math:`m = 0`, in the long run. Two exact facts frame every rate function:

- *Energy balance.* Summing the update over time gives :math:`r = (c - (1-\beta)\bar m)/\theta`
  with :math:`\bar m` the mean (post-reset) membrane; rate functions differ in how they
  estimate :math:`\bar m`. The rate is 0 up to the rheobase :math:`c = (1-\beta)\theta` and 1
  from :math:`c = \theta` on.
- *Devil's staircase.* In between, the rate is the rotation number of a contracting circle
  map: it locks to every rational :math:`p/q` on a plateau of width
  :math:`(1-\beta)^2\beta^{q-1}/(1-\beta^q)\,\theta` in :math:`c` (1/2 on
  :math:`[0.667, 0.833]\,\theta` at :math:`\beta = 0.5`), and the plateaus fill the whole range.
  With :math:`u = (c/\theta - (1-\beta))/\beta` (0 at the rheobase, 1 at :math:`\theta`), the
  right end of the plateau of rate :math:`\rho` is the Hecke-Mahler series

  .. math::
      u(\rho) = \Big(\frac{1-\beta}{\beta}\Big)^2 \sum_{j \ge 1} \beta^j \lfloor j\rho \rfloor,

  and its left end the limit from below. Replacing :math:`\lfloor x\rfloor` by its mean
  :math:`x - 1/2` (the Fourier series of the staircase without its oscillating terms) gives
  :math:`c/\theta = \rho + (1-\beta)/2`: the mean-field rate. It is what input noise recovers
  (noise averages over the plateaus); the plateaus themselves are what constant input sees.

The registered rate functions (``RATE_FUNCTIONS``, chosen with ``rate_fn=`` on ``LIF``):

- ``linear`` (default of :class:`tracetorch.nn.LIF`): the line through the two exact edges,
  rheobase and :math:`\theta`, with softplus corners (:func:`smooth_clamp`, sharpness 20), so
  silent and saturated neurons keep a small gradient:

  .. math:: r = \mathrm{smoothclamp}\Big(\frac{c/\theta - (1-\beta)}{\beta}\Big)

  It is the energy balance with :math:`\bar m` falling linearly from :math:`\theta` at the
  rheobase to 0 at :math:`c = \theta`. Max error vs the simulated constant-input rate over
  :math:`c \in [0, 2\theta]`: 0.19 at :math:`\beta = 0.5` (the staircase), 0.037 at 0.9,
  0.035 at 0.99 (the corners); inside a trained network (noisy input) its slope matches the
  measured gain best of all four (cosine 0.98).

- ``mean_field``: :math:`\bar m \approx \theta/2` (membrane uniform between reset and
  threshold), clamped with softplus corners (sharpness 10):

  .. math:: r = \mathrm{smoothclamp}\big(c/\theta - (1-\beta)/2\big)

- ``log``: the leak-aware rate of a membrane that rises from 0 to :math:`\theta` towards its
  stationary value :math:`c/(1-\beta)` in continuous time; it passes exactly through the left
  ends of the :math:`1/q` plateaus, and its slope is infinite at the rheobase:

  .. math:: r = \frac{\ln\beta}{\ln\big(1 - \theta(1-\beta)/c\big)} \quad (c > (1-\beta)\theta)

- ``staircase``: the exact plateaus of every rate :math:`p/q` with :math:`q \le 5`
  (Hecke-Mahler ends), linear between them, ``log`` below the :math:`1/5` plateau and its
  mirror image above the :math:`4/5` one. Within 0.05 of the constant-input rate at every
  :math:`\beta` (0.043 at 0.5), at the price of zero gradient on the plateaus and a slope of up
  to :math:`10^4/\theta` just above the rheobase at small :math:`\beta`.

Readouts: LI's average membrane is the stationary value :math:`c/(1-\beta)`; LIS's average
output is :math:`\mathrm{softmax}(c/(1-\beta))`.

All functions broadcast ``c [..., F]`` against ``beta, theta [F]`` (or scalars), are
invariant under :math:`(c, \theta) \to (k c, k \theta)`, and have finite values and gradients
for every finite ``c`` (negative or huge included). See ``docs/defaults.md`` for the
measurements behind the default.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor

from .traces import _exponent

__all__ = [
    "smooth_clamp",
    "linear_rate",
    "mean_field_rate",
    "log_rate",
    "staircase_rate",
    "plateau_edges",
    "li_average",
    "lis_average",
    "RATE_FUNCTIONS",
    "get_rate_fn",
]

RateFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def smooth_clamp(x: Tensor, sharpness: float = 10.0) -> Tensor:
    """``clamp(x, 0, 1)`` with softplus corners: ``(softplus(k x) - softplus(k (x - 1))) / k``.

    Off by at most ``ln(2) / k`` (at ``x = 0`` and ``x = 1``); its slope is ``sigmoid(k x)`` below
    0 and ``sigmoid(-k (x - 1))`` above 1, never exactly zero.
    """
    k = sharpness

    def lower(v: Tensor) -> Tensor:
        return (F.softplus(k * v) - F.softplus(k * (v - 1))) / k

    # The function is symmetric, f(x) = 1 - f(1 - x); evaluating the upper half that way keeps
    # rounding from pushing it above 1.
    return torch.where(x < 0.5, lower(x), 1 - lower(1 - x))


def linear_rate(c: Tensor, beta: Tensor, theta: Tensor, sharpness: float = 20.0) -> Tensor:
    r"""Edge-exact LIF rate ``smoothclamp((c / theta - (1 - beta)) / beta)``.

    .. math:: r = \mathrm{smoothclamp}_k\Big(\frac{c/\theta - (1-\beta)}{\beta}\Big)

    0 at the rheobase :math:`(1-\beta)\theta`, 1 at :math:`\theta`, linear in between (the
    energy balance with a mean membrane falling linearly from :math:`\theta` to 0), softplus
    corners of sharpness ``k``. Shapes broadcast: ``c [..., F]``, ``beta, theta [F]``.
    """
    return smooth_clamp((c / theta - (1 - beta)) / beta, sharpness)


def mean_field_rate(c: Tensor, beta: Tensor, theta: Tensor) -> Tensor:
    """Smoothed mean-field LIF rate ``smoothclamp(c / theta - (1 - beta) / 2)`` (broadcasts)."""
    return smooth_clamp(c / theta - (1 - beta) / 2)


def log_rate(c: Tensor, beta: Tensor, theta: Tensor, max_slope: float = 1e4) -> Tensor:
    r"""Leak-aware LIF rate ``ln(beta) / ln(1 - theta (1 - beta) / c)``, 0 below rheobase, <= 1.

    .. math:: r = \min\Big(\frac{\ln\beta}{\ln\big(1 - \theta(1-\beta)/c\big)},\;
        G\,\frac{c/\theta - (1-\beta)}{\beta},\; 1\Big) \quad (c > (1-\beta)\theta)

    The log has an infinite slope at the rheobase; the line of slope ``G = max_slope`` (per unit
    of :math:`u`, the rate's range between rheobase and threshold) caps it there, which changes
    the rate only where it is below :math:`G u` (a window of width about ``1/G``) and keeps
    every gradient finite. 1 from :math:`c = \theta` on.

    A NaN current (or a NaN ``beta`` or ``theta``) gives a NaN rate, as in every other rate
    function and PyTorch op: the comparisons below would otherwise read it as "below
    rheobase" and hide it as a silent neuron.
    """
    rheobase = theta * (1 - beta)
    above = (c > rheobase) & (c < theta)
    # Evaluate the log only on (rheobase, theta): its argument stays in (0, beta] on both
    # branches of the where, so no inf or NaN reaches the values or the gradient.
    safe_c = torch.where(above, c, theta)
    z = 1 - rheobase / safe_c
    r = torch.log(beta) / torch.log(z.clamp_min(torch.finfo(z.dtype).tiny))
    r = torch.minimum(r, max_slope * (safe_c / theta - (1 - beta)) / beta)
    r = torch.where(above, r, (c >= theta).to(r.dtype))
    return torch.where(c.isnan() | rheobase.isnan(), torch.nan, r)


_FAREY: dict[int, tuple[list[int], list[int]]] = {}


def _farey(max_period: int) -> tuple[list[int], list[int]]:
    """Numerators and denominators of the fractions in (0, 1) with denominator <= max_period."""
    if max_period not in _FAREY:
        fr = sorted({Fraction(p, q) for q in range(2, max_period + 1) for p in range(1, q)})
        _FAREY[max_period] = ([f.numerator for f in fr], [f.denominator for f in fr])
    return _FAREY[max_period]


def _farey_tensors(
    max_period: int, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(p [K], q [K], i [Q], floor(i p / q) [K, Q])`` (0 where ``i > q``), cached."""
    key = (max_period, dtype, device)
    if key not in _FAREY_TENSORS:
        ps, qs = _farey(max_period)
        rows = [
            [(j * a) // b if j <= b else 0 for j in range(1, max_period + 1)]
            for a, b in zip(ps, qs, strict=True)
        ]
        _FAREY_TENSORS[key] = (
            torch.tensor(ps, dtype=dtype, device=device),
            torch.tensor(qs, dtype=dtype, device=device),
            torch.arange(1, max_period + 1, dtype=dtype, device=device),
            torch.tensor(rows, dtype=dtype, device=device),
        )
    return _FAREY_TENSORS[key]


_FAREY_TENSORS: dict[tuple[int, torch.dtype, torch.device], tuple[Tensor, ...]] = {}


def plateau_edges(beta: Tensor, max_period: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    r"""Where the constant-input rate of the discrete LIF locks to ``p/q``, for ``q <= max_period``.

    In :math:`u = (c/\theta - (1-\beta))/\beta`, the plateau of rate :math:`p/q` is
    :math:`[u_{hi} - w, u_{hi}]` with

    .. math::
        u_{hi} = \Big(\frac{1-\beta}{\beta}\Big)^2 \Big(\frac{A}{1-\beta^q}
            + \frac{p\,\beta^{q+1}}{(1-\beta)(1-\beta^q)}\Big), \quad
        A = \sum_{i=1}^{q} \beta^i \lfloor i p/q \rfloor, \quad
        w = \frac{(1-\beta)^2 \beta^{q-2}}{1-\beta^q},

    the closed form of the Hecke-Mahler series for rational :math:`\rho = p/q`.

    Args:
        beta: membrane decay, any shape ``[...]``, in (0, 1).
        max_period: largest denominator ``q``.

    Returns:
        ``(lo [..., K], hi [..., K], rate [K])``, the ``K`` fractions in increasing order.
    """
    p, q, i, floors = _farey_tensors(max_period, beta.dtype, beta.device)
    b = beta.unsqueeze(-1)  # [..., 1]
    bq = b**q  # [..., K]
    a_sum = ((b.unsqueeze(-1) ** i) * floors).sum(-1)  # [..., K]
    k = ((1 - b) / b) ** 2
    hi = k * (a_sum / (1 - bq) + p * b ** (q + 1) / ((1 - b) * (1 - bq)))
    lo = hi - k * bq / (1 - bq)
    return lo, hi, p / q


def staircase_rate(
    c: Tensor, beta: Tensor, theta: Tensor, max_period: int = 5, max_slope: float = 1e4
) -> Tensor:
    r"""The devil's staircase of the discrete LIF, resolved to plateaus of period ``<= max_period``.

    With :math:`u = (c/\theta - (1-\beta))/\beta`: :math:`r = p/q` exactly on the plateau of each
    fraction with :math:`q \le` ``max_period`` (edges from :func:`plateau_edges`), linear between
    neighbouring plateaus; :func:`log_rate` below the :math:`1/Q` plateau (it meets it exactly:
    ``log`` passes through the left end of every :math:`1/q` plateau) with its slope capped at
    ``max_slope`` per unit of :math:`u`; and the mirror image :math:`1 - \text{log}(c')`,
    :math:`c' = (2-\beta)\theta - c`, above the :math:`(Q-1)/Q` plateau (the staircase is
    symmetric about :math:`u = 1/2`). Continuous and non-decreasing; zero gradient on the
    plateaus, below the rheobase and above :math:`\theta`.

    Max error vs the simulated constant-input rate on :math:`c \in [0, 2\theta]`, ``max_period``
    5: 0.043 (:math:`\beta = 0.5`), 0.015 (0.9), 0.002 (0.99). Cost: ``O(K)`` elementwise ops
    with ``K = 9`` fractions for ``max_period=5``.
    """
    if not torch.is_floating_point(c):
        raise TypeError(f"c must be a floating-point tensor, got {c.dtype}")
    beta = torch.as_tensor(beta, dtype=c.dtype, device=c.device)
    theta = torch.as_tensor(theta, dtype=c.dtype, device=c.device)
    u = (c / theta - (1 - beta)) / beta
    lo, hi, rate = plateau_edges(beta, max_period)  # [..., K]
    # Between plateaus: ramps from each plateau's right end to the next one's left end.
    gap = (lo[..., 1:] - hi[..., :-1]).clamp_min(torch.finfo(c.dtype).eps)
    t = ((u.unsqueeze(-1) - hi[..., :-1]) / gap).clamp(0, 1)
    middle = rate[0] + (t * rate.diff()).sum(-1)
    # Ends: the log rate (exact at the left end of every 1/q plateau) and its mirror image.
    low = torch.minimum(log_rate(c, beta, theta), max_slope * u.clamp_min(0))
    mirror = (2 - beta) * theta - c
    high = 1 - torch.minimum(log_rate(mirror, beta, theta), max_slope * (1 - u).clamp_min(0))
    r = torch.where(u < lo[..., 0], low, middle)
    return torch.where(u > hi[..., -1], high, r)


def li_average(c: Tensor, beta: Tensor, steps: int | None = None) -> Tensor:
    r"""LI membrane under constant current: stationary ``c / (1 - beta)``, or after ``steps``.

    .. math:: \bar m = \frac{c}{1-\beta} \quad\text{or}\quad
        \bar m_n = \frac{c\,(1-\beta^n)}{1-\beta} \ \ (n = \text{steps from } m = 0)

    The second form is the actual membrane of a young sequence: with ``beta = 0.99`` and
    ``n = 25`` it is 22% of the stationary value.
    """
    m = c / (1 - beta)
    if steps is not None:
        m = m * (1 - beta ** _exponent(steps, beta))
    return m


def lis_average(c: Tensor, beta: Tensor, steps: int | None = None) -> Tensor:
    r"""LIS output ``softmax(m)`` of the membrane :func:`li_average` (last dimension).

    Without ``steps`` the softmax of the stationary membrane ``c / (1 - beta)``; that is far
    sharper than the actual output when ``n`` is small against ``1 / (1 - beta)`` (``beta =
    0.99``, ``n = 25``: 4.5 times), and trace learning through it fails (digits: 48% vs 97%
    with ``steps``; ``docs/defaults.md``).
    """
    return torch.softmax(li_average(c, beta, steps), dim=-1)


RATE_FUNCTIONS: dict[str, RateFn] = {
    "linear": linear_rate,
    "mean_field": mean_field_rate,
    "log": log_rate,
    "staircase": staircase_rate,
}
"""LIF rate functions by name, the values ``rate_fn=`` accepts (:func:`get_rate_fn`)."""


def get_rate_fn(name: str | RateFn) -> RateFn:
    """Look a LIF rate function up by name; a callable ``f(c, beta, theta)`` is returned as is."""
    if callable(name):
        return name
    try:
        return RATE_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown rate_fn {name!r}; expected one of {sorted(RATE_FUNCTIONS)} or a callable"
        ) from None
