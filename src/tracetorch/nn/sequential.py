"""Sequential: nn.Sequential with the state and learning-signal API of tracetorch layers."""

from __future__ import annotations

from torch import Tensor, nn

from ..learning import eprop
from .base import TraceLayer
from .state import load_stream_state_dict, stream_state_dict

__all__ = ["Sequential"]


class Sequential(nn.Sequential):
    """A chain of layers (tracetorch layers and any ``torch.nn`` modules).

    ``forward`` is :class:`torch.nn.Sequential`'s: a sequence ``[T, B, ...]`` passes through
    the layers one after the other, each layer processing all ``T`` steps at once (the layers
    are feed-forward between each other, so this equals stepping the whole network ``T``
    times; a recurrent layer such as :class:`RLIF` recurs inside itself). Adds:

    - :meth:`reset_states` / :meth:`detach_states` on every layer that has them;
    - :meth:`stream_state_dict` / :meth:`load_stream_state_dict`: the state of a stream,
      to checkpoint mid-sequence;
    - :meth:`backward`, the explicit learning-signal path through tracetorch layers.

    A tracetorch layer may appear only once: its state is one stream, so a second use in the
    same network would mix two inputs into one trace (a ``ValueError`` says so).

    Example:
        >>> net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
        >>> net.reset_states()
        >>> out = net(x_seq)            # [T, B, 10]
    """

    def forward(self, x: Tensor) -> Tensor:
        layers = tuple(self)
        if self.__dict__.get("_checked") != tuple(map(id, layers)):
            _check_unique(layers)
            self.__dict__["_checked"] = tuple(map(id, layers))
        if any(getattr(m, "learning", None) == "eligibility" for m in layers):
            eprop.wire_filters(layers)
        for layer in layers:
            x = layer(x)
        return x

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

    def stream_state_dict(self) -> dict[str, Tensor]:
        """Every tracetorch layer's state, trace and steps (see :mod:`tracetorch.nn.state`)."""
        return stream_state_dict(self)

    def load_stream_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Restore a :meth:`stream_state_dict`; the next input continues that stream."""
        load_stream_state_dict(self, state_dict)

    def backward(self, learning_signal: Tensor) -> Tensor:
        """Send an explicit learning signal ``dL/d(output)`` down through all layers.

        Each layer accumulates its parameter gradients and passes ``dL/da`` upstream, from
        its state as it is now. Every layer must be a tracetorch layer. Returns the learning
        signal for the network's input.
        """
        for layer in self:
            if not isinstance(layer, TraceLayer):
                raise TypeError(
                    f"Sequential.backward needs tracetorch layers only; {type(layer).__name__} "
                    "has no learning-signal backward (use loss.backward() instead)"
                )
        for layer in reversed(self):
            learning_signal = layer.backward(learning_signal)
        return learning_signal


def _check_unique(layers: tuple[nn.Module, ...]) -> None:
    seen: dict[int, int] = {}
    for i, layer in enumerate(layers):
        for m in layer.modules():
            if isinstance(m, TraceLayer):
                if id(m) in seen:
                    raise ValueError(
                        f"the same {type(m).__name__} appears twice in this Sequential (positions "
                        f"{seen[id(m)]} and {i}); a tracetorch layer keeps one stream state, so "
                        "it cannot be reused within a network. Use two layers (copy.deepcopy) "
                        "and, for shared weights, assign one's weight Parameter to the other."
                    )
                seen[id(m)] = i
