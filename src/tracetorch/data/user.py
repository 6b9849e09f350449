r"""Data a user brings: spike (or current) sequences in arrays, from memory or an ``.npz`` file.

An ``.npz`` file for :meth:`ArrayTask.from_npz` (and ``tracetorch train --data PATH.npz``)
holds

============ ============================================ =========================================
array        shape                                        content
============ ============================================ =========================================
``x``        ``[N, T, F]`` or ``[N, T, C, H, W]``         inputs, sample first: float (currents or
                                                          0/1 spikes), bool or integer (spike
                                                          counts); finite
``y``        ``[N]``                                      integer labels in ``[0, n_classes)``
``x_test``   ``[M, T, ...]`` as ``x`` (optional)          a test split
``y_test``   ``[M]`` (optional)                           its labels
============ ============================================ =========================================

Without ``x_test``/``y_test`` the test split is drawn from ``x``: a share ``test_fraction`` of
each class, seeded (stratified, as :func:`~tracetorch.data.load_digits`). The number of
classes is the largest label plus one.

**Streaming.** Save with ``np.savez`` (not ``np.savez_compressed``): each array of an
uncompressed ``.npz`` is memory-mapped in place, and a batch reads only its own samples, so a
file larger than the memory trains. A compressed array cannot be mapped; it is read whole
(with a warning). The checks below read the file once, in blocks of samples.

Batches are time first, ``x`` ``[T, B, F]`` (``[T, B, C, H, W]``) float32, ``y`` ``[B]`` int64.
Every problem with the data raises :class:`DataError`, one line that names the file, the array
and what is wrong.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import SpikeTask, _one_of

__all__ = ["ArrayTask", "DataError", "load_npz"]

#: Samples checked at once when validating an array (bounds the memory of the checks).
_CHECK_BLOCK_BYTES = 64 * 2**20


class DataError(ValueError):
    """Data that cannot be used as they are: a missing array, a wrong shape or dtype, labels
    out of range, non-finite inputs, mismatched lengths. The message is one line that names
    the source (file), the array and the problem."""


def _mapped_member(path: Path, archive: zipfile.ZipFile, member: str) -> np.ndarray | None:
    """Memory-map ``member`` (``"x.npy"``) of an uncompressed ``.npz``; ``None`` if it is
    compressed (or otherwise cannot be mapped)."""
    info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the local file header: its name and extra field lengths vary
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        f.seek(start)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # pragma: no cover - numpy writes 1.0/2.0 for plain dtypes
            return None
        offset = f.tell()
    if dtype.hasobject:
        return None
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(
        path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
    )


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file by name, memory-mapped where they are stored
    uncompressed (``np.savez``), read whole where they are compressed (a warning says so).

    Raises:
        FileNotFoundError: no file at ``path``.
        DataError: not an ``.npz`` (zip) file, or an array holds Python objects.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file at {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected an .npz file (np.savez(path, x=..., y=...))")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file (np.savez(path, x=..., y=...))")
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            name = member[: -len(".npy")]
            try:
                mapped = _mapped_member(path, archive, member)
            except ValueError:  # a malformed header: let numpy's reader explain
                mapped = None
            if mapped is not None:
                arrays[name] = mapped
                continue
            compressed = archive.getinfo(member).compress_type != zipfile.ZIP_STORED
            try:
                with archive.open(member) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
            except ValueError as e:
                raise DataError(f"{path}: array {name!r} cannot be read ({e})") from None
            if compressed and arrays[name].nbytes > _CHECK_BLOCK_BYTES:
                warnings.warn(
                    f"{path}: array {name!r} is compressed, so it is read into memory whole "
                    f"({arrays[name].nbytes / 2**20:.0f} MiB); save with np.savez (not "
                    "np.savez_compressed) to stream it from disk",
                    stacklevel=2,
                )
    return arrays


def _check_x(source: str, name: str, x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise DataError(f"{source}: {name} must be an array, got {type(x).__name__}")
    if x.ndim not in (3, 5):
        raise DataError(
            f"{source}: {name} must be [N, T, F] or [N, T, C, H, W] (sample, time, features), "
            f"got {x.ndim} dimensions {tuple(x.shape)}"
        )
    if not (x.dtype == np.bool_ or np.issubdtype(x.dtype, np.number)) or np.issubdtype(
        x.dtype, np.complexfloating
    ):
        raise DataError(
            f"{source}: {name} must hold floats, bools or integers, got dtype {x.dtype}"
        )
    if min(x.shape) == 0:
        raise DataError(f"{source}: {name} is empty, shape {tuple(x.shape)}")
    if np.issubdtype(x.dtype, np.floating):  # NaN/inf check, block by block (x may be mapped)
        row_bytes = max(1, x[0].nbytes)
        block = max(1, _CHECK_BLOCK_BYTES // row_bytes)
        for start in range(0, len(x), block):
            part = np.asarray(x[start : start + block])
            finite = np.isfinite(part).reshape(len(part), -1).all(1)
            if not finite.all():
                bad = start + int(np.flatnonzero(~finite)[0])
                what = "NaN" if np.isnan(part).any() else "an infinite value"
                raise DataError(f"{source}: {name} holds {what} (first in sample {bad})")
    return x


def _check_y(source: str, name: str, y: Any, n: int, x_name: str) -> np.ndarray:
    if isinstance(y, Tensor):
        y = y.detach().cpu().numpy()
    if not isinstance(y, np.ndarray):
        raise DataError(f"{source}: {name} must be an array, got {type(y).__name__}")
    if y.ndim != 1:
        raise DataError(
            f"{source}: {name} must be [N] (one label per sample), got shape {tuple(y.shape)}"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise DataError(
            f"{source}: {name} must hold integer class labels 0, 1, ..., got dtype {y.dtype}"
        )
    if len(y) != n:
        raise DataError(
            f"{source}: {x_name} has {n} samples but {name} has {len(y)} labels (the same N)"
        )
    y = np.asarray(y).astype(np.int64)
    if y.min() < 0:
        raise DataError(
            f"{source}: {name} holds the label {int(y.min())}; labels must be integers >= 0"
        )
    return y


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: a share ``fraction`` of each class in test (seeded)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        test[idx[: int(round(len(idx) * fraction))]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


class ArrayTask(SpikeTask):
    r"""Sequences a user brings, as a task: ``x`` ``[N, T, F]`` (or ``[N, T, C, H, W]``)
    and labels ``y`` ``[N]``, with a test split given or drawn (stratified, seeded).

    The arrays may be numpy arrays (also memory-mapped ones: a batch reads only its
    samples), tensors, or come from an ``.npz`` file (:meth:`from_npz`). The data are checked
    at construction (see :class:`DataError`); inputs become float32 per batch (bool and
    integer spikes or counts as 0.0/1.0/...), time first.

    Args:
        x: training inputs ``[N, T, F]`` or ``[N, T, C, H, W]``: floats (currents or spikes),
            bools or integers (spikes, counts); finite.
        y: labels ``[N]``, integers ``>= 0``.
        x_test, y_test: the test split (both or neither); its per-step shape must be ``x``'s.
        test_fraction: without ``x_test``: the share of each class of ``x`` held out.
        seed: seeds that split and the order of the training batches.
        layout: for ``[N, T, C, H, W]`` inputs: ``"image"`` (batches ``[T, B, C, H, W]``, for
            convolutional layers) or ``"flat"`` (``[T, B, C*H*W]``, for dense layers).
        source: what to call the data in messages and :meth:`describe` (a file name).

    Attributes:
        n_classes: the largest label (train or test) plus one.

    Example:
        >>> x = (np.random.rand(100, 20, 16) < 0.1)          # 100 samples, 20 steps, 16 inputs
        >>> y = np.arange(100) % 4
        >>> task = tt.data.ArrayTask(x, y, test_fraction=0.2)
        >>> x_b, y_b = next(task.batches("train", batch_size=8))
        >>> x_b.shape, task.n_classes, task.num_samples("test")
        (torch.Size([20, 8, 16]), 4, 20)
    """

    name = "array"
    LAYOUTS = ("image", "flat")

    def __init__(
        self,
        x: Any,
        y: Any,
        x_test: Any = None,
        y_test: Any = None,
        *,
        test_fraction: float = 0.2,
        seed: int = 0,
        layout: str = "image",
        source: str = "data",
    ) -> None:
        self.source = str(source)
        self.layout = _one_of(layout, self.LAYOUTS, "layout")
        self.seed = int(seed)
        x = _check_x(self.source, "x", x)
        y = _check_y(self.source, "y", y, len(x), "x")
        if (x_test is None) != (y_test is None):
            given, missing = ("x_test", "y_test") if y_test is None else ("y_test", "x_test")
            raise DataError(f"{self.source}: has {given} but no {missing} (give both or neither)")
        if x_test is not None:
            x_test = _check_x(self.source, "x_test", x_test)
            y_test = _check_y(self.source, "y_test", y_test, len(x_test), "x_test")
            if x_test.shape[1:] != x.shape[1:]:
                raise DataError(
                    f"{self.source}: x_test has per-sample shape {tuple(x_test.shape[1:])}, "
                    f"x has {tuple(x.shape[1:])} (they must be equal)"
                )
            self.test_fraction: float | None = None
            self._data = {
                "train": (x, np.arange(len(x)), y),
                "test": (x_test, np.arange(len(x_test)), y_test),
            }
        else:
            if isinstance(test_fraction, bool) or not (
                isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0
            ):
                raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
            self.test_fraction = float(test_fraction)
            train_ids, test_ids = _stratified_split(y, self.test_fraction, self.seed)
            if len(test_ids) == 0 or len(train_ids) == 0:
                empty = "test" if len(test_ids) == 0 else "train"
                raise DataError(
                    f"{self.source}: test_fraction {self.test_fraction} of {len(y)} samples "
                    f"leaves the {empty} split empty (give x_test/y_test, or another fraction)"
                )
            self._data = {"train": (x, train_ids, y), "test": (x, test_ids, y)}
        labels = [y] + ([y_test] if y_test is not None else [])
        self.n_classes = int(max(int(v.max()) for v in labels)) + 1
        if self.n_classes < 2:
            raise DataError(f"{self.source}: y holds one class only (label 0); need at least 2")
        self.steps = int(x.shape[1])
        self._shape = tuple(int(s) for s in x.shape[2:])
        self.n_inputs = int(np.prod(self._shape))

    @classmethod
    def from_npz(
        cls,
        path: str | os.PathLike,
        *,
        test_fraction: float | None = None,
        seed: int = 0,
        layout: str = "image",
    ) -> ArrayTask:
        """The task of an ``.npz`` file with arrays ``x``, ``y`` and optionally ``x_test``,
        ``y_test`` (see the module docstring); uncompressed arrays are memory-mapped.

        Args:
            path: the file.
            test_fraction: without ``x_test``: the share of each class held out (default 0.2);
                not allowed when the file has a test split.
            seed, layout: as :class:`ArrayTask`.

        Raises:
            FileNotFoundError: no file at ``path``.
            DataError: a missing or bad array (the message names it), unknown arrays, or a
                ``test_fraction`` for a file that has its own test split.
        """
        path = Path(path)
        arrays = load_npz(path)
        return cls.from_arrays(
            arrays, source=str(path), test_fraction=test_fraction, seed=seed, layout=layout
        )

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, Any],
        *,
        source: str = "data",
        test_fraction: float | None = None,
        seed: int = 0,
        layout: str = "image",
    ) -> ArrayTask:
        """The task of a mapping with keys ``x``, ``y`` (and ``x_test``, ``y_test``), as
        :meth:`from_npz` reads from a file; other keys are an error (a misspelt name would
        otherwise be ignored)."""
        known = ("x", "y", "x_test", "y_test")
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing:
            found = ", ".join(sorted(arrays)) or "no arrays"
            raise DataError(
                f"{source}: no array {' or '.join(repr(k) for k in missing)} (found {found}); "
                "expected x [N, T, F] and y [N], optionally x_test and y_test"
            )
        unknown = sorted(set(arrays) - set(known))
        if unknown:
            raise DataError(
                f"{source}: unknown array(s) {', '.join(map(repr, unknown))}; expected x, y "
                "and optionally x_test, y_test"
            )
        has_test = "x_test" in arrays or "y_test" in arrays
        if has_test and test_fraction is not None:
            raise DataError(
                f"{source}: has its own test split (x_test/y_test), so a test fraction does "
                "not apply"
            )
        return cls(
            arrays["x"],
            arrays["y"],
            arrays.get("x_test"),
            arrays.get("y_test"),
            test_fraction=0.2 if test_fraction is None else test_fraction,
            seed=seed,
            layout=layout,
            source=source,
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(F,)``; ``(C, H, W)`` for images with ``layout="image"``."""
        return self._shape if self.layout == "image" else (self.n_inputs,)

    def num_samples(self, split: str) -> int:
        return len(self._data[split][1])

    def labels(self, split: str = "train") -> Tensor:
        """All labels of ``split``, ``[N]`` int64."""
        _, rows, y = self._data[split]
        return torch.as_tensor(y[rows])

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        x, rows, y = self._data[split]
        picked = rows[ids.cpu().numpy()]
        order = np.argsort(picked, kind="stable")  # read the file front to back
        block = np.empty((len(picked), *x.shape[1:]), dtype=x.dtype)
        block[order] = x[picked[order]]
        xb = torch.from_numpy(block).to(ids.device, torch.float32)  # [B, T, ...]
        xb = xb.transpose(0, 1).reshape(self.steps, len(picked), *self.input_shape)
        return xb, torch.from_numpy(y[picked]).to(ids.device)

    def describe(self) -> dict:
        settings: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "steps": self.steps,
            "input_shape": list(self.input_shape),
            "train_samples": self.num_samples("train"),
            "test_samples": self.num_samples("test"),
            "seed": self.seed,
        }
        if self.test_fraction is not None:
            settings["test_fraction"] = self.test_fraction
        return settings
