r"""Neuromorphic event data: tonic-style event arrays binned into spike frames, and SHD.

An event camera or a silicon cochlea reports **events**, not frames: a numpy structured array
with fields ``x``, ``y``, ``t``, ``p`` (a camera: pixel, time, polarity) or ``x``, ``t``,
``p`` (a 1-D sensor such as the cochlea of the Spiking Heidelberg Digits), the format of the
`tonic <https://tonic.readthedocs.io>`_ library. :func:`bin_events` turns one recording into
``T`` frames of width ``dt``: frame ``k`` counts the events with
:math:`k\,dt \le t - t_0 < (k+1)\,dt` at each (polarity, y, x), as
``tonic.transforms.ToFrame(sensor_size, time_window=dt, start_time=t0, end_time=t0 + T dt)``
does; events after the last frame are dropped.

:class:`EventTask` makes a task of any indexable dataset of ``(events, label)`` pairs, such as
a ``tonic.datasets`` dataset: each batch reads and bins only its own recordings, so nothing
is held in memory but the batch. :class:`SHD` reads the Spiking Heidelberg Digits from the
``shd_train.h5``/``shd_test.h5`` files of a folder (no download; :class:`SHDFile` reads one
file in tonic's format).

Needs h5py for the ``.h5`` files (``pip install 'tracetorch[tonic]'``, which also installs
tonic for its datasets); the binning itself needs numpy only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import SpikeTask, _one_of, _positive_int
from .user import DataError

__all__ = ["SHD", "EventTask", "SHDFile", "bin_events"]

#: The dtype of the events :class:`SHDFile` returns: tonic's for the Heidelberg datasets
#: (time in microseconds, the cochlea channel as ``x``, polarity 1).
SHD_EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
SHD_FILES = ("shd_train.h5", "shd_test.h5")
SHD_URL = "https://zenkelab.org/datasets/"


def _positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value}")
    return float(value)


def _sensor(sensor_size: Any) -> tuple[int, int, int]:
    if not (isinstance(sensor_size, (tuple, list)) and len(sensor_size) == 3):
        raise ValueError(
            f"sensor_size must be (width, height, polarities) as in tonic, got {sensor_size!r}"
        )
    for name, value in zip(("width", "height", "polarities"), sensor_size, strict=True):
        _positive_int(int(value) if isinstance(value, np.integer) else value, f"sensor {name}")
    return tuple(int(v) for v in sensor_size)  # type: ignore[return-value]


def bin_events(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    steps: int,
    dt: float,
    *,
    start: float = 0.0,
    binary: bool = False,
    flatten: bool = False,
) -> Tensor:
    r"""Bin one recording's events into ``steps`` frames of width ``dt``.

    Args:
        events: a structured array with fields ``x``, ``t``, ``p`` and optionally ``y``
            (tonic's format), in any order of events.
        sensor_size: ``(width, height, polarities)`` as tonic's ``sensor_size``; with one
            polarity every event counts as polarity 0.
        steps: number of frames ``T``.
        dt: frame width, in the unit of ``t`` (tonic: microseconds).
        start: time :math:`t_0` of the start of the first frame.
        binary: clip the counts to 1 (a spike or none).
        flatten: return ``[T, P*H*W]`` for events with ``y`` too.

    Returns:
        float32 ``[T, P, H, W]`` for events with a ``y`` field (unless ``flatten``),
        ``[T, P*W]`` for ``x, t, p`` events (polarity-major, as tonic's ``[T, P, W]`` frames
        flattened): the number of events (or 1/0 if ``binary``) of each frame and place.

    Raises:
        DataError: a missing field, or an event outside the sensor.
    """
    width, height, polarities = _sensor(sensor_size)
    steps = _positive_int(steps, "steps")
    dt = _positive_float(dt, "dt")
    names = events.dtype.names if isinstance(events, np.ndarray) else None
    if not names or any(f not in names for f in ("x", "t", "p")):
        got = f"fields {names}" if names else f"{type(events).__name__}"
        raise DataError(
            f"events must be a structured array with fields x, t, p (and y for a camera), got {got}"
        )
    has_y = "y" in names
    x = events["x"].astype(np.int64)
    p = events["p"].astype(np.int64) if polarities > 1 else np.zeros_like(x)
    y = events["y"].astype(np.int64) if has_y else np.zeros_like(x)
    for field, values, size in (("x", x, width), ("y", y, height), ("p", p, polarities)):
        if len(values) and (values.min() < 0 or values.max() >= size):  # any event, kept or not
            bad = values[(values < 0) | (values >= size)][0]
            raise DataError(
                f"an event has {field} = {bad}, outside the sensor (sensor_size "
                f"{(width, height, polarities)}: {field} in [0, {size}))"
            )
    k = np.floor((events["t"].astype(np.float64) - start) / dt)
    keep = (k >= 0) & (k < steps)
    k = k[keep].astype(np.int64)
    index = ((k * polarities + p[keep]) * height + y[keep]) * width + x[keep]
    counts = np.bincount(index, minlength=steps * polarities * height * width)
    frames = torch.from_numpy(counts.astype(np.float32))
    if binary:
        frames.clamp_(max=1.0)
    if has_y and not flatten:
        return frames.view(steps, polarities, height, width)
    return frames.view(steps, polarities * height * width)


class EventTask(SpikeTask):
    r"""A task of event recordings: datasets of ``(events, label)`` pairs, binned per batch.

    ``train`` and ``test`` are anything with ``len()`` and ``[i]`` that returns ``(events,
    label)``, ``events`` a tonic-style structured array (see :func:`bin_events`): a
    ``tonic.datasets`` dataset (without a ``ToFrame`` transform), :class:`SHDFile`, or a list.
    A batch reads its recordings, bins each into ``steps`` frames of ``dt`` and stacks them,
    so the data stay on disk.

    Args:
        train, test: the two splits.
        sensor_size: ``(width, height, polarities)`` (tonic's ``dataset.sensor_size``).
        steps: frames ``T`` per sample.
        dt: frame width, in the unit of the events' ``t`` (tonic: microseconds).
        start: time of the start of the first frame.
        binary: clip the counts of a frame to 1.
        n_classes: number of labels; default ``len(train.classes)`` (tonic's datasets have it).
        layout: ``"image"`` (``[T, B, P, H, W]``, for convolutional layers), ``"flat"``
            (``[T, B, P*H*W]``) or ``"auto"``: image when the sensor's height is above 1.
        seed: seeds the order of the training batches.

    Shape:
        ``x`` ``[T, B, P*W]`` (1-D sensors, or ``layout="flat"``) or ``[T, B, P, H, W]``,
        float32 counts; ``y`` ``[B]`` int64.

    Example:
        >>> import tonic                                     # pip install 'tracetorch[tonic]'
        >>> train = tonic.datasets.NMNIST("data", train=True)
        >>> test = tonic.datasets.NMNIST("data", train=False)
        >>> task = tt.data.EventTask(train, test, sensor_size=train.sensor_size, steps=30,
        ...                          dt=10_000, layout="flat")   # 30 frames of 10 ms
        >>> x, y = next(task.batches("train", batch_size=16))  # x: [30, 16, 2312]
    """

    name = "events"
    LAYOUTS = ("auto", "image", "flat")

    def __init__(
        self,
        train: Sequence,
        test: Sequence,
        *,
        sensor_size: tuple[int, int, int],
        steps: int,
        dt: float,
        start: float = 0.0,
        binary: bool = False,
        n_classes: int | None = None,
        layout: str = "auto",
        seed: int = 0,
    ) -> None:
        for split, data in (("train", train), ("test", test)):
            if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
                raise TypeError(
                    f"{split} must be a dataset of (events, label) pairs with len() and [i], "
                    f"got {type(data).__name__}"
                )
            if len(data) == 0:
                raise DataError(f"the {split} dataset is empty")
        self._splits = {"train": train, "test": test}
        self.sensor_size = _sensor(sensor_size)
        self.steps = _positive_int(steps, "steps")
        self.dt = _positive_float(dt, "dt")
        self.start = float(start)
        self.binary = bool(binary)
        self.seed = int(seed)
        layout = _one_of(layout, self.LAYOUTS, "layout")
        if layout == "auto":
            layout = "image" if self.sensor_size[1] > 1 else "flat"
        self.layout = layout
        if n_classes is None:
            classes = getattr(train, "classes", None)
            if classes is None:
                raise ValueError(
                    f"n_classes is needed: the train dataset ({type(train).__name__}) has no "
                    "'classes' to count"
                )
            n_classes = len(classes)
        self.n_classes = _positive_int(n_classes, "n_classes")
        width, height, polarities = self.sensor_size
        self.n_inputs = width * height * polarities

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(P*H*W,)`` (``layout="flat"``) or ``(P, H, W)`` (``"image"``)."""
        width, height, polarities = self.sensor_size
        return (polarities, height, width) if self.layout == "image" else (self.n_inputs,)

    def num_samples(self, split: str) -> int:
        return len(self._splits[split])

    def sample(self, split: str, index: int) -> tuple[Tensor, int]:
        """Sample ``index`` of ``split``: its frames ``[T, *input_shape]`` and its label."""
        data = self._splits[split]
        item = data[index]
        if not (isinstance(item, tuple) and len(item) == 2):
            raise DataError(
                f"{split} sample {index}: expected an (events, label) pair, got "
                f"{type(item).__name__}"
            )
        events, label = item
        try:
            label = int(np.asarray(label).reshape(()))
        except (TypeError, ValueError):
            raise DataError(
                f"{split} sample {index}: the label {label!r} is not an integer"
            ) from None
        if not 0 <= label < self.n_classes:
            raise DataError(
                f"{split} sample {index}: label {label} is outside [0, {self.n_classes})"
            )
        try:
            frames = bin_events(
                events,
                self.sensor_size,
                self.steps,
                self.dt,
                start=self.start,
                binary=self.binary,
                flatten=self.layout == "flat",
            )
        except DataError as e:
            raise DataError(f"{split} sample {index}: {e}") from None
        return frames.view(self.steps, *self.input_shape), label

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        frames, labels = zip(*(self.sample(split, int(i)) for i in ids.cpu()), strict=True)
        x = torch.stack(frames, dim=1).to(ids.device)  # [T, B, ...]
        return x, torch.tensor(labels, dtype=torch.int64, device=ids.device)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "sensor_size": list(self.sensor_size),
            "steps": self.steps,
            "dt": self.dt,
            "start": self.start,
            "binary": self.binary,
            "n_classes": self.n_classes,
            "layout": self.layout,
            "seed": self.seed,
        }


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading .h5 event files (SHD) needs h5py: pip install 'tracetorch[tonic]'"
        ) from e
    return h5py


class SHDFile:
    r"""One file of the Heidelberg spiking datasets (``shd_train.h5``, ``shd_test.h5``; SSC's
    files have the same layout) as a dataset of ``(events, label)`` pairs.

    The file holds ``spikes/times`` (per sample, spike times in seconds), ``spikes/units``
    (per sample, the cochlea channel of each spike, 0..699) and ``labels``. Sample ``i`` is
    read when asked for, as tonic's ``SHD`` returns it: a structured array ``(t, x, p)`` with
    ``t`` in microseconds, ``x`` the channel, ``p = 1``.

    Raises:
        FileNotFoundError: no file at ``path``.
        DataError: the file lacks one of those datasets, or they disagree in length.
    """

    sensor_size = (700, 1, 1)
    dtype = SHD_EVENT_DTYPE

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no SHD file at {self.path}")
        h5py = _h5py()
        try:
            with h5py.File(self.path, "r") as f:
                missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
                if missing:
                    raise DataError(
                        f"{self.path} has no {', '.join(missing)} (an SHD file holds "
                        "spikes/times, spikes/units and labels)"
                    )
                self._labels = np.asarray(f["labels"][()], dtype=np.int64)
                lengths = {len(f["spikes/times"]), len(f["spikes/units"]), len(self._labels)}
                if len(lengths) != 1:
                    raise DataError(
                        f"{self.path}: spikes/times, spikes/units and labels differ in length "
                        f"({len(f['spikes/times'])}, {len(f['spikes/units'])}, "
                        f"{len(self._labels)})"
                    )
                keys = f["extra/keys"][()] if "extra/keys" in f else None
        except OSError as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise DataError(f"{self.path} is not an HDF5 file ({e})") from None
        self.classes = (
            [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
            if keys is not None
            else [str(i) for i in range(int(self._labels.max()) + 1 if len(self._labels) else 0)]
        )
        self._file: Any = None

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} of {len(self)} in {self.path}")
        if self._file is None:  # opened on first use, read-only, kept open
            self._file = _h5py().File(self.path, "r")
        times = np.asarray(self._file["spikes/times"][index], dtype=np.float64)
        units = np.asarray(self._file["spikes/units"][index], dtype=np.int64)
        events = np.empty(len(times), dtype=self.dtype)
        events["t"] = (times * 1e6).astype(np.int64)  # seconds -> microseconds, as tonic
        events["x"] = units
        events["p"] = 1
        return events, int(self._labels[index])

    def labels(self) -> np.ndarray:
        """All labels ``[N]`` (read at construction)."""
        return self._labels.copy()

    def __getstate__(self) -> dict:  # an open h5py file does not pickle; reopen on use
        return self.__dict__ | {"_file": None}

    def __repr__(self) -> str:
        return f"SHDFile({str(self.path)!r}, samples={len(self)})"


class SHD(EventTask):
    r"""The Spiking Heidelberg Digits from a folder: spoken digits 0-9 in English and German
    (20 classes) as spikes of 700 cochlea channels, binned into ``steps`` frames of ``dt``
    seconds.

    The folder must hold ``shd_train.h5`` and ``shd_test.h5`` (unzipped from
    https://zenkelab.org/datasets/; nothing is downloaded here). Each batch reads its samples
    from the files.

    Args:
        data_dir: the folder.
        steps: frames ``T`` (default 100).
        dt: frame width in seconds (default 0.014: 100 frames cover 1.4 s, about the longest
            recording).
        binary: clip the spike count of a frame and channel to 1.
        seed: seeds the order of the training batches.

    Shape:
        ``x`` ``[T, B, 700]`` float32 spike counts, ``y`` ``[B]`` int64 in ``[0, 20)``.

    Raises:
        FileNotFoundError: the folder or one of the files is missing (the message names them).
    """

    name = "shd"

    def __init__(
        self,
        data_dir: str | os.PathLike,
        steps: int = 100,
        dt: float = 0.014,
        *,
        binary: bool = False,
        seed: int = 0,
    ) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(
                f"no folder {self.data_dir}: expected a folder with {' and '.join(SHD_FILES)} "
                f"(the Spiking Heidelberg Digits, from {SHD_URL})"
            )
        missing = [f for f in SHD_FILES if not (self.data_dir / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.data_dir} has no {' and no '.join(missing)} (the Spiking Heidelberg "
                f"Digits: download {', '.join(m + '.zip' for m in missing)} from {SHD_URL} and "
                "unzip them there)"
            )
        train, test = (SHDFile(self.data_dir / f) for f in SHD_FILES)
        self.dt_seconds = _positive_float(dt, "dt")
        super().__init__(
            train,
            test,
            sensor_size=SHDFile.sensor_size,
            steps=steps,
            dt=self.dt_seconds * 1e6,  # the events are in microseconds
            binary=binary,
            n_classes=20,
            layout="flat",
            seed=seed,
        )
        for data in (train, test):
            labels = data.labels()
            if labels.min() < 0 or labels.max() >= self.n_classes:
                raise DataError(
                    f"{data.path}: labels must be in [0, {self.n_classes}), found "
                    f"{int(labels.min())}..{int(labels.max())}"
                )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "data_dir": str(self.data_dir),
            "steps": self.steps,
            "dt": self.dt_seconds,
            "binary": self.binary,
            "seed": self.seed,
        }
