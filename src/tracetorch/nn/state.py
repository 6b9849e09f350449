"""Stream state of a whole model: save, restore and reset every tracetorch layer's state.

``stream_state_dict(model)`` holds what ``model.state_dict()`` does not: each layer's neuron
state, input trace and steps since reset, keyed like ``state_dict`` (``"0.membrane"``,
``"0.trace"``, ``"0.steps"``). Saved mid-sequence with ``torch.save`` and restored with
``load_stream_state_dict``, a stream continues bit for bit.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import TraceLayer

__all__ = ["load_stream_state_dict", "reset_states", "stream_state_dict"]


def _named_layers(model: nn.Module) -> list[tuple[str, TraceLayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, TraceLayer)]


def stream_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Every tracetorch layer's :meth:`~TraceLayer.stream_state_dict`, keys prefixed by name."""
    out: dict[str, Tensor] = {}
    for name, layer in _named_layers(model):
        prefix = f"{name}." if name else ""
        out.update({prefix + k: v for k, v in layer.stream_state_dict().items()})
    return out


def load_stream_state_dict(model: nn.Module, state_dict: dict[str, Tensor]) -> None:
    """Restore a :func:`stream_state_dict` of the same architecture into ``model``."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
    layers = _named_layers(model)
    known = set()
    for name, layer in layers:
        prefix = f"{name}." if name else ""
        own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        own = {k: v for k, v in own.items() if "." not in k or k.startswith("eligibility.")}
        if "steps" not in own:
            raise KeyError(f"stream state has no entry for layer {name or '(model)'!r}")
        known.update(prefix + k for k in own)
        layer.load_stream_state_dict(own)
    unexpected = sorted(set(state_dict) - known)
    if unexpected:
        raise KeyError(f"unexpected keys in the stream state: {unexpected[:5]}")


def reset_states(model: nn.Module) -> None:
    """Reset every tracetorch layer in ``model`` (a new sequence starts)."""
    for _, layer in _named_layers(model):
        layer.reset_states()
