"""Event data: bin_events against tonic's ToFrame, EventTask over files in tonic's N-MNIST
format, SHD from .h5 files in the Heidelberg layout (all generated here; nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tracetorch import cli
from tracetorch.data import SHD, DataError, EventTask, SHDFile, bin_events

h5py = pytest.importorskip("h5py", reason="SHD's files need h5py (pip install '.[tonic]')")

XYTP = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
XTP = np.dtype([("x", np.int64), ("t", np.int64), ("p", np.int64)])


def _camera_events(n=400, size=(6, 5, 2), duration=1000, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=XYTP)
    ev["x"] = rng.integers(0, size[0], n)
    ev["y"] = rng.integers(0, size[1], n)
    ev["t"] = np.sort(rng.integers(0, duration, n))
    ev["p"] = rng.integers(0, size[2], n)
    return ev


def _expected(ev, size, steps, dt, start=0):
    """Frames by an explicit loop over the events: [T, P, H, W]."""
    w, h, p = size
    frames = np.zeros((steps, p, h, w), dtype=np.float32)
    for e in ev:
        k = (int(e["t"]) - start) // dt
        if 0 <= k < steps:
            y = int(e["y"]) if "y" in ev.dtype.names else 0
            frames[k, int(e["p"]) if p > 1 else 0, y, int(e["x"])] += 1
    return torch.from_numpy(frames)


def test_bin_events_counts_each_event_in_its_frame():
    size = (6, 5, 2)
    ev = _camera_events(size=size)
    frames = bin_events(ev, size, steps=8, dt=100)
    assert frames.shape == (8, 2, 5, 6) and frames.dtype == torch.float32
    assert torch.equal(frames, _expected(ev, size, 8, 100))
    # events before the start or past the last frame are dropped; order does not matter
    late = bin_events(ev[::-1].copy(), size, steps=3, dt=100, start=250)
    assert torch.equal(late, _expected(ev, size, 3, 100, start=250))
    assert late.sum() == ((ev["t"] >= 250) & (ev["t"] < 550)).sum()
    assert torch.equal(bin_events(ev, size, 8, 100, binary=True), frames.clamp(max=1))
    assert torch.equal(bin_events(ev, size, 8, 100, flatten=True), frames.flatten(1))


def test_bin_events_matches_tonic_to_frame():
    tonic = pytest.importorskip("tonic")
    size = (6, 5, 2)
    ev = _camera_events(size=size, seed=1)
    to_frame = tonic.transforms.ToFrame(
        sensor_size=size, time_window=100, start_time=0, end_time=800
    )
    reference = torch.from_numpy(to_frame(ev.copy()).astype(np.float32))  # [T, P, H, W]
    assert reference.shape == (8, 2, 5, 6)
    assert torch.equal(bin_events(ev, size, 8, 100), reference)
    # a 1-D sensor (x, t, p): tonic's [T, P, W], flattened
    cochlea = np.empty(300, dtype=XTP)
    rng = np.random.default_rng(2)
    cochlea["x"] = rng.integers(0, 40, 300)
    cochlea["t"] = np.sort(rng.integers(0, 1000, 300))
    cochlea["p"] = 0
    to_frame = tonic.transforms.ToFrame(
        sensor_size=(40, 1, 1), time_window=125, start_time=0, end_time=1000
    )
    reference = torch.from_numpy(to_frame(cochlea.copy()).astype(np.float32))
    frames = bin_events(cochlea, (40, 1, 1), 8, 125)
    assert frames.shape == (8, 40) and torch.equal(frames, reference.flatten(1))


def test_bin_events_errors():
    ev = _camera_events(size=(6, 5, 2))
    with pytest.raises(DataError, match=r"an event has x = \d, outside the sensor"):
        bin_events(ev, (4, 5, 2), 8, 100)
    with pytest.raises(DataError, match="fields x, t, p"):
        bin_events(np.zeros((3, 4)), (4, 5, 2), 8, 100)
    with pytest.raises(DataError, match=r"fields \('x', 'y', 't'\)"):
        bin_events(np.zeros(3, dtype=XYTP[["x", "y", "t"]]), (4, 5, 2), 8, 100)
    with pytest.raises(ValueError, match="sensor_size must be"):
        bin_events(ev, (6, 5), 8, 100)
    with pytest.raises(ValueError, match="dt must be a positive number"):
        bin_events(ev, (6, 5, 2), 8, 0)


# ---------------------------------------------------------------------- tonic's N-MNIST files
def _write_nmnist(path: Path, ev: np.ndarray) -> None:
    """One recording in N-MNIST's binary format (as tonic.io.read_mnist_file reads it): 5
    bytes per event, x, y, then polarity (bit 7) and the 23-bit timestamp in microseconds."""
    raw = np.zeros((len(ev), 5), dtype=np.uint8)
    t = ev["t"].astype(np.uint32)
    raw[:, 0], raw[:, 1] = ev["x"], ev["y"]
    raw[:, 2] = (ev["p"].astype(np.uint32) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.write_bytes(raw.tobytes())


class Files:
    """A dataset over N-MNIST-format files, read with tonic's reader (as tonic's NMNIST does),
    counting the reads."""

    sensor_size = (34, 34, 2)

    def __init__(self, files, labels):
        self.files, self.labels, self.reads = files, labels, 0
        self.classes = [str(i) for i in range(10)]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import tonic

        self.reads += 1
        dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
        return tonic.io.read_mnist_file(str(self.files[i]), dtype=dtype), self.labels[i]


@pytest.fixture
def nmnist(tmp_path):
    pytest.importorskip("tonic")
    events, files, labels = [], [], []
    for i in range(10):
        ev = _camera_events(n=200, size=(34, 34, 2), duration=30_000, seed=10 + i)
        files.append(tmp_path / f"{i:05d}.bin")
        _write_nmnist(files[-1], ev)
        events.append(ev)
        labels.append(i % 10)
    return Files(files[:7], labels[:7]), Files(files[7:], labels[7:]), events, labels


def test_event_task_reads_and_bins_only_the_batch(nmnist):
    train, test, events, labels = nmnist
    task = EventTask(train, test, sensor_size=train.sensor_size, steps=6, dt=5000)
    assert task.input_shape == (2, 34, 34) and task.n_classes == 10 and task.n_inputs == 2312
    x, y = next(task.batches("train", batch_size=3, shuffle=False))
    assert train.reads == 3  # streamed: the batch's recordings only
    assert x.shape == (6, 3, 2, 34, 34)
    for b in range(3):
        assert torch.equal(x[:, b], _expected(events[b], (34, 34, 2), 6, 5000))
    assert y.tolist() == labels[:3]
    flat = EventTask(train, test, sensor_size=(34, 34, 2), steps=6, dt=5000, layout="flat")
    xf, _ = next(flat.batches("test", batch_size=3, shuffle=False))
    assert xf.shape == (6, 3, 2312)
    assert torch.equal(xf[:, 0], _expected(events[7], (34, 34, 2), 6, 5000).flatten(1))


def test_event_task_errors(nmnist):
    train, test, *_ = nmnist
    task = EventTask(
        [(e, 12) for e in [_camera_events(5)]],
        test,
        sensor_size=(6, 5, 2),
        steps=2,
        dt=10,
        n_classes=3,
    )
    with pytest.raises(DataError, match=r"train sample 0: label 12 is outside \[0, 3\)"):
        next(task.batches("train", 1))
    small = EventTask(train, test, sensor_size=(6, 5, 2), steps=2, dt=10)
    with pytest.raises(DataError, match="test sample 0: an event has . = .*outside the sensor"):
        next(small.batches("test", 1, shuffle=False))
    with pytest.raises(ValueError, match="n_classes is needed"):
        EventTask([(None, 0)], [(None, 0)], sensor_size=(1, 1, 1), steps=1, dt=1)
    with pytest.raises(DataError, match="the test dataset is empty"):
        EventTask(train, [], sensor_size=(34, 34, 2), steps=1, dt=1)


# ---------------------------------------------------------------------- SHD's .h5 files
def _write_shd(path: Path, n: int, dt: float, steps: int, seed: int, classes: int = 20):
    """An .h5 file in SHD's layout: spikes/times (seconds) and spikes/units per sample, labels.
    Each spike sits mid-bin, so its frame is known without rounding doubts; returns the
    expected frames [n, T, 700]."""
    rng = np.random.default_rng(seed)
    times, units, expected = [], [], np.zeros((n, steps, 700), dtype=np.float32)
    for i in range(n):
        k = rng.integers(0, steps + 3, 50)  # some past the last frame: dropped
        u = rng.integers(0, 700, 50)
        order = np.argsort(k, kind="stable")
        k, u = k[order], u[order]
        times.append(((k + 0.5) * dt).astype(np.float32))
        units.append(u.astype(np.uint16))
        keep = k < steps
        np.add.at(expected[i], (k[keep], u[keep]), 1)
    labels = (np.arange(n) % classes).astype(np.uint16)
    with h5py.File(path, "w") as f:
        for name, values, dtype in (("times", times, np.float32), ("units", units, np.uint16)):
            column = f.create_dataset(f"spikes/{name}", (n,), dtype=h5py.vlen_dtype(dtype))
            for i, v in enumerate(values):
                column[i] = v
        f.create_dataset("labels", data=labels)
        f.create_dataset("extra/keys", data=np.array([f"digit-{c}".encode() for c in range(20)]))
    return torch.from_numpy(expected), labels


@pytest.fixture
def shd_dir(tmp_path):
    folder = tmp_path / "shd"
    folder.mkdir()
    train = _write_shd(folder / "shd_train.h5", 24, 0.01, 12, seed=0)
    test = _write_shd(folder / "shd_test.h5", 8, 0.01, 12, seed=1)
    return folder, train, test


def test_shd_bins_the_h5_spikes(shd_dir):
    folder, (x_train, y_train), (x_test, y_test) = shd_dir
    task = SHD(folder, steps=12, dt=0.01)
    assert (task.n_inputs, task.n_classes, task.input_shape) == (700, 20, (700,))
    assert task.num_samples("train") == 24 and task.num_samples("test") == 8
    x, y = next(task.batches("test", batch_size=8, shuffle=False))
    assert x.shape == (12, 8, 700)
    assert torch.equal(x, x_test.transpose(0, 1)) and y.tolist() == y_test.tolist()
    xb, _ = next(SHD(folder, steps=12, dt=0.01, binary=True).batches("train", 24, shuffle=False))
    assert torch.equal(xb, x_train.transpose(0, 1).clamp(max=1))
    assert SHDFile(folder / "shd_train.h5").classes[3] == "digit-3"


def test_shd_file_reads_like_tonic(shd_dir):
    tonic = pytest.importorskip("tonic")
    folder = shd_dir[0]
    ours = SHDFile(folder / "shd_test.h5")
    theirs = object.__new__(tonic.datasets.hsd.HSD)  # tonic's reader, without its download
    theirs.location_on_system, theirs.data_filename = str(folder), "shd_test.h5"
    theirs.transform = theirs.target_transform = None
    for i in (0, 5):
        (a, la), (b, lb) = ours[i], theirs[i]
        assert la == lb and len(a) == len(b)
        for field in ("t", "x", "p"):
            assert np.array_equal(a[field], b[field])


def test_shd_errors(tmp_path, shd_dir):
    folder = shd_dir[0]
    (folder / "shd_test.h5").rename(tmp_path / "elsewhere.h5")
    with pytest.raises(FileNotFoundError, match=r"has no shd_test.h5 \(the Spiking"):
        SHD(folder)
    with pytest.raises(FileNotFoundError, match="no folder"):
        SHD(tmp_path / "nowhere")
    with h5py.File(tmp_path / "shd_test.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(3, dtype=np.uint16))
    with pytest.raises(DataError, match="has no spikes/times, spikes/units"):
        SHDFile(tmp_path / "shd_test.h5")
    (folder / "shd_test.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="is not an HDF5 file"):
        SHD(folder)
    (folder / "shd_test.h5").unlink()
    _write_shd(folder / "shd_test.h5", 25, 0.01, 4, seed=2, classes=25)
    with pytest.raises(DataError, match=r"labels must be in \[0, 20\), found 0..24"):
        SHD(folder)


def test_cli_task_shd(shd_dir, tmp_path, capsys):
    folder = shd_dir[0]
    out = tmp_path / "run"
    argv = ["train", "--task", "shd", "--data-dir", str(folder), "--steps", "12", "--dt", "0.01"]
    argv += ["--layers", "lif:8", "--epochs", "1", "--batch-size", "8", "--no-plots"]
    code = cli.main([*argv, "--no-progress", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "SHD(data_dir=" in stdout and "LIF(in_features=700, out_features=8" in stdout
    assert (out / "checkpoint.pt").exists()
    (folder / "shd_train.h5").unlink()
    code = cli.main([*argv, "--out", str(tmp_path / "other")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"tracetorch: error: {folder} has no shd_train.h5 (")
    code = cli.main(["train", "--task", "shd", "--out", str(tmp_path / "o")])
    assert code == 2 and "--task shd needs --data-dir DIR" in capsys.readouterr().err
    code = cli.main(["train", "--task", "digits", "--dt", "0.01", "--out", str(tmp_path / "o")])
    assert code == 2 and "--dt does not apply to --task digits" in capsys.readouterr().err
