r"""The Yin-Yang dataset (Kriener et al., 2021), generated in code: 4 inputs, 3 classes.

Points :math:`(x, y)` are drawn uniformly in the disc of radius :math:`R = 0.5` centred at
:math:`(R, R)` and labelled yin (0), yang (1) or dot (2, the two small discs of radius
:math:`r = 0.1`) by the yin-yang symbol's geometry. The inputs are
:math:`(x, y, 1 - x, 1 - y)`, all in [0, 1] (the mirrored pair keeps the total input constant).
As in the reference implementation, each sample first picks its class uniformly, then draws
points until one of that class comes up, so the classes are balanced; a linear classifier
reaches only about 64%, so the task needs a hidden layer.

:class:`YinYang` spike-codes the points: ``"rate"`` (Bernoulli with probability
:math:`p_{\max} x_f` per step) or ``"latency"`` (one spike per input at step
:math:`\mathrm{round}((1 - x_f)(T - 1))`: large values spike early).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..encode import latency
from .base import FeatureTask, _one_of, _positive_int, _probability

__all__ = ["YinYang", "make_yinyang", "yinyang_class"]

R_BIG = 0.5
R_SMALL = 0.1


def yinyang_class(x: np.ndarray, y: np.ndarray, r_small: float = R_SMALL, r_big: float = R_BIG):
    """Class of points inside the yin-yang disc: 0 yin, 1 yang, 2 dot (arrays of any shape)."""
    d_right = np.hypot(x - 1.5 * r_big, y - r_big)
    d_left = np.hypot(x - 0.5 * r_big, y - r_big)
    in_dot = (d_right < r_small) | (d_left < r_small)
    yin = (
        (d_right <= r_small)
        | ((d_left > r_small) & (d_left <= 0.5 * r_big))
        | ((y > r_big) & (d_right > 0.5 * r_big))
    )
    return np.where(in_dot, 2, yin.astype(np.int64))


def make_yinyang(
    n: int, seed: int = 0, r_small: float = R_SMALL, r_big: float = R_BIG
) -> tuple[Tensor, Tensor]:
    """``n`` class-balanced Yin-Yang points.

    Args:
        n: number of samples.
        seed: seed of numpy's generator (the reference uses 42 train, 41 validation, 40 test).
        r_small, r_big: radii of the dots and of the whole symbol.

    Returns:
        ``(features [n, 4] float32 in [0, 1]: (x, y, 1-x, 1-y), labels [n] int64)``.
    """
    n = _positive_int(n, "n")
    rng = np.random.default_rng(seed)
    goal = rng.integers(0, 3, size=n)
    points = np.zeros((n, 2))
    todo = np.arange(n)
    while todo.size:  # rejection sampling, vectorised: redraw the samples not yet accepted
        xy = rng.random((todo.size, 2)) * 2 * r_big
        inside = np.hypot(xy[:, 0] - r_big, xy[:, 1] - r_big) <= r_big
        ok = inside & (yinyang_class(xy[:, 0], xy[:, 1], r_small, r_big) == goal[todo])
        points[todo[ok]] = xy[ok]
        todo = todo[~ok]
    x, y = points[:, 0] / (2 * r_big), points[:, 1] / (2 * r_big)
    features = np.stack([x, y, 1 - x, 1 - y], axis=1).astype(np.float32)
    return torch.from_numpy(features), torch.from_numpy(goal.astype(np.int64))


class YinYang(FeatureTask):
    """The Yin-Yang task: 4 spike-coded inputs, 3 balanced classes.

    Args:
        steps: timesteps ``T`` per sample.
        encoding: ``"rate"`` (Bernoulli, redrawn each train epoch) or ``"latency"`` (one
            deterministic spike per input).
        max_prob: spike probability of an input equal to 1 (rate coding).
        train_size, test_size: points per split.
        seed: seeds the points (train and test from different streams) and the spikes.

    Shape:
        ``batches()`` yields ``x`` ``[T, B, 4]`` (float 0/1) and ``y`` ``[B]`` (int64).
    """

    name = "yinyang"
    ENCODINGS = ("rate", "latency")

    def __init__(
        self,
        steps: int = 50,
        *,
        encoding: str = "rate",
        max_prob: float = 1.0,
        train_size: int = 5000,
        test_size: int = 1000,
        seed: int = 0,
    ) -> None:
        self.steps = _positive_int(steps, "steps")
        self.encoding = _one_of(encoding, self.ENCODINGS, "encoding")
        self.max_prob = _probability(max_prob, "max_prob", open_low=True)
        self.train_size = _positive_int(train_size, "train_size")
        self.test_size = _positive_int(test_size, "test_size")
        self.seed = int(seed)
        self._data = {
            "train": make_yinyang(self.train_size, seed=2 * self.seed + 42),
            "test": make_yinyang(self.test_size, seed=2 * self.seed + 43),
        }
        self.n_inputs = 4
        self.n_classes = 3

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        xb, y = self._rows(split, ids)  # points [B, 4]
        if self.encoding == "latency":
            return latency(xb, self.steps), y
        draw = epoch if split == "train" else 0
        return self._rate_code(split, ids, xb * self.max_prob, draw), y

    def describe(self) -> dict:
        return {
            "name": self.name,
            "steps": self.steps,
            "encoding": self.encoding,
            "max_prob": self.max_prob,
            "train_size": self.train_size,
            "test_size": self.test_size,
            "seed": self.seed,
        }
