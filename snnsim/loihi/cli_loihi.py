"""`snnsim loihi MODEL`: the command-line face of :mod:`snnsim.loihi.job`.

Wire it into the `snnsim` parser with ``add_loihi_parser(subparsers)``; the sub-command's
``func`` is :func:`cmd_loihi`, which maps every bad input to one line on stderr and exit code 2
by itself (also when called outside snnsim.cli.main).
"""
from __future__ import annotations

import argparse
import sys

from snnsim.cli_options import (OneLineParser, add_frames, add_hardware, add_outputs, add_weights, run_job,
                                weights_to_build)
from snnsim.errors import check_weights

from .job import HARDWARE

__all__ = ["add_loihi_parser", "cmd_loihi", "main"]

HELP = ("Map a spiking model onto Loihi 2 (BatchNorm folded, 8-bit weights, graded neurons), run it in fixed point "
        "and report partition, resources, fidelity and Loihi energy.")
EXAMPLE = ("examples:\n  snnsim loihi spiketrack-tiny --frames 20\n"
           "  snnsim loihi spiketrack-s256-t1 --weights golden --frames 2 --out out/loihi\n"
           "  snnsim loihi spiketrack-tiny --backend lava --frames 2")


def add_loihi_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `loihi` sub-command to an argparse sub-parsers object and return its parser."""
    p = subparsers.add_parser("loihi", help=HELP, description=HELP, epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a registered spiking model (snnsim models), e.g. spiketrack-tiny")
    p.add_argument("--backend", default="emulator", choices=("emulator", "lava"),
                   help="emulator (default): snnsim's bit-exact fixed-point emulator; lava: also run the neurocore "
                        "segment (stem + first stage) in lava-nc and check it bit for bit")
    add_frames(p, 1, "tracking frames of the synthetic sequence")
    add_weights(p)
    add_hardware(p, ",".join(HARDWARE), counts_only=False)
    add_outputs(p, "loihi")
    p.set_defaults(func=cmd_loihi)
    return p


def cmd_loihi(args) -> int:
    """The `loihi` job through cli_options.run_job (bad input: one line, exit 2, no output)."""
    from .job import LoihiJobError, check_request, run_loihi_job
    from .mapper import MappingError

    quiet = bool(getattr(args, "quiet", False)) or bool(getattr(args, "json", False)) or not sys.stderr.isatty()

    def job():
        check_request(args.model, args.backend, args.frames)
        check_weights(args.weights)
        bar = None
        if not quiet:
            from tqdm import tqdm

            bar = tqdm(total=4, desc=f"{args.model}: loihi", file=sys.stderr, dynamic_ncols=True, leave=False)

        def progress(i: int, what: str) -> None:
            if bar is not None:
                bar.set_postfix_str(what)
                bar.update(1)

        try:
            return run_loihi_job(args.model, backend=args.backend, frames=args.frames,
                                 weights=weights_to_build(args.weights), out=args.out, quiet=quiet, progress=progress,
                                 hardware=[h.strip() for h in getattr(args, "hardware", ",".join(HARDWARE)).split(",")])
        finally:
            if bar is not None:
                bar.close()

    return run_job(args, "loihi", job, _print_summary, (LoihiJobError, MappingError))


def _print_summary(s: dict) -> None:
    from snnsim.pipeline.summary import weights_label

    f = s["fidelity"]
    sa = f["spike_agreement"]
    print(f"{s['model']} on Loihi 2 ({s['backend']}): {s['cores']} cores, {s['chips']} chip(s) "
          f"({s['residual_mapping']} residual mapping); weights: {weights_label(s)}")
    if sa["overall"] is not None:
        print(f"  spike agreement {100 * sa['overall']:.2f} % over {f['frames']} frame(s); open-loop box IoU "
              f"{f['open_loop_box_iou']['mean']:.3f}"
              + (f"; closed-loop IoU float vs fixed {f['closed_loop']['mean_iou_float_vs_fixed']:.3f}"
                 if "closed_loop" in f else ""))
    seg = s["segment"]
    if seg.get("available"):
        line = f"  stem segment: emulator settled = fixed-point model: {seg['settled_equals_model_level_fixed_point']}"
        if "lava" in seg:
            line += f"; lava bit-exact: {seg['lava']['bit_exact_vs_emulator']}"
        print(line)
    for hw, by in s["energy_variants"].items():
        for label, j in by.items():
            shown = "not applicable" if j is None else f"{j * 1e3:.4f} mJ/frame"
            print(f"  {hw:8s} {label:44s} {shown}")
    print(f"wrote {s['output']}/")


def main(argv: list | None = None) -> int:
    """Stand-alone entry point (`python -m snnsim.loihi.cli_loihi MODEL ...`)."""
    parser = OneLineParser(prog="snnsim")
    add_loihi_parser(parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser))
    try:
        args = parser.parse_args(["loihi", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
