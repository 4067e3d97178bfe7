"""`snnsim loihi`: the job's files and the command line's bad-input handling (one line on
stderr, exit code 2, nothing written)."""
from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest
import torch

from snnsim.loihi import cli_loihi, job
from snnsim.loihi.mapper import MappingError

pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(argv, capsys):
    code = cli_loihi.main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("argv, message", [
    (["no-such-model"], "unknown model 'no-such-model'; known models:"),
    (["spiketrack-tiny", "--frames", "0"], "argument --frames: must be at least 1 (got 0)"),
    (["transt"], "not applicable: transt is an ANN; Loihi runs spiking models"),
    (["asymtrack-t", "--backend", "lava"], "not applicable: asymtrack-t is an ANN; Loihi runs spiking models"),
    (["smtrack-s"], "not supported yet: smtrack-s"),
])
def test_bad_input_one_line_exit_2(argv, message, capsys, tmp_path):
    out = tmp_path / "o"
    code, stdout, err = run_cli(argv + ["--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("snnsim loihi: error: ") and message in err
    assert err.count("\n") == 1 and not out.exists()


def test_bad_weights_and_out(capsys, tmp_path):
    code, _, err = run_cli(["spiketrack-tiny", "--weights", str(tmp_path / "nope.pt"), "--out",
                            str(tmp_path / "o")], capsys)
    assert code == 2 and "no checkpoint file" in err and err.count("\n") == 1
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("x")
    code, _, err = run_cli(["spiketrack-tiny", "--out", str(busy)], capsys)
    assert code == 2 and "did not write" in err
    assert sorted(p.name for p in busy.iterdir()) == ["mine.txt"]


def test_lava_backend_unmappable_segment_is_a_clear_error(monkeypatch):
    def no_segment(mapping):
        raise MappingError("no neuron is fed by the input layer and neurocore layers only")
    monkeypatch.setattr(job, "extract_segment", no_segment)

    class M:
        model = "spiketrack-tiny"
    with pytest.raises(job.LoihiJobError, match="lava backend: cannot map a segment of spiketrack-tiny"):
        job._find_segment(M(), "lava")
    seg, reason = job._find_segment(M(), "emulator")
    assert seg is None and "no neuron is fed" in reason


def test_parser_wiring():
    import argparse

    parser = argparse.ArgumentParser(prog="snnsim")
    sub = parser.add_subparsers(dest="command")
    cli_loihi.add_loihi_parser(sub)
    args = parser.parse_args(["loihi", "spiketrack-tiny", "--backend", "lava", "--frames", "3", "--quiet"])
    assert args.func is cli_loihi.cmd_loihi and args.backend == "lava" and args.frames == 3 and args.quiet
    assert args.weights == "default" and args.out == "snnsim-loihi" and args.json is False


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("loihi") / "run"
    code = cli_loihi.main(["spiketrack-tiny", "--weights", "golden", "--frames", "1", "--out", str(out), "--quiet"])
    return code, out


def test_job_writes_its_files(tiny_run):
    code, out = tiny_run
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"mapping.csv", "resources.json", "fidelity.json", "loihi_energy.csv", "report.md", "report.html"} <= names
    mapping = pd.read_csv(out / "mapping.csv")
    assert list(mapping.columns[:4]) == ["layer", "op", "where", "why"]
    assert set(mapping["where"]) == {"neurocore", "host"}
    first = mapping[mapping["layer"] == "encoder.downsample1_1.encode_conv"].iloc[0]
    assert first["where"] == "host" and "image" in first["why"]
    assert (mapping["op"] == "bmm").any() and mapping["why"].notna().all()

    res = json.loads((out / "resources.json").read_text())
    assert res["cores"] >= 1 and res["chips"] == res["totals"][res["recommended"]]["chips"]
    assert res["limits"]["neurons_per_core"]["value"] == 8192 and "Intel" in res["limits"]["cores_per_chip"]["source"]
    assert len(res["populations"]) > 100

    fid = json.loads((out / "fidelity.json").read_text())
    agree = fid["spike_agreement"]
    assert 0.5 < agree["overall"] <= 1.0 and agree["first_module"] > 0.99
    assert 0.0 <= fid["open_loop_box_iou"]["mean"] <= 1.0
    assert "closed_loop" in fid and len(fid["per_frame"]) == 1
    seg = fid["segment"]
    assert seg["available"] and seg["settled_equals_model_level_fixed_point"] is True
    assert fid["energy"]["loihi2"]["fixed-point emulation (fanout)"]["joules_per_frame"] > 0

    energy = pd.read_csv(out / "loihi_energy.csv")
    assert {"hardware", "counts", "module", "total_J", "synops", "model", "weights"} <= set(energy.columns)
    from snnsim.pipeline.summary import weights_label

    label = weights_label(json.loads((out / "summary.json").read_text()))
    assert set(energy["model"]) == {"spiketrack-tiny"} and set(energy["weights"]) == {label} and "golden" in label
    assert set(energy["hardware"]) == {"loihi2", "loihi"}
    host = energy[(energy["module"] == "encoder.downsample1_1.encode_conv") & (energy["counts"] != "float model")]
    assert (host["synops"] == 0).all() and (host["host_macs"] > 0).all()

    report = (out / "report.md").read_text()
    for heading in ("# Loihi 2 mapping: spiketrack-tiny", "## Partition", "## Resources (Loihi 2)",
                    "## Fidelity (fixed point vs float)", "## Neurocore segment", "## Loihi energy per frame"):
        assert "\n" + heading in "\n" + report
    html = (out / "report.html").read_text()      # the same report through the one writer
    assert "<h2>Partition</h2>" in html and "Loihi 2 mapping: spiketrack-tiny" in html


def test_job_rerun_replaces_its_own_output(tiny_run, capsys):
    code, out = tiny_run
    assert (out / ".snnsim-output").exists()
    code2, _, err = run_cli(["spiketrack-tiny", "--frames", "0", "--out", str(out)], capsys)
    assert code2 == 2 and (out / "mapping.csv").exists()        # a bad request leaves the old run alone


def test_the_same_spikes_priced_on_both_loihi_1_profiles(tmp_path, capsys):
    """`snnsim loihi MODEL --hardware loihi,loihi-sanafe`: one emulation, its counts priced with
    the pre-silicon and the silicon-calibrated constants; the report states the spread."""
    out = tmp_path / "both"
    code, _, err = run_cli(["spiketrack-tiny", "--frames", "1", "--hardware", "loihi,loihi-sanafe", "--out", str(out),
                            "--quiet"], capsys)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert set(s["energy"]) == {"loihi", "loihi-sanafe"} and set(s["energy_template"]) == {"loihi", "loihi-sanafe"}
    energy = pd.read_csv(out / "loihi_energy.csv")
    fan = energy[energy["counts"] == "fixed-point emulation (fanout)"]
    by_hw = {hw: g.set_index("module")[["synops", "spike_messages", "neuron_updates"]] for hw, g in fan.groupby("hardware")}
    pd.testing.assert_frame_equal(by_hw["loihi"], by_hw["loihi-sanafe"])     # the very same counts
    # and by hand from them: SANA-FE's per-event constants
    t = by_hw["loihi-sanafe"].sum()
    act = fan[fan["hardware"] == "loihi-sanafe"]["active_updates"].sum()
    pj = 1e-12
    hand = t["synops"] * 35.5 * pj + act * 90.9 * pj + (t["neuron_updates"] - act) * 21.6 * pj \
        + t["spike_messages"] * 114.5 * pj
    assert s["energy"]["loihi-sanafe"]["loihi"] == pytest.approx(hand, rel=1e-9)
    report = (out / "report.md").read_text()
    ratio = s["energy"]["loihi-sanafe"]["loihi"] / s["energy"]["loihi"]["loihi"]
    assert f"{ratio:.2f}x" in report and "pre-silicon" in report


@pytest.mark.parametrize("hardware, needle", [("horowitz-45nm-fp32", "has no 'loihi' estimator"),
                                              ("", "--hardware is empty"), ("loihi3", "loihi3")])
def test_loihi_hardware_must_be_a_loihi_profile(tmp_path, capsys, hardware, needle):
    out = tmp_path / "bad"
    code, _, err = run_cli(["spiketrack-tiny", "--hardware", hardware, "--out", str(out)], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_lava_check_finds_the_first_differing_step_of_any_frame():
    """The lava backend compares every step of every frame (not the last step of each): a
    difference inside a held frame is found and placed."""
    import numpy as np

    hold, frames = 3, 2
    emu = {p: {"u": np.arange(frames * hold * 4).reshape(frames * hold, 2, 2), "s": np.zeros((frames * hold, 2, 2))}
           for p in ("a", "b")}
    same = {p: {k: v.copy() for k, v in r.items()} for p, r in emu.items()}
    assert job.first_step_difference(same, emu, ["a", "b"], hold) is None
    ref = {p: {k: v.copy() for k, v in r.items()} for p, r in emu.items()}
    ref["b"]["s"][4, 1, 0] = 2            # frame 1, step 1: not a frame's last step
    ref["a"]["u"][5, 0, 0] += 1           # later: the earliest difference is reported
    assert job.first_step_difference(ref, emu, ["a", "b"], hold) == "b.s at step 4 (frame 1, step 1)"


def test_a_profile_given_by_path_keys_every_energy_block_by_its_name(tmp_path, capsys):
    import yaml

    root = pathlib.Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "hardware_profiles" / "loihi-sanafe.yaml").read_text())
    data["name"] = "my-loihi"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "o"
    code, _, err = run_cli(["spiketrack-tiny", "--frames", "1", "--hardware", str(path), "--out", str(out), "--quiet"],
                           capsys)
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert list(s["energy"]) == list(s["energy_template"]) == list(s["energy_variants"]) == ["my-loihi"]
    # the template totals are the template pass's own table, by hand
    assert s["template"]["neuron_updates"] > 0 and s["template_passes"] == 1


@pytest.mark.parametrize("cmd", [["loihi", "spiketrack-tiny"], ["track", "spiketrack-tiny", "/tmp"]])
def test_a_profile_given_twice_is_one_line(tmp_path, capsys, cmd):
    from snnsim.cli import main

    out = tmp_path / "o"
    assert main([*cmd, "--hardware", "loihi2,loihi2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "profile 'loihi2' is given twice" in err and len(err.splitlines()) == 1 and not out.exists()
