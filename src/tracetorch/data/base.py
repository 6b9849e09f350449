r"""What every bundled task shares: the task interface, spike streams and a counter-based RNG.

A **task** hands out batches ``(x, y)`` of one split (``"train"`` or ``"test"``): ``x`` is a
spike sequence, time first, ``[T, B, F]`` (a tensor, or a :class:`SpikeStream` that produces
the sequence chunk by chunk for tasks too long to hold in memory) and ``y`` holds the labels,
``[B]`` (int64). Everything random is drawn from a **counter-based** generator: the value of
sample ``i``, channel ``f`` at step ``t`` is a hash of ``(seed, split, epoch, i, t, f)``. So a
sample is the same whatever the batch size, the order of the batches, the chunk size of a
stream or the device, and a test split is fixed once its seed is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

__all__ = ["SpikeStream", "SpikeTask", "counter_uniform", "stream_key"]

SPLITS = ("train", "test")
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _signed(v: int) -> int:
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def _mix_int(z: int) -> int:
    """splitmix64's finaliser on a Python int (unsigned 64-bit arithmetic)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def _mix(z: Tensor) -> Tensor:
    """splitmix64's finaliser on an int64 tensor, in place (wrapping products, logical shifts)."""
    tmp = torch.empty_like(z)
    for shift, mult in ((30, _signed(_M1)), (27, _signed(_M2)), (31, None)):
        torch.bitwise_right_shift(z, shift, out=tmp)
        tmp.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(tmp)
        if mult is not None:
            z.mul_(mult)
    return z


def stream_key(*parts: int | str) -> int:
    """A 64-bit key (as a signed int) from seeds, names and counters, e.g. ``(seed, "test")``."""
    z = 0
    for part in parts:
        if isinstance(part, str):
            part = int.from_bytes(part.encode(), "little")
        z = _mix_int(z + _GOLDEN + (int(part) & _MASK64))
    return _signed(z)


def counter_uniform(
    key: int,
    samples: Tensor,
    start: int,
    stop: int,
    channels: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Uniform numbers in [0, 1) for steps ``start..stop-1`` of the given samples.

    Element ``[t - start, b, f]`` depends only on ``(key, samples[b], t, f)``: it is
    splitmix64 of the counter ``t * channels + f`` in a stream seeded by ``(key, sample)``.

    Args:
        key: from :func:`stream_key`.
        samples: sample ids, int64 ``[B]`` (on the device the result should be on).
        start, stop: step range.
        channels: ``F``.

    Returns:
        ``[stop - start, B, F]`` of ``dtype``, 24 random bits each.
    """
    device = samples.device
    base = samples.to(torch.int64) * _signed(_GOLDEN) + key
    base = _mix(base)  # [B]: one independent stream per sample
    t = torch.arange(start, stop, device=device, dtype=torch.int64)
    f = torch.arange(channels, device=device, dtype=torch.int64)
    counter = (t.view(-1, 1) * channels + f.view(1, -1)) * _signed(_GOLDEN)  # [T, F]
    z = counter.unsqueeze(1) + base.view(1, -1, 1)  # [T, B, F]
    z = _mix(z)
    z.bitwise_right_shift_(40)  # the top 24 bits (the shift may drag the sign along: mask it)
    z.bitwise_and_(0xFFFFFF)
    return z.to(dtype).mul_(1.0 / (1 << 24))


class SpikeStream:
    """A spike sequence ``[T, B, F]`` made chunk by chunk, never held whole in memory.

    Iterating yields the chunks (``[t, B, F]``, ``t <= chunk_size``, in order) of a sequence of
    ``steps`` steps. The values do not depend on the chunk size. ``tensor()`` materialises the
    whole sequence (only for short ones).

    Args:
        make_chunk: ``make_chunk(start, stop) -> [stop - start, B, F]``.
        steps: sequence length ``T``.
        batch_size: ``B``.
        n_inputs: ``F``.
        chunk_size: default number of steps per chunk.
    """

    def __init__(
        self,
        make_chunk: Callable[[int, int], Tensor],
        steps: int,
        batch_size: int,
        n_inputs: int,
        chunk_size: int = 1000,
    ) -> None:
        self._make_chunk = make_chunk
        self.steps = steps
        self.batch_size = batch_size
        self.n_inputs = n_inputs
        self.chunk_size = _positive_int(chunk_size, "chunk_size")

    @property
    def shape(self) -> torch.Size:
        """``(T, B, F)`` of the whole sequence."""
        return torch.Size((self.steps, self.batch_size, self.n_inputs))

    def chunks(self, chunk_size: int | None = None) -> Iterator[Tensor]:
        """Yield the sequence as consecutive chunks ``[t, B, F]``, ``chunk_size`` steps at most."""
        size = self.chunk_size if chunk_size is None else _positive_int(chunk_size, "chunk_size")
        for start in range(0, self.steps, size):
            yield self._make_chunk(start, min(start + size, self.steps))

    def __iter__(self) -> Iterator[Tensor]:
        return self.chunks()

    def select(self, index: slice) -> SpikeStream:
        """The stream of some of the samples, ``[T, B', F]``: ``index`` selects along the
        batch (e.g. ``slice(rank, None, world)``, one process's share of a batch)."""
        if not isinstance(index, slice):
            raise TypeError(f"index must be a slice, got {type(index).__name__}")
        make_chunk = self._make_chunk
        return SpikeStream(
            lambda start, stop: make_chunk(start, stop)[:, index],
            self.steps,
            len(range(self.batch_size)[index]),
            self.n_inputs,
            self.chunk_size,
        )

    def tensor(self) -> Tensor:
        """The whole sequence ``[T, B, F]`` (allocates ``T * B * F`` values)."""
        return self._make_chunk(0, self.steps)

    def __repr__(self) -> str:
        return f"SpikeStream(shape={tuple(self.shape)}, chunk_size={self.chunk_size})"


class SpikeTask:
    """Base class of the bundled tasks (:class:`Digits`, :class:`Evidence`, ...).

    Attributes:
        name: the task's name (``"digits"``, ...).
        n_inputs: input channels ``F``.
        n_classes: number of labels.
        steps: sequence length ``T``.
        target_from: first step at which the label is known from the input so far (a
            training loop that learns every k steps takes its losses from there on).
        streaming: whether :meth:`batches` yields :class:`SpikeStream` instead of tensors.
        input_shape: shape of one step of one sample, ``x.shape[2:]`` (default
            ``(n_inputs,)``; ``(1, 8, 8)`` for ``Digits(layout="image")``).
    """

    name: str = "task"
    n_inputs: int
    n_classes: int
    steps: int
    target_from: int = 0
    streaming: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one step of one sample: ``x`` is ``[T, B, *input_shape]``."""
        return (self.n_inputs,)

    def num_samples(self, split: str) -> int:
        """Number of samples in ``split``."""
        raise NotImplementedError

    def num_batches(self, split: str, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields for this split and batch size."""
        n = self.num_samples(split)
        batch_size = _positive_int(batch_size, "batch_size")
        return n // batch_size if drop_last else -(-n // batch_size)

    def batches(
        self,
        split: str = "train",
        batch_size: int = 64,
        *,
        epoch: int = 0,
        shuffle: bool | None = None,
        drop_last: bool = False,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[Tensor | SpikeStream, Tensor]]:
        """Yield ``(x, y)`` batches of ``split``: ``x`` ``[T, B, *input_shape]``, ``y`` ``[B]``.

        Args:
            split: ``"train"`` or ``"test"``.
            batch_size: samples per batch (the last batch may be smaller).
            epoch: seeds the order and, for the train split, the spike noise of this pass.
            shuffle: shuffle the samples; default: for ``"train"`` only.
            drop_last: drop a last, smaller batch.
            device: where the tensors are made.
        """
        split = _check_split(split)
        batch_size = _positive_int(batch_size, "batch_size")
        epoch = _nonnegative_int(epoch, "epoch")
        if shuffle is None:
            shuffle = split == "train"
        n = self.num_samples(split)
        if shuffle:
            key = stream_key(self.seed, split, epoch, "order") & _MASK64
            order = torch.randperm(n, generator=torch.Generator().manual_seed(key))
        else:
            order = torch.arange(n)
        device = torch.device("cpu") if device is None else torch.device(device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            ids = order[start : start + batch_size]
            yield self._batch(split, ids.to(device), epoch)

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor | SpikeStream, Tensor]:
        raise NotImplementedError

    seed: int = 0

    def describe(self) -> dict:
        """The task's settings (for logs and checkpoints)."""
        return {
            "name": self.name,
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "steps": self.steps,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({args})"


class FeatureTask(SpikeTask):
    """A task over a fixed table of features per split (``_data[split] = (x [N, F], y [N])``),
    spike-coded per batch (:class:`Digits`, :class:`SequentialDigits`, :class:`YinYang`)."""

    _data: dict[str, tuple[Tensor, Tensor]]

    def num_samples(self, split: str) -> int:
        return len(self._data[split][1])

    def features(self, split: str = "train") -> tuple[Tensor, Tensor]:
        """The split's features ``[N, F]`` and labels ``[N]``, before spike coding."""
        return self._data[split]

    def _rows(self, split: str, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Features ``[B, F]`` and labels ``[B]`` of samples ``ids``, on ``ids``' device."""
        x, y = self._data[split]
        cpu_ids = ids.cpu()
        return x[cpu_ids].to(ids.device), y[cpu_ids].to(ids.device)

    def _rate_code(self, split: str, ids: Tensor, p: Tensor, draw: int) -> Tensor:
        """Bernoulli spikes ``[T, B, F]`` with probability ``p``, ``[B, F]`` (the same at every
        step) or ``[T, B, F]`` (per step), reproducible per sample (counter-based: independent
        of batch size and device) and per ``draw``."""
        key = stream_key(self.seed, self.name, split, draw)
        u = counter_uniform(key, ids, 0, self.steps, self.n_inputs)
        return (u < p).to(torch.float32)


class TrialTask(SpikeTask):
    """Base of the generated trial tasks (:class:`Evidence`, :class:`TemporalOrder`).

    ``train_size`` / ``test_size`` trials; the train split is redrawn every epoch when
    ``resample`` (the draw is the epoch), the test split never; every trial has a binary class
    from a balanced table (exactly half of each split), kept for one ``(split, draw)`` at a time.
    """

    train_size: int
    test_size: int
    resample: bool

    def num_samples(self, split: str) -> int:
        return self.train_size if split == "train" else self.test_size

    def _draw(self, split: str, epoch: int) -> int:
        return epoch if (split == "train" and self.resample) else 0

    def _balanced(self, split: str, draw: int, what: str) -> Tensor:
        """The balanced class of every trial of the split, ``[N]`` int64 (keyed by ``what``)."""
        cache = self.__dict__.get("_balanced_cache", {})
        if (split, draw, what) not in cache:
            key = stream_key(self.seed, self.name, split, draw, what)
            cache = {(split, draw, what): _balanced_labels(key, self.num_samples(split))}
            self.__dict__["_balanced_cache"] = cache  # keep one split's table
        return cache[(split, draw, what)]


def _balanced_labels(key: int, n: int) -> Tensor:
    """Binary labels ``[n]`` (int64), exactly ``n // 2`` zeros, in an order fixed by ``key``.

    Args:
        key: from :func:`stream_key` (e.g. of ``(seed, task, split, draw)``).
        n: number of samples.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(key & _MASK64))
    return (perm >= n // 2).to(torch.int64)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _nonnegative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _one_of(value, choices: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}; got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _probability(value, name: str, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    value = float(value)
    low_ok = value > 0 if open_low else value >= 0
    if not (low_ok and value <= 1):
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{name} must be a probability in {interval}, got {value}")
    return value
