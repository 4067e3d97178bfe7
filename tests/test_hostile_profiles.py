"""Hostile hardware profiles through the real CLI (a subprocess, as a user runs it).

Each case is a profile file (or a path that is no profile file) given to `snnsim hardware FILE`
and to `snnsim profile asymtrack-t --hardware FILE --out DIR`: exit code 2, exactly one line on
stderr with the expected words, no traceback, and no output folder. One good run shows that
summary.json (and the report) names the user's file by absolute path and its sha256.

The profiles table of the hostile-input suite (see test_hostile_inputs.py).
"""
from __future__ import annotations

import hashlib
import importlib.resources
import json
import pathlib

import pytest
import yaml
from hostile_cli import assert_refused, run_cli

PACKAGE_DIR = pathlib.Path(str(importlib.resources.files("snnsim.hardware_profiles")))
LIMIT = 1024 * 1024          # snnsim.energy.profiles.MAX_PROFILE_BYTES, stated here on purpose


def _shipped_text(name: str = "horowitz-45nm-fp32") -> str:
    return (PACKAGE_DIR / f"{name}.yaml").read_text()


def _own_text(name: str = "my-asic") -> str:
    doc = yaml.safe_load(_shipped_text())
    doc["name"] = name
    return yaml.safe_dump(doc, sort_keys=False)


def _line_of(text: str, line: str, nth: int = 0) -> int:
    return [i + 1 for i, t in enumerate(text.splitlines()) if t == line][nth]


# --- builders: tmp folder -> (path to give, expected words in the error line) ----------
def _dup_top(tmp: pathlib.Path):
    text = _own_text() + "constants: {}\n"
    (tmp / "dup-top.yaml").write_text(text)
    first, second = _line_of(text, "constants:"), _line_of(text, "constants: {}")
    return tmp / "dup-top.yaml", ["dup-top.yaml",
                                  f"key 'constants' appears twice (lines {first} and {second}); keep one"]


def _dup_nested(tmp: pathlib.Path):
    lines = _own_text().splitlines(keepends=True)
    at = lines.index("  e_mac:\n")
    lines.insert(at + 2, "    value: 1.0\n")
    (tmp / "dup-nested.yaml").write_text("".join(lines))
    return tmp / "dup-nested.yaml", ["dup-nested.yaml", "constants.e_mac",
                                     f"key 'value' appears twice (lines {at + 2} and {at + 3})"]


def _shipped_name(tmp: pathlib.Path):
    text = _shipped_text().replace("value: 4.6", "value: 0.46", 1)     # e_mac, changed
    assert text != _shipped_text()
    (tmp / "borrowed.yaml").write_text(text)
    return tmp / "borrowed.yaml", ["borrowed.yaml", "name", "'horowitz-45nm-fp32' is a shipped profile's",
                                   "own name", "base: horowitz-45nm-fp32"]


def _too_large(tmp: pathlib.Path):
    line = "# a valid-looking YAML comment line, repeated until the file is over the limit\n"
    text = _own_text() + line * (LIMIT // len(line) + 1)
    (tmp / "huge.yaml").write_text(text)
    size = (tmp / "huge.yaml").stat().st_size
    assert LIMIT < size < LIMIT + 2 * len(line) + len(_own_text())
    return tmp / "huge.yaml", ["huge.yaml", f"{size:,} bytes", f"{LIMIT:,}-byte", "limit"]


def _folder(tmp: pathlib.Path):
    (tmp / "profiles.yaml").mkdir()
    return tmp / "profiles.yaml", ["profiles.yaml", "not a regular file (a folder)",
                                   "give the path to a profile YAML file"]


def _device(path: str):
    def build(tmp: pathlib.Path):
        return pathlib.Path(path), [path, "not a regular file (a device)", "give the path to a profile YAML file"]
    return build


CASES = [
    pytest.param(_dup_top, id="duplicate-top-level-key"),
    pytest.param(_dup_nested, id="duplicate-nested-key"),
    pytest.param(_shipped_name, id="shipped-name-reused"),
    pytest.param(_too_large, id="file-above-size-limit"),
    pytest.param(_folder, id="folder"),
    pytest.param(_device("/dev/null"), id="dev-null"),
    pytest.param(_device("/dev/zero"), id="dev-zero"),
]

COMMANDS = [
    pytest.param(lambda hw, out: ["hardware", str(hw)], id="hardware"),
    pytest.param(lambda hw, out: ["profile", "asymtrack-t", "--hardware", str(hw), "--out", str(out),
                                  "--quiet"], id="profile"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("build", CASES)
def test_hostile_profile_one_line_exit_2_nothing_written(tmp_path, build, command):
    work = tmp_path / "work"
    work.mkdir()
    hw, words = build(work)
    out = tmp_path / "out"
    done = run_cli(command(hw, out), cwd=tmp_path)
    assert_refused(done, words)
    assert done.stderr.startswith(f"snnsim {command(hw, out)[0]}: error: "), done.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_user_profile_is_named_by_path_and_sha256_in_summary_and_report(tmp_path):
    (tmp_path / "profiles").mkdir()
    mine = tmp_path / "profiles" / "my-asic.yaml"
    mine.write_text(_own_text("my-asic"))
    digest = hashlib.sha256(mine.read_bytes()).hexdigest()
    out = tmp_path / "out"
    # a relative path, as a user types it: recorded as the absolute path
    done = run_cli(["profile", "asymtrack-t", "--hardware", "profiles/my-asic.yaml,loihi2", "--out", str(out),
                    "--quiet"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    by_name = {p["name"]: p for p in summary["hardware_profiles"]}
    assert by_name["my-asic"] == {"name": "my-asic", "shipped": False, "file": str(mine.resolve()),
                                  "sha256": digest}
    shipped = hashlib.sha256((PACKAGE_DIR / "loihi2.yaml").read_bytes()).hexdigest()
    assert by_name["loihi2"] == {"name": "loihi2", "shipped": True, "file": "hardware_profiles/loihi2.yaml",
                                 "sha256": shipped}
    rows = [d for d in summary["energy_details"] if d["hardware"] == "my-asic"]
    assert rows and all(d["hardware_file"] == str(mine.resolve()) and d["hardware_sha256"] == digest
                        for d in rows)
    for report in ("report.md", "report.html"):
        text = (out / report).read_text()
        assert str(mine.resolve()) in text and digest in text, report
