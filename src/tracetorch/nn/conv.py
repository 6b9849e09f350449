"""ConvLIF, and pooling/flatten modules that accept one step or a sequence of feature maps."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from .. import functional as tf
from .lif import SpikingLayer

__all__ = ["AvgPool2d", "ConvLIF", "Flatten", "MaxPool2d"]


def _fold(fn, x: Tensor) -> Tensor:
    """Apply a ``[N, C, H, W]`` function to ``x [..., C, H, W]`` (any leading dimensions)."""
    lead = x.shape[:-3]
    y = fn(x.reshape(-1, *x.shape[-3:]))
    return y.reshape(*lead, *y.shape[1:])


class ConvLIF(SpikingLayer):
    r"""LIF neurons behind a 2-d convolution, on ``[B, C, H, W]`` or ``[T, B, C, H, W]``.

    Per step: :math:`c = \mathrm{conv2d}(x) + b`, then the LIF step of :class:`LIF` on every
    output unit (one ``beta`` and threshold per output channel). The input trace has one decay
    per input channel. Average output (trace learning): the LIF rate of
    :math:`\mathrm{conv2d}(a) + b` with :math:`a` the average input map.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation: as
            :class:`torch.nn.Conv2d`.
        **kwargs: keyword arguments of :class:`LIF` (``beta``, ``threshold``,
            ``trace_decay``, ...): ``beta``/``threshold`` are per output channel,
            ``trace_decay`` per input channel.

    Shape:
        - Input: ``[B, C_in, H, W]`` (one step) or ``[T, B, C_in, H, W]``.
        - Output: spikes ``[B, C_out, H', W']`` or ``[T, B, C_out, H', W']``, with ``H'``, ``W'``
          as for ``nn.Conv2d``.

    Example:
        >>> net = tt.nn.Sequential(
        ...     tt.nn.ConvLIF(1, 8, 3, padding=1), tt.nn.AvgPool2d(2), tt.nn.Flatten(),
        ...     tt.nn.LI(8 * 4 * 4, 10))
        >>> net(torch.rand(25, 32, 1, 8, 8)).shape
        torch.Size([25, 32, 10])
    """

    step_dim = 4
    state_type = tf.LIFState
    step = staticmethod(tf.lif_step)
    fast_run = staticmethod(tf.lif_run_)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        **kwargs,
    ) -> None:
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        for name in ("kernel_size", "stride", "padding", "dilation"):
            values = getattr(self, name)
            low = 0 if name == "padding" else 1
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values):
                raise ValueError(f"{name} must be an int >= {low} or a pair of them, got {values}")
        super().__init__(
            in_channels,
            out_channels,
            weight_shape=(out_channels, in_channels, *self.kernel_size),
            **kwargs,
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.reset_parameters()

    def synapse_with(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        conv = lambda v: F.conv2d(v, weight, bias, self.stride, self.padding, self.dilation)  # noqa: E731
        return _fold(conv, x)

    def current_into(self, xc: Tensor, oc: Tensor) -> None:
        oc.copy_(self.input_current(xc))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, h, w = input_shape
        size = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(
                (h, w), self.padding, self.dilation, self.kernel_size, self.stride, strict=True
            )
        ]
        if min(size) < 1:
            raise ValueError(
                f"ConvLIF: input maps {h}x{w} are smaller than the kernel {self.kernel_size} "
                f"(dilation {self.dilation}, padding {self.padding})"
            )
        return (self.out_channels, *size)

    def _input_spec(self) -> str:
        c = self.in_features
        return f"[B, {c}, H, W] (one step) or [T, B, {c}, H, W] (a sequence)"

    def _check_features(self, x: Tensor) -> None:
        if x.dim() >= 3 and x.shape[-3] != self.in_features:
            raise ValueError(
                f"ConvLIF: expected in_channels={self.in_features} at dimension -3 of the "
                f"input [..., C, H, W], got shape {tuple(x.shape)}"
            )

    def _per_channel(self, v: Tensor) -> Tensor:
        return v.view(-1, 1, 1)

    def neuron_params(self, bptt: bool) -> tf.LIFParams:
        beta, theta = self._per_channel(self.beta), self._per_channel(self.threshold)
        return tf.LIFParams(beta, theta, self.spike_fn(bptt), self.detach_reset)

    def average_output(self, a: Tensor) -> Tensor:
        beta, theta = self._per_channel(self.beta), self._per_channel(self.threshold)
        return self.rate_fn(self.input_current(a), beta, theta)

    def extra_repr(self) -> str:
        s = (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}"
        )
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        rest = super().extra_repr().split(", ", 2)[2]  # drop in/out_features
        return f"{s}, {rest}"


def _check_maps(name: str, x: object) -> None:
    """ValueError naming ``name`` unless ``x`` is a tensor of feature maps ``[..., C, H, W]``."""
    if not isinstance(x, Tensor) or x.dim() < 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{name}: input must be [..., C, H, W] (e.g. [B, C, H, W] or [T, B, C, H, W]), "
            f"got {shape}"
        )


class _SequencePool:
    """Mixin: a 2-d pooling that folds any leading dimensions (``[T, B]``) into the batch."""

    def forward(self, x: Tensor) -> Tensor:
        _check_maps(type(self).__name__, x)
        k = _pair(self.kernel_size)
        if x.shape[-2] < k[0] or x.shape[-1] < k[1]:
            raise ValueError(
                f"{type(self).__name__}: input maps {x.shape[-2]}x{x.shape[-1]} are smaller "
                f"than the kernel {k}"
            )
        return _fold(super().forward, x)  # type: ignore[misc]


class AvgPool2d(_SequencePool, nn.AvgPool2d):
    """:class:`torch.nn.AvgPool2d` on ``[B, C, H, W]`` or a sequence ``[T, B, C, H, W]``.

    Linear, so it commutes with the time average of trace learning and saves nothing for
    backward: the pooling to use between spiking conv layers in constant memory.
    """


class MaxPool2d(_SequencePool, nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` on ``[B, C, H, W]`` or a sequence ``[T, B, C, H, W]``.

    Its backward keeps the argmax of every output, ``[T, B, ...]`` for a sequence call: memory
    that grows with the length of the call (prefer :class:`AvgPool2d` for long streams).
    """


class Flatten(nn.Flatten):
    """Flatten the feature map ``[C, H, W]`` of one step or a sequence: ``[..., C*H*W]``.

    ``[B, C, H, W] -> [B, C*H*W]`` and ``[T, B, C, H, W] -> [T, B, C*H*W]``
    (``nn.Flatten(start_dim=-3)``).
    """

    def __init__(self) -> None:
        super().__init__(start_dim=-3, end_dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        _check_maps("Flatten", x)
        return super().forward(x)
