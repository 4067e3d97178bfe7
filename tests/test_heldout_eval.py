"""Held-out evaluation sets (snnsim.tracking.heldout_eval): what they hold and how they score."""
from __future__ import annotations

import numpy as np
import pytest

from snnsim.models import build_model
from snnsim.tracking.heldout_eval import HELDOUT_SETS, evaluate_sets, heldout_sequences, track_boxes
from snnsim.tracking.heldout_styles import HELDOUT_STYLES, HeldoutSequence
from snnsim.tracking.sot_metrics import sot_metrics, static_boxes


def test_sets_are_the_three_styles_the_first_generator_and_an_in_distribution_reference():
    assert list(HELDOUT_SETS) == [*HELDOUT_STYLES, "first-generator", "diverse"]
    assert [s.held_out for s in HELDOUT_SETS.values()] == [True, True, True, True, False]
    with pytest.raises(ValueError, match="unknown held-out set"):
        heldout_sequences("lasot")


def test_sequences_render_what_the_generators_render():
    (name, frames, gt), = heldout_sequences("glyph-plasma", 1, 5)
    ref = HeldoutSequence("glyph-plasma", seed=0, n_frames=5)
    assert name == "glyph-plasma-0" and gt.shape == (5, 4) and np.array_equal(gt, ref.boxes())
    images = list(frames)
    assert len(images) == 5 and np.array_equal(images[3], ref.frame(3).image)
    assert np.array_equal(list(frames)[3], images[3])        # re-iterable, same frames


def test_static_box_keeps_the_first_box():
    gt = np.array([[10, 10, 20, 20], [30, 10, 20, 20], [50, 10, 20, 20]], dtype=float)
    assert np.array_equal(static_boxes(gt), np.repeat(gt[:1], 3, axis=0))
    m = sot_metrics(static_boxes(gt), gt)
    # IoU 1, 0, 0 (the boxes only touch): success(t) = share of IoU > t = 1/3 for the 20
    # thresholds 0 .. 0.95 and 0 at t = 1
    assert m.auc == pytest.approx(20 * (1 / 3) / 21)


def test_evaluate_rows_per_sequence_and_mean():
    model = build_model("spiketrack-tiny", weights="random")
    rows = evaluate_sets({"tiny": model}, ["checker-blocks"], n_sequences=2, n_frames=6)
    per_seq = [r for r in rows if r["sequence"] != "(mean)"]
    assert {(r["sequence"], r["tracker"]) for r in per_seq} == {
        (f"checker-blocks-{i}", t) for i in range(2) for t in ("static box", "tiny")}
    mean = {r["tracker"]: r for r in rows if r["sequence"] == "(mean)"}
    for tracker in ("static box", "tiny"):
        seqs = [r["auc"] for r in per_seq if r["tracker"] == tracker]
        assert mean[tracker]["auc"] == pytest.approx(np.mean(seqs))    # sequences weigh the same
    # the tracker's boxes are the runtime's: frame 0 is the given box
    (_, frames, gt), = heldout_sequences("checker-blocks", 1, 3)
    boxes = track_boxes(model, frames, gt[0])
    assert boxes.shape == (3, 4) and np.array_equal(boxes[0], gt[0])
