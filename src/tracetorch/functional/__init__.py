"""Stateless math of tracetorch: traces, neuron steps, rate functions, surrogate spikes.

Every neuron is a state NamedTuple, a parameter NamedTuple and one reference step
``step(c, state, p) -> (output, state)``; :func:`run` and :func:`run_` derive its sequence
forms, and its average output (the local graph of trace learning) lives beside it.
"""

from ._cpp import BACKENDS, backend, get_backend, set_backend
from .alif import ALIFParams, ALIFState, alif_average, alif_step
from .neurons import (
    LIFParams,
    LIFState,
    LIParams,
    LIState,
    li_run_,
    li_step,
    lif_run_,
    lif_step,
    lis_run_,
    lis_step,
)
from .rates import (
    RATE_FUNCTIONS,
    get_rate_fn,
    li_average,
    linear_rate,
    lis_average,
    log_rate,
    mean_field_rate,
    plateau_edges,
    smooth_clamp,
    staircase_rate,
)
from .rlif import RLIFParams, RLIFState, rlif_average, rlif_step
from .runs import run, run_
from .surrogates import (
    SURROGATES,
    atan,
    fast_sigmoid,
    get_surrogate,
    heaviside,
    surrogate_derivative,
)
from .synaptic import SynapticParams, SynapticState, synaptic_average, synaptic_step
from .traces import (
    decay_from_halflife,
    decay_from_horizon,
    decay_from_tau,
    halflife_from_decay,
    horizon_from_decay,
    stationary_value,
    trace_mean,
    trace_run,
    trace_step,
    trace_weights,
)

__all__ = [
    "ALIFParams",
    "ALIFState",
    "BACKENDS",
    "LIFParams",
    "LIFState",
    "LIParams",
    "LIState",
    "RATE_FUNCTIONS",
    "RLIFParams",
    "RLIFState",
    "SURROGATES",
    "SynapticParams",
    "SynapticState",
    "alif_average",
    "alif_step",
    "atan",
    "backend",
    "decay_from_halflife",
    "decay_from_horizon",
    "decay_from_tau",
    "fast_sigmoid",
    "get_backend",
    "get_rate_fn",
    "get_surrogate",
    "halflife_from_decay",
    "heaviside",
    "horizon_from_decay",
    "li_average",
    "li_run_",
    "li_step",
    "linear_rate",
    "lif_run_",
    "lif_step",
    "lis_average",
    "lis_run_",
    "lis_step",
    "log_rate",
    "mean_field_rate",
    "plateau_edges",
    "rlif_average",
    "rlif_step",
    "run",
    "run_",
    "set_backend",
    "smooth_clamp",
    "staircase_rate",
    "stationary_value",
    "surrogate_derivative",
    "synaptic_average",
    "synaptic_step",
    "trace_mean",
    "trace_run",
    "trace_step",
    "trace_weights",
]
