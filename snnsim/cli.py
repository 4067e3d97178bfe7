"""`snnsim` command line. Thin: parse, call the library, write files, map errors to exit 2."""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

EXAMPLES = {
    "models": "example: snnsim models --json",
    "profile": "example: snnsim profile spiketrack-s256-t1 --weights golden --hardware horowitz-45nm-fp32,loihi2 --out out/st",
    "demo": "example: snnsim demo --out snnsim-demo",
}


class CliError(Exception):
    """A bad input: printed as one line on stderr, exit code 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from snnsim.models.registry import UnknownModelError

    errors: list[type[BaseException]] = [CliError, UnknownModelError, FileNotFoundError, NotADirectoryError]
    for module, name in (("snnsim.models.checkpoint", "CheckpointMismatchError"),
                         ("snnsim.energy", "HardwareProfileError"),
                         ("snnsim.tracking.errors", "SequenceError")):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _progress(total: int, desc: str, quiet: bool):
    """A tqdm bar on a TTY, nothing otherwise (or with --quiet)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=quiet or not sys.stderr.isatty(), leave=False)


# ------------------------------------------------------------------ commands
def cmd_models(args) -> int:
    from snnsim.models import build_model, list_models
    from snnsim.tracking.frame_counts import count_params

    rows = []
    for spec in list_models():
        model = build_model(spec.name)
        rows.append({"name": spec.name, "kind": spec.kind, "family": spec.family, "params": count_params(model),
                     "timesteps": model.timesteps, "inputs": model.input_description(), "summary": spec.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'model':22s} {'kind':8s} {'params':>12s}  inputs")
        for r in rows:
            inputs = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in r["inputs"].items())
            print(f"{r['name']:22s} {r['kind']:8s} {r['params']:>12,d}  {inputs}")
    return 0


def _weights_arg(value: str) -> str:
    if value in ("random", "golden"):
        return value
    path = pathlib.Path(value)
    if not path.is_file():
        raise CliError(f"--weights: no checkpoint file at '{value}'; give random, golden or a path to a .pth/.pt file")
    return str(path)


def _profile_model(name: str, weights: str, frames: int, quiet: bool):
    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    if frames < 1:
        raise CliError(f"--frames must be at least 1 (got {frames})")
    model = build_model(name, weights=_weights_arg(weights))
    source = "golden" if weights == "golden" else "random"
    with _progress(frames, f"profiling {name}", quiet) as bar:
        return profile_tracker(model, source=source, frames=frames, progress=bar.update)


def cmd_profile(args) -> int:
    from snnsim.analysis.outputs import write_profile

    tp = _profile_model(args.model, args.weights, args.frames, args.quiet)
    hardware = [h for h in (args.hardware or "").split(",") if h]
    out = pathlib.Path(args.out)
    summary = write_profile(tp, out, hardware)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        t = summary["totals"]
        print(f"{tp.model}: {t['dense_macs'] / 1e9:.3f} GMAC dense per frame, thop {summary['thop_macs'] / 1e9:.3f} G; "
              f"mac_ops {t['mac_ops'] / 1e9:.3f} G, syn_ops {t['syn_ops'] / 1e9:.3f} G; weights: {tp.weights}")
        for prof, by_est in summary.get("energy", {}).items():
            for est, joules in by_est.items():
                shown = "not applicable" if joules is None else f"{joules * 1e3:.3f} mJ/frame"
                print(f"  {prof:22s} {est:14s} {shown}")
        print(f"wrote {out}/")
    return 0


def cmd_demo(args) -> int:
    from snnsim.analysis.outputs import write_profile

    out = pathlib.Path(args.out)
    models = [("spiketrack-s256-t1", "golden"), ("asymtrack-t", "golden"), ("transt", "golden")]
    hardware = ["horowitz-45nm-fp32", "loihi2", "jetson-agx-orin"]
    print(f"snnsim demo: {len(models)} trackers on built-in golden inputs (no download)")
    rows = []
    for name, weights in models:
        tp = _profile_model(name, weights, 1, args.quiet)
        summary = write_profile(tp, out / name, hardware)
        rows.append(summary)
    print(f"\n{'model':22s} {'kind':8s} {'thop GMAC':>10s} {'full GMAC/frame':>16s} {'syn_ops G':>10s}")
    for s in rows:
        t = s["totals"]
        print(f"{s['model']:22s} {s['kind']:8s} {s['thop_macs'] / 1e9:10.3f} {t['dense_macs'] / 1e9:16.3f} "
              f"{t['syn_ops'] / 1e9:10.3f}")
    print(f"\nreports written to {out}/<model>/ (summary.json, layers.csv, neurons.csv)")
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnsim", description="Exact spiking-network operation counts and energy.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, help_text, func):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES.get(name))
        p.set_defaults(func=func)
        return p

    p = add("models", "List the registered models with parameter counts.", cmd_models)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("profile", "Count a model's operations per tracking frame and write the report files.", cmd_profile)
    p.add_argument("model")
    p.add_argument("--weights", default="random", help="random | golden | PATH to a checkpoint (default random)")
    p.add_argument("--frames", type=int, default=1, help="tracking frames to profile (default 1)")
    p.add_argument("--hardware", default="", help="comma-separated hardware profiles (names or YAML paths)")
    p.add_argument("--out", default="snnsim-profile", help="output directory (default ./snnsim-profile)")
    p.add_argument("--json", action="store_true", help="print summary.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars or chatter")

    p = add("demo", "Profile a spiking tracker and two ANN trackers on built-in inputs and write the reports.", cmd_demo)
    p.add_argument("--out", default="snnsim-demo")
    p.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"snnsim {args.command}: error: {message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"snnsim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
