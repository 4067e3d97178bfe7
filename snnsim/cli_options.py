"""The command line's shared vocabulary: one meaning, one default and one help text per
option, for every command that takes it (snnsim.cli and the track / loihi sub-commands, which
build their own sub-parsers)."""
from __future__ import annotations

import argparse

__all__ = ["DEFAULT_HARDWARE", "OneLineParser", "add_dataset", "add_frames", "add_hardware", "add_json", "add_quiet",
           "add_weights", "positive_int", "weights_to_build", "workers_count"]

class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2, for every command."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Hardware a command prices on when --hardware is not given ('' prices nothing: counts only).
DEFAULT_HARDWARE = "horowitz-45nm-fp32,loihi2,jetson-agx-orin"
WEIGHTS_HELP = ("default | random | golden | PATH to a checkpoint (default: the model's shipped trained weights "
                "if it has any, else random weights drawn after a fixed seed)")


def whole_number(what: str, option: str):
    """An argparse type: a whole number >= 1 of `what`, one line naming the problem otherwise."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of {what}, got '{value}'") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1 (got {n}); pass {option} 1 or more")
        return n

    return parse


positive_int = whole_number("frames", "--frames")     # --frames N
workers_count = whole_number("workers", "--workers")  # --workers N


def add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="default", help=WEIGHTS_HELP)


def weights_to_build(value: str | None) -> str | None:
    """The builders' spelling: 'default' (the shipped weights) is None there."""
    return None if value in (None, "default") else value


def add_frames(p: argparse.ArgumentParser, default: int | None, what: str) -> None:
    shown = "all" if default is None else str(default)
    p.add_argument("--frames", type=positive_int, default=default, metavar="N", help=f"{what} (default {shown})")


def add_hardware(p: argparse.ArgumentParser, default: str = DEFAULT_HARDWARE, counts_only: bool = True) -> None:
    """--hardware A,B. `default`: the shared one, except for a command that prices one kind of
    hardware only (loihi: its Loihi profiles), which says so in its help."""
    p.add_argument("--hardware", default=default,
                   help=f"comma-separated hardware profiles, shipped names or YAML paths (default {default}"
                        + ("; '' for counts only)" if counts_only else ")"))


def add_dataset(p: argparse.ArgumentParser) -> None:
    """--dataset ROOT and the options of a dataset run (snnsim.datasets), the same for profile
    and track."""
    g = p.add_argument_group("dataset runs (many sequences, on Ray)")
    g.add_argument("--dataset", metavar="ROOT", default=None,
                   help="run every sequence under ROOT: GOT-10k / OTB folders side by side, LaSOT class folders, or a "
                        "MOTChallenge split; finished sequences land in OUT/sequences/ as they complete, and a rerun "
                        "with the same OUT and settings continues where it stopped")
    g.add_argument("--sequences", metavar="NAME,NAME|@FILE", default=None,
                   help="only these sequences (names relative to ROOT, or their last part), or @FILE with one per line")
    g.add_argument("--max-frames", type=whole_number("frames", "--max-frames"), default=None, metavar="N",
                   help="at most N frames per sequence (default all): profile counts N tracking frames after the "
                        "template frame, track runs the first N frames, the template frame included")
    g.add_argument("--workers", type=workers_count, default=None, metavar="N",
                   help="worker processes (default 1: in this process, without Ray; more: an embedded local Ray "
                        "with N CPUs)")
    g.add_argument("--ray-address", metavar="ADDR", default=None,
                   help="join an existing Ray cluster instead (auto, or ray://HOST:PORT); --workers actors run there")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars or chatter (also off when not a terminal)")


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout instead of the summary lines")


def add_outputs(p: argparse.ArgumentParser, command: str, json_what: str = "summary.json") -> None:
    """--out (default ./snnsim-COMMAND), --json (print `json_what`) and --quiet: the same for
    every command that writes a folder."""
    p.add_argument("--out", default=f"snnsim-{command}", help=f"output folder (default ./snnsim-{command})")
    add_json(p, json_what)
    add_quiet(p)


def run_job(args, command: str, job, print_summary, errors: tuple = ()) -> int:
    """A job command's ending, the same for track and loihi: run `job()` (it returns the
    summary); a user's bad input -- snnsim.errors.user_errors plus `errors` -- is one line on
    stderr and exit code 2, anything else propagates with its traceback (exit 1); then the
    summary as JSON (--json) or its summary lines (unless --quiet)."""
    import json
    import sys

    from snnsim.errors import one_line, user_errors

    try:
        summary = job()
    except user_errors(*errors) as exc:
        print(f"snnsim {command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, default=str))
    elif not getattr(args, "quiet", False):
        print_summary(summary)
    return 0
