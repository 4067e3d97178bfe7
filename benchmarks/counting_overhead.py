"""Counting overhead: counted forward / plain forward, snnsim beside its peers, one run.

Model: a 10-layer convolutional SNN with binary snnTorch Leaky neurons, T = 4 steps, run
step by step (the snnTorch way), so SpikingJelly's op_counter and NeuroBench's
SynapticOperations can count the very same model. Each tool's ratio is its counted time
over the plain time measured in the same process, plain and counted runs alternating, the
minimum of repeats of each (the least disturbed run on a shared machine).
Writes benchmarks/results/counting_overhead.json.
"""
from __future__ import annotations

import json
import pathlib
import platform
import time

import torch
from torch import nn

import snnsim

T, BATCH, CH, SIZE, LAYERS, REPEATS = 4, 8, 32, 32, 10, 11
OUT = pathlib.Path(__file__).with_name("results") / "counting_overhead.json"


def build():
    import snntorch as snn

    torch.manual_seed(0)
    layers = []
    for i in range(LAYERS):
        last = i == LAYERS - 1  # NeuroBench's wrapper wants (spikes, membrane) from the net
        layers += [nn.Conv2d(3 if i == 0 else CH, CH, 3, padding=1),
                   snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, output=last)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(2.0)
    return net


def run_steps(net, data):
    from snntorch import utils

    utils.reset(net)
    for t in range(data.shape[1]):
        net(data[:, t])


def _once(fn) -> tuple[float, float]:
    # Process CPU time is the headline: on a shared machine other processes stretch wall
    # time but barely touch the CPU time this process itself spends. Wall time is kept too.
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def paired(plain_fn, counted_fn, repeats=REPEATS) -> dict:
    """Plain and counted runs alternate, so a busy machine slows both alike; the minimum
    time of each is the least disturbed run."""
    plain_fn(), counted_fn()  # warm-up
    plain, counted = [], []
    for _ in range(repeats):
        plain.append(_once(plain_fn))
        counted.append(_once(counted_fn))
    cpu_p, cpu_c = min(t[0] for t in plain), min(t[0] for t in counted)
    wall_p, wall_c = min(t[1] for t in plain), min(t[1] for t in counted)
    return {"plain_s": cpu_p, "counted_s": cpu_c, "ratio": cpu_c / cpu_p,
            "plain_wall_s": wall_p, "counted_wall_s": wall_c, "wall_ratio": wall_c / wall_p}


def main():
    torch.set_num_threads(2)
    net = build()
    data = (torch.rand(BATCH, T, 3, SIZE, SIZE) > 0.5).float()   # binary input spikes
    results = {}

    with torch.no_grad():
        def plain_run():
            run_steps(net, data)

        def snnsim_counted():
            with snnsim.Profiler(net) as prof:
                run_steps(net, data)
            return prof.result(batch_size=BATCH)

        results["snnsim"] = paired(plain_run, snnsim_counted)
        results["snnsim"]["syn_events_per_sample"] = snnsim_counted().totals["syn_events"]

        from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter

        def sj_counted():
            counter = SynOpCounter()
            with DispatchCounterMode([counter]):
                run_steps(net, data)
            return counter.get_total()

        results["spikingjelly_op_counter"] = paired(plain_run, sj_counted)
        results["spikingjelly_op_counter"]["syn_ops_per_sample"] = sj_counted() / BATCH

    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel

    loader = torch.utils.data.DataLoader(list(zip(data, torch.zeros(BATCH))), batch_size=BATCH)
    results["neurobench"] = paired(
        lambda: Benchmark(SNNTorchModel(net), loader, [], [], [[], []]).run(quiet=True),
        lambda: Benchmark(SNNTorchModel(net), loader, [], [], [[], [SynapticOperations]]).run(quiet=True))
    nb = Benchmark(SNNTorchModel(net), loader, [], [], [[], [SynapticOperations]]).run(quiet=True)
    results["neurobench"]["effective_acs_per_sample"] = nb["SynapticOperations"]["Effective_ACs"]

    report = {
        "what": "counted forward / plain forward, process CPU time (ratio) and wall time (wall_ratio), min of alternating repeats, same model and input, same process",
        "model": f"{LAYERS}-layer conv SNN, {CH} ch, {SIZE}x{SIZE}, snnTorch Leaky (binary), T={T}, batch {BATCH}",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
        "processor": platform.processor() or "unknown", "repeats": REPEATS, "results": results,
        "counts_agree": abs(results["snnsim"]["syn_events_per_sample"]
                            - results["spikingjelly_op_counter"]["syn_ops_per_sample"]) < 1e-6,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    for tool, r in results.items():
        print(f"{tool:26s} plain {r['plain_s']*1e3:8.1f} ms  counted {r['counted_s']*1e3:8.1f} ms CPU  "
              f"ratio {r['ratio']:.2f}x  (wall {r['wall_ratio']:.2f}x)")
    print(f"counts agree: {report['counts_agree']}; written to {OUT}")


if __name__ == "__main__":
    main()
