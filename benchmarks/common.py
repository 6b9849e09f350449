"""Shared pieces of the benchmarks: the network spec, streamed input, memory probes, machine info.

Everything here is plain PyTorch and the standard library, so the peer adapters and the three
cases (:mod:`benchmarks.cost`, :mod:`benchmarks.accuracy`, :mod:`benchmarks.fidelity`) measure
with the same tools.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import gc
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

# Environment of every benchmark subprocess: one thread everywhere. Timings run under glibc's
# default allocator, as a user runs (issue 13).
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
# Memory (peak RSS) is measured in a separate process with glibc's mmap threshold fixed at
# 64 KiB. With glibc's default (dynamic) threshold, the first freed multi-MB block raises the
# threshold and later blocks of that size stay in the heap, so RSS would depend on the
# allocation history (tracetorch at T=1000: 16.5 MiB dynamic vs 8.6 MiB fixed); fixed, every
# block of 64 KiB or more goes back to the OS when freed.
MEMORY_ENV = {**THREAD_ENV, "MALLOC_MMAP_THRESHOLD_": "65536"}


@dataclass(frozen=True)
class NetSpec:
    """The benchmark network: ``n_in - hidden... - n_out``, LIF hidden layers, LI readout.

    Discrete dynamics every library is configured to match (per step, per layer):
    ``m = beta * m + W x + b; s = [m >= threshold]; m -= threshold * s`` for the LIF layers and
    ``m = readout_beta * m + W x + b`` (output ``m``) for the readout. ``neuron="rlif"`` makes
    the hidden layers recurrent (``+ V s_prev`` in the membrane update: ``tt.nn.RLIF``,
    snnTorch's ``RLeaky``); the GRU ceiling reads only the sizes.
    """

    n_in: int = 64
    hidden: tuple[int, ...] = (128, 128)
    n_out: int = 10
    beta: float = 0.9
    threshold: float = 1.0
    readout_beta: float = 0.9
    neuron: str = "lif"

    def __post_init__(self) -> None:
        if self.neuron not in ("lif", "rlif"):
            raise ValueError(f"neuron must be 'lif' or 'rlif', got {self.neuron!r}")

    @property
    def sizes(self) -> list[int]:
        return [self.n_in, *self.hidden, self.n_out]


def set_threads(n: int = 1) -> None:
    """Fix PyTorch's intra- and inter-op threads (inter-op only before any parallel work)."""
    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(n)


def bernoulli_stream(
    steps: int, batch: int, n_in: int, p: float, chunk: int, seed: int
) -> Iterator[Tensor]:
    """Bernoulli(p) spikes ``[t, batch, n_in]`` in chunks of ``chunk`` steps, made on the fly.

    The whole sequence is never held, so the input costs the same memory at any ``steps``.
    """
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, steps, chunk):
        t = min(chunk, steps - start)
        yield torch.rand(t, batch, n_in, generator=gen).lt_(p)  # 2x faster than bernoulli_


def train_step(runner, optimizer: torch.optim.Optimizer, chunks: Iterable[Tensor], y: Tensor):
    """One training step as every benchmark times it: ``runner.reset()``, the ``chunks`` of one
    sequence in order, cross-entropy of the readout after the last chunk, backward, optimizer
    step. Only the last chunk's output is kept (the previous one is dropped before the next
    chunk runs, so that it never holds memory twice)."""
    import torch.nn.functional as F

    runner.reset()
    out = None
    for chunk in chunks:
        out = None
        out = runner.run(chunk)
    loss = F.cross_entropy(out, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


# ----------------------------------------------------------------------------- memory
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since the last :func:`reset_peak_rss` (or process start)."""
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS; False if not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def release_memory() -> None:
    """Collect garbage and give freed heap pages back to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class _Packed:
    """What autograd holds instead of a saved tensor while :class:`SavedBytes` is active."""

    __slots__ = ("tensor", "key", "owner")

    def __init__(self, tensor: Tensor, key: tuple[int, int], owner: SavedBytes) -> None:
        self.tensor, self.key, self.owner = tensor, key, owner

    def __del__(self) -> None:
        self.owner._release(self.key)


class SavedBytes:
    """Bytes that autograd saves for backward, counted inside the ``with`` block.

    Each saved tensor is wrapped while its graph node lives, so the count follows the saved
    storages that are alive: ``peak`` is the largest total of distinct live storages (what a
    graph through time holds at its largest), ``total`` the bytes packed (each storage once
    per life), ``tensors`` the number of tensors saved.
    """

    def __init__(self) -> None:
        self.live_bytes = 0
        self.peak = 0
        self.total = 0
        self.tensors = 0
        self._count: dict[tuple[int, int], int] = {}

    def _pack(self, t: Tensor) -> _Packed:
        self.tensors += 1
        try:
            storage = t.untyped_storage()
            key = (storage.data_ptr(), storage.nbytes())
        except (RuntimeError, NotImplementedError):  # sparse or other exotic tensors
            key = (id(t), t.numel() * t.element_size())
        n = self._count.get(key, 0)
        self._count[key] = n + 1
        if n == 0:
            self.live_bytes += key[1]
            self.total += key[1]
            self.peak = max(self.peak, self.live_bytes)
        return _Packed(t, key, self)

    def _release(self, key: tuple[int, int]) -> None:
        n = self._count.get(key, 0) - 1
        if n <= 0:
            self._count.pop(key, None)
            self.live_bytes -= key[1]
        else:
            self._count[key] = n

    def __enter__(self) -> SavedBytes:
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda p: p.tensor)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


# ----------------------------------------------------------------------------- environment
PACKAGES = ("tracetorch", "torch", "snntorch", "norse", "spikingjelly", "numpy")


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    head = ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (ROOT / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return None


def machine_info(threads: int) -> dict[str, Any]:
    """Date, versions, CPU and thread count, for the header of every report."""
    mem_total = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as f:
            mem_total = int(f.readline().split()[1]) * 1024
    load = None
    with contextlib.suppress(OSError):
        load = os.getloadavg()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": {name: package_version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": mem_total,
        "threads": threads,
        "loadavg_at_start": load,
        "platform": platform.platform(),
        "commit": git_commit(),
    }


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename): a run stopped
    while writing leaves the old file, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None
