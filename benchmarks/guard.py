"""Keep timed benchmarks off a busy machine (issue 13).

A training step of a BPTT library is memory-bound: timed while another benchmark ran on the
second core of a 2-core machine, snnTorch took 2.53 s at T = 1,000 instead of 0.77 s, and the
published speed-up was 3x too high. So every timed command of the suite:

- holds :class:`SuiteLock`, an exclusive ``flock`` on one file per machine: a second
  ``benchmarks.run`` or ``benchmarks.speed`` started meanwhile refuses to run (it says which
  process holds the lock);
- checks before it starts that the machine is quiet (:func:`wait_until_quiet`): the 1-min load
  average at most :data:`MAX_LOAD_PER_CORE` per core, and the CPU time other processes used
  over a short window likewise; it waits a while for the load to fall, then refuses, unless
  told to go on anyway (``--allow-load``), which then warns loudly and records it;
- records :func:`snapshot` (load average, CPU busy in other processes) before and after every
  timed case, in the JSON next to the figures.

The load average includes the suite's own workers (it is a 1-minute moving average), so the
per-case check uses the busy-CPU sample instead, taken while the driver sleeps and no worker
runs: it sees only other processes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: the most 1-min load average, and CPU busy in other processes, per core before timing
MAX_LOAD_PER_CORE = 0.5
LOCK_PATH = Path(tempfile.gettempdir()) / "tracetorch-bench.lock"


class BusyError(RuntimeError):
    """Another timed benchmark holds the lock, or the machine is loaded."""


def _cpu_times() -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs from ``/proc/stat`` (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(window_s: float = 0.5) -> float | None:
    """CPU cores kept busy by *other* processes over ``window_s`` (this one sleeps meanwhile)."""
    a = _cpu_times()
    if a is None:
        return None
    time.sleep(window_s)
    b = _cpu_times()
    if b is None or b[1] == a[1]:
        return None
    return (os.cpu_count() or 1) * (b[0] - a[0]) / (b[1] - a[1])


def loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def snapshot(window_s: float = 0.3) -> dict[str, Any]:
    """Load average and busy cores now; stored before and after each timed case."""
    busy = busy_cores(window_s)
    return {
        "loadavg": loadavg(),
        "busy_cores": None if busy is None else round(busy, 2),
        "time": time.time(),
    }


def too_busy(snap: dict[str, Any], *, use_loadavg: bool = True) -> str | None:
    """Why ``snap`` is too loaded to time on, or None."""
    cores = os.cpu_count() or 1
    limit = MAX_LOAD_PER_CORE * cores
    why = []
    load = snap.get("loadavg")
    if use_loadavg and load and load[0] > limit:
        why.append(f"1-min load average {load[0]:.2f} > {limit:.2f} ({MAX_LOAD_PER_CORE}/core)")
    busy = snap.get("busy_cores")
    if busy is not None and busy > limit:
        why.append(f"other processes keep {busy:.2f} of {cores} cores busy (> {limit:.2f})")
    return "; ".join(why) or None


def loud(msg: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n!! {msg}\n{bar}", file=sys.stderr, flush=True)


def wait_until_quiet(
    allow_load: bool, wait_s: float = 180.0, log=print, what: str = "timing"
) -> dict[str, Any]:
    """Wait up to ``wait_s`` for a quiet machine; refuse (:class:`BusyError`) or, with
    ``allow_load``, warn loudly. Returns the snapshot with ``"quiet"`` and ``"forced"`` set."""
    start = time.monotonic()
    snap = snapshot(1.0)
    why = too_busy(snap)
    while why and time.monotonic() - start < wait_s and not allow_load:
        log(f"  machine busy ({why}); waiting for it to quiet down...")
        time.sleep(15.0)
        snap = snapshot(1.0)
        why = too_busy(snap)
    snap["quiet"] = why is None
    snap["forced"] = bool(why) and allow_load
    if why:
        msg = (
            f"the machine is not quiet before {what}: {why}. Timings taken now are not "
            "publishable (issue 13)."
        )
        if not allow_load:
            raise BusyError(msg + " Stop the other jobs, or pass --allow-load to time anyway.")
        loud(msg + " Going on (--allow-load or --quick); the results are marked as loaded.")
        snap["why"] = why
    return snap


class SuiteLock:
    """One timed benchmark at a time on this machine (an exclusive, non-blocking ``flock``)."""

    def __init__(self, what: str, path: Path = LOCK_PATH) -> None:
        self.what, self.path, self._f = what, path, None

    def __enter__(self) -> SuiteLock:
        import fcntl

        f = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise BusyError(
                f"another benchmark is running ({holder}; lock {self.path}). Timed cases "
                "never run concurrently with anything else from the suite (issue 13): wait "
                "for it to finish."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}: {self.what}")
        f.flush()
        self._f = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._f is not None:
            self._f.truncate(0)
            self._f.close()
            self._f = None
