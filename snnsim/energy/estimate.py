"""`estimate(profile, hardware, estimator)`: counts x profile -> Energy.

One registry of small, pure estimator functions keyed by name; this module only dispatches.
Every estimator takes the common options `view` ('full' | 'thop') and `model` (the model's
name, used to find device measurements), plus its own:
- loihi: mean_hops
- gpu: power_mode, precision, utilisation, use_measured
"""
from __future__ import annotations

import inspect
import os
from typing import Callable

from .ac_mac import estimate_ac_mac
from .counts import read_counts
from .gpu import estimate_gpu
from .memory_aware import estimate_memory_aware
from .neuromorphic import estimate_loihi, estimate_synop
from .profiles import list_hardware, load_hardware
from .result import Energy
from .schema import ESTIMATORS, HardwareProfile

ESTIMATOR_FUNCTIONS: dict[str, Callable[..., Energy]] = {
    "ac-mac": estimate_ac_mac,
    "memory-aware": estimate_memory_aware,
    "loihi": estimate_loihi,
    "synop": estimate_synop,
    "gpu": estimate_gpu,
}
assert tuple(ESTIMATOR_FUNCTIONS) == ESTIMATORS, "schema and registry disagree"


def estimator_options(name: str) -> list[str]:
    """The estimator-specific keyword options of one estimator."""
    params = list(inspect.signature(ESTIMATOR_FUNCTIONS[name]).parameters)
    return params[2:]


def estimate(profile, hardware: str | os.PathLike | HardwareProfile,
             estimator: str | None = None, *, view: str = "full", model: str | None = None,
             **options) -> Energy:
    """Energy per sample of the counted model `profile` on `hardware` under `estimator`.

    profile    the counting engine's Profile (layers / neurons tables, totals, timesteps,
               is_spiking) -- or any object with those attributes.
    hardware   a shipped profile name (`list_hardware()`), a YAML path or a HardwareProfile.
    estimator  one of the estimators the profile declares; default: its first.
    view       'full' (every operator) or 'thop' (conv / linear modules only).
    model      the model's name, to find a device measurement (default: profile.model).
    """
    hw = load_hardware(hardware)
    name = estimator or hw.estimators[0]
    if name not in ESTIMATOR_FUNCTIONS:
        raise ValueError(f"unknown estimator '{name}' (known: {', '.join(ESTIMATOR_FUNCTIONS)})")
    if name not in hw.estimators:
        raise ValueError(f"estimator '{name}' does not apply to hardware '{hw.name}' "
                         f"(its estimators: {', '.join(hw.estimators)})")
    allowed = estimator_options(name)
    for key in options:
        if key not in allowed:
            raise ValueError(f"estimator '{name}' has no option '{key}' (options: "
                             f"{', '.join(['view', 'model'] + allowed)})")
    counts = read_counts(profile, view=view, model=model)
    return ESTIMATOR_FUNCTIONS[name](counts, hw, **options)


def estimate_all(profile, hardware=None, *, view: str = "full",
                 model: str | None = None) -> list[Energy]:
    """Every estimator of every given hardware (default: all shipped, non-measured
    profiles), with default options."""
    names = hardware if hardware is not None else list_hardware(include_measured=False)
    if isinstance(names, (str, os.PathLike, HardwareProfile)):
        names = [names]
    out = []
    for ref in names:
        hw = load_hardware(ref)
        for est in hw.estimators:
            out.append(estimate(profile, hw, est, view=view, model=model))
    return out
