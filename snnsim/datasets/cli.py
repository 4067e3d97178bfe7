"""`snnsim profile MODEL... --dataset ROOT` and `snnsim track MODEL --dataset ROOT`: the command
line of a dataset run. Every input is checked before any work (one line, exit 2); a run in
which some sequences failed exits 1 and says how many finished."""
from __future__ import annotations

import json
import sys

__all__ = ["cmd_dataset", "cmd_track_dataset"]


def cmd_track_dataset(args) -> int:
    """`snnsim track MODEL --dataset ROOT`; a SEQUENCE given beside --dataset, or an option a
    dataset run does not take, is one line and exit 2."""
    from .errors import DatasetError

    if args.sequence is not None:
        raise DatasetError("give a SEQUENCE folder or --dataset ROOT, not both")
    if getattr(args, "input_size", None) is not None:
        raise DatasetError("--input-size is not available with --dataset; run smtrack-s sequences one at a time")
    return cmd_dataset(args, "track")


def cmd_dataset(args, command: str) -> int:
    from . import _job
    from .errors import DatasetError
    from .run import run_dataset

    models = list(args.models) if command == "profile" else [args.model]
    if getattr(args, "frames", None) != (1 if command == "profile" else None):   # (each command's default)
        raise DatasetError("--frames applies to one sequence; with --dataset give --max-frames N per sequence")
    address = args.ray_address
    if address is not None and not (address == "auto" or address.startswith("ray://") or ":" in address):
        raise DatasetError(f"--ray-address {address!r}: give auto, ray://HOST:PORT or HOST:PORT")
    job = _job(command, models, args.dataset, args.sequences, args.max_frames, args.hardware, args.weights,
               1 if args.workers is None else args.workers, address)
    summary = run_dataset(job, args.out, quiet=args.quiet or args.json)
    if args.json:
        print(json.dumps(summary, indent=1))
    elif not args.quiet:
        _print(summary, args.out)
    elif summary["failed"]:   # quiet, but an exit code of 1 says why in one line
        print(f"snnsim {command} --dataset: {summary['sequences_line']} finished, {summary['sequences']['failed']} "
              f"failed (failures.csv in {args.out})", file=sys.stderr)
    return 0 if not summary["failed"] else 1


def _print(s: dict, out) -> None:
    print(f"snnsim {s['command']} --dataset {s['dataset']}: {s['sequences_line']} finished"
          + (f", {s['sequences']['failed']} failed (failures.csv)" if s["failed"] else ""))
    for name, m in s["models"].items():
        print(f"  {name}: {m['frames']} frames in {m['sequences']} sequences")
        for hw, by in m["energy"].items():
            for est, j in by.items():
                shown = "not applicable" if j is None else f"{j * 1e3:.4f} mJ per frame"
                print(f"    {hw:22s} {est:14s} {shown}")
    print(f"wrote {out}/ (report: {out}/report.html)")
