"""The `track` job: run a registered tracker over a sequence, frame by frame, and write its
boxes, per-frame counts and energy, metrics, summary and a small report.

    from snnsim.tracking.run import track_sequence
    summary = track_sequence("spiketrack-tiny", "path/to/sequence", "out/dir",
                             hardware=["horowitz-45nm-fp32"])

Streaming: frames are decoded one at a time by the sequence reader and dropped after their
step; per-frame counts and energies go straight to per_frame.csv and only the boxes (four
numbers per frame, needed for the result file and the metrics) stay in memory, so memory does
not grow with the sequence beyond that. Counting: one
:class:`~snnsim.counting.Profiler` is held for the whole run; the runtime's meter resets it
before every network pass and takes the pass's Profile after it, so each frame is counted on
its own and the template branch is charged exactly on the frames where it runs
(initialisation and template updates).

Files (through snnsim's one output writer, snnsim.io: ``out`` must be new or an earlier
snnsim output, is locked against a concurrent run, staged beside it and published in one
atomic rename, so a failure or a signal never leaves a partial output folder):

* ``<sequence>.txt`` - the boxes in the dataset's result format (x,y,w,h per frame for SOT;
  MOTChallenge rows for MOT);
* ``per_frame.csv`` - one row per frame: frame, template_ran, the counts (search pass plus
  the template pass where it ran) and the energy in joules per (hardware, estimator);
* ``metrics.json`` - SOT: success AUC, precision, normalised precision (``sot_metrics``);
  MOT: HOTA / MOTA / IDF1 (``mot_metrics``); only when the sequence has ground truth;
* ``summary.json`` - model, weights provenance, frames, template frames, mean counts and mean
  energy per frame (template cost included on the frames where it ran), the search-pass and
  template-pass means apart, notes;
* ``report.html`` - a self-contained page (plotly inline) with the energy-per-frame series.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..counting.result import UncountedTally

__all__ = ["COUNT_COLUMNS", "DEFAULT_HARDWARE", "PassMeter", "TrackError", "track_sequence", "energy_column"]

COUNT_COLUMNS = ("dense_macs", "mac_ops", "syn_ops", "syn_events", "spike_spike", "spike_mask", "spikes",
                 "neuron_updates")
DEFAULT_HARDWARE = ("horowitz-45nm-fp32",)


class TrackError(ValueError):
    """A bad argument of the track job (not of the sequence): one line, names the fix."""


def energy_column(hardware: str, estimator: str) -> str:
    return f"energy_J/{hardware}/{estimator}"


class PassMeter:
    """The runtime's meter: ``with meter('search'): ...`` resets the profiler, runs the pass and
    keeps its Profile under the branch name until ``clear()``."""

    def __init__(self, profiler, batch: int = 1):
        self.profiler = profiler
        self.batch = batch
        self.results: dict[str, Any] = {}

    def clear(self) -> None:
        self.results = {}

    @contextlib.contextmanager
    def __call__(self, branch: str):
        self.profiler.reset()
        yield
        if branch in self.results:
            raise RuntimeError(f"two '{branch}' passes in one frame; the per-frame accounting expects one")
        self.results[branch] = self.profiler.result(self.batch)


def _note_gaps(passes, uncounted: UncountedTally, unseen: list, thop: dict) -> None:
    """Fold the passes' uncounted operators (UncountedTally) and unseen neurons into the run's
    lists, and keep each branch's thop MACs (the same on every pass)."""
    for branch, profile in zip(("search", "template"), passes):
        if profile is None:
            continue
        thop.setdefault(branch, float(profile.thop_macs))
        uncounted.add(profile.uncounted)
        for name in profile.unseen_neurons:
            if name not in unseen:
                unseen.append(name)


def _totals(profile) -> dict[str, float]:
    if profile is None:
        return dict.fromkeys(COUNT_COLUMNS, 0.0)
    t = profile.totals
    return {k: float(t[k]) for k in COUNT_COLUMNS}


class _Pricer:
    """Prices one pass's Profile on every (hardware, estimator); estimates are linear in the
    counts, so a frame's energy is the sum of its passes' energies."""

    def __init__(self, hardware: list[str], model_name: str):
        from snnsim.energy import load_hardware

        self.model_name = model_name
        self.profiles = [load_hardware(h) for h in hardware]
        self.columns = [(hw.name, est) for hw in self.profiles for est in hw.estimators]
        self.applicable: dict[tuple[str, str], bool] = {}
        self.reasons: dict[tuple[str, str], str] = {}
        self.omitted: dict[tuple[str, str], list[str]] = {}

    def price(self, profile, branch: str = "search") -> dict[tuple[str, str], float | None]:
        """{(hardware, estimator): joules of this pass, None where not applicable}. Only the
        search pass may use a device measurement of the model (a measured joules-per-frame
        covers a tracking frame; it must not be charged again for a template pass)."""
        from snnsim.pipeline import price_each

        out = {}
        model = self.model_name if branch == "search" else None
        known_not = [k for k, ok in self.applicable.items() if not ok]
        for hw, est, e in price_each(profile, self.profiles, model=model, skip=known_not):
            key = (hw.name, est)
            if e is not None and key not in self.applicable:
                self.applicable[key] = bool(e.applicable)
                self.reasons[key] = e.reason or ""
                self.omitted[key] = list(e.omitted)
            out[key] = e.total_j if e is not None and e.applicable else None
        return out

    def price_tables(self, tables, branch: str) -> tuple[dict, dict]:
        """({hardware: {estimator: J per pass}}, {hardware: {estimator: number format}}) of a
        FrameMean of one branch's passes: priced once on the merged counts (the mean of the
        per-pass energies, as profile prices its frames); None where the estimator does not apply."""
        from snnsim.pipeline import price_each
        from snnsim.pipeline.pricing import number_format

        energy: dict = {}
        formats: dict = {}
        model = self.model_name if branch == "search" else None
        for hw, est, e in price_each(tables, self.profiles, model=model):
            energy.setdefault(hw.name, {})[est] = e.total_j if e.applicable else None
            formats.setdefault(hw.name, {})[est] = number_format(hw, e)
        return energy, formats


def _open(sequence) -> Any:
    from .sequences import open_sequence

    seq = open_sequence(sequence)
    if seq.kind == "sot" and len(seq) < 2:
        raise TrackError(f"sequence {seq.name} has only {len(seq)} frame: frame 0 gives the initial box and "
                         "tracking starts at frame 1, so a single-object sequence needs at least 2 frames")
    return seq


def _build(model, weights: str | None):
    from snnsim.models import build_model

    if isinstance(model, torch.nn.Module):
        return model
    from snnsim.errors import check_weights

    return build_model(model, weights=check_weights(weights))


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v)) if isinstance(v, float) else str(v)


def track_sequence(model, sequence, out, hardware=DEFAULT_HARDWARE, weights: str | None = None,
                   frames: int | None = None, quiet: bool = True, input_size=None,
                   progress: Callable[[int], None] | None = None, counts: dict | None = None,
                   **runtime_options) -> dict:
    """Run ``model`` (a registered name, or a built TrackerNet) over the sequence folder
    ``sequence`` and write the outputs to ``out`` (replaced if it exists). Returns summary.json's
    dict. ``frames`` limits the frames processed; ``input_size`` (H, W) sets SMTrack's detector
    input; ``counts``, a dict, receives the run's count tables ({'search': FrameMean of the
    search passes, 'template': FrameMean of the template passes}: a dataset run merges and
    prices them); other keyword arguments go to the runtime (e.g. update_interval for SpikeTrack)."""
    from snnsim.counting import Profiler

    from snnsim.io import open_output

    if frames is not None and frames < 1:
        raise TrackError(f"--frames must be at least 1 (got {frames})")
    hardware = [h for h in (hardware or []) if h]
    seq = _open(sequence)
    weights_path = weights if isinstance(weights, (str, os.PathLike)) else None
    output = open_output(out, "snnsim track", inputs=[sequence, weights_path, *hardware])   # checked before work
    net = _build(model, weights)
    name = getattr(net, "registry_name", type(net).__name__)
    family = getattr(net, "family", "")
    if seq.kind == "sot" and family == "smtrack":
        raise TrackError(f"{name} is a multi-object tracker but {seq.root} is a single-object sequence; "
                         "give a MOTChallenge sequence folder (seqinfo.ini + img1/)")
    if seq.kind == "mot" and family != "smtrack":
        raise TrackError(f"{name} is a single-object tracker but {seq.root} is a MOTChallenge sequence; "
                         "give a GOT-10k / LaSOT / OTB sequence folder, or use smtrack-s")
    if input_size is not None and family != "smtrack":
        raise TrackError(f"--input-size sets smtrack-s's detector input; {name} crops its template and search "
                         "regions at its own fixed sizes; leave --input-size out")
    pricer = _Pricer(hardware, name)
    n = len(seq) if frames is None else min(frames, len(seq))
    net.eval()

    with output:   # locked and staged; published only when every file is written
        tmp = output.staging
        summary = _run(net, name, seq, n, pricer, tmp, quiet, input_size, progress, runtime_options, Profiler,
                       counts)
        summary["output"] = str(output.path)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _run(net, name, seq, n, pricer, tmp: Path, quiet, input_size, progress, runtime_options, Profiler,
         counts_out: dict | None = None) -> dict:
    from tqdm import tqdm

    from snnsim.energy.frames import FrameMean

    # the run's count tables, streamed (bounded memory): the summary's energy is priced once on
    # them, as profile prices its frames, and a caller (a dataset run) may merge them
    tables = counts_out if counts_out is not None else {}
    # the template table names no model: a device measurement of the model covers a tracking
    # frame and must never be charged for a template pass (as _Pricer.price does per pass)
    tables.update(search=FrameMean(name), template=FrameMean(None))
    is_sot = seq.kind == "sot"
    formats = [] if net.kind == "ann" else None
    energy_cols = [energy_column(h, e) for h, e in pricer.columns]
    header = ["frame", "template_ran", *COUNT_COLUMNS, *energy_cols]
    boxes: list[np.ndarray] = []
    mot_rows: list[list[float]] = []
    template_frames: list[int] = []
    sums = dict.fromkeys(COUNT_COLUMNS, 0.0)          # search pass + the template pass where it ran
    search_sums = dict.fromkeys(COUNT_COLUMNS, 0.0)
    tpl_sums = dict.fromkeys(COUNT_COLUMNS, 0.0)
    uncounted = UncountedTally()
    unseen: list[str] = []
    thop = {}                                          # branch -> thop MACs of its first pass
    e_frame = {c: 0.0 for c in pricer.columns}       # per_frame.csv's rows summed (its own view)
    bar = tqdm(total=n, desc=f"tracking {seq.name}", disable=quiet or not sys.stderr.isatty(), leave=False)
    with open(tmp / "per_frame.csv", "w", newline="") as fh, torch.no_grad(), \
            Profiler(net, spike_formats=formats) as prof, bar:
        writer = csv.writer(fh)
        writer.writerow(header)
        meter = PassMeter(prof)
        if is_sot:
            from .sot import make_sot_runtime

            runtime = make_sot_runtime(net, meter, **runtime_options)
        else:
            from .mot import MOTRuntime

            runtime = MOTRuntime(net, input_size, meter, frame_rate=seq.frame_rate, **runtime_options)
        for i, image in seq.frames(stop=n):
            meter.clear()
            if is_sot:
                step = runtime.initialize(image, seq.init_box) if i == 0 else runtime.track(image)
                boxes.append(step.box)
            else:
                step = runtime.step(image)
                for tid, b, s in step.tracks:
                    mot_rows.append([i + 1, tid, *b, s])
            del image
            search = meter.results.get("search")
            tpl = meter.results.get("template")
            if search is not None:
                tables["search"].add(search)
            if tpl is not None:
                tables["template"].add(tpl)
            counts = _totals(search)
            for k in COUNT_COLUMNS:
                search_sums[k] += counts[k]
            _note_gaps((search, tpl), uncounted, unseen, thop)
            if tpl is not None:
                template_frames.append(i)
                for k, v in _totals(tpl).items():
                    counts[k] += v
                    tpl_sums[k] += v
            for k in COUNT_COLUMNS:
                sums[k] += counts[k]
            es = pricer.price(search) if search is not None else dict.fromkeys(pricer.columns, 0.0)
            et = pricer.price(tpl, "template") if tpl is not None else dict.fromkeys(pricer.columns, 0.0)
            row_e = []
            for c in pricer.columns:
                if es[c] is None or et[c] is None:  # the estimator does not apply to this model
                    row_e.append(None)
                    continue
                total = es[c] + et[c]
                e_frame[c] += total
                row_e.append(total)
            writer.writerow([_fmt(v) for v in (i, tpl is not None, *(counts[k] for k in COUNT_COLUMNS), *row_e)])
            bar.update(1)
            if progress is not None:
                progress(i)

    result_file = tmp / f"{seq.name}.txt"
    from .sequences import write_mot_result, write_sot_result

    if is_sot:
        write_sot_result(result_file, np.stack(boxes))
    else:
        write_mot_result(result_file, np.asarray(mot_rows, dtype=np.float64).reshape(-1, 7))

    metrics, metrics_note = sequence_metrics(seq, n, boxes, mot_rows, is_sot)
    if metrics is not None:
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    k = len(template_frames)
    energy = {}
    for (hw, est) in pricer.columns:
        ok = pricer.applicable.get((hw, est), True)
        energy.setdefault(hw, {})[est] = e_frame[(hw, est)] / n if ok else None
    # the summary's figures: priced once on the merged count tables (J per frame of the search
    # passes, J per template pass), through the pricing loop every command uses
    energy_search, precision = pricer.price_tables(tables["search"], "search")
    energy_tpl = pricer.price_tables(tables["template"], "template")[0] if k else None
    from snnsim.models.registry import weights_info
    from snnsim.pipeline.summary import core_summary

    from .sequence_inputs import sequence_input

    notes = []
    weights = weights_info(net)
    if not weights["trained"]:
        notes.append(f"Weights are untrained ({weights['source']}): boxes, firing rates and spike-driven energy are "
                     "not those of a trained model.")
    if not is_sot:
        from .mot import REID_NOTE

        notes.append(REID_NOTE)
    if is_sot:
        notes.append("Frame 0 runs the template branch and the search branch; its reported box is the given "
                     "initial box.")
    if metrics_note:
        notes.append(metrics_note)
    hardware_profiles = [hw.provenance() for hw in pricer.profiles]
    if hardware_profiles:   # which file each profile's numbers came from (report.html lists notes)
        notes.append("Hardware profiles: " + "; ".join(
            f"{p['name']} ({'shipped' if p['shipped'] else 'user file'}: {p['file']}, "
            f"sha256 {p['sha256']})" for p in hardware_profiles) + ".")
    unseen_names = [u["module"] if isinstance(u, dict) else str(u) for u in unseen]
    summary = core_summary(
        "track", model=name, kind=net.kind, weights=weights,
        input=sequence_input(seq),
        timesteps=int(getattr(net, "timesteps", 1)), frames=n,
        totals={c: search_sums[c] / n for c in COUNT_COLUMNS},
        template={c: tpl_sums[c] / k for c in COUNT_COLUMNS} if k else None, template_passes=k,
        thop_macs=thop.get("search", 0.0) + thop.get("template", 0.0),
        energy=energy_search, energy_template=energy_tpl,
        energy_precision=precision,
        uncounted=uncounted.rows(),
        complete=not uncounted and not unseen, notes=notes)
    summary.update({
        "family": getattr(net, "family", ""),
        "task": "sot" if is_sot else "mot",
        "params": int(sum(p.numel() for p in net.parameters())),
        "unseen_neurons": unseen_names,
        "template_frames": template_frames,
        # the template cost spread over the frames where it ran (per_frame.csv's rows): track's own view
        "counts_with_template_per_frame": {c: sums[c] / n for c in COUNT_COLUMNS},
        "energy_with_template_per_frame": energy,
        "energy_not_applicable": {f"{h}/{e}": pricer.reasons.get((h, e), "")
                                  for (h, e) in pricer.columns if pricer.applicable.get((h, e)) is False},
        "energy_omitted": {f"{h}/{e}": pricer.omitted.get((h, e), []) for (h, e) in pricer.columns},
        "hardware": sorted({h for h, _ in pricer.columns}),
        "hardware_profiles": hardware_profiles,
        "result_file": result_file.name,
        "metrics": metrics,
    })
    if is_sot:
        summary["runtime"] = {"class": type(runtime).__name__, "template_factor": runtime.template_factor,
                              "search_factor": runtime.search_factor, "template_size": runtime.template_size,
                              "search_size": runtime.search_size, "padding": runtime.pad_rule}
    else:
        summary["reid"] = runtime.uses_reid
        summary["runtime"] = {"class": type(runtime).__name__, "input_size": list(runtime.input_size)}
    from snnsim.analysis.report import write_track_report

    write_track_report(tmp / "report.html", summary, tmp / "per_frame.csv",
                       {f"{h} / {e}": energy_column(h, e) for h, e in pricer.columns})
    return summary


def sequence_metrics(seq, n: int, boxes, mot_rows, is_sot, curves: bool = False) -> tuple[dict | None, str | None]:
    """metrics.json of a run over the first `n` frames of `seq` (or None and the sentence why
    there are none); `curves`: SOT success / precision curves too (a dataset run averages them)."""
    if is_sot:
        if not seq.has_full_gt:
            return None, "No metrics: the sequence has only the first-frame box (no per-frame ground truth)."
        from .sot_metrics import sot_metrics

        valid = seq.valid[:n]
        if not valid[1 if seq.layout == "got10k" else 0:].any():   # GOT-10k scoring skips frame 0 (the given box)
            return None, ("No metrics: no processed frame has a valid ground-truth box"
                          + (" after frame 0 (GOT-10k scoring skips the given first box)."
                             if seq.layout == "got10k" else "."))
        got10k = seq.layout == "got10k"
        # each benchmark's protocol: GOT-10k skips the given box, leaves absent frames out, clips
        # boxes to the image and scores an empty box 0; OTB / LaSOT score every frame, a hidden
        # target as a failure, an empty box as the previous one
        protocol = dict(skip_first=True, absent="exclude", bound=seq.image_size[::-1], carry_forward=False) \
            if got10k else dict(skip_first=False, absent="fail", bound=None, carry_forward=True)
        m = sot_metrics(np.stack(boxes), seq.ground_truth[:n], valid=valid, **protocol)
        d = m.as_dict(curves=curves)
        d.update({"task": "sot", "skip_first": got10k, "absent_frames": protocol["absent"],
                  "clipped_to_image": got10k})
        return d, None
    if seq.ground_truth is None:
        return None, "No metrics: the sequence has no gt/gt.txt."
    from .mot_metrics import mot_metrics
    from .mot import REID_NOTE

    from .mot_metrics import distractor_classes_for

    gt = seq.ground_truth[seq.ground_truth[:, 0] <= n]
    res = np.asarray(mot_rows, dtype=np.float64).reshape(-1, 7)
    d = mot_metrics(gt, res, n_frames=n, distractor_classes=distractor_classes_for(seq.name))
    d.update({"task": "mot", "reid": False, "reid_note": REID_NOTE})
    return d, None


