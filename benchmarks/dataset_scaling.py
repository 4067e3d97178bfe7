"""Dataset runs: frames/s with 1 and 2 workers in the same run, Ray's start-up and per-task
overhead, and what a whole benchmark would take.

A synthetic dataset (``--sequences`` x ``--frames`` GOT-10k-style sequences written by
`snnsim.tracking.synthetic`, seeds 0..N-1) is profiled by ``snnsim.profile_dataset`` with the
models the issue names (spiketrack-tiny beside asymtrack-t, on horowitz-45nm-fp32), first with
``--workers 1`` (in-process, no Ray), then with ``--workers 2`` (embedded local Ray), each into
a fresh output folder; both runs' dataset_summary.json must be the same bytes.

* frames/s: frames counted over the wall time of the whole call (start-up included) and over
  the counting alone (the Ray run's start-up subtracted).
* Ray start-up: ``ray.init`` plus two actors with their models built, timed on its own.
* Per-task overhead: a 32-frame chunk sent to one Ray actor, one call at a time: the round trip
  minus the time the actor spent computing it (dispatch, serialisation, result transfer), the
  median of ``--repeats``; its share of a sequence's time is tasks per sequence x overhead / the
  sequence's 1-worker time. Apart from it: the same chunk computed in this process (alternating
  with the actor's calls), since computing in a Ray worker process on a machine whose cores Ray's
  own processes share costs something too (``ray_process_compute_ratio``).
* Projection: LaSOT's test split (280 sequences, about 690k frames, as the issue states it) at
  the measured 1-worker per-frame time, on 1 worker and on a 64-worker cluster at the 2-worker
  run's parallel efficiency; the same for spiketrack-s256-t1 and transt, whose per-frame time is
  measured here on one chunk in-process (an official-size pair).

Each worker computes on one torch thread. On a 2-core machine the driver and Ray's own processes
share the cores with the two workers, so the speed-up there is a lower bound of what separate
machines give. Writes benchmarks/results/dataset_scaling.json.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import tempfile
import time

import torch

OUT = pathlib.Path(__file__).with_name("results") / "dataset_scaling.json"
MODELS = ["spiketrack-tiny", "asymtrack-t"]
HARDWARE = ["horowitz-45nm-fp32"]
OFFICIAL = ["spiketrack-s256-t1", "transt"]
LASOT_TEST = {"sequences": 280, "frames": 690_000, "source": "issue 14's figure ('about 690k frames')"}
CLUSTER_WORKERS = 64


def write_dataset(root: pathlib.Path, sequences: int, frames: int) -> None:
    from snnsim.tracking.synthetic import write_sot_sequence

    for i in range(sequences):
        write_sot_sequence(root / f"seq{i:03d}", n_frames=frames, size=(256, 256), seed=i)


def timed_run(root, out, workers: int) -> tuple[float, dict]:
    import snnsim

    t = time.perf_counter()
    summary = snnsim.profile_dataset(MODELS, root, out, hardware=HARDWARE, workers=workers, quiet=True)
    return time.perf_counter() - t, summary


def ray_startup(workers: int) -> float:
    from snnsim.datasets.run import _RayEngine

    t = time.perf_counter()
    engine = _RayEngine((MODELS, None, HARDWARE, 1), workers, None)
    seconds = time.perf_counter() - t
    engine.close()
    return seconds


class _TimedWorker:
    """A CountingWorker whose chunk call also says how long it computed inside the worker, so
    the round trip minus that is what the task itself cost (dispatch, serialisation, transfer)."""

    @staticmethod
    def make():
        from snnsim.datasets.worker import CountingWorker

        class TimedWorker(CountingWorker):
            def timed_chunk(self, *args):
                t = time.perf_counter()
                result = self.profile_chunk(*args)
                return result, time.perf_counter() - t

        return TimedWorker


def task_overhead(root, repeats: int, frames: int) -> dict:
    """One chunk (32 frames, or the sequence's) through one Ray actor, one call at a time: the
    round trip against the time the actor spent computing it; and the same chunk computed in
    this process, alternating, for the cost of computing in a Ray worker process at all."""
    from snnsim.datasets.run import CHUNK_FRAMES, import_ray

    worker_class = _TimedWorker.make()
    path = str(sorted(root.iterdir())[0])
    chunk = min(CHUNK_FRAMES, frames - 1)
    local = worker_class(MODELS, None, HARDWARE, 1)
    ray = import_ray()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        actor = ray.remote(num_cpus=1)(worker_class).remote(MODELS, None, HARDWARE, 1)
        local.timed_chunk(path, 0, chunk, True)      # warm both (first-call costs)
        ray.get(actor.timed_chunk.remote(path, 0, chunk, True))
        t = time.perf_counter()
        for _ in range(50):
            ray.get(actor.pid.remote())
        empty_call = (time.perf_counter() - t) / 50
        in_process, round_trip, in_actor, payload = [], [], [], 0
        for _ in range(repeats):
            in_process.append(local.timed_chunk(path, 0, chunk, True)[1])
            t = time.perf_counter()
            result, inside = ray.get(actor.timed_chunk.remote(path, 0, chunk, True))
            round_trip.append(time.perf_counter() - t)
            in_actor.append(inside)
            payload = len(json.dumps(result))
    finally:
        ray.shutdown()
    per_call = [r - i for r, i in zip(round_trip, in_actor)]
    return {"chunk_frames": chunk, "repeats": repeats, "result_json_bytes": payload,
            "empty_call_s": empty_call, "round_trip_s": round_trip, "in_actor_s": in_actor,
            "in_process_s": in_process, "overhead_s": statistics.median(per_call),
            "ray_process_compute_ratio": statistics.median(in_actor) / statistics.median(in_process)}


def per_frame_seconds(root, models: list[str], frames: int) -> dict:
    """Counted seconds per frame of each model on one chunk, in-process (after a warm-up)."""
    from snnsim.datasets.worker import CountingWorker

    path = str(sorted(root.iterdir())[0])
    out = {}
    for m in models:
        worker = CountingWorker([m], None, HARDWARE, 1)
        worker.profile_chunk(path, 0, 1, True)
        t = time.perf_counter()
        worker.profile_chunk(path, 1, frames, False)
        out[m] = (time.perf_counter() - t) / frames
        del worker
    return out


def projection(seconds_per_frame: float, efficiency: float) -> dict:
    frames = LASOT_TEST["frames"]
    one = frames * seconds_per_frame
    cluster = one / (CLUSTER_WORKERS * efficiency)
    return {"seconds_per_frame": seconds_per_frame, "one_worker_hours": one / 3600,
            f"{CLUSTER_WORKERS}_workers_hours": cluster / 3600}


def main(argv=None) -> None:
    from snnsim.datasets.run import CHUNK_FRAMES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=16)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5, help="alternating pairs for the per-task overhead")
    ap.add_argument("--official-frames", type=int, default=8, help="frames timed for the official-size pair")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="snnsim-scaling-") as tmp:
        tmp = pathlib.Path(tmp)
        root = tmp / "dataset"
        write_dataset(root, args.sequences, args.frames)
        w1, s1 = timed_run(root, tmp / "w1", 1)
        w2, s2 = timed_run(root, tmp / "w2", 2)
        same = (tmp / "w1" / "dataset_summary.json").read_bytes() == (tmp / "w2" / "dataset_summary.json").read_bytes()
        startup = ray_startup(2)
        overhead = task_overhead(root, args.repeats, args.frames)
        official_frames = min(args.official_frames, args.frames - 2)
        official = per_frame_seconds(root, OFFICIAL, official_frames)

    frames = s1["frames"]   # tracking frames counted per model (frame 0 of each sequence is the template)
    fps1, fps2 = frames / w1, frames / w2
    fps2_counting = frames / max(w2 - startup, 1e-9)
    speedup, speedup_counting = fps2 / fps1, fps2_counting / fps1
    efficiency = speedup_counting / 2
    seq_seconds = w1 / args.sequences
    tasks_per_sequence = 1 + -(-(args.frames - 1) // CHUNK_FRAMES)   # describe + chunks
    share = tasks_per_sequence * max(overhead["overhead_s"], 0.0) / seq_seconds
    per_frame_pair = w1 / frames
    result = {
        "what": "snnsim.profile_dataset on a synthetic dataset, --workers 1 (in-process) and 2 (embedded Ray) in "
                "the same run; frames/s over the whole call and over the counting alone (Ray start-up subtracted)",
        "dataset": {"sequences": args.sequences, "frames_per_sequence": args.frames,
                    "tracking_frames_per_model": frames, "writer": "snnsim.tracking.synthetic.write_sot_sequence "
                    "(256x256, seeds 0..N-1)"},
        "models": MODELS, "hardware": HARDWARE, "torch_threads_per_worker": 1,
        "machine": {"cpus": __import__("os").cpu_count(), "machine": platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "ray": __import__("ray").__version__},
        "one_worker": {"wall_s": w1, "frames_per_s": fps1},
        "two_workers": {"wall_s": w2, "frames_per_s": fps2, "frames_per_s_counting": fps2_counting},
        "speedup": speedup, "speedup_counting": speedup_counting, "target_speedup": 1.8,
        "same_summary_bytes": same,
        "ray_startup_s": startup,
        "per_task": {**overhead, "tasks_per_sequence": tasks_per_sequence, "sequence_seconds_1_worker": seq_seconds,
                     "share_of_sequence": share, "target_share": 0.05},
        "projection": {
            "dataset": LASOT_TEST, "cluster_workers": CLUSTER_WORKERS, "parallel_efficiency": efficiency,
            "how": "frames x measured seconds per frame (both models of the pair, 1 worker); the cluster divides "
                   "by workers x the 2-worker run's parallel efficiency (speedup_counting / 2)",
            "pairs": {"+".join(MODELS): projection(per_frame_pair, efficiency),
                      "+".join(OFFICIAL): {**projection(sum(official.values()), efficiency),
                                          "seconds_per_frame_each": official,
                                          "frames_timed": official_frames}},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"1 worker {fps1:.2f} frames/s; 2 workers {fps2:.2f} frames/s ({speedup:.2f}x; counting alone "
          f"{speedup_counting:.2f}x); Ray start-up {startup:.1f} s; per-task overhead "
          f"{overhead['overhead_s'] * 1000:.1f} ms ({share:.2%} of a sequence); a chunk computes "
          f"{overhead['ray_process_compute_ratio']:.3f}x as long in a Ray worker; same summary: {same}")
    print(f"wrote {args.out}")
    if not same:
        sys.exit("the 1- and 2-worker summaries differ")


if __name__ == "__main__":
    main()
