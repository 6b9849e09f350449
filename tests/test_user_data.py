"""Data a user brings: tt.data.ArrayTask, .npz files (memory-mapped) and ``tracetorch train
--data PATH.npz``."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

import tracetorch as tt
from tracetorch import cli
from tracetorch.data import ArrayTask, DataError, load_npz


def _arrays(n=60, steps=6, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, steps, features)).astype(np.float32)
    y = np.arange(n) % classes
    return x, y


def _all(task, split, batch_size=7):
    xs, ys = zip(*task.batches(split, batch_size, shuffle=False), strict=True)
    return torch.cat(xs, dim=1), torch.cat(ys)


def test_batches_are_the_samples_time_first_and_split_stratified():
    x, y = _arrays()
    task = ArrayTask(x, y, test_fraction=0.25, seed=3)
    assert (task.n_inputs, task.n_classes, task.steps, task.input_shape) == (5, 3, 6, (5,))
    train_rows, test_rows = task._data["train"][1], task._data["test"][1]
    assert sorted([*train_rows, *test_rows]) == list(range(60))  # disjoint, complete
    assert np.bincount(y[test_rows]).tolist() == [5, 5, 5]  # 25 % of each class
    for split, rows in (("train", train_rows), ("test", test_rows)):
        xb, yb = _all(task, split)
        assert xb.dtype == torch.float32 and yb.dtype == torch.int64
        assert torch.equal(xb, torch.from_numpy(x[rows]).transpose(0, 1))
        assert torch.equal(yb, torch.from_numpy(y[rows]))
    # the split and the training order are seeded
    again = ArrayTask(x, y, test_fraction=0.25, seed=3)
    assert np.array_equal(again._data["test"][1], test_rows)
    other = ArrayTask(x, y, test_fraction=0.25, seed=4)
    assert not np.array_equal(other._data["test"][1], test_rows)
    first = [b[1] for b in task.batches("train", 8, epoch=1)]
    assert all(
        torch.equal(a, b)
        for a, b in zip(first, [b[1] for b in again.batches("train", 8, epoch=1)], strict=True)
    )
    assert not all(
        torch.equal(a, b)
        for a, b in zip(first, [b[1] for b in task.batches("train", 8, epoch=2)], strict=True)
    )


@pytest.mark.parametrize(
    "dtype, values",
    [(np.bool_, [False, True]), (np.uint8, [0, 1, 3]), (np.float16, [0.0, 0.5, 1.0])],
)
def test_spike_and_count_dtypes_become_float32(dtype, values):
    x, y = _arrays()
    x = np.asarray(values, dtype=dtype)[np.arange(x.size) % len(values)].reshape(x.shape)
    task = ArrayTask(x, y)
    xb, _ = _all(task, "train")
    rows = task._data["train"][1]
    assert xb.dtype == torch.float32
    assert torch.equal(xb, torch.from_numpy(x[rows].astype(np.float32)).transpose(0, 1))


def test_images_keep_their_shape_or_flatten():
    rng = np.random.default_rng(1)
    x = (rng.random((12, 4, 2, 3, 3)) < 0.3).astype(np.uint8)
    y = np.arange(12) % 2
    image = ArrayTask(x, y, x[:4], y[:4])
    xb, _ = next(image.batches("test", 4, shuffle=False))
    assert image.input_shape == (2, 3, 3) and image.n_inputs == 18
    assert xb.shape == (4, 4, 2, 3, 3)
    assert torch.equal(xb, torch.from_numpy(x[:4].astype(np.float32)).transpose(0, 1))
    flat = ArrayTask(x, y, x[:4], y[:4], layout="flat")
    xf, _ = next(flat.batches("test", 4, shuffle=False))
    assert flat.input_shape == (18,) and torch.equal(xf, xb.flatten(2))


def test_npz_is_memory_mapped_and_streamed(tmp_path):
    x, y = _arrays(n=40)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, x_test=x[:9], y_test=y[:9])
    arrays = load_npz(path)
    assert all(isinstance(a, np.memmap) for a in arrays.values())
    assert np.array_equal(arrays["x"], x) and np.array_equal(arrays["y_test"], y[:9])
    task = ArrayTask.from_npz(path)
    assert isinstance(task._data["train"][0], np.memmap)  # never copied into memory
    assert task.num_samples("test") == 9 and task.test_fraction is None
    xb, yb = _all(task, "test", batch_size=4)
    assert torch.equal(xb, torch.from_numpy(x[:9]).transpose(0, 1))
    assert torch.equal(yb, torch.from_numpy(y[:9]))
    # a compressed file cannot be mapped: it is read (and gives the same batches)
    packed = tmp_path / "c.npz"
    np.savez_compressed(packed, x=x, y=y, x_test=x[:9], y_test=y[:9])
    assert not isinstance(load_npz(packed)["x"], np.memmap)
    assert torch.equal(_all(ArrayTask.from_npz(packed), "test", 4)[0], xb)


def _bad_cases():
    x, y = _arrays(n=20)
    nan = x.copy()
    nan[13, 2, 1] = np.nan
    inf = x.copy()
    inf[4, 0, 0] = np.inf
    return [
        (dict(y=y), "no array 'x' (found y)"),
        (dict(x=x), "no array 'y' (found x)"),
        (dict(x=x[:, 0], y=y), "x must be [N, T, F] or [N, T, C, H, W]"),
        (dict(x=x[..., None], y=y), "got 4 dimensions"),
        (dict(x=x, y=y[:, None]), "y must be [N]"),
        (dict(x=x, y=y.astype(np.float32)), "y must hold integer class labels"),
        (dict(x=x, y=y - 1), "y holds the label -1"),
        (dict(x=x, y=y[:7]), "x has 20 samples but y has 7 labels"),
        (dict(x=nan, y=y), "x holds NaN (first in sample 13)"),
        (dict(x=inf, y=y), "x holds an infinite value (first in sample 4)"),
        (dict(x=x.astype(np.complex64), y=y), "dtype complex64"),
        (dict(x=x, y=y, x_test=x), "has x_test but no y_test"),
        (dict(x=x, y=y, x_test=x[:3, :2], y_test=y[:3]), "x_test has per-sample shape (2, 5)"),
        (dict(x=x, y=y, x_test=x[:3], y_test=y[:2]), "x_test has 3 samples but y_test has 2"),
        (dict(x=x, y=y, labels=y), "unknown array(s) 'labels'"),
        (dict(x=x, y=np.zeros(20, dtype=np.int64)), "one class only"),
        (dict(x=x[:0], y=y[:0]), "x is empty"),
    ]


@pytest.mark.parametrize("arrays, match", _bad_cases())
def test_bad_data_is_one_line_naming_the_file_and_array(arrays, match, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as e:
        ArrayTask.from_npz(path)
    assert match in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_bad_files_and_fractions(tmp_path):
    x, y = _arrays(n=6, classes=2)
    with pytest.raises(FileNotFoundError, match="no data file at"):
        load_npz(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match="is not an .npz file"):
        load_npz(tmp_path / "text.npz")
    with pytest.raises(DataError, match="is a folder"):
        load_npz(tmp_path)
    with pytest.raises(DataError, match="leaves the test split empty"):
        ArrayTask(x, y, test_fraction=0.05)
    with pytest.raises(ValueError, match="test_fraction must be in"):
        ArrayTask(x, y, test_fraction=1.0)
    np.savez(tmp_path / "split.npz", x=x, y=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match="has its own test split"):
        ArrayTask.from_npz(tmp_path / "split.npz", test_fraction=0.3)
    # a member stored with deflate in an otherwise plain zip is read, not mapped
    with zipfile.ZipFile(tmp_path / "mixed.npz", "w") as z:
        for name, a in (("x", x), ("y", y)):
            with z.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, a)
    assert np.array_equal(load_npz(tmp_path / "mixed.npz")["x"], x)


def test_trainer_learns_from_an_array_task():
    # class c spikes on channels 4c..4c+3: a dense net separates it in a few epochs
    rng = np.random.default_rng(0)
    y = np.arange(240) % 3
    p = np.where(np.arange(12)[None, :] // 4 == y[:, None], 0.6, 0.05)
    x = rng.random((240, 10, 12)) < p[:, None, :]
    task = ArrayTask(x, y, seed=0)
    torch.manual_seed(0)
    net = tt.models.build_model(task, 32)
    history = tt.training.fit(net, task, 4, lr=1e-2, batch_size=16, progress=False)
    assert history["test_accuracy"][-1] > 0.8  # chance is 1/3


# ---------------------------------------------------------------------- the command
def run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _toy_file(path, **extra):
    x, y = _arrays(n=48, steps=5, features=6, classes=3)
    np.savez(path, x=(x < 0.2), y=y, **extra)
    return path


def test_cli_trains_on_an_npz_file_with_layers_and_learning(tmp_path, capsys):
    data = _toy_file(tmp_path / "toy.npz")
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--layers", "lif:8,lif:8", "--learning", "bptt"]
    argv += ["--epochs", "1", "--batch-size", "8", "--no-plots", "--no-progress"]
    code, stdout, err = run([*argv, "--test-fraction", "0.5", "--out", str(out)], capsys)
    assert code == 0, err
    assert f"tracetorch train --data {data}: ArrayTask(" in stdout
    assert "LIF(in_features=6, out_features=8" in stdout and "bptt learning" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["source"] == str(data) and config["task"]["test_samples"] == 24
    assert (out / "checkpoint.pt").exists()
    # resuming the same data continues; another test fraction is another run
    code, stdout, _ = run([*argv, "--test-fraction", "0.5", "--out", str(out), "--resume"], capsys)
    assert code == 0 and "resuming from" in stdout
    code, _, err = run([*argv, "--out", str(out), "--resume"], capsys)
    assert code == 1 and "different settings" in err and "test_fraction" in err


def test_cli_default_out_is_named_after_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _toy_file(tmp_path / "mine.npz")
    argv = ["train", "--data", "mine.npz", "--epochs", "1", "--hidden", "4", "--max-batches", "1"]
    code, _, err = run([*argv, "--no-plots", "--no-progress"], capsys)
    assert code == 0, err
    assert (tmp_path / "runs" / "mine" / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    "extra, argv, code, match",
    [
        ({}, ["--steps", "3"], 2, "--steps does not apply to --data"),
        ({}, ["--data-dir", "."], 2, "--data-dir does not apply to --data (only to shd)"),
        (
            {},
            ["--test-fraction", "1.5"],
            2,
            "argument --test-fraction: expected a number in (0, 1)",
        ),
        ({}, ["--task", "digits"], 2, "not allowed with argument --data"),
        ("split", ["--test-fraction", "0.3"], 2, "has its own test split (x_test, y_test)"),
        ("no y", [], 1, "no array 'y'"),
        ("nan", [], 1, "x holds NaN (first in sample 2)"),
        ("labels", [], 1, "y holds the label -2"),
    ],
)
def test_cli_errors_are_one_line(extra, argv, code, match, tmp_path, capsys):
    x, y = _arrays(n=12)
    arrays = {"x": x, "y": y}
    if extra == "split":
        arrays |= {"x_test": x, "y_test": y}
    elif extra == "no y":
        del arrays["y"]
    elif extra == "nan":
        x[2, 0, 0] = np.nan
    elif extra == "labels":
        arrays["y"] = y - 2
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    full = ["train", "--data", str(path), *argv, "--out", str(tmp_path / "o"), "--no-plots"]
    if code == 2 and argv and argv[0] in ("--test-fraction", "--task") and extra != "split":
        with pytest.raises(SystemExit) as e:
            cli.main(full)
        got, err = e.value.code, capsys.readouterr().err
    else:
        got, _, err = run(full, capsys)
    assert got == code
    assert match in err and len(err.strip().splitlines()) == 1
    if code == 1:
        assert err.startswith("tracetorch: error: ") and str(path) in err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()


def test_cli_missing_file(tmp_path, capsys):
    code, _, err = run(["train", "--data", str(tmp_path / "nope.npz")], capsys)
    assert code == 1 and err == f"tracetorch: error: no data file at {tmp_path / 'nope.npz'}\n"
