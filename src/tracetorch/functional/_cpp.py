r"""Optional C++ kernels for the in-place neuron recursions (CPU, float32/float64).

The PyTorch form of :func:`~tracetorch.functional.lif_run_` launches three kernels per step,
each a full pass over ``[B, F]`` plus the dispatcher's overhead (about 1-3 us each). This file
holds the same recursion as one C++ loop per chunk, which reads each current once and writes
each spike once:

.. math::
    m \leftarrow \mathrm{fma}(\beta, m, c_t), \quad s = [m \ge \theta], \quad
    m \leftarrow m - \theta s, \quad c_t \leftarrow s

with the same fused multiply-add as ``torch.addcmul``, so the results are bit for bit those of
the PyTorch form (checked in ``tests/test_fastpath.py``). Rows of the batch are split over
PyTorch's intra-op threads.

The kernels are compiled on first use with :func:`torch.utils.cpp_extension.load_inline` (a C++
compiler and ninja are needed; 20-80 s once, then loaded from PyTorch's extension cache in
well under a second). They are off by default: turn them on with
``tt.functional.set_backend("cpp")`` or the environment variable ``TRACETORCH_BACKEND=cpp``.
If the build fails, tracetorch warns once and keeps the PyTorch form.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

__all__ = ["BACKENDS", "backend", "get_backend", "set_backend"]

BACKENDS = ("torch", "cpp", "compile", "triton")
"""Names of the recursion backends: ``"torch"`` (PyTorch ops), ``"cpp"`` (the optional
C++ extension), ``"compile"`` (blocks of steps fused by ``torch.compile``) and ``"triton"``
(a chunk as one Triton kernel); see :func:`set_backend`."""

_SOURCE = r"""
#include <torch/extension.h>
#include <algorithm>
#include <cmath>

// c: [T, rows, F] contiguous (overwritten), m: [rows, F] contiguous (updated), beta/theta: [F].
template <typename T>
void lif_kernel(T* c, T* m, const T* beta, const T* theta, int64_t steps, int64_t rows,
                int64_t F) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, F * steps));
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < steps; ++t) {
      T* ct = c + t * rows * F;
      for (int64_t r = r0; r < r1; ++r) {
        T* mr = m + r * F;
        T* cr = ct + r * F;
        for (int64_t f = 0; f < F; ++f) {
          const T v = std::fma(beta[f], mr[f], cr[f]);
          const T s = v >= theta[f] ? T(1) : T(0);
          mr[f] = v - theta[f] * s;
          cr[f] = s;
        }
      }
    }
  });
}

// c: [T, rows, F] contiguous (overwritten by the membranes), m0: [rows, F], beta: [F].
template <typename T>
void li_kernel(T* c, const T* m0, const T* beta, int64_t steps, int64_t rows, int64_t F) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, F * steps));
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < steps; ++t) {
      T* ct = c + t * rows * F;
      const T* prev = t ? c + (t - 1) * rows * F : m0;
      for (int64_t r = r0; r < r1; ++r) {  // rows, then features: no index division
        T* cr = ct + r * F;
        const T* pr = prev + r * F;
        for (int64_t f = 0; f < F; ++f) {
          cr[f] = std::fma(beta[f], pr[f], cr[f]);
        }
      }
    }
  });
}

void lif_run_(torch::Tensor c, torch::Tensor m, torch::Tensor beta, torch::Tensor theta) {
  const int64_t steps = c.size(0), F = c.size(-1);
  const int64_t rows = steps && F ? c.numel() / (steps * F) : 0;
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "lif_run_", [&] {
    lif_kernel<scalar_t>(c.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(),
                         beta.data_ptr<scalar_t>(), theta.data_ptr<scalar_t>(), steps, rows, F);
  });
}

void li_run_(torch::Tensor c, torch::Tensor m0, torch::Tensor beta) {
  const int64_t steps = c.size(0), F = c.size(-1);
  const int64_t rows = steps && F ? c.numel() / (steps * F) : 0;
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "li_run_", [&] {
    li_kernel<scalar_t>(c.data_ptr<scalar_t>(), m0.data_ptr<scalar_t>(),
                        beta.data_ptr<scalar_t>(), steps, rows, F);
  });
}
"""

_CFLAGS = ["-O3", "-march=native", "-ffp-contract=off"]

_state: dict[str, Any] = {"backend": None, "module": None, "failed": False}
_lock = threading.Lock()


def _cpu_fingerprint() -> str:
    """What ``-march=native`` depends on, so that a shared cache never mixes machines."""
    flags = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            flags += next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return flags


def _module() -> Any | None:
    """The compiled kernels, building them on first call; None if they cannot be built."""
    if _state["module"] is not None or _state["failed"]:
        return _state["module"]
    with _lock:
        if _state["module"] is None and not _state["failed"]:
            key = "\n".join([_SOURCE, *_CFLAGS, torch.__version__, _cpu_fingerprint()])
            name = "tracetorch_kernels_" + hashlib.sha256(key.encode()).hexdigest()[:12]
            try:
                from torch.utils.cpp_extension import load_inline

                _state["module"] = load_inline(
                    name,
                    cpp_sources=_SOURCE,
                    functions=["lif_run_", "li_run_"],
                    extra_cflags=_CFLAGS,
                    verbose=False,
                )
            except Exception as exc:  # no compiler, no ninja, no headers, ...
                _state["failed"] = True
                warnings.warn(
                    f"tracetorch: could not build the C++ kernels ({type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}); "
                    "using the PyTorch form",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _state["module"]


def set_backend(name: str) -> None:
    """Choose how the in-place recursions (``lif_run_``, ``li_run_``, ``lis_run_``) run.

    Args:
        name: ``"torch"`` (default): PyTorch ops, any device. ``"cpp"``: a compiled C++ loop for
            CPU tensors of float32/float64 (other tensors keep the PyTorch form); it is built
            now if it was not built before (20-80 s once, then cached on disk).
            ``"compile"``: blocks of ``tt.functional._compiled.BLOCK_STEPS`` steps fused into
            one kernel each by :func:`torch.compile`, any device (meant for GPUs, where the
            per-step kernel launches are the cost); compiled on first use per shape family.
            ``"triton"``: a whole chunk as one Triton kernel (CUDA tensors; needs the
            ``triton`` extra; ``TRITON_INTERPRET=1`` runs it on CPU tensors, slowly).

    ``"torch"`` and ``"cpp"`` give the same results bit for bit; ``"compile"`` and
    ``"triton"`` the same up to the rounding of ``beta * m + c`` (see ``docs/speed.md``).

    Raises:
        ValueError: ``name`` is not one of :data:`BACKENDS`.
        RuntimeError: ``"compile"`` or ``"triton"`` where it cannot run (the reason is given).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    if name == "compile":
        from . import _compiled

        if (reason := _compiled.available()) is not None:
            raise RuntimeError(f"backend 'compile' is not available here: {reason}")
    if name == "triton":
        from . import _triton

        if (reason := _triton.available()) is not None:
            raise RuntimeError(f"backend 'triton' is not available here: {reason}")
    _state["backend"] = name
    if name == "cpp":
        _module()


@contextmanager
def backend(name: str) -> Iterator[None]:
    """Use backend ``name`` (one of :data:`BACKENDS`) inside a ``with`` block, then restore.

    Example:
        >>> with tt.functional.backend("cpp"):
        ...     out = net(x)
    """
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        _state["backend"] = previous


def get_backend() -> str:
    """The current backend, one of :data:`BACKENDS` (``TRACETORCH_BACKEND`` sets the default)."""
    if _state["backend"] is None:
        name = os.environ.get("TRACETORCH_BACKEND", "torch").strip().lower() or "torch"
        if name not in BACKENDS:
            warnings.warn(
                f"TRACETORCH_BACKEND={name!r} is not one of {BACKENDS}; using 'torch'",
                RuntimeWarning,
                stacklevel=2,
            )
            name = "torch"
        _state["backend"] = name
    return _state["backend"]


def _per_feature(p: Tensor | float, like: Tensor) -> Tensor | None:
    """``p`` as a contiguous ``[F]`` tensor of ``like``'s dtype, or None if it is per element."""
    p = torch.as_tensor(p, dtype=like.dtype, device=like.device)
    if p.dim() > 1 or (p.dim() == 1 and p.shape[0] not in (1, like.shape[-1])):
        return None
    return p.expand(like.shape[-1]).contiguous()


def _usable(c: Tensor, m: Tensor) -> bool:
    return (
        get_backend() == "cpp"
        and c.device.type == "cpu"
        and c.dtype in (torch.float32, torch.float64)
        and m.dtype == c.dtype
        and c.dim() >= 2
        and c.is_contiguous()
        and m.shape == c.shape[1:]
        and not (torch.is_grad_enabled() and (c.requires_grad or m.requires_grad))
    )


def lif_run_(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor) -> tuple[Tensor, Tensor] | None:
    """The C++ form of :func:`tracetorch.functional.lif_run_`; None where it does not apply."""
    if not _usable(c, m):
        return None
    b, th = _per_feature(beta, c), _per_feature(theta, c)
    if b is None or th is None or (module := _module()) is None:
        return None
    m = m.contiguous().clone()
    module.lif_run_(c, m, b, th)
    return c, m


def li_run_(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor] | None:
    """The C++ form of :func:`tracetorch.functional.li_run_`; None where it does not apply."""
    if not _usable(c, m):
        return None
    b = _per_feature(beta, c)
    if b is None or (module := _module()) is None:
        return None
    if c.shape[0] == 0:
        return c, m.clone()
    module.li_run_(c, m.contiguous(), b)
    return c, c[-1].clone()
