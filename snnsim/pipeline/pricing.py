"""One pricing loop: counts x every (hardware profile, estimator) pair a run asks for.

`price_each` is the loop (profile, tracking, Loihi and the demo's pair all go through it);
`tracker_energy` prices a tracker profile -- the mean tracking frame (template cached) and the
template pass on its own -- and `price_tracker` adds those blocks to the profile's summary.
A device measurement of a model (a measured joules-per-frame) covers a tracking frame only, so
the template pass is priced with model=None.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import pandas as pd

from snnsim.energy import estimate, load_hardware
from snnsim.energy.result import Energy
from snnsim.energy.schema import HardwareProfile

__all__ = ["number_format", "price_each", "price_tracker", "tracker_energy"]


def number_format(hw: HardwareProfile, energy: Energy | None) -> str | None:
    """The number format a figure prices: what its estimate says (every estimate sets
    details['precision']; a GPU's is the precision it picked), else the profile's; None for an
    estimate that does not apply (there is no figure to have a format)."""
    if energy is not None and not energy.applicable:
        return None
    if energy is not None and energy.details.get("precision"):
        return str(energy.details["precision"])
    return hw.number_format


def price_each(counts, profiles: Iterable[HardwareProfile | str], *, estimators: Iterable[str] | None = None,
               model: str | None = None, skip: Iterable[tuple[str, str]] = ()
               ) -> Iterator[tuple[HardwareProfile, str, Energy | None]]:
    """(profile, estimator, Energy) for every profile in order and each of its estimators (or
    only those in `estimators` it declares); pairs in `skip` ((profile name, estimator), e.g.
    already known not to apply) yield None without being priced."""
    wanted = None if estimators is None else set(estimators)
    skipped = set(skip)
    for ref in profiles:
        hw = load_hardware(ref)
        for est in hw.estimators:
            if wanted is not None and est not in wanted:
                continue
            if (hw.name, est) in skipped:
                yield hw, est, None
                continue
            yield hw, est, estimate(counts, hw, est, model=model)


def tracker_energy(tp, hardware) -> tuple[dict, dict | None, list[dict], pd.DataFrame | None]:
    """Energy of a tracker profile per tracking frame. Returns (energy, energy_template,
    details, layers):
    energy          {hardware: {estimator: J per tracking frame, or None if not applicable}}
    energy_template {hardware: {estimator: J per template pass}} (None when no template)
    details         one dict per (hardware, estimator): applicable, reason, omitted, assumptions,
                    and the profile's file (hardware_file: a user's by absolute path) and sha256
    layers          per-layer energy of the mean frame and of the template pass (energy.csv)
    """
    profiles = [load_hardware(h) for h in hardware]      # read once: priced and cited alike
    energy: dict = {}
    energy_template: dict = {}
    details: list[dict] = []
    tables = []
    template = dict(((hw.name, est), e) for hw, est, e in price_each(tp.template, profiles)) \
        if tp.template is not None else {}
    for hw, est, frame in price_each(tp, profiles):      # the mean over the profiled frames
        energy.setdefault(hw.name, {})[est] = frame.total_j
        row = frame.to_dict()
        prov = hw.provenance()
        row["hardware_file"], row["hardware_sha256"] = prov["file"], prov["sha256"]
        passes = [("frame", frame)]
        tpl = template.get((hw.name, est))
        if tpl is not None:
            energy_template.setdefault(hw.name, {})[est] = tpl.total_j
            row["template_total_j"] = tpl.total_j
            passes.append(("template", tpl))
        details.append(row)
        for branch, e in passes:
            if e.applicable and len(e.layers):
                tables.append(e.layers.assign(hardware=hw.name, estimator=est, branch=branch))
    layers = pd.concat(tables, ignore_index=True) if tables else None
    return energy, (energy_template or None), details, layers


def price_tracker(tp, hardware, command: str = "profile") -> tuple[dict, pd.DataFrame | None]:
    """(summary dict -- the RunSummary core of `command` plus the profile's sections and the
    pricing details --, per-layer energy table or None) of a tracker profile priced on
    `hardware` (names, paths or profiles)."""
    profiles = [load_hardware(h) for h in hardware]
    energy, energy_template, details, layers = tracker_energy(tp, profiles) if profiles else ({}, None, [], None)
    precision: dict = {}
    for row in details:
        precision.setdefault(row["hardware"], {})[row["estimator"]] = row["details"]["precision"]   # None: no figure
    summary = tp.summary(command, energy, energy_template, precision)
    summary["energy_details"] = details
    # where each profile's numbers came from: file (a user's by absolute path) and sha256
    summary["hardware_profiles"] = [hw.provenance() for hw in profiles]
    return summary, layers
