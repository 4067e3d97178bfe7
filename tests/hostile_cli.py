"""The runner the hostile-input tables share (tests/test_hostile_*.py): run the real CLI in a
subprocess, snapshot a folder, check a refusal. Imported by those files (tests/ is put on
sys.path by conftest.py); it holds no tests itself."""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

CLI = [sys.executable, "-m", "snnsim.cli"]


def run_cli(argv: list[str], cwd: pathlib.Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `snnsim` command as a user runs it: its own process, no stdin, warnings not hidden."""
    return subprocess.run([*CLI, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def snapshot(root: pathlib.Path) -> dict:
    """Everything under root: relative path -> (kind, mode, owner, sha256 of bytes)."""
    state = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = pathlib.Path(dirpath, name)
            st = os.lstat(p)
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
            kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
            state[str(p.relative_to(root))] = (kind, st.st_mode, st.st_uid, digest)
    return state


def assert_refused(proc: subprocess.CompletedProcess, words=(), not_words=()) -> str:
    """Exit code 2, exactly one stderr line "snnsim CMD: error: ...", no traceback, the words
    that name the problem and none of `not_words` (the wrong diagnosis it used to give)."""
    lines = proc.stderr.strip("\n").split("\n")
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("snnsim ") and ": error: " in lines[0], lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    for word in not_words:
        assert word not in lines[0], (word, lines[0])
    return lines[0]


def run_many(jobs, run) -> dict:
    """run(job) -> (key, value) for every job, two to four subprocesses at a time (each is
    mostly interpreter start-up and imports, so they overlap well even on two cores)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(2, min(4, (os.cpu_count() or 2) + 1))) as pool:
        return dict(pool.map(run, jobs))
