"""Bundled tasks: data that ships with a package or is generated, never downloaded.

Each task yields batches ``(x, y)``: inputs ``x`` ``[T, B, *task.input_shape]`` (time first;
``input_shape`` is ``(F,)`` except for images; a :class:`SpikeStream` of chunks for
:class:`Evidence`) and labels ``y`` ``[B]``, seeded and reproducible sample by sample (see
:mod:`tracetorch.data.base`).

============= ====================================================== =========== =======
task          what                                                    inputs      classes
============= ====================================================== =========== =======
``digits``    scikit-learn's 8x8 digits, Bernoulli rate-coded;        64 or       10
              ``layout="image"`` for ``[T, B, 1, 8, 8]``              1x8x8
``seqdigits`` the same digits row by row, 8 inputs per step,          8           10
              analog (``"current"``) or rate-coded
``evidence``  Poisson clicks, a delay (any length, streamed), recall  25          2
``order``     which of two cue bursts came first (spike counts        8           2
              carry no information: time does)
``yinyang``   the Yin-Yang points, rate- or latency-coded             4           3
============= ====================================================== =========== =======

>>> task = tt.data.get_task("evidence", delay=300)
>>> for x, y in task.batches("train", batch_size=64):
...     for chunk in x:                      # [<=1000, 64, 25]
...         ...
"""

from __future__ import annotations

from .base import FeatureTask, SpikeStream, SpikeTask, counter_uniform, stream_key
from .digits import Digits, SequentialDigits, load_digits
from .evidence import Evidence
from .order import TemporalOrder
from .tonic import SHD, EventTask, SHDFile, bin_events
from .user import ArrayTask, DataError, load_npz
from .yinyang import YinYang, make_yinyang, yinyang_class

__all__ = [
    "SHD",
    "TASKS",
    "ArrayTask",
    "DataError",
    "Digits",
    "EventTask",
    "Evidence",
    "FeatureTask",
    "SHDFile",
    "SequentialDigits",
    "SpikeStream",
    "SpikeTask",
    "TemporalOrder",
    "YinYang",
    "bin_events",
    "counter_uniform",
    "get_task",
    "load_digits",
    "load_npz",
    "make_yinyang",
    "stream_key",
    "yinyang_class",
]

TASKS: dict[str, type[SpikeTask]] = {
    cls.name: cls for cls in (Digits, Evidence, TemporalOrder, SequentialDigits, YinYang)
}
"""Bundled task classes by name (:func:`get_task`)."""


def get_task(name: str, **kwargs) -> SpikeTask:
    """Build a bundled task by name (a key of :data:`TASKS`: ``"digits"``, ``"evidence"``,
    ``"order"``, ``"seqdigits"``, ``"yinyang"``).

    Keyword arguments go to the task's constructor (e.g. ``steps=``, ``delay=``, ``seed=``).
    """
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}") from None
    return cls(**kwargs)
