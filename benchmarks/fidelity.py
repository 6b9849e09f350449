"""Case 3, gradient fidelity: cosine between trace and BPTT gradients of the same network.

For a tracetorch network and a few batches, the gradients of the loss (cross-entropy on the
readout at the last step) are computed twice from the same parameters and the same input:
with trace learning, and inside :func:`tracetorch.bptt` (surrogate gradients through time).
Gradients are summed over the batches, then compared per parameter and per layer (all of a
layer's parameters concatenated). As a yardstick, the same is done between two BPTT runs that
differ only in the surrogate (ATan vs fast sigmoid): how much two "exact" references agree.

:mod:`benchmarks.accuracy` calls :func:`measure` at initialisation and after trace training.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tracetorch as tt


def iter_chunks(x: Any, size: int) -> Iterator[Tensor]:
    """Chunks ``[t, B, F]`` of a batch input: a tensor ``[T, B, F]`` or a streamed sequence."""
    if isinstance(x, Tensor):
        yield from x.split(size)
    elif hasattr(x, "chunks"):
        yield from x.chunks(size)
    else:
        yield from x


def _gradients(
    model: nn.Module, batches: Iterable[tuple[Any, Tensor]], chunk: int, bptt: bool
) -> dict[str, Tensor]:
    streamed = [(iter_chunks(x, chunk), y) for x, y in batches]
    return tt.learning.gradients(model, streamed, _last_step_loss, bptt_mode=bptt)


def _last_step_loss(out: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(out[-1], y)


def _layer_of(name: str) -> str:
    return name.split(".", 1)[0]


def compare(a: dict[str, Tensor], b: dict[str, Tensor]) -> dict[str, Any]:
    """Cosines of two gradient dicts: ``{"param": {name: cos}, "layer": {layer: cos}}``."""
    per_param = {n: tt.learning.cosine(a[n], g) if n in a else 0.0 for n, g in b.items()}
    layers: dict[str, list[str]] = {}
    for n in b:
        layers.setdefault(_layer_of(n), []).append(n)
    per_layer = {}
    for layer, names in layers.items():
        va = torch.cat(
            [a[n].flatten() if n in a else torch.zeros_like(b[n]).flatten() for n in names]
        )
        vb = torch.cat([b[n].flatten() for n in names])
        per_layer[layer] = tt.learning.cosine(va, vb)
    return {"param": per_param, "layer": per_layer}


def measure(
    model: nn.Module,
    batches: list[tuple[Any, Tensor]],
    chunk: int = 1000,
    reference_surrogate: str | None = "fast_sigmoid",
) -> dict[str, Any]:
    """Trace-vs-BPTT cosines of ``model`` (a ``tt.nn.Sequential``) on ``batches``.

    With ``reference_surrogate``, also the cosine between BPTT with the model's surrogate and
    BPTT with that one (a copy of the model with the same weights). The global RNG is left as
    it was, so measuring does not change the training run around it.
    """
    with torch.random.fork_rng():
        return _measure(model, batches, chunk, reference_surrogate)


def _measure(
    model: nn.Module,
    batches: list[tuple[Any, Tensor]],
    chunk: int,
    reference_surrogate: str | None,
) -> dict[str, Any]:
    trace = _gradients(model, batches, chunk, bptt=False)
    bptt = _gradients(model, batches, chunk, bptt=True)
    result = {"trace_vs_bptt": compare(trace, bptt)}
    if reference_surrogate is not None:
        other = _with_surrogate(model, reference_surrogate)
        if other is not None:
            result["bptt_vs_bptt_surrogate"] = compare(
                _gradients(other, batches, chunk, bptt=True), bptt
            )
            result["reference_surrogate"] = reference_surrogate
    return result


def _with_surrogate(model: nn.Module, surrogate: str) -> nn.Module | None:
    """A copy of ``model`` whose LIF layers use ``surrogate`` (same parameters), or None."""
    layers = []
    for layer in model:
        kw = {"bias": layer.bias is not None}
        if isinstance(layer, tt.nn.LIF):
            kw["surrogate"] = surrogate
        new = type(layer)(layer.in_features, layer.out_features, **kw)
        new.load_state_dict(layer.state_dict())  # weights, beta, threshold, trace decay
        layers.append(new)
    return tt.nn.Sequential(*layers)
