r"""Temporal order: which of two cues came first? Time carries the answer, spike counts do not.

A trial lasts :math:`T` steps. Two **cue** groups, A and B (``cue_channels`` each), fire one
**burst** each: every channel of a group spikes with probability ``burst_rate`` at each of the
``burst`` steps from its onset :math:`o_A` (:math:`o_B`). The onsets are drawn as

.. math::

    g \sim U\{g_{\min}, \dots, g_{\max}\}, \qquad
    o_1 \sim U\{0, \dots, T - \mathrm{burst} - g\}, \qquad o_2 = o_1 + g,

and the label :math:`y` (exactly half of a split's trials each) picks the order:
:math:`(o_A, o_B) = (o_1, o_2)` if :math:`y = 0` (A first), :math:`(o_2, o_1)` if :math:`y = 1`
(B first). So :math:`y = [o_B < o_A]` is a deterministic function of the onsets, and the law
of :math:`(o_A, o_B)` under :math:`y = 1` is the mirror image of the law under :math:`y = 0`.

Every channel, the ``noise_channels`` pure-noise ones included, also spikes with probability
``noise_rate`` at every step (independent of the bursts: :math:`1 - (1 - p)(1 - p_n)` inside
a burst). Each cue fires exactly one burst of the same length in every trial, so the spike
count of every channel over the trial has the same distribution in both classes: a
classifier of time-averaged input (a rate code, an input trace averaged over the trial) is
at chance, and a network must use *when* the cues fired.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import (
    TrialTask,
    _nonnegative_int,
    _positive_int,
    _probability,
    counter_uniform,
    stream_key,
)

__all__ = ["TemporalOrder"]


class TemporalOrder(TrialTask):
    r"""Temporal order of two cue bursts: label 0 if cue A came first, 1 if cue B did.

    Args:
        steps: trial length ``T``.
        cue_channels: channels of each cue group (A, then B).
        noise_channels: extra channels that carry background spikes only.
        burst: steps of each cue's burst.
        burst_rate: spike probability of a cue channel at each step of its burst.
        noise_rate: background spike probability of every channel at every step.
        min_gap, max_gap: range of the gap :math:`g = |o_A - o_B|` between the onsets, in
            steps (both included; ``max_gap + burst <= steps``).
        train_size, test_size: trials per split (the train trials are drawn anew each epoch
            when ``resample``; the test trials are fixed by ``seed``).
        seed: seeds everything.
        resample: fresh train trials every epoch.

    Attributes:
        target_from: ``steps - burst``: by then both bursts have begun in every trial.

    Shape:
        ``batches()`` yields ``x`` ``[T, B, 2 * cue_channels + noise_channels]`` (float 0/1;
        channels: A, B, noise) and ``y`` ``[B]`` (int64, 0 or 1).

    Example:
        >>> task = tt.data.TemporalOrder(steps=100)
        >>> x, y = next(task.batches("train", batch_size=32))
        >>> x.shape, y.shape
        (torch.Size([100, 32, 8]), torch.Size([32]))
        >>> task.onsets("train", torch.arange(3))    # [3, 2]: (o_A, o_B) per trial
    """

    name = "order"

    def __init__(
        self,
        steps: int = 100,
        *,
        cue_channels: int = 2,
        noise_channels: int = 4,
        burst: int = 5,
        burst_rate: float = 0.8,
        noise_rate: float = 0.02,
        min_gap: int = 5,
        max_gap: int = 50,
        train_size: int = 2048,
        test_size: int = 512,
        seed: int = 0,
        resample: bool = True,
    ) -> None:
        self.steps = _positive_int(steps, "steps")
        self.cue_channels = _positive_int(cue_channels, "cue_channels")
        self.noise_channels = _nonnegative_int(noise_channels, "noise_channels")
        self.burst = _positive_int(burst, "burst")
        self.burst_rate = _probability(burst_rate, "burst_rate", open_low=True)
        self.noise_rate = _probability(noise_rate, "noise_rate")
        self.min_gap = _positive_int(min_gap, "min_gap")
        self.max_gap = _positive_int(max_gap, "max_gap")
        if self.min_gap > self.max_gap:
            raise ValueError(
                f"min_gap must be <= max_gap, got min_gap={min_gap} > max_gap={max_gap}"
            )
        if self.max_gap + self.burst > self.steps:
            raise ValueError(
                f"max_gap + burst must be <= steps (the second burst must fit in the trial), "
                f"got max_gap={max_gap} + burst={burst} > steps={steps}"
            )
        self.train_size = _positive_int(train_size, "train_size")
        self.test_size = _positive_int(test_size, "test_size")
        self.seed = int(seed)
        self.resample = bool(resample)
        self.n_inputs = 2 * self.cue_channels + self.noise_channels
        self.n_classes = 2
        self.target_from = self.steps - self.burst

    @property
    def channel_groups(self) -> dict[str, range]:
        """Input channels of each group: ``{"cue A": ..., "cue B": ..., "noise": ...}``."""
        c = self.cue_channels
        return {
            "cue A": range(0, c),
            "cue B": range(c, 2 * c),
            "noise": range(2 * c, self.n_inputs),
        }

    def _label_table(self, split: str, draw: int) -> Tensor:
        """Labels of every trial of the split, exactly half 0. ``[N]`` int64."""
        return self._balanced(split, draw, "label")

    def onsets(self, split: str, ids: Tensor, epoch: int = 0) -> Tensor:
        """Burst onsets ``(o_A, o_B)`` of trials ``ids``, ``[B, 2]`` int64 on ``ids``' device.

        The label of a trial is ``int(o_B < o_A)``.
        """
        draw = self._draw(split, epoch)
        label = self._label_table(split, draw)[ids.cpu()].to(ids.device)
        key = stream_key(self.seed, self.name, split, draw, "onsets")
        u = counter_uniform(key, ids, 0, 1, 2, dtype=torch.float64)[0]  # [B, 2], exact in f64
        n_gaps = self.max_gap - self.min_gap + 1
        gap = self.min_gap + (u[:, 0] * n_gaps).floor().to(torch.int64)
        n_first = self.steps - self.burst - gap + 1  # first onsets that let the second fit
        first = (u[:, 1] * n_first).floor().to(torch.int64)
        second = first + gap
        onset_a = torch.where(label == 0, first, second)
        onset_b = torch.where(label == 0, second, first)
        return torch.stack([onset_a, onset_b], dim=1)

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        onsets = self.onsets(split, ids, epoch)  # [B, 2]
        label = (onsets[:, 1] < onsets[:, 0]).to(torch.int64)
        t = torch.arange(self.steps, device=ids.device).view(-1, 1, 1)  # [T, 1, 1]
        on = onsets.unsqueeze(0)  # [1, B, 2]
        in_burst = (t >= on) & (t < on + self.burst)  # [T, B, 2]: cue A, cue B
        in_burst = in_burst.repeat_interleave(self.cue_channels, dim=2)  # [T, B, 2c]
        p_burst = 1 - (1 - self.burst_rate) * (1 - self.noise_rate)
        p = torch.full((self.steps, len(ids), self.n_inputs), self.noise_rate, device=ids.device)
        p[:, :, : 2 * self.cue_channels].masked_fill_(in_burst, p_burst)
        key = stream_key(self.seed, self.name, split, self._draw(split, epoch), "spikes")
        u = counter_uniform(key, ids, 0, self.steps, self.n_inputs)  # [T, B, F]
        return (u < p).to(torch.float32), label

    def describe(self) -> dict:
        return {
            "name": self.name,
            "steps": self.steps,
            "cue_channels": self.cue_channels,
            "noise_channels": self.noise_channels,
            "burst": self.burst,
            "burst_rate": self.burst_rate,
            "noise_rate": self.noise_rate,
            "min_gap": self.min_gap,
            "max_gap": self.max_gap,
            "train_size": self.train_size,
            "test_size": self.test_size,
            "seed": self.seed,
            "resample": self.resample,
        }
