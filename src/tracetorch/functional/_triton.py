r"""The ``"triton"`` backend: the LIF and LI recursions of a whole chunk as one GPU kernel.

Each program owns ``BLOCK`` elements of the ``[B, F]`` state, keeps their membranes in
registers and walks the chunk's ``T`` steps itself:

.. math::
    m \leftarrow \mathrm{fma}(\beta, m, c_t), \quad s = [m \ge \theta], \quad
    m \leftarrow m - \theta s \ (\text{or } m - m s), \quad c_t \leftarrow s

so a chunk costs one launch (the PyTorch form launches three kernels per step) and each
current is read once and each spike written once. Needs the optional ``triton`` package
(``pip install tracetorch[triton]``) and a CUDA tensor; with ``TRITON_INTERPRET=1`` the same
kernels run on CPU tensors in Triton's interpreter (slow: for tests). Tensors it does not
apply to (other devices, per-element parameters, non-contiguous buffers) keep the PyTorch
form.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Any

import torch
from torch import Tensor

from ._cpp import _per_feature

__all__ = ["available", "li_run_", "lif_run_"]

BLOCK = 256
_kernels: dict[str, Any] = {}
_lock = threading.Lock()
_failed: list[str] = []  # the reason the kernels could not be built or launched, once
launches = 0
"""Kernel launches so far in this process (diagnostics: did the backend take effect?)."""


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available() -> str | None:
    """None if the kernels can run here (triton, and CUDA or the interpreter), else why not."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return "the triton package is not installed (pip install tracetorch[triton])"
    if not (torch.cuda.is_available() or _interpreting()):
        return "no CUDA device (TRITON_INTERPRET=1 runs the kernels on the CPU, slowly)"
    return _failed[0] if _failed else None


def _build() -> dict[str, Any]:
    with _lock:
        if not _kernels:
            _kernels.update(_define())
    return _kernels


def _define() -> dict[str, Any]:
    import triton
    import triton.language as tl

    @triton.jit
    def lif_kernel(c, m, beta, theta, steps, n, features, ZERO: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        f = offs % features
        b = tl.load(beta + f, mask=mask)
        th = tl.load(theta + f, mask=mask)
        v = tl.load(m + offs, mask=mask)
        ptr = c + offs  # advanced by n per step: 64-bit pointer arithmetic, no int32 index
        for _ in range(steps):
            v = tl.fma(b, v, tl.load(ptr, mask=mask))
            s = (v >= th).to(v.dtype)
            v = v - v * s if ZERO else v - th * s
            tl.store(ptr, s, mask=mask)
            ptr += n
        tl.store(m + offs, v, mask=mask)

    @triton.jit
    def li_kernel(c, m, beta, steps, n, features, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        b = tl.load(beta + offs % features, mask=mask)
        v = tl.load(m + offs, mask=mask)
        ptr = c + offs
        for _ in range(steps):
            v = tl.fma(b, v, tl.load(ptr, mask=mask))
            tl.store(ptr, v, mask=mask)
            ptr += n
        tl.store(m + offs, v, mask=mask)

    return {"lif": lif_kernel, "li": li_kernel}


def _usable(c: Tensor, m: Tensor, params: list[Tensor | None]) -> bool:
    return (
        (c.is_cuda or (_interpreting() and c.device.type == "cpu"))
        and all(p is not None for p in params)  # per-element parameters: the PyTorch form
        and c.dtype in (torch.float32, torch.float64)
        and m.dtype == c.dtype
        and m.device == c.device
        and c.dim() >= 2
        and c.shape[0] > 0
        and c.is_contiguous()
        and m.shape == c.shape[1:]
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in (c, m, *params)))
        and available() is None
    )


def _launch(name: str, c: Tensor, m: Tensor, *args: Any, **meta: Any) -> Tensor | None:
    """Launch kernel ``name`` on ``c`` (in place) and a copy of ``m``; the new ``m``, or None
    (with one warning) if Triton cannot build or launch it here."""
    global launches
    m = m.contiguous().clone()
    n, features = m.numel(), c.shape[-1]
    try:
        with _on(c.device):
            _build()[name][_grid(n)](c, m, *args, c.shape[0], n, features, BLOCK=BLOCK, **meta)
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # no usable compiler/driver: warn once, the PyTorch form
        _failed.append(f"{type(exc).__name__}: {str(exc).strip()[:200]}")
        warnings.warn(
            f"tracetorch: the Triton kernel failed ({_failed[0]}); using the PyTorch form",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    launches += 1
    return m


def _grid(n: int) -> tuple[int]:
    return ((n + BLOCK - 1) // BLOCK,)


def _on(device: torch.device):
    """Triton launches on the current CUDA device: make it the tensors' one."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def lif_run_(
    c: Tensor, m: Tensor, beta: Tensor | float, theta: Tensor | float, zero_reset: bool
) -> Tensor | None:
    """LIF over ``c [T, ..., F]`` in place (spikes); the new membrane, or None (not here)."""
    params = [_per_feature(beta, c), _per_feature(theta, c)]
    if not _usable(c, m, params):
        return None
    return _launch("lif", c, m, *params, ZERO=zero_reset)


def li_run_(c: Tensor, m: Tensor, beta: Tensor | float) -> Tensor | None:
    """LI over ``c [T, ..., F]`` in place (membranes); the last membrane, or None."""
    params = [_per_feature(beta, c)]
    if not _usable(c, m, params):
        return None
    return _launch("li", c, m, *params)
