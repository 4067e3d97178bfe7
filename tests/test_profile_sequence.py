"""`snnsim profile MODEL --sequence DIR`: counts on crops of a real sequence."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.cli import main
from snnsim.models import build_model
from snnsim.tracking.frame_counts import profile_tracker
from snnsim.tracking.run import COUNT_COLUMNS, track_sequence
from snnsim.tracking.sequence_inputs import held_boxes, sequence_inputs
from snnsim.tracking.synthetic import write_mot_sequence, write_sot_sequence


@pytest.fixture(scope="module")
def sot_seq(tmp_path_factory) -> Path:
    return write_sot_sequence(tmp_path_factory.mktemp("seq") / "synth", n_frames=4, size=(128, 160), seed=5)


def test_held_boxes_hold_the_last_valid_box():
    gt = np.array([[1, 2, 3, 4], [np.nan] * 4, [5, 6, 7, 8], [0, 0, 0, 0]], dtype=float)
    valid = np.array([True, False, True, False])
    # frame 1 is absent -> frame 0's box; frame 3 is absent -> frame 2's box
    assert held_boxes(gt, valid, 4).tolist() == [[1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8], [5, 6, 7, 8]]


def test_same_crops_as_the_tracker_on_target(sot_seq, tmp_path):
    """At frame 0 and frame 1 the closed-loop tracker crops where profile --sequence does (the
    template at frame 0's box; frame 1's search at the box the tracker starts from, frame 0's
    ground truth). Spike counts depend on every input value, so equal counts on the spiking
    tracker mean equal crops."""
    track = track_sequence("spiketrack-tiny", sot_seq, tmp_path / "track", hardware=["horowitz-45nm-fp32"],
                           quiet=True)
    rows = (tmp_path / "track" / "per_frame.csv").read_text().splitlines()
    header, frame1 = rows[0].split(","), rows[2].split(",")
    tp = profile_tracker(build_model("spiketrack-tiny"), frames=2, sequence=sot_seq)
    assert tp.inputs["source"] == "sequence" and tp.inputs["frames"] == [1, 2]
    assert len(tp.frames) == 2
    for k in COUNT_COLUMNS:
        assert tp.template.totals[k] == pytest.approx(track["template"][k], rel=1e-12)
        assert tp.frames[0].totals[k] == pytest.approx(float(frame1[header.index(k)]), rel=1e-12)
    assert tp.frames[0].totals["spikes"] != tp.frames[1].totals["spikes"]   # different frames, different counts


def test_frames_are_reiterable_and_streamed(sot_seq):
    template, searches, info = sequence_inputs(build_model("transt", "golden"), sot_seq, 3)
    assert not isinstance(searches, (list, tuple))     # made one frame at a time
    first, second = [s.clone() for s in searches], [s.clone() for s in searches]
    assert len(first) == len(searches) == 3 and all(torch.equal(a, b) for a, b in zip(first, second))
    assert tuple(template.shape) == (1, 3, 128, 128) and tuple(first[0].shape) == (1, 3, 256, 256)
    assert "TransTRuntime" in info["crops"]


def test_smtrack_gets_letterboxed_whole_frames(tmp_path):
    from snnsim.tracking.mot import letterbox
    from snnsim.tracking.sequences import open_sequence

    mot = write_mot_sequence(tmp_path / "mot", n_frames=2, size=(96, 128))
    model = build_model("smtrack-s", "golden")
    template, searches, info = sequence_inputs(model, mot, 2)
    frames = list(searches)
    assert template is None and len(frames) == 2 and info["frames"] == [0, 1]
    expected, _ = letterbox(open_sequence(mot).read_frame(1), tuple(model.input_size))
    assert torch.equal(frames[1], expected)


def test_profile_cli_on_a_sequence(sot_seq, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["profile", "asymtrack-t", "--weights", "golden", "--sequence", str(sot_seq), "--frames", "2",
                 "--hardware", "horowitz-45nm-fp32", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["sequence"] == str(sot_seq) and summary["frames_profiled"] == 2
    assert "frames 1-2 of the got10k sequence" in (out / "report.html").read_text()


@pytest.mark.parametrize("case, needle", [
    ("missing", "does not exist"),
    ("mot_for_sot", "single-object tracker but"),
    ("sot_for_mot", "multi-object tracker but"),
    ("too_many_frames", "give --frames 3 or fewer"),
    ("first_box_only", "has a box for frame 0 only"),
])
def test_bad_sequences_are_one_line_exit_2(case, needle, sot_seq, tmp_path, capsys):
    model, frames, seq = "transt", 1, sot_seq
    if case == "missing":
        seq = tmp_path / "nope"
    elif case == "mot_for_sot":
        seq = write_mot_sequence(tmp_path / "mot", n_frames=1, size=(64, 64))
    elif case == "sot_for_mot":
        model = "smtrack-s"
    elif case == "too_many_frames":
        frames = 4
    elif case == "first_box_only":
        seq = write_sot_sequence(tmp_path / "first", n_frames=3, size=(64, 64))
        (seq / "groundtruth.txt").write_text((seq / "groundtruth.txt").read_text().splitlines()[0] + "\n")
        frames = 2
    out = tmp_path / "out"
    code = main(["profile", model, "--weights", "golden", "--sequence", str(seq), "--frames", str(frames),
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()
