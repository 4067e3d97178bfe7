"""Write a run's files: summary.json, layers.csv, neurons.csv, energy.csv, report.html /
report.md and tables/ (one profile); comparison.* and per-model reports (a comparison);
plus index.html (the demo).

Every file goes through snnsim's one output writer (snnsim.io): staged beside the
destination, published with an atomic rename only when complete, never over a path snnsim did
not write. The functions here take either a path (they open the output themselves) or an
already open :class:`snnsim.io.OutputFolder` (its owner -- a command that locked ``--out``
before its long work -- publishes it).
"""
from __future__ import annotations

import json
import os
import pathlib

import pandas as pd

from snnsim.io import writing_into


# ------------------------------------------------------------------------ one model
def write_run_files(folder: pathlib.Path, tp, summary: dict, energy_layers, capture=None) -> None:
    """The data files of one profile run (no report) into an existing folder."""
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tp.layers().to_csv(folder / "layers.csv", index=False)
    tp.neurons().to_csv(folder / "neurons.csv", index=False)
    if energy_layers is None:   # no hardware given (or nothing applies): the header, no rows
        from snnsim.energy.result import BASE_COLUMNS

        energy_layers = pd.DataFrame(columns=[*BASE_COLUMNS, "hardware", "estimator", "branch"])
    # every row says what produced it: profile and estimator, and the model and its weights
    # (a row copied into a spreadsheet keeps them)
    from snnsim.pipeline.summary import weights_label

    energy_layers.assign(model=summary.get("model"), weights=weights_label(summary)).to_csv(
        folder / "energy.csv", index=False)
    if capture is not None:
        capture.save(folder)


def write_profile(tp, out: str | os.PathLike, priced: tuple[dict, pd.DataFrame | None], *,
                  baselines: list[dict] | None = None, capture=None, report: bool = True) -> dict:
    """Write one tracker profile's files (and its report) to `out`; return summary.json's
    content. `priced`: the (summary, per-layer energy) pair of snnsim.pipeline.price_tracker
    (this module renders; it does not price)."""
    summary, layers = priced
    with writing_into(out, "snnsim profile") as tmp:
        write_run_files(tmp, tp, summary, layers, capture)
        if report:
            from .report import write_report

            write_report(tmp, baselines=baselines)
    return summary


# ------------------------------------------------------------------------ several models
def write_suite(out: str | os.PathLike, runs: list[dict], *, index: dict | None = None) -> list[dict]:
    """A comparison: `runs` are {'tp', 'summary', 'layers', 'capture'} per model. Writes
    out/<model>/ (full report, ratios against the ANN models of the run), out/comparison.*
    and, with `index` ({'title', 'intro'} and optionally 'break_even': the tables of
    analysis.report.break_even_block), out/index.html. Returns the summaries."""
    from .report import write_comparison, write_index, write_report

    summaries = [r["summary"] for r in runs]
    anns = [s for s in summaries if s.get("kind") != "spiking"]
    with writing_into(out, "snnsim compare") as tmp:
        for r in runs:
            folder = tmp / r["summary"]["model"]
            folder.mkdir()
            write_run_files(folder, r["tp"], r["summary"], r["layers"], r.get("capture"))
            links = {"index": "../index.html"} if index else {}
            links["comparison"] = "../comparison.html"
            write_report(folder, baselines=anns, links=links)
        write_comparison(tmp, summaries, links={"index": "index.html"} if index else None)
        if index:
            # models priced on no profile (the demo's untrained ones) are listed apart, counts only
            priced = [s for s in summaries if s.get("energy")]
            write_index(tmp, priced, index["title"], index["intro"], break_even=index.get("break_even"),
                        counts_only=[s for s in summaries if not s.get("energy")])
    return summaries
