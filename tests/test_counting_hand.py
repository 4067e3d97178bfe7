"""Counts checked against hand counts (the arithmetic is written out in each test)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import snnsim
from snnsim import SpikeFormat
from snnsim.models.neurons import ILIF, NILIF

BIN = [SpikeFormat(1.0, 1)]


def only_row(p):
    assert len(p.layers) == 1, p.layers
    return p.layers.iloc[0]


def test_padded_strided_conv_border_exact():
    # 5x5 binary map, 3x3 kernel, stride 2, padding 1 -> 3x3 output.
    # Output o covers input rows 2o-1..2o+1: row fan-out = [1, 2, 1, 2, 1] (same for columns).
    x = torch.zeros(1, 1, 5, 5)
    for i, j in [(0, 0), (1, 1), (2, 3), (4, 4)]:
        x[0, 0, i, j] = 1
    conv = nn.Conv2d(1, 3, 3, stride=2, padding=1, bias=False)
    row = only_row(snnsim.profile(conv, x, spike_formats=BIN))
    # fan-outs: (0,0) 1*1, (1,1) 2*2, (2,3) 1*2, (4,4) 1*1 = 8 positions, x 3 output channels
    assert row.syn_events == 8 * 3
    assert row.syn_ops == 8 * 3
    assert row.dense_macs == 3 * 3 * 9 * 1 * 3  # H_out*W_out*k*k*C_in*C_out, padding taps included
    assert row.mac_ops == 0


def test_depthwise_conv():
    # C=2, 4x4, depthwise 3x3 pad 1: channel 0 spike at (1,1) reaches 9 outputs,
    # channel 1 spike at (0,0) reaches 4; each reaches C_out/groups = 1 channel.
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0, 1, 1] = 1
    x[0, 1, 0, 0] = 1
    conv = nn.Conv2d(2, 2, 3, padding=1, groups=2, bias=False)
    row = only_row(snnsim.profile(conv, x, spike_formats=BIN))
    assert row.syn_events == 9 + 4
    assert row.dense_macs == 16 * 9 * 1 * 2


def test_grouped_conv():
    # C_in=4, C_out=6, groups=2, 1x1 kernel on 3x3: every nonzero input reaches 6/2 = 3 outputs.
    x = torch.zeros(1, 4, 3, 3)
    x[0, 0, 0, 0] = x[0, 3, 2, 2] = x[0, 2, 1, 1] = 1
    conv = nn.Conv2d(4, 6, 1, groups=2, bias=False)
    row = only_row(snnsim.profile(conv, x, spike_formats=BIN))
    assert row.syn_events == 3 * 3
    assert row.dense_macs == 9 * (4 // 2) * 6


def test_transposed_conv_hand_count():
    # 1-D transposed conv, length 4 -> stride 2, kernel 3, padding 1: output length
    # (4-1)*2 - 2*1 + 3 = 7. Input i writes outputs 2i-1, 2i, 2i+1 (kept when 0..6):
    # i=0 -> {0, 1} (2 taps land), i=1 -> 3, i=2 -> 3, i=3 -> {5, 6} (7 is cropped) = 2.
    # Spikes at i = 0 and 2: (2 + 3) taps x C_out 4 = 20 events.
    x = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    conv = nn.ConvTranspose1d(1, 4, 3, stride=2, padding=1, bias=False)
    row = only_row(snnsim.profile(conv, x, spike_formats=BIN))
    assert row.syn_events == 20
    assert row.dense_macs == 4 * 3 * 4   # every input x kernel x C_out, cropped taps included


def _enumerated_events(x, weight_shape, stride, padding, dilation, groups, transposed, out_shape, levels):
    """Count (input element, kernel tap) pairs one by one, in plain Python loops."""
    import itertools

    nd = len(weight_shape) - 2
    k = weight_shape[2:]
    c_in = x.shape[1]
    per_in_channel = weight_shape[1] if transposed else weight_shape[0] // groups  # kernels an input meets
    in_sp, out_sp = x.shape[2:], out_shape[2:]
    events = ops = 0
    for idx in itertools.product(*(range(n) for n in x.shape)):
        value = float(x[idx])
        if value == 0:
            continue
        p = idx[2:]
        taps = 0
        for j in itertools.product(*(range(kk) for kk in k)):
            if transposed:   # input p writes output p*s - pad + j*d
                o = [p[d] * stride[d] - padding[d] + j[d] * dilation[d] for d in range(nd)]
                taps += all(0 <= o[d] < out_sp[d] for d in range(nd))
            else:            # output o reads input o*s - pad + j*d == p
                for d in range(nd):
                    num = p[d] + padding[d] - j[d] * dilation[d]
                    if num < 0 or num % stride[d] or num // stride[d] >= out_sp[d]:
                        break
                else:
                    taps += 1
        events += taps * per_in_channel
        ops += taps * per_in_channel * levels(value)
    assert c_in == x.shape[1]
    return events, ops


@pytest.mark.parametrize("cfg", [
    dict(nd=1, size=(9,), k=(3,), s=(2,), p=(1,), d=(1,), g=1, t=False),
    dict(nd=1, size=(8,), k=(4,), s=(3,), p=(2,), d=(2,), g=2, t=False),
    dict(nd=2, size=(6, 7), k=(3, 2), s=(2, 1), p=(1, 0), d=(1, 2), g=1, t=False),
    dict(nd=2, size=(5, 5), k=(3, 3), s=(1, 1), p=(2, 2), d=(2, 1), g=4, t=False),
    dict(nd=3, size=(3, 4, 5), k=(2, 3, 3), s=(1, 2, 2), p=(0, 1, 1), d=(1, 1, 1), g=2, t=False),
    dict(nd=1, size=(5,), k=(3,), s=(2,), p=(1,), d=(1,), g=1, t=True, op=(1,)),
    dict(nd=2, size=(4, 3), k=(3, 2), s=(2, 3), p=(1, 0), d=(1, 2), g=2, t=True, op=(1, 2)),
    dict(nd=2, size=(3, 3), k=(4, 4), s=(1, 1), p=(2, 3), d=(1, 1), g=1, t=True, op=(0, 0)),
])
@pytest.mark.parametrize("fmt", [SpikeFormat(1.0, 1), SpikeFormat(0.25, 4)])
def test_conv_events_match_enumeration(cfg, fmt):
    # Every conv geometry (1-3 D, stride, padding, dilation, groups, transposed with output
    # padding) against a pair-by-pair enumeration: nothing shared with the formula.
    gen = torch.Generator().manual_seed(sum(cfg["size"]) + cfg["g"])
    c_in, c_out = 4, 4
    x = torch.randint(0, fmt.levels + 1, (2, c_in, *cfg["size"]), generator=gen).float() * fmt.q
    x *= torch.rand(x.shape, generator=gen) < 0.5   # sparser
    conv_cls = {(1, False): nn.Conv1d, (2, False): nn.Conv2d, (3, False): nn.Conv3d,
                (1, True): nn.ConvTranspose1d, (2, True): nn.ConvTranspose2d}[(cfg["nd"], cfg["t"])]
    extra = {"output_padding": cfg["op"]} if cfg["t"] else {}
    conv = conv_cls(c_in, c_out, cfg["k"], stride=cfg["s"], padding=cfg["p"], dilation=cfg["d"],
                    groups=cfg["g"], bias=False, **extra)
    with torch.no_grad():
        out_shape = conv(x).shape
    row = only_row(snnsim.profile(conv, x, spike_formats=[fmt]))
    events, ops = _enumerated_events(x, tuple(conv.weight.shape), cfg["s"], cfg["p"], cfg["d"], cfg["g"],
                                     cfg["t"], out_shape, lambda v: round(v / fmt.q))
    assert row.syn_events * 2 == events      # profile counts are per sample (batch 2)
    assert row.syn_ops * 2 == ops


def test_linear_per_sample():
    # batch 2: sample 0 has 3 spikes, sample 1 has 1; 7 outputs -> (3 + 1) * 7 / 2 per sample.
    x = torch.tensor([[1., 0, 1, 1, 0], [0., 0, 0, 0, 1]])
    lin = nn.Linear(5, 7)
    row = only_row(snnsim.profile(lin, x, spike_formats=BIN))
    assert row.syn_events == 14
    assert row.dense_macs == 35
    assert row.kind == "matmul" and row.thop


def test_bmm_spike_times_spike():
    a = torch.tensor([[[1., 0, 1], [0, 1, 1]]])      # [1, 2, 3]
    b = torch.tensor([[[1., 0], [1, 1], [0, 1]]])    # [1, 3, 2]
    # nonzero products a[m,k]*b[k,n]: k=0: a col0 has 1 nonzero, b row0 has 1 -> 1;
    # k=1: 1 * 2 = 2; k=2: 2 * 1 = 2. Total 5.

    class M(nn.Module):
        def forward(self, a, b):
            return torch.bmm(a, b)

    row = only_row(snnsim.profile(M(), a, b, spike_formats=BIN))
    assert row.spike_spike == 5
    assert row.syn_events == 0 and row.mac_ops == 0
    assert row.dense_macs == 2 * 3 * 2


def test_graded_quarter_spikes():
    # NI-LIF format {0, .25, .5, .75, 1}: levels k = 1, 2, 0, 4 -> 3 nonzero inputs.
    x = torch.tensor([[0.25, 0.5, 0.0, 1.0]])
    lin = nn.Linear(4, 3, bias=False)
    row = only_row(snnsim.profile(lin, x, spike_formats=[SpikeFormat(0.25, 4)]))
    assert row.syn_events == 3 * 3          # nonzero inputs x fan-out
    assert row.syn_ops == (1 + 2 + 4) * 3   # level-weighted: a level-k spike is k events


def test_integer_levels():
    x = torch.tensor([[1.0, 3.0, 0.0, 4.0]])
    lin = nn.Linear(4, 3, bias=False)
    row = only_row(snnsim.profile(lin, x, spike_formats=[SpikeFormat(1.0, 4)]))
    assert row.syn_events == 9
    assert row.syn_ops == (1 + 3 + 4) * 3


def test_value_above_levels_is_real():
    x = torch.tensor([[1.0, 5.0]])  # 5 > D = 4: not an I-LIF spike tensor
    row = only_row(snnsim.profile(nn.Linear(2, 2), x, spike_formats=[SpikeFormat(1.0, 4)]))
    assert row.mac_ops == 4 and row.syn_events == 0


@pytest.mark.parametrize("fmt, values", [
    (SpikeFormat(1.0, 1), [1.0, 1 - 2 ** -24, 0.0]),        # one ulp below a spike
    (SpikeFormat(1.0, 1), [1.0, 2 ** -149, 0.0]),            # the smallest subnormal
    (SpikeFormat(0.25, 4), [0.25, 0.5 + 2 ** -22, 1.0]),    # off a quarter level by an ulp
])
def test_one_ulp_off_a_level_is_real(fmt, values):
    # 2 x 3 MACs, none of them synaptic events: a single value off the format makes the
    # whole operand real.
    row = only_row(snnsim.profile(nn.Linear(3, 2), torch.tensor([values]), spike_formats=[fmt]))
    assert row.mac_ops == 6 and row.syn_events == 0


def test_real_first_layer_then_spikes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), NILIF(), nn.Conv2d(4, 2, 1))

    class TB(nn.Module):  # [T, B, C, H, W] -> convs on T*B
        def __init__(self):
            super().__init__()
            self.conv1, self.lif, self.conv2 = net

        def forward(self, x):
            T, B = x.shape[:2]
            y = self.conv1(x.flatten(0, 1)).reshape(T, B, 4, 5, 5) * 4
            s = self.lif(y)
            return self.conv2(s.flatten(0, 1))

    x = torch.randn(1, 1, 3, 5, 5)
    p = snnsim.profile(TB(), x, batch_size=1)
    first = p.layers[p.layers.module == "conv1"].iloc[0]
    assert first.mac_ops == first.dense_macs == 25 * 27 * 4
    second = p.layers[p.layers.module == "conv2"].iloc[0]
    spikes = p.neurons.iloc[0]
    assert second.mac_ops == 0
    # 1x1 conv: each nonzero spike reaches 2 outputs; level-weighted by k = 4 * value
    assert second.syn_events == spikes.spikes * 2
    assert second.syn_ops == spikes.spike_mass * 2


def test_weight_sparsity():
    # weights with zeros: column j of W^T counts only its nonzero weights.
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))
    x = torch.tensor([[1.0, 1.0, 0.0]])
    dense_row = only_row(snnsim.profile(lin, x, spike_formats=BIN))
    sparse_row = only_row(snnsim.profile(lin, x, spike_formats=BIN, weight_sparsity=True))
    assert dense_row.syn_events == 2 * 2             # 2 spikes x 2 outputs
    assert sparse_row.syn_events == 1 + 0            # input 0 meets w[0,0]=1 only; input 1 meets zeros
    # real input: MACs against nonzero weights only (3 nonzero weights)
    sparse_real = only_row(snnsim.profile(lin, torch.tensor([[0.3, -1.0, 2.0]]), weight_sparsity=True,
                                          spike_formats=BIN))
    assert sparse_real.mac_ops == 3 and sparse_real.dense_macs == 6


def test_conv_weight_sparsity_border_exact():
    # 1 channel 3x3 map of ones, 3x3 kernel with only the centre tap nonzero, pad 1:
    # every input meets the centre tap exactly once -> 9 events (dense kernel: sum of fan-outs 4*4+... = 49).
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1
    x = torch.ones(1, 1, 3, 3)
    assert only_row(snnsim.profile(conv, x, spike_formats=BIN, weight_sparsity=True)).syn_events == 9
    # dense kernel: fan-out per input = (#rows covering) * (#cols covering) = [2,3,2] x [2,3,2] -> 7*7 = 49
    assert only_row(snnsim.profile(conv, x, spike_formats=BIN)).syn_events == 49


def test_neuron_counts_ni_lif():
    # T = 2 timesteps, 4 neurons. t=0: U = X = [0.3, 0.6, 1.2, 5.0] -> round(clamp(U,0,4)) = [0, 1, 1, 4]
    lif = NILIF()
    x = torch.tensor([[[0.3, 0.6, 1.2, 5.0]], [[0.0, 0.0, 0.0, 0.0]]])  # [T=2, B=1, 4]
    with torch.no_grad():
        lif.decay.zero_()  # sigmoid(0) = 0.5
    p = snnsim.profile(lif, x, batch_size=1)
    n = p.neurons
    assert list(n.t) == [0, 1]
    assert list(n.neurons) == [4, 4]
    assert n.spikes[0] == 3 and n.spike_mass[0] == 6        # levels 0 + 1 + 1 + 4
    # t=1: U = 0.5*(U0 - S0) + 0 with S0 = [0, .25, .25, 1] -> [0.15, 0.175, 0.475, 2.0]
    #      levels round(clamp(U, 0, 4)) = [0, 0, 0, 2]
    assert n.spikes[1] == 1 and n.spike_mass[1] == 2
    assert n.firing_rate[0] == pytest.approx(0.75) and n.mean_level[0] == pytest.approx(1.5)
    assert n.mean_value[0] == pytest.approx(6 * 0.25 / 4)


def test_neuron_counts_ilif_half_to_even():
    lif = ILIF()
    x = torch.tensor([[0.5, 1.5, 2.5, 3.5, 4.7]])  # [T=1, 5]: round half to even -> 0, 2, 2, 4, 4
    p = snnsim.profile(lif, x.unsqueeze(1), batch_size=1)
    assert p.neurons.spike_mass[0] == 12
    assert p.neurons.spikes[0] == 4


def test_rollup_and_thop_view():
    net = nn.Sequential(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), nn.Linear(3, 2))

    class WithMatmul(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            y = self.net(x)
            return y @ y.t()      # attention-like product thop does not see

    x = torch.randn(1, 4)
    p = snnsim.profile(WithMatmul(), x, spike_formats=BIN)
    roll = p.rollup().set_index("module")
    assert roll.loc["net.0", "dense_macs"] == 12
    assert roll.loc["net", "dense_macs"] == 12 + 6
    assert roll.loc["", "dense_macs"] == 12 + 6 + 1 * 2 * 1
    assert p.thop_macs == 18          # the matmul is outside conv/linear modules
    assert p.totals["dense_macs"] == 20
