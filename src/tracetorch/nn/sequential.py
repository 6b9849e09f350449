"""Sequential: nn.Sequential with the state and learning-signal API of tracetorch layers."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Sequential"]


class Sequential(nn.Sequential):
    """A chain of layers (tracetorch layers and any ``torch.nn`` modules).

    ``forward`` is :class:`torch.nn.Sequential`'s: a sequence ``[T, B, F]`` passes through the
    layers one after the other, each layer processing all ``T`` steps at once (the layers are
    feed-forward, so this equals stepping the whole network ``T`` times). Adds:

    - :meth:`reset_states` / :meth:`detach_states` on every layer that has them;
    - :meth:`backward`, the explicit learning-signal path through tracetorch layers.

    Example:
        >>> net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
        >>> net.reset_states()
        >>> out = net(x_seq)            # [T, B, 10]
    """

    def reset_states(self) -> None:
        """Reset the state of every stateful layer (start of a new sequence)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_states"):
                module.reset_states()

    def detach_states(self) -> None:
        """Detach the state of every stateful layer from its graph through time (BPTT)."""
        for module in self.modules():
            if module is not self and hasattr(module, "detach_states"):
                module.detach_states()

    def backward(self, learning_signal: Tensor) -> Tensor:
        """Send an explicit learning signal ``dL/d(output)`` down through all layers.

        Each layer accumulates its parameter gradients and passes ``dL/da`` upstream. Every
        layer must be a tracetorch layer (one with a ``backward(learning_signal)`` method).
        Returns the learning signal for the network's input.
        """
        for layer in self:
            if not hasattr(layer, "backward") or not hasattr(layer, "trace_parameters"):
                raise TypeError(
                    f"Sequential.backward needs tracetorch layers only; {type(layer).__name__} "
                    "has no learning-signal backward (use loss.backward() instead)"
                )
        for layer in reversed(self):
            learning_signal = layer.backward(learning_signal)
        return learning_signal
