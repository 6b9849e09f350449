"""ALIF: LIF neurons whose threshold rises with each spike and relaxes with decay alpha."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import functional as tf
from . import parameters as P
from .lif import SpikingLayer

__all__ = ["ALIF"]


class ALIF(SpikingLayer):
    r"""Adaptive leaky integrate-and-fire neurons (:func:`tracetorch.functional.alif_step`).

    .. math::
        \vartheta = \theta + \rho A, \quad m \leftarrow \beta m + W x + b, \quad
        s = [m \ge \vartheta], \quad m \leftarrow m - \vartheta s, \quad A \leftarrow \alpha A + s

    The adaptation :math:`A` is a slow memory of the neuron's own activity (about
    :math:`1/(1-\alpha)` steps). Average output (trace learning): the steady rate at the
    stationary threshold, :math:`r = f(c;\ \beta, \theta + \rho r/(1-\alpha))`
    (:func:`tracetorch.functional.alif_average`).

    Args: as :class:`LIF`, plus
        rho: adaptation strength :math:`\rho \ge 0` per spike (default 0.02: at a steady
            rate ``r`` the threshold rises by ``rho r / (1 - alpha) = 2 r`` theta-units).
        alpha: adaptation decay in (0, 1) (default 0.99, about 100 steps).
        learn_rho, learn_alpha: learn them (default False).

    Shape: as :class:`LIF`. State: ``membrane`` and ``adaptation`` ``[B, out_features]``.

    Example:
        >>> layer = tt.nn.ALIF(8, 64, alpha=0.995)
        >>> layer(torch.rand(20, 4, 8)).shape
        torch.Size([20, 4, 64])
    """

    state_type = tf.ALIFState
    step = staticmethod(tf.alif_step)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rho: float | Tensor = 0.02,
        alpha: float | Tensor = 0.99,
        learn_rho: bool = False,
        learn_alpha: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(in_features, out_features, **kwargs)
        self._init_rho = P.broadcast(P.check_nonnegative(rho, "rho"), out_features, "rho")
        self._init_alpha = P.broadcast(P.check_unit_interval(alpha, "alpha"), out_features, "alpha")
        w = self.weight
        self.rho_raw = nn.Parameter(torch.empty(out_features, device=w.device, dtype=w.dtype))
        self.alpha_raw = nn.Parameter(torch.empty(out_features, device=w.device, dtype=w.dtype))
        self.rho_raw.requires_grad_(learn_rho)
        self.alpha_raw.requires_grad_(learn_alpha)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.rho_raw.copy_(self._init_rho)
            self.alpha_raw.copy_(P.decay_logit(self._init_alpha))

    @property
    def rho(self) -> Tensor:
        """Adaptation strength per neuron, ``[out_features]``, >= 0 (clamped)."""
        return self.rho_raw.to(self.state_dtype).clamp_min(0)

    @property
    def alpha(self) -> Tensor:
        """Adaptation decay per neuron, ``[out_features]``, in (0, 1)."""
        return P.to_decay(self.alpha_raw)

    def neuron_params(self, bptt: bool) -> tf.ALIFParams:
        return tf.ALIFParams(
            self.beta, self.threshold, self.rho, self.alpha, self.spike_fn(bptt), self.detach_reset
        )

    def average_output(self, a: Tensor) -> Tensor:
        return tf.alif_average(
            self.input_current(a), self.beta, self.threshold, self.rho, self.alpha, self.rate_fn
        )

    def _learn_flags(self) -> list[tuple[str, Tensor | None, bool]]:
        return [
            *super()._learn_flags(),
            ("learn_rho", self.rho_raw, False),
            ("learn_alpha", self.alpha_raw, False),
        ]
