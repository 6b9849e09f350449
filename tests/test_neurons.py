"""The temporal neurons (RLIF, ALIF, Synaptic, ConvLIF) and the one-reference-step contract.

Every layer's fast path (chunked, in place) must give its reference step's values: the
no-graph forward equals the BPTT forward (which *is* ``run(step, ...)``) bit for bit in
float64, for any chunking and any split of the stream.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch import functional as tf

f64 = torch.float64
DENSE = [tt.nn.LIF, tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic, tt.nn.LI, tt.nn.LIS]
SPIKING = [tt.nn.LIF, tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic]


def _x(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).to(f64)


def _layer(cls, **kw):
    torch.manual_seed(0)
    if cls is tt.nn.ConvLIF:
        return cls(2, 3, 3, padding=1, threshold=0.5, dtype=f64, **kw)
    extra = {"threshold": 0.4} if cls in SPIKING else {}
    return cls(6, 5, dtype=f64, **extra, **kw)


def _input(cls, steps: int = 30, batch: int = 4):
    if cls is tt.nn.ConvLIF:
        return _x(steps, batch, 2, 5, 5)
    return _x(steps, batch, 6)


# ----------------------------------------------------------------------------- golden steps
def test_alif_step_golden_values():
    """theta 1, rho 0.5, alpha 0.5, beta 0.5; constant current 0.75 (hand computed, exact)."""
    p = tf.ALIFParams(0.5, 1.0, 0.5, 0.5)
    state = tf.ALIFState(torch.zeros(1, 1, dtype=f64), torch.zeros(1, 1, dtype=f64))
    c = torch.full((1, 1), 0.75, dtype=f64)
    got = []
    for _ in range(5):
        s, state = tf.alif_step(c, state, p)
        got.append((float(s), float(state.membrane), float(state.adaptation)))
    # t2: u = 1.125 >= 1 -> spike, m = .125, A = 1. t3: threshold 1.5, u = .8125.
    # t4: threshold 1.25, u = 1.15625. t5: threshold 1.125, u = 1.328125 -> spike.
    expected = [
        (0, 0.75, 0),
        (1, 0.125, 1),
        (0, 0.8125, 0.5),
        (0, 1.15625, 0.25),
        (1, 0.203125, 1.125),
    ]
    assert got == expected


def test_synaptic_step_golden_values():
    """alpha 0.5, beta 0.5, theta 1; one input of 1 then silence: I = 1, .5, .25 ..."""
    p = tf.SynapticParams(0.5, 0.5, 1.0)
    state = tf.SynapticState(torch.zeros(1, 1, dtype=f64), torch.zeros(1, 1, dtype=f64))
    cs, got = [1.0, 0.0, 0.0, 0.0], []
    for c in cs:
        s, state = tf.synaptic_step(torch.full((1, 1), c, dtype=f64), state, p)
        got.append((float(s), float(state.current), float(state.membrane)))
    # m: 1 -> spike, 0; .5; .25 + .25 = .5; .25 + .125 = .375
    assert got == [(1, 1.0, 0.0), (0, 0.5, 0.5), (0, 0.25, 0.5), (0, 0.125, 0.375)]


def test_rlif_step_feeds_back_the_previous_spikes():
    v = torch.tensor([[0.0, 2.0], [0.0, 0.0]], dtype=f64)  # neuron 0 listens to neuron 1
    p = tf.RLIFParams(0.5, 1.0, v)
    state = tf.RLIFState(torch.zeros(1, 2, dtype=f64), torch.zeros(1, 2, dtype=f64))
    s1, state = tf.rlif_step(torch.tensor([[0.0, 1.0]], dtype=f64), state, p)
    assert s1.tolist() == [[0, 1]]
    s2, state = tf.rlif_step(torch.zeros(1, 2, dtype=f64), state, p)
    assert s2.tolist() == [[1, 0]] and state.membrane.tolist() == [[1.0, 0.0]]


# ----------------------------------------------------------------------------- fast path
@pytest.mark.parametrize("cls", [*DENSE, tt.nn.ConvLIF])
def test_fast_path_equals_the_reference_step(cls):
    layer = _layer(cls)
    x = _input(cls)
    with torch.no_grad():
        fast = layer(x)
    state_fast = layer.state
    layer.reset_states()
    with tt.bptt(layer):
        ref = layer(x)
    assert torch.equal(fast, ref.detach())
    for a, b in zip(state_fast, layer.state, strict=True):
        assert torch.equal(a, b.detach())


@pytest.mark.parametrize("cls", [tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic, tt.nn.ConvLIF])
@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_any_chunking_and_split_gives_the_same_stream(cls, chunk):
    x = _input(cls, steps=23)
    whole = _layer(cls)
    with torch.no_grad():
        expected = whole(x)
    split = _layer(cls, chunk_size=chunk)
    with torch.no_grad():
        parts = [split(x[:5]), *(split(x[t]).unsqueeze(0) for t in range(5, 9)), split(x[9:])]
    assert torch.equal(torch.cat(parts), expected)
    torch.testing.assert_close(split.trace, whole.trace, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- local graphs
@pytest.mark.parametrize("cls", [*DENSE, tt.nn.ConvLIF])
def test_local_graph_passes_gradcheck(cls):
    layer = _layer(cls)
    with torch.no_grad():
        layer(_input(cls, steps=12, batch=2))
    a = layer.average_input().detach().requires_grad_()
    params = [p for p in layer.parameters() if p.requires_grad]
    assert torch.autograd.gradcheck(
        lambda a, *ps: layer.average_output(a), (a, *params), eps=1e-6, atol=1e-5
    )


def test_alif_average_is_the_fixed_point_and_its_gradient_is_implicit():
    c = torch.linspace(0.0, 3.0, 31, dtype=f64).unsqueeze(0).requires_grad_()
    beta, theta = torch.tensor(0.9, dtype=f64), torch.tensor(1.0, dtype=f64)
    rho, alpha = torch.tensor(0.05, dtype=f64), torch.tensor(0.95, dtype=f64)
    r = tf.alif_average(c, beta, theta, rho, alpha, tf.linear_rate)
    f = tf.linear_rate(c, beta, theta + rho * r / (1 - alpha))
    torch.testing.assert_close(r, f, atol=1e-9, rtol=0)
    # implicit gradient = finite difference of the fixed point
    (g,) = torch.autograd.grad(r.sum(), c)
    h = 1e-6
    with torch.no_grad():
        up = tf.alif_average(c + h, beta, theta, rho, alpha, tf.linear_rate)
        down = tf.alif_average(c - h, beta, theta, rho, alpha, tf.linear_rate)
    torch.testing.assert_close(g, (up - down) / (2 * h), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls", SPIKING)
def test_average_output_follows_the_simulated_rate(cls):
    """Under constant current the local graph's rate is within 0.06 of the simulation
    (``python -m benchmarks.neurons`` prints the full table)."""
    from benchmarks.neurons import _model, _simulate

    n = 8
    kw = {"recurrent_scale": 0.5} if cls is tt.nn.RLIF else {}
    layer = cls(n, n, beta=0.9, **kw).double()
    c = torch.linspace(0, 2, 41, dtype=f64).unsqueeze(1).expand(41, n).contiguous()
    if cls is tt.nn.Synaptic:
        c = c * (1 - float(layer.alpha.detach()[0]))
    err = (_model(layer, c) - _simulate(layer, c)).abs().max()
    assert float(err) < 0.06


@pytest.mark.parametrize("cls", [*SPIKING, tt.nn.ConvLIF])
def test_trace_gradients_point_like_bptt_on_a_rate_task(cls):
    """Weight gradient cosine trace vs BPTT (``benchmarks/neurons.py`` for all parameters)."""
    torch.manual_seed(0)
    y = torch.randint(0, 4, (32,))
    if cls is tt.nn.ConvLIF:
        net = tt.nn.Sequential(
            cls(1, 4, 3, padding=1), tt.nn.AvgPool2d(2), tt.nn.Flatten(), tt.nn.LI(16, 4)
        ).double()
        x = _x(50, 32, 1, 4, 4)
    else:
        net = tt.nn.Sequential(cls(16, 32), tt.nn.LI(32, 4)).double()
        x = _x(50, 32, 16)
    fid = tt.gradient_fidelity(net, x, y, lambda o, t: F.cross_entropy(o[-1], t))
    assert fid["0.weight"] > 0.85


# ----------------------------------------------------------------------------- modules
@pytest.mark.parametrize("cls", [*DENSE, tt.nn.ConvLIF])
def test_state_dict_pickle_deepcopy_and_repr(cls):
    layer = _layer(cls)
    x = _input(cls, steps=5)
    with torch.no_grad():
        layer(x)
    twin = pickle.loads(pickle.dumps(layer))
    assert twin.steps == layer.steps
    other = _layer(cls)
    other.load_state_dict(layer.state_dict())
    with torch.no_grad():
        assert torch.equal(copy.deepcopy(layer)(x), twin(x))
    assert repr(layer).startswith(cls.__name__ + "(")


def test_reprs_read_like_specs():
    assert "zero_diagonal=False" in repr(tt.nn.RLIF(3, 4, zero_diagonal=False))
    assert "learn_rho=True" in repr(tt.nn.ALIF(3, 4, learn_rho=True))
    assert "learn_alpha=False" in repr(tt.nn.Synaptic(3, 4, learn_alpha=False))
    r = repr(tt.nn.ConvLIF(1, 8, 3, stride=2, padding=1))
    assert "in_channels=1, out_channels=8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)" in r


def test_rlif_zero_diagonal_stays_zero_while_learning():
    layer = tt.nn.RLIF(4, 6)
    F.cross_entropy(
        tt.nn.Sequential(layer, tt.nn.LI(6, 2))(_x(20, 3, 4).float())[-1], torch.tensor([0, 1, 0])
    ).backward()
    assert torch.equal(torch.diagonal(layer.recurrent), torch.zeros(6))
    assert torch.equal(torch.diagonal(layer.recurrent_raw.grad), torch.zeros(6))


def test_conv_errors_name_the_expected_shape():
    layer = tt.nn.ConvLIF(2, 3, 3)
    with pytest.raises(ValueError, match=r"in_channels=2 at dimension -3"):
        layer(torch.rand(4, 3, 5, 5))
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\] \(one step\)"):
        layer(torch.rand(4, 2))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        layer(torch.rand(4, 2, 2, 2))
    with pytest.raises(ValueError, match="kernel_size"):
        tt.nn.ConvLIF(2, 3, 0)
    with pytest.raises(ValueError, match=r"\[\.\.\., C, H, W\]"):
        tt.nn.MaxPool2d(2)(torch.rand(4, 5))


@pytest.mark.parametrize("cls", [tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic])
def test_constructor_errors(cls):
    with pytest.raises(ValueError, match="beta"):
        cls(3, 4, beta=1.0)
    if cls is tt.nn.ALIF:
        with pytest.raises(ValueError, match="rho"):
            cls(3, 4, rho=-1.0)
        with pytest.raises(ValueError, match="alpha"):
            cls(3, 4, alpha=1.5)
    if cls is tt.nn.Synaptic:
        with pytest.raises(ValueError, match="alpha"):
            cls(3, 4, alpha=0.0)
    if cls is tt.nn.RLIF:
        with pytest.raises(TypeError, match="iterations"):
            cls(3, 4, iterations=2.5)


def test_sequences_of_feature_maps_through_pool_flatten_and_a_readout():
    net = tt.nn.Sequential(
        tt.nn.ConvLIF(1, 4, 3, padding=1), tt.nn.MaxPool2d(2), tt.nn.Flatten(), tt.nn.LIS(64, 10)
    )
    x = (torch.rand(6, 3, 1, 8, 8) < 0.3).float()
    out = net(x)
    assert out.shape == (6, 3, 10)
    torch.testing.assert_close(out.sum(-1), torch.ones(6, 3))
    step = net(x[0])
    assert step.shape == (3, 10)
