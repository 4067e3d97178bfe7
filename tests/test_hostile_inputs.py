"""Hostile and careless input through the real CLI (a subprocess, as a user runs it).

Every refusal is checked the same way: exit code 2, exactly one line on stderr, no
traceback, the words that name the problem, and the file system exactly as it was before
(every file and folder under the test's folder: same names, bytes, modes and owners --
nothing deleted, nothing created, nothing partial at --out).

This file is the suite's index and its --out table (the one output writer, snnsim.io);
the other tables of the same suite, run and checked by the same runner (hostile_cli.py):

- test_hostile_profiles.py  hardware profiles: duplicate keys, shipped names, size limit,
                            folders and devices, provenance (path + sha256) in every output;
- test_hostile_messages.py  messages that named the wrong problem, non-finite checkpoints
                            and activations in every command, exploit pickles, internal
                            errors that keep their traceback (exit 1);
- test_hostile_memory.py    sizes checked against a stated limit before any allocation
                            (--input-size, seqinfo.ini, forged image headers);
- test_frame_streaming.py   frames made and consumed one at a time (bounded memory).

Signals and concurrency are run for real here: a second run on a locked --out, SIGTERM /
SIGINT / SIGKILL in the middle of a run.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from hostile_cli import CLI, assert_refused as _refused, run_cli, run_many, snapshot
from snnsim.io import MARKER, OutputBusyError, OutputError, check_output, open_output
from snnsim.tracking.synthetic import write_sot_sequence


def assert_refused(proc, *words):
    return _refused(proc, words)

OTHER_UID = 54321            # a user that owns nothing here
SLOW_RUN = ["profile", "spiketrack-tiny", "--frames", "100000", "--hardware", "", "--capture", "none", "--quiet"]


def make_own_output(path: pathlib.Path) -> pathlib.Path:
    """An earlier snnsim output, published by the writer itself."""
    with open_output(path, "snnsim test") as out:
        (out.staging / "summary.json").write_text("{}\n")
    return path


# ------------------------------------------------------------------ the table
def _foreign_file(tmp):
    (tmp / "thesis.tex").write_text("precious")
    return "thesis.tex"


def _foreign_folder(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("precious")
    return "mine"


def _empty_folder(tmp):
    (tmp / "empty").mkdir()
    return "empty"


def _foreign_readonly_empty(tmp):
    (tmp / "theirs").mkdir()
    os.chown(tmp / "theirs", OTHER_UID, OTHER_UID)
    (tmp / "theirs").chmod(0o555)
    return "theirs"


def _own_plus_user_file(tmp):
    make_own_output(tmp / "run")
    (tmp / "run" / "my-notes.md").write_text("precious")
    return "run"


def _own_readonly(tmp):
    make_own_output(tmp / "run")
    (tmp / "run").chmod(0o555)
    return "run"


def _own_other_user(tmp):
    make_own_output(tmp / "run")
    os.chown(tmp / "run", OTHER_UID, OTHER_UID)
    return "run"


def _symlink(tmp):
    make_own_output(tmp / "real")
    (tmp / "link").symlink_to(tmp / "real")
    return "link"


def _below_a_file(tmp):
    (tmp / "afile").write_text("precious")
    return "afile/sub"


def _fake_marker(tmp):
    (tmp / "looks").mkdir()
    (tmp / "looks" / MARKER).write_text("written by snnsim; snnsim may replace this folder\n")
    (tmp / "looks" / "data.csv").write_text("precious")
    return "looks"


def _sequence(tmp):
    return write_sot_sequence(tmp / "data" / "seq", n_frames=3, size=(64, 64), seed=1)


def _checkpoint(tmp):
    import torch

    from snnsim.models import build_model

    path = tmp / "ckpt.pth"
    torch.save(build_model("spiketrack-tiny").state_dict(), path)
    return path


# (id, command argv with {out} {seq} {ckpt} placeholders, setup -> out value, words in the error)
PROFILE = ["profile", "asymtrack-t", "--hardware", "loihi2", "--out", "{out}"]
TRACK = ["track", "spiketrack-tiny", "{seq}", "--out", "{out}"]
COMMANDS = {
    "profile": PROFILE,
    "compare": ["compare", "asymtrack-t", "transt", "--out", "{out}"],
    "demo": ["demo", "--out", "{out}"],
    "track": TRACK,
    "loihi": ["loihi", "spiketrack-tiny", "--out", "{out}"],
}
OUT_CASES = [
    *[(f"{cmd}-foreign-file", argv, _foreign_file, ["is an existing file that snnsim did not write"])
      for cmd, argv in COMMANDS.items()],
    *[(f"{cmd}-foreign-folder", argv, _foreign_folder, ["already holds files snnsim did not write"])
      for cmd, argv in COMMANDS.items()],
    ("measure-foreign-file", ["measure", "asymtrack-t", "--out", "{out}"], _foreign_file,
     ["is an existing file that snnsim did not write"]),
    ("measure-folder", ["measure", "asymtrack-t", "--out", "{out}"], _foreign_folder,
     ["is not a regular file"]),
    ("dot", PROFILE, lambda tmp: ".", ["is the current folder"]),
    ("dot-track", TRACK, lambda tmp: ".", ["is the current folder"]),
    ("dotdot", PROFILE, lambda tmp: "..", ["a folder above the current one"]),
    ("empty-string", PROFILE, lambda tmp: "", ["--out '' is empty"]),
    ("empty-string-track", TRACK, lambda tmp: "", ["--out '' is empty"]),
    ("blank-string", PROFILE, lambda tmp: "   ", ["is empty"]),
    ("empty-folder", PROFILE, _empty_folder, ["existing empty folder that snnsim did not create"]),
    ("foreign-read-only-empty", PROFILE, _foreign_readonly_empty, ["existing empty folder"]),
    ("own-output-plus-user-file", PROFILE, _own_plus_user_file, ["'my-notes.md'", "which snnsim did not write"]),
    ("own-output-read-only", PROFILE, _own_readonly, ["is read-only"]),
    ("own-output-other-user", PROFILE, _own_other_user, [f"belongs to another user (uid {OTHER_UID})"]),
    ("symlink", PROFILE, _symlink, ["is a symbolic link"]),
    ("below-a-file", PROFILE, _below_a_file, ["is a file, not a folder"]),
    ("marker-text-only", PROFILE, _fake_marker, ["already holds files snnsim did not write"]),
    ("track-out-is-sequence", TRACK, lambda tmp: "{seq}", ["would replace the input"]),
    ("track-out-holds-sequence", TRACK, lambda tmp: "data", ["would replace the input"]),
    ("profile-out-is-sequence", ["profile", "spiketrack-tiny", "--sequence", "{seq}", "--out", "{out}"],
     lambda tmp: "{seq}", ["would replace the input"]),
    ("profile-out-is-weights", ["profile", "spiketrack-tiny", "--weights", "{ckpt}", "--out", "{out}"],
     lambda tmp: "{ckpt}", ["would replace the input"]),
    ("loihi-out-is-weights", ["loihi", "spiketrack-tiny", "--weights", "{ckpt}", "--out", "{out}"],
     lambda tmp: "{ckpt}", ["would replace the input"]),
]


def _prepare(root: pathlib.Path, argv, setup):
    work = root / "work"
    work.mkdir(parents=True)
    seq = _sequence(work) if any("{seq}" in a for a in argv) else None
    ckpt = _checkpoint(work) if any("{ckpt}" in a for a in argv) else None
    fill = {"seq": str(seq), "ckpt": str(ckpt)}
    out = setup(work).format(**fill)
    return work, [out if a == "{out}" else a.format(**fill) for a in argv]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case of the table in its own folder: case id -> (proc, before, after), the
    snapshots taken just before and after that case's own run."""
    prepared = []
    for case_id, argv, setup, _ in OUT_CASES:
        root = tmp_path_factory.mktemp(case_id)
        work, args = _prepare(root, argv, setup)
        prepared.append((case_id, root, work, args, snapshot(root)))

    def one(item):
        case_id, root, work, args, before = item
        proc = run_cli(args, cwd=work)
        return case_id, (proc, before, snapshot(root))

    return run_many(prepared, one)


@pytest.mark.parametrize("case_id,argv,setup,needles", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_out_refused_and_nothing_touched(refusals, case_id, argv, setup, needles):
    proc, before, after = refusals[case_id]
    assert_refused(proc, *needles)
    assert after == before


def test_root_is_never_a_target():
    # Checked at the library level only: a CLI run as root that got this wrong would reach `/`.
    with pytest.raises(OutputError, match="root folder"):
        check_output("/")
    with pytest.raises(OutputError, match="current folder"):
        check_output(os.getcwd())


# ------------------------------------------------------------------ good runs
def test_rerun_replaces_only_its_own_output(tmp_path):
    argv = ["profile", "asymtrack-t", "--hardware", "loihi2", "--quiet", "--out", "out"]
    first = run_cli(argv, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["tool"] == "snnsim" and marker["command"] == "snnsim profile"
    assert sorted(marker["files"]) == sorted(str(p.relative_to(tmp_path / "out")) for p in
                                             (tmp_path / "out").rglob("*") if p.name != MARKER)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~umask          # not mkdtemp's 0700
    assert (tmp_path / "out" / "summary.json").stat().st_mode & 0o777 == 0o666 & ~umask
    second = run_cli(argv, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "out" / MARKER).read_text())
    assert again["run_id"] != marker["run_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]                # no staging, no lock, no old copy


def test_missing_parents_are_created_and_removed_again_on_refusal(tmp_path):
    proc = run_cli(["profile", "nosuchnet", "--out", "a/b/c"], cwd=tmp_path)
    assert_refused(proc, "unknown model")
    assert list(tmp_path.iterdir()) == []
    proc = run_cli(["profile", "asymtrack-t", "--hardware", "loihi2", "--quiet", "--out", "a/b/c"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "b" / "c" / "summary.json").is_file()


def test_library_lock_refuses_a_second_writer(tmp_path):
    with open_output(tmp_path / "out", "snnsim test") as first:
        (first.staging / "a.txt").write_text("a")
        with pytest.raises(OutputBusyError, match=f"pid {os.getpid()}"):
            with open_output(tmp_path / "out", "snnsim test"):
                pass
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


# ------------------------------------------------------------------ signals and concurrency
def _start_slow_run(cwd: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *SLOW_RUN, "--out", "out"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _wait_for_staging(cwd: pathlib.Path, proc: subprocess.Popen, timeout: float = 240) -> pathlib.Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in cwd.iterdir() if p.name.startswith(".out.snnsim-staging-")]
        if found:
            time.sleep(2.0)    # well inside the counted frames
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the run never started staging")


@pytest.mark.slow
def test_concurrent_run_fails_naming_the_running_one_then_sigterm_cleans_up(tmp_path):
    first = _start_slow_run(tmp_path)
    try:
        _wait_for_staging(tmp_path, first)
        second = run_cli([*SLOW_RUN[:3], "1", *SLOW_RUN[4:], "--out", "out"], cwd=tmp_path)
        assert_refused(second, "is being written by another snnsim run", f"pid {first.pid}", "snnsim profile")
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM, err
    assert err.strip().split("\n") == ["snnsim profile: stopped by SIGTERM; nothing was written"]
    assert list(tmp_path.iterdir()) == []         # no output, no staging, no lock


@pytest.mark.slow
def test_sigint_cleans_up(tmp_path):
    proc = _start_slow_run(tmp_path)
    try:
        _wait_for_staging(tmp_path, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().split("\n")) == 1
    assert list(tmp_path.iterdir()) == []


# The handler runs inside a weakref callback (as it can while the profiler's tensor tags free
# themselves): Python prints such an exception as "Exception ignored" and drops it. The run must
# stop all the same, inside the loop's 20 s, instead of running on to its end.
_SIGNAL_IN_A_FINALIZER = """
import os, signal, sys, time, weakref
from snnsim.io import Terminated, install_signal_handlers
install_signal_handlers()
class Tagged: pass
tagged = Tagged()
ref = weakref.ref(tagged, lambda _ref: os.kill(os.getpid(), signal.{sig}))
try:
    del tagged                      # the callback runs, the handler raises in it, Python drops that
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pass
    print("ran to the end")
except (Terminated, KeyboardInterrupt) as exc:
    print("stopped", type(exc).__name__, exc)
"""


@pytest.mark.parametrize("sig,stopped", [("SIGTERM", "stopped Terminated SIGTERM"),
                                         ("SIGHUP", "stopped Terminated SIGHUP"),
                                         ("SIGINT", "stopped KeyboardInterrupt")])
def test_a_signal_that_lands_in_a_finalizer_still_stops_the_run(sig, stopped):
    proc = subprocess.run([CLI[0], "-c", _SIGNAL_IN_A_FINALIZER.format(sig=sig)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.stdout.strip() == stopped, (proc.stdout, proc.stderr)
    assert proc.stderr == ""                                   # not printed as "Exception ignored" either


_SIGNAL_PENDING_AT_RESTORE = """
import os, signal, sys, time, weakref
from snnsim.io import install_signal_handlers
signal.signal(signal.SIGTERM, lambda s, f: print("caller's handler got SIGTERM", flush=True))
restore = install_signal_handlers()
class Tagged: pass
tagged = Tagged()
ref = weakref.ref(tagged, lambda _ref: os.kill(os.getpid(), signal.SIGTERM))
del tagged                          # dropped in the callback: to be sent again in 50 ms
restore()                           # the command returns before that
print("returned", flush=True)
time.sleep(0.5)
"""


def test_a_signal_still_to_be_sent_again_goes_to_the_callers_handler_before_the_command_returns():
    """Not 50 ms after it returned, into whatever the caller runs next."""
    proc = subprocess.run([CLI[0], "-c", _SIGNAL_PENDING_AT_RESTORE], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.stdout.splitlines() == ["caller's handler got SIGTERM", "returned"], (proc.stdout, proc.stderr)
    assert proc.returncode == 0 and proc.stderr == ""


def test_signal_handlers_and_the_unraisable_hook_are_put_back():
    import sys
    from snnsim.io import install_signal_handlers
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    hook = sys.unraisablehook
    restore = install_signal_handlers()
    assert sys.unraisablehook is not hook and signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    restore()
    assert sys.unraisablehook is hook
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.slow
def test_staging_left_by_sigkill_is_cleaned_by_the_next_run(tmp_path):
    proc = _start_slow_run(tmp_path)
    staging = _wait_for_staging(tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert staging.is_dir() and (staging / ".snnsim-staging").is_file()   # says it is incomplete
    assert not (tmp_path / "out").exists()
    rerun = run_cli(["profile", "asymtrack-t", "--hardware", "loihi2", "--quiet", "--out", "out"], cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------ names beside --out
def test_lock_never_follows_a_link_nor_takes_a_users_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".out.snnsim-lock").symlink_to(victim)
    (tmp_path / "notes.md").write_text("mine")
    (tmp_path / ".o2.snnsim-lock").write_text("my own file with that name")
    before = snapshot(tmp_path)
    for out in ("out", "o2"):
        with pytest.raises(OutputError, match="is not an snnsim lock"):
            with open_output(tmp_path / out, "snnsim test"):
                pass
    assert snapshot(tmp_path) == before


def test_sweep_removes_only_provable_staging_and_restores_only_a_complete_output(tmp_path):
    forged = tmp_path / ".out.snnsim-staging-zz"            # the name, a marker of any text, user data
    (forged / "keep").mkdir(parents=True)
    (forged / ".snnsim-staging").write_text("not ours")
    (forged / "keep" / "f").write_text("precious")
    empty_old = tmp_path / ".out.snnsim-old-yy"              # empty: nothing says it was an output
    empty_old.mkdir()
    old_with_extra = tmp_path / ".out.snnsim-old-xx"         # a marker, but a file it does not list
    make_own_output(old_with_extra)
    (old_with_extra / "added.txt").write_text("precious")
    before = snapshot(tmp_path)
    make_own_output(tmp_path / "out")
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before
    # a killed run's own staging and a complete earlier output caught mid-replace are swept
    with open_output(tmp_path / "run", "snnsim test") as first:
        (first.staging / "a.txt").write_text("a")
        stale = pathlib.Path(str(first.staging) + "-killed")
        shutil.copytree(first.staging, stale)
    assert stale.exists()
    make_own_output(tmp_path / "run")
    assert not stale.exists()
