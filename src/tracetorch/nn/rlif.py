"""RLIF: LIF neurons with recurrent weights on their own spikes of the previous step."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import functional as tf
from . import parameters as P
from .lif import SpikingLayer

__all__ = ["RLIF"]


class RLIF(SpikingLayer):
    r"""Recurrent leaky integrate-and-fire neurons (:func:`tracetorch.functional.rlif_step`).

    .. math::
        m \leftarrow \beta m + W x + b + V s_{t-1}, \quad s_t = [m \ge \theta], \quad
        m \leftarrow m - \theta s_t

    Average output (trace learning): the self-consistent rate :math:`r = f(W a + b + V r)`
    (:func:`tracetorch.functional.rlif_average`, ``iterations`` damped iterations).

    Args: as :class:`LIF`, plus
        learn_recurrent: learn ``V`` (default True).
        zero_diagonal: no self-connections (``V_jj = 0``, kept at 0 while learning;
            default True: a neuron's own reset already feeds back on itself).
        recurrent_scale: ``V`` starts uniform in ``±recurrent_scale / sqrt(out_features)``.
        iterations: fixed-point iterations of the average output (default 8).

    Shape: as :class:`LIF`. State: ``membrane`` and ``spikes`` ``[B, out_features]``.

    Attributes:
        recurrent_raw: ``[out_features, out_features]``; the weights used are
            :attr:`recurrent` (with the diagonal masked by ``zero_diagonal``).

    Example:
        >>> layer = tt.nn.RLIF(8, 64)
        >>> layer(torch.rand(20, 4, 8)).shape
        torch.Size([20, 4, 64])
    """

    state_type = tf.RLIFState
    step = staticmethod(tf.rlif_step)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        learn_recurrent: bool = True,
        zero_diagonal: bool = True,
        recurrent_scale: float = 1.0,
        iterations: int = 8,
        **kwargs,
    ) -> None:
        super().__init__(in_features, out_features, **kwargs)
        self.zero_diagonal = bool(zero_diagonal)
        self.recurrent_scale = float(P.check_nonnegative(recurrent_scale, "recurrent_scale"))
        self.iterations = P.check_positive_int(iterations, "iterations")
        w = self.weight
        n = out_features
        self.recurrent_raw = nn.Parameter(torch.empty(n, n, device=w.device, dtype=w.dtype))
        self.recurrent_raw.requires_grad_(learn_recurrent)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        bound = self.recurrent_scale / math.sqrt(self.out_features)
        nn.init.uniform_(self.recurrent_raw, -bound, bound)
        if self.zero_diagonal:
            with torch.no_grad():
                self.recurrent_raw.fill_diagonal_(0)

    @property
    def recurrent(self) -> Tensor:
        """Recurrent weights ``[out, out]`` (row ``j``: inputs of neuron ``j``), state dtype."""
        v = self.recurrent_raw.to(self.state_dtype)
        if self.zero_diagonal:
            v = v * (1 - torch.eye(v.shape[0], dtype=v.dtype, device=v.device))
        return v

    def neuron_params(self, bptt: bool) -> tf.RLIFParams:
        return tf.RLIFParams(
            self.beta, self.threshold, self.recurrent, self.spike_fn(bptt), self.detach_reset
        )

    def average_output(self, a: Tensor) -> Tensor:
        return tf.rlif_average(
            self.input_current(a),
            self.beta,
            self.threshold,
            self.recurrent,
            self.rate_fn,
            self.iterations,
        )

    def _learn_flags(self) -> list[tuple[str, Tensor | None, bool]]:
        return [*super()._learn_flags(), ("learn_recurrent", self.recurrent_raw, True)]

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.zero_diagonal else ", zero_diagonal=False")
