"""Energy of a tracker per tracking frame: the counts of each frame priced by every
estimator a hardware profile declares, the template pass priced on its own.

A frame's energy is that of the search branch + head (the template is cached); the template
pass is charged separately, on the frames where it runs (initialisation and updates).
"""
from __future__ import annotations

import pandas as pd

from ..energy import Energy, estimate, load_hardware


def _price(profile, hw, estimator: str, model: str) -> Energy:
    return estimate(profile, hw, estimator, model=model)


def tracker_energy(tp, hardware: list[str]) -> tuple[dict, dict, list[dict], pd.DataFrame | None]:
    """Returns (energy, energy_template, details, layers):
    energy          {hardware: {estimator: J per tracking frame, or None if not applicable}}
    energy_template {hardware: {estimator: J per template pass}} (None when no template)
    details         one dict per (hardware, estimator): applicable, reason, omitted, assumptions
    layers          per-layer energy of the first frame and the template pass (energy.csv)
    """
    energy: dict = {}
    energy_template: dict = {}
    details: list[dict] = []
    tables = []
    for ref in hardware:
        hw = load_hardware(ref)
        for est in hw.estimators:
            per_frame = [_price(p, hw, est, tp.model) for p in tp.frames]
            first = per_frame[0]
            joules = None if not first.applicable else sum(e.total_j for e in per_frame) / len(per_frame)
            energy.setdefault(hw.name, {})[est] = joules
            row = first.to_dict()
            row["joules_per_frame"] = joules
            if tp.template is not None:
                tpl = _price(tp.template, hw, est, tp.model)
                energy_template.setdefault(hw.name, {})[est] = tpl.total_j
                row["joules_template_pass"] = tpl.total_j
                if tpl.applicable and len(tpl.layers):
                    tables.append(tpl.layers.assign(hardware=hw.name, estimator=est, branch="template"))
            details.append(row)
            if first.applicable and len(first.layers):
                tables.append(first.layers.assign(hardware=hw.name, estimator=est, branch="frame"))
    layers = pd.concat(tables, ignore_index=True) if tables else None
    return energy, (energy_template or None), details, layers
