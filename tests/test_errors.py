"""Bad input gets a clear ValueError/TypeError whose message names the argument or the shape."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import tracetorch as tt
from tracetorch import functional as tf

LAYERS = [tt.nn.LIF, tt.nn.LI, tt.nn.LIS]


# ----------------------------------------------------------------------------- constructor
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5, -0.1, float("nan"), torch.tensor([0.5, 1.0, 0.5])])
def test_beta_outside_unit_interval(cls, beta):
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\)"):
        cls(4, 3, beta=beta)


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("decay", [0.0, 1.0, 2.0, -0.5, torch.tensor([0.9, 0.9, 0.9, 1.0])])
def test_trace_decay_outside_unit_interval(cls, decay):
    with pytest.raises(ValueError, match=r"trace_decay must be in \(0, 1\)"):
        cls(4, 3, trace_decay=decay)


@pytest.mark.parametrize(("arg", "size"), [("beta", 3), ("trace_decay", 4)])
def test_per_channel_decay_of_wrong_length(arg, size):
    with pytest.raises(
        ValueError, match=rf"{arg} must be a float or a tensor of shape \({size},\)"
    ):
        tt.nn.LIF(4, 3, **{arg: torch.full((size + 1,), 0.5)})


@pytest.mark.parametrize(
    "threshold",
    [
        0.0,
        -1.0,
        float("nan"),
        float("inf"),
        torch.tensor([1.0, 0.0, 1.0]),
        1e-7,
        2e6,
        torch.tensor([1.0, float("nan"), 1.0]),
    ],
)
def test_threshold_outside_its_range(threshold):
    with pytest.raises(ValueError, match=r"threshold must be in \[1e-06, 1e\+06\]"):
        tt.nn.LIF(4, 3, threshold=threshold)


@pytest.mark.parametrize(
    "threshold", [1e-6, 1e6, torch.tensor([1e-6, 1.0, 1e6], dtype=torch.float64)]
)
def test_threshold_at_the_ends_of_its_range(threshold):
    layer = tt.nn.LIF(4, 3, threshold=threshold, dtype=torch.float64)
    expected = torch.as_tensor(threshold, dtype=torch.float64).expand(3)
    torch.testing.assert_close(layer.threshold, expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize("arg", ["beta", "trace_decay"])
def test_decay_that_rounds_to_one_in_float32(arg):
    with pytest.raises(ValueError, match=rf"{arg} must be in \(0, 1\)"):
        tt.nn.LIF(4, 3, **{arg: 1 - 1e-12})


def test_threshold_of_wrong_length():
    with pytest.raises(ValueError, match=r"threshold must be a float or a tensor of shape \(3,\)"):
        tt.nn.LIF(4, 3, threshold=torch.ones(2))


@pytest.mark.parametrize("arg", ["beta", "trace_decay", "threshold"])
def test_non_numeric_parameter(arg):
    with pytest.raises(TypeError, match=arg):
        tt.nn.LIF(4, 3, **{arg: "0.5"})


@pytest.mark.parametrize("horizon", [1.0, 0.5, 0.0, -3.0, float("nan")])
def test_horizon_not_above_one(horizon):
    with pytest.raises(ValueError, match="horizon must be > 1"):
        tt.nn.LIF(4, 3, horizon=horizon)
    with pytest.raises(ValueError, match="horizon must be > 1"):
        tf.decay_from_horizon(horizon)


def test_trace_decay_and_horizon_together():
    with pytest.raises(ValueError, match="trace_decay or horizon"):
        tt.nn.LI(4, 3, trace_decay=0.9, horizon=10.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 4.0}, TypeError, "in_features must be an int"),
        ({"in_features": True}, TypeError, "in_features must be an int"),
        ({"out_features": 0}, ValueError, "out_features must be positive"),
        ({"out_features": -2}, ValueError, "out_features must be positive"),
    ],
)
def test_bad_sizes(kwargs, error, match):
    with pytest.raises(error, match=match):
        tt.nn.LIF(**{"in_features": 4, "out_features": 3, **kwargs})


def test_unknown_rate_fn_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown rate_fn 'sigmoid'.*mean_field"):
        tt.nn.LIF(4, 3, rate_fn="sigmoid")
    with pytest.raises(ValueError, match="unknown rate_fn"):
        tf.get_rate_fn("nope")


def test_unknown_surrogate_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown surrogate 'relu'.*atan.*fast_sigmoid"):
        tt.nn.LIF(4, 3, surrogate="relu")
    with pytest.raises(ValueError, match="unknown surrogate"):
        tf.get_surrogate("nope")


def test_bad_learning_mode():
    modes = tt.learning.LEARNING_MODES
    assert {"trace", "bptt"} <= set(modes)
    with pytest.raises(ValueError, match=re.escape(f"learning must be one of {modes}, got 'BPTT'")):
        tt.nn.LIF(4, 3, learning="BPTT")
    with pytest.raises(ValueError, match="learning must be one of"):
        tt.learning.set_learning(tt.nn.Sequential(tt.nn.LI(4, 3)), "exact")


@pytest.mark.parametrize(
    ("fn", "value", "match"),
    [
        (tf.horizon_from_decay, 1.0, r"d must be a decay in \(0, 1\)"),
        (tf.halflife_from_decay, 0.0, r"d must be a decay in \(0, 1\)"),
        (tf.horizon_from_decay, float("nan"), r"d must be a decay in \(0, 1\)"),
        (tf.decay_from_halflife, 0.0, "halflife must be > 0"),
        (tf.decay_from_tau, -1.0, "tau must be > 0"),
    ],
)
def test_bad_conversion_arguments(fn, value, match):
    with pytest.raises(ValueError, match=match):
        fn(value)


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("shape", [(2, 5), (7, 2, 3), (2, 4, 1)])
def test_wrong_feature_size(cls, shape):
    with pytest.raises(ValueError, match=r"expected in_features=4 .*got shape \(" + str(shape[0])):
        cls(4, 3)(torch.rand(shape))


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("shape", [(4,), (3, 2, 2, 4), ()])
def test_wrong_rank(cls, shape):
    with pytest.raises(ValueError, match=r"\[B, 4\] \(one step\) or \[T, B, 4\]"):
        cls(4, 3)(torch.rand(shape))


@pytest.mark.parametrize("cls", LAYERS)
def test_batch_change_mid_sequence(cls):
    layer = cls(4, 3)
    layer(torch.rand(5, 2, 4))
    with pytest.raises(ValueError, match="batch size changed from 2 to 3.*reset_states"):
        layer(torch.rand(3, 4))
    with pytest.raises(ValueError, match="batch size changed from 2 to 6"):
        layer(torch.rand(5, 6, 4))
    layer.reset_states()
    assert layer(torch.rand(3, 4)).shape == (3, 3)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_non_float_input(dtype):
    with pytest.raises(TypeError, match=rf"floating-point tensor, got {dtype}"):
        tt.nn.LIF(4, 3)(torch.zeros(5, 2, 4, dtype=dtype))


@pytest.mark.parametrize("x", [[[0.0] * 4] * 2, 1.0, None], ids=["list", "float", "None"])
def test_non_tensor_input(x):
    with pytest.raises(TypeError, match=r"input must be a torch.Tensor, got"):
        tt.nn.LIF(4, 3)(x)


def test_numpy_input_is_refused_by_name():
    np = pytest.importorskip("numpy")
    with pytest.raises(TypeError, match="got ndarray"):
        tt.nn.LI(4, 3)(np.zeros((2, 4), dtype=np.float32))


@pytest.mark.parametrize(
    ("layer_dtype", "x_dtype"),
    [
        (torch.float32, torch.float64),
        (torch.float64, torch.float32),
        (torch.float32, torch.float16),
    ],
)
def test_dtype_mismatch(layer_dtype, x_dtype):
    layer = tt.nn.LIF(4, 3, dtype=layer_dtype)
    with pytest.raises(TypeError, match=rf"input dtype {x_dtype} does not match .*{layer_dtype}"):
        layer(torch.rand(2, 4, dtype=x_dtype))


def test_device_mismatch():
    with pytest.raises(ValueError, match="input is on meta but the parameters are on cpu"):
        tt.nn.LIF(4, 3)(torch.empty(2, 4, device="meta"))


# ----------------------------------------------------------------------------- explicit backward
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (5, 2, 3), (3,)])
def test_explicit_backward_wrong_signal_shape(cls, shape):
    layer = cls(4, 3)
    layer(torch.rand(6, 2, 4))
    with pytest.raises(ValueError, match=r"learning_signal must have shape \[2, 3\]"):
        layer.backward(torch.zeros(shape))


def test_explicit_backward_needs_a_tensor_and_a_state():
    layer = tt.nn.LIF(4, 3)
    with pytest.raises(RuntimeError, match="no state: run a forward pass first"):
        layer.backward(torch.zeros(2, 3))
    layer(torch.rand(2, 4))
    with pytest.raises(TypeError, match="learning_signal must be a torch.Tensor"):
        layer.backward([[0.0] * 3] * 2)


def test_sequential_backward_wrong_shape_and_foreign_layers():
    net = tt.nn.Sequential(tt.nn.LIF(4, 5), tt.nn.LI(5, 3))
    net(torch.rand(3, 2, 4))
    with pytest.raises(ValueError, match=r"LI: learning_signal must have shape \[2, 3\]"):
        net.backward(torch.zeros(2, 5))
    mixed = tt.nn.Sequential(tt.nn.LIF(4, 5), nn.Linear(5, 3))
    mixed(torch.rand(3, 2, 4))
    with pytest.raises(TypeError, match="tracetorch layers only; Linear"):
        mixed.backward(torch.zeros(3, 2, 3))


def test_gradient_fidelity_needs_reset_states():
    with pytest.raises(TypeError, match="reset_states"):
        tt.gradient_fidelity(nn.Linear(2, 2), torch.rand(3, 2, 2), None, lambda o, y: o.sum())
