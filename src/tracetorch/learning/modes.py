"""The learning modes of a tracetorch layer, and the one check of a mode's name."""

from __future__ import annotations

__all__ = ["LEARNING_MODES", "check_mode"]

LEARNING_MODES = ("trace", "eligibility", "bptt")
"""The learning modes: ``"trace"``: constant memory, rate gradients from each layer's local
graph (default). ``"eligibility"``: e-prop eligibility traces, timing-aware, memory
O(B x out x in). ``"bptt"``: surrogate gradients through time, O(T) memory, the exact
reference."""


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`LEARNING_MODES`; a ValueError listing them otherwise."""
    if mode not in LEARNING_MODES:
        raise ValueError(f"learning must be one of {LEARNING_MODES}, got {mode!r}")
    return mode
