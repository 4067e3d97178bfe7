"""`snnsim measure`: refuses without a GPU; the profile it writes validates and is used."""
from __future__ import annotations

import pytest
import torch

from snnsim.energy import estimate, load_hardware
from snnsim.measure import MeasurementUnavailable, base_profile, measure, write_measured_profile
from snnsim.models import build_model
from snnsim.tracking.frame_counts import profile_tracker


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the no-GPU path cannot be shown")
def test_no_gpu_says_so():
    with pytest.raises(MeasurementUnavailable, match="no CUDA GPU visible"):
        measure("asymtrack-t", "cuda", frames=2)


def test_written_profile_validates_and_replaces_the_roofline(tmp_path):
    # The numbers of one NVML run, as measure() returns them (written by hand here: no GPU).
    result = {"gpu": "NVIDIA H100 80GB HBM3", "driver": "550.54", "torch": "2.13.0", "model": "asymtrack-t",
              "weights": "golden", "frames": 200, "date": "2026-11-21", "seconds": 2.0,
              "joules_per_frame": 0.0123, "watts": 123.0, "idle_watts": 70.0,
              "joules_per_frame_above_idle": 0.0053}
    assert base_profile(result["gpu"]) == "gpu-h100"
    path = write_measured_profile(result, tmp_path / "h100-lab.yaml")
    hw = load_hardware(path)
    assert hw.base == "gpu-h100"
    tp = profile_tracker(build_model("asymtrack-t"), frames=1)
    measured = estimate(tp, path, "gpu", model="asymtrack-t")
    assert measured.total_j == pytest.approx(0.0123)
    modelled = estimate(tp, "gpu-h100", "gpu", model="asymtrack-t")
    assert modelled.total_j != pytest.approx(0.0123)


def test_unknown_gpu_needs_a_base(tmp_path):
    with pytest.raises(MeasurementUnavailable, match="--base"):   # a user error: one line, exit 2
        write_measured_profile({"gpu": "Mystery GPU", "driver": "1", "torch": "2", "model": "m", "weights": "w",
                                "frames": 1, "date": "d", "seconds": 1, "joules_per_frame": 1.0, "watts": 1,
                                "idle_watts": 0, "joules_per_frame_above_idle": 1.0}, tmp_path / "x.yaml")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the no-GPU path cannot be shown")
def test_cli_measure_without_gpu_exits_2(capsys, tmp_path):
    from snnsim.cli import main

    assert main(["measure", "asymtrack-t", "--frames", "3", "--out", str(tmp_path / "m.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU visible" in err[0]
    assert not (tmp_path / "m.yaml").exists()
