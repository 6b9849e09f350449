"""Synaptic: current-based LIF neurons, the input charges a decaying synaptic current."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import functional as tf
from . import parameters as P
from .lif import SpikingLayer

__all__ = ["Synaptic"]


class Synaptic(SpikingLayer):
    r"""Current-based LIF neurons (:func:`tracetorch.functional.synaptic_step`; NIR's CubaLIF).

    .. math::
        I \leftarrow \alpha I + W x + b, \quad m \leftarrow \beta m + I, \quad
        s = [m \ge \theta], \quad m \leftarrow m - \theta s

    Average output (trace learning): :math:`r = f((W a + b)/(1-\alpha);\ \beta, \theta)`.

    Args: as :class:`LIF`, plus
        alpha: synaptic-current decay in (0, 1) (default 0.8), a float or one per neuron.
        learn_alpha: learn it (default True).

    Shape: as :class:`LIF`. State: ``current`` and ``membrane`` ``[B, out_features]``.

    Example:
        >>> layer = tt.nn.Synaptic(8, 64, alpha=0.9)
        >>> layer(torch.rand(20, 4, 8)).shape
        torch.Size([20, 4, 64])
    """

    state_type = tf.SynapticState
    step = staticmethod(tf.synaptic_step)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        alpha: float | Tensor = 0.8,
        learn_alpha: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(in_features, out_features, **kwargs)
        self._init_alpha = P.broadcast(P.check_unit_interval(alpha, "alpha"), out_features, "alpha")
        w = self.weight
        self.alpha_raw = nn.Parameter(torch.empty(out_features, device=w.device, dtype=w.dtype))
        self.alpha_raw.requires_grad_(learn_alpha)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.alpha_raw.copy_(P.decay_logit(self._init_alpha))

    @property
    def alpha(self) -> Tensor:
        """Synaptic-current decay per neuron, ``[out_features]``, in (0, 1)."""
        return P.to_decay(self.alpha_raw)

    def neuron_params(self, bptt: bool) -> tf.SynapticParams:
        return tf.SynapticParams(
            self.beta, self.alpha, self.threshold, self.spike_fn(bptt), self.detach_reset
        )

    def average_output(self, a: Tensor) -> Tensor:
        return tf.synaptic_average(
            self.input_current(a), self.beta, self.alpha, self.threshold, self.rate_fn
        )

    def _learn_flags(self) -> list[tuple[str, Tensor | None, bool]]:
        return [*super()._learn_flags(), ("learn_alpha", self.alpha_raw, True)]
