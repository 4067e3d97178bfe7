"""Per-frame tracker energy: mean profiled frame, template priced apart, ANN on Loihi n/a."""
from __future__ import annotations

import pytest

from snnsim.models import build_model
from snnsim.tracking.frame_counts import profile_tracker
from snnsim.pipeline import tracker_energy

E_MAC_FP32 = 4.6e-12   # Horowitz 2014, 45 nm fp32 MAC (mult 3.7 + add 0.9 pJ)


@pytest.fixture(scope="module")
def asym():
    return profile_tracker(build_model("asymtrack-t", "golden"), "golden", frames=2)


def test_ann_ac_mac_is_e_mac_times_macs(asym):
    energy, template, details, layers = tracker_energy(asym, ["horowitz-45nm-fp32", "loihi2"])
    assert asym.totals["mac_ops"] == asym.totals["dense_macs"] > 0      # an ANN: every MAC real
    assert energy["horowitz-45nm-fp32"]["ac-mac"] == pytest.approx(E_MAC_FP32 * asym.totals["mac_ops"], rel=1e-12)
    assert template["horowitz-45nm-fp32"]["ac-mac"] == pytest.approx(
        E_MAC_FP32 * asym.template_totals["mac_ops"], rel=1e-12)
    # memory-aware adds memory traffic on top of the same compute
    assert energy["horowitz-45nm-fp32"]["memory-aware"] > energy["horowitz-45nm-fp32"]["ac-mac"]
    # an ANN on Loihi 2 is not applicable: None with a reason, never 0
    assert energy["loihi2"]["loihi"] is None
    loihi = [d for d in details if d["hardware"] == "loihi2"][0]
    assert not loihi["applicable"] and loihi["reason"]
    assert set(layers.branch) == {"frame", "template"}
    frame_ac = layers[(layers.branch == "frame") & (layers.estimator == "ac-mac")]
    assert frame_ac.total_J.sum() == pytest.approx(energy["horowitz-45nm-fp32"]["ac-mac"], rel=1e-9)
