"""The `snnsim` command: every bad input is one line on stderr naming the thing and the fix,
exit code 2, no traceback and no output folder; good runs write every promised file."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

from snnsim.cli import DEMO_MODELS, main

SNNSIM = pathlib.Path(sys.executable).with_name("snnsim")


def _one_line_error(capsys, argv: list[str], *needles: str) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _no_output(parent: pathlib.Path) -> None:
    left = [p.name for p in parent.iterdir() if p.name.startswith(".") or p.name == "out"]
    assert left == [], left


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command", ["models", "hardware", "profile", "compare", "demo"])
def test_help_shows_an_example(capsys, command):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example" in out and f"snnsim {command}" in out


# ------------------------------------------------------------------ bad input
def test_unknown_model(capsys, tmp_path):
    line = _one_line_error(capsys, ["profile", "nosuchnet", "--out", str(tmp_path / "out")],
                           "unknown model 'nosuchnet'", "spiketrack-s256-t1", "transt")
    assert line.startswith("snnsim profile: error:")
    _one_line_error(capsys, ["compare", "asymtrack-t", "nosuchnet", "--out", str(tmp_path / "out")],
                    "unknown model 'nosuchnet'", "asymtrack-t")
    _no_output(tmp_path)


def test_unknown_hardware_profile(capsys, tmp_path):
    _one_line_error(capsys, ["profile", "asymtrack-t", "--hardware", "loihi2,nosuchchip", "--out",
                             str(tmp_path / "out")], "unknown hardware 'nosuchchip'", "loihi2", "horowitz-45nm-fp32",
                    "path to a profile YAML")
    _one_line_error(capsys, ["hardware", "nosuchchip"], "unknown hardware 'nosuchchip'", "jetson-agx-orin")
    _no_output(tmp_path)


def test_malformed_yaml_profile(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\n  kind: [unclosed\n")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--hardware", str(bad), "--out", str(tmp_path / "out")],
                    "bad.yaml", "not valid YAML", "line 2")
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\ndescription: a chip\nkind: asic\nestimators: [ac-mac]\nconstants:\n"
                    "  e_mca: {value: 1, unit: pJ, source: me, status: assumed}\n"
                    "  e_ac: {value: 1, unit: pJ, source: me, status: assumed}\n")
    _one_line_error(capsys, ["hardware", str(typo)], "typo.yaml", "constants.e_mca", "did you mean 'e_mac'")
    _no_output(tmp_path)


def test_missing_directory(capsys, tmp_path):
    missing = tmp_path / "no_such_dir"
    _one_line_error(capsys, ["profile", "asymtrack-t", "--weights", str(missing / "ckpt.pth"), "--out",
                             str(tmp_path / "out")], "no checkpoint file", f"folder '{missing}' does not exist")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--hardware", str(missing / "chip.yaml"), "--out",
                             str(tmp_path / "out")], "no_such_dir/chip.yaml", "no such file")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--weights", str(tmp_path), "--out", str(tmp_path / "out")],
                    "is a folder")
    _no_output(tmp_path)


@pytest.mark.parametrize("value, needle", [("0", "must be at least 1 (got 0)"), ("-3", "must be at least 1"),
                                           ("two", "expected a whole number")])
def test_frames_must_be_positive(capsys, tmp_path, value, needle):
    _one_line_error(capsys, ["profile", "asymtrack-t", "--frames", value, "--out", str(tmp_path / "out")],
                    "--frames", needle)
    _no_output(tmp_path)


def test_bad_weights(capsys, tmp_path):
    _one_line_error(capsys, ["profile", "asymtrack-t", "--weights", str(tmp_path / "nope.pth"), "--out",
                             str(tmp_path / "out")], "--weights", "nope.pth", "default, random, golden or the")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--weights", str(garbage), "--out", str(tmp_path / "out")],
                    "cannot read checkpoint", "garbage.pth")
    assert not (tmp_path / "out").exists()
    _one_line_error(capsys, ["compare", "asymtrack-t", "transt", "--weights", str(garbage), "--out",
                             str(tmp_path / "out")], "random or golden")


def test_checkpoint_weights(capsys, tmp_path):
    import torch

    from snnsim.models import build_model

    good, other = tmp_path / "asym.pth", tmp_path / "transt.pth"
    torch.save(build_model("asymtrack-t", "golden").state_dict(), good)
    torch.save(build_model("transt").state_dict(), other)
    _one_line_error(capsys, ["profile", "asymtrack-t", "--weights", str(other), "--out", str(tmp_path / "out")],
                    "does not match model 'asymtrack-t'", "missing key(s)", "unexpected key(s)")
    assert not (tmp_path / "out").exists()
    assert main(["profile", "asymtrack-t", "--weights", str(good), "--hardware", "loihi2", "--out",
                 str(tmp_path / "out"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    import hashlib

    assert summary["weights"] == {"source": "checkpoint", "path": str(good.resolve()),
                                  "sha256": hashlib.sha256(good.read_bytes()).hexdigest(), "trained": True,
                                  "note": summary["weights"]["note"]}
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"Weights: checkpoint {good} (how it was trained is not recorded)." in md
    assert "loaded strictly" in md and "untrained" not in md


def test_output_folder_of_someone_else_is_never_replaced(capsys, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--out", str(foreign)], "already holds files snnsim did not write")
    assert (foreign / "thesis.tex").read_text() == "precious"
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--out", str(afile)], "is an existing file that snnsim did not write")


def test_other_bad_input(capsys, tmp_path):
    _one_line_error(capsys, ["compare", "asymtrack-t", "--out", str(tmp_path / "o")], "at least two models")
    _one_line_error(capsys, ["compare", "asymtrack-t", "asymtrack-t", "--out", str(tmp_path / "o")], "given twice")
    _one_line_error(capsys, ["profile", "asymtrack-t", "--capture", "backbone", "--out", str(tmp_path / "o")],
                    "--capture", "no spiking neuron modules")
    # each of these used to run: counts only, a profile dropped, an option the model never reads
    _one_line_error(capsys, ["compare", "asymtrack-t", "transt", "--hardware", "", "--out", str(tmp_path / "o")],
                    "--hardware is empty: compare prices")
    for value in (",", "loihi2,", "loihi2,,loihi"):
        _one_line_error(capsys, ["profile", "asymtrack-t", "--hardware", value, "--out", str(tmp_path / "o")],
                        f"--hardware {value!r} has an empty profile name")
    _one_line_error(capsys, ["nosuchcommand"], "invalid choice", "profile")
    _one_line_error(capsys, [], "required")
    _no_output(tmp_path)


def test_entry_point_subprocess(tmp_path):
    """The installed `snnsim` script: one line, exit 2, nothing written."""
    assert SNNSIM.is_file(), SNNSIM
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for argv, needle in ((["profile", "nosuchnet", "--out", "out"], "unknown model 'nosuchnet'"),
                         (["profile", "asymtrack-t", "--frames", "0", "--out", "out"], "--frames")):
        done = subprocess.run([str(SNNSIM), *argv], cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 2, done
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and needle in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ good runs
def test_hardware_lists_and_shows_constants(capsys):
    assert main(["hardware"]) == 0
    out = capsys.readouterr().out
    for name in ("horowitz-45nm-fp32", "loihi2", "jetson-agx-orin"):
        assert name in out
    assert main(["hardware", "loihi2"]) == 0
    out = capsys.readouterr().out
    assert "e_synop" in out and "23.6 pJ" in out
    assert "assumed" in out and "measured" in out and "Davies" in out
    assert main(["hardware", "loihi2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in data["constants_table"]}
    assert rows["e_synop"]["unit"] == "pJ" and rows["e_synop"]["status"] == "assumed" and rows["e_synop"]["source"]
    assert rows["cores_per_chip"]["status"] == "measured"
    assert main(["hardware", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"name": "loihi2"}.items() <= next(r for r in listed if r["name"] == "loihi2").items()


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["transt"]["kind"] == "ann" and rows["transt"]["params"] > 0
    for name, _ in DEMO_MODELS:
        assert name in rows


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "asym"
    rc = main(["profile", "asymtrack-t", "--weights", "golden", "--frames", "2", "--hardware",
               "horowitz-45nm-fp32,loihi2", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def test_profile_writes_every_file(ann_run):
    for name in ("summary.json", "layers.csv", "neurons.csv", "energy.csv", "report.html", "report.md",
                 "tables/headline.csv", "tables/headline.json", "tables/layer_energy.csv", "tables/top_layers.csv",
                 "tables/estimator_notes.csv"):
        assert (ann_run / name).is_file(), name
    summary = json.loads((ann_run / "summary.json").read_text())
    assert summary["model"] == "asymtrack-t" and summary["frames_profiled"] == 2
    assert summary["energy"]["loihi2"]["loihi"] is None
    assert summary["energy"]["horowitz-45nm-fp32"]["ac-mac"] > 0
    energy = pd.read_csv(ann_run / "energy.csv")
    assert set(energy["branch"]) == {"frame", "template"}
    # every row names what produced it, the weights included (not only summary.json)
    from snnsim.pipeline.summary import weights_label

    assert set(energy["model"]) == {"asymtrack-t"} and set(energy["weights"]) == {weights_label(summary)}
    # no temporary folder is left beside the output
    assert [p.name for p in ann_run.parent.iterdir()] == ["asym"]


def test_profile_json_prints_summary(capsys, tmp_path, ann_run):
    out = tmp_path / "again"
    assert main(["profile", "asymtrack-t", "--weights", "golden", "--hardware", "loihi2", "--out", str(out),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text())
    assert printed["energy"] == {"loihi2": {"loihi": None}}
    # rerunning into an snnsim output folder replaces it whole
    assert main(["profile", "asymtrack-t", "--weights", "golden", "--hardware", "horowitz-45nm-fp32", "--out",
                 str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert list(json.loads((out / "summary.json").read_text())["energy"]) == ["horowitz-45nm-fp32"]


def test_compare_writes_its_files(capsys, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "asymtrack-t", "asymtrack-s", "--weights", "random", "--hardware",
                 "horowitz-45nm-fp32,loihi2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "asymtrack-t" in text and "not applicable" in text and "comparison.html" in text
    for name in ("comparison.csv", "comparison.json", "comparison.html", "comparison.md", "tables/spread.csv",
                 "tables/ratios.csv", "asymtrack-t/report.html", "asymtrack-s/summary.json"):
        assert (out / name).is_file(), name
    comp = pd.read_csv(out / "comparison.csv")
    assert len(comp) == 2 * 3                                   # models x (profile, estimator)
    assert comp.loc[comp["hardware"] == "loihi2", "joules_per_frame"].isna().all()
    assert set(comp["weights"].str.split(" ").str[0]) == {"random"}
    md = (out / "comparison.md").read_text()
    assert "no SNN/ANN pair" in md and "not applicable to asymtrack-s" in md
    assert main(["compare", "asymtrack-t", "asymtrack-s", "--weights", "random", "--hardware", "loihi2",
                 "--out", str(tmp_path / "cmp2"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in data["comparison"]] == ["asymtrack-t", "asymtrack-s"]


def test_random_runs_are_deterministic_and_the_capture_replays_them(tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["profile", "spiketrack-tiny", "--weights", "random", "--hardware", "loihi2", "--out", str(out),
                     "--quiet"]) == 0
        runs.append(out)
    for table in ("layers.csv", "neurons.csv", "energy.csv"):
        assert (runs[0] / table).read_bytes() == (runs[1] / table).read_bytes(), table
    meta = json.loads((runs[0] / "capture.json").read_text())
    neurons = pd.read_csv(runs[0] / "neurons.csv")
    mine = neurons[neurons["module"] == meta["module"]]
    for p in meta["passes"]:
        counted = mine[(mine["branch"] == p["branch"]) & (mine["call"] == p["call"])]
        assert p["spikes"] == counted["spikes"].sum()
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["capture"]["module"] == meta["module"]
    assert any("torch.manual_seed(0)" in n for n in summary["notes"])


def test_out_below_a_file_is_one_line(tmp_path, capsys):
    from snnsim.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["profile", "asymtrack-t", "--hardware", "", "--quiet", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0] and "Traceback" not in err[0]


def test_an_in_process_run_leaves_the_hosts_signal_handlers_as_they_were(tmp_path):
    """main() turns SIGTERM / SIGHUP into a clean unwind while it runs, and puts the caller's
    handlers back when it returns (a notebook or test runner must stay killable)."""
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    assert main(["profile", "asymtrack-t", "--weights", "golden", "--hardware", "", "--out", str(tmp_path / "p"),
                 "--quiet"]) == 0
    assert main(["profile", "no-such-model", "--out", str(tmp_path / "q")]) == 2
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("value", ["~no-such-user-snnsim/x.pt", "x" * 300 + ".pt"])
def test_weights_that_cannot_even_be_looked_up_are_one_line(tmp_path, capsys, value):
    assert main(["profile", "asymtrack-t", "--weights", value, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnsim profile: error: --weights: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
