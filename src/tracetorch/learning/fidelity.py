"""How close trace gradients are to BPTT gradients: per-parameter cosine similarity."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from .bptt import bptt

__all__ = ["gradient_fidelity", "cosine"]


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine similarity of two flattened tensors; 0.0 if either is all zeros."""
    a, b = a.flatten().double(), b.flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def _grads(model: nn.Module, x: Tensor, target, loss_fn) -> dict[str, Tensor]:
    model.zero_grad(set_to_none=True)
    model.reset_states()
    loss = loss_fn(model(x), target)
    loss.backward()
    model.reset_states()
    return {
        name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None
    }


def gradient_fidelity(
    model: nn.Module,
    x: Tensor,
    target,
    loss_fn: Callable[[Tensor, object], Tensor],
) -> dict[str, float]:
    """Cosine similarity between trace and BPTT gradients, per parameter.

    Runs ``loss_fn(model(x), target)`` twice from reset states, once with trace learning and
    once inside :func:`tracetorch.bptt`, on the same input; the forward pass is the same in
    both, only the gradients differ. Existing ``.grad`` are restored afterwards.

    Args:
        model: a module with ``reset_states()`` (e.g. :class:`tracetorch.nn.Sequential`).
        x: input sequence ``[T, B, ...]``.
        target: whatever ``loss_fn`` takes as its second argument.
        loss_fn: e.g. ``lambda out, y: F.cross_entropy(out[-1], y)``.

    Returns:
        ``{parameter name: cosine}`` for each parameter that received a BPTT gradient.
    """
    if not hasattr(model, "reset_states"):
        raise TypeError("model must have reset_states(); wrap the layers in tt.nn.Sequential")
    saved = {n: p.grad for n, p in model.named_parameters()}
    try:
        trace = _grads(model, x, target, loss_fn)
        with bptt(model):
            reference = _grads(model, x, target, loss_fn)
    finally:
        for n, p in model.named_parameters():
            p.grad = saved[n]
    return {name: cosine(trace[name], g) if name in trace else 0.0 for name, g in reference.items()}
