"""report.html / report.md of a dataset run, rendered from the tables it is given (the run's
summary, with the percentiles over the sequences of each neuron module's firing rate, its
per-sequence table and the wall times)."""
from __future__ import annotations

import pandas as pd

from . import figures
from .report import Doc
from .tables import fmt_energy, fmt_ratio

__all__ = ["write_dataset_report", "sequence_ratios", "rate_spread"]


def sequence_ratios(summary: dict, seq_table: pd.DataFrame) -> pd.DataFrame:
    """SNN / ANN energy per frame of every sequence both finished, per profile / estimator."""
    cols = ["sequence", "snn", "ann", "profile", "ratio"]
    if len(seq_table) == 0:
        return pd.DataFrame(columns=cols)
    kinds = {m: v["kind"] for m, v in summary["models"].items()}
    energy = [c for c in seq_table.columns if c.startswith("energy_J/")]
    by = seq_table.set_index(["model", "sequence"])
    rows = []
    for snn in [m for m, k in kinds.items() if k == "spiking"]:
        for ann in [m for m, k in kinds.items() if k != "spiking"]:
            for seq in seq_table.loc[seq_table["model"] == snn, "sequence"]:
                if (ann, seq) not in by.index:
                    continue
                for c in energy:
                    a, b = by.loc[(snn, seq), c], by.loc[(ann, seq), c]
                    ok = pd.notna(a) and pd.notna(b) and float(b) > 0
                    rows.append([seq, snn, ann, c.split("/", 1)[1], float(a) / float(b) if ok else None])
    return pd.DataFrame(rows, columns=cols)


def rate_spread(spread: dict[str, dict | None]) -> pd.DataFrame:
    """Neuron module x the percentile columns (p5, p25, ...) of the summary's
    firing_rate_per_sequence, as the run computed them."""
    rows = {m: {k: v for k, v in d.items() if k.startswith("p")} for m, d in (spread or {}).items() if d}
    return pd.DataFrame.from_dict(rows, orient="index")


def write_dataset_report(summary: dict, seq_table: pd.DataFrame, timings: pd.DataFrame) -> dict[str, str]:
    """{'report.html': ..., 'report.md': ...} of a dataset run."""
    s = summary
    doc = Doc(f"snnsim {s['command']} --dataset: {', '.join(s['models'])} on {s['dataset']}")
    finished = s["sequences"]
    doc.p(f"{s['sequences_line']} finished ({finished['failed']} failed); "
          f"{'complete' if s['complete'] else 'NOT complete: the totals below cover the finished sequences only'}. "
          f"Weights: {s['weights']}; at most {s['max_frames'] or 'all'} frames per sequence.", cls="lead")
    if s["failed"]:
        doc.box("Failed or unfinished sequences (failures.csv): " + "; ".join(
            f"{k}: {v}" for k, v in list(s["failed"].items())[:10]) + (" ..." if len(s["failed"]) > 10 else ""),
            "warn")
    doc.h(2, "Energy per tracking frame", "energy")
    doc.p(s["energy_accounting"] + ".", cls="muted")
    rows = []
    for m, v in s["models"].items():
        for hw, by in v["energy"].items():
            for est, j in by.items():
                sp = v["energy_per_sequence"][hw][est] or {}
                rows.append([m, f"{hw} / {est}", v["energy_precision"][hw][est] or "n/a",
                             fmt_energy(j) if j is not None else "not applicable",
                             fmt_energy(sp.get("p5")), fmt_energy(sp.get("p50")), fmt_energy(sp.get("p95")),
                             v["frames"], v["sequences"]])
    doc.table(rows, ["model", "profile / estimator", "number format", "mean per frame", "p5 of sequences",
                     "median", "p95", "frames", "sequences"], numeric={3, 4, 5, 6, 7, 8})
    for m, met in (s.get("metrics") or {}).items():
        if met and met.get("sot"):
            x = met["sot"]
            doc.p(f"{m}: success AUC {x['auc']:.3f}, precision {x['precision']:.3f}, normalised precision "
                  f"{x['norm_precision']:.3f} over {met['sequences_scored']} sequences ({x['combined']}).")
        if met and met.get("mot"):
            x = met["mot"]
            doc.p(f"{m}: HOTA {x['HOTA']:.3f}, MOTA {x['MOTA']:.3f}, IDF1 {x['IDF1']:.3f} over "
                  f"{met['sequences_scored']} sequences ({x['combined']}).")
    energy_cols = [c for c in seq_table.columns if c.startswith("energy_J/")]
    doc.figure(figures.dataset_energy_box(seq_table, energy_cols), "dataset-energy",
               "No energy per sequence to draw (no applicable profile, or no finished sequence).")
    ratios = sequence_ratios(s, seq_table)
    doc.h(2, "SNN / ANN per sequence", "ratios")
    doc.figure(figures.dataset_ratio_box(ratios), "dataset-ratios",
               "No SNN / ANN pair in this run (give a spiking and an ANN model to compare them per sequence).")
    if len(ratios.dropna(subset=["ratio"])):
        med = ratios.dropna(subset=["ratio"]).groupby(["snn", "ann", "profile"], sort=False)["ratio"].median()
        doc.table([[snn, ann, prof, fmt_ratio(r)] for (snn, ann, prof), r in med.items()],
                  ["SNN", "ANN", "profile / estimator", "median ratio over sequences"], numeric={3})
    doc.h(2, "Firing rates across the dataset", "rates")
    spreads = {m: v["firing_rate_per_sequence"] for m, v in s["models"].items() if v.get("firing_rate_per_sequence")}
    if not spreads:
        doc.p("No spiking model in this run: no firing rates.", cls="muted")
    for m, spread in spreads.items():
        doc.figure(figures.firing_rate_spread(rate_spread(spread), m), f"rates-{m}", f"No firing rates for {m}.")
    doc.h(2, "Slowest and most expensive sequences", "outliers")
    if len(timings):
        slow = timings.sort_values("seconds", ascending=False).head(5)
        doc.table([[r["sequence"], r["model"], f"{r['seconds']:.1f} s", int(r["frames"])] for _, r in slow.iterrows()],
                  ["sequence", "model", "wall time", "frames"], numeric={2, 3})
    if len(seq_table) and energy_cols:
        col = energy_cols[0]
        costly = seq_table.dropna(subset=[col]).sort_values(col, ascending=False).head(5)
        doc.table([[r["sequence"], r["model"], fmt_energy(r[col])] for _, r in costly.iterrows()],
                  ["sequence", "model", f"energy per frame ({col.split('/', 1)[1]})"], numeric={2})
    html = doc.render_html("files: dataset_summary.json, sequences.csv, frames.parquet, failures.csv, timings.csv")
    return {"report.html": html, "report.md": doc.render_md()}
