"""LIF: a dense layer of leaky integrate-and-fire neurons with subtractive reset."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import functional as tf
from .base import TraceLayer, _as_float64, _broadcast

__all__ = ["LIF"]


class LIF(TraceLayer):
    r"""Leaky integrate-and-fire neurons behind a dense weight.

    Per step, with current :math:`c = W x + b`:

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
        threshold: firing threshold :math:`\theta > 0`, a float or one per neuron.
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

    Shape:
        - Input: ``[B, in_features]`` (one step) or ``[T, B, in_features]`` (a sequence).
        - Output: spikes (0.0 or 1.0) of shape ``[B, out_features]`` or ``[T, B, out_features]``.

    Attributes:
        weight: ``[out_features, in_features]``, initialised as in ``nn.Linear``.
        bias: ``[out_features]`` or ``None``.
        beta_raw, threshold_raw, trace_decay_raw: the stored (unconstrained) parameters of
            ``beta = sigmoid(beta_raw)``, ``threshold = softplus(threshold_raw)``,
            ``trace_decay = sigmoid(trace_decay_raw)``.

    Example:
        >>> layer = tt.nn.LIF(64, 128)
        >>> x = (torch.rand(25, 32, 64) < 0.2).float()   # 25 steps, batch 32
        >>> layer(x).shape
        torch.Size([25, 32, 128])
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
        **kwargs,
    ) -> None:
        super().__init__(in_features, out_features, **kwargs)
        t = _as_float64(threshold, "threshold")
        if not bool(((t > 0) & torch.isfinite(t)).all()):
            raise ValueError(f"threshold must be finite and > 0, got {threshold}")
        self._init_threshold = _broadcast(t, out_features, "threshold")
        self.rate_fn = tf.get_rate_fn(rate_fn)
        self.surrogate = tf.get_surrogate(surrogate)
        self._rate_name = _name(rate_fn)
        self._surrogate_name = _name(surrogate)
        w = self.weight
        self.threshold_raw = nn.Parameter(torch.empty(out_features, device=w.device, dtype=w.dtype))
        self.reset_parameters()
        self.threshold_raw.requires_grad_(learn_threshold)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            # softplus^-1(theta) = theta + log(1 - exp(-theta))
            t = self._init_threshold
            self.threshold_raw.copy_(t + torch.log(-torch.expm1(-t)))

    @property
    def threshold(self) -> Tensor:
        """Firing threshold per neuron, ``[out_features]``, > 0."""
        return F.softplus(self.threshold_raw)

    def _dynamics(self, c: Tensor, m: Tensor, bptt: bool) -> tuple[Tensor, Tensor]:
        if bptt:
            return tf.lif_run(c, m, self.beta, self.threshold, self.surrogate)
        return tf.lif_run_(c, m, self.beta, self.threshold)

    def average_output(self, a: Tensor) -> Tensor:
        return self.rate_fn(F.linear(a, self.weight, self.bias), self.beta, self.threshold)

    def _learn_flags(self) -> list[tuple[str, Tensor | None, bool]]:
        return [*super()._learn_flags(), ("learn_threshold", self.threshold_raw, True)]

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", rate_fn={self._rate_name!r}"
        if self.learning == "bptt":
            s += f", surrogate={self._surrogate_name!r}"
        return s


def _name(fn) -> str:
    return fn if isinstance(fn, str) else getattr(fn, "__name__", "custom")
