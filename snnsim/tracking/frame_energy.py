"""Energy of a tracker per tracking frame: the mean profiled frame priced by every estimator
a hardware profile declares, the template pass priced on its own.

A frame's energy is that of the search branch + head (the template is cached); the template
pass is charged separately, on the frames where it runs (initialisation and updates).
"""
from __future__ import annotations

import pandas as pd

from ..energy import estimate, load_hardware


def tracker_energy(tp, hardware: list[str]) -> tuple[dict, dict | None, list[dict], pd.DataFrame | None]:
    """Returns (energy, energy_template, details, layers):
    energy          {hardware: {estimator: J per tracking frame, or None if not applicable}}
    energy_template {hardware: {estimator: J per template pass}} (None when no template)
    details         one dict per (hardware, estimator): applicable, reason, omitted, assumptions,
                    and the profile's file (hardware_file: a user's by absolute path) and sha256
    layers          per-layer energy of the mean frame and of the template pass (energy.csv)
    """
    energy: dict = {}
    energy_template: dict = {}
    details: list[dict] = []
    tables = []
    for ref in hardware:
        hw = load_hardware(ref)
        for est in hw.estimators:
            frame = estimate(tp, hw, est)          # mean over the profiled frames
            energy.setdefault(hw.name, {})[est] = frame.total_j
            row = frame.to_dict()
            prov = hw.provenance()
            row["hardware_file"], row["hardware_sha256"] = prov["file"], prov["sha256"]
            passes = [("frame", frame)]
            if tp.template is not None:
                # model=None: a device measurement is a per-frame figure, never a template pass
                tpl = estimate(tp.template, hw, est, model=None)
                energy_template.setdefault(hw.name, {})[est] = tpl.total_j
                row["template_total_j"] = tpl.total_j
                passes.append(("template", tpl))
            details.append(row)
            for branch, e in passes:
                if e.applicable and len(e.layers):
                    tables.append(e.layers.assign(hardware=hw.name, estimator=est, branch=branch))
    layers = pd.concat(tables, ignore_index=True) if tables else None
    return energy, (energy_template or None), details, layers
