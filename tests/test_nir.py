"""NIR export/import (tracetorch.nir) and the LIF reset option it relies on.

The reset tests need nothing optional; the NIR tests skip without ``nir``, the peer checks
without Norse or snnTorch.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings

import numpy as np
import pytest
import torch

import tracetorch as tt
import tracetorch.functional as tf
from tracetorch.functional import neurons as tfn


def _spiky(shape, p=0.3, scale=1.0, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).to(dtype) * scale


def _boost(net, factor=3.0):
    with torch.no_grad():
        for layer in net:
            if hasattr(layer, "weight"):
                layer.weight.mul_(factor)
    return net


# ------------------------------------------------------------------------- LIF reset option
def test_zero_reset_golden_step():
    p = tf.LIFParams(0.5, 1.0, reset="zero")
    s, st = tf.lif_step(torch.tensor([[0.8, 1.2]]), tf.LIFState(torch.tensor([[0.5, 0.6]])), p)
    # m = 0.5*[0.5, 0.6] + [0.8, 1.2] = [1.05, 1.5]: both spike and go to 0 (subtract: 0.05, 0.5)
    assert torch.equal(s, torch.tensor([[1.0, 1.0]]))
    assert torch.equal(st.membrane, torch.zeros(1, 2))
    _, sub = tf.lif_step(
        torch.tensor([[0.8, 1.2]]), tf.LIFState(torch.tensor([[0.5, 0.6]])), tf.LIFParams(0.5, 1.0)
    )
    assert torch.allclose(sub.membrane, torch.tensor([[0.05, 0.5]]))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_run_in_place_is_the_reference_step_bit_for_bit(reset, dtype):
    g = torch.Generator().manual_seed(1)
    c = torch.randn(60, 7, 13, generator=g, dtype=dtype) * 0.8 + 0.3
    beta = torch.rand(13, generator=g, dtype=dtype) * 0.5 + 0.45
    theta = torch.rand(13, generator=g, dtype=dtype) + 0.5
    state = tf.LIFState(torch.randn(7, 13, generator=g, dtype=dtype))
    p = tf.LIFParams(beta, theta, reset=reset)
    ref, ref_state = tf.run(tf.lif_step, c, state, p)
    with torch.no_grad():
        out, new_state = tf.lif_run_(c.clone(), state, p)
    assert torch.equal(out, ref) and torch.equal(new_state.membrane, ref_state.membrane)
    assert ref.sum() > 0 and (ref == 0).any()


def test_zero_reset_never_uses_the_cpp_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(tfn._cpp, "lif_run_", lambda *a: calls.append(a) or None)
    c = torch.ones(3, 2, 4)
    with torch.no_grad():
        tf.lif_run_(c.clone(), tf.LIFState(torch.zeros(2, 4)), tf.LIFParams(0.9, 0.5, reset="zero"))
        assert not calls
        tf.lif_run_(c.clone(), tf.LIFState(torch.zeros(2, 4)), tf.LIFParams(0.9, 0.5))
        assert len(calls) == 1


def test_lif_layer_reset_option():
    torch.manual_seed(0)
    layer = _boost([tt.nn.LIF(6, 9, reset="zero")])[0]
    assert "reset='zero'" in repr(layer) and "reset" not in repr(tt.nn.LIF(6, 9))
    x = _spiky((30, 4, 6))
    with torch.no_grad():
        out = layer(x)
        c = torch.nn.functional.linear(x, layer.weight, layer.bias)
        ref, state = tf.run(
            tf.lif_step,
            c,
            tf.LIFState(torch.zeros(4, 9)),
            tf.LIFParams(layer.beta, layer.threshold, reset="zero"),
        )
    assert torch.equal(out, ref) and torch.equal(layer.membrane, state.membrane)
    layer.reset_states()  # BPTT runs the same reference step with a surrogate
    with tt.bptt(layer):
        bp = layer(x)
        bp[-1].sum().backward()
    assert torch.equal(bp.detach(), ref) and layer.weight.grad is not None
    with pytest.raises(ValueError, match="reset must be one of"):
        tt.nn.LIF(2, 3, reset="hard")


# ------------------------------------------------------------------------- NIR
def test_missing_nir_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"tracetorch\[nir\]"):
        tt.nir.export(tt.nn.LIF(2, 3, reset="zero"))


nir = pytest.importorskip("nir", reason="tracetorch.nir tests need the optional 'nir' package")


def _dense_net(reset="zero"):
    torch.manual_seed(0)
    return _boost(
        tt.nn.Sequential(
            tt.nn.LIF(8, 16, reset=reset),
            tt.nn.RLIF(16, 12),
            tt.nn.Synaptic(12, 10, alpha=0.7),
            tt.nn.LIF(10, 6, reset=reset, bias=False),
            tt.nn.LI(6, 3),
        )
    )


def _quiet_export(net, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tt.nir.export(net, *args, **kwargs)


def _mapped(net):
    """Every layer's parameters as the dynamics use them (beta, theta, ... not the raw ones)."""
    out = []
    for layer in net:
        for name in ("weight", "bias", "beta", "threshold", "alpha", "recurrent"):
            v = getattr(layer, name, None)
            if isinstance(v, torch.Tensor):
                out.append((name, v.detach()))
    return out


def _assert_same_dynamics(a, b):
    pa, pb = _mapped(a), _mapped(b)
    assert [n for n, _ in pa] == [n for n, _ in pb]
    for (name, x), (_, y) in zip(pa, pb, strict=True):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_round_trip_dense_gives_identical_spikes(reset):
    net = _dense_net(reset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = tt.nir.export(net)
    warned = {str(w.message).split("(")[1].split(")")[0] for w in caught}
    assert warned == ({"RLIF", "Synaptic"} | ({"LIF"} if reset == "subtract" else set()))
    assert isinstance(graph, nir.NIRGraph)
    back = tt.nir.import_(graph)
    assert [type(m) for m in back] == [type(m) for m in net]
    assert back[0].reset == reset and back[3].reset == reset and back[3].bias is None
    _assert_same_dynamics(net, back)
    x = _spiky((50, 5, 8), scale=2.0)
    with torch.no_grad():
        net.reset_states()
        back.reset_states()
        hidden, hidden_back = net[:4](x), back[:4](x)
        assert hidden.sum() > 0
        assert torch.equal(hidden, hidden_back)
        assert torch.equal(net[4](hidden), back[4](hidden_back))


def test_round_trip_conv_through_a_file(tmp_path):
    torch.manual_seed(0)
    net = tt.nn.Sequential(
        tt.nn.ConvLIF(2, 4, 3, padding=1),
        tt.nn.AvgPool2d(2),
        tt.nn.Flatten(),
        tt.nn.LIF(4 * 4 * 4, 10, reset="zero"),
        tt.nn.LI(10, 3),
    )
    x = _spiky((30, 2, 2, 8, 8), scale=3.0)
    with pytest.raises(ValueError, match="sample="):
        tt.nir.export(net)
    graph = _quiet_export(net, x)
    assert graph.nodes["0.lif"].tau.shape == (4, 8, 8)
    nir.write(tmp_path / "net.nir", graph)
    back = tt.nir.import_(str(tmp_path / "net.nir"))
    assert [type(m) for m in back] == [type(m) for m in net]
    _assert_same_dynamics(net, back)
    with torch.no_grad():
        net.reset_states()
        back.reset_states()
        assert net[0](x).sum() > 0
        net.reset_states()
        assert torch.equal(net(x), back(x))


def test_dt_tau_beta_mapping():
    torch.manual_seed(0)
    layer = tt.nn.LIF(3, 4, beta=torch.tensor([0.5, 0.9, 0.99, 0.999]), reset="zero")
    for dt in (1e-3, 1e-4):
        g = tt.nir.export(layer, dt=dt)
        beta = layer.beta.detach().double().numpy()
        lif, aff = g.nodes["0.lif"], g.nodes["0.synapse"]
        assert np.allclose(lif.tau, dt / (1 - beta), rtol=1e-12)
        assert np.allclose(aff.weight, layer.weight.detach().double().numpy() / (1 - beta)[:, None])
        assert np.allclose(aff.bias, layer.bias.detach().double().numpy() / (1 - beta))
        assert np.all(lif.r == 1) and np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
        assert float(g.metadata["tracetorch.dt"]) == dt
        back = tt.nir.import_(g)  # dt from the graph's metadata
        assert torch.equal(back[0].beta, layer.beta)
        with pytest.raises(ValueError, match="must exceed dt"):
            tt.nir.import_(g, dt=dt * 1e4)


def _euler_nir(graph, x, dt):
    """Step a chain of Affine/Linear + LIF/LI nodes by NIR's ODEs (forward Euler), float64."""
    chain, key = [], "input"
    succ = dict(graph.edges)
    while succ[key] != "output":
        key = succ[key]
        chain.append(graph.nodes[key])
    v = [None] * len(chain)
    outs = []
    for x_t in x.double().numpy():
        h = x_t
        for i, node in enumerate(chain):
            if isinstance(node, (nir.Affine, nir.Linear)):
                h = h @ node.weight.T + (node.bias if isinstance(node, nir.Affine) else 0)
                continue
            v[i] = np.zeros_like(h) if v[i] is None else v[i]
            v[i] = v[i] + dt / node.tau * (node.v_leak - v[i] + node.r * h)
            if isinstance(node, nir.LIF):
                s = (v[i] >= node.v_threshold).astype(np.float64)
                v[i] = np.where(s > 0, node.v_reset, v[i])
                h = s
            else:
                h = v[i]
        outs.append(h)
    return torch.from_numpy(np.stack(outs))


def test_graph_follows_nirs_equations_for_zero_reset():
    torch.manual_seed(0)
    net = _boost(
        tt.nn.Sequential(
            tt.nn.LIF(8, 16, reset="zero"), tt.nn.LIF(16, 5, reset="zero"), tt.nn.LI(5, 3)
        )
    ).double()
    x = _spiky((40, 4, 8), scale=2.0, dtype=torch.float64)
    graph = tt.nir.export(net, dt=1e-3)
    with torch.no_grad():
        net.reset_states()
        spikes, out = net[:2](x), None
        out = net[2](spikes)
    assert spikes.sum() > 0
    ref = _euler_nir(graph, x, 1e-3)
    assert torch.allclose(out, ref, atol=1e-9)
    sub = _euler_nir(tt.nir.export(net[:2], dt=1e-3), x, 1e-3)
    assert torch.equal(sub, spikes)


def test_layers_without_a_primitive_raise_naming_the_layer():
    for layer, name in [(tt.nn.ALIF(3, 4), "ALIF"), (tt.nn.LIS(3, 4), "LIS")]:
        with pytest.raises(NotImplementedError, match=rf"layer 1 \({name}\) has no NIR primitive"):
            tt.nir.export(tt.nn.Sequential(tt.nn.LIF(2, 3, reset="zero"), layer))
    with pytest.raises(NotImplementedError, match="MaxPool2d"):
        _quiet_export(tt.nn.Sequential(tt.nn.ConvLIF(1, 2, 3), tt.nn.MaxPool2d(2)), (1, 6, 6))


def test_import_recurrent_as_a_flat_cycle_and_rejects_branches():
    net = tt.nn.Sequential(_dense_net()[1])  # RLIF
    g = _quiet_export(net)
    sub = g.nodes.pop("0.rlif")
    nodes = {**g.nodes, "0.lif": sub.nodes["lif"], "0.w_rec": sub.nodes["w_rec"]}
    edges = [
        ("input", "0.synapse"),
        ("0.synapse", "0.lif"),
        ("0.lif", "0.w_rec"),
        ("0.w_rec", "0.lif"),
        ("0.lif", "output"),
    ]
    flat = nir.NIRGraph(nodes=nodes, edges=edges, metadata=g.metadata, type_check=False)
    back = tt.nir.import_(flat)
    _assert_same_dynamics(net, back)
    edges.append(("0.synapse", "output"))
    with pytest.raises(NotImplementedError, match="successors"):
        tt.nir.import_(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


# ------------------------------------------------------------------------- peers
def _peer_net():
    torch.manual_seed(0)  # one beta per layer: snnTorch's importer wants uniform parameters
    return _boost(
        tt.nn.Sequential(
            tt.nn.LIF(8, 32, beta=0.9, reset="zero"), tt.nn.LIF(32, 6, beta=0.75, reset="zero")
        )
    )


def test_norse_from_nir_reproduces_the_spikes():
    norse = pytest.importorskip("norse.torch", reason="Norse is not installed")
    net = _peer_net().double()
    graph = tt.nir.export(net)  # dt = 1e-3, Norse's
    model = norse.from_nir(graph).double()
    x = _spiky((100, 4, 8), dtype=torch.float64)
    with torch.no_grad():
        net.reset_states()
        ref = net(x)
        state, outs = None, []
        for x_t in x:
            out, state = model(x_t, state)
            outs.append(out)
    assert ref.sum() > 20
    assert torch.equal(torch.stack(outs), ref)


def test_snntorch_import_reproduces_the_spikes():
    pytest.importorskip("snntorch", reason="snnTorch is not installed")
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    net = _peer_net()
    graph = tt.nir.export(net, dt=1e-4)  # snnTorch's importer steps with dt = 1e-4
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight rescaling
        model = import_from_nir(graph)
    x = _spiky((100, 4, 8))
    with torch.no_grad():
        net.reset_states()
        ref = net(x)
        snn_utils.reset(model)
        out = torch.stack([model(x_t)[0] for x_t in x])
    assert ref.sum() > 20
    assert torch.equal(out, ref)
