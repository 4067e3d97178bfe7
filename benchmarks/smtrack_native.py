"""SMTrack SpikeYOLOX-S: one detector forward at the native MOT17 size (608x1088, T = 4) on CPU.

Prints the timings and writes them to benchmarks/results/smtrack_native.json.

    .venv/bin/python benchmarks/smtrack_native.py [--threads 2] [--repeats 1] [--size 608 1088]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import torch

from snnsim.models.smtrack import build_smtrack, postprocess

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "smtrack_native.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="timed forwards (default 1; the first is also reported alone)")
    ap.add_argument("--size", type=int, nargs=2, default=(608, 1088), metavar=("H", "W"))
    ap.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    load_before = round(os.getloadavg()[0], 2)  # the machine may be shared: timings scale with load
    t0 = time.perf_counter()
    model = build_smtrack("s", input_size=tuple(args.size)).eval()
    model.load_golden()
    build_s = time.perf_counter() - t0
    x = model.example_inputs("random")["search"]

    times = []
    with torch.no_grad():
        for _ in range(args.repeats):
            t1 = time.perf_counter()
            out = model.forward_search(x, None)
            times.append(time.perf_counter() - t1)
        # the golden-fixture size, whose reference time (official code, unloaded 2-thread
        # AVX512 CPU) is 0.94 s: the ratio tells how loaded this machine was
        xg = model.example_inputs("golden")["search"]
        t3 = time.perf_counter()
        model.forward_search(xg, None)
        golden_s = time.perf_counter() - t3
        t2 = time.perf_counter()
        dets = postprocess(out["decoded"], conf_threshold=0.01, nms_threshold=0.7)
        post_s = time.perf_counter() - t2

    result = {
        "model": "smtrack-s (SpikeYOLOX-S detector)",
        "weights": "golden (deterministic fixture weights, gain 1.0)",
        "input": [1, 3, *args.size],
        "timesteps": model.timesteps,
        "params": sum(p.numel() for p in model.parameters()),
        "anchors": int(out["raw_before_decode"].shape[1]),
        "device": "cpu",
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_before": load_before,
        "processor": platform.processor() or platform.machine(),
        "build_and_load_s": round(build_s, 4),
        "forward_s": [round(t, 4) for t in times],
        "forward_first_s": round(times[0], 4),
        "forward_median_s": round(statistics.median(times), 4),
        "forward_256x448_s": round(golden_s, 4),
        "forward_256x448_reference_s": 0.94,
        "postprocess_s": round(post_s, 4),
        "detections_after_nms": int(dets[0].shape[0]),
        "note": "untrained golden weights on a random image: detections and firing are not the trained model's",
    }
    for k in ("input", "threads", "forward_s", "forward_256x448_s", "postprocess_s", "detections_after_nms"):
        print(f"{k:>20}: {result[k]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
