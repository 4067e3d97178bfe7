"""Counts against peer tools, on cases where the peer is right — and one where it is not."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import snnsim
from snnsim import SpikeFormat


def snntorch_net():
    import snntorch as snn

    class Net(nn.Module):
        """Binary snnTorch MLP + unpadded conv: NeuroBench's dense count equals the nominal one
        only without padding, so the peer is right here."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)              # 6x6 -> 4x4, no padding
            self.lif1 = snn.Leaky(beta=0.8, init_hidden=True)
            self.fc1 = nn.Linear(64, 32)
            self.lif2 = snn.Leaky(beta=0.8, init_hidden=True)
            self.fc2 = nn.Linear(32, 10)
            self.lif3 = snn.Leaky(beta=0.8, init_hidden=True, output=True)

        def forward(self, x):
            s = self.lif1(self.conv(x))
            s = self.lif2(self.fc1(s.flatten(1)))
            return self.lif3(self.fc2(s))

    torch.manual_seed(3)
    net = Net()
    with torch.no_grad():
        for m in (net.conv, net.fc1, net.fc2):
            m.weight.mul_(4.0)
    return net


def test_neurobench_synaptic_operations_binary_snntorch():
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel
    from snntorch import utils

    torch.manual_seed(0)
    data = (torch.rand(2, 5, 1, 6, 6) > 0.4).float()   # [B, T, C, H, W] binary input
    labels = torch.zeros(2)
    net = snntorch_net()
    loader = torch.utils.data.DataLoader(list(zip(data, labels)), batch_size=2)
    bench = Benchmark(SNNTorchModel(net), loader, [], [], [[], [SynapticOperations]])
    peer = bench.run(quiet=True)["SynapticOperations"]

    # snnsim on the same model and input: one profiled call per timestep, summed.
    utils.reset(net)
    with torch.no_grad(), snnsim.Profiler(net) as prof:
        for t in range(data.shape[1]):
            net(data[:, t])
    p = prof.result(batch_size=2)
    # the first layer sees binary input spikes too, so everything is an AC
    assert peer["Effective_MACs"] == 0
    assert p.totals["mac_ops"] == 0
    assert p.totals["syn_events"] == pytest.approx(peer["Effective_ACs"])
    assert p.totals["dense_macs"] == pytest.approx(peer["Dense"])
    assert p.totals["syn_events"] > 0 and p.totals["syn_events"] < p.totals["dense_macs"]
    # neurons: 3 modules x 5 timesteps, each module called once per step
    assert len(p.neurons) == 15 and set(p.neurons.framework) == {"snntorch"}


def spikingjelly_net(step_mode="m"):
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(1)
    net = nn.Sequential(
        layer.Conv2d(2, 8, 3, padding=1), neuron.IFNode(v_threshold=0.5),
        layer.Conv2d(8, 8, 3, stride=2, padding=1), neuron.LIFNode(v_threshold=0.5),
        layer.Flatten(), layer.Linear(8 * 4 * 4, 10), neuron.IFNode(),
    )
    functional.set_step_mode(net, step_mode)
    return net


def test_spikingjelly_synops_binary_multistep():
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter

    torch.manual_seed(2)
    x = (torch.rand(4, 3, 2, 8, 8) > 0.5).float()     # [T, B, C, H, W] binary: all layers synaptic
    net = spikingjelly_net("m")
    counter = SynOpCounter()
    with torch.no_grad(), DispatchCounterMode([counter]):
        net(x)
    peer = counter.get_total()
    functional.reset_net(net)
    p = snnsim.profile(net, x, batch_size=3)
    assert p.totals["syn_events"] * 3 == pytest.approx(peer)   # peer counts the whole batch
    assert set(p.neurons.framework) == {"spikingjelly"}
    assert p.timesteps == 4


def test_spikingjelly_single_step_neurons_count_steps():
    from spikingjelly.activation_based import functional

    net = spikingjelly_net("s")
    x = (torch.rand(3, 2, 8, 8) > 0.5).float()
    with torch.no_grad(), snnsim.Profiler(net) as prof:
        for _ in range(4):
            net(x)
    functional.reset_net(net)
    n = prof.result(batch_size=3).neurons
    assert sorted(n.t.unique()) == [0, 1, 2, 3]
    assert (n.groupby("module").size() == 4).all()


def test_spikingjelly_prices_graded_spikes_as_macs():
    """SpikingJelly treats only {0,1} as spikes: SMTrack-style integer levels become MACs there,
    synaptic events here."""
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter

    torch.manual_seed(4)
    x = torch.randint(0, 5, (1, 6)).float()            # I-LIF integer levels 0..4
    x[0, 0], x[0, 1] = 3.0, 0.0
    lin = nn.Linear(6, 5, bias=False)
    syn, mac = SynOpCounter(), MACCounter()
    with torch.no_grad(), DispatchCounterMode([syn, mac]):
        lin(x)
    ours = snnsim.profile(lin, x, spike_formats=[SpikeFormat(1.0, 4)])
    nonzero = int((x != 0).sum())
    assert syn.get_total() == 0                       # not a spike to SpikingJelly
    assert mac.get_total() == 6 * 5                   # priced as dense MACs
    assert ours.totals["mac_ops"] == 0
    assert ours.totals["syn_events"] == nonzero * 5
    assert ours.totals["syn_ops"] == x.sum().item() * 5


def test_flop_counter_dense_macs_small_cnn():
    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.fc = nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            y = self.up(torch.relu(self.c2(torch.relu(self.c1(x)))))
            a = y.flatten(2)
            att = torch.softmax(a @ a.transpose(1, 2), -1) @ a      # bmm twice
            return self.fc(att.flatten(1))

    torch.manual_seed(0)
    model, x = CNN(), torch.randn(2, 3, 8, 8)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    p = snnsim.profile(model, x)
    assert p.totals["dense_macs"] * 2 == fc.get_total_flops() / 2  # flop_counter: 2 FLOPs per MAC, whole batch
    assert p.totals["mac_ops"] == p.totals["dense_macs"]


def test_norse_cells_and_multistep_neurons():
    """Norse LIFCell is called once per step, LIF sees [T, ...]: both give per-step rows whose
    spike counts are the nonzeros Norse itself returned."""
    import norse.torch as norse

    torch.manual_seed(5)
    x = torch.rand(6, 2, 10) * 3                       # [T, B, N]
    multi = norse.LIF()
    z_multi, _ = multi(x)
    p = snnsim.profile(multi, x, batch_size=2)
    assert list(p.neurons.t) == list(range(6))
    assert list(p.neurons.spikes * 2) == [int((z_multi[t] != 0).sum()) for t in range(6)]
    assert (p.neurons.neurons == 10).all()
    assert z_multi.sum() > 0

    class Cells(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 4)
            self.cell = norse.LIFCell()

        def forward(self, seq):
            state, outs = None, []
            for xt in seq:
                z, state = self.cell(self.fc(xt) * 5, state)
                outs.append(z)
            return torch.stack(outs)

    net = Cells()
    z = net(x)
    p = snnsim.profile(net, x, batch_size=2)
    cell = p.neurons[p.neurons.module == "cell"]
    assert list(cell.t) == list(range(6))
    assert list(cell.spikes * 2) == [int((z[t] != 0).sum()) for t in range(6)]
    assert set(cell.framework) == {"norse"}


@pytest.mark.parametrize("name", ["spiketrack-s256-t1", "spiketrack-s256-t3", "spiketrack-tiny", "asymtrack-t",
                                  "asymtrack-b", "transt"])
def test_tracker_dense_macs_equal_flop_counter(name):
    """README's "full GMAC / frame" and "template GMAC" columns against torch.utils.flop_counter
    on the same inputs (FLOPs / 2). flop_counter (torch 2.13) has no formula for CPU's
    aten._scaled_dot_product_flash_attention_for_cpu and counts AsymTrack's attention as zero,
    so attention runs through the MATH backend here, which it decomposes into counted matmuls."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    net = build_model(name, None if name == "spiketrack-tiny" else "golden")   # tiny: its trained weights
    tp = profile_tracker(net, "golden")
    ex = net.example_inputs("golden")
    with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]):
        with FlopCounterMode(display=False) as template_flops:
            cache = net.forward_template(ex["template"])
        with FlopCounterMode(display=False) as search_flops:
            net.forward_search(ex["search"], cache)
    # flop_counter counts no element-wise product; snnsim counts an activation times a weight
    # (kind 'scale') as one multiply per element: checked apart, against a hand count
    layers = tp.layers()
    scale = layers[layers.kind == "scale"].groupby("branch").dense_macs.sum()
    assert tp.totals["dense_macs"] - scale.get("frame", 0) == search_flops.get_total_flops() / 2
    assert tp.template_totals["dense_macs"] - scale.get("template", 0) == template_flops.get_total_flops() / 2
    assert {b: float(v) for b, v in scale.items()} == _layer_scale_hand_count(net, ex)


def _layer_scale_hand_count(net, ex) -> dict:
    """AsymTrack's LayerScale / IBE scales: a [C] gain on every token of its stage (patch
    stride 4, then 8, 16), template and search; the box head's soft-argmax weighs the score map
    by its x and y coordinate grids, for both corners (4 x the map). Other trackers: none."""
    import re

    if not hasattr(net, "box_head") or not hasattr(net.box_head, "coord_x"):
        return {}
    out = {"template": 0.0, "frame": 0.0}
    for name, p in net.named_parameters():
        m = re.fullmatch(r"backbone\.layers\.(\d)\.blocks\.\d+\.(gamma_1|ibe_scale)", name)
        if m:
            stride = 4 * 2 ** int(m.group(1))
            for branch, x in (("template", ex["template"]), ("frame", ex["search"])):
                out[branch] += p.numel() * (x.shape[-2] // stride) * (x.shape[-1] // stride)
    out["frame"] += 4 * net.box_head.coord_x.numel()
    return out
