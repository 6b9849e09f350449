"""How tracetorch layers learn: trace mode, eligibility mode (e-prop), BPTT, fidelity tools,
and reward learning with traces (:class:`Reflect`)."""

from .bptt import (
    LEARNING_MODES,
    bptt,
    eligibility,
    learning_mode,
    set_learning,
    trace_layers,
)
from .fidelity import cosine, gradient_fidelity, gradients
from .reward import Reflect, reset_streams
from .trace import TraceFunction, latest_state, local_gradients, trace_apply, trace_backward

__all__ = [
    "LEARNING_MODES",
    "Reflect",
    "TraceFunction",
    "bptt",
    "cosine",
    "eligibility",
    "gradient_fidelity",
    "gradients",
    "latest_state",
    "learning_mode",
    "local_gradients",
    "reset_streams",
    "set_learning",
    "trace_apply",
    "trace_backward",
    "trace_layers",
]
