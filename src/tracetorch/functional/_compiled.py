r"""The ``"compile"`` backend: the in-place recursions fused by :func:`torch.compile`.

On a GPU the PyTorch form of :func:`~tracetorch.functional.lif_run_` launches three kernels per
step, and at small ``B x F`` the launches, not the arithmetic, are the cost. Here the
recursion over a block of ``BLOCK_STEPS`` steps is one function,

.. math::
    m \leftarrow \beta m + c_t, \quad s_t = [m \ge \theta], \quad
    m \leftarrow m - \theta s_t \ (\text{or } m - m s_t), \qquad t = 1..K,

that :func:`torch.compile` (inductor) turns into one fused kernel per block: each current read
once, each spike written once, the membrane kept in registers. A chunk of ``T`` steps runs
``T // K`` compiled blocks; the remaining ``T % K`` steps take the PyTorch form (a chunk length
that is not a multiple of ``K`` would otherwise compile once per remainder).

Compiling costs seconds on first use per (device, dtype, shape family); the compiled code is
then reused. Inductor may contract ``beta * m + c`` into a fused multiply-add or not, so
membranes can differ from the PyTorch form in the last bit; a spike flips only when a membrane
lies within that rounding of the threshold (``tests/test_fastpath.py`` checks the values
against the reference). Turn it on with ``tt.functional.set_backend("compile")``.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import Tensor

__all__ = ["BLOCK_STEPS", "available", "li_run_", "lif_run_"]

BLOCK_STEPS = 32
"""Steps fused into one compiled kernel (the loop is unrolled: longer blocks compile slower)."""

_state: dict[str, Any] = {"lif": None, "li": None}
_lock = threading.Lock()


def _lif_block(c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, zero_reset: bool):
    """LIF over ``c [K, B, F]`` out of place: ``(spikes [K, B, F], membrane)``."""
    spikes = []
    for t in range(c.shape[0]):
        m = torch.addcmul(c[t], m, beta)
        s = (m >= theta).to(c.dtype)
        m = m - m * s if zero_reset else m - theta * s
        spikes.append(s)
    return torch.stack(spikes), m


def _li_block(c: Tensor, m: Tensor, beta: Tensor):
    """LI over ``c [K, B, F]`` out of place: ``(membranes [K, B, F], last membrane)``."""
    out = []
    for t in range(c.shape[0]):
        m = torch.addcmul(c[t], m, beta)
        out.append(m)
    return torch.stack(out), m


def _compiled(name: str):
    if _state[name] is None:
        with _lock:
            if _state[name] is None:
                fn = _lif_block if name == "lif" else _li_block
                _state[name] = torch.compile(fn, fullgraph=True)
    return _state[name]


def available() -> str | None:
    """None if :func:`torch.compile` can run here, else the reason it cannot."""
    try:
        import torch._dynamo as dynamo

        if not dynamo.is_dynamo_supported():
            return "torch.compile does not support this Python version"
    except Exception as exc:  # noqa: BLE001 - any import failure means no compile
        return f"{type(exc).__name__}: {exc}"
    return None


def _blocks(c: Tensor) -> int:
    """How many leading steps of ``c`` go through compiled blocks (0: none)."""
    k = int(BLOCK_STEPS)
    if k < 1 or c.dim() < 2 or torch.is_grad_enabled() and c.requires_grad:
        return 0
    return c.shape[0] - c.shape[0] % k


def _run_blocks(name: str, c: Tensor, m: Tensor, *args) -> tuple[int, Tensor]:
    """Run the leading ``T - T % BLOCK_STEPS`` steps of ``c`` in place with block ``name``.

    Returns ``(steps done, membrane after them)``; ``(0, m)`` when there is no full block.
    """
    done = _blocks(c)
    if not done:
        return 0, m
    block = _compiled(name)
    k = int(BLOCK_STEPS)
    for start in range(0, done, k):
        out, m = block(c[start : start + k], m, *args)
        c[start : start + k].copy_(out)
    return done, m


def lif_run_(
    c: Tensor, m: Tensor, beta: Tensor, theta: Tensor, zero_reset: bool
) -> tuple[int, Tensor]:
    """LIF on the whole blocks of ``c`` (overwritten by the spikes): ``(steps done, m)``."""
    return _run_blocks("lif", c, m, beta, theta, zero_reset)


def li_run_(c: Tensor, m: Tensor, beta: Tensor) -> tuple[int, Tensor]:
    """LI on the whole blocks of ``c`` (overwritten by the membranes): ``(steps done, m)``."""
    return _run_blocks("li", c, m, beta)
