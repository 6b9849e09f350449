"""How tracetorch layers learn: the trace autograd Function, BPTT mode, fidelity tools."""

from .bptt import LEARNING_MODES, bptt, set_learning, trace_layers
from .fidelity import cosine, gradient_fidelity, gradients
from .trace import TraceFunction, latest_state, local_gradients, trace_apply, trace_backward

__all__ = [
    "LEARNING_MODES",
    "TraceFunction",
    "bptt",
    "cosine",
    "gradient_fidelity",
    "gradients",
    "latest_state",
    "local_gradients",
    "set_learning",
    "trace_apply",
    "trace_backward",
    "trace_layers",
]
