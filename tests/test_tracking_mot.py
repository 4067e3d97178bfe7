"""Multi-object runtime: SMTrack detector + TrackTrack association, end to end on a small input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from snnsim.tracking.mot import REID_NOTE, MOTRuntime, letterbox
from snnsim.tracking.run import COUNT_COLUMNS, track_sequence
from snnsim.tracking.synthetic import write_mot_sequence


def test_letterbox_scales_pads_and_normalises():
    img = np.full((60, 100, 3), 255, dtype=np.uint8)
    x, r = letterbox(img, (64, 96))
    assert r == pytest.approx(min(64 / 60, 96 / 100))
    assert x.shape == (1, 3, 64, 96)
    h, w = int(60 * r), int(100 * r)
    white = (1.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    grey = (114 / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, :, 0, 0], white)
    torch.testing.assert_close(x[0, :, h - 1, w - 1], white)
    torch.testing.assert_close(x[0, :, -1, -1], grey)  # padding right / bottom


def test_mot_runtime_feeds_the_associator():
    from snnsim.models import build_model

    model = build_model("smtrack-s", weights="golden")
    seen = []
    rt = MOTRuntime(model, (64, 96), meter=lambda b: (seen.append(b), torch.no_grad())[1], frame_rate=30)
    assert not rt.uses_reid
    img = np.random.default_rng(0).integers(0, 255, size=(60, 100, 3), dtype=np.uint8)
    det = rt.detect(img)
    assert det.ndim == 2 and det.shape[1] == 5 and len(det) <= rt.max_detections
    assert (det[:, 4] >= rt.min_score).all()
    step = rt.step(img)
    assert step.frame == 0 and not step.template_ran and seen == ["search", "search"]
    for tid, box, score in step.tracks:
        assert box.shape == (4,) and box[2] > 0 and box[3] > 0


def test_mot_runtime_rejects_single_object_model():
    from snnsim.models.spiketrack_tiny import build_spiketrack_tiny

    with pytest.raises(ValueError, match="no multi-object runtime"):
        MOTRuntime(build_spiketrack_tiny(None))


@pytest.fixture(scope="module")
def mot_run(tmp_path_factory):
    seq = write_mot_sequence(tmp_path_factory.mktemp("mot") / "MOT-synth", n_frames=3, size=(128, 224),
                             n_targets=3, seed=3)
    out = tmp_path_factory.mktemp("out") / "smtrack"
    summary = track_sequence("smtrack-s", seq, out, hardware=["horowitz-45nm-fp32", "loihi2"],
                             input_size=(96, 160))
    return seq, out, summary


def test_mot_track_writes_motchallenge_results_and_metrics(mot_run):
    from snnsim.tracking.sequences import read_mot_file

    seq, out, s = mot_run
    res = out / f"{seq.name}.txt"
    assert res.is_file()
    rows = read_mot_file(res) if res.read_text() else np.zeros((0, 9))
    if len(rows):
        assert rows[:, 0].min() >= 1 and rows[:, 0].max() <= 3 and (rows[:, 4:6] > 0).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"HOTA", "MOTA", "IDF1"} <= set(metrics) and metrics["n_frames"] == 3 and metrics["gt_ids"] == 3
    assert metrics["reid"] is False and metrics["reid_note"] == REID_NOTE


def test_mot_summary_says_no_reid_and_counts_every_frame(mot_run):
    seq, out, s = mot_run
    assert s["task"] == "mot" and s["reid"] is False and REID_NOTE in s["notes"]
    assert s["template_frames"] == [] and s["template_passes"] == 0 and s["frames"] == 3
    assert s["runtime"]["input_size"] == [96, 160]
    with open(out / "per_frame.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all(r["template_ran"] == "0" for r in rows)
    dense = {float(r["dense_macs"]) for r in rows}
    assert len(dense) == 1 and dense.pop() > 0  # the same detector pass every frame
    assert all(float(r["syn_ops"]) > 0 and float(r["spikes"]) > 0 for r in rows)  # a spiking detector
    assert s["energy"]["loihi2"]["loihi"] is not None
    assert set(COUNT_COLUMNS) <= set(rows[0])
