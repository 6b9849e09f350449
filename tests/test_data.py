"""Bundled tasks: shapes, label balance, reproducibility, streaming, argument errors."""

from __future__ import annotations

import sys

import pytest
import torch

import tracetorch as tt
from tracetorch.data import Digits, Evidence, SpikeStream, YinYang
from tracetorch.data.base import _GOLDEN, _mix_int, _signed, counter_uniform, stream_key


# ---------------------------------------------------------------------- counter RNG
def test_counter_uniform_matches_python_splitmix():
    """The int64 tensor arithmetic wraps like unsigned 64-bit splitmix64."""
    key = stream_key(3, "x")
    ids = torch.tensor([0, 5, 123456])
    u = counter_uniform(key, ids, 7, 9, 3)
    mask = (1 << 64) - 1
    for ti, t in enumerate((7, 8)):
        for b, sample in enumerate(ids.tolist()):
            base = _mix_int((sample * _GOLDEN + key) & mask)
            for f in range(3):
                z = _mix_int((base + (t * 3 + f) * _GOLDEN) & mask)
                expected = ((z >> 40) & 0xFFFFFF) / 2**24
                assert u[ti, b, f].item() == pytest.approx(expected, abs=0)
    assert _signed(1 << 63) < 0


def test_counter_uniform_is_uniform_and_keyed():
    u = counter_uniform(stream_key(0), torch.arange(64), 0, 100, 10)
    assert u.shape == (100, 64, 10)
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01
    assert abs(u.var().item() - 1 / 12) < 0.005
    v = counter_uniform(stream_key(1), torch.arange(64), 0, 100, 10)
    assert not torch.equal(u, v)
    # a sample's numbers do not depend on the other samples in the batch
    w = counter_uniform(stream_key(0), torch.tensor([5]), 0, 100, 10)
    assert torch.equal(w[:, 0], u[:, 5])


# ---------------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits():
    return Digits(steps=8, seed=0)


def test_load_digits_signature_and_split():
    x_tr, y_tr, x_te, y_te = tt.data.load_digits(test_fraction=0.25, seed=0)
    assert x_tr.shape[1] == 64 and len(x_tr) + len(x_te) == 1797
    assert 0 <= x_tr.min() and x_tr.max() <= 1
    # stratified: every class holds out about a quarter
    for c in range(10):
        n_te, n_all = int((y_te == c).sum()), int((y_tr == c).sum() + (y_te == c).sum())
        assert abs(n_te - 0.25 * n_all) <= 1


def test_digits_shapes_and_values(digits):
    x, y = next(digits.batches("train", batch_size=16))
    assert x.shape == (8, 16, 64) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert digits.n_inputs == 64 and digits.n_classes == 10
    sizes = [len(y) for _, y in digits.batches("test", batch_size=100)]
    assert sum(sizes) == digits.num_samples("test") == 450
    assert len(sizes) == digits.num_batches("test", 100)


def test_digits_spike_rate_follows_intensity():
    task = Digits(steps=400, seed=0)
    x, _ = next(task.batches("test", batch_size=8, shuffle=False))
    intensity = task.features("test")[0][:8]
    assert torch.allclose(x.mean(0), intensity, atol=0.08)


def test_digits_label_balance(digits):
    y = torch.cat([y for _, y in digits.batches("train", batch_size=500)])
    counts = torch.bincount(y, minlength=10).float()
    assert counts.min() / counts.max() > 0.9


def test_digits_reproducible_and_independent_of_batching(digits):
    again = Digits(steps=8, seed=0)
    a = list(digits.batches("train", batch_size=32, epoch=3))
    b = list(again.batches("train", batch_size=32, epoch=3))
    assert all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )
    # the same sample gets the same spikes whatever the batch size
    x8, _ = next(digits.batches("test", batch_size=8))
    x3 = torch.cat([x for x, _ in list(digits.batches("test", batch_size=3))[:3]], dim=1)
    assert torch.equal(x8, x3[:, :8])
    # train spikes and order are redrawn each epoch, test spikes are fixed
    xa, _ = next(digits.batches("train", batch_size=32, epoch=0, shuffle=False))
    xb, _ = next(digits.batches("train", batch_size=32, epoch=1, shuffle=False))
    assert not torch.equal(xa, xb)
    ta, _ = next(digits.batches("test", batch_size=32, epoch=0))
    tb, _ = next(digits.batches("test", batch_size=32, epoch=5))
    assert torch.equal(ta, tb)


def test_digits_drop_last_and_errors(digits):
    assert all(len(y) == 100 for _, y in digits.batches("test", 100, drop_last=True))
    with pytest.raises(ValueError, match="split"):
        next(digits.batches("valid"))
    with pytest.raises(ValueError, match="batch_size"):
        next(digits.batches("train", batch_size=0))
    with pytest.raises(TypeError, match="batch_size"):
        next(digits.batches("train", batch_size=2.5))
    with pytest.raises(ValueError, match="steps"):
        Digits(steps=0)
    with pytest.raises(ValueError, match="max_prob"):
        Digits(max_prob=1.5)


def test_digits_needs_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"tracetorch\[examples\]"):
        tt.data.load_digits()


# ---------------------------------------------------------------------- evidence
def small_evidence(**kw) -> Evidence:
    kw = {"delay": 50, "listen": 40, "recall": 10, "train_size": 256, "test_size": 64} | kw
    return Evidence(**kw)


def test_evidence_shapes_and_stream():
    task = small_evidence()
    x, y = next(task.batches("train", batch_size=16))
    assert isinstance(x, SpikeStream)
    assert x.shape == (100, 16, 25) and task.steps == 100 and task.n_inputs == 25
    assert y.shape == (16,) and y.dtype == torch.int64 and set(y.tolist()) <= {0, 1}
    whole = x.tensor()
    assert whole.shape == (100, 16, 25)
    for size in (1, 7, 100, 1000):
        chunks = list(x.chunks(size))
        assert all(c.shape[0] <= size for c in chunks)
        assert torch.equal(torch.cat(chunks), whole)


def test_evidence_phases_and_labels():
    task = small_evidence(background=0.02, cue_rate=0.5, test_size=512)
    x, y = next(task.batches("test", batch_size=512))
    s = x.tensor()
    g = task.group_size
    listen, delay, recall = (s[a:b] for a, b in task.phases.values())
    # labels: the group that spiked more while listening
    counts = torch.stack([listen[:, :, :g].sum((0, 2)), listen[:, :, g : 2 * g].sum((0, 2))], 1)
    clear = counts[:, 0] != counts[:, 1]
    assert torch.equal(y[clear], counts[clear].argmax(1))
    # the delay carries background only; the cue fires during the recall only
    assert abs(delay.mean().item() - 0.02) < 0.004
    assert abs(listen[:, :, 2 * g :].mean().item() - 0.02) < 0.006
    assert recall[:, :, 2 * g :].mean() > 0.45
    # the faster group is group 0 in exactly half of the trials of a split
    rates = task.trial_rates("test", torch.arange(512))
    assert int((rates[:, 0] > rates[:, 1]).sum()) == 256


def test_evidence_label_balance():
    task = small_evidence(train_size=1024)
    y = torch.cat([y for _, y in task.batches("train", batch_size=256)])
    assert abs(y.float().mean().item() - 0.5) < 0.05


def test_evidence_reproducible_and_independent_of_delay():
    a, b = small_evidence(seed=1), small_evidence(seed=1)
    (xa, ya), (xb, yb) = next(a.batches("test", 8)), next(b.batches("test", 8))
    assert torch.equal(xa.tensor(), xb.tensor()) and torch.equal(ya, yb)
    # the same trials with a longer delay: same clicks, same labels
    c = small_evidence(seed=1, delay=500)
    xc, yc = next(c.batches("test", 8))
    assert torch.equal(yc, ya)
    assert torch.equal(next(xc.chunks(40)), next(xa.chunks(40)))
    # new trials each train epoch
    _, y0 = next(a.batches("train", 256, epoch=0, shuffle=False))
    _, y1 = next(a.batches("train", 256, epoch=1, shuffle=False))
    assert not torch.equal(y0, y1)


def test_evidence_streams_a_delay_of_100k_steps():
    task = Evidence(delay=100_000, test_size=2, chunk_size=5000)
    x, y = next(task.batches("test", batch_size=2))
    assert x.shape == (100_120, 2, 25)
    steps = peak = spikes = 0
    for chunk in x:  # never more than one chunk in memory
        steps += chunk.shape[0]
        peak = max(peak, chunk.shape[0])
        spikes += chunk.sum().item()
    assert steps == 100_120 and peak == 5000
    assert abs(spikes / (steps * 2 * 25) - 0.01) < 0.002


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"delay": -1}, "delay"),
        ({"delay": 1.5}, "delay"),
        ({"listen": 0}, "listen"),
        ({"click_rate": 0.0}, "click_rate"),
        ({"click_rate": 0.6, "contrast": (0.2, 0.8)}, "click_rate"),
        ({"contrast": (0.8, 0.2)}, "contrast"),
        ({"background": 2.0}, "background"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_evidence_argument_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Evidence(**kwargs)


# ---------------------------------------------------------------------- yin-yang
def test_make_yinyang_balanced_and_consistent():
    x, y = tt.data.make_yinyang(3000, seed=0)
    assert x.shape == (3000, 4) and y.shape == (3000,)
    assert 0 <= x.min() and x.max() <= 1
    assert torch.allclose(x[:, 0] + x[:, 2], torch.ones(3000))
    counts = torch.bincount(y, minlength=3).float() / 3000
    assert (counts - 1 / 3).abs().max() < 0.03
    # every point is in the disc and labelled by the geometry
    r = torch.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5)
    assert (r <= 0.5).all()
    labels = tt.data.yinyang_class(x[:, 0].double().numpy(), x[:, 1].double().numpy())
    assert (torch.from_numpy(labels) == y).float().mean() > 0.999
    assert tt.data.yinyang_class(0.75, 0.5) == 2 and tt.data.yinyang_class(0.25, 0.5) == 2
    assert torch.equal(tt.data.make_yinyang(50, seed=0)[0], tt.data.make_yinyang(50, seed=0)[0])


@pytest.mark.parametrize("encoding", ["rate", "latency"])
def test_yinyang_task(encoding):
    task = YinYang(steps=20, encoding=encoding, train_size=200, test_size=100)
    x, y = next(task.batches("train", batch_size=32))
    assert x.shape == (20, 32, 4) and y.shape == (32,)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    if encoding == "latency":
        assert (x.sum(0) <= 1).all()
    again = YinYang(steps=20, encoding=encoding, train_size=200, test_size=100)
    assert torch.equal(next(again.batches("train", batch_size=32))[0], x)
    with pytest.raises(ValueError, match="encoding"):
        YinYang(encoding="phase")


def test_get_task():
    assert isinstance(tt.data.get_task("evidence", delay=3), Evidence)
    assert sorted(tt.data.TASKS) == ["digits", "evidence", "order", "seqdigits", "yinyang"]
    with pytest.raises(ValueError, match="unknown task 'mnist'"):
        tt.data.get_task("mnist")
