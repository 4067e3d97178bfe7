"""What one worker does for a dataset run: build the models once, then count the frames it is
given through the same code a single run uses (:func:`snnsim.tracking.frame_counts.profile_tracker`,
:func:`snnsim.tracking.run.track_sequence`), and hand back count tables -- never frames or
tensors.

A :class:`CountingWorker` is a plain class: the driver runs it in-process (``--workers 1``) or as
a Ray actor (one per worker; Ray restarts an actor whose process died and retries its calls).
Every call is a pure function of its arguments and the models, so a retried call returns the
same counts, and the driver keeps a chunk only once.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from snnsim.counting.result import TOTAL_FIELDS, UncountedTally
from snnsim.energy import load_hardware
from snnsim.energy.frames import FrameMean
from snnsim.pipeline import price_each
from snnsim.tracking.run import energy_column

from snnsim.tracking.errors import SequenceError

from .errors import SequenceFailure

__all__ = ["CountingWorker"]

# Models without shipped weights are drawn after this seed, as `snnsim profile` draws them
# (snnsim.cli.SEED): every worker, and every restarted worker, holds the same network.
RANDOM_SEED = 0


def _as_int(v: float) -> int:
    """A count that is a whole number (every total is) as an exact int."""
    i = int(v)
    if i != v:
        raise ValueError(f"count {v!r} is not a whole number")
    return i


class CountingWorker:
    """The models of a run, built once, and the work on one sequence (or chunk of one)."""

    def __init__(self, models: list[str], weights: str | None, hardware: list[str], threads: int = 1):
        from snnsim.models import build_model

        torch.set_num_threads(max(1, int(threads)))
        self.models = {}
        for name in models:
            torch.manual_seed(RANDOM_SEED)
            self.models[name] = build_model(name, weights=weights)
        self.hardware_refs = list(hardware)   # names or a user's YAML paths, as given
        self.hardware = [load_hardware(h) for h in hardware]

    def pid(self) -> int:
        return os.getpid()

    # ---------------------------------------------------------------- one sequence's size
    def describe(self, path: str, command: str) -> dict:
        """{'frames': N, 'kind': 'sot' | 'mot'}: what the driver needs to cut the sequence into
        chunks; a sequence that cannot be read raises SequenceFailure (its one-line reason)."""
        from snnsim.tracking.sequences import open_sequence

        try:
            seq = open_sequence(path, require_gt=command == "profile")
        except SequenceError as exc:
            raise SequenceFailure(str(exc)) from None
        return {"frames": len(seq), "kind": seq.kind}

    # ---------------------------------------------------------------- profile
    def profile_chunk(self, path: str, skip: int, count: int, with_template: bool) -> dict:
        """Count `count` tracking frames of the sequence at `path` after the first `skip` (crops
        at the previous frame's ground-truth box, as `snnsim profile --sequence`) for every
        model; with_template: also keep the template pass's counts (the sequence's first chunk)."""
        from snnsim.models.registry import weights_info
        from snnsim.tracking.frame_counts import profile_tracker

        out = {}
        for name, model in self.models.items():
            rows: list[dict] = []
            tally = UncountedTally()

            def on_frame(index: int, frame, rows=rows, tally=tally, name=name) -> None:
                rows.append(self._frame_row(index, frame, name))
                tally.add(frame.uncounted)

            try:
                tp = profile_tracker(model, frames=count, sequence=path, skip=skip, on_frame=on_frame)
            except SequenceError as exc:   # the sequence's fault (a frame, a box): the sequence fails
                raise SequenceFailure(str(exc)) from None
            template = None
            if with_template and tp.template is not None:
                tally.add(tp.template.uncounted)
                tmean = FrameMean(None)   # no model: a device measurement is never charged for a template pass
                tmean.add(tp.template)
                template = tmean.to_state()
            out[name] = {
                "frames": len(rows), "counts": tp.aggregate.counts.to_state(), "template": template,
                "uncounted": tally.rows(), "unseen_neurons": list(tp.unseen_neurons),
                "thop": {"search": float(tp.frame.thop_macs),
                         "template": float(tp.template.thop_macs) if tp.template is not None else 0.0},
                "kind": model.kind, "timesteps": int(model.timesteps), "inputs": tp.inputs, "rows": rows,
                "weights": weights_info(model),
            }
        return out

    def _frame_row(self, index: int, frame, model: str) -> dict:
        """One frame's totals (exact ints) and its energy on every (profile, estimator) -- a
        device measurement of ``model`` included, as the summary prices its frames."""
        row: dict[str, Any] = {"frame": int(index)}
        row.update({k: _as_int(frame.totals.get(k, 0.0)) for k in TOTAL_FIELDS})
        for hw, est, e in price_each(frame, self.hardware, model=model):
            row[energy_column(hw.name, est)] = e.total_j if e.applicable else None
        return row

    # ---------------------------------------------------------------- track
    def track(self, path: str, max_frames: int | None) -> dict:
        """Track the whole sequence (closed loop, frame 0 initialises) with every model through
        `snnsim track`'s own code; the per-frame rows and the summary come back, the files it
        wrote are dropped."""
        import csv
        import json

        from snnsim.tracking.run import TrackError, sequence_metrics, track_sequence
        from snnsim.tracking.sequences import open_sequence, read_mot_file, read_sot_result

        seq = open_sequence(path)
        out = {}
        for name, model in self.models.items():
            with tempfile.TemporaryDirectory(prefix="snnsim-dataset-") as tmp:
                run = Path(tmp) / "run"
                tables: dict = {}
                try:
                    summary = track_sequence(model, path, run, hardware=self.hardware_refs,
                                             frames=max_frames, quiet=True, counts=tables)
                except (SequenceError, TrackError) as exc:
                    raise SequenceFailure(str(exc)) from None
                with open(run / "per_frame.csv", newline="") as fh:
                    rows = list(csv.DictReader(fh))
                result = run / f"{seq.name}.txt"
                boxes = read_sot_result(result) if seq.kind == "sot" else None
                mot_rows = read_mot_file(result)[:, :7] if seq.kind == "mot" else None
            n = len(rows)
            scores = None   # what the dataset's metrics are combined from
            if boxes is not None:
                _add_boxes(rows, boxes, seq)
                scores, _ = sequence_metrics(seq, n, list(boxes), None, True, curves=True)
            elif seq.ground_truth is not None:
                gt = seq.ground_truth[seq.ground_truth[:, 0] <= n]
                scores = {"task": "mot", "gt": gt.tolist(), "res": mot_rows.tolist(), "frames": n}
            out[name] = {"summary": json.loads(json.dumps(summary)), "rows": rows, "scores": scores,
                         "counts": tables["search"].to_state(),
                         "template": tables["template"].to_state() if len(tables["template"]) else None}
        return out


def _add_boxes(rows: list[dict], boxes, seq) -> None:
    """Each frame's box (x, y, w, h) and its IoU with the ground truth (None where the target
    is absent or the sequence has no box for the frame)."""
    import numpy as np

    from snnsim.tracking.boxes import iou_paired, xywh_to_xyxy

    n = len(rows)
    gt, valid = np.asarray(seq.ground_truth, dtype=np.float64), np.asarray(seq.valid, dtype=bool)
    have = min(n, len(gt))
    ious = iou_paired(xywh_to_xyxy(boxes[:have]), xywh_to_xyxy(gt[:have])) if have else []
    for i, r in enumerate(rows):
        r.update(zip(("x", "y", "w", "h"), (float(v) for v in boxes[i])))
        r["iou"] = float(ious[i]) if i < have and valid[i] else None
