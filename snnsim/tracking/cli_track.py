"""`snnsim track MODEL SEQUENCE`: the command-line face of :mod:`snnsim.tracking.run`.

Wire it into the `snnsim` parser with ``add_track_parser(subparsers)``; the sub-command's
``func`` is :func:`cmd_track`, which maps every bad input to one line on stderr and exit code 2
by itself (also when called outside snnsim.cli.main).
"""
from __future__ import annotations

import argparse
import sys

from snnsim.cli_options import (OneLineParser, add_dataset, add_frames, add_hardware, add_outputs, add_weights,
                                run_job, weights_to_build)
from snnsim.errors import check_hardware, check_weights

__all__ = ["add_track_parser", "cmd_track", "parse_size"]

HELP = "Run a tracker over a sequence, frame by frame: boxes, per-frame counts and energy, metrics, report."
EXAMPLE = ("example: snnsim track spiketrack-tiny path/to/GOT-10k/GOT-10k_Val_000001 "
           "--hardware horowitz-45nm-fp32,loihi2 --out out/track")


def parse_size(text: str) -> tuple[int, int]:
    """'608x1088' -> (608, 1088), checked by mot.check_input_size (the one rule set: multiples
    of 32, the side limit, the memory available) before anything is built or allocated."""
    from .mot import check_input_size

    try:
        h, w = (int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size HxW such as 608x1088") from None
    try:
        return check_input_size((h, w), what="")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_track_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `track` sub-command to an argparse sub-parsers object and return its parser."""
    p = subparsers.add_parser("track", help=HELP, description=HELP, epilog=EXAMPLE)
    p.add_argument("model", help="registered model (snnsim models), e.g. spiketrack-tiny, transt, smtrack-s")
    p.add_argument("sequence", nargs="?", default=None,
                   help="sequence folder: GOT-10k / LaSOT / OTB (single object) or MOTChallenge (or --dataset ROOT)")
    add_outputs(p, "track")
    add_hardware(p)
    add_weights(p)
    add_frames(p, None, "process at most N frames")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="detector input HxW for smtrack-s (multiples of 32, at most 4096x4096 and what this machine's "
                        "memory holds; default 608x1088)")
    add_dataset(p)
    p.set_defaults(func=cmd_track)
    return p


def cmd_track(args) -> int:
    """The `track` job through cli_options.run_job (bad input: one line, exit 2, no output)."""
    from .run import TrackError, track_sequence

    # (`snnsim track MODEL --dataset ROOT` is routed to snnsim.datasets by snnsim.cli before this)
    if args.sequence is None or getattr(args, "dataset", None) is not None:
        print("snnsim track: error: give a SEQUENCE folder, or --dataset ROOT (without a SEQUENCE) to track every "
              "sequence of a dataset", file=sys.stderr)
        return 2
    for option in ("sequences", "max_frames", "workers", "ray_address"):
        if getattr(args, option, None) is not None:
            print(f"snnsim track: error: --{option.replace('_', '-')} applies to a dataset run; add --dataset ROOT",
                  file=sys.stderr)
            return 2
    hardware = args.hardware
    options = {}
    if getattr(args, "input_size", None) is not None:
        options["input_size"] = args.input_size

    def job():
        check_weights(args.weights)
        hw = check_hardware(hardware)
        return track_sequence(args.model, args.sequence, args.out, hardware=hw,
                              weights=weights_to_build(args.weights), frames=args.frames,
                              quiet=args.quiet or getattr(args, "json", False), **options)

    return run_job(args, "track", job, _print_summary, (TrackError,))


def _print_summary(s: dict) -> None:
    from snnsim.pipeline.summary import weights_label

    print(f"{s['model']} on {s['input']['name']}: {s['frames']} frames, template branch on "
          f"{s['template_passes']} frame(s); weights: {weights_label(s)}")
    m = s.get("metrics")
    if m and s["task"] == "sot":
        print(f"  success AUC {m['auc']:.3f}, precision {m['precision']:.3f}, norm. precision {m['norm_precision']:.3f}")
    elif m:
        print(f"  HOTA {m['HOTA']:.3f}, MOTA {m['MOTA']:.3f}, IDF1 {m['IDF1']:.3f} (no ReID: appearance term dropped)")
    for hw, by in s["energy"].items():
        for est, j in by.items():
            tpl = (s.get("energy_template") or {}).get(hw, {}).get(est)
            shown = "not applicable" if j is None else f"{j * 1e3:.4f} mJ per frame (search pass)" + (
                f" + {tpl * 1e3:.4f} mJ per template pass" if tpl is not None else "")
            print(f"  {hw:22s} {est:14s} {shown}")
    print(f"wrote {s['output']}/")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (`python -m snnsim.tracking.cli_track MODEL SEQUENCE ...`)."""
    parser = OneLineParser(prog="snnsim")
    add_track_parser(parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser))
    args = parser.parse_args(["track", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
