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

import pandas as pd

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
    frames = _frames_of(profile)
    if frames is not None:
        # a tracker profile: energy per tracking frame (template cached) = mean over the
        # profiled frames; the template pass is priced on its own (snnsim.tracking.frame_energy)
        model = model or _name_of(profile)
        parts = [estimate(f, hw, name, view=view, model=model, **options) for f in frames]
        return _mean_energy(parts)
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


def _frames_of(profile) -> list | None:
    frames = getattr(profile, "frames", None)
    if isinstance(frames, (list, tuple)) and frames and not isinstance(
            getattr(profile, "layers", None), pd.DataFrame):
        return list(frames)
    return None


def _name_of(profile) -> str | None:
    name = getattr(profile, "model", None)
    return name if isinstance(name, str) else None


def _mean_layers(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-module mean over frames: numeric columns summed / n, others taken from the first."""
    n = len(tables)
    both = pd.concat(tables, ignore_index=True)
    if both.empty:
        return tables[0]
    numeric = [c for c in both.columns
               if c != "module" and pd.api.types.is_numeric_dtype(both[c])
               and not pd.api.types.is_bool_dtype(both[c])]
    other = [c for c in both.columns if c != "module" and c not in numeric]
    g = both.groupby("module", sort=False)
    out = g[numeric].sum() / n
    for c in other:
        out[c] = g[c].first()
    return out.reset_index()[list(tables[0].columns)]


def _mean_energy(parts: list[Energy]) -> Energy:
    first = parts[0]
    if not first.applicable:
        return first
    n = len(parts)
    details = dict(first.details)
    details["frames"] = n
    if "time_s" in details:
        details["time_s"] = sum(e.details["time_s"] for e in parts) / n
    note = (f"per tracking frame: mean over {n} profiled frame(s), template cached (the "
            f"template branch runs at initialisation and template updates only and is priced "
            f"separately)")
    return Energy(estimator=first.estimator, hardware=first.hardware, applicable=True,
                  total_j=sum(e.total_j for e in parts) / n,
                  layers=_mean_layers([e.layers for e in parts]),
                  omitted=list(first.omitted), assumptions=list(first.assumptions) + [note],
                  details=details)


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


def summarise(energies: list[Energy]) -> dict[str, dict[str, float | None]]:
    """{hardware: {estimator: joules per sample}} -- the `energy` block of summary.json
    (None where the estimator does not apply)."""
    out: dict[str, dict[str, float | None]] = {}
    for e in energies:
        out.setdefault(e.hardware, {})[e.estimator] = e.total_j
    return out
