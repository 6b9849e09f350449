"""tracetorch layers: thin stateful modules over :mod:`tracetorch.functional`."""

from .base import TraceLayer
from .li import LI, LIS
from .lif import LIF
from .sequential import Sequential

__all__ = ["LI", "LIF", "LIS", "Sequential", "TraceLayer"]
