r"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

:func:`load_digits` gives the features; two spiking tasks are made of them:

- :class:`Digits`: each pixel intensity :math:`x_f \in [0, 1]` becomes a Bernoulli spike
  train, :math:`P(s_{t,f} = 1) = p_{\max} x_f` independently at every step (rate coding, as
  :func:`tracetorch.encode.rate`), as a vector ``[T, B, 64]`` or an image ``[T, B, 1, 8, 8]``;
- :class:`SequentialDigits`: the image fed row by row, 8 inputs per step, so the answer
  needs the rows seen earlier: row :math:`r` is the input at steps
  :math:`r k, \dots, (r + 1) k - 1` (:math:`k` = ``steps_per_row``).

Needs scikit-learn (``pip install 'tracetorch[examples]'``); no download: the data ships
inside scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import FeatureTask, _nonnegative_int, _one_of, _positive_int, _probability

__all__ = ["Digits", "SequentialDigits", "load_digits"]

SIDE = 8  # the images are SIDE x SIDE


def load_digits(
    test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The digits as intensities in [0, 1], with a stratified train/test split.

    Args:
        test_fraction: share of each class held out for testing.
        seed: seed of the split.

    Returns:
        ``(x_train [N, 64], y_train [N], x_test [M, 64], y_test [M])``; rate-code the
        features with :func:`tracetorch.encode.rate` to get spikes ``[T, B, 64]``.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits task needs scikit-learn: pip install 'tracetorch[examples]'"
        ) from e
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    data = _sk_digits()
    x = data.data.astype(np.float64) / 16.0
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    xt = torch.as_tensor(x, dtype=dtype)
    yt = torch.as_tensor(y)
    return xt[~test], yt[~test], xt[test], yt[test]


class Digits(FeatureTask):
    r"""The digits as a spiking classification task: 64 rate-coded inputs, 10 classes.

    Each split comes from :func:`load_digits` (stratified). A sample's spikes are
    :math:`s_{t,f} = [u_{t,f} < p_{\max} x_f]` with :math:`u` from the task's counter-based
    generator: the test spikes are fixed by ``seed``; the train spikes are drawn anew each
    epoch (``resample=True``, a free augmentation) or fixed too.

    Args:
        steps: timesteps ``T`` per sample.
        max_prob: spike probability :math:`p_{\max}` of a white pixel.
        test_fraction: share of each class held out.
        seed: seeds the split and the spikes.
        resample: draw new train spikes every epoch.
        layout: ``"flat"`` (pixels as 64 channels, row-major) or ``"image"`` (the same
            spikes as a one-channel image, for convolutional layers).

    Shape:
        ``batches()`` yields ``x`` ``[T, B, 64]`` (``layout="flat"``) or ``[T, B, 1, 8, 8]``
        (``layout="image"``), float 0/1, and ``y`` ``[B]`` (int64). ``input_shape`` is
        ``(64,)`` or ``(1, 8, 8)``; ``n_inputs`` is 64 in both layouts.

    Example:
        >>> task = tt.data.Digits(steps=25)
        >>> x, y = next(task.batches("train", batch_size=32))
        >>> x.shape, y.shape
        (torch.Size([25, 32, 64]), torch.Size([32]))
        >>> x, y = next(tt.data.Digits(steps=25, layout="image").batches("train", 32))
        >>> x.shape                          # x.flatten(2) is the flat layout's tensor
        torch.Size([25, 32, 1, 8, 8])
    """

    name = "digits"
    LAYOUTS = ("flat", "image")

    def __init__(
        self,
        steps: int = 25,
        *,
        max_prob: float = 1.0,
        test_fraction: float = 0.25,
        seed: int = 0,
        resample: bool = True,
        layout: str = "flat",
    ) -> None:
        self.steps = _positive_int(steps, "steps")
        self.max_prob = _probability(max_prob, "max_prob", open_low=True)
        self.layout = _one_of(layout, self.LAYOUTS, "layout")
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)
        self.resample = bool(resample)
        x_train, y_train, x_test, y_test = load_digits(test_fraction, seed)
        self._data = {"train": (x_train, y_train), "test": (x_test, y_test)}
        self.n_inputs = x_train.shape[1]
        self.n_classes = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(64,)`` (``layout="flat"``) or ``(1, 8, 8)`` (``layout="image"``)."""
        return (self.n_inputs,) if self.layout == "flat" else (1, SIDE, SIDE)

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        x, y = self._rows(split, ids)  # intensities [B, 64] in [0, 1]
        draw = epoch if (split == "train" and self.resample) else 0
        spikes = self._rate_code(split, ids, x * self.max_prob, draw)  # [T, B, 64]
        return spikes.view(self.steps, len(ids), *self.input_shape), y

    def describe(self) -> dict:
        settings = {
            "name": self.name,
            "steps": self.steps,
            "max_prob": self.max_prob,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "resample": self.resample,
        }
        # only when not the default: checkpoints written before layouts existed still match
        return settings | ({"layout": self.layout} if self.layout != "flat" else {})


class SequentialDigits(FeatureTask):
    r"""The digits fed row by row: 8 inputs per step, 10 classes; time carries the image.

    Sample :math:`i`'s image :math:`x \in [0, 1]^{8 \times 8}` (the split of
    :func:`load_digits`, the same as :class:`Digits` for the same ``test_fraction`` and
    ``seed``) becomes a sequence of :math:`T = 8k + b` steps (:math:`k` = ``steps_per_row``,
    :math:`b` = ``blank_steps``). Row :math:`r` drives the inputs at steps
    :math:`rk, \dots, (r + 1)k - 1`; the last :math:`b` steps are zeros, so a readout at the
    end must hold the image in memory. With intensity :math:`v_{t,f} = x_{\lfloor t/k
    \rfloor, f}` (0 in the blank steps):

    - ``encoding="current"``: :math:`s_{t,f} = v_{t,f}`, analog and deterministic;
    - ``encoding="rate"``: :math:`s_{t,f} = [u_{t,f} < p_{\max} v_{t,f}]`, Bernoulli spikes
      from the task's counter-based generator (the coder of :class:`Digits`): the test spikes
      are fixed by ``seed``, the train spikes are drawn anew each epoch (``resample=True``).

    Args:
        steps_per_row: steps :math:`k` each row is held for.
        encoding: ``"current"`` (analog intensities) or ``"rate"`` (Bernoulli spikes).
        max_prob: spike probability :math:`p_{\max}` of a white pixel (``"rate"`` only).
        blank_steps: zero steps :math:`b` after the last row.
        test_fraction: share of each class held out.
        seed: seeds the split and the spikes.
        resample: draw new train spikes every epoch (``"rate"`` only).

    Attributes:
        target_from: ``7 * steps_per_row``, the step at which the last row arrives.

    Shape:
        ``batches()`` yields ``x`` ``[T, B, 8]`` (float32: intensities in [0, 1] or spikes
        0/1) with ``T = 8 * steps_per_row + blank_steps``, and ``y`` ``[B]`` (int64).

    Example:
        >>> task = tt.data.SequentialDigits(steps_per_row=2, blank_steps=10)
        >>> x, y = next(task.batches("test", batch_size=32, shuffle=False))
        >>> x.shape                          # x[2 * r] is row r of each image
        torch.Size([26, 32, 8])
    """

    name = "seqdigits"
    ENCODINGS = ("current", "rate")

    def __init__(
        self,
        steps_per_row: int = 1,
        *,
        encoding: str = "current",
        max_prob: float = 1.0,
        blank_steps: int = 0,
        test_fraction: float = 0.25,
        seed: int = 0,
        resample: bool = True,
    ) -> None:
        self.steps_per_row = _positive_int(steps_per_row, "steps_per_row")
        self.encoding = _one_of(encoding, self.ENCODINGS, "encoding")
        self.max_prob = _probability(max_prob, "max_prob", open_low=True)
        self.blank_steps = _nonnegative_int(blank_steps, "blank_steps")
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)
        self.resample = bool(resample)
        x_train, y_train, x_test, y_test = load_digits(test_fraction, seed)
        self._data = {"train": (x_train, y_train), "test": (x_test, y_test)}
        self.n_inputs = SIDE
        self.n_classes = 10
        self.steps = SIDE * self.steps_per_row + self.blank_steps
        self.target_from = (SIDE - 1) * self.steps_per_row

    def intensities(self, split: str, ids: Tensor) -> Tensor:
        """The row-by-row intensities ``v`` ``[T, B, 8]`` of samples ``ids`` (before coding)."""
        return self._sequence(self._rows(split, ids)[0])

    def _sequence(self, x: Tensor) -> Tensor:
        """Images ``[B, 64]`` (row-major) -> intensities ``[T, B, 8]``, row ``r`` at steps
        ``r*k .. (r+1)*k - 1``, then ``blank_steps`` zeros."""
        rows = x.view(len(x), SIDE, SIDE).transpose(0, 1)  # [8 rows, B, 8 columns]
        seq = rows.repeat_interleave(self.steps_per_row, dim=0)  # [8k, B, 8]
        blank = seq.new_zeros(self.blank_steps, len(x), SIDE)
        return torch.cat([seq, blank])

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        x, y = self._rows(split, ids)  # [B, 64] in [0, 1]
        v = self._sequence(x)  # [T, B, 8]
        if self.encoding == "current":
            return v, y
        draw = epoch if (split == "train" and self.resample) else 0
        return self._rate_code(split, ids, v * self.max_prob, draw), y

    def describe(self) -> dict:
        return {
            "name": self.name,
            "steps_per_row": self.steps_per_row,
            "encoding": self.encoding,
            "max_prob": self.max_prob,
            "blank_steps": self.blank_steps,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "resample": self.resample,
        }
