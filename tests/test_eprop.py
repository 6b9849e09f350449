"""Eligibility mode (e-prop): exact where the math says so, constant memory, same contract."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.learning import cosine, gradients

f64 = torch.float64


def _loss(out, y):
    return F.cross_entropy(out[-1], y)


def _data(steps: int = 60, batch: int = 8, features: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, batch, features, generator=g) < 0.3).to(f64)
    return x, torch.randint(0, 3, (batch,), generator=g)


def _net(hidden=tt.nn.LIF, layers: int = 1, readout=tt.nn.LI, **kw) -> tt.nn.Sequential:
    torch.manual_seed(0)
    widths = [6] + [12] * layers
    mods = [
        hidden(a, b, beta=0.9, threshold=0.5, detach_reset=True, **kw)
        for a, b in zip(widths[:-1], widths[1:], strict=True)
    ]
    return tt.nn.Sequential(*mods, readout(12, 3, beta=0.95)).to(f64)


def _cosines(net, x, y) -> dict[str, float]:
    ref = gradients(net, [(x, y)], _loss, bptt_mode=True)
    with tt.eligibility(net):
        got = gradients(net, [(x, y)], _loss)
    return {k: cosine(got[k], v) for k, v in ref.items()}


@pytest.mark.parametrize("readout", [tt.nn.LI, tt.nn.LIS])
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_one_hidden_lif_layer_equals_bptt(readout, chunk):
    net = _net(readout=readout)
    for layer in net:
        layer.chunk_size = chunk
    x, y = _data()
    if readout is tt.nn.LIS:
        loss = lambda o, t: F.nll_loss(torch.log(o[-1]), t)  # noqa: E731
        ref = gradients(net, [(x, y)], loss, bptt_mode=True)
        with tt.eligibility(net):
            got = gradients(net, [(x, y)], loss)
        fid = {k: cosine(got[k], v) for k, v in ref.items()}
    else:
        fid = _cosines(net, x, y)
    assert min(fid.values()) > 0.999, fid


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_reset_kept_equals_bptt_with_the_reset(chunk):
    """``eligibility_reset="kept"``: one hidden LIF layer gets BPTT's gradients with the reset
    in the graph (the default of BPTT), to float64 rounding, for any chunking and split."""
    torch.manual_seed(0)
    net = tt.nn.Sequential(
        tt.nn.LIF(6, 12, beta=0.9, threshold=0.5, eligibility_reset="kept"),
        tt.nn.LI(12, 3, beta=0.95),
    ).to(f64)
    for layer in net:
        layer.chunk_size = chunk
    x, y = _data()
    ref = gradients(net, [(x, y)], _loss, bptt_mode=True)
    with tt.eligibility(net):
        got = gradients(net, [(x, y)], _loss)
        parts = gradients(net, [([x[:13], x[13:14], x[14:]], y)], _loss)
    for k, v in ref.items():
        torch.testing.assert_close(got[k], v, rtol=1e-9, atol=1e-12, msg=k)
        torch.testing.assert_close(parts[k], v, rtol=1e-9, atol=1e-12, msg=k)
    assert "eligibility_reset='kept'" in repr(net[0])


def test_reset_kept_is_closer_to_bptt_for_weak_recurrence():
    fid = {}
    for mode in ("detached", "kept"):
        torch.manual_seed(0)
        net = tt.nn.Sequential(
            tt.nn.RLIF(
                6, 12, beta=0.9, threshold=0.5, recurrent_scale=0.05, eligibility_reset=mode
            ),
            tt.nn.LI(12, 3, beta=0.95),
        ).to(f64)
        x, y = _data()
        ref = gradients(net, [(x, y)], _loss, bptt_mode=True)
        with tt.eligibility(net):
            got = gradients(net, [(x, y)], _loss)
        fid[mode] = min(cosine(got[k], ref[k]) for k in ref)
    assert fid["kept"] > 0.999 and fid["kept"] > fid["detached"], fid


def test_reset_mode_can_change_between_calls_and_old_traces_load():
    torch.manual_seed(0)
    net = tt.nn.Sequential(tt.nn.LIF(6, 12, threshold=0.5), tt.nn.LI(12, 3)).to(f64)
    x, y = _data()
    with tt.eligibility(net):
        net.reset_states()
        net(x[:20])
        saved = net.stream_state_dict()
        net[0].eligibility_reset = "kept"  # from here on: the carry of the last step is known
        _loss(net(x[20:]), y).backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        old = {k: v for k, v in saved.items() if not k.endswith("psi_last")}
        net.load_stream_state_dict(old)  # traces saved before these keys existed
        net.zero_grad()
        _loss(net(x[20:]), y).backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_reset_kept_is_refused_where_it_is_not_implemented():
    with pytest.raises(ValueError, match="eligibility_reset"):
        tt.nn.LIF(3, 4, eligibility_reset="yes")
    net = tt.nn.Sequential(tt.nn.ALIF(3, 4, eligibility_reset="kept"), tt.nn.LI(4, 2))
    with tt.eligibility(net), pytest.raises(ValueError, match="LIF and RLIF only"):
        net(torch.rand(5, 2, 3))


def test_stream_of_chunks_equals_one_call():
    net = _net()
    x, y = _data()
    with tt.eligibility(net):
        whole = gradients(net, [(x, y)], _loss)
        parts = gradients(net, [([x[:13], x[13:14], x[14:]], y)], _loss)
    for k, v in whole.items():
        torch.testing.assert_close(parts[k], v, rtol=1e-9, atol=1e-12)


def test_two_hidden_layers_approximate_bptt():
    net, (x, y) = _net(layers=2), _data(steps=80, batch=16)
    ref = gradients(net, [(x, y)], _loss, bptt_mode=True)
    with tt.eligibility(net):
        got = gradients(net, [(x, y)], _loss)
    assert cosine(got["1.weight"], ref["1.weight"]) > 0.999  # the upper layer is exact
    assert cosine(got["0.weight"], ref["0.weight"]) > 0.99  # the lower one: approximate signal
    ratio = float(got["0.weight"].norm() / ref["0.weight"].norm())
    assert 0.8 < ratio < 1.25, ratio  # 1.03 (the gain before, 1/(1 - min/max), gave 1.96)


def test_equal_decays_in_a_deep_net_give_finite_gradients():
    """Hidden ``beta`` equal to the readout's: the signal passed down stays finite (it divided
    by zero once) and points the way BPTT's does."""
    torch.manual_seed(0)
    net = tt.nn.Sequential(
        tt.nn.LIF(6, 12, beta=0.9, threshold=0.5, detach_reset=True),
        tt.nn.LIF(12, 12, beta=0.9, threshold=0.5, detach_reset=True),
        tt.nn.LI(12, 3, beta=0.9),
    ).to(f64)
    x, y = _data(steps=80, batch=16)
    ref = gradients(net, [(x, y)], _loss, bptt_mode=True)
    with tt.eligibility(net):
        got = gradients(net, [(x, y)], _loss)
    assert all(torch.isfinite(v).all() for v in got.values())
    assert cosine(got["0.weight"], ref["0.weight"]) > 0.95
    ratio = float(got["0.weight"].norm() / ref["0.weight"].norm())
    assert 0.5 < ratio < 2, ratio  # 1.02 when written


def test_rlif_is_eprops_approximation():
    """Exact up to the paths through other neurons' later spikes: close for weak recurrence,
    poor for strong (``docs/learning-modes.md`` has the measured figures)."""
    weak = _cosines(_net(hidden=tt.nn.RLIF, recurrent_scale=0.05), *_data())
    assert weak["1.weight"] > 0.999 and weak["0.weight"] > 0.99
    assert weak["0.recurrent_raw"] > 0.99


def test_unsupported_layers_say_so():
    layer = tt.nn.ConvLIF(1, 2, 3, learning="eligibility")
    with pytest.raises(NotImplementedError, match="shared weights"):
        layer(torch.rand(4, 2, 1, 5, 5))
    with pytest.raises(ValueError, match="learning must be one of"):
        tt.nn.LIF(3, 4, learning="eprop")


def test_forward_equals_the_other_modes():
    net = _net()
    x, _ = _data()
    with torch.no_grad():
        ref = net(x)
    net.reset_states()
    with tt.eligibility(net):
        out = net(x)
    assert torch.equal(out.detach(), ref)


def test_memory_is_flat_in_sequence_length():
    """Bytes autograd saves for backward do not grow with T (nothing is saved per step)."""
    sizes = []
    for steps in (50, 2000):
        net = _net()
        x, y = _data(steps=steps)
        saved: list[int] = []

        def pack(t, saved=saved):
            saved.append(t.numel() * t.element_size())
            return t

        with tt.eligibility(net), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = _loss(net(x), y)
        loss.backward()
        sizes.append(sum(saved))
    assert sizes[0] == sizes[1]


def test_stream_state_includes_the_eligibility_traces():
    x, y = _data()
    a, b = _net(), _net()
    with tt.eligibility(a), tt.eligibility(b):
        a(x[:30])
        buf = io.BytesIO()
        torch.save(a.stream_state_dict(), buf)
        buf.seek(0)
        sd = torch.load(buf, weights_only=True)
        assert any(k.startswith("0.eligibility.") for k in sd)
        b.load_stream_state_dict(sd)
        la, lb = _loss(a(x[30:]), y), _loss(b(x[30:]), y)
        la.backward()
        lb.backward()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad)


def test_switching_mode_mid_sequence_is_refused():
    net = _net()
    x, _ = _data()
    net(x[:10])
    with tt.eligibility(net), pytest.raises(RuntimeError, match="middle of a sequence"):
        net(x[10:])


def test_learning_every_k_steps_with_any_optimizer_and_a_module_before():
    torch.manual_seed(0)
    net = tt.nn.Sequential(torch.nn.Linear(6, 6), *_net())
    net = net.to(f64)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = _data(steps=40)
    with tt.eligibility(net):
        for start in range(0, 40, 10):
            out = net(x[start : start + 10])
            opt.zero_grad()
            _loss(out, y).backward()
            assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
            opt.step()
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_stale_output_raises_in_eligibility_mode_too():
    net = _net()
    x, y = _data()
    with tt.eligibility(net):
        out = net(x[:10])
        net(x[10:20])
        with pytest.raises(RuntimeError, match="state is gone"):
            _loss(out, y).backward()


@pytest.mark.parametrize(
    ("cls", "kw"),
    [
        (tt.nn.ALIF, {"rho": 0.2, "alpha": 0.9, "learn_rho": True, "learn_alpha": True}),
        (tt.nn.Synaptic, {"alpha": 0.7}),
    ],
)
@pytest.mark.parametrize("chunk", [None, 7])
def test_adaptive_and_synaptic_layers_equal_bptt(cls, kw, chunk):
    """Two-component (ALIF) and two-stage (Synaptic) eligibilities, step by step: exact."""
    net = _net(hidden=cls, **kw)
    for layer in net:
        layer.chunk_size = chunk
    fid = _cosines(net, *_data())
    assert min(fid.values()) > 0.999, fid


def test_steps_without_autograd_in_train_mode_keep_the_traces():
    """A stream whose first chunks run under no_grad (learning only later) equals one call."""
    net = _net()
    x, y = _data()
    with tt.eligibility(net):
        whole = gradients(net, [(x, y)], _loss)
        net.reset_states()
        net.zero_grad()
        with torch.no_grad():
            net(x[:25])
        _loss(net(x[25:]), y).backward()
    params = dict(net.named_parameters())
    for name, g in whole.items():
        torch.testing.assert_close(params[name].grad, g, rtol=1e-9, atol=1e-12)
    net.reset_states()
    net.eval()  # eval mode without autograd keeps no traces: a later backward is refused
    with tt.eligibility(net):
        with torch.no_grad():
            net(x[:25])
        with pytest.raises(RuntimeError, match="eval mode"):
            net(x[25:])
