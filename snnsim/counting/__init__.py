"""Operator-level counting: dispatch-mode profiler, operand classes, formulas, neuron adapters."""
from .formats import BINARY, SpikeFormat
from .profiler import (BatchSizeError, NonFiniteActivationError, NoNeuronsWarning, Profiler, SpikeFormatWarning,
                       UnseenNeuronsWarning, profile)
from .result import Profile

__all__ = ["BINARY", "SpikeFormat", "Profiler", "Profile", "profile", "NonFiniteActivationError", "NoNeuronsWarning",
           "BatchSizeError", "UnseenNeuronsWarning", "SpikeFormatWarning"]
