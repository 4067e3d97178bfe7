"""The sequences of a benchmark folder: GOT-10k / OTB (sequence folders side by side), LaSOT
(class folders holding sequence folders) or a MOTChallenge split; and the user's choice of them.

A sequence is named by its path relative to the dataset root with ``/`` (LaSOT:
``airplane/airplane-1``), which is unique; ``--sequences`` may also give the last part alone
(``airplane-1``) when that is unique. Nothing here reads frames: a sequence is a folder that
looks like one (:func:`snnsim.tracking.sequences.is_sequence_folder`); its files are read, and
their faults reported, by the task that runs it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from snnsim.tracking.errors import SequenceError
from snnsim.tracking.sequences import is_sequence_folder, natural_key

__all__ = ["DatasetSequence", "find_dataset", "select_sequences", "read_sequence_list"]

MAX_DEPTH = 2   # root/<sequence> or root/<class>/<sequence> (LaSOT)


@dataclass(frozen=True)
class DatasetSequence:
    name: str     # path relative to the dataset root, '/'-separated
    path: Path


def find_dataset(root: str | os.PathLike) -> list[DatasetSequence]:
    """Every sequence folder under `root` (one or two levels down), in natural name order.
    Raises SequenceError (one line) when `root` is missing, is itself one sequence, or holds
    none."""
    base = Path(root)
    if not base.is_dir():
        what = "is a file, not a folder" if base.exists() else "no such folder"
        raise SequenceError(f"--dataset {root}: {what}; pass the folder that holds the sequences "
                            "(GOT-10k / OTB / a MOTChallenge split, or LaSOT's class folders)")
    if is_sequence_folder(base):
        raise SequenceError(f"--dataset {root} is one sequence, not a dataset; pass it with --sequence, or pass "
                            "the folder that holds it")
    found: list[DatasetSequence] = []
    # A folder reached twice (a link to a sequence beside it, a link back up the tree) is one
    # sequence, counted once: the first name in natural order keeps it.
    top = base.resolve()
    seen = {top}

    def walk(folder: Path, depth: int) -> None:
        for sub in sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                          key=natural_key):
            real = sub.resolve()
            if real in seen or top.is_relative_to(real):   # counted already, or a link back up the tree
                continue
            seen.add(real)
            if is_sequence_folder(sub):
                found.append(DatasetSequence(sub.relative_to(base).as_posix(), sub))
            elif depth < MAX_DEPTH:
                walk(sub, depth + 1)

    walk(base, 1)
    if not found:
        raise SequenceError(f"--dataset {root}: no sequence folders in it or in its sub-folders; expected "
                            "GOT-10k / LaSOT / OTB sequences (frames + groundtruth.txt) or MOTChallenge ones "
                            "(seqinfo.ini + img1/)")
    return found


def read_sequence_list(spec: str) -> list[str]:
    """``--sequences``: names separated by commas, or ``@file`` with one name per line (blank
    lines and ``#`` comments ignored)."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SequenceError(f"--sequences {spec}: cannot read {path} ({exc.__class__.__name__}); give a text "
                                "file with one sequence name per line") from None
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    else:
        names = [n.strip() for n in spec.split(",")]
    names = [n for n in names if n]
    if not names:
        raise SequenceError(f"--sequences {spec!r} names no sequence; give NAME,NAME or @file.txt")
    return list(dict.fromkeys(names))


def select_sequences(found: list[DatasetSequence], names: list[str] | None) -> list[DatasetSequence]:
    """The sequences `names` asks for, in the dataset's order (all of them for None). A name
    matches a full relative name, or the last part of exactly one."""
    if names is None:
        return list(found)
    by_name = {s.name: s for s in found}
    by_leaf: dict[str, list[DatasetSequence]] = {}
    for s in found:
        by_leaf.setdefault(s.name.rsplit("/", 1)[-1], []).append(s)
    chosen: dict[str, DatasetSequence] = {}
    for n in names:
        if n in by_name:
            chosen[n] = by_name[n]
            continue
        leaf = by_leaf.get(n, [])
        if len(leaf) == 1:
            chosen[leaf[0].name] = leaf[0]
        elif len(leaf) > 1:
            raise SequenceError(f"--sequences: {n!r} matches {len(leaf)} sequences ({', '.join(s.name for s in leaf[:3])}"
                                f"{', ...' if len(leaf) > 3 else ''}); give the full name")
        else:
            known = ", ".join(s.name for s in found[:5]) + (", ..." if len(found) > 5 else "")
            raise SequenceError(f"--sequences: no sequence {n!r} in the dataset ({len(found)} found: {known})")
    return [s for s in found if s.name in chosen]
