"""Loihi emulation speed: lava-nc 0.10.0 (fixed_pt) beside snnsim's emulator, one run.

Segment: RingBuffer spikes 32x32x8 -> Conv 3x3 (pad 1) -> LIF 32x32x16 -> Conv 3x3 (pad 1) ->
LIF 32x32x16, built once as lava processes; the emulator network comes from
``snnsim.loihi.from_lava`` on the same processes. lava runs 1 step (compile, process start
and the first step, timed apart) and then STEPS steps, timed; the emulator runs the same
1 + STEPS steps recording u, v and s of both LIFs, batch 1 and batched (BATCH different
inputs at once). The final u and v of both LIFs must equal lava's bit for bit.
Writes benchmarks/results/loihi_speed.json.
"""
from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import time

import numpy as np
import torch

STEPS, BATCH, REPEATS = 100, 16, 3
THREADS = int(os.environ.get("SNNSIM_BENCH_THREADS", "1"))  # 2 OpenMP threads stall on a loaded 2-core box
OUT = pathlib.Path(__file__).with_name("results") / "loihi_speed.json"


def build(seed: int = 0):
    from lava.proc.conv.process import Conv
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF

    rng = np.random.default_rng(seed)
    data = (rng.random((32, 32, 8, STEPS + 1)) < 0.1).astype(np.int32)
    src = RingBuffer(data=data)
    conv1 = Conv(weight=rng.integers(-72, 64, size=(16, 3, 3, 8)), input_shape=(32, 32, 8), padding=1,
                 name="conv1")
    lif1 = LIF(shape=(32, 32, 16), du=2000, dv=1000, vth=100, name="lif1")
    conv2 = Conv(weight=rng.integers(-72, 64, size=(16, 3, 3, 16)), input_shape=(32, 32, 16), padding=1,
                 name="conv2")
    lif2 = LIF(shape=(32, 32, 16), du=2000, dv=1000, vth=100, name="lif2")
    src.s_out.connect(conv1.s_in)
    conv1.a_out.connect(lif1.a_in)
    lif1.s_out.connect(conv2.s_in)
    conv2.a_out.connect(lif2.a_in)
    return src, (lif1, lif2), data


def time_lava(lifs):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    runner = lifs[-1]
    t0 = time.perf_counter()
    runner.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
    t1 = time.perf_counter()
    runner.run(condition=RunSteps(num_steps=STEPS), run_cfg=cfg)
    t2 = time.perf_counter()
    try:
        final = {lif.name: {"u": np.asarray(lif.u.get()).astype(np.int64),
                            "v": np.asarray(lif.v.get()).astype(np.int64)} for lif in lifs}
    finally:
        runner.stop()
    return dict(first_step_incl_compile_s=t1 - t0, steps_s=t2 - t1, per_step_ms=(t2 - t1) / STEPS * 1e3), final


def timed(fn):
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> dict:
    import lava
    from snnsim.loihi import from_lava

    torch.set_num_threads(THREADS)
    src, lifs, data = build()
    t0 = time.perf_counter()
    net = from_lava(src)
    build_s = time.perf_counter() - t0

    lava_t, lava_final = time_lava(lifs)

    n = STEPS + 1
    res = {}
    emu_b1 = timed(lambda: res.update(net.run(n)))
    bitexact = all(np.array_equal(net.last_state[name][k][0].numpy(), lava_final[name][k])
                   for name in lava_final for k in ("u", "v"))
    rates = {name: float(r["s"].mean()) for name, r in res.items()}
    emu_b1_norec = timed(lambda: net.run(n, record=()))

    rng = np.random.default_rng(1)
    batch = np.stack([data] + [(rng.random(data.shape) < 0.1).astype(np.int32) for _ in range(BATCH - 1)])
    emu_bB = timed(lambda: net.run(n, inputs={src.name: batch}))
    batched_first_equal = all(np.array_equal(net.last_state[name][k][0].numpy(), lava_final[name][k])
                              for name in lava_final for k in ("u", "v"))

    lava_step = lava_t["per_step_ms"]
    b1_step = emu_b1 / n * 1e3
    bB_step = emu_bB / n * 1e3
    result = {
        "what": "lava-nc fixed_pt vs snnsim emulator, same lava processes (emulator via from_lava), one run",
        "segment": "RingBuffer 32x32x8 binary (p=0.1) -> Conv 3x3 pad 1 -> LIF 32x32x16 -> Conv 3x3 pad 1 "
                   "-> LIF 32x32x16",
        "steps": STEPS,
        "lava": {**lava_t, "version": getattr(lava, "__version__", "0.10.0")},
        "emulator": {
            "from_lava_build_s": build_s,
            "batch1_per_step_ms": b1_step,
            "batch1_per_step_ms_no_recording": emu_b1_norec / n * 1e3,
            "batch": BATCH,
            "batched_per_step_ms": bB_step,
            "batched_per_sample_step_ms": bB_step / BATCH,
            "records": "u, v (int32) and s (int8) of both LIFs, every step",
            "spike_rates": rates,
        },
        "speedup_batch1": lava_step / b1_step,
        "speedup_batched_throughput": lava_step / (bB_step / BATCH),
        "final_state_bitexact_vs_lava": bool(bitexact and batched_first_equal),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "note": "wall-clock, shared machine; lava's time is STEPS steps after its compile/start step",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    r = main()
    print(json.dumps({k: r[k] for k in ("lava", "emulator", "speedup_batch1", "speedup_batched_throughput",
                                        "final_state_bitexact_vs_lava", "threads")}, indent=2))
