r"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

:func:`load_digits` gives the features; :class:`Digits` is the spiking task: each pixel
intensity :math:`x_f \in [0, 1]` becomes a Bernoulli spike train,
:math:`P(s_{t,f} = 1) = p_{\max} x_f` independently at every step (rate coding, as
:func:`tracetorch.encode.rate`).

Needs scikit-learn (``pip install 'tracetorch[examples]'``); no download: the data ships
inside scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import FeatureTask, _positive_int, _probability

__all__ = ["Digits", "load_digits"]


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

    Shape:
        ``batches()`` yields ``x`` ``[T, B, 64]`` (float 0/1) and ``y`` ``[B]`` (int64).

    Example:
        >>> task = tt.data.Digits(steps=25)
        >>> x, y = next(task.batches("train", batch_size=32))
        >>> x.shape, y.shape
        (torch.Size([25, 32, 64]), torch.Size([32]))
    """

    name = "digits"

    def __init__(
        self,
        steps: int = 25,
        *,
        max_prob: float = 1.0,
        test_fraction: float = 0.25,
        seed: int = 0,
        resample: bool = True,
    ) -> None:
        self.steps = _positive_int(steps, "steps")
        self.max_prob = _probability(max_prob, "max_prob", open_low=True)
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)
        self.resample = bool(resample)
        x_train, y_train, x_test, y_test = load_digits(test_fraction, seed)
        self._data = {"train": (x_train, y_train), "test": (x_test, y_test)}
        self.n_inputs = x_train.shape[1]
        self.n_classes = 10

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        x, y = self._rows(split, ids)  # intensities [B, 64] in [0, 1]
        draw = epoch if (split == "train" and self.resample) else 0
        return self._rate_code(split, ids, x * self.max_prob, draw), y

    def describe(self) -> dict:
        return {
            "name": self.name,
            "steps": self.steps,
            "max_prob": self.max_prob,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "resample": self.resample,
        }
