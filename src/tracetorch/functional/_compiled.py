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

Every call is put in one form first (``c`` as ``[K, N, F]``, ``beta``/``theta`` as ``[F]``)
and compiled with dynamic shapes, so a new batch size, feature count or layer type (``LIF``,
``ConvLIF``) does not recompile; dtype (float32, float64), device and reset mode do, once
each. If compiling fails (no C++ compiler for inductor on the CPU, an unsupported GPU, the
recompile limit), tracetorch warns once and keeps the PyTorch form. float16/bfloat16 tensors
keep the PyTorch form (inductor would carry their membranes in float32 between steps).

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


def _lif(zero_reset: bool):
    """The LIF block for one reset mode (a constant of the compiled code)."""

    def block(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        """LIF over ``c [K, N, F]`` out of place: ``(spikes [K, N, F], membrane)``."""
        spikes = []
        for t in range(c.shape[0]):
            m = torch.addcmul(c[t], m, beta)
            s = (m >= theta).to(c.dtype)
            m = m - m * s if zero_reset else m - theta * s
            spikes.append(s)
        return torch.stack(spikes), m

    return block


def _li(c: Tensor, m: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """LI over ``c [K, N, F]`` out of place: ``(membranes [K, N, F], last membrane)``."""
    out = []
    for t in range(c.shape[0]):
        m = torch.addcmul(c[t], m, beta)
        out.append(m)
    return torch.stack(out), m


_BLOCKS = {"lif-subtract": _lif(False), "lif-zero": _lif(True), "li": _li}


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


def _whole_blocks(c: Tensor, m: Tensor) -> int:
    """How many leading steps of ``c`` go through compiled blocks (0: none)."""
    k = int(BLOCK_STEPS)
    if (
        k < 1
        or _state["failed"] is not None
        or c.dim() < 2
        or c.dtype not in (torch.float32, torch.float64)
        or m.dtype != c.dtype
        or m.device != c.device
        or m.shape != c.shape[1:]
        or not c.is_contiguous()
        or (torch.is_grad_enabled() and (c.requires_grad or m.requires_grad))
    ):
        return 0
    return c.shape[0] - c.shape[0] % k


def _run_blocks(name: str, c: Tensor, m: Tensor, *params: Tensor | float) -> tuple[int, Tensor]:
    """Run the leading ``T - T % BLOCK_STEPS`` steps of ``c`` in place with block ``name``.

    Returns ``(steps done, membrane after them)``; ``(0, m)`` where the backend does not apply.
    """
    done = _whole_blocks(c, m)
    flat = [_per_feature(p, c) for p in params]
    if not done or any(p is None for p in flat):
        return 0, m
    k, features = int(BLOCK_STEPS), c.shape[-1]
    c3 = c.view(c.shape[0], -1, features)  # [T, N, F]: one form for every layer type
    state = m.reshape(-1, features)
    block = _compiled(name)
    for start in range(0, done, k):
        try:
            out, state = block(c3[start : start + k], state, *flat)
        except Exception as exc:  # compile failed: warn once, the PyTorch form from here on
            _state["failed"] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            warnings.warn(
                f"tracetorch: torch.compile of the recursion failed ({_state['failed']}); "
                "using the PyTorch form",
                RuntimeWarning,
                stacklevel=4,
            )
            return start, state.view(m.shape)
        # out of place, then one copy: writing into c inside the compiled function made
        # inductor's CPU code 4x slower (30 vs 7 us/step at B=64, F=128; 2026-11-30)
        c3[start : start + k].copy_(out)
    return done, state.view(m.shape)


def lif_run_(
    c: Tensor, m: Tensor, beta: Tensor | float, theta: Tensor | float, zero_reset: bool
) -> tuple[int, Tensor]:
    """LIF on the whole blocks of ``c`` (overwritten by the spikes): ``(steps done, m)``."""
    return _run_blocks("lif-zero" if zero_reset else "lif-subtract", c, m, beta, theta)


def li_run_(c: Tensor, m: Tensor, beta: Tensor | float) -> tuple[int, Tensor]:
    """LI on the whole blocks of ``c`` (overwritten by the membranes): ``(steps done, m)``."""
    return _run_blocks("li", c, m, beta)
