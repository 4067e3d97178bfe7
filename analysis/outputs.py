"""Write a run's files: summary.json, layers.csv, neurons.csv, energy.csv, report.html /
report.md and tables/ (one profile); comparison.* and per-model reports (a comparison);
plus index.html (the demo).

Everything is written into a temporary folder next to the destination and moved into place
only when complete, so an error never leaves a partial report posing as a whole one. An
existing destination is replaced only when snnsim wrote it (it holds the marker file) or it
is empty -- never a folder of someone else's files.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

import pandas as pd

MARKER = ".snnsim-output"


class OutputDirError(ValueError):
    """The output folder cannot be used (one line: the folder and the fix)."""


def check_output_dir(out: str | os.PathLike) -> pathlib.Path:
    """Raise OutputDirError unless `out` can be (re)written: absent, empty, or an earlier
    snnsim output. Called before any work starts."""
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is a file, not a folder; pass a new folder name")
    if out.is_dir():
        try:
            entries = [e.name for e in os.scandir(out)]
        except OSError as err:
            raise OutputDirError(f"--out {out} cannot be read ({err.strerror}); pass another folder") from None
        if entries and MARKER not in entries:
            raise OutputDirError(f"--out {out} already holds files snnsim did not write; pass a new or empty "
                                 f"folder (snnsim replaces only its own output)")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise OutputDirError(f"--out {out}: cannot write in {probe}; pass a folder you can write to")
    return out


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike, what: str = "snnsim"):
    """Yield a temporary folder; on success it replaces `out` in one rename."""
    out = check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text(f"written by {what}; snnsim may replace this folder\n")
        tmp.chmod(0o755)
        if out.exists():
            old = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------ one model
def price(tp, hardware: list[str]):
    """(summary dict with the energy blocks, per-layer energy table or None)."""
    from snnsim.tracking.frame_energy import tracker_energy

    summary = tp.summary()
    summary["energy"], summary["energy_template"], summary["energy_details"] = {}, None, []
    layers = None
    if hardware:
        summary["energy"], summary["energy_template"], summary["energy_details"], layers = \
            tracker_energy(tp, hardware)
    return summary, layers


def write_run_files(folder: pathlib.Path, tp, summary: dict, energy_layers, capture=None) -> None:
    """The data files of one profile run (no report) into an existing folder."""
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tp.layers().to_csv(folder / "layers.csv", index=False)
    tp.neurons().to_csv(folder / "neurons.csv", index=False)
    if energy_layers is None:   # no hardware given (or nothing applies): the header, no rows
        from snnsim.energy.result import BASE_COLUMNS

        energy_layers = pd.DataFrame(columns=[*BASE_COLUMNS, "hardware", "estimator", "branch"])
    energy_layers.to_csv(folder / "energy.csv", index=False)
    if capture is not None:
        capture.save(folder)


def write_profile(tp, out: str | os.PathLike, hardware: list[str], *, baselines: list[dict] | None = None,
                  capture=None, report: bool = True, priced=None) -> dict:
    """Write one tracker profile's files (and its report) to `out`; return summary.json's
    content. `priced`: a (summary, layers) pair from `price` to reuse."""
    summary, layers = priced if priced is not None else price(tp, hardware)
    with staged_dir(out, "snnsim profile") as tmp:
        write_run_files(tmp, tp, summary, layers, capture)
        if report:
            from .report import write_report

            write_report(tmp, baselines=baselines)
    return summary


# ------------------------------------------------------------------------ several models
def write_suite(out: str | os.PathLike, runs: list[dict], *, index: dict | None = None) -> list[dict]:
    """A comparison: `runs` are {'tp', 'summary', 'layers', 'capture'} per model. Writes
    out/<model>/ (full report, ratios against the ANN models of the run), out/comparison.*
    and, with `index` ({'title', 'intro'}), out/index.html. Returns the summaries."""
    from .report import write_comparison, write_index, write_report

    summaries = [r["summary"] for r in runs]
    anns = [s for s in summaries if s.get("kind") != "spiking"]
    with staged_dir(out, "snnsim compare") as tmp:
        for r in runs:
            folder = tmp / r["summary"]["model"]
            folder.mkdir()
            write_run_files(folder, r["tp"], r["summary"], r["layers"], r.get("capture"))
            links = {"index": "../index.html"} if index else {}
            links["comparison"] = "../comparison.html"
            write_report(folder, baselines=anns, links=links)
        write_comparison(tmp, summaries, links={"index": "index.html"} if index else None)
        if index:
            write_index(tmp, summaries, index["title"], index["intro"])
    return summaries
