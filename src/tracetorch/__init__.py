"""tracetorch: train spiking neural networks in constant memory with input traces.

>>> import tracetorch as tt
>>> net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
"""

from . import data, encode, functional, learning, metrics, models, nir, nn, plot, training
from .learning import bptt, eligibility, gradient_fidelity

__version__ = "0.1.0"
"""The version of tracetorch."""

__all__ = [
    "__version__",
    "bptt",
    "data",
    "eligibility",
    "encode",
    "functional",
    "gradient_fidelity",
    "learning",
    "metrics",
    "models",
    "nir",
    "nn",
    "plot",
    "training",
]
