"""The `track` job: outputs, per-frame energy accounting, bad inputs, constant memory."""
from __future__ import annotations

import csv
import gc
import json
import os
import time
import warnings
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

from snnsim.tracking.cli_track import cmd_track
from snnsim.tracking.run import COUNT_COLUMNS, energy_column, track_sequence
from snnsim.tracking.synthetic import write_sot_sequence

HW = "horowitz-45nm-fp32"


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _f(v: str) -> float:
    return float(v) if v != "" else float("nan")


@pytest.fixture(scope="module")
def sot_seq(tmp_path_factory) -> Path:
    return write_sot_sequence(tmp_path_factory.mktemp("seq") / "synth_sot", n_frames=4, size=(128, 160), seed=11)


# ----------------------------------------------------------------------------- outputs + accounting
@pytest.fixture(scope="module")
def asym_run(sot_seq, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "asym"
    summary = track_sequence("asymtrack-t", sot_seq, out, hardware=[HW, "loihi2"], weights="golden")
    return out, summary


def test_outputs_are_written_and_valid(asym_run, sot_seq):
    from snnsim.tracking.sequences import read_sot_result

    out, summary = asym_run
    assert sorted(os.listdir(out)) == sorted(["per_frame.csv", "metrics.json", "summary.json", "report.html",
                                              f"{sot_seq.name}.txt", ".snnsim-output"])
    boxes = read_sot_result(out / f"{sot_seq.name}.txt")
    assert boxes.shape == (4, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()
    rows = _rows(out / "per_frame.csv")
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
    assert list(rows[0])[:2 + len(COUNT_COLUMNS)] == ["frame", "template_ran", *COUNT_COLUMNS]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"auc", "precision", "norm_precision"} <= set(metrics)
    s = json.loads((out / "summary.json").read_text())
    assert s["model"] == "asymtrack-t" and s["weights"]["source"] == "golden" and s["frames"] == 4
    assert s["weights"]["trained"] is False
    assert s["template_frames"] == [0] and s["template_passes"] == 1
    assert s["energy"]["loihi2"]["loihi"] is None  # an ANN on Loihi: not applicable, said so
    assert "loihi2/loihi" in s["energy_not_applicable"]
    html = (out / "report.html").read_text()
    # self-contained: plotly.js inline (megabytes), no external script
    assert len(html) > 1_000_000 and "Plotly.newPlot" in html and "<script src=" not in html.replace(" ", "")


def test_template_charged_exactly_on_template_frames(asym_run):
    """ANN: every search pass counts the same, so the template frame's row exceeds the others
    by exactly one template pass -- which must equal an independent count of that pass."""
    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    out, summary = asym_run
    rows = _rows(out / "per_frame.csv")
    assert [r["template_ran"] for r in rows] == ["1", "0", "0", "0"]
    ref = profile_tracker(build_model("asymtrack-t", "golden"), "golden", frames=1)
    tpl, search = ref.template.totals, ref.frames[0].totals
    for k in COUNT_COLUMNS:
        assert _f(rows[1][k]) == _f(rows[2][k]) == _f(rows[3][k]) == pytest.approx(search[k], rel=1e-12)
        assert _f(rows[0][k]) - _f(rows[1][k]) == pytest.approx(tpl[k], rel=1e-9, abs=1e-6)
        assert summary["template"][k] == pytest.approx(tpl[k], rel=1e-12)
        assert summary["totals"][k] == pytest.approx(search[k], rel=1e-12)


def test_energy_sum_is_frames_times_search_plus_template_passes(asym_run):
    from snnsim.energy import estimate
    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    out, summary = asym_run
    rows = _rows(out / "per_frame.csv")
    ref = profile_tracker(build_model("asymtrack-t", "golden"), "golden", frames=1)
    for est in ("ac-mac", "memory-aware"):
        col = energy_column(HW, est)
        e_search = estimate(ref.frames[0], HW, est).total_j
        e_tpl = estimate(ref.template, HW, est).total_j
        total = sum(_f(r[col]) for r in rows)
        assert total == pytest.approx(len(rows) * e_search + 1 * e_tpl, rel=1e-9)
        assert summary["energy_with_template_per_frame"][HW][est] == pytest.approx(total / len(rows), rel=1e-12)
        assert summary["energy"][HW][est] == pytest.approx(e_search, rel=1e-9)        # search pass alone
        assert summary["energy_template"][HW][est] == pytest.approx(e_tpl, rel=1e-9)
    assert all(r[energy_column("loihi2", "loihi")] == "" for r in rows)


def test_a_device_measurement_covers_frames_never_template_passes(sot_seq, tmp_path, measured_gpu_profile):
    """A measured joules-per-frame replaces the search pass's estimate only: the template pass
    stays modelled, in summary.json as in per_frame.csv (their accounting agrees)."""
    hw = measured_gpu_profile
    s = track_sequence("spiketrack-tiny", sot_seq, tmp_path / "run", hardware=[str(hw), HW])
    rows = _rows(tmp_path / "run" / "per_frame.csv")
    assert s["energy"]["h100-lab"]["gpu"] == pytest.approx(12.5e-3, rel=1e-12)
    tpl = s["energy_template"]["h100-lab"]["gpu"]
    assert tpl != pytest.approx(12.5e-3) and tpl > 0
    for prof, est in (("h100-lab", "gpu"), (HW, "ac-mac")):
        total = sum(_f(r[energy_column(prof, est)]) for r in rows)
        assert total == pytest.approx(len(rows) * s["energy"][prof][est] + s["template_passes"] *
                                      s["energy_template"][prof][est], rel=1e-9), prof


def test_spiking_template_updates_are_charged(sot_seq, tmp_path):
    """SpikeTrack T = 3 (tiny dims), updates forced every 2nd frame: template rows carry the
    search pass plus one template pass (dense MACs do not depend on spikes, so exact)."""
    from snnsim.counting import Profiler
    from snnsim.models.spiketrack import SpikeTrack
    from snnsim.models.spiketrack_tiny import TINY_CONFIG, TinySpikeTrackConfig

    torch.manual_seed(0)
    model = SpikeTrack(TinySpikeTrackConfig("t3", TINY_CONFIG.dims, 64, 3, 128)).eval()
    model.weights_info = {"source": "random", "path": None, "sha256": None, "trained": False,
                          "note": "random (untrained initialisation)"}
    s = track_sequence(model, sot_seq, tmp_path / "t3", hardware=[HW], update_interval=2, update_threshold=-1.0)
    assert s["template_frames"] == [0, 2]
    rows = _rows(tmp_path / "t3" / "per_frame.csv")
    with torch.no_grad(), Profiler(model) as prof:  # an independent count of one T = 3 template pass
        model.forward_template(torch.randn(3, 1, 3, 128, 128))
        tpl_dense = prof.result(1).totals["dense_macs"]
    dense = [_f(r["dense_macs"]) for r in rows]
    assert dense[1] == dense[3]
    assert dense[0] - dense[1] == dense[2] - dense[3] == tpl_dense
    col = energy_column(HW, "ac-mac")
    total = sum(_f(r[col]) for r in rows)
    assert total == pytest.approx(s["energy_with_template_per_frame"][HW]["ac-mac"] * 4, rel=1e-12)
    assert total == pytest.approx(4 * s["energy"][HW]["ac-mac"] + 2 * s["energy_template"][HW]["ac-mac"],
                                  rel=1e-12)
    assert any("untrained" in n for n in s["notes"])


@pytest.mark.parametrize("name", ["transt"])
def test_transt_runs_and_writes_valid_outputs(name, sot_seq, tmp_path):
    from snnsim.tracking.sequences import read_sot_result

    s = track_sequence(name, sot_seq, tmp_path / name, hardware=[HW], frames=2)
    assert s["frames"] == 2 and s["template_frames"] == [0]
    boxes = read_sot_result(tmp_path / name / f"{sot_seq.name}.txt")
    assert boxes.shape == (2, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] >= 10).all()
    assert s["runtime"]["template_factor"] == 2.0 and s["runtime"]["padding"] == "mean"


def test_frames_limit_and_own_output_replaced_but_never_a_users_file(sot_seq, tmp_path):
    from snnsim.io import OutputError

    out = tmp_path / "lim"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="already holds files snnsim did not write"):
        track_sequence("spiketrack-tiny", sot_seq, out, hardware=[], frames=2)
    assert (out / "notes.txt").read_text() == "mine" and sorted(os.listdir(out)) == ["notes.txt"]
    out = tmp_path / "lim2"
    track_sequence("spiketrack-tiny", sot_seq, out, hardware=[], frames=3)
    s = track_sequence("spiketrack-tiny", sot_seq, out, hardware=[], frames=2)   # an earlier output of ours
    assert s["frames"] == 2
    assert len(_rows(out / "per_frame.csv")) == 2
    assert s["energy"] == {}


# ----------------------------------------------------------------------------- cmd_track errors
def _args(model, seq, out, **kw) -> Namespace:
    base = dict(model=model, sequence=str(seq), out=str(out), hardware=HW, weights=None, frames=None,
                input_size=None, quiet=True)
    base.update(kw)
    return Namespace(**base)


def _expect_error(capsys, args, fragment: str) -> None:
    rc = cmd_track(args)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("snnsim track: error: ") and err.count("\n") == 1, err
    assert fragment in err
    assert not Path(args.out).exists()
    assert not any(p.name.startswith(f".{Path(args.out).name}.") for p in Path(args.out).parent.iterdir())


def test_cmd_track_missing_folder(capsys, tmp_path):
    _expect_error(capsys, _args("spiketrack-tiny", tmp_path / "nope", tmp_path / "out"), "does not exist")


def test_cmd_track_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    _expect_error(capsys, _args("spiketrack-tiny", tmp_path / "empty", tmp_path / "out"), "not a sequence folder")
    (tmp_path / "empty2" / "img").mkdir(parents=True)
    (tmp_path / "empty2" / "groundtruth.txt").write_text("1,1,5,5\n")
    _expect_error(capsys, _args("spiketrack-tiny", tmp_path / "empty2", tmp_path / "out"), "no images")


def test_cmd_track_missing_ground_truth(capsys, tmp_path):
    seq = write_sot_sequence(tmp_path / "nogt", n_frames=2, size=(96, 96), seed=2)
    (seq / "groundtruth.txt").unlink()
    _expect_error(capsys, _args("spiketrack-tiny", seq, tmp_path / "out"), "no ground truth")


def test_cmd_track_unreadable_frame_midway_leaves_no_output(capsys, tmp_path):
    seq = write_sot_sequence(tmp_path / "bad", n_frames=3, size=(96, 96), seed=2)
    (seq / "00000003.jpg").write_bytes(b"not a jpeg at all")
    _expect_error(capsys, _args("spiketrack-tiny", seq, tmp_path / "out"), "00000003.jpg")


def test_cmd_track_zero_size_box(capsys, tmp_path):
    seq = write_sot_sequence(tmp_path / "zero", n_frames=2, size=(96, 96), seed=2)
    (seq / "groundtruth.txt").write_text("10,10,0,12\n10,10,12,12\n")
    _expect_error(capsys, _args("spiketrack-tiny", seq, tmp_path / "out"), "zero-size box")


def test_cmd_track_box_outside_frame(capsys, tmp_path):
    seq = write_sot_sequence(tmp_path / "outside", n_frames=2, size=(96, 96), seed=2)
    (seq / "groundtruth.txt").write_text("200,10,12,12\n10,10,12,12\n")
    _expect_error(capsys, _args("spiketrack-tiny", seq, tmp_path / "out"), "outside")


def test_cmd_track_other_bad_inputs(capsys, tmp_path, sot_seq):
    _expect_error(capsys, _args("no-such-model", sot_seq, tmp_path / "o1"), "unknown model")
    _expect_error(capsys, _args("spiketrack-tiny", sot_seq, tmp_path / "o2", weights=str(tmp_path / "x.pt")),
                  "no checkpoint file")
    _expect_error(capsys, _args("spiketrack-tiny", sot_seq, tmp_path / "o3", hardware="no-such-chip"),
                  "no-such-chip")
    _expect_error(capsys, _args("spiketrack-tiny", sot_seq, tmp_path / "o4", frames=0), "--frames")
    _expect_error(capsys, _args("smtrack-s", sot_seq, tmp_path / "o5"), "multi-object")
    # a single-object tracker never read it: the run went on at its own sizes without a word
    _expect_error(capsys, _args("spiketrack-tiny", sot_seq, tmp_path / "o6", input_size=(64, 64)),
                  "--input-size sets smtrack-s's detector input; spiketrack-tiny crops")


def test_cmd_track_success_prints_summary(capsys, tmp_path, sot_seq):
    rc = cmd_track(_args("spiketrack-tiny", sot_seq, tmp_path / "ok", frames=2, quiet=False))
    out = capsys.readouterr().out
    assert rc == 0 and "spiketrack-tiny on synth_sot: 2 frames" in out and "mJ per frame (search pass)" in out


def test_add_track_parser_wires_cmd_track():
    import argparse

    from snnsim.tracking.cli_track import add_track_parser

    p = argparse.ArgumentParser()
    add_track_parser(p.add_subparsers(dest="command"))
    a = p.parse_args(["track", "smtrack-s", "seq", "--input-size", "128x224", "--frames", "3", "--quiet"])
    assert a.func is cmd_track and a.input_size == (128, 224) and a.frames == 3 and a.quiet


# ----------------------------------------------------------------------------- constant memory
def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance() on torch's deprecated module attributes warns
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def _memory_run(tmp_path: Path, n_frames: int) -> dict:
    seq = write_sot_sequence(tmp_path / "long", n_frames=n_frames, size=(96, 96), seed=5, quality=80)
    samples = {}
    marks = {20: "early", n_frames - 1: "late"}

    def probe(i: int) -> None:
        if i in marks:
            samples[marks[i]] = (_rss_bytes(), _live_tensors())

    t0 = time.time()
    s = track_sequence("spiketrack-tiny", seq, tmp_path / "out", hardware=[HW], progress=probe)
    samples["seconds"] = time.time() - t0
    assert s["frames"] == n_frames
    return samples


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_constant_memory_300_frames(tmp_path):
    """Real runtime, spiketrack-tiny at its 128 px crop, 300 frames: no tensor survives a frame
    and resident memory does not grow with the sequence."""
    s = _memory_run(tmp_path, 300)
    (rss0, t0), (rss1, t1) = s["early"], s["late"]
    print(f"300 frames in {s['seconds']:.0f} s; RSS {rss0 / 2 ** 20:.1f} -> {rss1 / 2 ** 20:.1f} MiB; "
          f"live tensors {t0} -> {t1}")
    assert t1 <= t0, f"live tensors grew from {t0} to {t1}"
    assert rss1 - rss0 < 40 * 2 ** 20, f"RSS grew by {(rss1 - rss0) / 2 ** 20:.1f} MiB over 280 frames"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SNNSIM_LONG_TESTS") != "1", reason="2,000 frames: set SNNSIM_LONG_TESTS=1")
def test_constant_memory_2000_frames(tmp_path):
    s = _memory_run(tmp_path, 2000)
    (rss0, t0), (rss1, t1) = s["early"], s["late"]
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10
    print(f"2000 frames in {s['seconds']:.0f} s; RSS {rss0 / 2 ** 20:.1f} -> {rss1 / 2 ** 20:.1f} MiB "
          f"(peak {peak:.1f} MiB); live tensors {t0} -> {t1}")
    assert t1 <= t0
    assert rss1 - rss0 < 40 * 2 ** 20
