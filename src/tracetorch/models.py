"""Networks from a short text spec, and the networks ``tracetorch train`` builds for its tasks.

A **spec** lists the hidden layers in order, ``KIND:WIDTH`` separated by commas::

    lif:128,lif:64      # LIF(F, 128) -> LIF(128, 64) -> readout(64, C)

The kinds name classes of :mod:`tracetorch.nn` (:data:`LAYER_KINDS`); each is looked up when
the network is built, so a kind whose class this version of tracetorch lacks fails with a
clear error rather than at import. The readout (``li`` or ``lis``, :data:`READOUT_KINDS`) is
chosen by the caller, not by the spec: it depends on the task and the loss, not on the
hidden layers.

>>> net = build_network("lif:128,lif:64", 64, 10)
>>> [type(m).__name__ for m in net]
['LIF', 'LIF', 'LI']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from torch import nn

__all__ = [
    "LAYER_KINDS",
    "MAX_WIDTH",
    "READOUT_KINDS",
    "SPEC_FORM",
    "build_model",
    "build_network",
    "layer_class",
    "parse_spec",
]

LAYER_KINDS: dict[str, str] = {
    "lif": "LIF",
    "rlif": "RLIF",
    "alif": "ALIF",
    "syn": "Synaptic",
    "synaptic": "Synaptic",
}
"""Hidden layer kinds of a spec -> class names in :mod:`tracetorch.nn`; every class takes
``(in_features, out_features, **kwargs)``."""
READOUT_KINDS: dict[str, str] = {"li": "LI", "lis": "LIS"}
"""Readout kinds -> class names in :mod:`tracetorch.nn`."""
MAX_WIDTH = 65536
"""The widest layer a spec may ask for: a guard against a typo (``lif:100000000`` would try
to allocate tens of GB before any message could explain why), not a limit of the layers."""
SPEC_FORM = "KIND:WIDTH[,KIND:WIDTH...] (e.g. lif:128,lif:64)"
"""The form of a spec, quoted by every error about one."""

LayerSpec = tuple[str, int, dict[str, Any]]
_WIDTH = re.compile(r"[0-9]+")


def parse_spec(spec: str) -> list[LayerSpec]:
    """Parse ``"lif:128,lif:64"`` into ``[("lif", 128, {}), ("lif", 64, {})]``.

    Args:
        spec: hidden layers in order, ``KIND:WIDTH`` separated by commas; ``KIND`` one of
            :data:`LAYER_KINDS` (lower case), ``WIDTH`` a plain integer in
            ``[1, MAX_WIDTH]``. Spaces around items are ignored.

    Returns:
        one ``(kind, width, kwargs)`` per layer; ``kwargs`` (empty here) are the layer's extra
        constructor arguments, for callers such as :func:`build_model` to fill.

    Raises:
        TypeError: ``spec`` is not a string.
        ValueError: a malformed item, an unknown kind or a width out of range; the message
            quotes the item and the expected form.
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string like {SPEC_FORM!r}, got {type(spec).__name__}")
    kinds = ", ".join(LAYER_KINDS)
    layers: list[LayerSpec] = []
    for item in spec.split(","):
        item = item.strip()
        kind, sep, width = item.partition(":")
        kind, width = kind.strip(), width.strip()
        if not sep or not kind or not width:
            raise ValueError(f"expected {SPEC_FORM}, got {item!r} in {spec!r}")
        if kind not in LAYER_KINDS:
            raise ValueError(
                f"unknown layer kind {kind!r} in {spec!r}; expected {SPEC_FORM} with KIND one "
                f"of {kinds}"
            )
        if not _WIDTH.fullmatch(width) or not 1 <= int(width) <= MAX_WIDTH:
            raise ValueError(
                f"layer width must be an integer in [1, {MAX_WIDTH}], got {width!r} in {spec!r}; "
                f"expected {SPEC_FORM}"
            )
        layers.append((kind, int(width), {}))
    return layers


def layer_class(kind: str, kinds: dict[str, str] | None = None) -> type[nn.Module]:
    """The class of ``tracetorch.nn`` that layer ``kind`` names, looked up now.

    Args:
        kind: a key of ``kinds``.
        kinds: :data:`LAYER_KINDS` (default) or :data:`READOUT_KINDS`.

    Raises:
        ValueError: ``kind`` is unknown, or its class is not in this version of tracetorch.
    """
    from . import nn as ttnn

    kinds = LAYER_KINDS if kinds is None else kinds
    if kind not in kinds:
        raise ValueError(f"unknown layer kind {kind!r} (expected one of {', '.join(kinds)})")
    cls = getattr(ttnn, kinds[kind], None)
    if cls is None:
        raise ValueError(
            f"layer kind {kind!r} needs tracetorch.nn.{kinds[kind]}, which this version of "
            "tracetorch does not have"
        )
    return cls


def build_network(
    spec: str | Sequence[LayerSpec],
    in_features: int,
    out_features: int,
    *,
    readout: str = "li",
    **readout_kwargs: Any,
) -> nn.Sequential:
    """The network ``hidden layers of spec -> readout``, as a :class:`tracetorch.nn.Sequential`.

    Args:
        spec: a spec string (see :func:`parse_spec`) or its parsed form, a list of
            ``(kind, width, kwargs)``; an empty list gives the readout alone.
        in_features: inputs of the first layer.
        out_features: outputs of the readout (classes).
        readout: ``"li"`` (logits) or ``"lis"`` (probabilities), see :data:`READOUT_KINDS`.
        **readout_kwargs: passed to the readout's constructor (``beta=``, ``bias=``, ...).

    Example:
        >>> net = build_network("lif:32", 4, 2, readout="lis")
        >>> [(type(m).__name__, m.in_features, m.out_features) for m in net]
        [('LIF', 4, 32), ('LIS', 32, 2)]
    """
    from . import nn as ttnn

    layers = parse_spec(spec) if isinstance(spec, str) else list(spec)
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    modules: list[nn.Module] = []
    width = in_features
    for kind, out, kwargs in layers:
        modules.append(layer_class(kind)(width, out, **kwargs))
        width = out
    modules.append(layer_class(readout, READOUT_KINDS)(width, out_features, **readout_kwargs))
    return ttnn.Sequential(*modules)


def build_model(task, hidden: int | None = None, *, layers: str | None = None) -> nn.Sequential:
    """The network ``tracetorch train`` uses for ``task``: hidden layers, then an ``LI`` readout.

    Args:
        task: a :class:`~tracetorch.data.SpikeTask` (its ``n_inputs``, ``n_classes``, ``name``).
        hidden: ``LIF(F, hidden) -> LI(hidden, C)``; ``yinyang`` gets a second
            ``LIF(hidden, hidden)`` (its curved boundary needs it).
        layers: a spec (:func:`parse_spec`) for the hidden layers instead of ``hidden``.

    ``evidence`` needs memory: the readout is a slow leaky integrator (``beta = 1 - 1/T``)
    whose trace decay is tied to ``beta`` without bias correction, so its trace-learning
    gradient is exact, and it has no bias (a bias would grow to ``b / (1 - beta)``); every
    hidden layer has no bias either (silent without input) and an input trace as long as the
    trial.
    """
    if (hidden is None) == (layers is None):
        raise ValueError("give exactly one of hidden (an int) and layers (a spec string)")
    if hidden is not None:
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive int, got {hidden!r}")
        spec = [("lif", hidden, {})] * (2 if task.name == "yinyang" else 1)
    else:
        spec = parse_spec(layers)
    if task.name != "evidence":
        return build_network(spec, task.n_inputs, task.n_classes)
    slow = 1.0 - 1.0 / task.steps
    memory = {"bias": False, "trace_decay": slow, "bias_correction": False}
    spec = [(kind, width, {**memory, **kwargs}) for kind, width, kwargs in spec]
    return build_network(spec, task.n_inputs, task.n_classes, beta=slow, **memory)
