"""LIF, and SpikingLayer: what every spiking layer adds to TraceLayer (threshold, rate...)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import functional as tf
from ..functional.neurons import RESETS
from . import parameters as P
from .base import TraceLayer

__all__ = ["LIF", "SpikingLayer"]


class SpikingLayer(TraceLayer):
    """A :class:`TraceLayer` that spikes: a learnable threshold, a rate function, a surrogate.

    Keyword arguments (besides :class:`TraceLayer`'s): ``threshold`` (in ``[1e-6, 1e6]``, a
    float or one per neuron), ``rate_fn`` (``"linear"``, ``"mean_field"``, ``"log"``,
    ``"staircase"`` or a callable ``f(c, beta, theta)``), ``surrogate`` (``"atan"``,
    ``"fast_sigmoid"`` or a callable of ``m - theta``), ``learn_threshold``, and
    ``detach_reset`` (BPTT: no gradient through the reset ``- theta s``, as eligibility
    learning assumes by default; default False) and ``eligibility_reset`` (eligibility
    learning: ``"detached"``, e-prop's default, or ``"kept"``: the reset's derivative in the
    eligibility traces too, so that one hidden LIF layer gets BPTT's gradients with the reset
    kept; LIF and RLIF only).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        threshold: float | Tensor = 1.0,
        rate_fn: str | Callable[[Tensor, Tensor, Tensor], Tensor] = "linear",
        surrogate: str | Callable[[Tensor], Tensor] = "atan",
        learn_threshold: bool = True,
        detach_reset: bool = False,
        eligibility_reset: str = "detached",
        **kwargs,
    ) -> None:
        super().__init__(in_features, out_features, **kwargs)
        self.detach_reset = bool(detach_reset)
        if eligibility_reset not in ("detached", "kept"):
            raise ValueError(
                f"eligibility_reset must be 'detached' or 'kept', got {eligibility_reset!r}"
            )
        self.eligibility_reset = eligibility_reset
        self._init_threshold = P.broadcast(P.check_threshold(threshold), out_features, "threshold")
        self.rate_fn = tf.get_rate_fn(rate_fn)
        self.surrogate = tf.get_surrogate(surrogate)
        self._rate_name = _name(rate_fn)
        self._surrogate_name = _name(surrogate)
        w = self.weight
        self.threshold_raw = nn.Parameter(torch.empty(out_features, device=w.device, dtype=w.dtype))
        self.threshold_raw.requires_grad_(learn_threshold)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.threshold_raw.copy_(P.positive_raw(self._init_threshold))

    @property
    def threshold(self) -> Tensor:
        """Firing threshold per neuron, ``[out_features]``, in ``[1e-6, 1e6]`` (state dtype)."""
        return P.to_threshold(self.threshold_raw)

    def spike_fn(self, bptt: bool) -> Callable[[Tensor], Tensor]:
        """The surrogate spike in BPTT mode, the plain Heaviside step otherwise."""
        return self.surrogate if bptt else tf.heaviside

    def _learn_flags(self) -> list[tuple[str, Tensor | None, bool]]:
        return [*super()._learn_flags(), ("learn_threshold", self.threshold_raw, True)]

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", rate_fn={self._rate_name!r}"
        if self.learning != "trace":
            s += f", surrogate={self._surrogate_name!r}"
        if self.detach_reset:
            s += ", detach_reset=True"
        if self.eligibility_reset != "detached":
            s += f", eligibility_reset={self.eligibility_reset!r}"
        return s


class LIF(SpikingLayer):
    r"""Leaky integrate-and-fire neurons behind a dense weight.

    Per step, with current :math:`c = W x + b` (:func:`tracetorch.functional.lif_step`):

    .. math:: m \leftarrow \beta m + c, \quad s = [m \ge \theta], \quad m \leftarrow m - \theta s

    Average output (the local graph of trace learning): the firing rate
    :math:`r = f(W a + b;\ \beta, \theta)` in [0, 1] of the rate function ``rate_fn``, with
    :math:`a` the average input of the trace.

    Args:
        in_features: size of each input step.
        out_features: number of neurons.
        bias: learn an additive bias on the current.
        beta: membrane decay in (0, 1), a float or one per neuron; from a time constant
            with ``tt.functional.decay_from_tau(tau)``.
        threshold: firing threshold :math:`\theta` in ``[1e-6, 1e6]``, a float or one per neuron.
        trace_decay: input-trace decay :math:`d` in (0, 1), a float or one per input.
        horizon: alternatively, the trace window in steps (``d = 1 - 1/horizon``).
        bias_correction: divide the average input of a young trace by ``1 - d^n``.
        rate_fn: ``"linear"`` (default), ``"mean_field"``, ``"log"``, ``"staircase"`` (see
            :mod:`tracetorch.functional.rates`), or a callable ``f(c, beta, theta)``.
        surrogate: spike surrogate for BPTT mode: ``"atan"`` (default), ``"fast_sigmoid"``
            or a callable of ``m - theta``.
        learn_weight, learn_bias, learn_beta, learn_threshold, learn_trace_decay: which
            parameters learn. The trace decay is off by default: the forward pass does not
            depend on it, so its gradient carries little information.
        learning: ``"trace"`` or ``"bptt"``.
        reset: ``"subtract"`` (default, :math:`m \leftarrow m - \theta s`) or ``"zero"``
            (:math:`m \leftarrow m (1 - s)`, the hard reset of NIR and of snnTorch's
            ``reset_mechanism="zero"``; what :func:`tracetorch.nir.export` maps exactly). The
            average output keeps the rate function, which models the subtractive reset: with
            ``"zero"`` it overestimates the rate by what the reset discards.

    Shape:
        - Input: ``[B, in_features]`` (one step) or ``[T, B, in_features]`` (a sequence).
        - Output: spikes (0.0 or 1.0) of shape ``[B, out_features]`` or ``[T, B, out_features]``.

    Attributes:
        weight: ``[out_features, in_features]``, initialised as in ``nn.Linear``.
        bias: ``[out_features]`` or ``None``.
        beta_raw, threshold_raw, trace_decay_raw: the stored (unconstrained) parameters of
            ``beta = sigmoid(beta_raw)``, ``threshold = softplus(threshold_raw)``,
            ``trace_decay = sigmoid(trace_decay_raw)``.
        membrane, trace: the state (``[B, out]``, ``[B, in]``), ``None`` before the first input.

    Example:
        >>> layer = tt.nn.LIF(64, 128)
        >>> x = (torch.rand(25, 32, 64) < 0.2).float()   # 25 steps, batch 32
        >>> layer(x).shape
        torch.Size([25, 32, 128])
    """

    state_type = tf.LIFState
    step = staticmethod(tf.lif_step)
    fast_run = staticmethod(tf.lif_run_)
    fused_recursion = True

    def __init__(
        self, in_features: int, out_features: int, *, reset: str = "subtract", **kwargs
    ) -> None:
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        super().__init__(in_features, out_features, **kwargs)
        self.reset = reset
        self.reset_parameters()

    def neuron_params(self, bptt: bool) -> tf.LIFParams:
        return tf.LIFParams(
            self.beta, self.threshold, self.spike_fn(bptt), self.detach_reset, self.reset
        )

    def average_output(self, a: Tensor) -> Tensor:
        return self.rate_fn(self.input_current(a), self.beta, self.threshold)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.reset == "subtract" else s + f", reset={self.reset!r}"


def _name(fn) -> str:
    return fn if isinstance(fn, str) else getattr(fn, "__name__", "custom")
