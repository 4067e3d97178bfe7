"""Write a tracker profile's files: summary.json, layers.csv, neurons.csv, energy.csv.

Files are written to a temporary name and moved into place only when complete, so an
error never leaves a partial report posing as a whole one.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import tempfile


def write_profile(tp, out: pathlib.Path, hardware: list[str]) -> dict:
    from snnsim.tracking.frame_energy import tracker_energy

    out = pathlib.Path(out)
    summary = tp.summary()
    energy_layers = None
    summary["energy"], summary["energy_template"], summary["energy_details"] = {}, None, []
    if hardware:
        summary["energy"], summary["energy_template"], summary["energy_details"], energy_layers = \
            tracker_energy(tp, hardware)
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
