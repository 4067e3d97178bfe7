"""A dataset run's outputs, assembled from its finished sequences (sequences/*.json), one
sequence at a time and in the dataset's order:

* ``dataset_summary.json`` -- per model: frames, sequences, exact count sums and per-frame
  means, the template pass, energy per frame on every profile x estimator priced once from the
  merged counts (for `track` also per_frame.csv's view, template passes charged to their
  frames), percentiles over the sequences of their energy per frame and of each neuron module's
  firing rate, the number format of every figure, what was not counted; how many of the
  sequences finished. Written last: a folder without it was not assembled.
* ``sequences.csv`` -- one row per sequence and model (counts per frame of the search passes,
  template cached; energy per frame priced on the sequence's merged counts); ``frames.parquet``
  -- one row per frame (counts, spikes, energy; for `track` per_frame.csv's rows: a frame's
  counts and energy include the template pass that ran in it, and the box and its IoU); ``failures.csv`` -- the sequences
  that failed and why; ``metrics.json`` for `track`. These do not depend on the number of
  workers or the order the sequences finished in (the same dataset gives the same bytes).
* ``timings.csv`` (wall time per sequence) and ``report.html`` / ``report.md``, which show it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from snnsim.analysis.tables import module_rates
from snnsim.counting.result import TOTAL_FIELDS, UncountedTally, module_names
from snnsim.energy import load_hardware
from snnsim.energy.frames import FrameMean
from snnsim.pipeline.pricing import number_format, price_each

from snnsim.tracking.run import energy_column

from . import run as _run
from .run import DatasetRun, read_records

__all__ = ["PERCENTILES", "assemble"]
SCHEMA = "snnsim.dataset_summary/1"
PERCENTILES = (5, 25, 50, 75, 95)   # of the per-sequence figures (energy per frame, firing rates)


def _energy_columns(job: DatasetRun) -> list[tuple[Any, str, str]]:
    """(profile, estimator, column) of every priced pair, in the run's order; the profiles
    loaded once from what the run was given (shipped names or a user's YAML paths)."""
    cols = []
    for h in job.hardware:
        hw = load_hardware(h)
        cols += [(hw, est, energy_column(hw.name, est)) for est in hw.estimators]
    return cols


def _priced(counts: FrameMean, energy_cols) -> dict[str, Any]:
    """{column: Energy} of every priced pair, through the pricing loop every command uses."""
    profiles = list({id(hw): hw for hw, _, _ in energy_cols}.values())
    columns = {(hw.name, est): col for hw, est, col in energy_cols}
    return {columns[(hw.name, est)]: e for hw, est, e in price_each(counts, profiles)}


def _spread(values: list[float]) -> dict | None:
    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if not len(vals):
        return None
    out = {"sequences": int(len(vals)), "min": float(vals.min()), "max": float(vals.max())}
    out.update({f"p{p}": float(np.percentile(vals, p)) for p in PERCENTILES})
    return out


class _ModelTotals:
    """One model's aggregate over the finished sequences, folded in one sequence at a time."""

    def __init__(self):
        self.frames = self.sequences = self.template_passes = 0
        self.sums = dict.fromkeys(TOTAL_FIELDS, 0)              # track: per_frame.csv's rows summed (exact)
        self.counts: FrameMean | None = None                   # merged search passes (template cached)
        self.template: FrameMean | None = None                 # merged template passes
        self.with_template: dict[str, list] = {}               # track: (sum of per_frame.csv's J, frames)
        self.tally = UncountedTally()
        self.unseen: list[str] = []
        self.per_sequence: dict[str, list] = {}                # column -> energy per frame of each sequence
        self.layer_rates: dict[str, list] = {}                 # neuron module -> its firing rate in each sequence
        self.kind = self.thop = self.timesteps = self.weights = None


def assemble(job: DatasetRun, folder, failures: dict[str, str]) -> dict:
    """Write the dataset's outputs into `folder` (a ResumableFolder); return the summary."""
    energy_cols = _energy_columns(job)
    models = {m: _ModelTotals() for m in job.models}
    seq_rows: list[dict] = []
    timings: list[dict] = []    # wall times: apart from the tables, which never depend on the run's timing
    metrics_parts: dict[str, list] = {m: [] for m in job.models}
    with folder.staged("frames.parquet") as parquet_path:   # streamed to disk, sequence by sequence
        frame_tables = _FrameTable(job, energy_cols, parquet_path)
        done = _fold_records(job, folder, models, energy_cols, seq_rows, timings, frame_tables, metrics_parts)
        frame_tables.close()
    finished = set(done)
    failed = {s.name: failures.get(s.name, "not finished (interrupted); rerun with the same --out to resume")
              for s in job.sequences if s.name not in finished}
    summary = _summary(job, models, energy_cols, done, failed)
    if job.command == "track":
        summary["metrics"] = _metrics(job, metrics_parts)
        folder.write("metrics.json", json.dumps(summary["metrics"], indent=1) + "\n")
    seq_table = pd.DataFrame(seq_rows)
    folder.write("sequences.csv", seq_table.to_csv(index=False))
    folder.write("failures.csv", pd.DataFrame([{"sequence": k, "reason": v} for k, v in failed.items()],
                                              columns=["sequence", "reason"]).to_csv(index=False))
    from snnsim.analysis.dataset_report import write_dataset_report

    timing_table = pd.DataFrame(timings, columns=["sequence", "model", "frames", "seconds"])
    folder.write("timings.csv", timing_table.to_csv(index=False))
    for rel, text in write_dataset_report(summary, seq_table, timing_table).items():
        folder.write(rel, text)
    folder.write("dataset_summary.json", json.dumps(summary, indent=1, allow_nan=False) + "\n")
    return summary


def _fold_records(job, folder, models, energy_cols, seq_rows, timings, frame_tables, metrics_parts) -> list[str]:
    """Every finished sequence, one at a time in the dataset's order, into the aggregates."""
    done: list[str] = []
    for rec in read_records(folder, job):
        done.append(rec["sequence"])
        for name, res in rec["models"].items():
            acc = models[name]
            row = {"sequence": rec["sequence"], "model": name}
            timings.append({"sequence": rec["sequence"], "model": name, "frames": int(res.get("frames", 0) or 0),
                            "seconds": round(float(rec["seconds"]), 3)})
            if job.command == "profile":
                row.update(_fold_profile(acc, res, energy_cols))
            else:
                row.update(_fold_track(acc, res, energy_cols, metrics_parts[name], rec["sequence"]))
            seq_rows.append(row)
            frame_tables.add(rec["sequence"], name, res)
    return done


def _fold_profile(acc: _ModelTotals, res: dict, energy_cols) -> dict:
    counts, template = _fold_sequence(acc, res, dict(res, input=res["inputs"], thop_macs=res["thop"]))
    acc.template_passes += template.n if template is not None else 0
    row: dict[str, Any] = {"frames": int(res["frames"])}
    for k in TOTAL_FIELDS:
        row[k] = sum(int(r[k]) for r in res["rows"]) / max(int(res["frames"]), 1)
    _price_sequence(acc, counts, energy_cols, row)
    return row


def _fold_track(acc: _ModelTotals, res: dict, energy_cols, metrics_part: list, sequence: str) -> dict:
    s, rows = res["summary"], res["rows"]
    counts, _ = _fold_sequence(acc, dict(res, frames=len(rows)), s)
    acc.template_passes += int(s["template_passes"])
    for r in rows:
        for k in TOTAL_FIELDS:
            acc.sums[k] += int(float(r[k])) if k in r and r[k] != "" else 0
    row: dict[str, Any] = {"frames": len(rows)}
    row.update({key: s["totals"][key] for key in TOTAL_FIELDS})   # per frame, search pass alone
    _price_sequence(acc, counts, energy_cols, row)
    for _hw, _est, col in energy_cols:
        # per_frame.csv's rows: each frame with the template passes that ran in it
        vals = [float(r[col]) for r in rows if r.get(col, "") != ""]
        acc.with_template.setdefault(col, []).append((math.fsum(vals) if len(vals) == len(rows) else None,
                                                      len(rows)))
    m = s.get("metrics") or {}
    for key in ("auc", "precision", "norm_precision", "HOTA", "MOTA", "IDF1"):
        if key in m:
            row[key] = m[key]
    metrics_part.append({"sequence": sequence, "scores": res.get("scores"), "frames": len(rows)})
    return row


def _fold_sequence(acc: _ModelTotals, res: dict, described: dict) -> tuple[FrameMean, FrameMean | None]:
    """One sequence's count tables merged into the model's (its search passes and its template
    passes), what it left uncounted, and what describes the model (`described`: a run summary's
    kind / input / thop_macs / timesteps / weights). Returns the sequence's own search and
    template counts (None: no template pass)."""
    counts = FrameMean.from_state(res["counts"])
    tpl = FrameMean.from_state(res["template"]) if res["template"] is not None else None
    # (the first sequence's tables become the model's: they are priced before the next merge)
    acc.counts = counts if acc.counts is None else acc.counts.merge(counts)
    if tpl is not None:
        acc.template = tpl if acc.template is None else acc.template.merge(tpl)
    acc.frames += int(res["frames"])
    acc.sequences += 1
    acc.tally.add_rows(described["uncounted"])
    acc.unseen = module_names(acc.unseen, described.get("unseen_neurons", []))
    acc.kind, acc.thop = described["kind"], described["thop_macs"]
    acc.timesteps, acc.weights = described["timesteps"], described["weights"]
    return counts, tpl


def _price_sequence(acc: _ModelTotals, counts: FrameMean, energy_cols, row: dict) -> None:
    """The sequence's energy per frame on every (profile, estimator), priced on its own merged
    search counts, into its row and the per-sequence spread; its firing rate per neuron module."""
    for col, e in _priced(counts, energy_cols).items():
        row[col] = e.total_j if e.applicable else None
        acc.per_sequence.setdefault(col, []).append(row[col])
    if acc.kind == "spiking":
        for module, rate in _module_rates(counts).items():
            acc.layer_rates.setdefault(module, []).append(rate)


def _module_rates(counts: FrameMean) -> dict[str, float]:
    """Firing rate of each neuron module over the frames of `counts` (analysis.tables.module_rates:
    spikes / neuron updates; a module that updated no neuron has no rate)."""
    parts = [N for _L, N, _n in counts.sum_tables() if len(N)]
    rates = module_rates(pd.concat(parts, ignore_index=True) if parts else None)
    return {str(r.module): float(r.firing_rate) for r in rates.itertuples() if r.neurons}


def _summary(job: DatasetRun, models: dict, energy_cols, done: list[str], failed: dict) -> dict:
    out_models = {}
    for name, acc in models.items():
        n = max(acc.frames, 1)
        energy, energy_template, precision, spread, notes, with_template = {}, {}, {}, {}, [], {}
        complete = not acc.tally.rows() and not acc.unseen
        if acc.weights is not None and not acc.weights["trained"]:
            notes.append(f"Weights are untrained ({acc.weights['source']}): firing rates and spike-driven energy are "
                         "not those of a trained model.")
        if not complete:
            notes.append("Some operators ran with no counting formula or some neuron modules were never seen "
                         "(uncounted, unseen_neurons): the counts and energy are lower bounds.")
        # priced once, on the counts merged over every finished sequence (none: no figure, no format)
        priced = _priced(acc.counts, energy_cols) if acc.counts is not None else {}
        priced_template = _priced(acc.template, energy_cols) if acc.template is not None else {}
        for hw, est, col in energy_cols:
            hw_name = hw.name
            e, t = priced.get(col), priced_template.get(col)
            j = e.total_j if e is not None and e.applicable else None
            precision.setdefault(hw_name, {})[est] = number_format(hw, e) if e is not None else None
            if t is not None:
                energy_template.setdefault(hw_name, {})[est] = t.total_j if t.applicable else None
            if job.command == "track":
                with_template.setdefault(hw_name, {})[est] = _weighted(acc.with_template.get(col, []))
            energy.setdefault(hw_name, {})[est] = j
            spread.setdefault(hw_name, {})[est] = _spread(acc.per_sequence.get(col, []))
        # counts from the merged tables: the search passes (template cached), the template passes apart
        totals_sum, template_sum = _exact_totals(acc.counts), _exact_totals(acc.template)
        out_models[name] = {
            "kind": acc.kind, "weights": acc.weights, "sequences": acc.sequences, "frames": acc.frames,
            "timesteps": acc.timesteps,
            "totals_sum": totals_sum, "totals": {k: v / n for k, v in totals_sum.items()},
            "template_passes": acc.template_passes,
            "template": ({k: v / acc.template_passes for k, v in template_sum.items()}
                         if acc.template_passes else None),
            "thop_macs": acc.thop if job.command == "track" else
            (acc.thop["search"] + acc.thop["template"] if acc.thop else None),
            "energy": energy, "energy_template": energy_template or None, "energy_precision": precision,
            "energy_per_sequence": spread,
            "firing_rate_per_sequence": {m: _spread(v) for m, v in acc.layer_rates.items()} or None,
            "uncounted": acc.tally.rows(), "unseen_neurons": acc.unseen,
            "complete": complete, "notes": notes,
        }
        if job.command == "track":
            m = out_models[name]
            # per_frame.csv's counts: each frame with the template passes that ran in it
            m["totals_with_template_sum"] = dict(acc.sums)
            m["totals_with_template_per_frame"] = {k: v / n for k, v in acc.sums.items()}
            m["energy_with_template_per_frame"] = with_template
    accounting = ("energy per tracking frame, template cached, priced once on the counts merged over every frame "
                  "of every finished sequence (the frame-weighted mean of the per-frame energies); "
                  "energy_template per template pass, one per sequence"
                  if job.command == "profile" else
                  "energy per tracking frame, search pass alone with the template cached, priced once on the "
                  "search passes' counts merged over every frame of every finished sequence; energy_template per "
                  "template pass, priced once on the template passes' merged counts; "
                  "energy_with_template_per_frame: per_frame.csv's view, the template passes charged to the frames "
                  "where they ran (the frame-weighted mean of those rows)")
    total = len(job.sequences)
    return {
        "schema": SCHEMA, "command": job.command, "dataset": str(Path(job.root).resolve()), "models": out_models,
        "sequences": {"total": total, "finished": len(done), "failed": len(failed)},
        "sequences_line": f"{len(done)} of {total} sequences",
        "frames": next(iter(out_models.values()))["frames"] if out_models else 0,
        "hardware": list(job.hardware), "weights": job.weights or "default", "max_frames": job.max_frames,
        "complete": not failed and all(m["complete"] for m in out_models.values()),
        "failed": failed, "energy_accounting": accounting,
        "chunk_frames": _run.CHUNK_FRAMES,
    }


def _exact_totals(fm: FrameMean | None) -> dict[str, int]:
    """The count totals summed over every frame of a merged FrameMean, as exact ints."""
    from snnsim.energy.frames import table_totals

    out = dict.fromkeys(TOTAL_FIELDS, 0)
    for L, N, _n in (fm.sum_tables() if fm is not None and len(fm) else []):
        for k, v in table_totals(L, N).items():
            out[k] += int(round(v))
    return out


def _weighted(parts: list[tuple]) -> float | None:
    """Σ value / Σ weight over (value x weight, weight) pairs; None when any value is missing
    (not applicable) or nothing was weighed."""
    if not parts or any(v is None for v, _ in parts):
        return None
    total = sum(w for _, w in parts)
    return math.fsum(v for v, _ in parts) / total if total else None


def _metrics(job: DatasetRun, parts: dict[str, list]) -> dict:
    """The dataset's tracking metrics, combined the way each benchmark combines them: SOT
    success / precision curves averaged over the sequences (OTB / LaSOT), AO and SR over every
    scored frame (GOT-10k), MOT through trackeval's combination of the sequences (HOTA / MOTA / IDF1 over the
    whole split). Sequences without per-frame ground truth are left out and counted."""
    import numpy as np

    from snnsim.tracking.sot_metrics import SOTMetrics, average_sot_metrics

    out = {}
    for name, seqs in parts.items():
        scored = [s for s in seqs if s["scores"]]
        entry: dict[str, Any] = {"sequences_scored": len(scored), "sequences_without_ground_truth":
                                 len(seqs) - len(scored)}
        sot = [s["scores"] for s in scored if s["scores"].get("task") == "sot"]
        mot = {s["sequence"]: s["scores"] for s in scored if s["scores"].get("task") == "mot"}
        if sot:
            per = [SOTMetrics(**{k: (np.asarray(d[k]) if k.endswith("curve") else d[k])
                                 for k in SOTMetrics.__dataclass_fields__}) for d in sot]
            entry["sot"] = average_sot_metrics(per).as_dict()
            entry["sot"]["combined"] = ("curves, AUC and precisions averaged over the sequences (each sequence "
                                        "weighs the same); AO and SR over every scored frame (GOT-10k)")
        if mot:
            from snnsim.tracking.mot_metrics import mot_metrics_combined

            combined = mot_metrics_combined({k: (np.asarray(v["gt"]).reshape(-1, 9) if v["gt"] else np.zeros((0, 9)),
                                                 np.asarray(v["res"]).reshape(-1, 7), v["frames"])
                                             for k, v in mot.items()})["COMBINED"]
            entry["mot"] = {**combined, "combined": "trackeval's combination of the sequences (no ReID)"}
        out[name] = entry
    return out


class _FrameTable:
    """frames.parquet: one row per frame and model, streamed sequence by sequence."""

    def __init__(self, job: DatasetRun, energy_cols, path):
        import pyarrow as pa

        self.pa = pa
        self.job = job
        self.energy = [c for _, _, c in energy_cols]
        fields = [("sequence", pa.string()), ("model", pa.string()), ("frame", pa.int64())]
        fields += [(k, pa.int64()) for k in TOTAL_FIELDS]
        fields += [(c, pa.float64()) for c in self.energy]
        if job.command == "track":
            fields += [("template_pass", pa.bool_()), ("x", pa.float64()), ("y", pa.float64()), ("w", pa.float64()),
                       ("h", pa.float64()), ("iou", pa.float64())]
        self.schema = pa.schema(fields)
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(str(path), self.schema)

    def add(self, sequence: str, model: str, res: dict) -> None:
        rows = res["rows"]
        cols: dict[str, list] = {name: [] for name in self.schema.names}
        for r in rows:
            cols["sequence"].append(sequence)
            cols["model"].append(model)
            cols["frame"].append(int(float(r["frame"])))
            for k in TOTAL_FIELDS:
                cols[k].append(int(float(r[k])) if r.get(k, "") != "" else None)
            for c in self.energy:
                v = r.get(c)
                cols[c].append(None if v in (None, "") else float(v))
            if self.job.command == "track":
                cols["template_pass"].append(str(r.get("template_ran", "")).lower() in ("1", "true"))
                for k in ("x", "y", "w", "h", "iou"):
                    v = r.get(k, "")
                    cols[k].append(None if v in (None, "") else float(v))
        if rows:
            self.writer.write_table(self.pa.table(cols, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
