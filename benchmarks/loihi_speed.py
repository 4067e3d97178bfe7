"""Loihi emulation speed: lava-nc 0.10.0 (fixed_pt) beside snnsim's emulator, one run.

Segment: RingBuffer spikes 32x32x8 -> Conv 3x3 (pad 1) -> LIF 32x32x16 -> Conv 3x3 (pad 1) ->
LIF 32x32x16, built once as lava processes; the emulator network comes from
``snnsim.loihi.from_lava`` on the same processes. lava runs 1 step (compile, process start
and the first step, timed apart), then STEPS steps in CHUNKS timed chunks; the emulator runs
the same 1 + STEPS steps, with and without recording u, v and s of both LIFs, at batch 1 and
batched (different inputs at once; speedups per sample). The final u and v of both LIFs
(sample 0) must equal lava's bit for bit. Times: best wall clock and CPU time (lava's CPU is
its worker processes' too), one torch thread. Writes benchmarks/results/loihi_speed.json.

Second entry, ``spiketrack_tiny_segment``: the mapped stem + first stage of spiketrack-tiny
(snnsim.loihi.mapper.extract_segment: host downsample1_1 currents injected through a RingBuffer
-> ConvBlock1_1 with its residual adds -> spikes of downsample1_2; 6 graded-neuron populations
of 64 x 64, 5 graded Convs), built in lava from the custom GradedNeuron process
(snnsim.loihi.lava_graded) and in snnsim's lava-timed emulator (snnsim.loihi.graded), the same
1 + SEG_STEPS steps (SEG_FRAMES search crops, each held 6 steps), side by side. The final u and
spike payload of every population must equal lava's. ``--segment-only`` re-measures this entry
and keeps the others.

``--table`` measures the issue's table in one run: the conv segment above, the same at 64x64x16,
a Dense 1024-1024-1024 LIF network at low and at high firing, a Sparse 2048-2048-1024 network,
each lava beside the emulator (batch 1 on what backend='auto' picks and on each backend --
compiled, fused, torch -- batches 4 and 8 on auto's pick), plus the mapped
spiketrack-tiny segment's entry; it writes the ``table`` entry and keeps the others.

``--device cuda`` (with ``--table``) adds a CUDA column: each row's torch backend on the GPU at
batches 1, 4 and 8 (bit-exact against lava like the CPU runs); the segment entry is measured
again with it. Without a GPU it stops at once with one line and exit code 2.
"""
from __future__ import annotations

import json
import os
import pathlib
import platform
import resource
import time

import numpy as np
import torch

STEPS, REPEATS, CHUNKS = 100, 5, 5
SEG_FRAMES, SEG_CHUNKS = 10, 5
BATCHES = (1, 4, 8)
THREADS = int(os.environ.get("SNNSIM_BENCH_THREADS", "1"))  # 2 OpenMP threads stall on a loaded 2-core box
OUT = pathlib.Path(__file__).with_name("results") / "loihi_speed.json"
DEVICE = None   # --device cuda: the table's CUDA column (the torch backend on that device)


def build(seed: int = 0):
    return _build_conv(seed, 32)


def _build_conv(seed: int, size: int):
    """RingBuffer size x size x 8 binary (p = 0.1) -> Conv 3x3 pad 1 -> LIF x16 -> Conv -> LIF x16."""
    from lava.proc.conv.process import Conv
    from lava.proc.io.source import RingBuffer

    rng = np.random.default_rng(seed)
    data = (rng.random((size, size, 8, STEPS + 1)) < 0.1).astype(np.int32)
    src = RingBuffer(data=data)
    convs = [Conv(weight=rng.integers(-72, 64, size=(16, 3, 3, c)), input_shape=(size, size, c), padding=1,
                  name=f"conv{i + 1}") for i, c in enumerate((8, 16))]
    return src, _lif_chain(src, convs, [(size, size, 16)] * 2), data


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _time_runner(runner, steps, chunks, read_final):
    """Run a lava network: 1 step (compile, start), then ``steps`` steps in ``chunks`` timed
    pieces. Returns wall times, the CPU time of this process and of lava's worker processes
    (known once they are joined), and ``read_final()`` read before the runner stops."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    c0, s0 = _children_cpu(), _self_cpu()
    t0 = time.perf_counter()
    runner.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
    t1 = time.perf_counter()
    s1 = _self_cpu()
    per_chunk = [steps // chunks] * chunks if chunks else []
    chunk_per_step = []
    for k in per_chunk:
        w = time.perf_counter()
        runner.run(condition=RunSteps(num_steps=k), run_cfg=cfg)
        chunk_per_step.append((time.perf_counter() - w) / k)
    t2 = time.perf_counter()
    s2 = _self_cpu()
    try:
        final = read_final()
    finally:
        runner.stop()
    return dict(first_wall_s=t1 - t0, steps_wall_s=t2 - t1, chunk_per_step_s=chunk_per_step,
                self_cpu_first_s=s1 - s0, self_cpu_steps_s=s2 - s1, children_cpu_s=_children_cpu() - c0), final


def time_lava(lifs, steps):
    """lava on the LIF chain: STEPS steps in CHUNKS timed pieces; final u, v of the LIFs."""
    return _time_runner(lifs[-1], steps, CHUNKS if steps else 0, lambda: {
        lif.name: {"u": np.asarray(lif.u.get()).astype(np.int64), "v": np.asarray(lif.v.get()).astype(np.int64)}
        for lif in lifs})


def final_bitexact(net, final: dict, keys=(("u", "u"), ("v", "v"))) -> bool:
    """Sample 0's final state of the emulator's last run equals lava's (``keys``: pairs of the
    emulator's last_state name and lava's record name)."""
    return all(np.array_equal(net.last_state[name][mine][0].numpy(), final[name][theirs])
               for name in final for mine, theirs in keys)


def timed(fn):
    """Best (min) wall and CPU seconds of REPEATS calls after a warm-up (the machine is shared:
    the minimum is the least disturbed run; lava's chunks are taken the same way)."""
    fn()
    walls, cpus = [], []
    for _ in range(REPEATS):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> dict:
    from snnsim.loihi import fixed_point as fp
    from snnsim.loihi import from_lava

    torch.set_num_threads(THREADS)
    n = STEPS + 1

    # lava, twice: 1 step only (its start-up CPU), then 1 + STEPS steps
    _, lifs0, _ = build()
    base, _ = time_lava(lifs0, 0)
    src, lifs, data = build()
    t0 = time.perf_counter()
    net = from_lava(src)
    build_s = time.perf_counter() - t0
    lv, lava_final = time_lava(lifs, STEPS)
    lava_wall = min(lv["chunk_per_step_s"])
    lava_cpu = (lv["children_cpu_s"] - base["children_cpu_s"] + lv["self_cpu_steps_s"]) / STEPS

    rows = []
    rng = np.random.default_rng(1)
    backend = "fused" if fp.lif_fused_kernel() is not None else "torch"
    for B in BATCHES:
        for rec in (True, False):
            if B == 1:
                inputs = None
            else:
                inputs = {src.name: np.stack([data] + [(rng.random(data.shape) < 0.1).astype(np.int8)
                                                      for _ in range(B - 1)])}
            wall, cpu = timed(lambda: net.run(n, inputs=inputs, record=("u", "v", "s") if rec else (),
                                              backend=backend))
            exact = final_bitexact(net, lava_final)
            rows.append(dict(batch=B, recording=rec, per_step_ms=wall / n * 1e3,
                             cpu_per_step_ms=cpu / n * 1e3,
                             per_sample_step_ms=wall / n / B * 1e3, cpu_per_sample_step_ms=cpu / n / B * 1e3,
                             speedup_wall=lava_wall / (wall / n / B), speedup_cpu=lava_cpu / (cpu / n / B),
                             final_state_sample0_bitexact=bool(exact)))
    torch_wall, torch_cpu = timed(lambda: net.run(n, backend="torch"))
    res = net.run(n)
    rates = {name: float(r["s"].mean()) for name, r in res.items()}

    b1 = next(r for r in rows if r["batch"] == 1 and r["recording"])
    best = max((r for r in rows if r["recording"]), key=lambda r: r["speedup_wall"])
    result = {
        "what": "lava-nc fixed_pt vs snnsim emulator on the same lava processes (emulator via from_lava), one run",
        "segment": "RingBuffer 32x32x8 binary (p=0.1) -> Conv 3x3 pad 1 -> LIF 32x32x16 -> Conv 3x3 pad 1 "
                   "-> LIF 32x32x16",
        "steps": STEPS,
        "lava": {"per_step_ms": lava_wall * 1e3, "cpu_per_step_ms": lava_cpu * 1e3,
                 "per_step_ms_mean": lv["steps_wall_s"] / STEPS * 1e3,
                 "chunk_per_step_ms": [round(c * 1e3, 3) for c in lv["chunk_per_step_s"]],
                 "first_step_incl_compile_s": lv["first_wall_s"], "version": "0.10.0",
                 "monitors": "none (timed run); final u, v read with Var.get()"},
        "emulator": {"backend": backend, "from_lava_build_s": build_s, "runs": rows,
                     "torch_backend_batch1_per_step_ms": torch_wall / n * 1e3,
                     "torch_backend_batch1_cpu_per_step_ms": torch_cpu / n * 1e3,
                     "records": "u, v (int32) and s (int8) of both LIFs, every step, when recording",
                     "spike_rates": rates},
        "speedup_batch1_wall": b1["speedup_wall"],
        "speedup_batch1_cpu": b1["speedup_cpu"],
        "speedup_best_batched_wall": best["speedup_wall"],
        "speedup_best_batched_batch": best["batch"],
        "final_state_bitexact_vs_lava": all(r["final_state_sample0_bitexact"] for r in rows),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": ("wall-clock and CPU time on a shared, loaded 2-core machine; lava's per-step wall time is "
                 "the best of CHUNKS timed chunks of its STEPS steps (after its compile/start step), the "
                 "emulator's the best of REPEATS runs of 1 + STEPS steps; lava CPU = its worker processes' "
                 "CPU (less a 1-step run's) + the parent's, over the STEPS steps; emulator speedups are "
                 "per sample (lava runs one input at a time)"),
    }
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if "spiketrack_tiny_segment" in old:
        result["spiketrack_tiny_segment"] = old["spiketrack_tiny_segment"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


# --------------------------------------------------------------------------- the table
def _lif_chain(src, synapses, shapes, vth=100):
    """src -> synapse -> LIF -> synapse -> LIF ... (lava processes); returns the LIFs."""
    from lava.proc.lif.process import LIF

    lifs, prev = [], src.s_out
    for i, (syn, shape) in enumerate(zip(synapses, shapes)):
        lif = LIF(shape=shape, du=2000, dv=1000, vth=vth, name=f"lif{i + 1}")
        prev.connect(syn.s_in)
        syn.a_out.connect(lif.a_in)
        lifs.append(lif)
        prev = lif.s_out
    return lifs


def build_conv64(seed: int = 0):
    return _build_conv(seed, 64)


def _build_dense(seed: int, p_in: float, low: int, high: int, vth: int):
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer

    rng = np.random.default_rng(seed)
    data = (rng.random((1024, STEPS + 1)) < p_in).astype(np.int32)
    src = RingBuffer(data=data)
    dense = [Dense(weights=rng.integers(low, high, size=(1024, 1024)), name=f"dense{i + 1}") for i in range(3)]
    return src, _lif_chain(src, dense, [(1024,)] * 3, vth=vth), data


def build_dense_low(seed: int = 0):
    """Inputs 2 %, the layers about 1-6 %."""
    return _build_dense(seed, 0.02, -44, 38, 40)


def build_dense_high(seed: int = 0):
    """Inputs 20 %, the layers about 25 %."""
    return _build_dense(seed, 0.2, -40, 41, 30)


def build_sparse(seed: int = 0):
    """Two Sparse layers 2048 -> 2048 -> 1024 with 5 % of the synapses."""
    from lava.proc.io.source import RingBuffer
    from lava.proc.sparse.process import Sparse
    from scipy.sparse import random as sparse_random

    rng = np.random.default_rng(seed)
    data = (rng.random((2048, STEPS + 1)) < 0.1).astype(np.int32)
    src = RingBuffer(data=data)
    mats = [sparse_random(n_out, n_in, density=0.05, random_state=seed + i, format="csr",
                          data_rvs=lambda k: rng.integers(SPARSE_W[0], SPARSE_W[1], size=k)) for i, (n_out, n_in) in
            enumerate(((2048, 2048), (1024, 2048)))]
    syn = [Sparse(weights=m, name=f"sparse{i + 1}") for i, m in enumerate(mats)]
    return src, _lif_chain(src, syn, [(2048,), (1024,)], vth=SPARSE_W[2]), data


SPARSE_W = (-100, 90, 40)   # weight range and threshold: the two layers fire about 12 % and 20 %


TABLE = {"conv 32x32x16 (2 layers)": build, "conv 64x64x16 (2 layers)": build_conv64,
         "Dense 1024^3, low firing": build_dense_low, "Dense 1024^3, high firing": build_dense_high,
         "Sparse 2048-2048-1024, 5 % synapses": build_sparse}


LONG_STEPS = 1001   # the compiled backend's floor: runs long enough for their set-up not to count


def synaptic_additions(net, n: int) -> float:
    """Mean additions per step the compiled backend's event-driven sums make over ``n`` steps of
    ``net``'s own data, counted from the recorded spikes and the source data: per nonzero input,
    a Dense adds its row of W.T (n_out), a Sparse the column's stored weights, a Conv C_out /
    groups for every kernel tap that lands on an output -- counted as a convolution of the
    active inputs with a kernel of ones (each output adds the active inputs of its receptive
    field), not with the compiled backend's own tap geometry."""
    import torch.nn.functional as F

    from snnsim.loihi.emulator import ConvLayer, DenseLayer, RingBufferSource

    sent = {name: r["s"].reshape(n, -1) for name, r in net.run(n, record=("s",)).items()}
    for node in net.nodes.values():
        if isinstance(node, RingBufferSource):
            series = node.series(n)
            d = series.reshape(-1, series.shape[-1]).numpy()
            sent[node.name] = d[:, np.arange(n) % d.shape[1]].T
    total = 0.0
    for node in net.nodes.values():
        if not isinstance(node, (DenseLayer, ConvLayer)):
            continue
        (conn,) = net.inputs_of(node)
        active = sent[conn.src.name] != 0                              # (n, n_in)
        if isinstance(node, ConvLayer):
            mask = torch.from_numpy(active.reshape((n,) + node.in_shape)).permute(0, 3, 1, 2).double()
            ones = torch.ones((node.out_shape[2], node.in_shape[2] // node.groups) + tuple(node.weight.shape[1:3]),
                              dtype=torch.float64)
            total += float(F.conv2d(mask, ones, stride=node.stride, padding=node.padding, dilation=node.dilation,
                                    groups=node.groups).sum()) / n
            continue
        if node.kind == "sparse":
            per_input = (node.weights != 0).sum(0).numpy()
        else:
            per_input = np.full(node.in_shape[0], node.out_shape[0])
        total += float((active * per_input).sum()) / n
    return total


def compiled_floor(net, src, data) -> dict:
    """The compiled backend per step over LONG_STEPS steps, with the row's data (cycled) and with
    zero input: the difference is the event-driven work, the zero-input run the neurons' updates
    and the input scans; both without the run's set-up, which the table's runs include."""
    n = LONG_STEPS
    zeros = {src.name: np.zeros_like(data)}
    with_data, _ = timed(lambda: net.run(n, record=(), backend="compiled"))
    without, _ = timed(lambda: net.run(n, inputs=zeros, record=(), backend="compiled"))
    adds = synaptic_additions(net, n)
    return {"steps": n, "per_step_us": with_data / n * 1e6, "zero_input_per_step_us": without / n * 1e6,
            "synaptic_additions_per_step": adds,
            "ns_per_addition": (with_data - without) / n * 1e9 / adds if adds else None}


def measure_row(label: str, builder) -> dict:
    """lava and the emulator on one network: per (sample-)step wall time at batch 1 on what
    backend='auto' picks and on each backend (compiled where it covers the network, fused
    numba, torch), batches 4 and 8 on auto's pick; final u, v bit-exact against lava."""
    from snnsim.loihi import compiled
    from snnsim.loihi import fixed_point as fp
    from snnsim.loihi import from_lava

    src, lifs, data = builder()
    net = from_lava(src)
    lv, lava_final = time_lava(lifs, STEPS)
    lava_wall = min(lv["chunk_per_step_s"])
    n = STEPS + 1
    backends = ["auto"] + (["compiled"] if compiled.unsupported(net) is None else []) + \
        (["fused"] if fp.lif_fused_kernel() is not None else []) + ["torch"]
    rng = np.random.default_rng(1)
    runs = [_row_run(net, src, data, n, lava_wall, lava_final, B, backend, rng)
            for B, backend in [(1, b) for b in backends] + [(4, "auto"), (8, "auto")]]
    # the CUDA column: the torch backend on DEVICE (timed to the end of each run: its final state
    # comes back to the CPU, which waits for the GPU)
    rng = np.random.default_rng(1)
    cuda = [_row_run(net, src, data, n, lava_wall, lava_final, B, "torch", rng, DEVICE)
            for B in (BATCHES if DEVICE else ())]
    rates = {name: float(r["s"].mean()) for name, r in net.run(n, record=("s",)).items()}
    auto = [r for r in runs if r["backend"] == "auto"]
    floor = compiled_floor(net, src, data) if "compiled" in backends else None
    return {"row": label, "compiled_floor": floor, "lava_per_step_ms": lava_wall * 1e3, "emulator": runs,
            "cuda": cuda, "spike_rates": rates,
            "auto_picks": auto[0]["ran"], "speedup_batch1": auto[0]["speedup"],
            "per_sample_nonincreasing_with_batch":
                all(a["per_sample_step_ms"] >= b["per_sample_step_ms"] * 0.95 for a, b in zip(auto, auto[1:])),
            "bitexact": all(r["final_state_sample0_bitexact"] for r in runs + cuda)}


def _row_run(net, src, data, n, lava_wall, lava_final, B, backend, rng, device="cpu") -> dict:
    """One timed run of a table row's network: batch B (sample 0 the row's data, the others
    drawn at its firing rate), no recording; per-sample time, speedup, sample 0 bit-exact."""
    inputs = None if B == 1 else {src.name: np.stack([data] + [(rng.random(data.shape) < float(data.mean()))
                                                               .astype(np.int8) for _ in range(B - 1)])}
    wall, _ = timed(lambda: net.run(n, inputs=inputs, record=(), backend=backend, device=device))
    row = dict(batch=B, backend=backend, ran=net.last_backend, per_sample_step_ms=wall / n / B * 1e3,
               speedup=lava_wall / (wall / n / B), final_state_sample0_bitexact=final_bitexact(net, lava_final))
    return row if device == "cpu" else dict(row, device=device)


def _device_note() -> str:
    if not DEVICE:
        return ("no column: measured without --device cuda (no GPU on the machine that ran it); "
                "`python benchmarks/loihi_speed.py --table --device cuda` adds it on one")
    return (f"column 'cuda' of each row: the torch backend on {torch.cuda.get_device_name(DEVICE)} "
            f"(torch {torch.__version__}, CUDA {torch.version.cuda}), batches {', '.join(map(str, BATCHES))}")


def table_main() -> dict:
    torch.set_num_threads(THREADS)
    rows = [measure_row(label, builder) for label, builder in TABLE.items()]
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    seg = old.get("spiketrack_tiny_segment")
    if seg is not None:   # its own harness (graded neurons, a custom lava process): measured by segment_main
        rows.append({"row": "spiketrack-tiny mapped segment", "lava_per_step_ms": seg["lava"]["per_step_ms"],
                     "speedup_batch1": seg["speedup_batch1_wall_no_memo"],
                     "speedup_batch1_memo": seg["speedup_batch1_wall"], "bitexact": seg["final_state_bitexact_vs_lava"],
                     "emulator": seg["emulator"]["runs"], "cuda": seg.get("cuda", []),
                     "from": "spiketrack_tiny_segment (same file)"})
    old["table"] = {"what": "lava-nc fixed_pt vs the emulator per sample-step (wall, best of repeats; lava: best "
                            "of its timed chunks), batch 1 on backend='auto' (the backend it picks: 'ran') and on "
                            "each backend (compiled where it covers the network, fused, torch), batches 4 and 8 "
                            "on 'auto', no recording, runs of 1 + STEPS steps (set-up included); the same lava "
                            "processes (emulator via from_lava), one run per row",
                    "target": "at least 100x at batch 1 on CPU; per-sample cost non-increasing with batch",
                    "cuda": _device_note(),
                    "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(old, indent=2) + "\n")
    return old["table"]


# --------------------------------------------------------------------------- mapped segment
def _segment():
    """Mapping, segment spec and SEG_FRAMES frames of entry currents of spiketrack-tiny (golden
    weights: deterministic and spiking, whatever checkpoint is installed)."""
    from snnsim.loihi.mapper import golden_segment

    s = golden_segment(SEG_FRAMES)
    return s["mapping"], s["seg"], s["cur"]


def time_lava_segment(seg, cur, hold, steps):
    """lava on the mapped segment: ``steps`` steps in SEG_CHUNKS timed chunks; final u, k."""
    import warnings

    from snnsim.loihi.lava_graded import build_segment_lava

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pops, _ = build_segment_lava(seg, cur.numpy(), hold)
        return _time_runner(next(iter(pops.values())), steps, SEG_CHUNKS, lambda: {
            name: {"u": np.asarray(p.u.get()).astype(np.int64), "s": np.asarray(p.k.get()).astype(np.int64)}
            for name, p in pops.items()})


def segment_main() -> dict:
    from snnsim.loihi import graded

    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    mapping, seg, cur = _segment()
    prep_s = time.perf_counter() - t0
    hold = seg.settle_steps
    steps = (SEG_FRAMES * hold - 1) // SEG_CHUNKS * SEG_CHUNKS   # lava: 1 + steps, in SEG_CHUNKS equal chunks
    n = steps + 1
    lv, final = time_lava_segment(seg, cur, hold, steps)
    lava_wall = min(lv["chunk_per_step_s"])
    lava_cpu = (lv["children_cpu_s"] + lv["self_cpu_steps_s"]) / steps
    net = graded.build_segment_network(seg, cur, hold)
    backend = "fused" if graded.graded_fused_kernel() is not None else "torch"
    rows = []
    rng = np.random.default_rng(0)

    def batch_inputs(B):   # sample 0 the frames in order, the others the same frames shuffled
        if B == 1:
            return None
        extra = [cur[torch.from_numpy(rng.permutation(SEG_FRAMES))] for _ in range(B - 1)]
        return {"entry": graded.segment_ringbuffer(torch.stack([cur] + extra), hold)}

    for B, rec, memo in ((1, True, True), (1, False, True), (1, True, False), (4, True, True), (4, False, True)):
        inputs = batch_inputs(B)
        wall, cpu = timed(lambda: net.run(n, inputs=inputs, record=("u", "s") if rec else (), backend=backend,
                                          memo=memo))
        exact = final_bitexact(net, final, (("u", "u"), ("k", "s")))
        rows.append(dict(batch=B, recording=rec, memo=memo, per_step_ms=wall / n * 1e3,
                         cpu_per_step_ms=cpu / n * 1e3,
                         per_sample_step_ms=wall / n / B * 1e3, speedup_wall=lava_wall / (wall / n / B),
                         speedup_cpu=lava_cpu / (cpu / n / B), final_state_sample0_bitexact=bool(exact),
                         backend=net.last_backend))
    cuda_rows = []
    for B in BATCHES if DEVICE else ():
        inputs = batch_inputs(B)
        wall, _ = timed(lambda: net.run(n, inputs=inputs, record=(), backend="torch", device=DEVICE))
        exact = final_bitexact(net, final, (("u", "u"), ("k", "s")))
        cuda_rows.append(dict(batch=B, recording=False, memo=True, device=DEVICE, per_step_ms=wall / n * 1e3,
                              per_sample_step_ms=wall / n / B * 1e3, speedup_wall=lava_wall / (wall / n / B),
                              final_state_sample0_bitexact=bool(exact), backend=net.last_backend))
    torch_wall, _ = timed(lambda: net.run(n, backend="torch", record=()))
    res = net.run(n)
    rates = {name: float((r["s"] > 0).mean()) for name, r in res.items()}
    b1 = next(r for r in rows if r["batch"] == 1 and r["recording"] and r["memo"])
    b1n = next(r for r in rows if r["batch"] == 1 and not r["recording"])
    b1m = next(r for r in rows if r["batch"] == 1 and not r["memo"])
    return {
        "what": "mapped spiketrack-tiny stem + first stage: lava-nc (custom GradedNeuron process, fixed_pt) vs "
                "snnsim's lava-timed emulator (GradedNetwork), same segment spec, same steps, one run",
        "segment": {"entry": seg.entry + " (host; integer currents injected by a RingBuffer)",
                    "populations": {k: list(v["shape"]) for k, v in seg.sites.items()},
                    "convs": list(seg.layers), "pipeline_depth": seg.depth, "hold_steps_per_frame": hold,
                    "frames": SEG_FRAMES, "weights": mapping.weights},
        "steps": n,
        "lava": {"per_step_ms": lava_wall * 1e3, "cpu_per_step_ms": lava_cpu * 1e3,
                 "per_step_ms_mean": lv["steps_wall_s"] / steps * 1e3,
                 "chunk_per_step_ms": [round(c * 1e3, 3) for c in lv["chunk_per_step_s"]],
                 "first_step_incl_compile_s": lv["first_wall_s"],
                 "monitors": "none (timed run); final u, k read with Var.get()"},
        "emulator": {"backend": backend, "runs": rows, "torch_backend_batch1_per_step_ms": torch_wall / n * 1e3,
                     "firing_rates": rates, "mapping_and_currents_s": prep_s},
        "cuda": cuda_rows,
        "speedup_batch1_wall": b1["speedup_wall"],
        "speedup_batch1_wall_no_recording": b1n["speedup_wall"],
        "speedup_batch1_wall_no_memo": b1m["speedup_wall"],
        "speedup_batch1_cpu": b1["speedup_cpu"],
        "final_state_bitexact_vs_lava": all(r["final_state_sample0_bitexact"] for r in rows),
        "threads": torch.get_num_threads(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": ("shared, loaded 2-core machine; lava per-step wall = best of SEG_CHUNKS timed chunks after its "
                 "compile step, emulator = best of REPEATS runs of the same 1 + steps; speedups per sample. memo: a "
                 "Conv whose input spikes equal the previous step's keeps its output (exact; with each frame held "
                 "6 steps, the deeper layers still recompute on most steps); lava recomputes every Conv every step"),
    }


def write_segment(entry: dict) -> None:
    data = json.loads(OUT.read_text()) if OUT.is_file() else {}
    data["spiketrack_tiny_segment"] = entry
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    import sys

    if "--device" in sys.argv:
        from snnsim.loihi import fixed_point as fp

        i = sys.argv.index("--device")
        given = sys.argv[i + 1] if i + 1 < len(sys.argv) else ""
        try:
            dev = fp.device_of(given)
            if "--table" not in sys.argv or dev.type != "cuda":
                raise ValueError("--device cuda[:N] goes with --table (the speed table's CUDA column; its CPU "
                                 "columns are measured without it)")
            if not torch.cuda.is_available():
                raise ValueError(f"--device {given}: no CUDA device on this machine (torch.cuda.is_available() is "
                                 f"False); run the table without --device")
            fp.require_device(dev)
        except ValueError as e:
            print(f"loihi_speed.py: {e}", file=sys.stderr)
            sys.exit(2)
        DEVICE = str(dev)
    if "--table" in sys.argv:
        if DEVICE:   # the segment row's CUDA runs come from its own harness
            write_segment(segment_main())
        for row in table_main()["rows"]:
            print(f"{row['row']:40s} lava {row['lava_per_step_ms']:8.3f} ms/step  {row['speedup_batch1']:6.1f}x  "
                  f"bit-exact {row['bitexact']}")
        sys.exit(0)
    if "--segment-only" not in sys.argv:
        main()
    seg_entry = segment_main()
    write_segment(seg_entry)
    print(json.dumps({k: seg_entry[k] for k in ("lava", "speedup_batch1_wall", "speedup_batch1_wall_no_recording",
                                                "speedup_batch1_wall_no_memo",
                                                "speedup_batch1_cpu", "final_state_bitexact_vs_lava",
                                                "load_average_at_end")}, indent=2))
    for row in seg_entry["emulator"]["runs"]:
        print(row)
    r = json.loads(OUT.read_text())
    print(json.dumps({k: r[k] for k in ("lava", "speedup_batch1_wall", "speedup_batch1_cpu",
                                        "speedup_best_batched_wall", "speedup_best_batched_batch",
                                        "final_state_bitexact_vs_lava", "threads", "load_average_at_end")},
                     indent=2))
    for row in r["emulator"]["runs"]:
        print(row)
