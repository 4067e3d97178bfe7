"""A plain (non-editable) `pip install .` carries the package data: hardware profiles and the
shipped checkpoint, under the import names snnsim.models / snnsim.analysis."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_wheel_carries_profiles_weights_and_subpackages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("snnsim-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    profiles = {p.name for p in (REPO / "hardware_profiles").glob("*.yaml")}
    assert profiles and {f"snnsim/hardware_profiles/{p}" for p in profiles} <= names
    assert "snnsim/models/weights/spiketrack_tiny.pt" in names
    assert "snnsim/models/weights/spiketrack_tiny_ann.pt" in names
    for module in ("snnsim/models/registry.py", "snnsim/analysis/report.py", "snnsim/counting/profiler.py",
                   "snnsim/loihi/emulator.py", "snnsim/tracking/sot.py", "snnsim/pipeline/pricing.py", "snnsim/cli.py",
                   "snnsim/datasets/run.py", "snnsim/counting/module_calls.py"):
        assert module in names, module
