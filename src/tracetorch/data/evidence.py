r"""Evidence accumulation with Poisson clicks, streamed: listen, hold through a delay, answer.

The task of e-prop's "cue accumulation" and of Brody's Poisson clicks, for spiking networks
that must keep evidence for a long time. Input channels, in order:

- group 0 (``group_size`` channels) and group 1 (``group_size`` channels): the clicks;
- the recall cue (``cue_size`` channels).

A trial of ``T = listen + delay + recall`` steps:

1. **listen** (steps ``[0, listen)``): each channel of the winning group clicks with
   probability :math:`\rho (1 + c)` per step, each channel of the other group with
   :math:`\rho (1 - c)`; the contrast :math:`c \sim U[c_{\min}, c_{\max}]` is drawn per trial;
2. **delay** (``delay`` steps): no clicks;
3. **recall** (the last ``recall`` steps): the cue channels fire with probability ``cue_rate``.

Every channel also carries **background** spikes with probability ``background`` at every step
(combined with the above as independent events: :math:`1 - (1-p)(1-p_{bg})`). Without it a
silent delay would leave an input trace that holds the evidence noise-free, and the task would
be trivial for any slow trace. The label is the group whose channels spiked more during the
listening period (background included, as the network sees it); a tie goes to the group with
the higher click rate. Across a split, exactly half of the trials have group 0 as the faster
group.

A batch's input is a :class:`~tracetorch.data.SpikeStream`: chunks are generated on demand,
so a delay of 100,000 steps needs no more memory than one of 100.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import (
    SpikeStream,
    TrialTask,
    _nonnegative_int,
    _positive_int,
    _probability,
    counter_uniform,
    stream_key,
)

__all__ = ["Evidence"]


class Evidence(TrialTask):
    r"""Evidence accumulation (Poisson clicks) with a configurable delay before the recall cue.

    Args:
        delay: silent steps between the end of listening and the recall cue (any length,
            e.g. 100,000: the input is streamed).
        listen: steps of the listening period.
        recall: steps of the recall cue; the answer is read at the last one.
        group_size: channels per click group.
        cue_size: channels of the recall cue.
        click_rate: mean click probability :math:`\rho` per channel and step while listening.
        contrast: range ``(c_min, c_max)`` of the per-trial contrast :math:`c` in [0, 1];
            small contrasts are hard trials.
        background: spike probability of every channel at every step.
        cue_rate: spike probability of a cue channel during the recall.
        train_size, test_size: trials per split (the train trials are drawn anew each epoch
            when ``resample``; the test trials are fixed by ``seed``).
        seed: seeds everything.
        chunk_size: default steps per chunk of the streams.
        resample: fresh train trials every epoch.

    Shape:
        ``batches()`` yields ``x``: a :class:`~tracetorch.data.SpikeStream` of shape
        ``[T, B, 2 * group_size + cue_size]`` (iterate it for chunks ``[t, B, F]``, or
        ``x.tensor()`` for a short one), and ``y`` ``[B]`` (int64, 0 or 1).

    Example:
        >>> task = tt.data.Evidence(delay=300)
        >>> x, y = next(task.batches("train", batch_size=16))
        >>> for chunk in x:            # [<=1000, 16, 25]
        ...     out = net(chunk)
    """

    name = "evidence"
    streaming = True

    def __init__(
        self,
        delay: int = 300,
        *,
        listen: int = 100,
        recall: int = 20,
        group_size: int = 10,
        cue_size: int = 5,
        click_rate: float = 0.05,
        contrast: tuple[float, float] = (0.2, 0.8),
        background: float = 0.01,
        cue_rate: float = 0.2,
        train_size: int = 2048,
        test_size: int = 512,
        seed: int = 0,
        chunk_size: int = 1000,
        resample: bool = True,
    ) -> None:
        self.delay = _nonnegative_int(delay, "delay")
        self.listen = _positive_int(listen, "listen")
        self.recall = _positive_int(recall, "recall")
        self.group_size = _positive_int(group_size, "group_size")
        self.cue_size = _positive_int(cue_size, "cue_size")
        self.click_rate = _probability(click_rate, "click_rate", open_low=True)
        if not (isinstance(contrast, (tuple, list)) and len(contrast) == 2):
            raise TypeError(f"contrast must be a pair (c_min, c_max), got {contrast!r}")
        c_lo, c_hi = (_probability(c, "contrast") for c in contrast)
        if c_lo > c_hi:
            raise ValueError(f"contrast must have c_min <= c_max, got {contrast!r}")
        if self.click_rate * (1 + c_hi) > 1:
            raise ValueError(
                f"click_rate * (1 + c_max) must be <= 1, got {self.click_rate} * (1 + {c_hi})"
            )
        self.contrast = (c_lo, c_hi)
        self.background = _probability(background, "background")
        self.cue_rate = _probability(cue_rate, "cue_rate")
        self.train_size = _positive_int(train_size, "train_size")
        self.test_size = _positive_int(test_size, "test_size")
        self.seed = int(seed)
        self.chunk_size = _positive_int(chunk_size, "chunk_size")
        self.resample = bool(resample)
        self.n_inputs = 2 * self.group_size + self.cue_size
        self.n_classes = 2
        self.steps = self.listen + self.delay + self.recall
        self.target_from = self.listen

    @property
    def channel_groups(self) -> dict[str, range]:
        """Input channels of each group: ``{"group 0": ..., "group 1": ..., "cue": ...}``."""
        g = self.group_size
        return {
            "group 0": range(0, g),
            "group 1": range(g, 2 * g),
            "cue": range(2 * g, self.n_inputs),
        }

    @property
    def phases(self) -> dict[str, tuple[int, int]]:
        """Step ranges ``[start, stop)`` of ``listen``, ``delay`` and ``recall``."""
        a, b = self.listen, self.listen + self.delay
        return {"listen": (0, a), "delay": (a, b), "recall": (b, self.steps)}

    def _winner(self, split: str, draw: int) -> Tensor:
        """Faster group of every trial of the split: exactly half are group 0. ``[N]`` int64."""
        return self._balanced(split, draw, "winner")

    def trial_rates(self, split: str, ids: Tensor, epoch: int = 0) -> Tensor:
        """Click probability of each group per trial while listening, ``[B, 2]``."""
        draw = self._draw(split, epoch)
        winner = self._winner(split, draw)[ids.cpu()].to(ids.device)
        key = stream_key(self.seed, self.name, split, draw, "contrast")
        u = counter_uniform(key, ids, 0, 1, 1)[0, :, 0]
        c_lo, c_hi = self.contrast
        c = c_lo + (c_hi - c_lo) * u
        fast, slow = self.click_rate * (1 + c), self.click_rate * (1 - c)
        rate0 = torch.where(winner == 0, fast, slow)
        rate1 = torch.where(winner == 0, slow, fast)
        return torch.stack([rate0, rate1], dim=1)

    def _batch(self, split: str, ids: Tensor, epoch: int) -> tuple[SpikeStream, Tensor]:
        draw = self._draw(split, epoch)
        rates = self.trial_rates(split, ids, epoch)  # [B, 2]
        key = stream_key(self.seed, self.name, split, draw, "spikes")
        g, bg = self.group_size, self.background
        listen_end, recall_start = self.listen, self.listen + self.delay
        group_p = 1 - (1 - rates) * (1 - bg)  # [B, 2], clicks or background
        cue_p = 1 - (1 - self.cue_rate) * (1 - bg)
        F = self.n_inputs

        # spike probability of each channel in each period, [1, B, F] (broadcast over time)
        p_listen = torch.full((1, len(ids), F), bg, device=ids.device)
        p_listen[0, :, :g] = group_p[:, 0:1]
        p_listen[0, :, g : 2 * g] = group_p[:, 1:2]
        p_recall = torch.full((1, 1, F), bg, device=ids.device)
        p_recall[0, 0, 2 * g :] = cue_p
        periods = (
            (0, listen_end, p_listen),
            (listen_end, recall_start, bg),
            (recall_start, self.steps, p_recall),
        )

        def make_chunk(start: int, stop: int) -> Tensor:
            u = counter_uniform(key, ids, start, stop, F)  # [t, B, F]
            out = torch.empty(u.shape, device=u.device, dtype=torch.bool)
            for a, b, p in periods:
                a, b = max(a, start), min(b, stop)
                if a < b:
                    torch.lt(u[a - start : b - start], p, out=out[a - start : b - start])
            return out.to(torch.float32)

        listening = make_chunk(0, listen_end)
        counts = torch.stack(
            [listening[:, :, :g].sum((0, 2)), listening[:, :, g : 2 * g].sum((0, 2))], dim=1
        )
        winner = (rates[:, 1] > rates[:, 0]).to(torch.int64)
        label = torch.where(
            counts[:, 0] == counts[:, 1], winner, (counts[:, 1] > counts[:, 0]).to(torch.int64)
        )
        stream = SpikeStream(make_chunk, self.steps, len(ids), F, self.chunk_size)
        return stream, label

    def describe(self) -> dict:
        return {
            "name": self.name,
            "delay": self.delay,
            "listen": self.listen,
            "recall": self.recall,
            "group_size": self.group_size,
            "cue_size": self.cue_size,
            "click_rate": self.click_rate,
            "contrast": list(self.contrast),
            "background": self.background,
            "cue_rate": self.cue_rate,
            "train_size": self.train_size,
            "test_size": self.test_size,
            "seed": self.seed,
            "resample": self.resample,
        }
