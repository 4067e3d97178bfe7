"""Energy: cited hardware profiles (data) and the estimators that price counts with them.

    from snnsim.energy import estimate, load_hardware, list_hardware
    e = estimate(profile, "loihi", "loihi")   # -> Energy: layers table, total_j, omitted, ...

This package reads count tables only; it imports no torch.
"""
from .counts import read_counts
from .estimate import (
    ESTIMATOR_FUNCTIONS,
    estimate,
    estimate_all,
    estimator_options,
    summarise,
)
from .profiles import find_measurement, list_hardware, load_hardware, load_hardware_dict
from .result import Energy
from .schema import (
    CONSTANTS,
    ESTIMATOR_REQUIREMENTS,
    ESTIMATORS,
    Constant,
    HardwareProfile,
    HardwareProfileError,
    validate_profile,
)

__all__ = [
    "CONSTANTS", "ESTIMATORS", "ESTIMATOR_FUNCTIONS", "ESTIMATOR_REQUIREMENTS", "Constant",
    "Energy", "HardwareProfile", "HardwareProfileError", "estimate", "estimate_all",
    "estimator_options", "find_measurement", "list_hardware", "load_hardware",
    "load_hardware_dict", "read_counts", "summarise", "validate_profile",
]
