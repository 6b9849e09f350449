"""Trace learning inside autograd: local-graph gradients, explicit learning signals, BPTT mode,
gradient fidelity, mixing with torch.nn modules and optimizers, mid-sequence learning, AMP.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import tracetorch as tt
from tracetorch import functional as tf

f64 = torch.float64


def _spikes(*shape: int, p: float = 0.3, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (torch.rand(*shape) < p).to(dtype)


def _net(dtype: torch.dtype = f64) -> tt.nn.Sequential:
    return tt.nn.Sequential(tt.nn.LIF(6, 12, threshold=0.5), tt.nn.LI(12, 3)).to(dtype)


def _grads(module: nn.Module) -> dict[str, torch.Tensor | None]:
    return {
        n: None if p.grad is None else p.grad.detach().clone() for n, p in module.named_parameters()
    }


def _assert_same_grads(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] is None) == (b[name] is None), name
        if a[name] is not None:
            torch.testing.assert_close(a[name], b[name], msg=lambda m, n=name: f"{n}: {m}", **tol)


# ----------------------------------------------------------------------------- local graph
class _LocalGraph(nn.Module):
    """``trace -> a = trace_mean(trace, d, n) -> layer.average_output(a)`` as a module, so that
    ``functional_call`` can make the layer's parameters explicit inputs for ``gradcheck``."""

    def __init__(self, layer: tt.nn.TraceLayer, steps: int) -> None:
        super().__init__()
        self.layer, self.steps = layer, steps

    def forward(self, trace: torch.Tensor) -> torch.Tensor:
        d = self.layer.trace_decay
        return self.layer.average_output(tf.trace_mean(trace, d, self.steps))


LOCAL_GRAPH_LAYERS = [
    *[pytest.param(tt.nn.LIF, {"rate_fn": n}, id=f"LIF-{n}") for n in sorted(tf.RATE_FUNCTIONS)],
    pytest.param(tt.nn.LI, {}, id="LI"),
    pytest.param(tt.nn.LIS, {}, id="LIS"),
]


@pytest.mark.parametrize(("cls", "kwargs"), LOCAL_GRAPH_LAYERS)
def test_local_graph_gradcheck(cls, kwargs):
    """float64 ``gradcheck`` of the local graph in (trace, trace_decay_raw, weight, bias,
    beta_raw[, threshold_raw]), at a point away from the kinks of the rate functions: the
    currents stay in (0.17, 0.95) theta, above the rheobase 0.1 theta and below saturation."""
    layer = cls(5, 3, beta=0.9, trace_decay=0.8, dtype=f64, **kwargs)
    steps = 6
    with torch.no_grad():
        layer.weight.copy_(torch.rand(3, 5, dtype=f64) * 0.2 + 0.1)
        layer.bias.fill_(0.05)
    d = layer.trace_decay.detach()
    a = torch.rand(2, 5, dtype=f64) * 0.35 + 0.25
    trace = (a * (1 - d**steps) / (1 - d)).requires_grad_()
    c = F.linear(a, layer.weight, layer.bias).detach()
    assert 0.15 < float(c.min()) and float(c.max()) < 0.96
    graph = _LocalGraph(layer, steps)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]

    def local(trace, *ps):
        return functional_call(
            graph, {f"layer.{n}": p for n, p in zip(names, ps, strict=True)}, (trace,)
        )

    assert torch.autograd.gradcheck(local, (trace, *params), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_li_and_lis_average_outputs_are_stationary_values():
    """Without bias correction, LI: ``(W a + b) / (1 - beta)``, where the membrane settles under
    constant input a; LIS: the softmax of that membrane."""
    a = torch.rand(2, 4, dtype=f64)
    for cls, out in ((tt.nn.LI, lambda m: m), (tt.nn.LIS, lambda m: torch.softmax(m, -1))):
        layer = cls(4, 3, beta=0.8, bias_correction=False, dtype=f64)
        stationary = (a @ layer.weight.T + layer.bias) / (1 - layer.beta)
        torch.testing.assert_close(layer.average_output(a), out(stationary))
        last = layer(a.expand(400, 2, 4))[-1]
        torch.testing.assert_close(layer.membrane, stationary.detach(), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(last, out(stationary).detach(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("steps", [1, 5, 25])
def test_li_and_lis_average_outputs_of_a_young_sequence_are_the_actual_outputs(steps):
    """With bias correction, n steps after a reset under constant input, the average output is
    the membrane actually reached, ``c (1 - beta^n) / (1 - beta)`` (and its softmax)."""
    a = torch.rand(2, 4, dtype=f64)
    for cls in (tt.nn.LI, tt.nn.LIS):
        layer = cls(4, 3, beta=0.99, dtype=f64)
        last = layer(a.expand(steps, 2, 4))[-1]
        torch.testing.assert_close(layer.average_output(layer.average_input()), last.detach())


# ----------------------------------------------------------------------------- learning signals
def test_loss_on_several_timesteps_sums_the_learning_signal():
    """Gradients of a loss on outputs t1, t2, t3 equal those of one signal g_t1 + g_t2 + g_t3."""
    net, x = _net(), _spikes(12, 4, 6, dtype=f64)
    out = net(x)
    g = torch.randn(12, 4, 3, dtype=f64)
    picked = [2, 7, 11]
    loss = sum((out[t] * g[t]).sum() for t in picked) + F.cross_entropy(out[5], torch.arange(4) % 3)
    loss.backward()
    by_autograd = _grads(net)
    ce_signal = torch.autograd.grad(
        F.cross_entropy(o := out[5].detach().requires_grad_(), torch.arange(4) % 3), o
    )[0]
    net.zero_grad(set_to_none=True)
    net.backward(g[picked].sum(0) + ce_signal)
    _assert_same_grads(by_autograd, _grads(net))
    assert all(v is None or v.abs().sum() > 0 for v in by_autograd.values())


def test_explicit_backward_equals_loss_backward():
    """``net.backward(dL/d out[-1])`` fills the same ``.grad`` as ``loss.backward()``."""
    net, y = _net(), torch.tensor([0, 2, 1, 2])
    x = _spikes(10, 4, 6, dtype=f64).requires_grad_()
    out = net(x)
    F.cross_entropy(out[-1], y).backward()
    by_autograd, x_grad = _grads(net), x.grad.clone()
    o = out[-1].detach().requires_grad_()
    (signal,) = torch.autograd.grad(F.cross_entropy(o, y), o)
    net.zero_grad(set_to_none=True)
    upstream = net.backward(signal)
    _assert_same_grads(by_autograd, _grads(net))
    assert upstream.shape == (4, 6)
    # The input of a sequence gets dL/da / T on every step: its sum over time is dL/da.
    torch.testing.assert_close(x_grad.sum(0), upstream)
    torch.testing.assert_close(x_grad, (upstream / 10).expand(10, 4, 6))


def test_layer_backward_accumulates_and_returns_upstream_signal():
    layer = tt.nn.LIF(6, 5, dtype=f64)
    x = torch.rand(3, 6, dtype=f64, requires_grad=True)  # one step
    out = layer(x)
    g = torch.randn(3, 5, dtype=f64)
    out.backward(g)
    by_autograd, x_grad = _grads(layer), x.grad.clone()
    layer.zero_grad(set_to_none=True)
    torch.testing.assert_close(layer.backward(g), x_grad)
    _assert_same_grads(by_autograd, _grads(layer))
    layer.backward(g)  # accumulates, like loss.backward()
    torch.testing.assert_close(layer.weight.grad, 2 * by_autograd["weight"])


def test_trace_gradient_is_the_local_graph_gradient():
    """What autograd delivers is the gradient of ``average_output(average_input())``."""
    layer = tt.nn.LIS(6, 4, dtype=f64, learn_trace_decay=True, learn_beta=True)
    out = layer(torch.rand(8, 3, 6, dtype=f64))
    g = torch.randn(8, 3, 4, dtype=f64)
    out.backward(g)
    params = list(layer.parameters())
    expected = torch.autograd.grad(layer.average_output(layer.average_input()), params, g.sum(0))
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e)


# ----------------------------------------------------------------------------- flags
def test_learn_flags_off_means_no_grad():
    layer = tt.nn.LIF(6, 5, learn_beta=False, learn_threshold=False, learn_bias=False)
    F.mse_loss(layer(torch.rand(5, 2, 6))[-1], torch.ones(2, 5)).backward()
    assert layer.weight.grad is not None
    for p in (layer.beta_raw, layer.threshold_raw, layer.bias, layer.trace_decay_raw):
        assert p.grad is None
    frozen = tt.nn.LI(6, 3, learn_weight=False, learn_bias=False, learn_beta=False)
    out = frozen(torch.rand(4, 2, 6))
    assert out.grad_fn is None  # nothing to learn, no node
    assert all(p.grad is None for p in frozen.parameters())


def test_trace_decay_learns_only_when_asked():
    default, learned = tt.nn.LIF(6, 5), tt.nn.LIF(6, 5, learn_trace_decay=True)
    x = torch.rand(5, 2, 6)
    for layer in (default, learned):
        layer(x)[-1].sum().backward()
    assert default.trace_decay_raw.grad is None
    assert learned.trace_decay_raw.grad is not None
    assert float(learned.trace_decay_raw.grad.abs().sum()) > 0


# ----------------------------------------------------------------------------- mixing with torch
def test_torch_modules_before_and_after_get_gradients():
    net = tt.nn.Sequential(nn.Linear(8, 16), tt.nn.LIF(16, 32), tt.nn.LIF(32, 16), nn.Linear(16, 5))
    out = net(torch.rand(10, 4, 8))
    assert out.shape == (10, 4, 5)
    F.cross_entropy(out[-1], torch.tensor([0, 1, 2, 3])).backward()
    for name, p in net.named_parameters():
        if name.endswith("trace_decay_raw"):
            assert p.grad is None
        else:
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.9),
        lambda ps: torch.optim.Adam(ps, lr=1e-2),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-2),
    ],
    ids=["SGD", "Adam", "RMSprop"],
)
def test_any_optimizer_steps(make_opt):
    net = tt.nn.Sequential(nn.Linear(8, 16), tt.nn.LIF(16, 24), tt.nn.LI(24, 4))
    opt = make_opt(net.parameters())
    x, y = torch.rand(10, 8, 8), torch.arange(8) % 4
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    losses = []
    for _ in range(3):
        net.reset_states()
        loss = F.cross_entropy(net(x)[-1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    for name, p in net.named_parameters():
        changed = not torch.equal(p.detach(), before[name])
        assert changed == p.requires_grad, name
    assert all(math.isfinite(v) for v in losses)


def test_mid_sequence_learning_keeps_the_state():
    """backward + step in the middle of a sequence, then keep feeding it: no detach needed."""
    net = tt.nn.Sequential(tt.nn.LIF(6, 12), tt.nn.LIF(12, 12), tt.nn.LI(12, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = _spikes(30, 4, 6), torch.tensor([0, 1, 2, 0])
    snapshots = []
    for chunk in x.split(10):
        before = [p.detach().clone() for p in net.parameters()]
        out = net(chunk)
        loss = F.cross_entropy(out[-1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
        snapshots.append((net[0].trace.clone(), net[0].steps))
    # The state ran on through the updates: the trace is that of the whole 30-step sequence.
    assert [s for _, s in snapshots] == [10, 20, 30]
    expected = tf.trace_run(torch.zeros(4, 6), x, net[0].trace_decay.detach())
    torch.testing.assert_close(snapshots[-1][0], expected)
    # Learning every step also works (one-step calls).
    for x_t in x[:5]:
        opt.zero_grad()
        F.cross_entropy(net(x_t), y).backward()
        opt.step()
    assert net[0].steps == 35


def test_no_grad_forward_builds_no_graph():
    net = _net()
    with torch.no_grad():
        out = net(_spikes(5, 2, 6, dtype=f64))
    assert out.grad_fn is None and not out.requires_grad


# ----------------------------------------------------------------------------- BPTT mode
def test_bptt_context_restores_modes():
    net = tt.nn.Sequential(tt.nn.LIF(4, 4), tt.nn.LI(4, 2, learning="bptt"), nn.Linear(2, 2))
    with tt.bptt(net) as inner:
        assert inner is net
        assert [net[0].learning, net[1].learning] == ["bptt", "bptt"]
    assert [net[0].learning, net[1].learning] == ["trace", "bptt"]
    with pytest.raises(RuntimeError, match="boom"), tt.bptt(net):
        raise RuntimeError("boom")
    assert net[0].learning == "trace" and net[0].membrane is None  # modes and states reset
    tt.learning.set_learning(net, "bptt")
    assert net[0].learning == net[1].learning == "bptt"


def _unrolled_reference(net: tt.nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> dict:
    """BPTT written out by hand with tracetorch.functional: LIF(surrogate) -> LI, CE on last."""
    lif, li = net[0], net[1]
    p = {f"{i}.{n}": v.detach().clone().requires_grad_() for i, layer in enumerate(net)
         for n, v in layer.named_parameters() if v.requires_grad}  # fmt: skip
    beta1, theta1 = torch.sigmoid(p["0.beta_raw"]), F.softplus(p["0.threshold_raw"])
    beta2 = torch.sigmoid(p["1.beta_raw"])
    state1 = tf.LIFState(torch.zeros(x.shape[1], lif.out_features, dtype=x.dtype))
    state2 = tf.LIState(torch.zeros(x.shape[1], li.out_features, dtype=x.dtype))
    p1, p2 = tf.LIFParams(beta1, theta1, lif.surrogate), tf.LIParams(beta2)
    for x_t in x:
        s, state1 = tf.lif_step(x_t @ p["0.weight"].T + p["0.bias"], state1, p1)
        m2, state2 = tf.li_step(s @ p["1.weight"].T + p["1.bias"], state2, p2)
    grads = torch.autograd.grad(F.cross_entropy(m2, y), list(p.values()))
    return dict(zip(p, grads, strict=True))


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid"])
def test_bptt_equals_hand_unrolled_reference(surrogate):
    net = tt.nn.Sequential(
        tt.nn.LIF(6, 10, threshold=0.5, surrogate=surrogate), tt.nn.LI(10, 3, learn_beta=True)
    ).double()
    x, y = _spikes(15, 4, 6, dtype=f64), torch.tensor([0, 1, 2, 1])
    with tt.bptt(net):
        net.reset_states()
        F.cross_entropy(net(x)[-1], y).backward()
    got = _grads(net)
    reference = _unrolled_reference(net, x, y)
    for name, g in got.items():
        if name.endswith("trace_decay_raw"):
            assert g is None
            continue
        assert float(g.abs().sum()) > 0, name
        torch.testing.assert_close(g, reference[name], msg=lambda m, n=name: f"{n}: {m}")


def test_bptt_lis_gradients_flow_through_time():
    layer = tt.nn.LIS(5, 3, learning="bptt", dtype=f64, learn_beta=True)
    x = torch.rand(6, 2, 5, dtype=f64, requires_grad=True)
    out = layer(x)
    torch.log(out[-1][:, 0]).sum().backward()
    assert float(x.grad[0].abs().sum()) > 0  # the first step matters through the membrane
    assert float(layer.beta_raw.grad.abs().sum()) > 0


#: Trace-vs-BPTT cosine on the digits case of ``test_gradient_fidelity_digits`` (measured on the
#: code of this commit, atan surrogate): hidden weight 0.991, hidden bias 0.990, hidden
#: beta_raw 0.89, hidden threshold_raw 0.98; readout weight/bias 1.000, readout beta_raw 0.999.
HIDDEN_WEIGHT_COSINE_FLOOR = 0.85


def test_gradient_fidelity_digits(digits):
    """LIF(64, 128) -> LI(128, 10) on rate-coded digits, T = 25, batch 128: cosine >= 0.85."""
    x, y = digits
    spikes = tt.encode.rate(x, 25, generator=torch.Generator().manual_seed(0))
    net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
    net[0].weight.grad = torch.ones_like(net[0].weight)  # restored afterwards
    net(spikes[:3, :7])  # a stale state (another batch size) must not leak into the measurement
    fid = tt.gradient_fidelity(net, spikes, y, lambda out, y: F.cross_entropy(out[-1], y))
    print("\ntrace vs BPTT cosine:", {k: round(v, 3) for k, v in fid.items()})  # pytest -s
    assert fid["0.weight"] >= HIDDEN_WEIGHT_COSINE_FLOOR
    assert fid["1.weight"] >= HIDDEN_WEIGHT_COSINE_FLOOR
    assert torch.equal(net[0].weight.grad, torch.ones_like(net[0].weight))
    assert net[0].learning == "trace" and net[0].membrane is None  # modes and states reset


# ----------------------------------------------------------------------------- AMP
@pytest.mark.parametrize("mode", ["trace", "bptt"])
def test_autocast_bfloat16(mode):
    net = tt.nn.Sequential(nn.Linear(8, 16), tt.nn.LIF(16, 16), tt.nn.LI(16, 4))
    tt.learning.set_learning(net, mode)
    x, y = torch.rand(6, 3, 8), torch.tensor([0, 1, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(net(x)[-1], y)
    loss.backward()
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.dtype == torch.float32, name
            assert bool(torch.isfinite(p.grad).all()), name
    assert float(net[1].weight.grad.abs().sum()) > 0


def test_gradients_of_a_stream_equal_those_of_the_whole_sequence_and_sum_over_batches():
    """``tt.learning.gradients`` feeds chunks in order (same result as one call), sums over
    batches, and leaves ``.grad`` as it found it."""
    net, x = _net(), _spikes(12, 4, 6, dtype=f64)
    y = torch.arange(4) % 3

    def loss_fn(out, target):
        return F.cross_entropy(out[-1], target)

    whole = tt.learning.gradients(net, [(x, y)], loss_fn)
    streamed = tt.learning.gradients(net, [(x.split(5), y)], loss_fn)
    twice = tt.learning.gradients(net, [(x, y), (x, y)], loss_fn, bptt_mode=True)
    once = tt.learning.gradients(net, [(x, y)], loss_fn, bptt_mode=True)
    assert set(whole) == set(streamed) and whole
    for name in whole:
        torch.testing.assert_close(streamed[name], whole[name])
        torch.testing.assert_close(twice[name], 2 * once[name])
    assert all(p.grad is None for p in net.parameters())
