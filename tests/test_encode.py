"""Encoders: rate (Bernoulli), Poisson, latency, delta."""

from __future__ import annotations

import pytest
import torch

from tracetorch import encode


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- rate
def test_rate_shape_values_and_mean():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    s = encode.rate(x, 4000, generator=gen())
    assert s.shape == (4000, 1, 4) and s.dtype == x.dtype
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(s.mean(0), x, atol=0.03)
    assert s[:, 0, 0].sum() == 0 and s[:, 0, 3].sum() == 4000
    half = encode.rate(x, 4000, max_prob=0.5, generator=gen())
    assert torch.allclose(half.mean(0), x / 2, atol=0.03)


def test_rate_reproducible():
    x = torch.rand(3, 5)
    assert torch.equal(encode.rate(x, 10, generator=gen(1)), encode.rate(x, 10, generator=gen(1)))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: encode.rate(torch.tensor([[2.0]]), 3), ValueError, r"\[0, 1\]"),
        (lambda: encode.rate(torch.tensor([[1]]), 3), TypeError, "floating"),
        (lambda: encode.rate(torch.rand(2, 2), 0), ValueError, "steps"),
        (lambda: encode.rate(torch.rand(2, 2), 3, max_prob=0.0), ValueError, "max_prob"),
        (lambda: encode.poisson(torch.rand(2, 2), 3, max_rate=0.0), ValueError, "max_rate"),
        (lambda: encode.poisson(torch.rand(2, 2), True), ValueError, "steps"),
    ],
)
def test_rate_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------- poisson
def test_poisson_counts():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    s = encode.poisson(x, 5000, max_rate=2.0, generator=gen())
    assert s.shape == (5000, 1, 3)
    assert torch.equal(s, s.round()) and (s >= 0).all()
    assert torch.allclose(s.mean(0), 2 * x, atol=0.08)
    assert torch.allclose(s.var(0), 2 * x, atol=0.15)  # Poisson: variance = mean
    assert s.max() > 1  # several spikes in a step are allowed
    assert torch.equal(s, encode.poisson(x, 5000, max_rate=2.0, generator=gen()))


# ---------------------------------------------------------------------- latency
def test_latency_linear():
    x = torch.tensor([[1.0, 0.5, 0.1, 0.0]])
    s = encode.latency(x, 11)
    assert s.shape == (11, 1, 4)
    assert s.sum(0).tolist() == [[1.0, 1.0, 1.0, 0.0]]  # x = 0 stays silent
    assert s[:, 0, :3].argmax(0).tolist() == [0, 5, 9]
    quiet = encode.latency(x, 11, threshold=0.2)
    assert quiet.sum(0).tolist() == [[1.0, 1.0, 0.0, 0.0]]


def test_latency_log_is_monotone():
    x = torch.linspace(0.01, 1.0, 50).unsqueeze(0)
    s = encode.latency(x, 30, method="log")
    assert (s.sum(0) == 1).all()
    t = s[:, 0].argmax(0)
    assert t[-1] == 0 and t[0] == 29
    assert (t[1:] <= t[:-1]).all()  # larger values spike no later


def test_latency_errors():
    with pytest.raises(ValueError, match="method"):
        encode.latency(torch.rand(2, 2), 5, method="exp")
    with pytest.raises(ValueError, match="tau"):
        encode.latency(torch.rand(2, 2), 5, method="log", tau=-1.0)
    with pytest.raises(ValueError, match="tau"):
        encode.latency(torch.rand(2, 2), 5, tau=2.0)
    with pytest.raises(ValueError, match="threshold"):
        encode.latency(torch.rand(2, 2), 5, threshold=1.0)


# ---------------------------------------------------------------------- delta
def test_delta_docstring_example():
    sig = torch.tensor([0.0, 0.05, 0.2, 0.2, 0.0]).view(5, 1, 1)
    out = encode.delta(sig, 0.1)
    assert out[:, 0].tolist() == [[0, 0], [0, 0], [1, 0], [0, 0], [0, 1]]


def test_delta_onset_drift_and_shapes():
    const = torch.full((10, 2, 3), 0.5)
    on = encode.delta(const, 0.1, off=False)
    assert on.shape == (10, 2, 3)
    assert on[0].sum() == 6 and on[1:].sum() == 0  # onset only, then silent
    ramp = torch.linspace(0, 1, 101).view(101, 1, 1)
    events = encode.delta(ramp, 0.1)
    assert events.shape == (101, 1, 2)
    assert int(events[..., 0].sum()) in (9, 10) and events[..., 1].sum() == 0  # one per 0.1
    start = encode.delta(const, 0.1, reference=torch.full((3,), 0.5))
    assert start.sum() == 0


def test_delta_errors():
    with pytest.raises(ValueError, match="threshold"):
        encode.delta(torch.rand(5, 2), 0.0)
    with pytest.raises(ValueError, match="sequence"):
        encode.delta(torch.rand(5), 0.1)
    with pytest.raises(TypeError, match="floating"):
        encode.delta(torch.ones(5, 2, dtype=torch.long), 0.1)


# ---------------------------------------------------------------------- non-finite input
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize(
    "encoder",
    [
        lambda x: encode.rate(x, 5),
        lambda x: encode.poisson(x, 5),
        lambda x: encode.latency(x, 5),
        lambda x: encode.latency(x, 5, method="log"),
        lambda x: encode.delta(x.view(2, 1, 1)),
    ],
    ids=["rate", "poisson", "latency", "latency-log", "delta"],
)
def test_encoders_reject_nan_and_inf_naming_the_argument(encoder, bad):
    # NaN fails every comparison, so a [0, 1] range check alone lets it through.
    with pytest.raises(ValueError, match=r"^x must be finite, got 1 NaN or infinite"):
        encoder(torch.tensor([[bad, 0.5]]))


def test_delta_rejects_a_nan_reference():
    with pytest.raises(ValueError, match="^reference must be finite"):
        encode.delta(torch.zeros(3, 1, 2), reference=torch.tensor([NAN, 0.0]))
