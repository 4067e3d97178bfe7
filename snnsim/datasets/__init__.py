"""Dataset-scale runs on Ray: `snnsim profile MODEL... --dataset ROOT` and `snnsim track MODEL
--dataset ROOT`, or :func:`profile_dataset` / :func:`track_dataset` in Python. Each worker runs
the single-run code on its sequences and returns count tables; the driver merges them exactly
and writes each finished sequence as it completes (see run.py)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DatasetError, SequenceFailure
from .layouts import DatasetSequence, find_dataset, read_sequence_list, select_sequences

__all__ = ["DatasetError", "DatasetSequence", "SequenceFailure", "find_dataset", "profile_dataset", "track_dataset"]


def _job(command: str, models: list[str], root, sequences, max_frames, hardware, weights, workers, ray_address):
    """The run, every argument checked (one line each) before anything is built or written."""
    from snnsim.errors import check_hardware, check_weights
    from snnsim.models.registry import get_spec
    from snnsim.tracking.sequences import looks_mot

    from .run import DatasetRun

    models = list(models)
    if not models:
        raise DatasetError("no model given; name one or more registered models (snnsim models)")
    if len(set(models)) != len(models):
        raise DatasetError("a model is given twice; name each model once")
    if command == "track" and len(models) != 1:
        raise DatasetError("track --dataset runs one model; run it once per model")
    specs = {m: get_spec(m) for m in models}   # UnknownModelError lists the known ones
    weights = check_weights(weights)
    weights = None if weights == "default" else weights
    hardware = check_hardware(hardware if isinstance(hardware, str) else list(hardware or []))
    if isinstance(sequences, str):
        sequences = read_sequence_list(sequences)
    found = select_sequences(find_dataset(root), list(sequences) if sequences is not None else None)
    if max_frames is not None and int(max_frames) < 1:
        raise DatasetError(f"--max-frames must be at least 1 (got {max_frames})")
    mot = [looks_mot(s.path) for s in found]
    for m, spec in specs.items():   # a tracker and a dataset of the other task: said now, not per sequence
        wants_mot = spec.family == "smtrack"
        if not any(k == wants_mot for k in mot):
            raise DatasetError(f"{m} is a {'multi' if wants_mot else 'single'}-object tracker but no sequence of "
                               f"{root} is a {'MOTChallenge' if wants_mot else 'GOT-10k / LaSOT / OTB'} sequence")
    return DatasetRun(command, models, Path(root), found, list(hardware), weights,
                      None if max_frames is None else int(max_frames), int(workers), ray_address)


def profile_dataset(models, root: str | os.PathLike, out: str | os.PathLike, *, sequences=None,
                    max_frames: int | None = None, hardware=("horowitz-45nm-fp32",), weights: str | None = None,
                    workers: int = 1, ray_address: str | None = None, quiet: bool = True) -> dict:
    """Count `models` (names) on every sequence of the dataset at `root` (open-loop crops at the
    ground-truth boxes, as `snnsim profile --sequence`); writes `out` and returns
    dataset_summary.json's dict. `workers` > 1 or `ray_address` runs on Ray."""
    from .run import run_dataset

    models = [models] if isinstance(models, str) else list(models)
    job = _job("profile", models, root, sequences, max_frames, hardware, weights, workers, ray_address)
    return run_dataset(job, out, quiet=quiet)


def track_dataset(model: str, root: str | os.PathLike, out: str | os.PathLike, *, sequences=None,
                  max_frames: int | None = None, hardware=("horowitz-45nm-fp32",), weights: str | None = None,
                  workers: int = 1, ray_address: str | None = None, quiet: bool = True) -> dict:
    """Track with `model` on every sequence of the dataset at `root` (closed loop, as
    `snnsim track`); writes `out` (with metrics.json) and returns the summary."""
    from .run import run_dataset

    job = _job("track", [model], root, sequences, max_frames, hardware, weights, workers, ray_address)
    return run_dataset(job, out, quiet=quiet)
