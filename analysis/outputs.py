"""Write a tracker profile's files: summary.json, layers.csv, neurons.csv, energy.csv.

Files are written to a temporary name and moved into place only when complete, so an
error never leaves a partial report posing as a whole one.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import tempfile


def energy_tables(tp, hardware: list[str]):
    """summary['energy'] {profile: {estimator: J per frame or None}} and the per-layer table."""
    if not hardware:
        return {}, None
    import pandas as pd

    from snnsim.energy import estimate_tracker

    energy, parts = {}, []
    for name in hardware:
        per_est, layers = estimate_tracker(tp, name)
        energy.update(per_est)
        if layers is not None:
            parts.append(layers)
    return energy, (pd.concat(parts, ignore_index=True) if parts else None)


def write_profile(tp, out: pathlib.Path, hardware: list[str]) -> dict:
    out = pathlib.Path(out)
    energy, energy_layers = energy_tables(tp, hardware)
    summary = tp.summary()
    summary["energy"] = energy
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        tp.layers().to_csv(tmp / "layers.csv", index=False)
        tp.neurons().to_csv(tmp / "neurons.csv", index=False)
        if energy_layers is not None:
            energy_layers.to_csv(tmp / "energy.csv", index=False)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return summary
