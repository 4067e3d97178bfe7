"""The `loihi` job: map a spiking model onto Loihi 2, run it in fixed point, report.

``run_loihi_job(model, backend, frames, weights, out)`` writes, all or nothing, into ``out``:

* ``mapping.csv``     - the partition: every synaptic layer, folded BatchNorm, neuron module and
                        host operation with where it runs (neurocore | host) and why;
* ``resources.json``  - neurons, synapses, stored weights, cores and chips per population and in
                        total, under the cited Loihi 2 limits;
* ``fidelity.json``   - fixed point vs float: spike agreement per neuron module, output errors,
                        box IoU (open and closed loop), the stem segment's bit-exact check (and
                        lava's, with ``--backend lava``), energy totals;
* ``loihi_energy.csv`` - per-layer energy per frame on Loihi 2 (and Loihi) from the emulated
                        counts (and, beside them, from the float model's);
* ``report.md`` / ``report.html`` - the report (analysis' one report writer).

The whole model always runs in the model-level fixed-point emulator (host operations in float
on the host side). The neurocore segment from the input on (the stem and first stage of
SpikeTrack) also runs in the lava-timed emulator, whose settled spikes must equal the
model-level run bit for bit; ``backend='lava'`` runs that segment in lava-nc as well and
compares every population's state and spikes at every step of every frame.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from .mapper import MappingError, extract_segment, fixed_point_model, map_model

__all__ = ["LoihiJobError", "BACKENDS", "check_request", "run_loihi_job"]

BACKENDS = ("emulator", "lava")
HARDWARE = ("loihi2", "loihi")   # the default --hardware: every profile given must have the loihi estimator


class LoihiJobError(ValueError):
    """A bad request for the loihi job (one line: what and the fix)."""


def check_hardware(hardware) -> Tuple[str, ...]:
    """The --hardware of a loihi run: profile names or YAML paths that load and declare the
    'loihi' estimator (a one-line LoihiJobError otherwise; a malformed profile is its own
    one-line HardwareProfileError). Returns the profiles' names or paths, in order."""
    from snnsim.energy import load_hardware
    from snnsim.errors import check_hardware as check_profiles

    refs = tuple(check_profiles(hardware))          # loaded, each once
    if not refs:
        raise LoihiJobError("--hardware is empty; give Loihi profiles, e.g. loihi2,loihi,loihi-sanafe")
    for ref in refs:
        hw = load_hardware(ref)
        if "loihi" not in hw.estimators:
            raise LoihiJobError(f"--hardware: profile '{hw.name}' has no 'loihi' estimator; the loihi command prices "
                                f"emulated Loihi spikes -- give Loihi profiles, e.g. loihi2,loihi,loihi-sanafe")
    return refs


def check_request(model: str, backend: str = "emulator", frames: int = 1) -> Any:
    """Validate the request before any work; returns the model's registry spec."""
    from snnsim.models.registry import get_spec

    spec = get_spec(model)                # UnknownModelError lists the known models
    if backend not in BACKENDS:
        raise LoihiJobError(f"unknown backend '{backend}'; use --backend emulator or --backend lava")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or int(frames) < 1:
        raise LoihiJobError(f"--frames must be at least 1 (got {frames}); pass --frames 1 or more")
    if spec.kind != "spiking":
        raise LoihiJobError(f"not applicable: {model} is an ANN; Loihi runs spiking models")
    if spec.family != "spiketrack":
        # the tracker loop, crops and box decoding of the fidelity run are SpikeTrack's
        raise LoihiJobError(f"not supported yet: {model} ({spec.family}); the loihi job maps the single-object "
                            f"SpikeTrack family (spiketrack-*) - its fidelity run needs a single-object tracker")
    if backend == "lava":
        try:
            import lava  # noqa: F401
        except ImportError:
            raise LoihiJobError("--backend lava needs lava-nc 0.10.0 (pip install snnsim[loihi]); "
                                "use --backend emulator") from None
    return spec


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return _jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def _write_json_streaming(path: pathlib.Path, obj: Dict[str, Any], rows_key: str) -> None:
    """json.dump of `obj` (indent 2) whose `rows_key` entry -- an iterable of row dicts, e.g.
    fidelity's spooled FrameRows -- is written one row at a time (memory stays flat)."""
    rest = {k: v for k, v in obj.items() if k != rows_key}
    rows = obj.get(rows_key)
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict(orient="records")
    head = json.dumps(_jsonable(rest), indent=2)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(head[:-2] + ",\n" if rest else "{\n")         # drop the closing "\n}"
        fh.write(f"  {json.dumps(rows_key)}: [")
        n = 0
        for row in rows if rows is not None else ():
            text = json.dumps(_jsonable(row), indent=2).replace("\n", "\n    ")
            fh.write(("," if n else "") + "\n    " + text)
            n += 1
        fh.write("\n  ]\n}\n" if n else "]\n}\n")


# --------------------------------------------------------------------------- segment check
def _find_segment(mapping, backend: str):
    try:
        return extract_segment(mapping), None
    except MappingError as e:
        if backend == "lava":
            raise LoihiJobError(f"lava backend: cannot map a segment of {mapping.model}: {e}") from None
        return None, str(e)


def first_step_difference(ref: Dict[str, Dict[str, Any]], emu: Dict[str, Dict[str, Any]], populations,
                          hold: int) -> Optional[str]:
    """Where two step-by-step records ({population: {'u', 's'}: (steps, ...)}) first differ --
    'population.var at step t (frame f, step j)', the earliest step over all populations -- or
    None when every step of every population is equal."""
    found = None      # (step, text)
    for n in populations:
        for key in ("u", "s"):
            a, b = np.asarray(ref[n][key]).astype(np.int64), np.asarray(emu[n][key]).astype(np.int64)
            if a.shape != b.shape:
                return f"{n}.{key}: recorded shapes differ ({a.shape} vs {b.shape})"
            bad = np.flatnonzero((a != b).reshape(a.shape[0], -1).any(axis=1))
            if len(bad) and (found is None or int(bad[0]) < found[0]):
                t = int(bad[0])
                found = (t, f"{n}.{key} at step {t} (frame {t // hold}, step {t % hold})")
    return found[1] if found is not None else None


def _segment_check(seg, mapping, result, backend: str) -> Dict[str, Any]:
    """Run the stem segment in the lava-timed emulator (and lava) on the entry currents the
    fidelity run captured; check it against the model-level fixed-point levels of the same
    search passes."""
    from .fidelity import SEGMENT_FRAMES
    from .graded import build_segment_network

    cur = result.extra["entry_currents"].permute(0, 3, 2, 1).contiguous()     # (F, C, H, W) -> (F, X, Y, C)
    frames = int(cur.shape[0])
    hold = seg.settle_steps
    steps = frames * hold
    net = build_segment_network(seg, cur, hold)
    net.run(1, record=())                   # warm-up (compiled kernels load)
    t0 = time.perf_counter()
    emu = net.run(steps)
    emu_s = time.perf_counter() - t0
    settled_equal = True
    for n in seg.sites:
        for f in range(frames):
            lvl = result.extra["levels"][n][f][0, 0].to(torch.int64).permute(2, 1, 0).numpy()   # (X, Y, C)
            if not np.array_equal(lvl, emu[n]["s"][(f + 1) * hold - 1].astype(np.int64)):
                settled_equal = False
    neurons = sum(int(np.prod(s["shape"])) for s in seg.sites.values())
    out: Dict[str, Any] = {
        "available": True,
        "entry": f"{seg.entry} (host; its integer output current, bias excluded, is injected through a RingBuffer "
                 f"into {sum(1 for s in seg.sites.values() if s['entry'])} populations)",
        "populations": list(seg.sites), "conv_layers": list(seg.layers), "neurons": neurons,
        "pipeline_depth": seg.depth, "hold_steps_per_frame": hold, "frames": frames, "steps": steps,
        "frames_checked": (f"the first {frames} of {result.summary['frames']} frames (the segment check replays the "
                           f"first {SEGMENT_FRAMES} frames at most, so memory stays bounded)"
                           if frames < int(result.summary.get("frames", frames)) else "every frame"),
        "emulator_seconds": emu_s, "emulator_backend": getattr(net, "last_backend", "torch"),
        "settled_equals_model_level_fixed_point": settled_equal,
        "residual_adds": "each Conv (and the RingBuffer) of a residual sum is connected to the summing population's "
                         "a_in; lava's InPort adds them",
        "timing_note": "lava's Conv has no synaptic delay parameter, so residual paths of different depth are aligned "
                       "by holding each frame for depth + 1 steps; on a chip, delay-matched paths (Loihi 2 synaptic "
                       "delays) would take each frame once",
    }
    if backend == "lava":
        from .lava_graded import run_segment_lava

        t0 = time.perf_counter()
        ref = run_segment_lava(seg, cur.numpy(), hold)      # Monitors: u and k of every population, every step
        lava_s = time.perf_counter() - t0
        first_diff = first_step_difference(ref, emu, list(seg.sites), hold)
        out["lava"] = {"bit_exact_vs_emulator": first_diff is None, "first_difference": first_diff,
                       "version": "lava-nc 0.10.0", "run_config": "Loihi2SimCfg(select_tag='fixed_pt')",
                       "compared": f"u and spike payload k of every population at every one of the {steps} steps "
                                   f"({frames} frame(s) x {hold} held steps; lava Monitors)",
                       "seconds_with_monitors": lava_s,
                       "speed_note": "lava ran with Monitors on every population, so no speed-up is quoted "
                                     "here; benchmarks/loihi_speed.py times lava and the emulator side by side"}
    return out


# --------------------------------------------------------------------------- report
def _lava_check_sentence(lv: Dict[str, Any]) -> str:
    """The report's sentence on the lava-nc run of the segment (``segment['lava']``)."""
    first = f" (first difference: {lv['first_difference']})" if lv.get("first_difference") else ""
    return (f"lava-nc backend ({lv['run_config']}): bit-exact with the emulator on {lv['compared']}: "
            f"{lv['bit_exact_vs_emulator']}{first}.")


def _report(s: Dict[str, Any], mapping, resources: Dict[str, Any], fid, energy: Dict[str, Any]):
    """report.md / report.html of the job, through analysis' one report writer (Doc)."""
    from snnsim.analysis.report import Doc
    from snnsim.analysis.tables import fmt_energy
    from snnsim.pipeline.summary import weights_label

    m = s["model"]
    doc = Doc(f"Loihi 2 mapping: {m}")
    doc.p(f"Weights: {weights_label(s)}.")
    if not s["weights"]["trained"]:
        doc.box("The weights are untrained: spike counts, agreement and energy are not those of the trained model.",
                "warn")
    doc.h(2, "Partition")
    nc = mapping.neurocore_layers()
    hl = mapping.host_layers()
    doc.p(f"{len(nc)} synaptic layers run on neurocores (spike input, 8-bit mantissas with one exponent per scale "
          f"group, BatchNorm folded: {len(mapping.bn_folded)} folded); {len(hl)} on the host "
          f"({', '.join(x.name for x in hl) or 'none'}); {len(mapping.sites)} neuron modules become integer graded "
          f"neurons (payload 0..4 as Loihi 2 graded spikes); {len(mapping.host_ops)} host operations. "
          f"See mapping.csv.")
    host_rows = [[h.module or "<model>", h.op, h.why] for h in mapping.host_ops]
    if host_rows:
        doc.table(host_rows[:40], ["module", "operation", "why on the host"])
        if len(host_rows) > 40:
            doc.p(f"... and {len(host_rows) - 40} more (mapping.csv).")
    for h in hl:
        doc.p(f"First layer {h.name}: {h.why}.")
    q = mapping.summary()
    doc.p(f"Weight quantisation: 8-bit signed mantissas in [-127, 127], round half to even, shared exponent per "
          f"scale group (the layers adding into one neuron); relative weight error mean "
          f"{q['mean_quant_rel_error']:.3%}, max {q['max_quant_rel_error']:.3%}; {q['clipped_mantissas']} "
          f"clipped. Biases and host currents: floor(x 2^s + 1/2) in the neuron's unit 2^-s.")
    doc.h(2, "Resources (Loihi 2)")
    lim = resources["limits"]
    doc.p(f"Limits from hardware profile `{resources['hardware']['name']}`: "
          + "; ".join(f"{k.replace('_', ' ')} {v['value']:g} {v['unit']} ({v['status']})"
                      for k, v in lim.items()) + ".")
    rows = []
    for k in ("fanout", "relay"):
        t = resources["totals"][k]
        rows.append([k + (" (recommended)" if k == resources["recommended"] else ""), f"{t['neurons']:,}",
                     f"{t['synapses']:,}", f"{t['stored_weight_bytes'] / 1024:,.0f} KiB", t["cores"], t["chips"]])
    doc.table(rows, ["residual mapping", "neurons", "synapses", "stored weights", "cores", "chips"])
    doc.p(f"Placement: {resources['placement'][2]}. Host: {resources['host']['macs_per_frame']:,} MACs per frame "
          f"in {', '.join(resources['host']['layers']) or 'no layer'} plus {len(resources['host']['operations'])} "
          f"operations (embedded x86 cores or off chip).")
    f = fid.summary
    doc.h(2, "Fidelity (fixed point vs float)")
    sa = f["spike_agreement"]
    doc.p(f"{f['frames']} frame(s) of a synthetic sequence. Spike agreement (equal levels 0..4): overall "
          f"{_pct(sa['overall'])}, mean over neuron modules {_pct(sa['mean_over_modules'])}, lowest "
          f"{_pct(sa['min'])} ({sa['min_module']}). Open-loop box IoU float vs fixed point: mean "
          f"{_num(f['open_loop_box_iou']['mean'])}, min {_num(f['open_loop_box_iou']['min'])}.")
    if "closed_loop" in f:
        c = f["closed_loop"]
        doc.p(f"Closed loop (each model tracks on its own): IoU float vs fixed point mean "
              f"{_num(c['mean_iou_float_vs_fixed'])} (min {_num(c['min_iou_float_vs_fixed'])}); IoU with the ground "
              f"truth {_num(c['mean_iou_float_vs_gt'])} (float) and {_num(c['mean_iou_fixed_vs_gt'])} (fixed point).")
    oe = f.get("output_error", {})
    if oe:
        doc.p("Output error (relative L2, mean over frames): " + ", ".join(
              f"{k.replace('_rel_l2', '')} {v:.3g}" for k, v in oe.items() if k.endswith("rel_l2")) + ".")
    if len(fid.sites):
        worst = fid.sites.nsmallest(5, "agreement")
        doc.table([[r.module, f"{r.agreement:.4f}", f"{r.mean_level_float:.3f}", f"{r.mean_level_fixed:.3f}"]
                   for r in worst.itertuples()],
                  ["neuron module (lowest agreement)", "agreement", "mean level float", "mean level fixed"])
    seg = s["segment"]
    doc.h(2, "Neurocore segment: emulator and lava")
    if seg.get("available"):
        doc.p(f"Stem + first stage ({len(seg['populations'])} populations, {len(seg['conv_layers'])} convs, "
              f"{seg['neurons']:,} neurons): entry {seg['entry']}. Residual adds: {seg['residual_adds']}. "
              f"Each frame is held {seg['hold_steps_per_frame']} steps ({seg['timing_note']}). Lava-timed emulator "
              f"settled spikes equal the model-level fixed-point run: {seg['settled_equals_model_level_fixed_point']}.")
        if "lava" in seg:
            doc.p(_lava_check_sentence(seg["lava"]))
        else:
            doc.p("Run with `--backend lava` to check the same segment in lava-nc.")
    else:
        doc.p(f"No neurocore segment from the input could be cut: {seg.get('reason')}.")
    doc.h(2, "Loihi energy per frame (search branch, template cached)")
    rows = []
    for hw, by in energy.items():
        for label, v in by.items():
            rows.append([hw, label, v["precision"], fmt_energy(v["joules_per_frame"])])
    doc.table(rows, ["hardware", "counts", "number format", "energy per frame"])
    pre = energy.get("loihi", {}).get(FANOUT, {}).get("joules_per_frame")
    cal = energy.get("loihi-sanafe", {}).get(FANOUT, {}).get("joules_per_frame")
    if pre and cal:
        doc.p(f"Loihi 1, the same emulated spikes priced twice: {fmt_energy(pre)} per frame with Davies et al.'s "
              f"pre-silicon figures (loihi), {fmt_energy(cal)} with SANA-FE's silicon-calibrated ones (loihi-sanafe): "
              f"{cal / pre:.2f}x. The spread is the uncertainty of the per-event constants, not of the counts.")
    l2 = energy.get("loihi2", {})
    fo = l2.get("fixed-point emulation (fanout)", {}).get("joules_per_frame")
    rl = l2.get("fixed-point emulation (relay)", {}).get("joules_per_frame")
    tf, tr = resources["totals"]["fanout"], resources["totals"]["relay"]
    if fo and rl:
        doc.p(f"Trade-off of the residual mappings on Loihi 2: fanout {tf['cores']} cores / {fmt_energy(fo)} per frame, "
              f"relay {tr['cores']} cores / {fmt_energy(rl)} per frame (relay stores "
              f"{tf['stored_weight_bytes'] / max(tr['stored_weight_bytes'], 1):.1f}x fewer weight bytes; its extra "
              f"relay neurons cost cores, since neurons, not synaptic memory, limit the cores here).")
    doc.p("fanout: each residual-stream layer is evaluated once per population that sums it (the mapping the "
          "lava backend uses); relay: once per stream point plus the relay populations' updates, dense graded "
          "messages and identity synapses (an upper bound: the running sum is taken as never zero); one copy per "
          "layer: the float model's layer count on the fixed-point spikes, isolating the quantisation effect. "
          "Host MACs and spike x spike products are reported, not priced; Loihi 2 energies are assumed constants "
          "(loihi2 profile). One pass per frame: on a chip, residual paths are delay-matched (the lava segment "
          "instead holds each frame for depth + 1 steps, which would multiply these figures).")
    if mapping.notes:
        doc.p("Notes: " + "; ".join(mapping.notes))
    doc.p(f"Run time: {s['seconds']:.1f} s.")
    return doc


def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _num(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3f}"


# --------------------------------------------------------------------------- the job
def run_loihi_job(model: str, backend: str = "emulator", frames: int = 1, weights: Optional[str] = None,
                  out: str | os.PathLike = "snnsim-loihi", quiet: bool = True, seed: int = 0,
                  progress: Optional[Callable[[int, str], Any]] = None,
                  hardware: Sequence[str] = HARDWARE) -> Dict[str, Any]:
    """Run the loihi job and write its files into ``out`` (all or nothing). Returns the summary.

    Torch runs on half the CPU cores (at least one; ``SNNSIM_THREADS`` overrides): on a shared
    machine, OpenMP threads that wait for each other at every operator stall the long runs."""
    before = torch.get_num_threads()
    want = int(os.environ.get("SNNSIM_THREADS", "0")) or max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(min(before, want))
    try:
        return _run(model, backend, frames, weights, out, seed, progress, tuple(hardware))
    finally:
        torch.set_num_threads(before)


def _run(model: str, backend: str, frames: int, weights: Optional[str], out, seed: int,
         progress: Optional[Callable[[int, str], Any]], hardware: Tuple[str, ...] = HARDWARE) -> Dict[str, Any]:
    from snnsim.io import open_output

    t_start = time.perf_counter()
    check_request(model, backend, frames)
    hardware = check_hardware(hardware)
    from snnsim.errors import check_weights

    weights = check_weights(weights)
    output = open_output(out, "snnsim loihi", inputs=[weights])   # checked before the long work
    with output:   # locked and staged; published only when every file is written
        summary = _run_locked(model, backend, frames, weights, seed, progress, t_start, output.staging, hardware)
    summary["output"] = str(output.path)
    return summary


FANOUT = "fixed-point emulation (fanout)"


def _core(model: str, net, source: str, frames: int, fid, energy: dict, hardware=HARDWARE) -> Dict[str, Any]:
    """The RunSummary core of a loihi run: the fixed-point emulation's counts (fanout
    mapping) per tracking frame and per template pass, priced by the 'loihi' estimator."""
    from snnsim.energy.frames import table_totals
    from snnsim.models.registry import weights_info
    from snnsim.pipeline import price_each
    from snnsim.pipeline.summary import core_summary

    totals = fid.fixed_counts.mean_totals()
    tpl = fid.template_counts
    template = None
    energy_template = None
    if tpl is not None:
        template = table_totals(tpl.layers, tpl.neurons)
        energy_template = {hw.name: {est: e.total_j} for hw, est, e in price_each(tpl, hardware, estimators=("loihi",))}
    thop = fid.float_counts.mean()
    thop_macs = float(thop.layers.loc[thop.layers["thop"].astype(bool), "dense_macs"].sum()) \
        if "thop" in thop.layers else 0.0
    if tpl is not None and "thop" in tpl.layers:
        thop_macs += float(tpl.layers.loc[tpl.layers["thop"].astype(bool), "dense_macs"].sum())
    weights = weights_info(net)
    notes = []
    if not weights["trained"]:
        notes.append(f"Weights are untrained ({weights['source']}): firing rates and spike-driven energy are not "
                     "those of a trained model.")
    return core_summary(
        "loihi", model=model, kind=net.kind, weights=weights, input={"source": source, "frames": int(frames)},
        timesteps=int(getattr(net, "timesteps", 1)), frames=int(frames), totals=totals, template=template,
        template_passes=1 if tpl is not None else 0, thop_macs=thop_macs,
        energy={hw: {"loihi": by[FANOUT]["joules_per_frame"]} for hw, by in energy.items() if FANOUT in by},
        energy_template=energy_template,
        energy_precision={hw: {"loihi": by[FANOUT]["precision"]} for hw, by in energy.items() if FANOUT in by},
        uncounted=fid.uncounted, complete=not fid.uncounted, notes=notes)


def _run_locked(model, backend, frames, weights, seed, progress, t_start, tmp, hardware=HARDWARE) -> Dict[str, Any]:
    from snnsim.energy import load_hardware
    from snnsim.models import build_model

    from .fidelity import loihi_energy, run_fidelity
    from .resources import resource_report

    say = progress or (lambda i, what: None)
    net = build_model(model, weights=weights)
    from snnsim.models.registry import weights_info

    source = "random" if weights_info(net)["source"] == "random" else "golden"
    say(1, "mapping (trace, fold BatchNorm, quantise)")
    mapping = map_model(net, source, name=model)
    fixed = fixed_point_model(net, mapping)
    say(2, "resources")
    resources = resource_report(mapping, "loihi2")
    seg, seg_reason = _find_segment(mapping, backend)
    say(3, f"fidelity over {frames} frame(s)")
    fid = run_fidelity(net, fixed, mapping, int(frames), seed=seed, keep_levels=list(seg.sites) if seg else (),
                       entry=seg.entry if seg else None, residuals=("relay", "one-copy"))
    # counts summed over the frames as they streamed (bounded memory); priced on the mean frame
    energy_table, energy = loihi_energy({"fixed-point emulation (fanout)": fid.fixed_counts,
                                         "fixed-point emulation (relay)": fid.residual_counts["relay"],
                                         "fixed-point emulation (one copy per layer)":
                                             fid.residual_counts["one-copy"],
                                         "float model": fid.float_counts}, hardware)
    say(4, "neurocore segment" + (" (emulator and lava)" if backend == "lava" else ""))
    segment = (_segment_check(seg, mapping, fid, backend) if seg is not None
               else {"available": False, "reason": seg_reason})
    seconds = time.perf_counter() - t_start
    summary = _core(model, net, source, frames, fid, energy, hardware)
    summary.update({
        "backend": backend,
        "mapping": mapping.summary(),
        "cores": resources["cores"], "chips": resources["chips"], "residual_mapping": resources["recommended"],
        "fidelity": fid.summary, "segment": segment,
        # every mapping variant's J per frame ("energy" above is the fanout emulation's)
        "energy_variants": {hw: {k: v["joules_per_frame"] for k, v in by.items()} for hw, by in energy.items()},
        # which files the priced profiles' numbers came from (file, sha256 of its bytes)
        "hardware_profiles": [load_hardware(h).provenance() for h in hardware],
        "seconds": seconds,
    })
    fidelity_json = {
        "model": model, "weights": mapping.weights, "backend": backend,
        "emulator": "model-level fixed point (snnsim.loihi.mapper.fixed_point_model): neurocore layers and neurons "
                    "in Loihi integer arithmetic, host operations in float32",
        **fid.summary, "segment": segment,
        "energy": {hw: {k: {"joules_per_frame": v["joules_per_frame"], "mapping_verdict": v["mapping_verdict"]}
                        for k, v in by.items()} for hw, by in energy.items()},
        "modules": fid.sites, "per_frame": fid.frames,
    }
    res_json = dict(resources)
    res_json["populations"] = resources["populations"]
    res_json["layers"] = resources["layers"]
    res_json["model"] = model
    report = _report(summary, mapping, resources, fid, energy)   # analysis' Doc: Markdown and HTML
    mapping.table().to_csv(tmp / "mapping.csv", index=False)
    (tmp / "resources.json").write_text(json.dumps(_jsonable(res_json), indent=2) + "\n")
    _write_json_streaming(tmp / "fidelity.json", fidelity_json, "per_frame")   # rows read back one at a time
    from snnsim.pipeline.summary import weights_label

    # each row says its profile and variant, and the model and weights behind the spikes
    energy_table.assign(model=model, weights=weights_label(summary)).to_csv(tmp / "loihi_energy.csv", index=False)
    (tmp / "report.md").write_text(report.render_md())
    (tmp / "report.html").write_text(report.render_html(), encoding="utf-8")
    (tmp / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return summary
