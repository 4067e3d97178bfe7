"""One CLI vocabulary: every command that takes a shared option gives it one meaning, one
default and one help text (snnsim.cli_options), and every parser error is one line."""
from __future__ import annotations

import argparse

import pytest

from snnsim.cli import build_parser, main
from snnsim.cli_options import DEFAULT_HARDWARE, WEIGHTS_HELP


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(p: argparse.ArgumentParser, flag: str):
    return next((a for a in p._actions if flag in a.option_strings), None)


SHARED = {
    "--weights": {"profile", "compare", "track", "loihi", "measure"},
    "--frames": {"profile", "compare", "track", "loihi", "measure"},
    "--hardware": {"profile", "compare", "track"},
    "--json": {"models", "hardware", "profile", "compare", "demo", "track", "loihi"},
    "--quiet": {"profile", "compare", "demo", "track", "loihi"},
}


@pytest.mark.parametrize("flag", sorted(SHARED))
def test_shared_options_have_one_default_and_one_help(flag):
    subs = _subparsers()
    found = {name: _option(p, flag) for name, p in subs.items()}
    assert {n for n, a in found.items() if a is not None} >= SHARED[flag]
    actions = [found[n] for n in SHARED[flag]]
    if flag == "--frames":   # one parser; the default says what a command counts (track: all frames)
        assert len({a.type for a in actions}) == 1
        assert {n: found[n].default for n in SHARED[flag]} == {"profile": 1, "compare": 1, "track": None,
                                                               "loihi": 1, "measure": 100}
        return
    assert len({a.default for a in actions}) == 1, {n: found[n].default for n in SHARED[flag]}
    if flag == "--weights":
        assert len({a.help for a in actions}) == 1
    if flag == "--hardware":   # one help, except that compare (which refuses '') does not offer counts only
        helps = {n: found[n].help for n in SHARED[flag]}
        assert helps["profile"] == helps["track"] and "'' for counts only" in helps["profile"]
        assert helps["compare"] == helps["profile"].replace("; '' for counts only)", ")")
    if flag == "--weights":
        assert actions[0].default == "default" and actions[0].help == WEIGHTS_HELP
    if flag == "--hardware":
        assert actions[0].default == DEFAULT_HARDWARE


@pytest.mark.parametrize("argv", [["track", "spiketrack-tiny", "seq", "--frames", "0"],
                                  ["loihi", "spiketrack-tiny", "--frames", "two"],
                                  ["measure", "transt", "--frames", "-3"]])
def test_frames_errors_are_one_line_everywhere(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--frames" in err and "usage:" not in err


def test_track_json_prints_its_summary(tmp_path, capsys):
    import json

    from snnsim.tracking.synthetic import write_sot_sequence

    seq = write_sot_sequence(tmp_path / "seq", n_frames=4, size=(96, 96), seed=3)
    out = tmp_path / "out"
    assert main(["track", "spiketrack-tiny", str(seq), "--frames", "3", "--hardware", "horowitz-45nm-fp32",
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3 and summary["model"] == "spiketrack-tiny"
    assert summary == json.loads((out / "summary.json").read_text())


def test_demo_json_prints_the_summaries_and_the_break_even_table(tmp_path, capsys, monkeypatch):
    import json

    import snnsim.cli as cli

    monkeypatch.setattr(cli, "DEMO_PAIR_FRAMES", 1)
    monkeypatch.setattr(cli, "DEMO_UNTRAINED", ())
    monkeypatch.setattr(cli, "DEMO_HARDWARE", ("horowitz-45nm-fp32",))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [s["model"] for s in printed["models"]] == ["spiketrack-tiny", "spiketrack-tiny-ann"]
    for s in printed["models"]:
        assert s == json.loads((out / s["model"] / "summary.json").read_text())
    assert [(r["hardware"], r["estimator"]) for r in printed["break_even"]] == [
        ("horowitz-45nm-fp32", "ac-mac"), ("horowitz-45nm-fp32", "memory-aware")]


def test_loihi_json_prints_its_summary(tmp_path, capsys):
    import json

    out = tmp_path / "loihi"
    assert main(["loihi", "spiketrack-tiny", "--frames", "1", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "spiketrack-tiny" and (out / "summary.json").is_file()
