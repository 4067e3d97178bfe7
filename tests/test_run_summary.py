"""One run summary (issue 13): every command's summary.json holds the RunSummary core and
validates against it; the JSON Schema shipped in the package is the one the model generates;
`profile` and `track` on the same sequence agree on the shared core."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pydantic
import pytest

from snnsim.cli import main
from snnsim.pipeline.summary import SCHEMA_FILE, RunSummary, schema_json, validate_summary
from snnsim.tracking.synthetic import write_sot_sequence

HW = "horowitz-45nm-fp32"
CORE = [name if f.alias is None else f.alias for name, f in RunSummary.model_fields.items()]


@pytest.fixture(scope="module")
def sot_seq(tmp_path_factory) -> Path:
    return write_sot_sequence(tmp_path_factory.mktemp("seq") / "synth", n_frames=3, size=(128, 160), seed=9)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, sot_seq) -> dict[str, Path]:
    """One run of every command that writes a summary.json."""
    import snnsim.cli as cli

    root = tmp_path_factory.mktemp("runs")
    runs = {
        "profile": ["profile", "spiketrack-tiny", "--sequence", str(sot_seq), "--frames", "2", "--hardware", HW],
        "compare": ["compare", "asymtrack-t", "spiketrack-tiny", "--weights", "golden", "--hardware", HW],
        "track": ["track", "spiketrack-tiny", str(sot_seq), "--hardware", HW],
        "loihi": ["loihi", "spiketrack-tiny", "--frames", "1"],
    }
    paths = {}
    for command, argv in runs.items():
        out = root / command
        assert main([*argv, "--out", str(out), "--quiet"]) == 0, command
        paths[command] = out
    mp = pytest.MonkeyPatch()
    try:   # the demo, shortened: its pair on one frame, no untrained rows
        mp.setattr(cli, "DEMO_PAIR_FRAMES", 1)
        mp.setattr(cli, "DEMO_UNTRAINED", ())
        mp.setattr(cli, "DEMO_HARDWARE", (HW,))
        assert main(["demo", "--out", str(root / "demo"), "--quiet"]) == 0
    finally:
        mp.undo()
    paths["demo"] = root / "demo"
    return paths


def _summaries(command: str, out: Path) -> list[dict]:
    if command in ("compare", "demo"):
        found = sorted(out.glob("*/summary.json"))
        assert found, command
        return [json.loads(p.read_text()) for p in found]
    return [json.loads((out / "summary.json").read_text())]


def test_shipped_schema_is_the_models_own():
    assert SCHEMA_FILE.read_text() == schema_json(), \
        "run_summary.schema.json is stale: python -m snnsim.pipeline.summary --write"
    schema = json.loads(SCHEMA_FILE.read_text())
    assert set(schema["required"]) >= {"command", "model", "weights", "totals", "template", "energy", "uncounted"}


@pytest.mark.parametrize("command", ["profile", "compare", "demo", "track", "loihi"])
def test_every_command_writes_the_core(command, outputs):
    for s in _summaries(command, outputs[command]):
        validate_summary(s)
        assert s["command"] == command
        assert list(s)[:len(CORE)] == CORE            # the core first, in schema order, then the command's own
        w = s["weights"]
        assert w["trained"] == (w["source"] in ("default", "checkpoint"))
        if w["source"] == "default":
            assert Path(w["path"]).is_file() and len(w["sha256"]) == 64
        assert s["template_passes"] == (0 if s["template"] is None else s["template_passes"])


def test_golden_weights_are_flagged_untrained(outputs):
    by_model = {s["model"]: s for s in _summaries("compare", outputs["compare"])}
    assert by_model["asymtrack-t"]["weights"]["source"] == "golden"
    assert by_model["asymtrack-t"]["weights"]["trained"] is False


def test_a_summary_without_the_core_is_refused(outputs):
    good = _summaries("profile", outputs["profile"])[0]
    for key in ("weights", "totals", "energy_template"):
        bad = copy.deepcopy(good)
        del bad[key]
        with pytest.raises(pydantic.ValidationError):
            validate_summary(bad)
    bad = copy.deepcopy(good)
    bad["weights"]["source"] = "downloaded"
    with pytest.raises(pydantic.ValidationError):
        validate_summary(bad)


def test_profile_and_track_on_the_same_sequence_agree_on_the_core(outputs):
    """Both crop the template at frame 0's box the same way: the template pass, its energy and
    every provenance field agree; both give the search pass alone per frame in `energy`."""
    prof = _summaries("profile", outputs["profile"])[0]
    track = _summaries("track", outputs["track"])[0]
    for key in ("model", "kind", "weights", "timesteps", "template_accounting"):
        assert prof[key] == track[key], key
    for k, v in prof["template"].items():
        assert track["template"][k] == pytest.approx(v, rel=1e-12), k
    assert track["energy_template"][HW] == pytest.approx(prof["energy_template"][HW], rel=1e-12)
    assert prof["template_passes"] == track["template_passes"] == 1
    # thop MACs (one frame + one template pass) depend on the structure and input sizes only:
    # the same in all three commands that ran spiketrack-tiny on 128 x 128 crops
    loihi = _summaries("loihi", outputs["loihi"])[0]
    assert prof["thop_macs"] == track["thop_macs"] == loihi["thop_macs"] > 0
    assert loihi["template"]["neuron_updates"] == prof["template"]["neuron_updates"]
    # track's energy excludes the template pass like profile's; its own spread view includes it
    for est, j in track["energy"][HW].items():
        with_template = track["energy_with_template_per_frame"][HW][est]
        assert with_template == pytest.approx(j + track["energy_template"][HW][est] / track["frames"], rel=1e-12)


def test_profile_runs_each_pass_once_and_maps_spikes_in_it(tmp_path, monkeypatch):
    """One forward per frame (issue 13): the spike maps are read during the counted passes,
    so `profile` with a capture runs the template pass once and the search pass once per
    frame -- counted on the model class itself."""
    from snnsim.models import build_model

    cls = type(build_model("spiketrack-tiny"))
    calls = {"forward_template": 0, "forward_search": 0}
    for name in calls:
        original = getattr(cls, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counted)
    out = tmp_path / "p"
    assert main(["profile", "spiketrack-tiny", "--frames", "3", "--hardware", HW, "--out", str(out), "--quiet"]) == 0
    assert calls == {"forward_template": 1, "forward_search": 3}
    summary = json.loads((out / "summary.json").read_text())
    meta = json.loads((out / "capture.json").read_text())
    assert summary["capture"]["module"] == meta["module"]
    # the map's spikes are the counted spikes of that module (neurons.csv sums the frames)
    import pandas as pd

    neurons = pd.read_csv(out / "neurons.csv")
    mine = neurons[neurons["module"] == meta["module"]]
    assert {p["branch"] for p in meta["passes"]} == {"template", "frame"}
    for p in meta["passes"]:
        rows = mine[(mine["branch"] == p["branch"]) & (mine["call"] == p["call"])]
        assert p["spikes"] == int(round(rows["spikes"].sum())) > 0


def test_uncounted_calls_are_summed_over_every_pass():
    """uncounted[] means the same in every command: one row per (module, op), calls summed over
    the passes folded in (a template pass and two frames here), the first few shapes."""
    import pandas as pd

    from snnsim.counting.result import MAX_UNCOUNTED_SHAPES, UncountedTally

    tally = UncountedTally()
    template = pd.DataFrame([{"module": "head", "op": "cdist", "calls": 3, "shapes": "1x4, 4x4"}])
    frame = pd.DataFrame([{"module": "head", "op": "cdist", "calls": 2, "shapes": "1x4, 4x4; 2x4, 4x4"},
                          {"module": "neck", "op": "fft_r2c", "calls": 1, "shapes": "8"}])
    for table in (template, frame, frame):
        tally.add(table)
    rows = {(r["module"], r["op"]): r for r in tally.rows()}
    assert rows[("head", "cdist")]["calls"] == 3 + 2 + 2 and rows[("neck", "fft_r2c")]["calls"] == 2
    assert rows[("head", "cdist")]["shapes"] == "1x4, 4x4; 2x4, 4x4" and len(tally) == 2
    many = pd.DataFrame([{"module": "m", "op": "o", "calls": 1, "shapes": "; ".join(f"{i}" for i in range(9))}])
    tally.add(many)
    assert len([r for r in tally.rows() if r["op"] == "o"][0]["shapes"].split("; ")) == MAX_UNCOUNTED_SHAPES
