"""Formula edge cases, each against a hand count: a weight broadcast through torch.matmul keeps
its weight role, `weight_sparsity=True` drops zero weights only (padding taps stay, as in
dense_macs), and memory-aware charges the reads of spike x spike products."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

import snnsim
from snnsim import SpikeFormat
from snnsim.energy import estimate

BIN = [SpikeFormat(1.0, 1)]
pJ = 1e-12


class PerHeadWeight(nn.Module):
    """x [B, H, M, K] @ W [H, K, N]: torch.matmul expands W over B and copies it (expand +
    clone + _unsafe_view) before its bmm, so the bmm operand shares no storage with W."""

    def __init__(self, H=2, K=8, N=5):
        super().__init__()
        self.w = nn.Parameter(torch.randn(H, K, N))

    def forward(self, x):
        return x @ self.w


def test_weight_broadcast_through_matmul_keeps_its_role():
    torch.manual_seed(0)
    B, H, M, K, N = 3, 2, 4, 8, 5
    x = (torch.rand(B, H, M, K) > 0.5).float()
    row = snnsim.profile(PerHeadWeight(H, K, N), x, spike_formats=BIN).layers.iloc[0]
    assert row.operands == "spike*weight"
    assert row.weight_numel == H * K * N                  # the parameter, not its B-fold broadcast
    assert row.in_numel * B == x.numel()
    # every nonzero x[b, h, m, k] meets the N weights W[h, k, :]
    assert row.syn_events * B == int((x != 0).sum()) * N
    assert row.dense_macs * B == B * H * M * K * N


def test_broadcast_weight_is_priced_and_placed():
    """The weight role is what memory-aware charges weight reads for and what Loihi's capacity
    places on cores."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import neuron

    torch.manual_seed(0)
    H, M, K, N = 2, 4, 8, 5

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = neuron.IFNode(v_threshold=0.5)
            self.attn = PerHeadWeight(H, K, N)

        def forward(self, x):
            return self.attn(self.lif(x))

    x = torch.randn(2, H, M, K)                            # batch 2: matmul must copy W
    p = snnsim.profile(Net(), x, batch_size=2)
    spikes = neuron.IFNode(v_threshold=0.5)(x)             # the same spikes, unprofiled
    events = int((spikes != 0).sum()) * N / 2               # per sample
    assert events > 0
    assert p.layers.set_index("module").loc["attn", "syn_events"] == events
    cores = estimate(p, "loihi", "loihi").layers.set_index("module")["cores"]
    assert cores.loc["attn"] >= 1
    mem = estimate(p, "horowitz-45nm-fp32", "memory-aware").layers.set_index("module")
    assert mem.loc["attn", "weight_read_J"] == pytest.approx(events * 5 * pJ, rel=1e-12)  # one word per event


def test_weight_sparsity_drops_zero_weights_not_padding_taps():
    """4x4 real input, 3x3 kernel, padding 1: dense_macs = 16 outputs x 9 taps = 144, padding
    taps included. With weight_sparsity and no zero weight the count stays 144 (NeuroBench's
    effective count, which also skips the taps that land on padding, would say 100); one zero
    tap -> 16 x 8 = 128."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.5)
    x = torch.randn(1, 1, 4, 4)
    row = snnsim.profile(conv, x, spike_formats=BIN, weight_sparsity=True).layers.iloc[0]
    assert row.dense_macs == 144 and row.mac_ops == 144
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = 0
    row = snnsim.profile(conv, x, spike_formats=BIN, weight_sparsity=True).layers.iloc[0]
    assert row.dense_macs == 144 and row.mac_ops == 128


def test_weight_sparsity_transposed_and_grouped():
    # transposed: every input position meets every nonzero tap (cropped taps included, as in
    # dense_macs = inputs x C_out/groups x taps). C_in 2, C_out 4 (groups 2), 3x3, 3x3 input:
    # dense = 2*9 x 2 x 9 = 324; zero 5 of the 2*2*9 = 36 weights -> 9 positions x 31 = 279.
    tconv = nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, groups=2, bias=False)
    with torch.no_grad():
        tconv.weight.fill_(1.0)
        tconv.weight.view(-1)[:5] = 0
    x = torch.randn(1, 2, 3, 3)
    row = snnsim.profile(tconv, x, spike_formats=BIN, weight_sparsity=True).layers.iloc[0]
    assert row.dense_macs == 324 and row.mac_ops == 9 * 31
    # grouped conv, batch 2, stride 2: out 2x2 per channel; weight [4, 1, 3, 3] with 7 zeros
    conv = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight.view(-1)[3:10] = 0
    row = snnsim.profile(conv, torch.randn(2, 4, 4, 4), spike_formats=BIN, weight_sparsity=True).layers.iloc[0]
    assert row.dense_macs == 4 * 4 * 9 and row.mac_ops == 4 * (36 - 7)       # per sample


def test_memory_aware_reads_spike_x_spike_operands():
    """A spike x spike matmul (40 nonzero products, binary: 1-bit spikes) reads the second
    operand's nonzero element per product; its 80 input elements and 16 outputs as before."""
    row = dict(module="attn", module_type="SpikeAttention", op="aten.bmm", kind="matmul", calls=1,
               dense_macs=300.0, mac_ops=0.0, syn_events=0.0, syn_ops=0.0, spike_spike=40.0,
               weight_numel=0, in_numel=80, out_numel=16, spiking_input=True, thop=False)

    class Counts:
        layers = pd.DataFrame([row])
        neurons = pd.DataFrame([{"module": "lif", "module_type": "LIF", "t": 0, "neurons": 10, "spikes": 2,
                                 "spike_mass": 2, "levels": 1}])
        timesteps, is_spiking, model, totals = 1, True, None, {}

    e = estimate(Counts(), "horowitz-45nm-fp32", "memory-aware")
    t = e.layers.set_index("module")
    bit, word = 10 * pJ / 64, 5 * pJ                      # every memory < 8 KiB here
    expected = 40 * 0.9 * pJ + 40 * bit + 80 * bit + 16 * word
    assert t.loc["attn", "total_J"] == pytest.approx(expected, rel=1e-12)
    assert any("spike x spike" in a for a in e.assumptions)
