"""tracetorch layers: thin stateful modules over :mod:`tracetorch.functional`.

Dense: :class:`LIF`, :class:`RLIF` (recurrent), :class:`ALIF` (adaptive threshold),
:class:`Synaptic` (current-based), readouts :class:`LI` and :class:`LIS`. Convolutional:
:class:`ConvLIF`, with :class:`AvgPool2d`, :class:`MaxPool2d` and :class:`Flatten` for
sequences of feature maps. Every tracetorch layer is a :class:`TraceLayer`.
"""

from .alif import ALIF
from .base import TraceLayer
from .conv import AvgPool2d, ConvLIF, Flatten, MaxPool2d
from .li import LI, LIS
from .lif import LIF, SpikingLayer
from .rlif import RLIF
from .sequential import Sequential
from .state import load_stream_state_dict, reset_states, stream_state_dict
from .synaptic import Synaptic

__all__ = [
    "ALIF",
    "AvgPool2d",
    "ConvLIF",
    "Flatten",
    "LI",
    "LIF",
    "LIS",
    "MaxPool2d",
    "RLIF",
    "Sequential",
    "SpikingLayer",
    "Synaptic",
    "TraceLayer",
    "load_stream_state_dict",
    "reset_states",
    "stream_state_dict",
]
