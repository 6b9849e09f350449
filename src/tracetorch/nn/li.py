"""LI and LIS: leaky-integrator readouts (membrane, or softmax of the membrane)."""

from __future__ import annotations

from torch import Tensor

from .. import functional as tf
from .base import TraceLayer

__all__ = ["LI", "LIS"]


class LI(TraceLayer):
    r"""Leaky integrator readout: the output is the membrane itself.

    .. math:: m \leftarrow \beta m + W x + b

    Average output (local graph): the membrane under the constant current :math:`c = W a + b`,
    :math:`c/(1 - \beta)` once settled; with ``bias_correction`` (default), the membrane
    :math:`c(1 - \beta^n)/(1 - \beta)` it has actually reached :math:`n` steps after a reset.
    With ``trace_decay = beta`` (and no bias) the reconstruction equals the actual membrane
    exactly, with or without bias correction, so the readout's gradients are exact.
    The usual loss is ``F.cross_entropy(out[-1], y)`` on the latest membrane.

    Args: as :class:`LIF` (``in_features``, ``out_features``, ``bias``, ``beta``,
    ``trace_decay`` / ``horizon``, ``bias_correction``, ``learn_*``, ``learning``), without
    threshold, rate function or surrogate. ``beta`` defaults to 0.99: a slow readout
    accumulates evidence over the sequence and holds it over long delays; it does not learn
    unless ``learn_beta=True`` (in trace mode its gradient is a temperature that diverged on a
    temporal task; see ``docs/defaults.md``).

    Shape:
        - Input: ``[B, in_features]`` or ``[T, B, in_features]``.
        - Output: membrane ``[B, out_features]`` or ``[T, B, out_features]``.

    Example:
        >>> readout = tt.nn.LI(128, 10, beta=0.9)
        >>> readout(torch.rand(25, 32, 128)).shape
        torch.Size([25, 32, 10])
    """

    def __init__(
        self, in_features: int, out_features: int, *, beta: float | Tensor = 0.99, **kwargs
    ) -> None:
        super().__init__(in_features, out_features, beta=beta, **kwargs)
        self.reset_parameters()

    state_type = tf.LIState
    step = staticmethod(tf.li_step)
    fast_run = staticmethod(tf.li_run_)
    fused_recursion = True
    default_learn_beta = False  # trace mode: a temperature gradient that can diverge

    def neuron_params(self, bptt: bool) -> tf.LIParams:
        return tf.LIParams(self.beta)

    def average_output(self, a: Tensor) -> Tensor:
        return tf.li_average(self.input_current(a), self.beta, self._output_steps())


class LIS(TraceLayer):
    r"""Leaky integrate and softmax: a readout whose output is a probability vector.

    .. math:: m \leftarrow \beta m + W x + b, \qquad p = \mathrm{softmax}(m)

    Average output (local graph): the softmax of :class:`LI`'s average membrane,
    :math:`\mathrm{softmax}(c/(1 - \beta))` once settled (the level at which the leak balances
    the input), :math:`\mathrm{softmax}(c(1 - \beta^n)/(1 - \beta))` with ``bias_correction``
    (default) :math:`n` steps after a reset. Without that correction a slow LIS (``beta = 0.99``)
    on a 25-step sequence reconstructs a softmax 4.5 times too sharp, and trace learning fails
    (digits: 41% instead of 97%, ``docs/defaults.md``). The usual loss is
    ``F.nll_loss(torch.log(out[-1]), y)``; it is also the policy layer of reward learning.

    Args: as :class:`LI`.

    Shape:
        - Input: ``[B, in_features]`` or ``[T, B, in_features]``.
        - Output: probabilities (summing to 1 over the last dimension), ``[B, out_features]``
          or ``[T, B, out_features]``.
    """

    def __init__(self, in_features: int, out_features: int, **kwargs) -> None:
        super().__init__(in_features, out_features, **kwargs)
        self.reset_parameters()

    state_type = tf.LIState
    step = staticmethod(tf.lis_step)
    fast_run = staticmethod(tf.lis_run_)
    fused_recursion = True
    default_learn_beta = False

    def neuron_params(self, bptt: bool) -> tf.LIParams:
        return tf.LIParams(self.beta)

    def average_output(self, a: Tensor) -> Tensor:
        return tf.lis_average(self.input_current(a), self.beta, self._output_steps())
