"""tracetorch.nn: forward dynamics, input shapes, state, dtype/device moves, serialisation, repr."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch import functional as tf

f64 = torch.float64
LAYERS = [tt.nn.LIF, tt.nn.LI, tt.nn.LIS]


def _spikes(*shape: int, p: float = 0.3, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (torch.rand(*shape) < p).to(dtype)


def _identity_layer(cls, n: int, **kwargs):
    """A layer whose current is its input: ``W = I``, ``b = 0``."""
    layer = cls(n, n, **kwargs)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
        layer.bias.zero_()
    return layer


def _net(dtype: torch.dtype = torch.float32) -> tt.nn.Sequential:
    return tt.nn.Sequential(
        tt.nn.LIF(6, 12, beta=0.8), tt.nn.LIF(12, 8, threshold=0.5), tt.nn.LI(8, 3)
    ).to(dtype)


# ----------------------------------------------------------------------------- dynamics
def test_lif_layer_follows_lif_step():
    """With W = I the layer reproduces the golden values of ``lif_step`` (beta 0.5, theta 1)."""
    layer = _identity_layer(tt.nn.LIF, 4, beta=0.5, threshold=1.0, dtype=f64)
    c = torch.tensor([[0.75, 1.0, 2.5, 0.25]], dtype=f64)
    out = layer(c.expand(4, 1, 4))
    assert out.tolist() == [[[0, 1, 1, 0]], [[1, 1, 1, 0]], [[0, 1, 1, 0]], [[1, 1, 1, 0]]]
    torch.testing.assert_close(
        layer.membrane, torch.tensor([[0.15625, 0.0, 2.8125, 0.46875]], dtype=f64)
    )
    assert layer.steps == 4


def test_li_and_lis_layers_follow_li_step():
    x = torch.randn(5, 2, 3, dtype=f64)
    li = _identity_layer(tt.nn.LI, 3, beta=0.7, dtype=f64)
    lis = _identity_layer(tt.nn.LIS, 3, beta=0.7, dtype=f64)
    state0 = tf.LIState(torch.zeros(2, 3, dtype=f64))
    ms, _ = tf.run(tf.li_step, x, state0, tf.LIParams(torch.tensor(0.7, dtype=f64)))
    torch.testing.assert_close(li(x), ms)
    p = lis(x)
    torch.testing.assert_close(p, torch.softmax(ms, -1))
    torch.testing.assert_close(p.sum(-1), torch.ones(5, 2, dtype=f64))


def test_layer_trace_follows_trace_run():
    layer = tt.nn.LIF(4, 3, trace_decay=torch.tensor([0.5, 0.8, 0.9, 0.99]), dtype=f64)
    x = torch.rand(7, 2, 4, dtype=f64)
    layer(x[:3])
    layer(x[3:])
    expected = tf.trace_run(torch.zeros(2, 4, dtype=f64), x, layer.trace_decay.detach())
    torch.testing.assert_close(layer.trace, expected)
    torch.testing.assert_close(
        layer.average_input(), tf.trace_mean(expected, layer.trace_decay.detach(), 7)
    )


def test_lif_output_is_binary_spikes():
    out = tt.nn.LIF(16, 32, threshold=0.3)(_spikes(20, 4, 16))
    assert out.shape == (20, 4, 32)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert 0 < float(out.detach().mean()) < 1


# ----------------------------------------------------------------------------- shapes
def test_sequence_equals_step_by_step_loop():
    """``net([T, B, F])`` equals T calls on ``[B, F]``: outputs and final states."""
    x = _spikes(15, 4, 6, dtype=f64)
    a, b = _net(f64), _net(f64)
    b.load_state_dict(a.state_dict())
    out_seq = a(x)
    out_steps = torch.stack([b(x_t) for x_t in x])
    assert out_seq.shape == out_steps.shape == (15, 4, 3)
    torch.testing.assert_close(out_seq, out_steps)
    for la, lb in zip(a, b, strict=True):
        torch.testing.assert_close(la.membrane, lb.membrane)
        torch.testing.assert_close(la.trace, lb.trace)
        assert la.steps == lb.steps == 15


def test_sequence_equals_chunks():
    x = _spikes(12, 3, 6, dtype=f64)
    a, b = _net(f64), _net(f64)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), torch.cat([b(x[:5]), b(x[5:6]), b(x[6:])]))


@pytest.mark.parametrize("cls", LAYERS)
def test_single_step_shape(cls):
    layer = cls(5, 4)
    assert layer(torch.rand(3, 5)).shape == (3, 4)
    assert layer(torch.rand(3, 5)).shape == (3, 4)
    assert layer.steps == 2


def test_new_batch_size_after_reset_states():
    net = _net()
    assert net(_spikes(4, 8, 6)).shape == (4, 8, 3)
    net.reset_states()
    for layer in net:
        assert layer.membrane is None and layer.trace is None and layer.steps == 0
    assert net(_spikes(4, 3, 6)).shape == (4, 3, 3)
    assert net(_spikes(3, 6)).shape == (3, 3)  # continues the batch of 3 step by step
    assert net[0].steps == 5


def test_reset_states_restarts_the_same_sequence():
    net, x = _net(), _spikes(10, 2, 6)
    first = net(x)
    net(x)
    net.reset_states()
    torch.testing.assert_close(net(x), first)


# ----------------------------------------------------------------------------- parameters
def test_parameters_are_mapped_into_range():
    layer = tt.nn.LIF(4, 3, beta=0.8, threshold=torch.tensor([0.5, 1.0, 2.0]), horizon=10.0)
    torch.testing.assert_close(layer.beta, torch.full((3,), 0.8))
    torch.testing.assert_close(layer.threshold, torch.tensor([0.5, 1.0, 2.0]))
    torch.testing.assert_close(layer.trace_decay, torch.full((4,), 0.9))
    with torch.no_grad():  # any raw value stays in range
        layer.beta_raw.fill_(50.0)
        layer.threshold_raw.fill_(-50.0)
    assert bool(((layer.beta > 0) & (layer.beta <= 1)).all())
    assert bool((layer.threshold > 0).all())
    layer.reset_parameters()
    torch.testing.assert_close(layer.beta, torch.full((3,), 0.8))
    torch.testing.assert_close(layer.threshold, torch.tensor([0.5, 1.0, 2.0]))


def test_default_trace_decay_is_not_learned_and_flags_apply():
    layer = tt.nn.LIF(4, 3)
    assert not layer.trace_decay_raw.requires_grad
    assert layer.weight.requires_grad and layer.bias.requires_grad
    assert layer.beta_raw.requires_grad and layer.threshold_raw.requires_grad
    off = tt.nn.LIF(
        4, 3, learn_weight=False, learn_bias=False, learn_beta=False, learn_threshold=False
    )
    assert not any(p.requires_grad for p in off.parameters())
    assert tt.nn.LI(4, 3, learn_trace_decay=True).trace_decay_raw.requires_grad


def test_no_bias():
    layer = tt.nn.LIF(4, 3, bias=False)
    assert layer.bias is None and "bias" not in dict(layer.named_parameters())
    assert all(p is not None for p in layer.trace_parameters())
    out = layer(torch.rand(5, 2, 4))
    F.mse_loss(out[-1], torch.ones(2, 3)).backward()
    assert layer.weight.grad is not None


@pytest.mark.parametrize("rate_fn", sorted(tf.RATE_FUNCTIONS))
def test_every_rate_fn_name_builds_a_working_layer(rate_fn):
    layer = tt.nn.LIF(4, 3, rate_fn=rate_fn)
    assert layer.rate_fn is tf.RATE_FUNCTIONS[rate_fn]
    assert f"rate_fn={rate_fn!r}" in repr(layer)
    layer(torch.rand(5, 2, 4) * 3).sum().backward()
    assert layer.weight.grad is not None


# ----------------------------------------------------------------------------- repr
def test_repr_reads_like_a_spec():
    assert repr(tt.nn.LIF(64, 128)).startswith("LIF(in_features=64, out_features=128, bias=True")
    assert repr(tt.nn.LI(128, 10)) == "LI(in_features=128, out_features=10, bias=True)"
    assert repr(tt.nn.LIS(8, 2, bias=False)) == "LIS(in_features=8, out_features=2, bias=False)"
    odd = repr(tt.nn.LIF(4, 3, learn_beta=False, learn_trace_decay=True, learning="bptt"))
    for part in ("learn_beta=False", "learn_trace_decay=True", "learning='bptt'", "surrogate="):
        assert part in odd
    assert "LIF(in_features=64" in repr(tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10)))
    frozen = repr(
        tt.nn.LIF(4, 3, learn_weight=False, learn_bias=False, learn_threshold=False)
    )  # every non-default learn_* flag shows
    for part in ("learn_weight=False", "learn_bias=False", "learn_threshold=False"):
        assert part in frozen
    assert "learn_" not in repr(tt.nn.LIF(4, 3)) + repr(tt.nn.LI(4, 3, bias=False))


# ----------------------------------------------------------------------------- serialisation
def test_state_dict_round_trip_gives_identical_outputs():
    torch.manual_seed(1)
    a = _net()
    with torch.no_grad():  # make the non-weight parameters differ from a fresh net's
        for layer in a:
            layer.beta_raw.add_(torch.randn_like(layer.beta_raw))
        a[0].threshold_raw.add_(0.3)
    a(_spikes(3, 2, 6))  # state must not leak into the state dict
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    assert not any(k.endswith(("membrane", "trace")) for k in a.state_dict())
    torch.manual_seed(2)
    b = _net()
    b.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    a.reset_states()
    x = _spikes(10, 4, 6)
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
@pytest.mark.parametrize("cls", LAYERS)
def test_copy_and_pickle_keep_parameters_and_state(clone, cls):
    layer = cls(6, 5)
    layer(torch.rand(4, 3, 6))
    twin = clone(layer)
    assert type(twin) is cls and twin.steps == layer.steps
    torch.testing.assert_close(twin.membrane, layer.membrane)
    x = torch.rand(3, 3, 6)
    torch.testing.assert_close(twin(x), layer(x), rtol=0, atol=0)
    twin(x)  # independent state
    assert twin.steps == layer.steps + 3


def test_to_float64_moves_parameters_and_state():
    net = _net()
    x = _spikes(5, 2, 6)
    net(x)
    membranes = [layer.membrane.clone() for layer in net]
    net.to(f64)
    for layer, m in zip(net, membranes, strict=True):
        assert all(p.dtype == f64 for p in layer.parameters())
        assert layer.membrane.dtype == f64 and layer.trace.dtype == f64
        torch.testing.assert_close(layer.membrane, m.double())  # values kept
        assert layer.steps == 5
    out = net(x.double())
    assert out.dtype == f64
    F.cross_entropy(out[-1], torch.tensor([0, 1])).backward()
    assert net[0].weight.grad.dtype == f64


def test_double_before_first_forward_and_reset():
    layer = tt.nn.LIF(4, 3).double()
    out = layer(torch.rand(3, 2, 4, dtype=f64))
    assert out.dtype == f64 and layer.membrane.dtype == f64
    layer.float()
    assert layer.membrane.dtype == torch.float32
    layer.reset_states()
    assert layer(torch.rand(2, 4)).dtype == torch.float32


def test_dtype_argument_builds_float64_layer():
    layer = tt.nn.LIF(4, 3, dtype=f64, beta=0.7, threshold=0.4)
    assert all(p.dtype == f64 for p in layer.parameters())
    torch.testing.assert_close(layer.beta, torch.full((3,), 0.7, dtype=f64))
    torch.testing.assert_close(layer.threshold, torch.full((3,), 0.4, dtype=f64))
