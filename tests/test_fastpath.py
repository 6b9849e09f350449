"""The multi-step fast path: sequences equal per-step calls, chunking changes nothing.

Tolerances (float64 unless stated): outputs, membranes and gradients of a sequence call equal
those of the per-step path to ``1e-12`` (bit for bit wherever the BLAS computes a row of a
matrix product the same way for any number of rows, as it does here at batch >= 4); spikes are
compared exactly. The input trace of a sequence is a closed form, equal to the per-step
recursion to float rounding (``1e-12`` in float64, ``1e-5`` relative in float32 over
``10^4`` steps at ``d = 0.999``).
"""

from __future__ import annotations

import shutil
import warnings
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import tracetorch as tt
from tracetorch import functional as tf
from tracetorch.functional import _compiled, _cpp, _triton

f64 = torch.float64
LAYERS = [tt.nn.LIF, tt.nn.LI, tt.nn.LIS]
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def _spikes(*shape: int, p: float = 0.3, dtype: torch.dtype = f64) -> torch.Tensor:
    return (torch.rand(*shape) < p).to(dtype)


def _layer(cls, n_in: int = 6, n_out: int = 5, **kwargs):
    extra = {"threshold": 0.4} if cls is tt.nn.LIF else {}
    return cls(n_in, n_out, beta=0.8, dtype=f64, **extra, **kwargs)


def _twin(module):
    import copy

    return copy.deepcopy(module)


def _net(dtype=f64, **kwargs) -> tt.nn.Sequential:
    return tt.nn.Sequential(
        tt.nn.LIF(6, 12, beta=0.8, threshold=0.4, **kwargs),
        tt.nn.LIF(12, 8, threshold=0.3, **kwargs),
        tt.nn.LI(8, 3, **kwargs),
    ).to(dtype)


def _assert_same_state(a, b, **tol) -> None:
    tol = tol or TIGHT
    torch.testing.assert_close(a.membrane, b.membrane, **tol)
    torch.testing.assert_close(a.trace, b.trace, **tol)
    assert a.steps == b.steps


# ----------------------------------------------------------------------------- functional
@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_in_place_runs_equal_out_of_place_runs_bit_for_bit(dtype):
    c = torch.randn(30, 4, 7, dtype=dtype)
    beta, theta = torch.rand(7, dtype=dtype) * 0.5 + 0.45, torch.rand(7, dtype=dtype) + 0.3
    m0 = torch.randn(4, 7, dtype=dtype)
    m0_copy = m0.clone()
    lif, li = tf.LIFParams(beta, theta), tf.LIParams(beta)
    for step, run_, state, params in (
        (tf.lif_step, tf.lif_run_, tf.LIFState(m0), lif),
        (tf.li_step, tf.li_run_, tf.LIState(m0), li),
        (tf.lis_step, tf.lis_run_, tf.LIState(m0), li),
        # the generic in-place run of each reference step
        (tf.lif_step, partial(tf.run_, tf.lif_step), tf.LIFState(m0), lif),
        (tf.li_step, partial(tf.run_, tf.li_step), tf.LIState(m0), li),
        (tf.lis_step, partial(tf.run_, tf.lis_step), tf.LIState(m0), li),
    ):
        ref_out, ref_state = tf.run(step, c, state, params)
        buf = c.clone()
        out, new_state = run_(buf, state, params)
        assert out is buf  # written in place, nothing allocated for the outputs
        assert type(new_state) is type(ref_state), step.__name__
        assert torch.equal(out, ref_out), step.__name__
        assert torch.equal(new_state.membrane, ref_state.membrane), step.__name__
        assert torch.equal(m0, m0_copy)  # the caller's membrane is left alone


def test_in_place_runs_on_an_empty_sequence():
    m0 = torch.randn(2, 3)
    beta, theta = torch.tensor(0.9), torch.tensor(1.0)
    for run_, state, params in (
        (tf.lif_run_, tf.LIFState(m0), tf.LIFParams(beta, theta)),
        (tf.li_run_, tf.LIState(m0), tf.LIParams(beta)),
        (tf.lis_run_, tf.LIState(m0), tf.LIParams(beta)),
    ):
        out, new_state = run_(torch.empty(0, 2, 3), state, params)
        assert out.shape == (0, 2, 3)
        assert torch.equal(new_state.membrane, m0) and new_state.membrane is not m0


def test_lif_run_matches_lif_step_golden_values_in_place():
    """The in-place run reproduces the hand-computed golden steps (beta 0.5, theta 1)."""
    c = torch.tensor([[0.75, 1.0, 2.5, 0.25]], dtype=f64).expand(4, 1, 4).clone()
    state = tf.LIFState(torch.zeros(1, 4, dtype=f64))
    s, state = tf.lif_run_(c, state, tf.LIFParams(torch.tensor(0.5, dtype=f64), 1.0))
    assert s.squeeze(1).tolist() == [[0, 1, 1, 0], [1, 1, 1, 0], [0, 1, 1, 0], [1, 1, 1, 0]]
    assert state.membrane.tolist() == [[0.15625, 0.0, 2.8125, 0.46875]]


@pytest.mark.parametrize("features", [3, 5000])  # weighted sum / in-place recursion (CPU)
@pytest.mark.parametrize("shared", ["no", "tensor", "float"])
def test_trace_run_forms_equal_the_recursion(features, shared):
    x = torch.rand(40, 2, features, dtype=f64)
    t0 = torch.rand(2, features, dtype=f64)
    d = torch.rand(features, dtype=f64) * 0.9 + 0.05
    if shared == "tensor":
        d = d[0]
    elif shared == "float":
        d = float(d[0])
    t = t0
    for x_t in x:
        t = tf.trace_step(t, x_t, d)
    torch.testing.assert_close(tf.trace_run(t0, x, d), t, **TIGHT)
    torch.testing.assert_close(
        tf.trace_run(t0, x[:1], d), tf.trace_step(t0, x[0], d), rtol=0, atol=0
    )
    torch.testing.assert_close(tf.trace_run(t0, x[:0], d), t0, rtol=0, atol=0)
    weights = tf.trace_weights(d, 64, like=x)  # precomputed for longer chunks: the suffix serves
    torch.testing.assert_close(tf.trace_run(t0, x, d, weights=weights), t, **TIGHT)


@pytest.mark.parametrize("shared", ["no", "tensor", "float"])
def test_trace_run_float32_long_chunked_sequence(shared):
    """float32, T = 10^4, d = 0.999, in chunks of 64: closed form within 1e-5 of float64."""
    x = torch.rand(10_000, 2, 3)
    d = torch.tensor([0.999, 0.99, 0.9]) if shared == "no" else torch.tensor(0.999)
    ref = torch.zeros(2, 3, dtype=f64)
    for x_t in x.double():
        ref = tf.trace_step(ref, x_t, d.double())
    t = torch.zeros(2, 3)
    d_run = float(d) if shared == "float" else d
    for start in range(0, len(x), 64):
        t = tf.trace_run(t, x[start : start + 64], d_run)
    torch.testing.assert_close(t.double(), ref, rtol=1e-5, atol=0)
    loop = torch.zeros(2, 3)
    for x_t in x:
        loop = tf.trace_step(loop, x_t, d)
    # The float32 recursion itself is no closer to float64 than the closed form.
    assert (
        float(((t.double() - ref) / ref).abs().max())
        <= 2 * float(((loop.double() - ref) / ref).abs().max()) + 1e-7
    )


def test_trace_run_underflowing_powers_are_exact_zeros():
    """Small decays over a long chunk: powers below the smallest normal float count as 0."""
    x = torch.rand(300, 2, 3)
    d = torch.tensor([0.1, 0.5, 0.7])
    t = tf.trace_run(torch.ones(2, 3), x, d)
    ref = torch.zeros(2, 3, dtype=f64)
    for x_t in x[-60:].double():  # older inputs are below float32 resolution
        ref = tf.trace_step(ref, x_t, d.double())
    torch.testing.assert_close(t.double(), ref, rtol=1e-6, atol=0)


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("batch", [1, 4])
def test_sequence_equals_per_step_no_grad(cls, batch):
    a = _layer(cls)
    b = _twin(a)
    x = _spikes(50, batch, 6)
    with torch.no_grad():
        seq = a(x)
        steps = torch.stack([b(x_t) for x_t in x])
    if cls is tt.nn.LIF:
        assert torch.equal(seq, steps)
        assert 0 < float(seq.mean()) < 1
    torch.testing.assert_close(seq, steps, **TIGHT)
    _assert_same_state(a, b)


@pytest.mark.parametrize("cls", LAYERS)
def test_sequence_equals_per_step_bit_for_bit_float32(cls):
    """At batch 16 this machine's BLAS computes each row the same for any row count."""
    a = cls(6, 5, dtype=torch.float32)
    b = _twin(a)
    x = _spikes(40, 16, 6, dtype=torch.float32)
    with torch.no_grad():
        seq = a(x)
        steps = torch.stack([b(x_t) for x_t in x])
    torch.testing.assert_close(seq, steps, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.trace, b.trace, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", LAYERS)
def test_fast_path_equals_bptt_forward(cls):
    """The in-place path (trace mode, no_grad) and the graph path (BPTT) give the same values."""
    a = _layer(cls)
    b = _twin(a)
    b.learning = "bptt"
    x = _spikes(33, 4, 6)
    with torch.no_grad():
        fast = a(x)
    slow = b(x)
    assert slow.requires_grad
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=0)
    torch.testing.assert_close(a.membrane, b.membrane.detach(), rtol=0, atol=0)
    torch.testing.assert_close(a.trace, b.trace, rtol=0, atol=0)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 16, 64, 1000])
def test_chunk_size_does_not_change_results(chunk_size):
    a, b = _net(), _net()
    b.load_state_dict(a.state_dict())
    for layer in b:
        layer.chunk_size = chunk_size
    x = _spikes(45, 3, 6)
    with torch.no_grad():
        out_a, out_b = a(x), b(x)
    torch.testing.assert_close(out_a, out_b, **TIGHT)
    for la, lb in zip(a, b, strict=True):
        _assert_same_state(la, lb)


@given(
    steps=st.integers(1, 40),
    batch=st.integers(1, 5),
    chunk=st.integers(1, 50),
    split=st.integers(0, 40),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_and_any_split_of_the_sequence(steps, batch, chunk, split, seed):
    """Chunk size and how the caller splits the stream never change the result."""
    torch.manual_seed(seed)
    a = _net()
    b = _twin(a)
    for layer in b:
        layer.chunk_size = chunk
    x = _spikes(steps, batch, 6)
    split = min(split, steps)
    with torch.no_grad():
        ref = a(x)
        # an empty part is not a call (see test_empty_sequence_raises_and_leaves_the_state)
        got = torch.cat([b(part) for part in (x[:split], x[split:]) if len(part)])
    torch.testing.assert_close(got, ref, **TIGHT)
    for la, lb in zip(a, b, strict=True):
        _assert_same_state(la, lb)


def _trace_grads(net, x, y, per_step: bool) -> dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    net.reset_states()
    out = torch.stack([net(x_t) for x_t in x]) if per_step else net(x)
    # Per step, the loss reaches the nodes of earlier calls with a zero signal: they are
    # skipped, so the stale-state guard does not fire.
    F.cross_entropy(out[-1], y).backward()
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mode", ["trace", "bptt"])
def test_gradients_of_sequence_equal_per_step(mode):
    net = _net()
    tt.learning.set_learning(net, mode)
    x, y = _spikes(30, 4, 6), torch.tensor([0, 1, 2, 1])
    seq = _trace_grads(net, x, y, per_step=False)
    step = _trace_grads(net, x, y, per_step=True)
    assert seq.keys() == step.keys() and len(seq) >= 9
    for name in seq:
        assert float(seq[name].abs().sum()) > 0, name
        torch.testing.assert_close(seq[name], step[name], **TIGHT, msg=name)


def test_lis_gradients_of_sequence_equal_per_step():
    for mode in ("trace", "bptt"):
        layer = _layer(tt.nn.LIS, learning=mode)
        x = _spikes(20, 4, 6)
        grads = []
        for per_step in (False, True):
            layer.zero_grad(set_to_none=True)
            layer.reset_states()
            out = torch.stack([layer(x_t) for x_t in x]) if per_step else layer(x)
            torch.log(out[-1][:, 0]).sum().backward()  # earlier calls: zero signal, skipped
            grads.append([p.grad.clone() for p in layer.parameters() if p.grad is not None])
        for g_seq, g_step in zip(*grads, strict=True):
            torch.testing.assert_close(g_seq, g_step, **TIGHT)


def test_trace_mode_gradients_do_not_depend_on_chunk_size():
    x, y = _spikes(50, 4, 6), torch.tensor([0, 1, 2, 1])
    net = _net()
    ref = _trace_grads(net, x, y, per_step=False)
    for layer in net:
        layer.chunk_size = 7
    got = _trace_grads(net, x, y, per_step=False)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], **TIGHT, msg=name)


# ----------------------------------------------------------------------------- behaviour
def test_caller_tensors_are_never_written():
    """The input, and a membrane or trace a user kept a reference to, stay as they were."""
    layer = _layer(tt.nn.LIF)
    x = _spikes(10, 3, 6)
    x_copy = x.clone()
    layer(x[:2])
    kept_m, kept_t = layer.membrane, layer.trace
    kept = kept_m.clone(), kept_t.clone()
    layer(x)
    assert torch.equal(x, x_copy)
    assert torch.equal(kept_m, kept[0]) and torch.equal(kept_t, kept[1])
    assert layer.membrane is not kept_m


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("grad", [False, True])
def test_empty_sequence_raises_and_leaves_the_state(cls, grad):
    layer = _layer(cls)
    layer(_spikes(3, 2, 6))
    m, t = layer.membrane.clone(), layer.trace.clone()
    version = layer.state_version
    with torch.set_grad_enabled(grad), pytest.raises(ValueError, match=r"empty \(T = 0\)"):
        layer(torch.empty(0, 2, 6, dtype=f64))
    with torch.set_grad_enabled(grad), pytest.raises(ValueError, match=r"empty \(B = 0\)"):
        layer(torch.empty(4, 0, 6, dtype=f64))
    assert torch.equal(layer.membrane, m) and torch.equal(layer.trace, t) and layer.steps == 3
    assert layer.state_version == version
    with torch.no_grad():  # the stream goes on as if the empty calls had not happened
        got = layer(_spikes(4, 2, 6))
    assert got.shape == (4, 2, 5) and layer.steps == 7


def test_non_contiguous_input():
    a = _layer(tt.nn.LIF)
    b = _twin(a)
    x = _spikes(3, 20, 6).transpose(0, 1)  # [20, 3, 6] with odd strides
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x.contiguous()), rtol=0, atol=0)


def test_chunk_size_attribute():
    layer = tt.nn.LIF(3, 2)
    assert layer.chunk_size is None  # automatic
    layer.chunk_size = 5
    assert layer.chunk_size == 5 and layer.chunk_steps(1000) == 5
    layer.chunk_size = None
    assert tt.nn.LI(3, 2, chunk_size=9).chunk_size == 9
    with pytest.raises(ValueError, match="chunk_size"):
        tt.nn.LIS(3, 2, chunk_size=0)
    for bad, err in ((0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(err, match="chunk_size"):
            layer.chunk_size = bad


def test_automatic_chunk_steps_bound_the_bytes_of_a_chunk():
    layer = tt.nn.LIF(64, 128)
    cap, budget = layer.MAX_CHUNK_STEPS, layer.CHUNK_BYTES
    assert layer.chunk_steps(1) == cap
    for batch in (64, 256, 10_000, 10**6):
        steps = layer.chunk_steps(batch)
        assert 1 <= steps <= cap
        assert steps == 1 or steps * batch * 128 * 4 <= budget
    assert layer.double().chunk_steps(256) == layer.float().chunk_steps(256) // 2


@pytest.mark.parametrize("cls", LAYERS)
def test_workspace_of_a_sequence_call_is_flat_in_length(cls):
    """Beyond its output ``[T, B, out]``, a sequence call allocates the same at any T."""
    layer = cls(16, 8)
    extra = {}
    for steps in (512, 4096):
        x = _spikes(steps, 4, 16, dtype=torch.float32)
        layer.reset_states()
        with torch.no_grad():
            layer(x[:3])
            peak = tt.metrics.peak_allocated_bytes(lambda x=x: layer(x))
            extra[steps] = peak - x.shape[0] * 4 * 8 * 4
    chunk = layer.chunk_steps(4)
    assert extra[4096] <= extra[512] + 1024  # a few scalars of bookkeeping, nothing per step
    assert extra[512] <= chunk * 4 * 16 * 4 + 8192  # at most about one chunk of the input


# ----------------------------------------------------------------------------- C++ backend
@pytest.fixture
def cpp_backend():
    """Switch to the C++ kernels for one test (skipped where they cannot be built)."""
    previous = tf.get_backend()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tf.set_backend("cpp")
    if _cpp._module() is None:
        tf.set_backend(previous)
        pytest.skip("the C++ kernels cannot be built here (no compiler or ninja)")
    yield
    tf.set_backend(previous)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="torch"):
        tf.set_backend("cuda")


@pytest.mark.parametrize("dtype", [torch.float32, f64])
@pytest.mark.parametrize("shape", [(30, 4, 7), (5, 1, 1), (3, 2, 3, 5)])
def test_cpp_kernels_equal_torch_bit_for_bit(cpp_backend, dtype, shape):
    c = torch.randn(*shape, dtype=dtype)
    features = shape[-1]
    beta = torch.rand(features, dtype=dtype) * 0.5 + 0.45
    theta = torch.rand(features, dtype=dtype) + 0.3
    m0 = torch.randn(*shape[1:], dtype=dtype)
    cases = [
        (tf.lif_step, tf.lif_run_, tf.LIFState(m0), tf.LIFParams(beta, theta)),
        # shared beta/theta (0-dim)
        (tf.lif_step, tf.lif_run_, tf.LIFState(m0), tf.LIFParams(beta[0], theta[0])),
        (tf.li_step, tf.li_run_, tf.LIState(m0), tf.LIParams(beta)),
        (tf.lis_step, tf.lis_run_, tf.LIState(m0), tf.LIParams(beta)),
    ]
    for step, run_, state, params in cases:
        ref_out, ref_state = tf.run(step, c, state, params)  # always the PyTorch form
        buf = c.clone()
        out, new_state = run_(buf, state, params)
        assert out is buf
        assert torch.equal(out, ref_out), step.__name__
        assert torch.equal(new_state.membrane, ref_state.membrane), step.__name__


def test_cpp_backend_network_equals_torch_backend(cpp_backend):
    x = _spikes(70, 5, 6, dtype=torch.float32)
    a = _net(torch.float32)
    b = _twin(a)
    with torch.no_grad():
        got = a(x)
        tf.set_backend("torch")
        ref = b(x)
    assert torch.equal(got, ref)
    for la, lb in zip(a, b, strict=True):
        assert torch.equal(la.membrane, lb.membrane) and torch.equal(la.trace, lb.trace)


def test_cpp_backend_falls_back_where_it_does_not_apply(cpp_backend):
    """Per-element parameters and non-contiguous buffers take the PyTorch form, same values."""
    c = torch.randn(6, 3, 4)
    m0 = torch.randn(3, 4)
    beta = torch.rand(3, 4) * 0.5 + 0.4  # per element: not a [F] vector
    lif = tf.LIFParams(beta, torch.tensor(0.5))
    out, state = tf.lif_run_(c.clone(), tf.LIFState(m0), lif)
    ref_out, ref_state = tf.run(tf.lif_step, c, tf.LIFState(m0), lif)
    assert torch.equal(out, ref_out) and torch.equal(state.membrane, ref_state.membrane)
    strided = torch.randn(3, 6, 4).transpose(0, 1)
    li = tf.LIParams(beta[0])
    ref_out, ref_state = tf.run(tf.li_step, strided, tf.LIState(m0), li)
    out, state = tf.li_run_(strided, tf.LIState(m0), li)
    assert torch.equal(out, ref_out) and torch.equal(state.membrane, ref_state.membrane)


# ----------------------------------------------------------------------------- compile backend
def _fused() -> int:
    return _compiled.fused_blocks


@pytest.fixture
def compile_backend(monkeypatch):
    """``torch.compile`` fusion with short blocks (fast to compile) for one test."""
    if (reason := _compiled.available()) is not None:
        pytest.skip(reason)
    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    monkeypatch.setattr(_compiled, "BLOCK_STEPS", 4)
    previous = tf.get_backend()
    tf.set_backend("compile")
    yield
    tf.set_backend(previous)
    assert _compiled.available() is None  # nothing switched the backend off


@pytest.mark.parametrize("dtype", [torch.float32, f64])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_compile_backend_equals_the_reference(compile_backend, dtype, reset):
    """Whole blocks fused, the remainder eager: spikes equal, membranes to rounding; across
    batch sizes (1 included), widths and parameter forms without switching itself off."""
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    for batch, width, shared in [(3, 5, False), (1, 5, True), (4, 1, False), (2, 7, True)]:
        c = torch.randn(11, batch, width, dtype=dtype) * 0.6 + 0.3  # blocks of 4, 4 and 3 left
        beta = torch.rand(width, dtype=dtype) * 0.5 + 0.45
        beta = beta[0] if shared else beta  # 0-dim or one per feature
        m0 = torch.randn(batch, width, dtype=dtype)
        for step, run_, state, params in [
            (tf.lif_step, tf.lif_run_, tf.LIFState(m0), tf.LIFParams(beta, 1.0, reset=reset)),
            (tf.li_step, tf.li_run_, tf.LIState(m0), tf.LIParams(beta)),
        ]:
            with torch.no_grad():
                with tf.backend("torch"):
                    ref_out, ref_state = tf.run(step, c, state, params)
                before, buf = _fused(), c.clone()
                out, new_state = run_(buf, state, params)
            assert _fused() - before == 2, (step.__name__, batch, width)  # two blocks ran
            assert out is buf and torch.equal(state.membrane, m0)
            torch.testing.assert_close(out, ref_out, **tol)
            torch.testing.assert_close(new_state.membrane, ref_state.membrane, **tol)
            if step is tf.lif_step:
                assert torch.equal(out, ref_out)  # spikes


def test_compile_backend_network_and_trace_gradients(compile_backend, monkeypatch):
    x, y = _spikes(18, 4, 6), torch.tensor([0, 1, 2, 1])
    a = _net()
    b = _twin(a)
    with tf.backend("torch"):
        ref = _trace_grads(b, x, y, per_step=False)
    before = _fused()
    got = _trace_grads(a, x, y, per_step=False)
    assert _fused() > before  # the layers' recursions went through compiled blocks
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-9, atol=1e-12, msg=name)
    # the automatic chunk: whole blocks of 4 under "compile", as usual elsewhere
    for budget in (1152, 2304):  # chunks of [3, 4, 12] and [6, 8, 24] steps as usual
        monkeypatch.setattr(tt.nn.TraceLayer, "CHUNK_BYTES", budget)
        with tf.backend("torch"):
            usual = [layer.chunk_steps(4) for layer in a]
        fused = [layer.chunk_steps(4) for layer in a]
        assert fused == [max(4, n - n % 4) for n in usual] and fused != usual
    conv = tt.nn.ConvLIF(1, 2, 3)  # per-channel parameters: not fused, no minimum
    assert not conv.fused_recursion
    with pytest.raises(ValueError, match="torch"):
        tf.set_backend("numba")


def test_compile_backend_leaves_graphs_and_per_element_parameters_alone(compile_backend):
    c, m0 = torch.randn(8, 2, 3, dtype=f64), torch.randn(2, 3, dtype=f64)
    before = _fused()
    per_element = tf.LIFParams(torch.rand(2, 3, dtype=f64) * 0.5 + 0.4, 0.5)
    with torch.no_grad():
        out, state = tf.lif_run_(c.clone(), tf.LIFState(m0), per_element)
    ref_out, ref_state = tf.run(tf.lif_step, c, tf.LIFState(m0), per_element)
    assert torch.equal(out, ref_out) and torch.equal(state.membrane, ref_state.membrane)
    beta = torch.full((3,), 0.9, dtype=f64, requires_grad=True)
    tf.li_run_(c.clone(), tf.LIState(m0), tf.LIParams(beta.detach()))  # fused (no grad)
    assert _fused() == before + 2
    with torch.no_grad():
        tf.li_run_(c.clone(), tf.LIState(m0), tf.LIParams(beta))  # under no_grad: fused
    assert _fused() == before + 4


def test_compile_failure_warns_once_and_keeps_the_pytorch_form(compile_backend, monkeypatch):
    def broken(name):
        def fail(*args):
            raise RuntimeError("no compiler")

        return fail

    monkeypatch.setattr(_compiled, "_compiled", broken)
    monkeypatch.setitem(_compiled._state, "failed", None)
    c, m0 = torch.randn(9, 2, 3, dtype=f64), torch.randn(2, 3, dtype=f64)
    params = tf.LIFParams(torch.full((3,), 0.9, dtype=f64), 0.5)
    with torch.no_grad():
        ref_out, ref_state = tf.run(tf.lif_step, c, tf.LIFState(m0), params)
        with pytest.warns(RuntimeWarning, match="no compiler"):
            out, state = tf.lif_run_(c.clone(), tf.LIFState(m0), params)
        assert torch.equal(out, ref_out) and torch.equal(state.membrane, ref_state.membrane)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once: the backend is off from now on
            tf.lif_run_(c.clone(), tf.LIFState(m0), params)
    assert "no compiler" in _compiled.available()
    monkeypatch.setitem(_compiled._state, "failed", None)  # for the fixture's final check


def test_compile_recompile_limit_runs_that_call_eagerly(compile_backend, monkeypatch):
    class FailOnRecompileLimitHit(Exception):  # dynamo's name for it
        pass

    def limited(name):
        def fail(*args):
            raise FailOnRecompileLimitHit("recompile_limit reached")

        return fail

    monkeypatch.setattr(_compiled, "_compiled", limited)
    c, m0 = torch.randn(9, 2, 3, dtype=f64), torch.randn(2, 3, dtype=f64)
    params = tf.LIFParams(torch.full((3,), 0.9, dtype=f64), 0.5)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the backend stays on
        ref_out, ref_state = tf.run(tf.lif_step, c, tf.LIFState(m0), params)
        out, state = tf.lif_run_(c.clone(), tf.LIFState(m0), params)
    assert torch.equal(out, ref_out) and torch.equal(state.membrane, ref_state.membrane)
    assert _compiled.available() is None


# ----------------------------------------------------------------------------- triton backend
@pytest.fixture
def triton_backend(monkeypatch):
    """The Triton kernels for one test: on CUDA where there is one, else in the interpreter."""
    pytest.importorskip("triton")
    if not torch.cuda.is_available():
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        monkeypatch.setattr(_triton, "_kernels", {})  # rebuilt under the interpreter
    previous = tf.get_backend()
    tf.set_backend("triton")
    yield torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tf.set_backend(previous)


@pytest.mark.parametrize("dtype", [torch.float32, f64])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_triton_kernels_equal_the_reference(triton_backend, dtype, reset):
    device = triton_backend
    c = (torch.randn(13, 3, 5, dtype=dtype) * 0.6 + 0.3).to(device)
    beta = (torch.rand(5, dtype=dtype) * 0.5 + 0.45).to(device)
    m0 = torch.randn(3, 5, dtype=dtype, device=device)
    cases = [
        (tf.lif_step, tf.lif_run_, tf.LIFState(m0), tf.LIFParams(beta, 1.0, reset=reset)),
        (tf.li_step, tf.li_run_, tf.LIState(m0), tf.LIParams(beta[0])),  # shared beta
    ]
    for step, run_, state, params in cases:
        with torch.no_grad():
            with tf.backend("torch"):
                ref_out, ref_state = tf.run(step, c, state, params)
            before, buf = _triton.launches, c.clone()
            out, new_state = run_(buf, state, params)
        assert _triton.launches == before + 1, step.__name__  # one kernel for the chunk
        assert out is buf
        torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(new_state.membrane, ref_state.membrane, rtol=1e-6, atol=1e-6)
        assert torch.equal(state.membrane, m0)  # the state passed in is not modified


def test_triton_backend_network_and_fallbacks(triton_backend):
    device = triton_backend
    x, y = _spikes(12, 4, 6).to(device), torch.tensor([0, 1, 2, 1], device=device)
    a = _net().to(device)
    b = _twin(a)
    with tf.backend("torch"):
        ref = _trace_grads(b, x, y, per_step=False)
    before = _triton.launches
    got = _trace_grads(a, x, y, per_step=False)
    assert _triton.launches >= before + 3  # each layer's chunk ran as one kernel
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-9, atol=1e-12, msg=name)
    # per-element beta: not a kernel case, the PyTorch form runs (same values)
    c, m0 = torch.randn(6, 3, 4, device=device), torch.randn(3, 4, device=device)
    lif = tf.LIFParams(torch.rand(3, 4, device=device) * 0.5 + 0.4, 0.5)
    before = _triton.launches
    out, state = tf.lif_run_(c.clone(), tf.LIFState(m0), lif)
    ref_out, ref_state = tf.run(tf.lif_step, c, tf.LIFState(m0), lif)
    assert torch.equal(out, ref_out) and torch.equal(state.membrane, ref_state.membrane)
    assert _triton.launches == before


def test_triton_backend_says_why_it_cannot_run(monkeypatch):
    monkeypatch.setattr(_triton, "available", lambda: "the triton package is not installed")
    with pytest.raises(RuntimeError, match="triton package"):
        tf.set_backend("triton")


# ----------------------------------------------------------------------------- devices
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["trace", "bptt"])
def test_cuda_matches_cpu(mode):
    cpu = _net()
    gpu = _twin(cpu).cuda()
    tt.learning.set_learning(cpu, mode)
    tt.learning.set_learning(gpu, mode)
    x, y = _spikes(40, 4, 6), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-9, atol=1e-9)
    ref = _trace_grads(cpu, x, y, per_step=False)
    got = _trace_grads(gpu, x.cuda(), y.cuda(), per_step=False)
    for name in ref:
        torch.testing.assert_close(got[name].cpu(), ref[name], rtol=1e-9, atol=1e-9, msg=name)
    gpu.reset_states()
    with torch.no_grad():
        steps = torch.stack([gpu(x_t) for x_t in x.cuda()])
        gpu.reset_states()
        torch.testing.assert_close(gpu(x.cuda()), steps, rtol=1e-9, atol=1e-9)
