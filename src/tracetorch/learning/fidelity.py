"""How close trace gradients are to BPTT gradients: per-parameter cosine similarity."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext

from torch import Tensor, nn

from .bptt import bptt

__all__ = ["cosine", "gradient_fidelity", "gradients"]


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine similarity of two flattened tensors; 0.0 if either is all zeros."""
    a, b = a.flatten().double(), b.flatten().double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def gradients(
    model: nn.Module,
    batches: Iterable[tuple[Tensor | Iterable[Tensor], object]],
    loss_fn: Callable[[Tensor, object], Tensor],
    *,
    bptt_mode: bool = False,
) -> dict[str, Tensor]:
    """The gradients of ``loss_fn`` summed over ``batches``, without touching ``.grad``.

    Each batch ``(x, target)`` starts from reset states; ``x`` is a sequence ``[T, B, ...]`` or
    an iterable of chunks ``[t, B, ...]`` fed in order (a stream), and the loss is taken on the
    output of the last call. With ``bptt_mode`` it runs inside :func:`tracetorch.bptt`. The
    parameters' existing ``.grad`` are restored afterwards and the states reset.

    Returns:
        ``{parameter name: summed gradient}`` for each parameter that received one.
    """
    if not hasattr(model, "reset_states"):
        raise TypeError("model must have reset_states(); wrap the layers in tt.nn.Sequential")
    saved = {n: p.grad for n, p in model.named_parameters()}
    grads: dict[str, Tensor] = {}
    try:
        for x, target in batches:
            model.zero_grad(set_to_none=True)
            model.reset_states()
            with bptt(model) if bptt_mode else nullcontext():
                for chunk in [x] if isinstance(x, Tensor) else x:
                    out = model(chunk)
                loss_fn(out, target).backward()
            for n, p in model.named_parameters():
                if p.grad is not None:
                    g = p.grad.detach().clone()
                    grads[n] = grads[n] + g if n in grads else g
        model.reset_states()
    finally:
        for n, p in model.named_parameters():
            p.grad = saved[n]
    return grads


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
        x: input sequence ``[T, B, ...]``, or an iterable of chunks (see :func:`gradients`).
        target: whatever ``loss_fn`` takes as its second argument.
        loss_fn: e.g. ``lambda out, y: F.cross_entropy(out[-1], y)``.

    Returns:
        ``{parameter name: cosine}`` for each parameter that received a BPTT gradient.
    """
    trace = gradients(model, [(x, target)], loss_fn)
    reference = gradients(model, [(x, target)], loss_fn, bptt_mode=True)
    return {name: cosine(trace[name], g) if name in trace else 0.0 for name, g in reference.items()}
