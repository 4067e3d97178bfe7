"""A dataset run: many sequences, counted by workers through the single-run code, merged
exactly, written as they finish.

Flow (DESIGN "Scale"): the driver lists the sequences (layouts.py), asks a worker for each
one's length, cuts `profile` sequences into chunks of CHUNK_FRAMES frames (open-loop crops
need no closed loop; `track` is one task per sequence, its state is sequential), hands the
calls to the workers (Ray actors, or one in-process worker for ``--workers 1``), and, when
all of a sequence's calls are back, merges them in frame order and writes
``sequences/<name>.json`` whole. A rerun with the same settings skips the sequences already
there. The dataset's outputs are assembled at the end from those files, one sequence at a
time and in the dataset's order, so they do not depend on the number of workers or on the
order in which the calls finished (chunk sizes never depend on the workers either).

Counts travel as exact integers (FrameMean's state: int64 sums as Python ints); energy is
priced once, from the merged counts (`profile`); a sequence that fails is listed in
failures.csv with its one-line reason and the others complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import DatasetError, SequenceFailure
from .layouts import DatasetSequence

__all__ = ["CHUNK_FRAMES", "DatasetRun", "run_dataset", "sequence_file"]

CHUNK_FRAMES = 32          # frames per profile task: fixed, so results never depend on --workers
IN_FLIGHT_PER_WORKER = 2   # calls queued per worker (keeps workers busy, bounds the driver's memory)
MAX_RETRIES = 2            # restarts of a worker process that died, per call


@dataclass
class DatasetRun:
    """What a dataset run does: `command` ('profile' or 'track') with `models` on `sequences`."""

    command: str
    models: list[str]
    root: Path
    sequences: list[DatasetSequence]
    hardware: list[str]
    weights: str | None = None
    max_frames: int | None = None
    workers: int = 1
    ray_address: str | None = None
    threads_per_worker: int = 1

    def settings(self) -> dict:
        """What a resumed run must share with the run that started the folder: the command,
        models, weights (a checkpoint by its content), dataset, frame limit and hardware
        profiles (a user's YAML by its content)."""
        from snnsim.energy import load_hardware
        from snnsim.models.registry import weights_record

        weights = self.weights
        if weights not in (None, "random", "golden"):
            weights = {"path": str(Path(weights).resolve()), "sha256": weights_record("checkpoint", weights)["sha256"]}
        return {"format": 1, "command": self.command, "models": list(self.models), "weights": weights,
                "dataset": str(Path(self.root).resolve()), "max_frames": self.max_frames,
                "hardware": [{"name": p["name"], "sha256": p["sha256"]}
                             for p in (load_hardware(h).provenance() for h in self.hardware)]}


def sequence_file(name: str) -> str:
    """sequences/<name>.json: the name made a short ASCII file name (any script, any length:
    file systems cap names at 255 bytes), kept unique by a hash of the full name."""
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name.replace("/", "__"))[:60]
    return f"sequences/{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}.json"


def error_file(name: str) -> str:
    """errors/<name>.txt: the traceback of a sequence that failed on a bug, not on its data."""
    return "errors/" + sequence_file(name)[len("sequences/"):-len(".json")] + ".txt"


# ------------------------------------------------------------------------ engines
class _InProcess:
    """`--workers 1`: one worker in this process, calls run in the order they were submitted."""

    def __init__(self, worker_args: tuple):
        import torch

        from .worker import CountingWorker

        self.threads = torch.get_num_threads()   # the worker computes on one thread; given back on close
        self.worker = CountingWorker(*worker_args)
        self.queue: deque = deque()

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, key: Any, method: str, *args) -> None:
        self.queue.append((key, method, args))

    def pending(self) -> int:
        return len(self.queue)

    def next_result(self) -> tuple[Any, Any, BaseException | None]:
        key, method, args = self.queue.popleft()
        try:
            return key, getattr(self.worker, method)(*args), None
        except Exception as exc:   # noqa: BLE001 - listed with its traceback (errors/), as a Ray worker's are
            exc.traceback_text = traceback.format_exc()
            return key, None, exc

    def pids(self) -> list[int]:
        return [os.getpid()]

    def close(self) -> None:
        import torch

        self.worker = None
        torch.set_num_threads(self.threads)


def import_ray():
    """ray, imported so that it leaves this process as it found it: by default Ray's progress-bar
    manager replaces builtins.print in the driver (RAY_TQDM_PATCH_PRINT); snnsim's users keep
    their own print."""
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    import ray

    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers at is one line now, not minutes of
    Ray's reconnection attempts."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise DatasetError(f"--ray-address {address}: nothing answers there ({exc.__class__.__name__}); give the "
                           f"address of a running Ray head (auto, HOST:PORT or ray://HOST:PORT)") from None


class _RayEngine:
    """Ray actors, one per worker, each holding the run's models (built once). An actor whose
    process dies is restarted by Ray and its unfinished calls are retried, so a call's result
    arrives once (the driver never counts a chunk twice: it keeps results by chunk)."""

    def __init__(self, worker_args: tuple, workers: int, address: str | None, quiet: bool = False):
        import logging
        import signal
        import threading

        from .worker import CountingWorker

        if address:
            _check_reachable(address)
        self.ray = ray = import_ray()
        self.started_here = False
        if not ray.is_initialized():   # (in a session the caller opened, its cluster is used)
            opts = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            main = threading.current_thread() is threading.main_thread()
            handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
            # --quiet: Ray's start-up notes (e.g. "Token authentication is enabled ...", a logger
            # warning) are not shown; its errors still are
            ray_log = logging.getLogger("ray")
            level = ray_log.level
            if quiet:
                ray_log.setLevel(logging.ERROR)
            try:
                ray.init(address=address, **opts) if address else ray.init(num_cpus=workers, **opts)
            except ConnectionError as exc:
                raise DatasetError(f"--ray-address {address}: no Ray cluster answers there ({str(exc).splitlines()[0]}); "
                                   f"start one (ray start --head) or leave --ray-address out for a local Ray") from None
            finally:
                ray_log.setLevel(level)
                for s, h in handlers.items():   # Ray takes SIGTERM over; the caller's handling comes back
                    if h is not None:
                        signal.signal(s, h)
            self.started_here = True
        # A worker process that dies (killed, out of memory) is restarted and its call retried,
        # up to MAX_RETRIES times; past that the sequence fails (listed) and a fresh actor
        # takes the slot, so a sequence that crashes every worker cannot stall the run.
        self.actor_class = ray.remote(num_cpus=1, max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)(
            CountingWorker)
        self.worker_args = worker_args
        self.actors = [self.actor_class.remote(*worker_args) for _ in range(workers)]
        self.load = [0] * workers
        self.refs: dict = {}
        try:   # the models built in every actor: a bad checkpoint fails here, before anything is written
            ray.get([a.pid.remote() for a in self.actors])
        except Exception as exc:   # noqa: BLE001 - Ray wraps the builder's error
            self.close()
            raise getattr(exc, "cause", None) or exc from None

    @property
    def capacity(self) -> int:
        return len(self.actors) * IN_FLIGHT_PER_WORKER

    def submit(self, key: Any, method: str, *args) -> None:
        i = min(range(len(self.actors)), key=lambda j: self.load[j])
        ref = getattr(self.actors[i], method).remote(*args)
        self.load[i] += 1
        self.refs[ref] = (key, i, self.actors[i])

    def pending(self) -> int:
        return len(self.refs)

    def next_result(self) -> tuple[Any, Any, BaseException | None]:
        [ref], _ = self.ray.wait(list(self.refs), num_returns=1)
        key, i, actor = self.refs.pop(ref)
        self.load[i] -= 1
        try:
            return key, self.ray.get(ref), None
        except self.ray.exceptions.RayActorError:
            if self.actors[i] is actor:   # (the other calls it held fail too: one replacement)
                self.actors[i] = self.actor_class.remote(*self.worker_args)
            return key, None, SequenceFailure(f"the worker process died while counting it, {MAX_RETRIES + 1} times "
                                              f"(killed or out of memory?)")
        except Exception as exc:   # noqa: BLE001 - a sequence's failure travels wrapped by Ray
            cause = getattr(exc, "cause", None)
            if isinstance(cause, SequenceFailure) or isinstance(exc, SequenceFailure):
                return key, None, SequenceFailure(str((cause or exc).args[0]) if (cause or exc).args else str(exc))
            exc.traceback_text = str(exc)   # Ray's text carries the worker's traceback
            return key, None, exc

    def pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if self.started_here:
            self.ray.shutdown()


# ------------------------------------------------------------------------ the driver
@dataclass
class _SeqState:
    """One sequence in flight. Its chunks are folded into the sequence's tables as soon as every
    chunk before them is in (frame order, so the result never depends on arrival order), and
    dropped: the driver holds one set of count tables and the per-frame rows per sequence, not
    every chunk's."""

    seq: DatasetSequence
    expected: deque = field(default_factory=deque)   # chunk keys (skips) not folded yet, in frame order
    pending: dict = field(default_factory=dict)      # chunks that arrived before their predecessors
    merged: dict = field(default_factory=dict)       # model -> what its folded chunks add up to
    described: bool = False
    failure: str | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def complete(self) -> bool:
        return self.described and not self.expected and not self.pending

    def drop(self) -> None:
        self.expected.clear()
        self.pending.clear()
        self.merged.clear()

    def fold(self, key: int, result: dict) -> None:
        self.pending[key] = result
        while self.expected and self.expected[0] in self.pending:
            part = self.pending.pop(self.expected.popleft())
            for name, chunk in part.items():
                self._fold_model(name, chunk)

    def _fold_model(self, name: str, chunk: dict) -> None:
        from snnsim.counting.result import UncountedTally, module_names
        from snnsim.energy.frames import FrameMean

        if "counts" not in chunk or "summary" in chunk:    # a tracked sequence: one call, kept whole
            self.merged[name] = chunk
            return
        acc = self.merged.get(name)
        if acc is None:
            acc = self.merged[name] = {"first": {k: v for k, v in chunk.items() if k not in ("rows", "counts")},
                                       "counts": FrameMean.from_state(chunk["counts"]), "tally": UncountedTally(),
                                       "unseen": [], "rows": []}
        else:
            acc["counts"].merge(FrameMean.from_state(chunk["counts"]))
        acc["tally"].add_rows(chunk["uncounted"])
        acc["unseen"] = module_names(acc["unseen"], chunk["unseen_neurons"])
        acc["rows"].extend(chunk["rows"])


def _chunks(frames: int, max_frames: int | None, kind: str) -> list[tuple[int, int]]:
    """(skip, count) of each profile call: SOT sequences count frames 1..N-1 (frame 0 gives
    the template), MOT ones 0..N-1."""
    usable = frames - 1 if kind == "sot" else frames
    if max_frames is not None:
        usable = min(usable, max_frames)
    if usable < 1:
        raise SequenceFailure(f"only {frames} frame(s): nothing to track after the template frame")
    return [(s, min(CHUNK_FRAMES, usable - s)) for s in range(0, usable, CHUNK_FRAMES)]


def run_dataset(job: DatasetRun, out, quiet: bool = True, on_progress: Callable[[dict], None] | None = None,
                argv: list[str] | None = None) -> dict:
    """Run `job` into the resumable folder `out`; returns dataset_summary.json's dict. Bad
    arguments raise DatasetError / OutputError (one line); failed sequences are listed, not
    raised (the summary says how many of them finished)."""
    from snnsim.io import open_resumable

    from .outputs import assemble

    if job.command not in ("profile", "track"):
        raise DatasetError(f"unknown dataset command {job.command!r}")
    if job.workers < 1:
        raise DatasetError(f"--workers must be at least 1 (got {job.workers})")
    folder = open_resumable(out, f"snnsim {job.command} --dataset", job.settings(), managed=("sequences", "errors"),
                            inputs=[job.root, job.weights, *job.hardware], argv=argv)   # checked, not yet made
    worker_args = (list(job.models), job.weights, list(job.hardware), job.threads_per_worker)
    # the workers and their models first: bad weights or an unreachable cluster fail before
    # anything is written
    engine = (_InProcess(worker_args) if job.workers == 1 and not job.ray_address
              else _RayEngine(worker_args, job.workers, job.ray_address, quiet=quiet))
    try:
        with folder:
            # dataset_summary.json goes first and is written last: a run stopped before its end
            # (while sequences land, or while it assembles) leaves no summary beside newer files
            # (a folder without one is not assembled: rerun with the same --out to finish it)
            folder.remove("dataset_summary.json")
            done = {s.name for s in job.sequences if _finished(folder, s.name)}
            todo = [s for s in job.sequences if s.name not in done]
            failures = _run_sequences(job, folder, engine, todo, quiet, on_progress, len(done))
            summary = assemble(job, folder, failures)
    finally:
        engine.close()
    return summary


def _finished(folder, name: str) -> bool:
    """A sequence whose file is there, whole and its own (a damaged one is run again)."""
    rel = sequence_file(name)
    if not folder.has(rel):
        return False
    try:
        with open(folder.path / rel, encoding="utf-8") as fh:
            return json.load(fh).get("sequence") == name
    except (OSError, ValueError, AttributeError):
        return False


def _progress_bar(total: int, done: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="seq", desc="sequences", file=sys.stderr, dynamic_ncols=True)


def _run_sequences(job: DatasetRun, folder, engine, todo: list[DatasetSequence], quiet: bool,
                   on_progress, already: int) -> dict[str, str]:
    """Count every sequence of `todo`; write each as it completes. Returns {name: reason} of
    the sequences that failed (failures.csv is written from it by the assembly)."""
    failures: dict[str, str] = {}
    if not todo:
        return failures
    bar = _progress_bar(already + len(todo), already, quiet)
    frames_done, t0 = 0, time.perf_counter()
    states = {s.name: _SeqState(s) for s in todo}
    waiting: deque = deque(("describe", s.name, s) for s in todo)   # calls not yet submitted
    try:
        while waiting or engine.pending():
            while waiting and engine.pending() < engine.capacity:
                kind, name, arg = waiting.popleft()
                st = states[name]
                if st.failure is not None:
                    continue
                if kind == "describe":
                    engine.submit((name, "describe", 0), "describe", str(st.seq.path), job.command)
                elif kind == "chunk":
                    skip, count = arg
                    engine.submit((name, "chunk", skip), "profile_chunk", str(st.seq.path), skip, count, skip == 0)
                else:
                    engine.submit((name, "track", 0), "track", str(st.seq.path), job.max_frames)
            (name, kind, skip), result, error = engine.next_result()
            st = states.get(name)
            if st is None or st.failure is not None:
                continue                                   # a late call of a failed sequence
            if error is not None:
                st.failure = _reason(error)
                failures[name] = st.failure
                st.drop()
                if not isinstance(error, SequenceFailure):   # a bug, not the data: keep its traceback
                    folder.write(error_file(name), getattr(error, "traceback_text", repr(error)))
                if bar is not None:
                    bar.update(1)
                continue
            if kind == "describe":
                try:
                    if job.command == "track":
                        st.expected.append(0)
                        waiting.append(("track", name, None))
                    else:
                        parts = _chunks(result["frames"], job.max_frames, result["kind"])
                        st.expected.extend(skip for skip, _count in parts)
                        waiting.extend(("chunk", name, p) for p in parts)
                    st.described = True
                except SequenceFailure as exc:
                    st.failure = failures[name] = str(exc)
                    if bar is not None:
                        bar.update(1)
                continue
            st.fold(skip, result)
            if not st.complete:
                continue
            record = _sequence_record(job, st)
            folder.write(sequence_file(name), json.dumps(record, allow_nan=True))
            folder.remove(error_file(name))                 # an earlier run's failure, now resolved
            frames_done += record["frames"]
            del states[name]                                # nothing of it stays in memory
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{frames_done / max(time.perf_counter() - t0, 1e-9):.1f} frames/s")
            if on_progress is not None:
                on_progress({"sequence": name, "frames": record["frames"], "pids": engine.pids})
    finally:
        if bar is not None:
            bar.close()
    return failures


def _reason(error: BaseException) -> str:
    if isinstance(error, SequenceFailure):
        return str(error).splitlines()[0] if str(error) else "failed"
    text = str(error).strip().splitlines()
    last = next((line for line in reversed(text) if line.strip()), type(error).__name__)
    return f"internal error ({type(error).__name__}): {last.strip()} (traceback in errors/)"


def _sequence_record(job: DatasetRun, st: _SeqState) -> dict:
    """One finished sequence: its chunks as folded in frame order (profile) or as tracked."""
    seconds = time.perf_counter() - st.started
    if job.command == "track":
        res = st.merged
        frames = max(len(r["rows"]) for r in res.values()) if res else 0
        return {"sequence": st.seq.name, "path": str(st.seq.path), "command": "track", "frames": frames,
                "seconds": seconds, "models": res}
    models = {}
    for name in job.models:
        acc = st.merged[name]
        first = acc["first"]
        models[name] = {"frames": acc["counts"].n, "kind": first["kind"], "timesteps": first["timesteps"],
                        "weights": first["weights"], "inputs": first["inputs"], "thop": first["thop"],
                        "counts": acc["counts"].to_state(), "template": first["template"],
                        "uncounted": acc["tally"].rows(), "unseen_neurons": acc["unseen"], "rows": acc["rows"]}
    frames = models[job.models[0]]["frames"]
    return {"sequence": st.seq.name, "path": str(st.seq.path), "command": "profile", "frames": frames,
            "seconds": seconds, "models": models}


def read_records(folder, job: DatasetRun) -> Iterator[dict]:
    """The finished sequences' records, in the dataset's order (one in memory at a time)."""
    for s in job.sequences:
        rel = sequence_file(s.name)
        if folder.has(rel):
            with open(folder.path / rel, encoding="utf-8") as fh:
                yield json.load(fh)
