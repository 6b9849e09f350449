"""Temporal tasks: TemporalOrder (timing only), SequentialDigits (row by row), Digits images."""

from __future__ import annotations

import pytest
import torch

import tracetorch as tt
from tracetorch.data import Digits, SequentialDigits, TemporalOrder


def batch_list(task, split, batch_size, **kw):
    return list(task.batches(split, batch_size, **kw))


def cat_batches(task, split, batch_size, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = batch_list(task, split, batch_size, **kw)
    return torch.cat([x for x, _ in pairs], dim=1), torch.cat([y for _, y in pairs])


# ---------------------------------------------------------------------- temporal order
@pytest.fixture(scope="module")
def order() -> TemporalOrder:
    return TemporalOrder(train_size=256, test_size=2000, seed=0)


def test_order_shapes_and_channels(order):
    x, y = next(order.batches("train", batch_size=16))
    assert x.shape == (100, 16, 8) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert set(x.unique().tolist()) <= {0.0, 1.0} and set(y.tolist()) <= {0, 1}
    assert order.n_inputs == 8 and order.n_classes == 2 and order.steps == 100
    assert order.input_shape == (8,) and order.target_from == 95
    assert order.channel_groups == {
        "cue A": range(0, 2),
        "cue B": range(2, 4),
        "noise": range(4, 8),
    }
    assert TemporalOrder(cue_channels=3, noise_channels=0).n_inputs == 6


def test_order_onsets_in_range_and_label_is_their_order(order):
    ids = torch.arange(order.test_size)
    on = order.onsets("test", ids)
    assert on.shape == (2000, 2) and on.dtype == torch.int64
    gap = (on[:, 0] - on[:, 1]).abs()
    assert (on >= 0).all() and (on + order.burst <= order.steps).all()
    assert gap.min() == order.min_gap and gap.max() == order.max_gap  # both ends are drawn
    assert on.min() == 0 and on.max() == order.steps - order.burst
    _, y = cat_batches(order, "test", 500)  # unshuffled: sample i is row i
    assert torch.equal(y, (on[:, 1] < on[:, 0]).long())
    assert int(y.sum()) == 1000  # exactly balanced


def test_order_classes_are_mirror_images(order):
    """(o_A, o_B) given y = 1 has the law of (o_B, o_A) given y = 0 (compare the moments)."""
    on = order.onsets("test", torch.arange(order.test_size)).double()
    _, y = cat_batches(order, "test", 2000)
    a0, b0 = on[y == 0].T
    a1, b1 = on[y == 1].T
    assert abs(a0.mean() - b1.mean()) < 3 and abs(b0.mean() - a1.mean()) < 3
    assert abs(a0.std() - b1.std()) < 3 and abs(b0.std() - a1.std()) < 3
    assert a0.mean() < b0.mean() - 15  # the first cue is early: the moments do differ


def test_order_bursts_without_noise_are_exact():
    task = TemporalOrder(burst_rate=1.0, noise_rate=0.0, cue_channels=2, test_size=64)
    x, y = next(task.batches("test", batch_size=64))
    on = task.onsets("test", torch.arange(64))
    t = torch.arange(task.steps).view(-1, 1)
    for group, cue in ((0, slice(0, 2)), (1, slice(2, 4))):
        window = ((t >= on[:, group]) & (t < on[:, group] + task.burst)).float()  # [T, B]
        assert torch.equal(x[:, :, cue], window.unsqueeze(2).expand(-1, -1, 2))
    assert x[:, :, 4:].sum() == 0
    assert (x.sum(0)[:, :4] == task.burst).all()  # one burst per cue in every trial


def test_order_spike_rates(order):
    x, _ = next(order.batches("test", batch_size=2000))
    on = order.onsets("test", torch.arange(2000))
    t = torch.arange(order.steps).view(-1, 1)
    in_a = (t >= on[:, 0]) & (t < on[:, 0] + order.burst)  # [T, B]
    cue_a = x[:, :, :2].mean(2)
    assert abs(cue_a[in_a].mean().item() - (1 - 0.2 * 0.98)) < 0.02
    assert abs(cue_a[~in_a].mean().item() - 0.02) < 0.003
    assert abs(x[:, :, 4:].mean().item() - 0.02) < 0.003


def _nearest_mean_accuracy(f_train, y_train, f_test, y_test) -> float:
    means = torch.stack([f_train[y_train == c].mean(0) for c in (0, 1)])
    pred = torch.cdist(f_test, means).argmin(1)
    return (pred == y_test).double().mean().item()


def _logistic_accuracy(f_train, y_train, f_test, y_test) -> float:
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-9
    a, b = (f_train - mu) / sd, (f_test - mu) / sd
    lin = torch.nn.Linear(a.shape[1], 1, dtype=torch.float64)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            lin(a).squeeze(1), y_train.double()
        )
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (lin(b).squeeze(1) > 0).long()
    return (pred == y_test).double().mean().item()


def test_order_spike_counts_carry_no_information(order):
    """A classifier of each channel's spike count over the trial is at chance; the same
    classifiers on when each cue was most active (the peak of its spikes summed over a
    window of ``burst`` steps) are near perfect."""
    x, y = next(order.batches("test", batch_size=2000))
    counts = x.sum(0).double()  # [2000, 8]
    groups = torch.stack([x[:, :, :2].sum(2), x[:, :, 2:4].sum(2)], dim=2)  # [T, B, 2]
    windowed = groups.unfold(0, order.burst, 1).sum(-1)  # [T - burst + 1, B, 2]
    timing = windowed.argmax(0).double()  # [2000, 2]: estimated onsets of A and B
    half = 1000
    for classify in (_nearest_mean_accuracy, _logistic_accuracy):
        chance = classify(counts[:half], y[:half], counts[half:], y[half:])
        assert chance < 0.6, classify.__name__
        timed = classify(timing[:half], y[:half], timing[half:], y[half:])
        assert timed > 0.95, classify.__name__


def test_order_reproducible_and_independent_of_batching(order):
    x8, y8 = next(order.batches("test", batch_size=8))
    x3, y3 = cat_batches(order, "test", 3)
    assert torch.equal(x8, x3[:, :8]) and torch.equal(y8, y3[:8])
    again = TemporalOrder(train_size=256, test_size=2000, seed=0)
    xa, ya = next(order.batches("train", batch_size=32, epoch=4))
    xb, yb = next(again.batches("train", batch_size=32, epoch=4))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # train trials are redrawn each epoch, test trials are fixed; another seed, other trials
    ids = torch.arange(256)
    assert not torch.equal(order.onsets("train", ids, 0), order.onsets("train", ids, 1))
    assert torch.equal(order.onsets("test", ids, 0), order.onsets("test", ids, 7))
    t0, _ = next(order.batches("test", batch_size=16, epoch=0))
    t7, _ = next(order.batches("test", batch_size=16, epoch=7))
    assert torch.equal(t0, t7)
    other = TemporalOrder(train_size=256, test_size=16, seed=1)
    assert not torch.equal(other.onsets("test", ids[:16]), order.onsets("test", ids[:16]))
    fixed = TemporalOrder(train_size=256, resample=False)
    assert torch.equal(fixed.onsets("train", ids, 0), fixed.onsets("train", ids, 3))


def test_order_label_balance_every_epoch(order):
    for epoch in (0, 1):
        _, y = cat_batches(order, "train", 100, epoch=epoch)
        assert int(y.sum()) == 128


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"min_gap": 30, "max_gap": 20}, ValueError, "min_gap must be <= max_gap"),
        ({"max_gap": 96}, ValueError, "max_gap \\+ burst must be <= steps"),
        ({"steps": 40}, ValueError, "max_gap \\+ burst"),
        ({"burst": 0}, ValueError, "burst"),
        ({"burst": 2.5}, TypeError, "burst"),
        ({"min_gap": 0}, ValueError, "min_gap"),
        ({"burst_rate": 0.0}, ValueError, "burst_rate"),
        ({"noise_rate": 1.5}, ValueError, "noise_rate"),
        ({"cue_channels": 0}, ValueError, "cue_channels"),
        ({"noise_channels": -1}, ValueError, "noise_channels"),
        ({"train_size": "10"}, TypeError, "train_size"),
    ],
)
def test_order_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        TemporalOrder(**kwargs)


# ---------------------------------------------------------------------- sequential digits
@pytest.fixture(scope="module")
def seq() -> SequentialDigits:
    pytest.importorskip("sklearn")
    return SequentialDigits(steps_per_row=3, blank_steps=5, seed=0)


def test_seqdigits_shapes_and_row_order(seq):
    x, y = next(seq.batches("test", batch_size=16, shuffle=False))
    assert seq.steps == 29 and seq.n_inputs == 8 and seq.n_classes == 10
    assert seq.input_shape == (8,) and seq.target_from == 21
    assert x.shape == (29, 16, 8) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    images, labels = seq.features("test")
    assert torch.equal(y, labels[:16])
    for i in (0, 7, 15):
        image = images[i].view(8, 8)
        for r in range(8):
            for j in range(3):  # row r is held for steps_per_row steps
                assert torch.equal(x[r * 3 + j, i], image[r])
    assert x[24:].abs().sum() == 0  # the blank steps
    assert torch.equal(x[:24].permute(1, 0, 2)[:, ::3].reshape(16, 64), images[:16])


def test_seqdigits_same_split_as_digits(seq):
    flat = Digits(steps=2, seed=0)
    for split in ("train", "test"):
        assert torch.equal(seq.features(split)[0], flat.features(split)[0])
        assert torch.equal(seq.features(split)[1], flat.features(split)[1])
    _, ys = next(seq.batches("train", batch_size=64, epoch=2))
    _, yf = next(flat.batches("train", batch_size=64, epoch=2))
    assert torch.equal(ys, yf)  # the same sample order too


def test_seqdigits_current_is_deterministic(seq):
    a, _ = next(seq.batches("train", batch_size=32, epoch=0, shuffle=False))
    b, _ = next(seq.batches("train", batch_size=32, epoch=5, shuffle=False))
    assert torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    assert len(a.unique()) > 2  # analog, not spikes


def test_seqdigits_rate_code():
    pytest.importorskip("sklearn")
    task = SequentialDigits(steps_per_row=200, encoding="rate", max_prob=0.5)
    x, _ = next(task.batches("test", batch_size=4, shuffle=False))
    assert x.shape == (1600, 4, 8) and set(x.unique().tolist()) == {0.0, 1.0}
    v = task.intensities("test", torch.arange(4))  # [1600, 4, 8]
    assert torch.equal(v, SequentialDigits(steps_per_row=200).intensities("test", torch.arange(4)))
    assert x[v == 0].sum() == 0  # a black pixel never spikes
    rate = x.view(8, 200, 4, 8).mean(1)  # per row
    assert torch.allclose(rate, 0.5 * v[::200], atol=0.12)
    # train spikes redrawn each epoch, test spikes fixed, independent of the batch size
    small = SequentialDigits(steps_per_row=2, encoding="rate")
    a, _ = next(small.batches("train", batch_size=32, epoch=0, shuffle=False))
    b, _ = next(small.batches("train", batch_size=32, epoch=1, shuffle=False))
    assert not torch.equal(a, b)
    t0, _ = next(small.batches("test", batch_size=8, epoch=0))
    t3, _ = cat_batches(small, "test", 3, epoch=3)
    assert torch.equal(t0, t3[:, :8])


def test_seqdigits_label_balance(seq):
    _, y = cat_batches(seq, "train", 500)
    counts = torch.bincount(y, minlength=10).float()
    assert counts.min() / counts.max() > 0.9


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"encoding": "phase"}, ValueError, "encoding must be one of"),
        ({"encoding": 1}, TypeError, "encoding"),
        ({"steps_per_row": 0}, ValueError, "steps_per_row"),
        ({"steps_per_row": 1.0}, TypeError, "steps_per_row"),
        ({"blank_steps": -1}, ValueError, "blank_steps"),
        ({"max_prob": 0.0}, ValueError, "max_prob"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction"),
    ],
)
def test_seqdigits_argument_errors(kwargs, error, match):
    pytest.importorskip("sklearn")
    with pytest.raises(error, match=match):
        SequentialDigits(**kwargs)


# ---------------------------------------------------------------------- digits as images
def test_digits_image_layout_is_the_flat_spikes_reshaped():
    pytest.importorskip("sklearn")
    flat, image = Digits(steps=6, seed=3), Digits(steps=6, seed=3, layout="image")
    assert flat.input_shape == (64,) and image.input_shape == (1, 8, 8)
    assert image.n_inputs == 64 and image.describe()["layout"] == "image"
    assert "layout" not in flat.describe()  # older checkpoints' task settings still match
    assert repr(image).endswith("layout='image')")
    for split, epoch in (("train", 2), ("test", 0)):
        xf, yf = next(flat.batches(split, batch_size=16, epoch=epoch))
        xi, yi = next(image.batches(split, batch_size=16, epoch=epoch))
        assert xi.shape == (6, 16, 1, 8, 8) and torch.equal(yi, yf)
        assert torch.equal(xi.flatten(2), xf)
    # pixel (r, c) of the image is channel 8 r + c: the spike rates show the picture
    dense = Digits(steps=300, seed=3, layout="image")
    x, _ = next(dense.batches("test", batch_size=2, shuffle=False))
    picture = dense.features("test")[0][:2].view(2, 1, 8, 8)
    assert torch.allclose(x.mean(0), picture, atol=0.1)


@pytest.mark.parametrize("layout, error", [("grid", ValueError), (None, TypeError)])
def test_digits_layout_errors(layout, error):
    pytest.importorskip("sklearn")
    with pytest.raises(error, match="layout"):
        Digits(layout=layout)


# ---------------------------------------------------------------------- every task
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("digits", {"steps": 3}),
        ("digits", {"steps": 3, "layout": "image"}),
        ("seqdigits", {}),
        ("evidence", {"delay": 5, "listen": 5, "recall": 2, "test_size": 8}),
        ("order", {"test_size": 8}),
        ("yinyang", {"steps": 3, "train_size": 8, "test_size": 8}),
    ],
)
def test_input_shape_of_every_task(name, kwargs):
    if "digits" in name:
        pytest.importorskip("sklearn")
    task = tt.data.get_task(name, **kwargs)
    assert type(task) is tt.data.TASKS[name] and task.name == name
    x, y = next(task.batches("test", batch_size=4))
    shape = x.shape if not isinstance(x, tt.data.SpikeStream) else x.tensor().shape
    assert tuple(shape[2:]) == task.input_shape
    assert tuple(shape[:2]) == (task.steps, 4) and y.shape == (4,)
    assert torch.Size(task.input_shape).numel() == task.n_inputs
    assert repr(task).startswith(type(task).__name__ + "(")
