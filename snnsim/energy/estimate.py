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
    groups = frame_groups_of(profile)
    if groups is not None:
        # frames aggregated as they streamed (snnsim.energy.frames.FrameMean, a tracker
        # profile): each group of one frame structure is priced on its mean frame -- the
        # estimators are linear in the spike counts for a fixed structure -- and the groups
        # are weighted by their frames: the mean of the per-frame energies
        model = model or _name_of(profile)
        parts = [(estimate(g, hw, name, view=view, model=model, **options), n) for g, n in groups]
        return _mark_partial(_weighted_energy(parts, pooled=any(getattr(g, "pooled", False) for g, _ in groups)),
                             profile)
    frames = _frames_of(profile)
    if frames is not None:
        # a tracker profile: energy per tracking frame (template cached) = mean over the
        # profiled frames; the template pass is priced on its own (snnsim.pipeline.tracker_energy)
        model = model or _name_of(profile)
        parts = [estimate(f, hw, name, view=view, model=model, **options) for f in frames]
        return _mark_partial(_mean_energy(parts), profile)
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
    energy = ESTIMATOR_FUNCTIONS[name](counts, hw, **options)
    # every figure says the number format it prices (a GPU estimate sets the precision it chose);
    # an estimate that does not apply has no figure, so no format either
    energy.details["precision"] = (energy.details.get("precision") or hw.number_format) if energy.applicable else None
    return _mark_partial(energy, profile)


def _left_out(profile) -> tuple[list[dict], list[str]]:
    """What the counts of `profile` leave out: the operators that ran with no formula
    ({op, module, ...} rows) and the neuron modules no hook saw -- of the profile itself, or
    of the per-frame tables it lists. The contract is two attributes, `uncounted` (a table or
    a list of {op, module, ...} rows) and `unseen_neurons`: nothing here knows how a tracker
    aggregates its frames."""
    sources = [profile]
    frames = getattr(profile, "frames", None)
    if isinstance(frames, (list, tuple)):
        sources += list(frames)
    rows: list[dict] = []
    unseen: list[str] = []
    for src in sources:
        unc = getattr(src, "uncounted", None)
        if isinstance(unc, pd.DataFrame):
            rows += unc.to_dict(orient="records")
        elif isinstance(unc, (list, tuple)):
            rows += [r for r in unc if isinstance(r, dict)]
        for u in getattr(src, "unseen_neurons", None) or []:
            unseen.append(str(u.get("module")) if isinstance(u, dict) else str(u))
    return rows, list(dict.fromkeys(unseen))


def _mark_partial(energy: Energy, profile) -> Energy:
    """An estimate of counts that leave something out is partial: Energy.complete False and
    an 'omitted' sentence naming what (never a total passed off as complete)."""
    rows, unseen = _left_out(profile)
    if not rows and not unseen:
        return energy
    ops = list(dict.fromkeys(str(r.get("op")) + (f" in {r['module']}" if r.get("module") else "") for r in rows))
    parts = []
    if ops:
        parts.append(f"{len(ops)} operator(s) not counted ({', '.join(ops)}): they ran with no counting formula, "
                     f"so their energy is missing and the total is a lower bound")
    if unseen:
        parts.append(f"{len(unseen)} neuron module(s) never seen running ({', '.join(unseen)}): their updates "
                     f"and spikes are missing")
    return energy.mark_partial("partial: " + "; ".join(parts), ops + [f"neuron {u}" for u in unseen])


def is_frame_aggregated(profile) -> bool:
    """A profile aggregated over streamed frames (it has frame_groups() and no layers table)."""
    return callable(getattr(profile, "frame_groups", None)) and not isinstance(
        getattr(profile, "layers", None), pd.DataFrame)


def frame_groups_of(profile) -> list | None:
    """[(mean frame, frames), ...] of a profile aggregated over streamed frames, else None."""
    return list(profile.frame_groups()) if is_frame_aggregated(profile) else None


def _frames_of(profile) -> list | None:
    frames = getattr(profile, "frames", None)
    if isinstance(frames, (list, tuple)) and frames and not isinstance(
            getattr(profile, "layers", None), pd.DataFrame):
        return list(frames)
    return None


def _name_of(profile) -> str | None:
    name = getattr(profile, "model", None)
    return name if isinstance(name, str) else None


def _mean_layers(tables: list[pd.DataFrame], weights: list[int] | None = None) -> pd.DataFrame:
    """Per-module mean over frames: numeric columns summed / n, others taken from the first
    (`weights`: frames per table, when a table is the mean of several)."""
    n = len(tables) if weights is None else sum(weights)
    if weights is not None:
        tables = [_scaled(t, w) for t, w in zip(tables, weights)]
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


def _scaled(table: pd.DataFrame, w: int) -> pd.DataFrame:
    out = table.copy()
    for c in out.columns:
        if c != "module" and pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c] * w
    return out


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


def _weighted_energy(parts: list[tuple[Energy, int]], pooled: bool = False) -> Energy:
    """Energy per tracking frame from (energy of a group's mean frame, its frames) pairs: the
    frame-weighted mean, i.e. the mean over all frames of the per-frame energies."""
    first = parts[0][0]
    if not first.applicable:
        return first
    n = sum(k for _, k in parts)
    details = dict(first.details)
    details["frames"] = n
    note = (f"per tracking frame: mean over {n} profiled frame(s), template cached (the "
            f"template branch runs at initialisation and template updates only and is priced "
            f"separately); the frames' counts are summed as they stream and priced on the mean "
            f"frame, which equals the mean of the per-frame energies")
    assumptions = list(first.assumptions) + [note]
    if len(parts) == 1:
        return Energy(estimator=first.estimator, hardware=first.hardware, applicable=True,
                      total_j=first.total_j, layers=first.layers, omitted=list(first.omitted),
                      assumptions=assumptions, details=details)
    details["frame_structures"] = len(parts)
    if "time_s" in details:
        details["time_s"] = sum(e.details["time_s"] * k for e, k in parts) / n
    assumptions.append(f"the frames had {len(parts)} different structures (operand classes or "
                       f"sizes); each is priced on its own mean frame and weighted by its frames")
    if pooled:
        assumptions.append("frames beyond the kept structures are pooled: their energy is that of "
                           "their mean counts (exact for ac-mac and synop; spill, capacity and "
                           "roofline decisions are taken on the mean)")
    return Energy(estimator=first.estimator, hardware=first.hardware, applicable=True,
                  total_j=sum(e.total_j * k for e, k in parts) / n,
                  layers=_mean_layers([e.layers for e, _ in parts], [k for _, k in parts]),
                  omitted=list(first.omitted), assumptions=assumptions, details=details)


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
