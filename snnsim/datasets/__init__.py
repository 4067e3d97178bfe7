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
    from .run import DatasetRun

    if isinstance(sequences, str):
        sequences = read_sequence_list(sequences)
    found = select_sequences(find_dataset(root), list(sequences) if sequences is not None else None)
    if max_frames is not None and int(max_frames) < 1:
        raise DatasetError(f"--max-frames must be at least 1 (got {max_frames})")
    if isinstance(hardware, str):
        hardware = [h for h in hardware.split(",") if h]
    return DatasetRun(command, list(models), Path(root), found, list(hardware or []), weights,
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
