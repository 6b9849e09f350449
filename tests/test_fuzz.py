"""Property-based fuzzing of the public API: a correct result or a named error, never silent NaN.

Every public layer (dense, convolutional, pooling, ``Sequential``), the functional API and the
encoders get random shapes (T = 0, B = 0, wrong feature sizes and ranks), dtypes (half,
single, double, integer, bool), NaN/inf values and non-contiguous views. Each call must either

- return a correct result: right shape and dtype, finite where the input is finite, the same
  for a non-contiguous input as for its contiguous copy, gradients finite; or
- raise a *named* error (``TypeError``/``ValueError``/``FloatingPointError``/``RuntimeError``)
  whose message names the layer or the argument, not one from deep inside torch.

The functional API (``tt.functional``) is unchecked like ``torch.nn.functional``: shape
mismatches there raise torch's own errors (it sits in the hot loops); only its value checks
(NaN propagation, integer inputs) are fuzzed. ``HYPOTHESIS_PROFILE=thorough`` runs many more
examples.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import tracetorch as tt
from tracetorch import encode as E
from tracetorch import functional as tf

DENSE = [tt.nn.LIF, tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic, tt.nn.LI, tt.nn.LIS]
FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
NON_FLOATS = [torch.int64, torch.int32, torch.uint8, torch.bool]
NAMED = (TypeError, ValueError, FloatingPointError, RuntimeError)

#: Messages that come from inside torch rather than from a tracetorch check.
TORCH_INTERNALS = re.compile(
    "|".join(
        [
            r"mat1 and mat2",
            r"size of tensor a",
            r"shapes cannot be multiplied",
            r"Dimension out of range",
            r"Output size is too small",
            r"is out of bounds for dimension",
            r"to be true, but got false",
            r"not implemented for",
            r"expanded size of the tensor",
            r"size mismatch, got",
            r"invalid Poisson rate",
            r"torch\.finfo\(\)",
            r"not supported between instances",
            r"has no attribute",
            r"inconsistent with step sign",
        ]
    )
)

FAST = settings(max_examples=40, deadline=None)
FEW = settings(max_examples=20, deadline=None)
#: For the xfail tests: the first failure, an AssertionError (not a group), without shrinking.
ONE_BUG = settings(
    max_examples=20,
    deadline=None,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.generate),
)


# ----------------------------------------------------------------------------- helpers
def assert_named(exc: BaseException, *names: str) -> None:
    """``exc`` is a named error: an allowed type, a message naming one of ``names``."""
    msg = str(exc)
    assert isinstance(exc, NAMED), f"{type(exc).__name__} is not a named error type: {msg}"
    assert not TORCH_INTERNALS.search(msg), f"torch-internal message: {type(exc).__name__}: {msg}"
    assert any(n in msg for n in names), f"message names none of {names}: {msg}"


def _well_formed(steps: int, batch: int, kind: str) -> tuple[int, int, str]:
    """The valid half of the examples: at least one step and one sample, real values."""
    return max(steps, 1), max(batch, 1), kind if kind in ("reals", "spikes") else "spikes"


def make_values(shape, dtype, kind: str, scale: float, seed: int) -> torch.Tensor:
    """A tensor of ``shape``/``dtype``: spikes or reals times ``scale``, one NaN/inf if asked."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        x = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * scale
        if kind == "spikes":
            x = (torch.rand(shape, generator=g, dtype=torch.float64) < 0.3).double()
        if kind in ("nan", "inf", "-inf") and x.numel():
            flat = x.view(-1)
            flat[int(torch.randint(flat.numel(), (1,), generator=g))] = float(kind)
        return x.to(dtype)
    return torch.randint(0, 2, shape, generator=g).to(dtype)


def as_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The values of ``x`` in a non-contiguous tensor (``transposed`` or ``strided``)."""
    if layout == "transposed" and x.dim() >= 2:
        buf = torch.empty(x.shape[1], x.shape[0], *x.shape[2:], dtype=x.dtype).transpose(0, 1)
    elif layout == "strided" and x.dim() >= 1:
        buf = torch.empty(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype)[..., ::2]
    else:
        return x
    buf.copy_(x)
    return buf


def finite_grads(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"non-finite gradient of {name}"


def check_trace_bound(layer, x: torch.Tensor, reduce_dims: tuple[int, ...]) -> None:
    """Each channel's trace within ``max|x| / (1 - d)`` (``x`` reduced over ``reduce_dims``)."""
    xmax = x.detach().double().abs().amax(dim=reduce_dims)
    d = layer.trace_decay.detach().double()
    bound = (xmax / (1 - d)).view(1, -1, *(1,) * (layer.trace.dim() - 2))
    assert (layer.trace.double().abs() <= bound * (1 + 1e-5) + 1e-30).all()


layouts = st.sampled_from(["contiguous", "transposed", "strided"])
kinds = st.sampled_from(["reals", "reals", "spikes", "nan", "inf", "-inf"])
seeds = st.integers(0, 2**20)
dtypes = st.sampled_from(FLOATS + NON_FLOATS)


# ----------------------------------------------------------------------------- dense layers
@FAST
@given(
    cls=st.sampled_from(DENSE),
    layer_dtype=st.sampled_from(FLOATS),
    same_dtype=st.booleans(),
    x_dtype=dtypes,
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 4),
    rank=st.sampled_from([0, 1, 2, 3, 3, 3, 4]),
    steps=st.integers(0, 6),
    batch=st.integers(0, 3),
    wrong_features=st.booleans(),
    kind=kinds,
    scale=st.sampled_from([1.0, 10.0, 1e4]),
    layout=layouts,
    seed=seeds,
    valid=st.booleans(),
)
def test_dense_layers_give_a_result_or_a_named_error(
    cls,
    layer_dtype,
    same_dtype,
    x_dtype,
    n_in,
    n_out,
    rank,
    steps,
    batch,
    wrong_features,
    kind,
    scale,
    layout,
    seed,
    valid,
):
    if valid:  # half of the examples are well-formed, so that results get checked too
        same_dtype, rank, wrong_features = True, 2 + rank % 2, False
        steps, batch, kind = _well_formed(steps, batch, kind)
    torch.manual_seed(seed)
    layer = cls(n_in, n_out, dtype=layer_dtype)
    fresh = copy.deepcopy(layer)
    x_dtype = layer_dtype if same_dtype else x_dtype
    features = n_in + 1 if wrong_features else n_in
    shape = [(), (features,), (batch, features), (steps, batch, features)][min(rank, 3)]
    if rank == 4:
        shape = (steps, batch, 2, features)
    x = make_values(shape, x_dtype, kind, scale, seed)
    x = as_layout(x, layout)

    allowed: set[type] = set()
    if not x_dtype.is_floating_point:
        allowed.add(TypeError)
    if rank not in (2, 3):
        allowed.add(ValueError)
    if rank >= 1 and wrong_features:
        allowed.add(ValueError)
    if (rank == 3 and steps == 0) or (rank in (2, 3) and batch == 0):
        allowed.add(ValueError)
    if x_dtype != layer_dtype:
        allowed.add(TypeError)
    if x_dtype.is_floating_point and not torch.isfinite(x).all():
        allowed.add(FloatingPointError)

    try:
        out = layer(x)
    except NAMED as exc:
        assert type(exc) in allowed, f"unexpected {type(exc).__name__}: {exc}"
        assert_named(exc, cls.__name__)
        return
    assert not allowed, f"expected one of {allowed}, got a result"

    expected = (steps, batch, n_out) if rank == 3 else (batch, n_out)
    assert out.shape == expected and out.dtype == layer_dtype
    assert torch.isfinite(out).all()
    for t in (*layer.state, layer.trace):  # half precision keeps its state in float32
        assert t.dtype == tt.nn.parameters.state_dtype(layer_dtype)
    assert bool((layer.beta < 1).all()) and layer.beta.dtype == layer.state_dtype
    check_trace_bound(layer, x, (0,) if rank == 2 else (0, 1))
    last = out[-1] if rank == 3 else out
    (last.float() * torch.randn(last.shape)).sum().backward()
    finite_grads(layer)
    # A non-contiguous input gives what its contiguous copy gives, bit for bit.
    with torch.no_grad():
        assert torch.equal(fresh(x.contiguous()), out.detach())


@FEW
@given(cls=st.sampled_from(DENSE), n=st.integers(1, 4), steps=st.integers(2, 30), seed=seeds)
def test_a_stream_fed_in_pieces_matches_one_call(cls, n, steps, seed):
    """Outputs do not depend on how a stream is cut into calls (shape, dtype, finite)."""
    torch.manual_seed(seed)
    layer = cls(3, n)
    x = make_values((steps, 2, 3), torch.float32, "spikes", 1.0, seed)
    with torch.no_grad():
        whole = layer(x)
        layer.reset_states()
        cut = steps // 2
        pieces = torch.cat([layer(x[:cut]), *(layer(x[t]).unsqueeze(0) for t in range(cut, steps))])
    torch.testing.assert_close(pieces, whole, rtol=1e-5, atol=1e-5)
    assert layer.steps == steps


# ----------------------------------------------------------------------------- ConvLIF
@FAST
@given(
    layer_dtype=st.sampled_from(FLOATS),
    same_dtype=st.booleans(),
    x_dtype=dtypes,
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.integers(0, 1),
    rank=st.sampled_from([2, 3, 4, 5, 5, 5, 6]),
    steps=st.integers(0, 4),
    batch=st.integers(0, 2),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    wrong_channels=st.booleans(),
    kind=kinds,
    layout=layouts,
    seed=seeds,
    valid=st.booleans(),
)
def test_conv_lif_gives_a_result_or_a_named_error(
    layer_dtype,
    same_dtype,
    x_dtype,
    c_in,
    c_out,
    kernel,
    stride,
    padding,
    rank,
    steps,
    batch,
    hw,
    wrong_channels,
    kind,
    layout,
    seed,
    valid,
):
    if valid:  # half of the examples are well-formed, so that results get checked too
        same_dtype, rank, wrong_channels = True, 4 + rank % 2, False
        steps, batch, kind = _well_formed(steps, batch, kind)
        hw = (max(hw[0], kernel), max(hw[1], kernel))
    torch.manual_seed(seed)
    layer = tt.nn.ConvLIF(c_in, c_out, kernel, stride=stride, padding=padding, dtype=layer_dtype)
    fresh = copy.deepcopy(layer)
    x_dtype = layer_dtype if same_dtype else x_dtype
    c = c_in + 1 if wrong_channels else c_in
    full = (steps, batch, c, *hw)
    shape = full[5 - rank :] if rank <= 5 else (1, *full)
    x = as_layout(make_values(shape, x_dtype, kind, 2.0, seed), layout)
    h_out, w_out = ((n + 2 * padding - kernel) // stride + 1 for n in hw)

    allowed: set[type] = set()
    if not x_dtype.is_floating_point or x_dtype != layer_dtype:
        allowed.add(TypeError)
    if rank not in (4, 5) or (rank >= 3 and wrong_channels):
        allowed.add(ValueError)
    if (rank == 5 and steps == 0) or (rank in (4, 5) and batch == 0):
        allowed.add(ValueError)
    if min(h_out, w_out) < 1:
        allowed.add(ValueError)
    if x_dtype.is_floating_point and not torch.isfinite(x).all():
        allowed.add(FloatingPointError)

    try:
        out = layer(x)
    except NAMED as exc:
        assert type(exc) in allowed, f"unexpected {type(exc).__name__}: {exc}"
        assert_named(exc, "ConvLIF")
        return
    assert not allowed, f"expected one of {allowed}, got a result"
    lead = (steps, batch) if rank == 5 else (batch,)
    assert out.shape == (*lead, c_out, h_out, w_out) and out.dtype == layer_dtype
    assert bool(((out == 0) | (out == 1)).all())
    assert layer.trace.dtype == layer.membrane.dtype == layer.state_dtype
    check_trace_bound(layer, x, (0, 2, 3) if rank == 4 else (0, 1, 3, 4))
    last = out[-1] if rank == 5 else out
    (last.float() * torch.randn(last.shape)).sum().backward()
    finite_grads(layer)
    with torch.no_grad():
        assert torch.equal(fresh(x.contiguous()), out.detach())


# ----------------------------------------------------------------------------- pool, flatten
@FAST
@given(
    pool=st.sampled_from([tt.nn.AvgPool2d, tt.nn.MaxPool2d]),
    kernel=st.integers(1, 3),
    lead=st.lists(st.integers(0, 3), min_size=0, max_size=2),
    chw=st.tuples(st.integers(1, 3), st.integers(3, 6), st.integers(3, 6)),
    dtype=st.sampled_from(FLOATS),
    layout=layouts,
    seed=seeds,
)
def test_pool_and_flatten_match_torch_on_any_leading_dims(
    pool, kernel, lead, chw, dtype, layout, seed
):
    x = as_layout(make_values((*lead, *chw), dtype, "reals", 1.0, seed), layout)
    out = pool(kernel)(x)
    ref_fn = (
        torch.nn.functional.avg_pool2d
        if pool is tt.nn.AvgPool2d
        else torch.nn.functional.max_pool2d
    )
    ref = ref_fn(x.contiguous().reshape(-1, *chw), kernel).reshape(*lead, *out.shape[len(lead) :])
    assert out.dtype == dtype and torch.equal(out, ref)
    flat = tt.nn.Flatten()(out)
    assert flat.shape == (*lead, math.prod(out.shape[-3:]))
    assert torch.equal(flat, out.contiguous().reshape(flat.shape))


@FEW
@given(pool=st.sampled_from([tt.nn.AvgPool2d, tt.nn.MaxPool2d]), rank=st.integers(0, 2))
def test_pools_refuse_low_rank_by_name(pool, rank):
    with pytest.raises(ValueError) as info:
        pool(2)(torch.rand((3, 4)[:rank]))
    assert_named(info.value, pool.__name__)


@ONE_BUG
@given(rank=st.integers(0, 2))
def test_flatten_refuses_low_rank_by_name(rank):
    try:
        tt.nn.Flatten()(torch.rand((2, 3)[:rank]))
    except Exception as exc:  # noqa: BLE001 - the property is about which error
        assert_named(exc, "Flatten")
    else:
        raise AssertionError("Flatten accepted an input without [C, H, W]")


@ONE_BUG
@given(pool=st.sampled_from([tt.nn.AvgPool2d, tt.nn.MaxPool2d]), hw=st.integers(1, 2))
def test_pools_refuse_maps_smaller_than_the_kernel_by_name(pool, hw):
    with pytest.raises(NAMED) as info:
        pool(3)(torch.rand(4, 2, 3, hw, hw))
    assert_named(info.value, pool.__name__)


# ----------------------------------------------------------------------------- Sequential
@FAST
@given(
    hidden=st.sampled_from(DENSE[:4]),
    readout=st.sampled_from([tt.nn.LI, tt.nn.LIS]),
    dtype=st.sampled_from(FLOATS),
    n_in=st.integers(1, 4),
    wrong_features=st.booleans(),
    steps=st.integers(0, 5),
    batch=st.integers(0, 3),
    kind=kinds,
    layout=layouts,
    seed=seeds,
    valid=st.booleans(),
)
def test_sequential_gives_a_result_or_a_named_error(
    hidden, readout, dtype, n_in, wrong_features, steps, batch, kind, layout, seed, valid
):
    if valid:
        wrong_features = False
        steps, batch, kind = _well_formed(steps, batch, kind)
    torch.manual_seed(seed)
    net = tt.nn.Sequential(hidden(n_in, 5), readout(5, 3)).to(dtype)
    fresh = copy.deepcopy(net)
    x = make_values((steps, batch, n_in + wrong_features), dtype, kind, 1.0, seed)
    x = as_layout(x, layout)
    bad = wrong_features or steps == 0 or batch == 0
    try:
        out = net(x)
    except NAMED as exc:
        assert bad or not torch.isfinite(x).all(), f"unexpected {type(exc).__name__}: {exc}"
        assert_named(exc, hidden.__name__)  # the first layer names itself
        return
    assert not bad and torch.isfinite(x).all(), "bad input was accepted"
    assert out.shape == (steps, batch, 3) and out.dtype == dtype and torch.isfinite(out).all()
    (out[-1].float() * torch.randn(batch, 3)).sum().backward()
    finite_grads(net)
    with torch.no_grad():
        assert torch.equal(fresh(x.contiguous()), out.detach())


@FEW
@given(
    dtype=st.sampled_from(FLOATS),
    steps=st.integers(1, 4),
    batch=st.integers(1, 2),
    size=st.integers(4, 6),
    layout=layouts,
    seed=seeds,
)
def test_conv_sequential_end_to_end(dtype, steps, batch, size, layout, seed):
    torch.manual_seed(seed)
    net = tt.nn.Sequential(
        tt.nn.ConvLIF(2, 3, 3, padding=1),
        tt.nn.AvgPool2d(2),
        tt.nn.Flatten(),
        tt.nn.LI(3 * (size // 2) ** 2, 2),
    ).to(dtype)
    fresh = copy.deepcopy(net)
    x = as_layout(make_values((steps, batch, 2, size, size), dtype, "spikes", 1.0, seed), layout)
    out = net(x)
    assert out.shape == (steps, batch, 2) and out.dtype == dtype and torch.isfinite(out).all()
    out[-1].float().sum().backward()
    finite_grads(net)
    with torch.no_grad():
        assert torch.equal(fresh(x.contiguous()), out.detach())


@ONE_BUG
@given(cls=st.sampled_from(DENSE), value=st.floats(1e37, 3e38), seed=seeds)
def test_finite_input_never_gives_a_silent_nan_gradient(cls, value, seed):
    torch.manual_seed(seed)
    layer = cls(2, 3, bias=False)
    with torch.no_grad():
        layer.weight[:, 1] = 0  # the huge channel does not reach the state, only the trace
    x = torch.zeros(30, 2, 2)
    x[..., 1] = value
    try:
        out = layer(x)
    except FloatingPointError as exc:
        assert_named(exc, cls.__name__)
        return
    out[-1].sum().backward()
    for name, p in layer.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"NaN gradient of {name} from finite input"


# ----------------------------------------------------------------------------- traces
decays = st.floats(1e-3, 0.999)


@FAST
@given(
    dtype=st.sampled_from([torch.float32, torch.float64]),
    steps=st.integers(0, 8),
    batch=st.integers(0, 3),
    features=st.integers(1, 4),
    per_channel=st.booleans(),
    d=decays,
    layout=layouts,
    seed=seeds,
)
def test_trace_functions_agree_and_stay_finite(
    dtype, steps, batch, features, per_channel, d, layout, seed
):
    g = torch.Generator().manual_seed(seed)
    x = as_layout(make_values((steps, batch, features), dtype, "reals", 5.0, seed), layout)
    t0 = torch.rand(batch, features, generator=g, dtype=torch.float64).to(dtype)
    dd = torch.rand(features, generator=g, dtype=torch.float64).clamp(1e-3, 0.999).to(dtype)
    dd = dd if per_channel else d
    out = tf.trace_run(t0, x, dd)
    ref = t0
    for k in range(steps):
        ref = tf.trace_step(ref, x[k], dd)
    assert out.shape == t0.shape and out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tf.trace_run(t0, x.contiguous(), dd), out)
    w = tf.trace_weights(dd, steps, like=x)
    assert w.shape == (steps, *torch.as_tensor(dd).shape) and w.dtype == dtype
    assert bool(((w >= 0) & (w <= 1)).all())
    dt = torch.as_tensor(dd, dtype=dtype)
    for n in (None, 0, 1, steps):
        a = tf.trace_mean(out, dt, n)
        assert a.shape == out.shape and torch.isfinite(a).all()


# ----------------------------------------------------------------------------- rate functions
RATES = [tf.linear_rate, tf.mean_field_rate, tf.log_rate, tf.staircase_rate]
currents = st.one_of(
    st.floats(-1e30, 1e30, allow_nan=False), st.floats(-3, 3), st.sampled_from([0.0, 1.0, 0.1])
)


@FAST
@given(
    fn=st.sampled_from(RATES),
    dtype=st.sampled_from([torch.bfloat16, torch.float32, torch.float64]),
    c=st.lists(currents, min_size=1, max_size=6),
    beta=st.floats(0.01, 0.999),
    theta=st.sampled_from([1e-6, 0.01, 1.0, 3.0, 1e6]),
)
def test_rate_functions_are_finite_rates_with_finite_gradients(fn, dtype, c, beta, theta):
    cs = torch.tensor(c, dtype=dtype).view(1, -1).requires_grad_()
    b = torch.full((cs.shape[1],), beta, dtype=dtype, requires_grad=True)
    th = torch.full((cs.shape[1],), theta, dtype=dtype, requires_grad=True)
    r = fn(cs, b, th)
    assert r.shape == cs.shape and r.dtype == dtype
    assert torch.isfinite(r).all() and bool(((r >= 0) & (r <= 1)).all()), r
    r.sum().backward()
    for name, v in (("c", cs), ("beta", b), ("theta", th)):
        assert torch.isfinite(v.grad).all(), f"{fn.__name__}: non-finite d/d{name}: {v.grad}"
    # non-contiguous (strided) current: the same rates
    with torch.no_grad():
        assert torch.equal(fn(as_layout(cs.detach(), "strided"), b, th), r.detach())


@pytest.mark.parametrize("fn", RATES, ids=lambda f: f.__name__)
@ONE_BUG
@given(n=st.integers(1, 5), where=st.integers(0, 4), beta=st.floats(0.1, 0.99))
def test_rate_functions_propagate_nan(fn, n, where, beta):
    c = torch.linspace(-1, 2, n).view(1, n)
    c[0, where % n] = float("nan")
    try:
        r = fn(c, torch.tensor(beta), torch.tensor(1.0))
    except NAMED as exc:
        assert_named(exc, "c", fn.__name__)
        return
    assert bool(torch.isnan(r[0, where % n])), f"NaN current gave rate {r[0, where % n]}"
    others = [i for i in range(n) if i != where % n]
    assert torch.isfinite(r[0, others]).all()


@pytest.mark.parametrize("fn", RATES, ids=lambda f: f.__name__)
@ONE_BUG
@given(dtype=st.sampled_from([torch.int64, torch.int32]), n=st.integers(1, 4))
def test_rate_functions_on_integer_currents(fn, dtype, n):
    c = torch.arange(n, dtype=dtype).view(1, n)
    try:
        r = fn(c, torch.tensor(0.9), torch.tensor(1.0))
    except NAMED as exc:
        assert_named(exc, "c", "floating")
        return
    assert r.is_floating_point() and torch.isfinite(r).all() and r.shape == c.shape


@FAST
@given(
    dtype=st.sampled_from(FLOATS),
    c=st.lists(st.floats(-100, 100), min_size=1, max_size=5),
    beta=st.floats(0.01, 0.999),
    steps=st.sampled_from([None, 0, 1, 7, 60000]),
)
def test_readout_averages_are_finite(dtype, c, beta, steps):
    cs = torch.tensor([c], dtype=dtype)
    b = torch.tensor(beta, dtype=dtype).clamp(max=1 - torch.finfo(dtype).eps)
    m = tf.li_average(cs, b, steps)
    p = tf.lis_average(cs, b, steps)
    assert m.shape == p.shape == cs.shape and m.dtype == p.dtype == dtype
    assert torch.isfinite(m).all() and torch.isfinite(p).all()
    torch.testing.assert_close(
        p.sum(-1).double(), torch.ones(1, dtype=torch.float64), rtol=0.02, atol=0.02
    )


# ----------------------------------------------------------------------------- neuron steps
def _step_case(kind: str, c: torch.Tensor, n: int):
    z = torch.zeros_like(c)
    dt = c.dtype
    beta, theta = torch.full((n,), 0.9, dtype=dt), torch.full((n,), 1.0, dtype=dt)
    return {
        "lif": (tf.lif_step, tf.LIFState(z), tf.LIFParams(beta, theta)),
        "li": (tf.li_step, tf.LIState(z), tf.LIParams(beta)),
        "rlif": (
            tf.rlif_step,
            tf.RLIFState(z, z),
            tf.RLIFParams(beta, theta, torch.eye(n, dtype=dt)),
        ),
        "alif": (tf.alif_step, tf.ALIFState(z, z), tf.ALIFParams(beta, theta, 0.1 * theta, beta)),
        "synaptic": (
            tf.synaptic_step,
            tf.SynapticState(z, z),
            tf.SynapticParams(beta, beta, theta),
        ),
    }[kind]


@FAST
@given(
    kind=st.sampled_from(["lif", "li", "rlif", "alif", "synaptic"]),
    dtype=st.sampled_from(FLOATS),
    batch=st.integers(0, 3),
    n=st.integers(1, 4),
    steps=st.integers(1, 6),
    layout=layouts,
    seed=seeds,
)
def test_neuron_steps_keep_shape_dtype_and_finiteness(kind, dtype, batch, n, steps, layout, seed):
    cs = make_values((steps, batch, n), dtype, "reals", 3.0, seed)
    step, state, p = _step_case(kind, cs[0], n)
    state_nc = state
    for k in range(steps):
        out, state = step(cs[k], state, p)
        out_nc, state_nc = step(as_layout(cs[k], layout), state_nc, p)
        assert out.shape == (batch, n) and out.dtype == dtype and torch.isfinite(out).all()
        assert type(state).__name__.endswith("State")
        assert all(s.shape == (batch, n) and s.dtype == dtype for s in state)
        assert all(torch.isfinite(s).all() for s in state)
        assert torch.equal(out, out_nc)
        if kind != "li":
            assert bool(((out == 0) | (out == 1)).all())


# ----------------------------------------------------------------------------- decay conversions
@ONE_BUG
@given(
    fn=st.sampled_from([tf.decay_from_horizon, tf.decay_from_halflife, tf.decay_from_tau]),
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["5", None, 1e-3, 1e20])
    ),
)
def test_decay_conversions_return_a_decay_or_a_named_error(fn, value):
    arg = fn.__name__.removeprefix("decay_from_")
    try:
        d = fn(value)
    except NAMED as exc:
        assert_named(exc, arg)
        return
    assert isinstance(d, float) and 0.0 < d < 1.0, f"{fn.__name__}({value!r}) = {d!r}"


@FAST
@given(
    fn=st.sampled_from([tf.decay_from_horizon, tf.decay_from_halflife, tf.decay_from_tau]),
    value=st.floats(1.01, 1e6),
)
def test_decay_conversions_in_their_working_range(fn, value):
    d = fn(value)
    assert 0.0 < d < 1.0
    if fn is tf.decay_from_horizon:
        assert tf.horizon_from_decay(d) == pytest.approx(value, rel=1e-6)
    if fn is tf.decay_from_halflife:
        assert tf.halflife_from_decay(d) == pytest.approx(value, rel=1e-6)


# ----------------------------------------------------------------------------- encoders
ENCODERS = ["rate", "poisson", "latency", "latency_log"]


def _encode(name: str, x: torch.Tensor, steps: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if name == "rate":
        return E.rate(x, steps, max_prob=0.8, generator=g)
    if name == "poisson":
        return E.poisson(x, steps, max_rate=2.0, generator=g)
    if name == "latency":
        return E.latency(x, steps)
    return E.latency(x, steps, method="log")


@FAST
@given(
    name=st.sampled_from(ENCODERS),
    dtype=dtypes,
    shape=st.lists(st.integers(0, 3), min_size=0, max_size=3),
    steps=st.integers(-1, 5),
    out_of_range=st.booleans(),
    layout=layouts,
    seed=seeds,
    valid=st.booleans(),
)
def test_encoders_give_spikes_or_a_named_error(
    name, dtype, shape, steps, out_of_range, layout, seed, valid
):
    if valid:
        dtype = dtype if dtype.is_floating_point else torch.float32
        steps, out_of_range = max(steps, 1), False
    x = make_values(tuple(shape), dtype, "reals", 1.0, seed)
    if dtype.is_floating_point:
        x = x.abs() + (1.5 if out_of_range else 0.0)
    x = as_layout(x, layout)
    allowed: set[type] = set()
    if not dtype.is_floating_point:
        allowed.add(TypeError)
    if out_of_range and x.numel() and dtype.is_floating_point:
        allowed.add(ValueError)
    if steps <= 0:
        allowed.add(ValueError)
    try:
        out = _encode(name, x, steps)
    except NAMED as exc:
        assert type(exc) in allowed, f"unexpected {type(exc).__name__}: {exc}"
        assert_named(exc, "x", "steps")
        return
    assert not allowed, f"expected one of {allowed}, got a result"
    assert out.shape == (steps, *shape) and out.dtype == dtype and torch.isfinite(out).all()
    assert bool((out >= 0).all()) and torch.equal(out, out.round())
    if name != "poisson":
        assert bool((out <= 1).all())
    if name.startswith("latency"):
        assert bool((out.sum(0) <= 1).all())
    assert torch.equal(_encode(name, x.contiguous(), steps), out)


@pytest.mark.parametrize(
    "name",
    list(ENCODERS),
)
@ONE_BUG
@given(n=st.integers(1, 4), where=st.integers(0, 3), value=st.sampled_from(["nan"]))
def test_encoders_refuse_nan_features_by_name(name, n, where, value):
    x = torch.rand(2, n)
    x[0, where % n] = float(value)
    with pytest.raises(NAMED) as info:
        _encode(name, x, 4)
    assert_named(info.value, "x")


@FAST
@given(
    dtype=dtypes,
    steps=st.integers(1, 6),
    shape=st.lists(st.integers(0, 3), min_size=1, max_size=2),
    threshold=st.sampled_from([0.05, 0.1, 0.5, 0.0, -1.0]),
    off=st.booleans(),
    layout=layouts,
    seed=seeds,
)
def test_delta_gives_events_or_a_named_error(dtype, steps, shape, threshold, off, layout, seed):
    x = as_layout(make_values((steps, *shape), dtype, "reals", 1.0, seed), layout)
    try:
        out = E.delta(x, threshold, off=off)
    except NAMED as exc:
        assert not dtype.is_floating_point or threshold <= 0, f"unexpected: {exc}"
        assert_named(exc, "x", "threshold")
        return
    assert dtype.is_floating_point and threshold > 0
    last = shape[-1] * (2 if off else 1)
    assert out.shape == (steps, *shape[:-1], last) and out.dtype == dtype
    assert bool(((out == 0) | (out == 1)).all())
    assert torch.equal(E.delta(x.contiguous(), threshold, off=off), out)


@ONE_BUG
@given(case=st.sampled_from(["empty", "reference", "nan"]), n=st.integers(1, 3))
def test_delta_bad_input_gets_a_named_error(case, n):
    try:
        if case == "empty":
            out = E.delta(torch.rand(0, 2, n))
            assert out.shape[0] == 0, out.shape  # an empty result would also be correct
            return
        if case == "reference":
            E.delta(torch.rand(3, 2, n), reference=torch.zeros(n + 2))
        else:
            x = torch.rand(3, 2, n)
            x[1, 0, 0] = float("nan")
            E.delta(x)
    except Exception as exc:  # noqa: BLE001 - the property is about which error
        assert_named(exc, "x", "reference")
    else:
        raise AssertionError(f"delta accepted bad input ({case}) silently")


@ONE_BUG
@given(
    fn=st.sampled_from([tf.li_average, tf.lis_average, tf.trace_mean]),
    steps=st.integers(65505, 10**7),
)
def test_half_precision_averages_of_long_streams(fn, steps):
    x, d = torch.ones(1, 3, dtype=torch.float16), torch.tensor(0.9, dtype=torch.float16)
    try:
        out = fn(x, d, steps)
    except NAMED as exc:
        assert_named(exc, "steps", "float16")
        return
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
