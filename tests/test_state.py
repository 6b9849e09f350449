"""Stream state, the stale-state guard and the reliability guarantees of the layer core.

Each test that starts with a reproducer of ``shared/repro`` names it; it fails if that bug
came back.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F

import tracetorch as tt

DENSE = [tt.nn.LIF, tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic, tt.nn.LI, tt.nn.LIS]


def _net(cls=tt.nn.LIF) -> tt.nn.Sequential:
    torch.manual_seed(0)
    return tt.nn.Sequential(cls(8, 16), tt.nn.LI(16, 3))


def _x(steps: int = 40, batch: int = 4, features: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(steps, batch, features, generator=g) < 0.3).float()


# ----------------------------------------------------------------------------- stream state
@pytest.mark.parametrize("cls", DENSE)
def test_stream_state_round_trip_continues_bit_for_bit(cls):
    """midsequence_state_not_saved.py: save mid-sequence, restore in a fresh model, continue."""
    x = _x()
    a = _net(cls)
    a(x[:20])
    buf = io.BytesIO()
    torch.save({"model": a.state_dict(), "stream": a.stream_state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    b = _net(cls)
    torch.manual_seed(123)  # a different init, overwritten by the checkpoint
    b.load_state_dict(saved["model"])
    b.load_stream_state_dict(saved["stream"])
    assert torch.equal(a(x[20:]), b(x[20:]))
    for la, lb in zip(a, b, strict=True):
        assert la.steps == lb.steps == 40
        for ta, tb in zip(la.state, lb.state, strict=True):
            assert torch.equal(ta, tb)


def test_stream_state_keys_and_empty_state():
    net = _net()
    sd = net.stream_state_dict()
    assert set(sd) == {"0.steps", "1.steps"} and int(sd["0.steps"]) == 0
    net(_x(5))
    assert set(net.stream_state_dict()) == {
        "0.steps",
        "0.membrane",
        "0.trace",
        "1.steps",
        "1.membrane",
        "1.trace",
    }
    # restoring an empty stream state resets
    net.load_stream_state_dict(sd)
    assert net[0].state is None and net[0].steps == 0


def test_stream_state_works_for_any_model_through_functions():
    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = torch.nn.Linear(8, 8)
            self.hidden = tt.nn.ALIF(8, 6)

        def forward(self, x):
            return self.hidden(self.encoder(x))

    m = Model()
    m(_x(7))
    sd = tt.nn.stream_state_dict(m)
    assert set(sd) == {"hidden.steps", "hidden.membrane", "hidden.adaptation", "hidden.trace"}
    m2 = copy.deepcopy(m)
    tt.nn.reset_states(m2)
    tt.nn.load_stream_state_dict(m2, sd)
    x = _x(3)
    assert torch.equal(m(x), m2(x))


def test_stream_state_errors_name_the_problem():
    net = _net()
    net(_x(5))
    sd = net.stream_state_dict()
    with pytest.raises(KeyError, match="unexpected keys"):
        net.load_stream_state_dict({**sd, "7.membrane": torch.zeros(1)})
    bad = {k: v for k, v in sd.items() if k != "0.trace"}
    with pytest.raises(KeyError, match="misses"):
        net.load_stream_state_dict(bad)
    with pytest.raises(KeyError, match="no entry for layer"):
        net.load_stream_state_dict({k: v for k, v in sd.items() if not k.startswith("1.")})


def test_load_state_dict_mid_sequence_resets_the_stream():
    """load_state_dict() into a model mid-sequence must not silently keep the old state."""
    net = _net()
    net(_x(10))
    assert net[0].state is not None
    net.load_state_dict(copy.deepcopy(net.state_dict()))
    assert net[0].state is None and net[0].steps == 0


# ----------------------------------------------------------------------------- stale guard
def test_backward_after_reset_and_new_batch_raises_clearly():
    """stale_graph.py (a): reset + new batch before backward."""
    layer = tt.nn.LI(4, 3)
    out = layer(torch.rand(3, 2, 4))
    layer.reset_states()
    layer(torch.rand(3, 7, 4))
    with pytest.raises(RuntimeError, match="called again, reset or reloaded"):
        out[-1].sum().backward()


def test_backward_after_in_place_parameter_change_raises():
    """stale_graph.py (b): in-place weight change / optimizer step between forward and backward."""
    layer = tt.nn.LI(4, 3)
    out = layer(torch.rand(3, 2, 4))
    with torch.no_grad():
        layer.weight.mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        out[-1].sum().backward()
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    out = net(_x(5))
    F.cross_entropy(out[-1], torch.tensor([0, 1, 2, 0])).backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        F.cross_entropy(out[-1], torch.tensor([0, 1, 2, 0])).backward()


def test_loss_over_several_calls_needs_the_explicit_opt_in():
    net = _net()
    x = _x(20)
    outs = [net(x[:10]), net(x[10:])]
    loss = sum(F.cross_entropy(o[-1], torch.tensor([0, 1, 2, 0])) for o in outs)
    with pytest.raises(RuntimeError, match="latest_state"):
        loss.backward(retain_graph=True)
    net.zero_grad()
    net.reset_states()
    outs = [net(x[:10]), net(x[10:])]
    loss = sum(F.cross_entropy(o[-1], torch.tensor([0, 1, 2, 0])) for o in outs)
    with tt.learning.latest_state():
        loss.backward()
    net.reset_states()
    # each call's node learned from the same latest state: as one explicit backward of the
    # summed signals
    g = net[0].weight.grad.clone()
    outs = [net(x[:10]), net(x[10:])]
    loss = sum(F.cross_entropy(o[-1], torch.tensor([0, 1, 2, 0])) for o in outs)
    signals = torch.autograd.grad(loss, outs)
    net.zero_grad()
    net.backward(signals[0][-1] + signals[1][-1])
    torch.testing.assert_close(g, net[0].weight.grad)


def test_learning_every_k_steps_is_not_stale():
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = _x(40), torch.tensor([0, 1, 2, 0])
    for start in range(0, 40, 10):
        out = net(x[start : start + 10])
        opt.zero_grad()
        F.cross_entropy(out[-1], y).backward()
        opt.step()
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_loss_on_many_timesteps_warns():
    net = _net()
    out = net(_x(10))
    with pytest.warns(UserWarning, match="touches 10 timesteps"):
        F.cross_entropy(out.mean(0), torch.tensor([0, 1, 2, 0])).backward()


def test_loss_on_the_last_step_does_not_warn(recwarn):
    net = _net()
    F.cross_entropy(net(_x(10))[-1], torch.tensor([0, 1, 2, 0])).backward()
    assert not [w for w in recwarn if "timesteps" in str(w.message)]


# ----------------------------------------------------------------------------- misuse
def test_same_layer_twice_in_a_sequential_raises():
    """shared_layer_twice.py."""
    lif = tt.nn.LIF(4, 4)
    net = tt.nn.Sequential(lif, lif, tt.nn.LI(4, 2))
    with pytest.raises(ValueError, match="appears twice"):
        net(torch.rand(5, 2, 4))


def test_nan_input_is_not_hidden_behind_clean_spikes():
    """lif_nan_silent.py: one NaN in a LIF input must not become silently clean output."""
    net = tt.nn.Sequential(tt.nn.LIF(4, 3), tt.nn.LIF(3, 3))
    x = torch.rand(50, 2, 4)
    x[2, 0, 1] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        net(x)
    for cls in DENSE:
        layer = cls(4, 3)
        with pytest.raises(FloatingPointError):
            layer(torch.full((2, 4), float("inf")))


def test_jit_script_says_clearly_it_is_unsupported():
    """jit_script.py."""
    for m in (tt.nn.LIF(4, 3), tt.nn.Sequential(tt.nn.LIF(4, 3), tt.nn.LI(3, 2))):
        with pytest.raises(TypeError, match="torch.jit.script does not support"):
            torch.jit.script(m)


# ----------------------------------------------------------------------------- numerics
def test_decays_stay_below_one_when_the_logit_saturates():
    """beta_logit_saturation.py: sigmoid(17) == 1.0 in float32 must not divide by zero."""
    layer = tt.nn.LI(8, 3)
    with torch.no_grad():
        layer.beta_raw.fill_(40.0)
        layer.trace_decay_raw.fill_(40.0)
    assert bool((layer.beta < 1).all()) and bool((layer.trace_decay < 1).all())
    out = layer((torch.rand(10, 4, 8) < 0.3).float())
    (-out[-1].abs().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_adam_pushing_beta_up_stays_finite():
    """beta_logit_saturation.py: Adam on a loss that rewards a slower readout."""
    torch.manual_seed(0)
    layer = tt.nn.LI(8, 3, learn_beta=True)
    opt = torch.optim.Adam(layer.parameters(), lr=0.5)
    for _ in range(250):
        layer.reset_states()
        out = layer((torch.rand(10, 4, 8) < 0.3).float())
        opt.zero_grad()
        (-out[-1].abs().mean()).backward()
        opt.step()
    assert float(layer.beta.detach().max()) > 1 - 1e-6  # beta reached the clamp ...
    assert all(torch.isfinite(p).all() for p in layer.parameters())  # ... without NaN


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_layers_keep_state_and_decays_in_float32(dtype):
    """bf16_decay_rounds_to_one.py: 0.999 is exactly 1.0 in bfloat16."""
    layer = tt.nn.LI(4, 2, beta=0.999, trace_decay=0.9999).to(dtype)
    assert layer.beta.dtype == torch.float32 and float(layer.beta.max()) < 1
    x = torch.ones(3000, 1, 4, dtype=dtype)
    out = layer(x)
    assert out.dtype == dtype and layer.membrane.dtype == torch.float32
    assert layer.trace.dtype == torch.float32
    # the trace stays within its bound 1 / (1 - d)
    assert float(layer.trace.max()) <= 1 / (1 - 0.9999) * 1.001
    # the membrane approaches c / (1 - beta) and no further
    c = (layer.weight.float() @ torch.ones(4) + layer.bias.float()).abs()
    assert bool((layer.membrane.abs() <= c / (1 - layer.beta) * 1.01).all())


@pytest.mark.parametrize("threshold", [1e-20, 1e-7, 1e7, 1e39])
def test_extreme_thresholds_are_rejected(threshold):
    """threshold_extremes.py."""
    with pytest.raises(ValueError, match="threshold must be in"):
        tt.nn.LIF(8, 3, threshold=threshold)


def test_threshold_stays_in_range_under_updates():
    layer = tt.nn.LIF(8, 3)
    with torch.no_grad():
        layer.threshold_raw.fill_(-100.0)
    assert float(layer.threshold.min()) >= torch.tensor(tt.nn.parameters.THRESHOLD_MIN).item()


def test_backend_context_manager_restores_the_previous_backend():
    before = tt.functional.get_backend()
    with tt.functional.backend("torch"):
        assert tt.functional.get_backend() == "torch"
    assert tt.functional.get_backend() == before
    with pytest.raises(ValueError, match="unknown backend"):
        with tt.functional.backend("fortran"):
            pass
    assert tt.functional.get_backend() == before


def test_one_way_to_ask_is_this_a_tracetorch_layer():
    net = tt.nn.Sequential(
        tt.nn.ConvLIF(1, 2, 3),
        tt.nn.Flatten(),
        tt.nn.RLIF(18, 4),
        torch.nn.Identity(),
        tt.nn.LI(4, 2),
    )
    kinds = [type(m).__name__ for m in tt.learning.trace_layers(net)]
    assert kinds == ["ConvLIF", "RLIF", "LI"]
