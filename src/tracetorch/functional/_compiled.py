r"""The ``"compile"`` backend: the in-place recursions fused by :func:`torch.compile`.

On a GPU the PyTorch form of :func:`~tracetorch.functional.lif_run_` launches three kernels per
step, and at small ``B x F`` the launches, not the arithmetic, are the cost. Here the
recursion over a block of ``BLOCK_STEPS`` steps is one function,

.. math::
    m \leftarrow \beta m + c_t, \quad c_t \leftarrow s_t = [m \ge \theta], \quad
    m \leftarrow m - \theta s_t \ (\text{or } m - m s_t), \qquad t = 1..K,

that :func:`torch.compile` (inductor) turns into fused code; its outputs are then copied
into ``c`` (one extra pass over the block). A chunk of ``T`` steps runs ``T // K`` compiled
blocks; the remaining ``T % K`` steps take the PyTorch form (a chunk length that is not a
multiple of ``K`` would otherwise compile once per remainder). With this backend the layers'
automatic chunk is at least ``K`` steps (:meth:`~tracetorch.nn.TraceLayer.chunk_steps`); a
smaller ``chunk_size`` set by hand runs the PyTorch form only.

Every call is put in one form first (``c`` as ``[K, N, F]``, ``beta``/``theta`` as fresh
``[F]`` tensors) and compiled with dynamic shapes: a new batch size (above 1) or layer width
does not recompile; dtype, device, reset mode and a batch or width of 1 do, once each (up
to ``RECOMPILE_LIMIT`` = 64 versions per function; past that, a call runs in the PyTorch
form). If compiling fails (no C++ compiler for inductor on the CPU, an unsupported GPU),
tracetorch warns once and keeps the PyTorch form. Per-element parameters (``ConvLIF``'s
per-channel ``[C, 1, 1]``), tensors that require grad and float16/bfloat16 tensors keep the
PyTorch form (inductor would carry half-precision membranes in float32 between steps).

Inductor may contract ``beta * m + c`` into a fused multiply-add or not, so membranes can
differ from the PyTorch form in the last bit; a spike flips only where a membrane lies within
that rounding of the threshold (``tests/test_fastpath.py`` compares both forms). Turn it on
with ``tt.functional.set_backend("compile")``.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import torch
from torch import Tensor

from ._cpp import _per_feature

__all__ = ["BLOCK_STEPS", "available", "li_run_", "lif_run_"]

BLOCK_STEPS = 32
"""Steps fused into one compiled block (the loop is unrolled: longer blocks compile slower)."""

_state: dict[str, Any] = {"failed": None}
_lock = threading.Lock()
fused_blocks = 0
"""Compiled blocks run so far in this process (diagnostics: did the backend take effect?)."""


def _lif_steps(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, zero_reset: bool):
    """LIF over ``c [K, N, F]`` out of place: ``(spikes [K, N, F], membrane)``."""
    spikes = []
    for t in range(c.shape[0]):
        m = torch.addcmul(c[t], m, beta)
        s = (m >= theta).to(c.dtype)
        m = m - m * s if zero_reset else m - theta * s
        spikes.append(s)
    return torch.stack(spikes), m


# One function (one code object, one cache of compiled versions) per reset mode: dynamo keeps a
# bounded number of versions per code object (RECOMPILE_LIMIT), and dtype, device and batch 1
# each take one.
def _lif_subtract(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor):
    return _lif_steps(c, m, beta, theta, False)


def _lif_zero(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor):
    return _lif_steps(c, m, beta, theta, True)


def _li(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LI over ``c [K, N, F]`` out of place: ``(membranes [K, N, F], last membrane)``."""
    out = []
    for t in range(c.shape[0]):
        m = torch.addcmul(c[t], m, beta)
        out.append(m)
    return torch.stack(out), m


_BLOCKS = {"lif-subtract": _lif_subtract, "lif-zero": _lif_zero, "li": _li}


def _compiled(name: str):
    if name not in _state:
        with _lock:
            if name not in _state:
                _state[name] = torch.compile(_BLOCKS[name], fullgraph=True, dynamic=True)
    return _state[name]


def available() -> str | None:
    """None if :func:`torch.compile` can run here, else the reason it cannot."""
    try:
        import torch._dynamo as dynamo

        if not dynamo.is_dynamo_supported():
            return "torch.compile does not support this Python version"
    except Exception as exc:  # noqa: BLE001 - any import failure means no compile
        return f"{type(exc).__name__}: {exc}"
    return _state["failed"]


def _whole_blocks(c: Tensor, m: Tensor, params: list[Tensor | None]) -> int:
    """How many leading steps of ``c`` go through compiled blocks (0: none)."""
    k = int(BLOCK_STEPS)
    if (
        k < 1
        or _state["failed"] is not None
        or any(p is None for p in params)  # per-element parameters: not one [F] vector
        or c.dim() < 2
        or c.dtype not in (torch.float32, torch.float64)
        or m.dtype != c.dtype
        or m.device != c.device
        or m.shape != c.shape[1:]
        or not c.is_contiguous()
        or (torch.is_grad_enabled() and any(t.requires_grad for t in (c, m, *params)))
    ):
        return 0
    return c.shape[0] - c.shape[0] % k


RECOMPILE_LIMIT = 64
"""Compiled versions kept per block function (dynamo's default, 8, is one model's worth:
dtype, device, reset mode and batch or width 1 each take one)."""


def _more_versions():
    import torch._dynamo.config as dynamo_config

    return dynamo_config.patch(recompile_limit=RECOMPILE_LIMIT)


def _recompile_limit(exc: Exception) -> bool:
    return "RecompileLimit" in type(exc).__name__ or "recompile_limit" in str(exc)


def _run_blocks(name: str, c: Tensor, m: Tensor, *params: Tensor | float) -> tuple[int, Tensor]:
    """Run the leading ``T - T % BLOCK_STEPS`` steps of ``c`` in place with block ``name``.

    Returns ``(steps done, membrane after them)``; ``(0, m)`` where the backend does not apply.
    """
    global fused_blocks
    flat = [_per_feature(p, c) for p in params]
    done = _whole_blocks(c, m, flat)
    if not done:
        return 0, m
    k, features = int(BLOCK_STEPS), c.shape[-1]
    c3 = c.view(c.shape[0], -1, features)  # [T, N, F]: one form for every layer type
    state = m.reshape(-1, features)
    flat = [p.clone() for p in flat]  # fresh [F] tensors: no stride or aliasing variants
    block = _compiled(name)
    for start in range(0, done, k):
        try:
            with torch.no_grad(), _more_versions():
                out, state = block(c3[start : start + k], state, *flat)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:
            if _recompile_limit(exc):  # too many shape variants: this call runs eagerly
                return start, state.view(m.shape)
            # compiling failed: warn once, the PyTorch form from here on
            _state["failed"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            warnings.warn(
                f"tracetorch: torch.compile of the recursion failed ({_state['failed']}); "
                "using the PyTorch form",
                RuntimeWarning,
                stacklevel=4,
            )
            return start, state.view(m.shape)
        # out of place, then one copy: writing into c inside the compiled function made
        # inductor's CPU code about 4x slower (measured 2026-11-30, B = 64, F = 128)
        c3[start : start + k].copy_(out)
        fused_blocks += 1
    return done, state.view(m.shape)


def lif_run_(
    c: Tensor, m: Tensor, beta: Tensor | float, theta: Tensor | float, zero_reset: bool
) -> tuple[int, Tensor]:
    """LIF on the whole blocks of ``c`` (overwritten by the spikes): ``(steps done, m)``."""
    return _run_blocks("lif-zero" if zero_reset else "lif-subtract", c, m, beta, theta)


def li_run_(c: Tensor, m: Tensor, beta: Tensor | float) -> tuple[int, Tensor]:
    """LI on the whole blocks of ``c`` (overwritten by the membranes): ``(steps done, m)``."""
    return _run_blocks("li", c, m, beta)
