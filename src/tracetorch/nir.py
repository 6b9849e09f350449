r"""Export tracetorch networks to NIR and import NIR graphs (optional extra ``[nir]``).

`NIR <https://neuroir.org>`_ (Neuromorphic Intermediate Representation) describes spiking
networks in **continuous time**; a simulator steps its ODEs with its own ``dt``. For a NIR
``LIF`` (:math:`\tau \dot v = v_{leak} - v + r I`, spike when :math:`v > v_{th}`, then
:math:`v \leftarrow v_{reset}`), one forward-Euler step of length ``dt`` is

.. math:: v \leftarrow (1 - dt/\tau)\, v + (dt/\tau)(v_{leak} + r I).

tracetorch's step :math:`m \leftarrow \beta m + W x + b` is that step with

.. math::
    \tau = \frac{dt}{1 - \beta}, \qquad r = 1, \qquad v_{leak} = 0, \qquad
    \text{Affine weight} = \frac{W}{1 - \beta}, \qquad \text{Affine bias} = \frac{b}{1 - \beta},

that is, the factor :math:`\tau/dt = 1/(1-\beta)` is folded into the ``Affine`` (or
``Conv2d``) in front of the neuron. ``v_threshold`` is :math:`\theta`, ``v_reset`` is 0.
``dt`` is not part of a NIR graph: export and import with the ``dt`` of the simulator that
runs the graph (Norse's ``from_nir`` steps with ``dt = 1e-3``, the default here; snnTorch's
``import_from_nir`` with ``dt = 1e-4``). The graph's ``metadata["tracetorch.dt"]`` records
the ``dt`` of an export, and :func:`import_` uses it by default.

Mapping (``docs/nir.md``):

=========================  =========================================================
tracetorch                 NIR
=========================  =========================================================
``LIF``                    ``Affine`` (or ``Linear`` without bias) + ``LIF``
``LI``                     ``Affine``/``Linear`` + ``LI``
``Synaptic``               ``Affine``/``Linear`` + ``CubaLIF`` (``w_in = tau_syn/dt``,
                           ``r = tau_mem/dt``, weights not scaled)
``RLIF``                   ``Affine``/``Linear`` + a subgraph ``input -> LIF -> output``
                           with the feedback edge ``LIF -> Linear(V/(1-beta)) -> LIF``
``ConvLIF``                ``Conv2d`` + ``LIF`` (parameters broadcast over ``[C, H, W]``)
``AvgPool2d``              ``AvgPool2d`` (``SumPool2d`` for ``divisor_override=1``)
``Flatten``                ``Flatten`` (``start_dim=-3``)
``torch.nn.Linear``        ``Affine``/``Linear``
``ALIF``, ``LIS``, ...     no NIR primitive: ``NotImplementedError``
=========================  =========================================================

**Resets.** NIR's neurons reset to ``v_reset`` (a hard reset); tracetorch's LIF subtracts the
threshold by default. Use ``tt.nn.LIF(..., reset="zero")`` for an export that other
simulators reproduce exactly; exporting a subtractive reset (every ``Synaptic``, ``RLIF`` and
``ConvLIF``) warns. The node's ``metadata["tracetorch.reset"] = "subtract"`` lets
:func:`import_` restore the subtraction, so a tracetorch round trip is exact either way.

Only the dynamics travel: trace decays, rate functions, surrogates and learning modes are
not part of NIR and come back at their defaults.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import nn as tnn
from .nn import parameters as P

__all__ = ["DEFAULT_DT", "export", "import_"]

DEFAULT_DT = 1e-3
"""The ``dt`` of Norse's ``from_nir``; pass ``dt=1e-4`` for snnTorch's ``import_from_nir``."""
_RESET_KEY = "tracetorch.reset"
_DT_KEY = "tracetorch.dt"


def _nir():
    try:
        import nir
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tracetorch.nir needs the 'nir' package: pip install 'tracetorch[nir]' "
            "(or pip install nir)"
        ) from e
    return nir


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy().copy()


def _check_dt(dt: float) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0 or math.isinf(dt):
        raise ValueError(f"dt must be a positive float, got {dt!r}")
    return float(dt)


# ---------------------------------------------------------------------------------- export
def export(
    net: nn.Module, sample: Tensor | tuple[int, ...] | None = None, *, dt: float = DEFAULT_DT
):
    """Export ``net`` (a :class:`tracetorch.nn.Sequential`, ``torch.nn.Sequential`` or one
    layer) as a ``nir.NIRGraph``.

    Args:
        net: the network; its layers are exported in order (see the module docstring for
            the mapping of each layer).
        sample: an input (one step ``[B, ...]`` or a sequence ``[T, B, ...]``) or the
            shape of one input's features (e.g. ``(1, 28, 28)``). Needed when the first layer
            is convolutional or a pooling (NIR nodes carry their spatial shapes); a dense
            network's shapes follow from its layers.
        dt: the simulation step the graph's time constants are written for
            (``tau = dt / (1 - beta)``). Norse: ``1e-3`` (default); snnTorch: ``1e-4``.

    Returns:
        a ``nir.NIRGraph`` ``input -> ... -> output``, node names ``"<index>.<part>"``.

    Raises:
        NotImplementedError: for a layer without a NIR primitive (``ALIF``, ``LIS``,
            ``MaxPool2d``, ...), naming it.
        ValueError: for a convolutional network without ``sample``.

    Warns:
        UserWarning: for each layer that resets by subtraction (NIR resets to zero).
    """
    nir = _nir()
    dt = _check_dt(dt)
    layers = list(net) if isinstance(net, nn.Sequential) else [net]
    if not layers:
        raise ValueError("tracetorch.nir.export: the network is empty")
    shape = _input_features(layers[0], sample)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape))}
    chain = ["input"]
    for i, layer in enumerate(layers):
        new, shape = _export_layer(nir, layer, str(i), shape, dt)
        for name, node in new:
            nodes[name] = node
            chain.append(name)
    nodes["output"] = nir.Output(output_type=np.array(shape))
    chain.append("output")
    edges = list(zip(chain[:-1], chain[1:], strict=True))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={_DT_KEY: dt}, type_check=False)


def _input_features(first: nn.Module, sample) -> tuple[int, ...]:
    rank = 1 if _is_dense(first) else 3
    if sample is None:
        if rank == 1:
            return (_dense_in(first),)
        raise ValueError(
            f"tracetorch.nir.export: the first layer ({type(first).__name__}) works on feature "
            "maps; pass sample= (an input tensor or the shape (C, H, W) of one input)"
        )
    dims = tuple(sample.shape) if isinstance(sample, Tensor) else tuple(int(s) for s in sample)
    if len(dims) < rank:
        raise ValueError(f"tracetorch.nir.export: sample shape {dims} has fewer than {rank} dims")
    return dims[-rank:]


def _is_dense(layer: nn.Module) -> bool:
    return (isinstance(layer, tnn.TraceLayer) and layer.step_dim == 2) or isinstance(
        layer, nn.Linear
    )


def _dense_in(layer: nn.Module) -> int:
    return layer.in_features


def _warn_subtract(name: str, layer: nn.Module) -> None:
    warnings.warn(
        f"tracetorch.nir.export: layer {name} ({type(layer).__name__}) resets by subtracting "
        "the threshold, NIR's neurons reset to v_reset = 0: other simulators will produce "
        "different spikes from this graph (tracetorch.nir.import_ restores the subtraction). "
        "For an exact export use tt.nn.LIF(..., reset='zero').",
        UserWarning,
        stacklevel=3,
    )


def _affine(nir, weight: np.ndarray, bias: np.ndarray | None):
    if bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=bias)


def _export_layer(nir, layer: nn.Module, name: str, shape: tuple[int, ...], dt: float):
    kind = type(layer).__name__
    if isinstance(layer, tnn.TraceLayer):
        _check_features(layer, name, shape)
    if isinstance(layer, (tnn.LIF, tnn.LI, tnn.RLIF)):
        beta = _np(layer.beta)
        scale = 1.0 / (1.0 - beta)
        w = _np(layer.weight) * scale[:, None]
        b = None if layer.bias is None else _np(layer.bias) * scale
        tau = dt / (1.0 - beta)
        ones, zeros = np.ones_like(beta), np.zeros_like(beta)
        out = (layer.out_features,)
        synapse = (f"{name}.synapse", _affine(nir, w, b))
        if isinstance(layer, tnn.LI):
            return [synapse, (f"{name}.li", nir.LI(tau=tau, r=ones, v_leak=zeros))], out
        subtract = isinstance(layer, tnn.RLIF) or layer.reset == "subtract"
        meta = {_RESET_KEY: "subtract"} if subtract else {}
        if subtract:
            _warn_subtract(name, layer)
        lif = nir.LIF(
            tau=tau,
            r=ones,
            v_leak=zeros,
            v_threshold=_np(layer.threshold),
            v_reset=zeros,
            metadata=meta,
        )
        if isinstance(layer, tnn.LIF):
            return [synapse, (f"{name}.lif", lif)], out
        rec = nir.Linear(weight=_np(layer.recurrent) * scale[:, None])
        sub = nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type=np.array(out)),
                "lif": lif,
                "w_rec": rec,
                "output": nir.Output(output_type=np.array(out)),
            },
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            metadata={"tracetorch.layer": "RLIF"},
            type_check=False,
        )
        return [synapse, (f"{name}.rlif", sub)], out
    if isinstance(layer, tnn.Synaptic):
        _warn_subtract(name, layer)
        alpha, beta = _np(layer.alpha), _np(layer.beta)
        w = _np(layer.weight)
        b = None if layer.bias is None else _np(layer.bias)
        tau_syn, tau_mem = dt / (1.0 - alpha), dt / (1.0 - beta)
        node = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=tau_mem / dt,
            v_leak=np.zeros_like(beta),
            v_threshold=_np(layer.threshold),
            v_reset=np.zeros_like(beta),
            w_in=tau_syn / dt,
            metadata={_RESET_KEY: "subtract"},
        )
        return [(f"{name}.synapse", _affine(nir, w, b)), (f"{name}.cubalif", node)], (
            layer.out_features,
        )
    if isinstance(layer, tnn.ConvLIF):
        _warn_subtract(name, layer)
        out = layer.output_shape(shape)
        beta = _np(layer.beta)
        scale = 1.0 / (1.0 - beta)
        w = _np(layer.weight) * scale[:, None, None, None]
        b = np.zeros_like(beta) if layer.bias is None else _np(layer.bias) * scale
        conv = nir.Conv2d(
            input_shape=tuple(shape[1:]),
            weight=w,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=1,
            bias=b,
        )
        full = lambda v: np.broadcast_to(v[:, None, None], out).copy()  # noqa: E731
        lif = nir.LIF(
            tau=full(dt / (1.0 - beta)),
            r=np.ones(out),
            v_leak=np.zeros(out),
            v_threshold=full(_np(layer.threshold)),
            v_reset=np.zeros(out),
            metadata={_RESET_KEY: "subtract"},
        )
        return [(f"{name}.synapse", conv), (f"{name}.lif", lif)], out
    if isinstance(layer, nn.AvgPool2d):
        if layer.ceil_mode:
            raise NotImplementedError(f"tracetorch.nir.export: layer {name} ({kind}): ceil_mode")
        k, s, p = (np.array(_pair(v)) for v in (layer.kernel_size, layer.stride, layer.padding))
        if layer.divisor_override == 1:
            node = nir.SumPool2d(kernel_size=k, stride=s, padding=p)
        elif layer.divisor_override is None:
            node = nir.AvgPool2d(kernel_size=k, stride=s, padding=p)
        else:
            raise NotImplementedError(
                f"tracetorch.nir.export: layer {name} ({kind}): divisor_override="
                f"{layer.divisor_override} has no NIR primitive (only None or 1)"
            )
        with torch.no_grad():
            out = tuple(layer(torch.zeros(1, *shape)).shape[1:])
        return [(f"{name}.pool", node)], out
    if isinstance(layer, nn.Flatten):
        if len(shape) < 1:
            raise ValueError(f"tracetorch.nir.export: layer {name} ({kind}) on shape {shape}")
        with torch.no_grad():
            out = tuple(layer(torch.zeros(1, *shape)).shape[1:])
        start = layer.start_dim - 1 if layer.start_dim > 0 else layer.start_dim  # batch dim
        end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
        node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
        return [(f"{name}.flatten", node)], out
    if isinstance(layer, nn.Linear):
        b = None if layer.bias is None else _np(layer.bias)
        return [(f"{name}.linear", _affine(nir, _np(layer.weight), b))], (layer.out_features,)
    if isinstance(layer, nn.Identity):
        return [], shape
    raise NotImplementedError(
        f"tracetorch.nir.export: layer {name} ({kind}) has no NIR primitive. Exportable: "
        "LIF, LI, Synaptic (CubaLIF), RLIF, ConvLIF, AvgPool2d, Flatten, torch.nn.Linear"
    )


def _check_features(layer: tnn.TraceLayer, name: str, shape: tuple[int, ...]) -> None:
    want = layer.in_features
    got = shape[-1] if layer.step_dim == 2 else shape[0]
    if got != want or len(shape) != layer.step_dim - 1:
        raise ValueError(
            f"tracetorch.nir.export: layer {name} ({type(layer).__name__}) expects "
            f"{want} input features, the layers before it give shape {shape}"
        )


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ---------------------------------------------------------------------------------- import
def import_(
    graph,
    *,
    dt: float | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tnn.Sequential:
    """Build a :class:`tracetorch.nn.Sequential` from a ``nir.NIRGraph`` (or a file path).

    The graph must be a chain ``input -> ... -> output`` (a recurrent ``LIF``/``Linear``
    pair, nested as a subgraph or as a two-node cycle, becomes an :class:`~tracetorch.nn.RLIF`).
    A synapse (``Affine``, ``Linear`` or ``Conv2d``) followed by a neuron becomes one layer:
    ``LIF`` -> :class:`~tracetorch.nn.LIF` (``reset="zero"`` unless the node records a
    tracetorch subtraction), ``LI`` -> :class:`~tracetorch.nn.LI`, ``CubaLIF`` ->
    :class:`~tracetorch.nn.Synaptic`, ``Conv2d`` + ``LIF`` -> :class:`~tracetorch.nn.ConvLIF`.
    A synapse alone becomes ``torch.nn.Linear``; ``AvgPool2d``/``SumPool2d`` and ``Flatten``
    map to their tracetorch modules.

    Args:
        graph: a ``nir.NIRGraph``, or a path to a ``.nir`` file (``nir.read``).
        dt: the simulation step (``beta = 1 - dt/tau``); default: the ``dt`` recorded by
            :func:`export`, else ``1e-3``. Every ``tau`` must exceed ``dt``.
        dtype, device: of the new layers (default: torch's default dtype, CPU).

    Raises:
        NotImplementedError: for a node or a graph shape tracetorch has no layer for.
        ValueError: for parameters outside tracetorch's range (``tau <= dt``, a non-zero
            ``v_reset``, per-position parameters of a convolutional neuron, ...).
    """
    nir = _nir()
    if isinstance(graph, (str, bytes)) or hasattr(graph, "__fspath__"):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"import_ expects a nir.NIRGraph or a path, got {type(graph).__name__}")
    if dt is None:
        dt = float((graph.metadata or {}).get(_DT_KEY, DEFAULT_DT))
    dt = _check_dt(dt)
    dtype = dtype or torch.get_default_dtype()
    chain, recurrent = _chain(nir, graph)
    modules: list[nn.Module] = []
    i = 0
    while i < len(chain):
        key, node = chain[i]
        nxt = chain[i + 1][1] if i + 1 < len(chain) else None
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)) and _is_neuron(nir, nxt):
            neuron_key = chain[i + 1][0]
            modules.append(
                _import_layer(nir, node, nxt, recurrent.get(neuron_key), neuron_key, dt, dtype)
            )
            i += 2
            continue
        modules.append(_import_single(nir, key, node, recurrent.get(key), dt, dtype))
        i += 1
    return tnn.Sequential(*modules).to(device=device)


def _is_neuron(nir, node) -> bool:
    return isinstance(node, (nir.LIF, nir.LI, nir.CubaLIF))


def _chain(nir, graph) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The nodes from input to output in order, and the recurrent weights of neurons."""
    nodes = dict(graph.nodes)
    edges = [tuple(e) for e in graph.edges]
    recurrent: dict[str, Any] = {}
    for key, node in list(nodes.items()):  # nested recurrent subgraphs
        if isinstance(node, nir.NIRGraph):
            neuron, rec = _parse_recurrent(nir, key, node)
            nodes[key] = neuron
            recurrent[key] = rec
    for a, b in list(edges):  # flat two-node cycles: neuron <-> weight
        if (b, a) in edges and a in nodes and b in nodes:
            na, nb = nodes[a], nodes[b]
            if isinstance(na, (nir.LIF, nir.CubaLIF)) and isinstance(nb, (nir.Affine, nir.Linear)):
                if sum(e[0] == b for e in edges) == 1 and sum(e[1] == b for e in edges) == 1:
                    recurrent[a] = nb
                    edges = [e for e in edges if e not in ((a, b), (b, a))]
                    del nodes[b]
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    starts = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    if len(starts) != 1:
        raise NotImplementedError(
            f"tracetorch.nir.import_: the graph needs exactly one Input node, found {starts}"
        )
    chain, key, seen = [], starts[0], set()
    while True:
        nxt = succ.get(key, [])
        if len(nxt) != 1:
            if not nxt and isinstance(nodes[key], nir.Output):
                break
            raise NotImplementedError(
                f"tracetorch.nir.import_: node {key!r} has {len(nxt)} successors; only "
                "chains input -> ... -> output (and recurrent LIF subgraphs) are supported"
            )
        key = nxt[0]
        if key in seen:
            raise NotImplementedError(f"tracetorch.nir.import_: a cycle through {key!r}")
        seen.add(key)
        if not isinstance(nodes[key], nir.Output):
            chain.append((key, nodes[key]))
    if len(seen) != len([n for n in nodes.values() if not isinstance(n, nir.Input)]):
        unused = sorted(set(nodes) - seen - set(starts))
        raise NotImplementedError(
            f"tracetorch.nir.import_: nodes {unused} are not on the chain input -> output"
        )
    return chain, recurrent


def _parse_recurrent(nir, key: str, sub) -> tuple[Any, Any]:
    inner = {k: n for k, n in sub.nodes.items() if not isinstance(n, (nir.Input, nir.Output))}
    neurons = [k for k, n in inner.items() if isinstance(n, (nir.LIF, nir.CubaLIF))]
    weights = [k for k, n in inner.items() if isinstance(n, (nir.Affine, nir.Linear))]
    edges = {tuple(e) for e in sub.edges}
    if len(inner) == 2 and len(neurons) == 1 and len(weights) == 1:
        n, w = neurons[0], weights[0]
        if (n, w) in edges and (w, n) in edges:
            return inner[n], inner[w]
    raise NotImplementedError(
        f"tracetorch.nir.import_: subgraph {key!r} is not a recurrent neuron "
        "(input -> LIF/CubaLIF -> output with a LIF -> Linear -> LIF feedback)"
    )


def _arr(v, shape=None) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a if shape is None else np.broadcast_to(a, shape).astype(np.float64)


def _per_neuron(a: np.ndarray, what: str, key: str, conv: bool) -> np.ndarray:
    """``[C]`` from a neuron parameter given per neuron ``[C]`` or per position ``[C, H, W]``."""
    if not conv or a.ndim <= 1:
        return a.reshape(-1) if a.ndim else a
    flat = a.reshape(a.shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise ValueError(
            f"tracetorch.nir.import_: {what} of {key!r} varies over positions; ConvLIF has one "
            "value per channel"
        )
    return flat[:, 0]


def _decay(tau: np.ndarray, dt: float, what: str, key: str) -> np.ndarray:
    tau = np.asarray(tau, dtype=np.float64)
    if not np.all(tau > dt):
        raise ValueError(
            f"tracetorch.nir.import_: {what} of {key!r} must exceed dt={dt:g} (beta = 1 - dt/tau "
            f"in (0, 1)), got min {tau.min():g}; pass the simulator's dt to import_(..., dt=)"
        )
    return 1.0 - dt / tau


def _reset_of(node, key: str) -> str:
    meta = getattr(node, "metadata", None) or {}
    reset = meta.get(_RESET_KEY, "zero")
    reset = reset.decode() if isinstance(reset, bytes) else str(reset)
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and not np.allclose(v_reset, 0.0):
        raise ValueError(
            f"tracetorch.nir.import_: v_reset of {key!r} is not 0; tracetorch's neurons "
            "reset to 0 (or subtract the threshold)"
        )
    return reset


def _weights(node) -> tuple[np.ndarray, np.ndarray | None]:
    w = np.asarray(node.weight, dtype=np.float64)
    b = getattr(node, "bias", None)
    return w, (None if b is None else np.asarray(b, dtype=np.float64))


def _import_layer(nir, syn, neuron, rec, key: str, dt: float, dtype) -> nn.Module:
    w, b = _weights(syn)
    conv = isinstance(syn, nir.Conv2d)
    out = w.shape[0]
    if isinstance(neuron, nir.CubaLIF):
        if conv:
            raise NotImplementedError(f"tracetorch.nir.import_: Conv2d + CubaLIF at {key!r}")
        if not np.allclose(neuron.v_leak, 0.0):
            raise ValueError(f"tracetorch.nir.import_: CubaLIF {key!r} with v_leak != 0")
        shape = (out,)
        alpha = _decay(_arr(neuron.tau_syn, shape), dt, "tau_syn", key)
        beta = _decay(_arr(neuron.tau_mem, shape), dt, "tau_mem", key)
        # I' = (1-beta) r I:  I' <- alpha I' + k S, m <- beta m + I', k = (1-alpha) w_in (1-beta) r
        k = (1 - alpha) * _arr(neuron.w_in, shape) * (1 - beta) * _arr(neuron.r, shape)
        reset = _reset_of(neuron, key)
        _warn_import_reset(reset, key, "Synaptic")
        layer = tnn.Synaptic(
            w.shape[1],
            out,
            bias=b is not None,
            alpha=torch.from_numpy(alpha),
            beta=torch.from_numpy(beta),
            threshold=torch.from_numpy(_arr(neuron.v_threshold, shape)),
            dtype=dtype,
        )
        _set(layer, w * k[:, None], None if b is None else b * k)
        _exact(layer.alpha_raw, alpha, P.to_decay)
        _exact(layer.beta_raw, beta, P.to_decay)
        _exact(layer.threshold_raw, _arr(neuron.v_threshold, shape), P.to_threshold)
        return layer
    tau = _per_neuron(_arr(neuron.tau), "tau", key, conv)
    shape = (out,)
    beta = _decay(_arr(tau, shape), dt, "tau", key)
    r = _arr(_per_neuron(_arr(neuron.r), "r", key, conv), shape)
    v_leak = _arr(_per_neuron(_arr(neuron.v_leak), "v_leak", key, conv), shape)
    k = (1 - beta) * r  # the Euler step's input gain
    lead = (slice(None),) + (None,) * (w.ndim - 1)
    weight = w * k[lead]
    leak = (1 - beta) * v_leak
    bias = None
    if b is not None or np.any(leak != 0):
        bias = (np.zeros(out) if b is None else b * k) + leak
    if isinstance(neuron, nir.LI):
        if conv:
            raise NotImplementedError(f"tracetorch.nir.import_: Conv2d + LI at {key!r}")
        layer = tnn.LI(
            w.shape[1], out, bias=bias is not None, beta=torch.from_numpy(beta), dtype=dtype
        )
        _set(layer, weight, bias)
        _exact(layer.beta_raw, beta, P.to_decay)
        return layer
    theta = _arr(_per_neuron(_arr(neuron.v_threshold), "v_threshold", key, conv), shape)
    reset = _reset_of(neuron, key)
    common = dict(
        bias=bias is not None,
        beta=torch.from_numpy(beta),
        threshold=torch.from_numpy(theta),
        dtype=dtype,
    )
    if conv:
        _warn_import_reset(reset, key, "ConvLIF")
        stride, padding, dilation = (_pair_int(v) for v in (syn.stride, syn.padding, syn.dilation))
        if syn.groups != 1:
            raise NotImplementedError(f"tracetorch.nir.import_: Conv2d {key!r} with groups != 1")
        layer = tnn.ConvLIF(
            w.shape[1], out, tuple(w.shape[2:]), stride, padding, dilation, **common
        )
    elif rec is not None:
        _warn_import_reset(reset, key, "RLIF")
        rw, rb = _weights(rec)
        if rb is not None and np.any(rb != 0):
            raise NotImplementedError(
                f"tracetorch.nir.import_: recurrent Affine of {key!r} with a bias"
            )
        rw = rw * k[:, None]
        zero_diag = bool(np.all(np.diag(rw) == 0))
        layer = tnn.RLIF(w.shape[1], out, zero_diagonal=zero_diag, **common)
        with torch.no_grad():
            layer.recurrent_raw.copy_(torch.from_numpy(rw))
    else:
        layer = tnn.LIF(w.shape[1], out, reset=reset, **common)
    _set(layer, weight, bias)
    _exact(layer.beta_raw, beta, P.to_decay)
    _exact(layer.threshold_raw, theta, P.to_threshold)
    return layer


def _warn_import_reset(reset: str, key: str, kind: str) -> None:
    if reset != "subtract":
        warnings.warn(
            f"tracetorch.nir.import_: {key!r} resets to zero, tracetorch's {kind} subtracts the "
            "threshold: its spikes will differ from the graph's after the first spike",
            UserWarning,
            stacklevel=4,
        )


def _pair_int(v) -> tuple[int, int]:
    if isinstance(v, str):
        raise NotImplementedError(f"tracetorch.nir.import_: Conv2d padding {v!r}; give integers")
    a = np.asarray(v).reshape(-1)
    return (int(a[0]), int(a[-1]))


def _import_single(nir, key: str, node, rec, dt: float, dtype) -> nn.Module:
    if rec is not None or _is_neuron(nir, node):
        raise NotImplementedError(
            f"tracetorch.nir.import_: neuron {key!r} ({type(node).__name__}) has no Affine, "
            "Linear or Conv2d right before it; tracetorch's neurons own their synapse"
        )
    if isinstance(node, (nir.Affine, nir.Linear)):
        w, b = _weights(node)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=dtype)
        _set(lin, w, b)
        return lin
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k, s, p = (_pair_int(v) for v in (node.kernel_size, node.stride, node.padding))
        div = 1 if isinstance(node, nir.SumPool2d) else None
        return tnn.AvgPool2d(k, s, p, divisor_override=div)
    if isinstance(node, nir.Flatten):
        shape = node.input_type.get("input") if node.input_type else None
        n = None if shape is None else len(np.asarray(shape).reshape(-1))
        start, end = int(node.start_dim), int(node.end_dim)
        if n is not None:
            start, end = start % n, end % n
            if start == 0 and end == n - 1:
                return tnn.Flatten() if n == 3 else nn.Flatten(start_dim=-n)
        raise NotImplementedError(
            f"tracetorch.nir.import_: Flatten {key!r} must flatten all feature dimensions "
            f"(got start_dim={node.start_dim}, end_dim={node.end_dim}, input {shape})"
        )
    raise NotImplementedError(
        f"tracetorch.nir.import_: node {key!r} ({type(node).__name__}) has no tracetorch layer"
    )


def _set(module: nn.Module, weight: np.ndarray, bias: np.ndarray | None) -> None:
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        if bias is not None:
            module.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))


def _exact(raw: nn.Parameter, value: np.ndarray, to_value) -> None:
    """Set ``raw`` so that ``to_value(raw)`` is ``value`` rounded to the state dtype, exactly.

    ``logit``/``softplus^-1`` in float64, then a few one-ulp nudges where the layer's float32
    ``sigmoid``/``softplus`` lands one rounding away: a round trip keeps every parameter.
    """
    with torch.no_grad():
        target = torch.from_numpy(np.ascontiguousarray(value)).to(P.state_dtype(raw.dtype))
        target = target.to(raw.device)
        for _ in range(16):
            got = to_value(raw)
            off = got != target
            if not bool(off.any()):
                return
            toward = torch.where(got < target, math.inf, -math.inf).to(raw.dtype)
            raw.copy_(torch.where(off, torch.nextafter(raw, toward), raw))
