"""`snnsim` command line. Thin: parse, check every input before any work starts, call the
library, write files through snnsim.analysis (all-or-nothing), map bad input to one line on
stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from snnsim.cli_options import OneLineParser, add_dataset, add_frames, add_hardware, add_outputs, add_weights
from snnsim.errors import check_hardware, check_weights, one_line, user_errors

# The demo's headline: a trained spiking tracker and its trained ANN twin (same architecture,
# same data, steps and budget; only the neuron differs), counted on the same frames of a
# built-in held-out sequence and priced; (registry name, weights: default = shipped checkpoint).
DEMO_PAIR: tuple[tuple[str, str], ...] = (
    ("spiketrack-tiny", "default"),
    ("spiketrack-tiny-ann", "default"),
)
# The frames they are counted on: a held-out style neither was trained on (made in memory).
DEMO_SEQUENCE = ("checker-blocks", 0)
DEMO_PAIR_FRAMES = 8
# The published trackers, with untrained (golden) weights: counted, not priced -- firing rates
# of untrained weights are not a trained network's, so they make no energy claim.
DEMO_UNTRAINED: tuple[tuple[str, str], ...] = (
    ("spiketrack-s256-t1", "golden"),
    ("asymtrack-t", "golden"),
    ("transt", "golden"),
)
DEMO_MODELS: tuple[tuple[str, str], ...] = DEMO_PAIR + DEMO_UNTRAINED
# Hardware the demo prices on (pricing is cheap; the first three are the headline).
DEMO_HARDWARE: tuple[str, ...] = (
    "horowitz-45nm-fp32", "loihi2", "jetson-agx-orin",
    "horowitz-45nm-int8", "loihi", "truenorth", "spinnaker2", "jetson-orin-nano", "gpu-a100",
)
DEMO_FRAMES = 1
# Random weights and random inputs are drawn after torch.manual_seed(SEED): same command, same counts.
SEED = 0

EXAMPLES = {
    "models": "example:\n  snnsim models\n  snnsim models --json > models.json",
    "hardware": "examples:\n  snnsim hardware                      # the shipped profiles\n"
                "  snnsim hardware loihi2               # every constant: value, unit, status, source\n"
                "  snnsim hardware my_chip.yaml --json  # check and show your own profile",
    "profile": "examples:\n  snnsim profile spiketrack-s256-t1 --weights golden --hardware horowitz-45nm-fp32,loihi2 "
               "--out out/st\n  snnsim profile transt --frames 3 --json --quiet > summary.json\n"
               "  snnsim profile spiketrack-s256-t1 --weights ckpt/SpikeTrack_S256.pth --capture "
               "encoder.ConvBlock1_1.0.spike2\n"
               "  snnsim profile spiketrack-tiny --sequence GOT-10k/val/GOT-10k_Val_000001 --frames 20",
    "compare": "example:\n  snnsim compare spiketrack-s256-t1 asymtrack-t transt --weights golden "
               "--hardware horowitz-45nm-fp32,loihi2,jetson-agx-orin --out out/cmp",
    "demo": "example:\n  snnsim demo                 # writes ./snnsim-demo/index.html\n  snnsim demo --out /tmp/demo",
}


class CliError(ValueError):
    """A bad input: printed as one line on stderr, exit code 2."""


def _progress(total: int, desc: str, quiet: bool, leave: bool = False):
    """A tqdm bar on a TTY, nothing otherwise (or with --quiet)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=quiet or not sys.stderr.isatty(), leave=leave,
                file=sys.stderr, dynamic_ncols=True)


def _say(args, *lines: str) -> None:
    if not getattr(args, "quiet", False) and not getattr(args, "json", False):
        for line in lines:
            print(line)


# ------------------------------------------------------------------ checking inputs
def _check_models(names: list[str]) -> list[str]:
    from snnsim.models.registry import get_spec

    seen = set()
    for name in names:
        get_spec(name)   # UnknownModelError lists the known models
        if name in seen:
            raise CliError(f"model '{name}' is given twice; name each model once")
        seen.add(name)
    return names


def _check_sequence(value: str | None) -> str | None:
    """Open the sequence folder now (frames are not decoded), so a wrong path fails before the
    long work."""
    if value is not None:
        from snnsim.tracking.sequences import open_sequence

        open_sequence(value)
    return value


def _weights_label(summary: dict) -> str:
    from snnsim.pipeline.summary import weights_label

    return weights_label(summary)


def _open_out(value: str, command: str, *inputs):
    """The run's output folder: checked now, before any work (snnsim.io.OutputError is one
    line); locked and staged when the command enters it, published when it leaves it."""
    from snnsim.io import open_output

    return open_output(value, f"snnsim {command}", inputs=inputs)


# ------------------------------------------------------------------ running models
def _run_model(name: str, weights: str, frames: int, hardware: list[str], capture: str | None, quiet: bool,
               sequence: str | None = None, command: str = "profile"):
    """Build, profile, price and (for spiking models) capture one module's spike maps in the
    same counted passes, on built-in inputs or on the sequence folder `sequence`. Returns the
    run dict that snnsim.analysis.outputs writes."""
    from snnsim.models import build_model
    from snnsim.pipeline import price_tracker
    from snnsim.pipeline.capture import SpikeCapture
    from snnsim.tracking.frame_counts import profile_tracker

    import torch

    torch.manual_seed(SEED)
    model = build_model(name, weights=None if weights == "default" else weights)
    spike_capture = None
    if capture != "none" and model.kind == "spiking":   # checked before the long work
        spike_capture = SpikeCapture(model, None if capture in (None, "auto") else capture)
    elif capture not in (None, "auto", "none"):
        from snnsim.pipeline.capture import check_module

        check_module(model, capture)                    # an ANN: says there is nothing to map
    source = "random" if weights == "random" else "golden"
    torch.manual_seed(SEED)
    with _progress(frames, f"{name}: frames", quiet) as bar:
        tp = profile_tracker(model, source=source, frames=frames, progress=bar.update, sequence=sequence,
                             capture=spike_capture)
    if tp.weights["source"] == "random" or (source == "random" and sequence is None):
        tp.notes.append(f"Random weights and inputs are drawn after torch.manual_seed({SEED}), so a rerun gives "
                        "the same counts.")
    summary, layers = price_tracker(tp, hardware, command)
    cap = tp.capture
    if cap is not None:
        summary["capture"] = {"module": cap.module, "files": ["capture.npz", "capture_channels.csv",
                                                              "capture_positions.csv", "capture.json"]}
    return {"tp": tp, "summary": summary, "layers": layers, "capture": cap}


# ------------------------------------------------------------------ commands
def cmd_models(args) -> int:
    from snnsim.models import build_model, list_models
    from snnsim.tracking.frame_counts import count_params

    rows = []
    specs = list_models()
    with _progress(len(specs), "building models", args.json) as bar:
        for spec in specs:
            model = build_model(spec.name)
            rows.append({"name": spec.name, "kind": spec.kind, "family": spec.family, "params": count_params(model),
                         "timesteps": model.timesteps, "inputs": model.input_description(), "summary": spec.summary})
            bar.update()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'model':22s} {'kind':8s} {'params':>12s}  inputs")
        for r in rows:
            inputs = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in r["inputs"].items())
            print(f"{r['name']:22s} {r['kind']:8s} {r['params']:>12,d}  {inputs}")
    return 0


def cmd_hardware(args) -> int:
    from snnsim.energy import list_hardware, load_hardware
    from snnsim.energy.schema import STATUSES

    if args.name is None:
        rows = []
        for name in list_hardware():
            hw = load_hardware(name)
            rows.append({"name": name, "kind": hw.kind, "estimators": list(hw.estimators),
                         "description": " ".join(hw.description.split())})
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'profile':30s} {'kind':13s} {'estimators':22s} description")
        for r in rows:
            desc = r["description"] if len(r["description"]) <= 70 else r["description"][:67] + "..."
            print(f"{r['name']:30s} {r['kind']:13s} {', '.join(r['estimators']):22s} {desc}")
        print("\nsnnsim hardware NAME shows a profile's constants with their units, status and sources.")
        return 0
    hw = load_hardware(args.name)
    table = hw.constants_table()
    if args.json:
        data = hw.to_dict()
        data["origin"] = hw.origin
        data["provenance"] = hw.provenance()
        data["constants_table"] = json.loads(table.to_json(orient="records"))
        print(json.dumps(data, indent=2))
        return 0
    print(f"{hw.name} ({hw.kind}) -- {' '.join(hw.description.split())}")
    print(f"file: {hw.origin}    estimators: {', '.join(hw.estimators)}")
    if hw.binary_spikes_only is not None:
        print(f"binary spikes only: {'yes (a graded spike is sent as k binary spikes)' if hw.binary_spikes_only else 'no (one spike carries its level)'}")
    print()
    width = max([len(n) for n in table["name"]] + [8])
    print(f"{'constant':{width}s}  {'value':>12s} {'unit':8s} {'status':9s} source")
    for _, r in table.iterrows():
        print(f"{r['name']:{width}s}  {r['value']:>12.6g} {r['unit']:8s} {r['status']:9s} "
              f"{' '.join(str(r['source']).split())}")
        if r["note"]:
            print(f"{'':{width}s}  {'':>12s} {'':8s} {'':9s} note: {' '.join(str(r['note']).split())}")
    counts = table["status"].value_counts()
    print("\nstatus: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    for note in hw.notes:
        print(f"note: {' '.join(note.split())}")
    return 0


def cmd_profile(args) -> int:
    from snnsim.analysis.outputs import write_profile

    if args.dataset is not None:
        if args.sequence is not None:
            raise CliError("give --sequence DIR (one sequence) or --dataset ROOT (many), not both")
        from snnsim.datasets.cli import cmd_dataset

        return cmd_dataset(args, "profile")
    if len(args.models) > 1:
        raise CliError(f"profile takes one MODEL (got {len(args.models)}); add --dataset ROOT to run several on a "
                       f"dataset, or use snnsim compare {' '.join(args.models)}")
    for option in ("sequences", "max_frames", "workers", "ray_address"):
        if getattr(args, option) is not None:
            raise CliError(f"--{option.replace('_', '-')} applies to a dataset run; add --dataset ROOT")
    args.model = args.models[0]
    _check_models([args.model])
    weights = check_weights(args.weights)
    hardware = check_hardware(args.hardware)
    sequence = _check_sequence(args.sequence)
    output = _open_out(args.out, "profile", weights, sequence, *hardware)
    with output:
        run = _run_model(args.model, weights, args.frames, hardware, args.capture, args.quiet, sequence, "profile")
        summary = write_profile(run["tp"], output, (run["summary"], run["layers"]), capture=run["capture"])
    out = output.path
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    t = summary["totals"]
    _say(args, f"{summary['model']}: {t['dense_macs'] / 1e9:.3f} GMAC dense per frame, thop "
               f"{summary['thop_macs'] / 1e9:.3f} G; mac_ops {t['mac_ops'] / 1e9:.3f} G, syn_ops "
               f"{t['syn_ops'] / 1e9:.3f} G; weights: {_weights_label(summary)}")
    from snnsim.analysis.tables import energy_rows, fmt_energy

    for r in energy_rows(summary).itertuples():
        _say(args, f"  {r.hardware:22s} {r.estimator:14s} "
                   f"{fmt_energy(r.joules_per_frame) + ' per frame' if r.applicable else 'not applicable'}")
    _say(args, f"wrote {out}/ (report: {out / 'report.html'})")
    return 0


def _cmd_track(args) -> int:
    """`snnsim track`: one sequence (snnsim.tracking.cli_track), or a dataset with --dataset."""
    if getattr(args, "dataset", None) is not None:
        from snnsim.datasets.cli import cmd_track_dataset

        return cmd_track_dataset(args)
    from snnsim.tracking.cli_track import cmd_track

    return cmd_track(args)


def _headline_lines(summaries: list[dict]) -> list[str]:
    from snnsim.analysis.report import comparison_tables, comparison_headline_rows

    t = comparison_tables(summaries)
    header, rows = comparison_headline_rows(t["comparison"], t["ratios"])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)  # noqa: E731
                              for i, (v, w) in enumerate(zip(r, widths)))
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _run_models(models: list[tuple[str, str]], frames: int, hardware: list[str], quiet: bool,
                sequence: str | None = None, command: str = "compare") -> list[dict]:
    runs = []
    with _progress(len(models), "models", quiet, leave=True) as bar:
        for name, weights in models:
            bar.set_description(f"models ({name})")
            runs.append(_run_model(name, weights, frames, hardware, "auto", quiet, sequence, command))
            bar.update()
    return runs


def cmd_compare(args) -> int:
    from snnsim.analysis.outputs import write_suite

    models = _check_models(args.models)
    if len(models) < 2:
        raise CliError("compare needs at least two models, e.g. snnsim compare spiketrack-s256-t1 transt")
    weights = check_weights(args.weights)
    if weights not in ("default", "random", "golden"):
        raise CliError("--weights takes default, random or golden here (one checkpoint cannot fit several "
                       "models); profile a checkpoint with snnsim profile MODEL --weights PATH")
    hardware = check_hardware(args.hardware)
    if not hardware:
        raise CliError("--hardware is empty: compare prices every model on the profiles named; name at least one "
                       "(see snnsim hardware)")
    sequence = _check_sequence(args.sequence)
    output = _open_out(args.out, "compare", sequence, *hardware)
    with output:
        runs = _run_models([(m, weights) for m in models], args.frames, hardware, args.quiet, sequence)
        summaries = write_suite(output, runs)
    out = output.path
    if args.json:
        print((out / "comparison.json").read_text())
        return 0
    _say(args, *_headline_lines(summaries), "", f"wrote {out}/comparison.csv and {out}/comparison.html "
                                                f"(+ one report per model in {out}/<model>/)")
    return 0


def cmd_measure(args) -> int:
    import contextlib

    from snnsim.measure import measure, write_measured_profile

    # The user's inputs first (model name, then weights), the machine (GPU, NVML) last: a typo
    # must not be answered with "no GPU".
    _check_models([args.model])
    weights = check_weights(args.weights)
    if weights not in ("default", "random", "golden"):
        from snnsim.models import build_model

        build_model(args.model, weights=weights)   # reads and checks the checkpoint (on the CPU) now
    if args.frames < 1:
        raise CliError(f"--frames must be at least 1 (got {args.frames})")
    if args.base is not None:
        from snnsim.energy import load_hardware

        load_hardware(args.base)   # HardwareProfileError names the known profiles
    output = None
    if args.out is not None:   # checked now; locked while measuring; published with the profile
        from snnsim.io import open_output_file

        output = open_output_file(args.out, "snnsim measure",
                                  inputs=[] if weights in ("default", "random", "golden") else [weights])
    with output if output is not None else contextlib.nullcontext():
        result = measure(args.model, args.device, args.frames, None if weights == "default" else weights)
        gpu = "-".join(result["gpu"].lower().split())
        path = write_measured_profile(result, output if output is not None else f"measured-{gpu}-{args.model}.yaml",
                                      args.base)
    print(f"{args.model} on {result['gpu']}: {result['joules_per_frame'] * 1e3:.3f} mJ per frame "
          f"({result['watts']:.1f} W, idle {result['idle_watts']:.1f} W); wrote {path}")
    return 0


def cmd_demo(args) -> int:
    import tempfile

    from snnsim.analysis.outputs import write_suite
    from snnsim.tracking.heldout_styles import write_heldout_sequence

    output = _open_out(args.out, "demo")
    hardware = check_hardware(",".join(DEMO_HARDWARE))
    started = time.perf_counter()
    style, seed = DEMO_SEQUENCE
    frames_said = (f"{DEMO_PAIR_FRAMES} frames of the built-in held-out sequence '{style}' (seed {seed}, "
                   f"snnsim.tracking.heldout_styles, made here; neither network was trained on this style)")
    pair = " and ".join(m for m, _ in DEMO_PAIR)
    _say(args, f"snnsim demo: {pair} (trained twins) on {frames_said}, priced on {', '.join(hardware)}; "
               f"{', '.join(m for m, _ in DEMO_UNTRAINED)} (untrained weights) counted on built-in golden inputs")
    with output, tempfile.TemporaryDirectory(prefix="snnsim-demo-") as tmp:
        sequence = write_heldout_sequence(pathlib.Path(tmp) / f"{style}-{seed}", style, seed=seed,
                                          n_frames=DEMO_PAIR_FRAMES + 1)
        runs = _run_models(list(DEMO_PAIR), DEMO_PAIR_FRAMES, hardware, args.quiet, str(sequence), "demo")
        for r in runs:   # the folder is temporary: say what it was
            r["summary"]["input"]["sequence"] = f"'{style}' seed {seed} (built-in, held out)"
        break_even = _demo_break_even(runs[0], runs[1], hardware, frames_said)
        untrained_pair = [r["summary"]["model"] for r in runs if not r["summary"]["weights"]["trained"]]
        intro = (f"The snnsim demo: the spiking tracker {DEMO_PAIR[0][0]} against its ANN twin {DEMO_PAIR[1][0]} (the "
                 f"same network with real-valued activations, trained by the same script on the same data), both "
                 f"counted on {frames_said} and priced on {len(hardware)} hardware profiles. Energy is per tracking "
                 "frame with the template cached, on the crops a tracker on target takes. Both twins were trained on "
                 "synthetic data only and track unseen styles poorly (docs/training_tiny.md): this compares the cost of "
                 "the two networks, not two trackers that succeed here. The published trackers follow with untrained "
                 "weights, counts only.")
        if break_even is None:
            intro += (f" No break-even rate: {DEMO_PAIR[0][0]} emitted no spike on these frames, so there is no "
                      "firing rate to scale.")
        if untrained_pair:   # a checkout without the shipped checkpoints: never call them trained
            intro += (f" Warning: {', '.join(untrained_pair)} ran without its trained checkpoint (weights: untrained), "
                      "so its firing rates and this comparison are not a trained network's.")
        runs += _run_models(list(DEMO_UNTRAINED), DEMO_FRAMES, [], args.quiet, None, "demo")
        summaries = write_suite(output, runs, index={"title": "snnsim demo", "intro": intro,
                                                     "break_even": break_even})
    out = output.path
    if args.json:
        print(json.dumps({"models": summaries,
                          "break_even": None if break_even is None else
                          json.loads(break_even["whole"].to_json(orient="records"))}, indent=2, default=str))
        return 0
    if break_even is None:
        be_lines = ["Break-even firing rate: none -- the spiking model emitted no spike on these frames."]
    else:
        whole = break_even["whole"]
        be_lines = ["Break-even mean firing rate (SNN energy = ANN twin energy); measured rate "
                    f"{100 * whole['measured_rate'].iloc[0]:.3g} %:"]
        be_lines += [f"  {r['hardware']} / {r['estimator']}: " + (f"{100 * r['break_even_rate']:.3g} %"
                                                                 if r["verdict"] == "break-even" else r["verdict"])
                     for _, r in whole.iterrows()]
    _say(args, "", "Energy per tracking frame (template cached), trained SNN and its trained ANN twin:", "",
         *_headline_lines(summaries[:2]), "", *be_lines, "",
         "Weights: " + "; ".join(f"{s['model']}: {_weights_label(s)}" for s in summaries),
         "(the golden-weight models are untrained: counted only, not priced; see index.html)",
         *([f"warning: {', '.join(untrained_pair)} ran without its trained checkpoint"] if untrained_pair else []),
         f"\nreport: {out / 'index.html'}  (per model: {out}/<model>/report.html; comparison: "
         f"{out / 'comparison.html'})  [{time.perf_counter() - started:.0f} s]")
    return 0


def _demo_break_even(snn_run: dict, ann_run: dict, hardware: list[str], frames_said: str) -> dict | None:
    """The twin pair's break-even tables for the demo's index (snnsim.energy.break_even);
    None when the spiking model never fired (no rate to scale: said instead of a number)."""
    from snnsim.energy import load_hardware
    from snnsim.energy.break_even import (ACTIVITY_MODEL, break_even_curves, break_even_table, layer_break_even,
                                          measured_rate)

    snn, ann = snn_run["tp"], ann_run["tp"]
    if measured_rate(snn)[0] <= 0:
        return None
    layer_hw = hardware[0]
    return {"snn": snn.model, "ann": ann.model, "frames": frames_said, "activity_model": ACTIVITY_MODEL,
            "whole": break_even_table(snn, ann, hardware), "curves": break_even_curves(snn, ann, hardware),
            "layers_hardware": layer_hw,
            "layers": {est: layer_break_even(snn, ann, layer_hw, est) for est in load_hardware(layer_hw).estimators}}


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="snnsim", description="Exact spiking-network operation counts and energy per layer, "
                                                "priced on cited hardware profiles.",
                     epilog="examples:\n  snnsim demo\n  snnsim profile spiketrack-s256-t1 --weights golden\n"
                            "  snnsim hardware loihi2", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    def add(name, help_text, func):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("models", "List the registered models with parameter counts.", cmd_models)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("hardware", "List the shipped hardware profiles, or show one profile's cited constants.", cmd_hardware)
    p.add_argument("name", nargs="?", metavar="NAME", help="a shipped profile name or a profile YAML path")
    p.add_argument("--json", action="store_true", help="print JSON")

    seq_help = ("profile on a real sequence folder (GOT-10k / LaSOT / OTB, or MOTChallenge for smtrack-s) instead "
                "of built-in inputs: crops at the ground-truth boxes, frames read one at a time")
    p = add("profile", "Count a model's operations per tracking frame, price them and write the report.",
            cmd_profile)
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="a registered model (see snnsim models); several with --dataset")
    add_weights(p)
    add_frames(p, 1, "tracking frames to profile")
    p.add_argument("--sequence", metavar="DIR", help=seq_help)
    add_dataset(p)
    add_hardware(p)
    p.add_argument("--capture", default="auto", metavar="MODULE",
                   help="neuron module whose channel x position firing map the report shows, read during the "
                        "counted passes (default auto: the module with the most spikes in the first pass -- the "
                        "template pass, or frame 1 without one; none: skip)")
    add_outputs(p, "profile")

    p = add("compare", "Profile several models and compare them across hardware profiles and estimators.",
            cmd_compare)
    p.add_argument("models", nargs="+", metavar="MODEL", help="two or more registered models")
    add_weights(p)
    add_frames(p, 1, "tracking frames to profile")
    p.add_argument("--sequence", metavar="DIR", help=seq_help + "; the same frames for every model")
    add_hardware(p, counts_only=False)
    add_outputs(p, "compare", "comparison.json")

    p = add("demo", "Compare a trained spiking tracker with its trained ANN twin on a built-in held-out sequence "
                    "(energy per frame on every profile, break-even firing rates), count the published trackers, "
                    "and write the full report.", cmd_demo)
    add_outputs(p, "demo", "every model's summary and the break-even table")

    p = add("measure", "Measure a model's energy per tracking frame on a real NVIDIA GPU (NVML) and write a "
                       "measured hardware profile.", cmd_measure)
    p.epilog = ("example:\n  snnsim measure transt --device cuda --frames 200 --out hardware_profiles/measured/h100-lab.yaml\n"
                "  (without a GPU it says so and exits 2; nothing is modelled)")
    p.add_argument("model")
    p.add_argument("--device", default="cuda", help="torch CUDA device (default cuda)")
    add_frames(p, 100, "tracking frames to time")
    add_weights(p)
    p.add_argument("--base", default=None, help="the shipped profile this GPU is an instance of (default: from its name)")
    p.add_argument("--out", default=None, help="profile YAML to write (default measured-<gpu>-<model>.yaml)")

    # `snnsim track` and `snnsim loihi` live with their jobs, which build their own sub-parsers.
    from snnsim.loihi.cli_loihi import add_loihi_parser
    from snnsim.tracking.cli_track import add_track_parser

    for add_parser in (add_track_parser, add_loihi_parser):
        add_parser(sub).formatter_class = argparse.RawDescriptionHelpFormatter
    sub.choices["track"].set_defaults(func=_cmd_track)   # --dataset goes to snnsim.datasets
    return parser


def _what_was_kept(args) -> str:
    if getattr(args, "dataset", None) is not None:   # a resumable run keeps its finished sequences
        return (f"the sequences that finished are kept in {args.out}/sequences/; run the same command again to "
                f"resume")
    return "nothing was written"


def main(argv: list[str] | None = None) -> int:
    from snnsim.io import Terminated, install_signal_handlers

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # --help (0) or a usage error (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    # SIGTERM / SIGHUP unwind like Ctrl-C: staging removed, lock released, nothing published.
    restore_signals = install_signal_handlers()
    try:
        return args.func(args)
    except user_errors(CliError) as exc:
        print(f"snnsim {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"snnsim {args.command}: interrupted (SIGINT); {_what_was_kept(args)}", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"snnsim {args.command}: stopped by {exc}; {_what_was_kept(args)}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        restore_signals()


if __name__ == "__main__":
    sys.exit(main())
