"""NeuroBench's SynapticOperations beside snnsim on zoo models where NeuroBench is right:
binary spikes everywhere (its Effective_ACs are then exactly the (nonzero input, weight)
pairs) -- a snnTorch tutorial-style loop net and a SpikingJelly multi-step spiking CNN, both
fed NeuroBench's [B, T, ...] data through a wrapper that hands the net [T, B, ...]."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import snnsim

nb = pytest.importorskip("neurobench")


def neurobench_counts(net, data_bt, reset=None) -> dict:
    """NeuroBench's SynapticOperations of `net` ([T, B, ...] in) on [B, T, ...] data."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    class BatchFirst(nn.Module):          # NeuroBench hands [B, T, ...]; the net takes [T, B, ...]
        def __init__(self):
            super().__init__()
            self.inner = net

        def forward(self, x):
            y = self.inner(x.transpose(0, 1))
            if reset is not None:           # a multi-step net's state, cleared after each batch
                reset(self.inner)
            return y

    loader = torch.utils.data.DataLoader(list(zip(data_bt, torch.zeros(len(data_bt)))), batch_size=len(data_bt))
    with torch.no_grad():
        bench = Benchmark(TorchModel(BatchFirst()), loader, [], [], [[], [SynapticOperations]])
        return bench.run(quiet=True)["SynapticOperations"]


def test_snntorch_tutorial_loop_net_matches_neurobench():
    snn = pytest.importorskip("snntorch")

    class Net(nn.Module):                 # snnTorch tutorial 5's loop, smaller
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(64, 40), snn.Leaky(beta=0.9)
            self.fc2, self.lif2 = nn.Linear(40, 10), snn.Leaky(beta=0.9)

        def forward(self, x):             # [T, B, 64]
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            out = []
            for xt in x:
                spk1, mem1 = self.lif1(self.fc1(xt), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(spk2)
            return torch.stack(out)

    torch.manual_seed(4)
    net = Net().eval()
    with torch.no_grad():
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(4.0)
    data = (torch.rand(3, 6, 64) < 0.3).float()          # [B, T, 64] binary
    peer = neurobench_counts(net, data)
    p = snnsim.profile(net, data.transpose(0, 1))
    assert p.totals["spikes"] > 0
    assert peer["Effective_MACs"] == 0 and p.totals["mac_ops"] == 0
    assert p.totals["syn_events"] == pytest.approx(peer["Effective_ACs"], rel=1e-12)
    assert p.totals["dense_macs"] == pytest.approx(peer["Dense"], rel=1e-12)


def test_spikingjelly_multistep_cnn_matches_neurobench():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(5)
    net = nn.Sequential(
        layer.Conv2d(2, 6, 3, padding=1), neuron.LIFNode(v_threshold=0.5),
        layer.Conv2d(6, 6, 3, stride=2, padding=1), neuron.IFNode(v_threshold=0.5),
        layer.Flatten(), layer.Linear(6 * 4 * 4, 5), neuron.IFNode(),
    ).eval()
    functional.set_step_mode(net, "m")
    data = (torch.rand(2, 4, 2, 8, 8) < 0.4).float()    # [B, T, C, H, W] binary
    peer = neurobench_counts(net, data, functional.reset_net)
    functional.reset_net(net)
    p = snnsim.profile(net, data.transpose(0, 1))
    functional.reset_net(net)
    assert p.totals["spikes"] > 0
    assert peer["Effective_MACs"] == 0 and p.totals["mac_ops"] == 0
    assert p.totals["syn_events"] == pytest.approx(peer["Effective_ACs"], rel=1e-12)
    # Dense: snnsim counts padding taps (thop / flop_counter), NeuroBench does not. By hand,
    # per step: conv1 64 positions x 9 taps x 6 x 2, conv2 16 x 9 x 6 x 6, linear 96 x 5;
    # without padding, conv1 reads 22 x 22 (position, tap) pairs per channel pair (8 - 2 + 8 +
    # 8 per axis) and conv2 11 x 11 (2 + 3 + 3 + 3).
    assert p.totals["dense_macs"] == 4 * (64 * 9 * 12 + 16 * 9 * 36 + 480)
    assert peer["Dense"] == 4 * (22 * 22 * 12 + 11 * 11 * 36 + 480)
