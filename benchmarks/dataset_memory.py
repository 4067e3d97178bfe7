"""Memory of a dataset run over one long sequence: is it flat?

One synthetic GOT-10k-style sequence of ``--frames`` frames (default 2,000, 256x256, written by
`snnsim.tracking.synthetic`) is profiled by ``snnsim.profile_dataset`` with ``--workers 1``: the
worker runs in this process beside the driver, so this process's resident memory (RSS, read from
/proc every 0.5 s by a thread) covers both. The worker holds one 32-frame chunk at a time; the
driver folds each chunk into the sequence's count tables as it arrives and keeps only the
sequence's per-frame rows (totals and energy, about 1 KiB a frame) until the sequence is written.

Flat means: after the first chunks (models built, first-call allocations done) RSS stops
growing with the frames counted. The result gives RSS at 10, 25, 50, 75 and 95 % of the run and
the growth from 10 % to 95 %, per 1,000 frames. Writes benchmarks/results/dataset_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import tempfile
import threading
import time

OUT = pathlib.Path(__file__).with_name("results") / "dataset_memory.json"
MODEL = "spiketrack-tiny"


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)

    import snnsim
    from snnsim.tracking.synthetic import write_sot_sequence

    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        t0 = time.perf_counter()
        while not done.is_set():
            samples.append((time.perf_counter() - t0, rss_mib()))
            done.wait(0.5)

    with tempfile.TemporaryDirectory(prefix="snnsim-memory-") as tmp:
        root = pathlib.Path(tmp) / "dataset"
        write_sot_sequence(root / "long", n_frames=args.frames, size=(256, 256), seed=0)
        before = rss_mib()
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t = time.perf_counter()
        summary = snnsim.profile_dataset(MODEL, root, pathlib.Path(tmp) / "out", hardware=["horowitz-45nm-fp32"],
                                         workers=1, quiet=True)
        seconds = time.perf_counter() - t
        done.set()
        thread.join()

    at = {}
    for p in (10, 25, 50, 75, 95):
        cut = seconds * p / 100
        at[f"{p}%"] = max(r for s, r in samples if s <= cut) if any(s <= cut for s, _ in samples) else None
    frames = summary["frames"]
    growth = (at["95%"] - at["10%"]) / (frames * 0.85 / 1000) if at["10%"] is not None else None
    result = {
        "what": "resident memory (RSS, MiB) of one process running snnsim.profile_dataset --workers 1 (driver and "
                "worker together) over one long sequence, sampled every 0.5 s; the value at each share of the run "
                "is the largest sample up to then",
        "model": MODEL, "frames": frames, "seconds": seconds, "rss_before_mib": before,
        "rss_at_mib": at, "rss_peak_mib": max(r for _, r in samples),
        "growth_10_to_95_mib_per_1000_frames": growth,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{frames} frames in {seconds:.0f} s; RSS " + ", ".join(f"{k} {v:.0f}" for k, v in at.items())
          + f" MiB; growth 10 -> 95 %: {growth:.1f} MiB per 1,000 frames")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
