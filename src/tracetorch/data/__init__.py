"""Bundled tasks: data that ships with a package or is generated, never downloaded.

Each task yields batches ``(x, y)``: spikes ``x`` ``[T, B, F]`` (time first; a
:class:`SpikeStream` of chunks for :class:`Evidence`) and labels ``y`` ``[B]``, seeded and
reproducible sample by sample (see :mod:`tracetorch.data.base`).

=========== ====================================================== ======= =========
task        what                                                    inputs  classes
=========== ====================================================== ======= =========
``digits``  scikit-learn's 8x8 digits, Bernoulli rate-coded         64      10
``evidence`` Poisson clicks, a delay (any length, streamed), recall 25      2
``yinyang`` the Yin-Yang points, rate- or latency-coded             4       3
=========== ====================================================== ======= =========

>>> task = tt.data.get_task("evidence", delay=300)
>>> for x, y in task.batches("train", batch_size=64):
...     for chunk in x:                      # [<=1000, 64, 25]
...         ...
"""

from __future__ import annotations

from .base import FeatureTask, SpikeStream, SpikeTask, counter_uniform, stream_key
from .digits import Digits, load_digits
from .evidence import Evidence
from .yinyang import YinYang, make_yinyang, yinyang_class

__all__ = [
    "TASKS",
    "Digits",
    "Evidence",
    "SpikeStream",
    "FeatureTask",
    "SpikeTask",
    "YinYang",
    "counter_uniform",
    "get_task",
    "load_digits",
    "make_yinyang",
    "stream_key",
    "yinyang_class",
]

TASKS: dict[str, type[SpikeTask]] = {"digits": Digits, "evidence": Evidence, "yinyang": YinYang}


def get_task(name: str, **kwargs) -> SpikeTask:
    """Build a bundled task by name (``"digits"``, ``"evidence"``, ``"yinyang"``).

    Keyword arguments go to the task's constructor (e.g. ``steps=``, ``delay=``, ``seed=``).
    """
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}") from None
    return cls(**kwargs)
