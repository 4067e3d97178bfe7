"""Evaluate the trained twin pair spiketrack-tiny (SNN) / spiketrack-tiny-ann on held-out sets:
accuracy, per-frame energy under every estimator of every shipped profile, firing rates and
break-even rates. Writes docs/training/heldout.json and docs/training/heldout.md (the tables
of docs/training_tiny.md, with the training curves from docs/training/MODEL.json).

    python examples/evaluate_tiny_trackers.py                       # the documented run
    python examples/evaluate_tiny_trackers.py --sequences 1 --frames 30 --energy-frames 3 --json /tmp/h.json

1. Accuracy: both networks and the static-box baseline track every sequence of every set of
   snnsim.tracking.heldout_eval.HELDOUT_SETS (three held-out styles written apart from the
   training generator, the first generator's held-out seeds, and unseen seeds of the training
   distribution for reference), closed loop, with the SpikeTrack runtime; success AUC,
   precision (20 px) and normalised precision, averaged over sequences.
2. Energy: on the first sequence of each held-out style (written in GOT-10k layout to a
   temporary folder), both networks are counted on the same crops (`profile_tracker` with
   `sequence=`: the crops a tracker on target takes) and priced by every estimator of every
   shipped profile: joules per tracking frame (template cached).
3. Firing rates and break-even (snnsim.energy.break_even): over the three styles' frames
   pooled, the SNN's mean firing rate and the rate at which it would cost as much as its twin,
   whole model per profile x estimator, and per layer under the 45 nm FP32 estimators.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from snnsim.analysis.report import md_table
from snnsim.analysis.tables import module_rates
from snnsim.io.output import OutputError, check_parent_writable
from snnsim.energy import list_hardware, load_hardware
from snnsim.energy.break_even import ACTIVITY_MODEL, break_even_table, layer_break_even, measured_rate
from snnsim.models import build_model
from snnsim.models.registry import weights_info
from snnsim.pipeline import price_each
from snnsim.tracking.frame_counts import profile_tracker
from snnsim.tracking.heldout_eval import HELDOUT_SETS, evaluate_sets
from snnsim.tracking.heldout_styles import HELDOUT_STYLES, write_heldout_sequence

ROOT = Path(__file__).resolve().parents[1]
PAIR = ("spiketrack-tiny", "spiketrack-tiny-ann")
LAYER_HARDWARE = "horowitz-45nm-fp32"


class Pooled:
    """Several TrackerProfiles' frames as one frame-aggregated profile (what estimate prices:
    the frame-weighted mean of the per-frame energies)."""

    def __init__(self, profiles: list):
        self.profiles = profiles
        self.model = profiles[0].model
        self.uncounted = [u for p in profiles for u in p.uncounted]
        self.unseen_neurons = list(dict.fromkeys(u for p in profiles for u in p.unseen_neurons))

    def frame_groups(self):
        return [g for p in self.profiles for g in p.frame_groups()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=None, help="sequences per set (default: each set's own)")
    ap.add_argument("--frames", type=int, default=None, help="frames per sequence (default: each set's own)")
    ap.add_argument("--energy-frames", type=int, default=30, help="frames counted per style for the energy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="", help="record to write, with its .md beside it (default: "
                                                 "docs/training/heldout.json, which this script makes)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --json / .md given by hand")
    args = ap.parse_args(argv)
    out = Path(args.json or ROOT / "docs" / "training" / "heldout.json")
    if out.suffix.lower() == ".md":
        ap.error(f"--json {out}: the Markdown tables go beside it as {out.name}; give a .json path")
    if args.json and not args.overwrite:
        for path in (out, out.with_suffix(".md")):
            if path.exists():
                ap.error(f"{path} exists; choose a new path or pass --overwrite to replace it")
    for flag in ("sequences", "frames", "energy_frames", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    try:   # before the evaluation's minutes, not after them
        check_parent_writable(out, f"--json {out}")
    except OutputError as exc:
        ap.error(str(exc))
    torch.set_num_threads(args.threads)
    t0 = time.time()
    models = {name: build_model(name).eval() for name in PAIR}
    weights = {name: m.weights_source for name, m in models.items()}
    checkpoints = {name: weights_info(m)["sha256"] for name, m in models.items() if weights_info(m)["sha256"]}
    for name, w in weights.items():
        if not w.startswith("trained"):
            print(f"warning: {name} has weights '{w}', not the shipped trained checkpoint", file=sys.stderr)

    rows = evaluate_sets(models, list(HELDOUT_SETS), args.sequences, args.frames,
                         progress=lambda s: print(f"  tracked {s} ({time.time() - t0:.0f} s)", flush=True))
    accuracy = pd.DataFrame(rows)

    hardware = [h for h in list_hardware(include_measured=False)]
    energy_rows, per_style = [], {name: [] for name in PAIR}
    with tempfile.TemporaryDirectory() as tmp:
        for style in HELDOUT_STYLES:
            folder = write_heldout_sequence(Path(tmp) / style, style, seed=0, n_frames=args.energy_frames + 1)
            for name, model in models.items():
                tp = profile_tracker(model, frames=args.energy_frames, sequence=str(folder))
                per_style[name].append(tp)
                rate = measured_rate(tp)[0] if model.kind != "ann" else None
                for hw, est, e in price_each(tp, hardware):
                    energy_rows.append({"style": style, "model": name, "hardware": hw.name, "estimator": est,
                                       "joules_per_frame": e.total_j, "applicable": e.applicable,
                                       "complete": e.complete, "firing_rate": rate})
            print(f"  counted {style} ({time.time() - t0:.0f} s)", flush=True)
    snn, ann = Pooled(per_style[PAIR[0]]), Pooled(per_style[PAIR[1]])
    whole = break_even_table(snn, ann, hardware)
    layers = {est: layer_break_even(snn, ann, LAYER_HARDWARE, est) for est in load_hardware(LAYER_HARDWARE).estimators}
    neuron_rates = module_rates(pd.concat([tp.neurons() for tp in per_style[PAIR[0]]])).query("branch == 'frame'") \
        .set_index("module")

    record = {
        "command": "python examples/evaluate_tiny_trackers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "weights": weights, "checkpoint_sha256": checkpoints, "torch": torch.__version__, "seconds": round(time.time() - t0, 1),
        "sets": {k: {"description": v.description, "held_out": v.held_out} for k, v in HELDOUT_SETS.items()},
        "accuracy": accuracy.to_dict(orient="records"),
        "energy_frames_per_style": args.energy_frames,
        "energy": energy_rows,
        "firing_rate": {"mean": measured_rate(snn)[0], "busiest_module": measured_rate(snn)[1],
                        "per_module": neuron_rates["firing_rate"].to_dict()},
        "break_even": whole.to_dict(orient="records"),
        "break_even_layers": {est: t.to_dict(orient="records") for est, t in layers.items()},
        "break_even_layers_hardware": LAYER_HARDWARE,
        "activity_model": ACTIVITY_MODEL,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, json.dumps(record, indent=1, default=float) + "\n"),
                       (out.with_suffix(".md"), markdown(record, out.parent))):
        staged = path.with_name(f".{path.name}.partial")   # whole or not at all: written, then renamed
        staged.write_text(text)
        os.replace(staged, path)
    means = accuracy[accuracy["sequence"] == "(mean)"].pivot(index="set", columns="tracker", values="auc")
    print(means.round(3).to_string())
    print(whole[["hardware", "estimator", "verdict", "measured_rate", "break_even_rate"]].to_string(index=False))
    print(f"wrote {out} and {out.with_suffix('.md')} ({time.time() - t0:.0f} s)")
    return 0


# ----------------------------------------------------------------------------- markdown
def _table(header: list[str], rows: list[list]) -> str:
    return md_table(rows, header) + "\n"


def _j(v) -> str:
    from snnsim.analysis.tables import fmt_energy
    return "n/a" if v is None or pd.isna(v) else fmt_energy(v)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def markdown(record: dict, training_dir: Path) -> str:
    """The tables of docs/training_tiny.md from one evaluation record and the training runs'
    JSON records beside it."""
    out = [f"<!-- generated by `{record['command']}`; weights: "
           + "; ".join(f"{k}: {v} (sha256 {record.get('checkpoint_sha256', {}).get(k, '?')[:16]}...)"
                       for k, v in record["weights"].items()) + " -->\n"]
    curves = {}
    for name in PAIR:
        path = training_dir / f"{name}.json"
        if path.is_file():
            curves[name] = json.loads(path.read_text())
    if curves:
        out.append("### Training curves\n")
        out.append("Mean losses over the steps since the previous row; validation AUC (diverse scenes and first-"
                   "generator scenes at seeds never trained on) where measured.\n")
        for name, rec in curves.items():
            out.append(f"**{name}** ({rec['steps_done']} steps, {rec['train_seconds'] / 60:.0f} min, "
                       f"{rec['hardware']}; checkpoint {rec['checkpoint_bytes']:,} bytes, sha256 "
                       f"{rec['checkpoint_sha256'][:16]}...)\n")
            rows = [[r["step"], f"{r['minutes']:.1f}", f"{r['loss']:.3f}", f"{r['focal']:.3f}", f"{r['giou']:.3f}",
                     f"{r['l1']:.4f}", f"{r['val_auc_diverse']:.3f}" if "val_auc_diverse" in r else "",
                     f"{r['val_auc_first_generator']:.3f}" if "val_auc_first_generator" in r else ""]
                    for r in rec["curve"]]
            out.append(_table(["step", "minutes", "loss", "focal", "GIoU", "L1", "val AUC diverse",
                               "val AUC first generator"], rows))
    acc = pd.DataFrame(record["accuracy"])
    mean = acc[acc["sequence"] == "(mean)"]
    out.append("### Accuracy on the held-out sets\n")
    out.append("Success AUC / precision (20 px), averaged over sequences; the static box keeps the first box.\n")
    trackers = list(dict.fromkeys(mean["tracker"]))
    rows = []
    for set_name, g in mean.groupby("set", sort=False):
        g = g.set_index("tracker")
        held = "held out" if record["sets"][set_name]["held_out"] else "training distribution"
        n = int(acc[(acc["set"] == set_name) & (acc["sequence"] != "(mean)")]["sequence"].nunique())
        rows.append([set_name, held, n] + [f"{g.loc[t, 'auc']:.3f} / {g.loc[t, 'precision']:.3f}" for t in trackers])
    out.append(_table(["set", "kind", "sequences"] + trackers, rows))
    out.append("### Energy per tracking frame at the accuracy above\n")
    e = pd.DataFrame(record["energy"])
    e = e.groupby(["model", "hardware", "estimator"], sort=False).agg(
        joules=("joules_per_frame", lambda v: None if v.isna().any() else float(v.mean())),
        rate=("firing_rate", "mean")).reset_index()
    idx = e.set_index(["model", "hardware", "estimator"])
    rows = []
    for (hw, est), _ in e.groupby(["hardware", "estimator"], sort=False):
        sj, aj = idx.loc[(PAIR[0], hw, est), "joules"], idx.loc[(PAIR[1], hw, est), "joules"]
        ratio = f"{sj / aj:.3g}" if pd.notna(sj) and pd.notna(aj) and aj else "n/a"
        rows.append([hw, est, _j(sj), _j(aj), ratio])
    out.append(f"Mean over the first sequence of each held-out style ({record['energy_frames_per_style']} frames "
               f"each, the crops of a tracker on target); {PAIR[0]} fires at a mean rate of "
               f"{_pct(record['firing_rate']['mean'])} (busiest neuron module {_pct(record['firing_rate']['busiest_module'])}).\n")
    out.append(_table(["hardware profile", "estimator", PAIR[0], PAIR[1], "SNN / ANN"], rows))
    out.append("### Break-even firing rate\n")
    out.append(f"Activity model: {record['activity_model']}.\n")
    rows = [[r["hardware"], r["estimator"], _pct(r["measured_rate"]),
             _pct(r["break_even_rate"]) if r["verdict"] == "break-even" else r["verdict"],
             "-" if r["factor"] is None else f"{r['factor']:.3g}x"] for r in record["break_even"]]
    out.append(_table(["hardware profile", "estimator", "measured rate", "break-even rate", "headroom"], rows))
    for est, layers in record["break_even_layers"].items():
        t = pd.DataFrame(layers)
        if not len(t):
            continue
        counts = ", ".join(f"{n} {v}" for v, n in t["verdict"].value_counts().items())
        out.append(f"Per layer under {record['break_even_layers_hardware']} / {est}: {len(t)} layers that take "
                   f"spikes: {counts}.\n")
        cross = t[t["verdict"] == "break-even"].copy()
        if len(cross):
            cross["headroom"] = cross["break_even_rate"] / cross["input_rate"]
            rows = [[r["module"], _pct(r["input_rate"]), _pct(r["break_even_rate"]), f"{r['headroom']:.3g}x"]
                    for _, r in cross.sort_values("headroom").head(8).iterrows()]
            out.append(_table(["layer (least headroom first)", "input rate", "break-even rate", "headroom"], rows))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
