"""Stateless math of tracetorch: traces, neuron steps, rate functions, surrogate spikes."""

from ._cpp import BACKENDS, get_backend, set_backend
from .neurons import li_run, li_run_, li_step, lif_run, lif_run_, lif_step, lis_run, lis_run_
from .rates import (
    RATE_FUNCTIONS,
    get_rate_fn,
    li_average,
    lis_average,
    log_rate,
    mean_field_rate,
    smooth_clamp,
)
from .surrogates import SURROGATES, atan, fast_sigmoid, get_surrogate, heaviside
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
    "BACKENDS",
    "RATE_FUNCTIONS",
    "SURROGATES",
    "atan",
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
    "li_run",
    "li_run_",
    "li_step",
    "lif_run",
    "lif_run_",
    "lif_step",
    "lis_average",
    "lis_run",
    "lis_run_",
    "log_rate",
    "mean_field_rate",
    "set_backend",
    "smooth_clamp",
    "stationary_value",
    "trace_mean",
    "trace_run",
    "trace_step",
    "trace_weights",
]
