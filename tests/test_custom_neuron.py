"""The custom-neuron tutorial (examples/custom_neuron.py, docs/custom-neuron.md) keeps working.

A neuron built outside the library on the public hooks of ``tt.nn.SpikingLayer``: golden step
values, the optional in-place run equal to the reference step bit for bit, both learning
modes, the stream state, the line budget of the neuron, and a quick run of the example.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch import functional as tf

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_neuron.py"


@pytest.fixture(scope="module")
def cn():
    """The example, imported as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location("custom_neuron", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_neuron"] = module  # so that pickle finds its classes
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("custom_neuron", None)


def test_neuron_fits_in_150_lines():
    lines = EXAMPLE.read_text().splitlines()
    begin = next(i for i, s in enumerate(lines) if s.startswith("# --- neuron: begin"))
    end = next(i for i, s in enumerate(lines) if s.startswith("# --- neuron: end"))
    assert 0 < end - begin - 1 <= 150


def test_golden_trajectory(cn):
    cn.check_golden()  # asserts the hand-computed spikes and membranes exactly
    # The same trajectory through the layer's own path (one call on the sequence).
    layer = cn.HardResetLIF(1, 1, bias=False, beta=0.5, threshold=0.75, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        out = layer(torch.tensor(cn.GOLDEN_CURRENT, dtype=torch.float64).view(5, 1, 1))
    assert out.flatten().tolist() == cn.GOLDEN_SPIKES
    assert layer.membrane.item() == cn.GOLDEN_MEMBRANE[-1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_run_equals_reference_step_bit_for_bit(cn, dtype):
    g = torch.Generator().manual_seed(0)
    c = torch.randn(40, 3, 7, generator=g, dtype=dtype) * 0.8 + 0.3
    m0 = torch.randn(3, 7, generator=g, dtype=dtype).abs()
    beta = torch.rand(7, generator=g, dtype=dtype) * 0.9 + 0.05
    theta = torch.rand(7, generator=g, dtype=dtype) + 0.5
    p = cn.HardResetParams(beta, theta)
    ref_out, ref_state = tf.run(cn.hard_reset_step, c, cn.HardResetState(m0), p)
    m0_copy = m0.clone()
    with torch.no_grad():
        out, state = cn.hard_reset_run_(c.clone(), cn.HardResetState(m0), p)
    assert torch.equal(out, ref_out)
    assert torch.equal(state.membrane, ref_state.membrane)
    assert torch.equal(m0, m0_copy)  # the caller's state is left alone
    assert 0 < float(ref_out.mean()) < 1  # the input made it spike, and not always


def test_layer_fast_path_equals_generic_path(cn):
    """With ``fast_run`` and with the generic ``tf.run_`` (fast_run = None), chunked or not."""
    x = (torch.rand(30, 4, 6) < 0.4).float()
    outs = []
    for fast, chunk in ((True, None), (False, None), (True, 7)):
        torch.manual_seed(1)
        layer = cn.HardResetLIF(6, 5, chunk_size=chunk)
        if not fast:
            layer.fast_run = None
        with torch.no_grad():
            outs.append((layer(x), layer.membrane.clone()))
    for out, m in outs[1:]:
        assert torch.equal(out, outs[0][0]) and torch.equal(m, outs[0][1])


def test_rate_matches_simulation(cn):
    """The average output is within 0.34 of the simulated rate, exact at the plateaus' middle."""
    table = cn.rate_table()
    for c, simulated, exact, average in table:
        assert abs(simulated - exact) < 2e-3, c
        assert abs(average - exact) < 0.34, c
        assert 0 < average < 1
    # c = 0.3: x = ln(2/3)/ln(0.9) = 3.85, n = 4, smooth 1/(x + 1/2) = 0.230 vs 0.25.
    row = next(r for r in table if r[0] == 0.3)
    assert row[2] == 0.25 and abs(row[3] - 0.25) < 0.03


def test_rate_is_finite_with_finite_gradients(cn):
    c = torch.tensor(
        [-1e6, -50.0, -1.0, 0.0, 0.1, 0.1 + 1e-7, 0.5, 1.0, 2.0, 1e6], requires_grad=True
    )
    beta = torch.tensor(0.9, requires_grad=True)
    theta = torch.tensor(1.0, requires_grad=True)
    r = cn.hard_reset_rate(c, beta, theta)
    r.sum().backward()
    assert torch.isfinite(r).all() and ((r > 0) & (r <= 1)).all()
    for t in (c, beta, theta):
        assert torch.isfinite(t.grad).all()
    assert (c.grad >= 0).all()  # more current, more spikes


def test_trains_in_both_modes(cn):
    torch.manual_seed(0)
    net = tt.nn.Sequential(cn.HardResetLIF(8, 16, threshold=0.5), tt.nn.LI(16, 3))
    x = (torch.rand(20, 5, 8) < 0.5).float()
    y = torch.tensor([0, 1, 2, 0, 1])
    grads = {}
    for mode in ("trace", "bptt"):
        net.zero_grad()
        net.reset_states()
        with tt.bptt(net) if mode == "bptt" else torch.enable_grad():
            F.cross_entropy(net(x)[-1], y).backward()
        grads[mode] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        assert {"0.weight", "0.bias", "0.beta_raw", "0.threshold_raw"} <= set(grads[mode])
        assert all(torch.isfinite(g).all() for g in grads[mode].values())
    cos = tt.learning.fidelity.cosine(grads["trace"]["0.weight"], grads["bptt"]["0.weight"])
    assert cos > 0.5
    assert "rate_fn='hard_reset_rate'" in repr(net[0])


def test_stream_state_round_trip_and_pickle(cn, tmp_path):
    torch.manual_seed(0)
    net = tt.nn.Sequential(cn.HardResetLIF(6, 8, threshold=0.3), tt.nn.LI(8, 2))
    x = (torch.rand(30, 3, 6) < 0.5).float()
    with torch.no_grad():
        net(x[:12])
        torch.save(net.stream_state_dict(), tmp_path / "stream.pt")
        expected = net(x[12:])
        net.reset_states()
        net.load_stream_state_dict(torch.load(tmp_path / "stream.pt", weights_only=True))
        assert torch.equal(net(x[12:]), expected)
    assert set(net[0].stream_state_dict()) == {"membrane", "trace", "steps"}
    clone = pickle.loads(pickle.dumps(net))
    assert torch.equal(clone[0].weight, net[0].weight)


def test_stale_output_guard_covers_the_custom_layer(cn):
    layer = cn.HardResetLIF(4, 3)
    out = layer(torch.rand(5, 2, 4))
    layer(torch.rand(1, 2, 4))  # the state moves on
    with pytest.raises(RuntimeError, match="state is gone"):
        out[-1].sum().backward()


def test_example_quick_run(cn, capsys):
    start = time.perf_counter()
    results = cn.main(epochs=1, steps=10, max_batches=4)
    assert time.perf_counter() - start < 20
    text = capsys.readouterr().out
    assert "golden trajectory ok" in text and "gradient cosine" in text
    for mode in ("trace", "bptt"):
        assert 0.0 <= results[mode] <= 1.0
    assert results["fidelity"]["1.weight"] > 0.9  # the readout is near exact


def test_tutorial_excerpts_match_the_example():
    """Every ```python block of docs/custom-neuron.md is a verbatim excerpt of the example."""
    doc = (EXAMPLE.parents[1] / "docs" / "custom-neuron.md").read_text()
    source = EXAMPLE.read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```python\n")[1:]]
    assert len(blocks) >= 6
    for block in blocks:
        assert block in source, block[:80]
