"""Multi-level and signed spikes on the models users bring: SEW-ResNet "ADD" residual sums,
SpikingJelly's I-LIF (integer counts 0..4) and ternary (-1/0/+1) neurons, plus the rule that
keeps images and zero tensors real.

The reference is a forward-hook brute force written here: every conv / linear module's input
is captured on a second, unprofiled run and the module's own operator is applied to
(x != 0) and to |x| with all-ones float64 weights -- the number of (nonzero input, weight)
pairs and their |level|-weighted sum, border-aware by construction. Dense MACs come from
torch.utils.flop_counter. Nothing is shared with snnsim's formulas.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import snnsim
from snnsim import SpikeFormat

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

from zoo_peers import sj_synops  # noqa: E402

COLS = ["dense_macs", "mac_ops", "syn_events", "syn_ops", "max_level", "signed"]


def reference(model, *inputs):
    """{module name: (events, level-weighted ops, largest |value|, any negative)} for every
    conv / linear module, from its captured input; plus the dense MACs of the whole run."""
    found, hooks = {}, []

    def hook(name, mod):
        def fn(m, args, out):
            x = args[0].detach().to(torch.float64)
            if isinstance(m, nn.Linear):
                apply = lambda t: F.linear(t, torch.ones_like(m.weight, dtype=torch.float64))  # noqa: E731
            else:
                nd = m.weight.dim() - 2
                if x.dim() == nd + 3:           # SpikingJelly multi-step [T, B, C, ...]
                    x = x.flatten(0, 1)
                conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
                apply = lambda t: conv(t, torch.ones_like(m.weight, dtype=torch.float64), None,  # noqa: E731
                                       m.stride, m.padding, m.dilation, m.groups)
            ev, ops = float(apply((x != 0).double()).sum()), float(apply(x.abs()).sum())
            prev = found.get(name, (0.0, 0.0, 0.0, False))
            found[name] = (prev[0] + ev, prev[1] + ops, max(prev[2], float(x.abs().max())),
                           prev[3] or bool((x < 0).any()))
        return fn

    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.modules.conv._ConvNd)):
            hooks.append(mod.register_forward_hook(hook(name, mod)))
    functional.reset_net(model)
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    functional.reset_net(model)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(*inputs)
    functional.reset_net(model)
    return found, fc.get_total_flops() / 2


def by_module(p):
    cols = [c for c in COLS if c in p.layers.columns]
    return p.layers.groupby("module").agg({c: ("max" if c in ("max_level", "signed") else "sum") for c in cols})


# ------------------------------------------------------------------------ SEW-ResNet ADD
class SEWBlock(nn.Module):
    """SEW-ResNet BasicBlock with connect_f='ADD': out = SN(BN(conv(SN(BN(conv(x)))))) + identity,
    identity = SN(BN(conv1x1(x))) when the block downsamples."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = layer.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = layer.BatchNorm2d(cout)
        self.sn1 = neuron.IFNode(v_threshold=0.3, detach_reset=True)
        self.conv2 = layer.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = layer.BatchNorm2d(cout)
        self.sn2 = neuron.IFNode(v_threshold=0.3, detach_reset=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(layer.Conv2d(cin, cout, 1, stride, bias=False), layer.BatchNorm2d(cout),
                                      neuron.IFNode(v_threshold=0.3, detach_reset=True))

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        out = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
        return out + identity


class SEWNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = layer.Conv2d(2, 8, 3, 1, 1, bias=False)
        self.bn1 = layer.BatchNorm2d(8)
        self.sn1 = neuron.IFNode(v_threshold=0.3, detach_reset=True)
        self.pool = layer.MaxPool2d(2)
        self.layer1 = SEWBlock(8, 8)
        self.layer2 = SEWBlock(8, 16, stride=2)
        self.layer3 = SEWBlock(16, 16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(self.sn1(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((3, 4)))     # [T, B, C]: average pooling makes the head's input real


def sew_net():
    torch.manual_seed(0)
    net = SEWNet().eval()
    functional.set_step_mode(net, "m")
    return net, torch.rand(2, 1, 2, 12, 12) * 2     # [T, B, C, H, W]


def test_sew_add_residual_sums_are_exact_synaptic_events():
    net, x = sew_net()
    ref, dense = reference(net, x)
    p = snnsim.profile(net, x, batch_size=1)
    got = by_module(p)
    assert p.totals["dense_macs"] == dense
    # the stem sees the image: dense MACs; the head sees averaged spikes: real, MACs
    for name in ("conv1", "fc"):
        assert got.loc[name, "mac_ops"] == got.loc[name, "dense_macs"] > 0 and got.loc[name, "syn_events"] == 0
    # every conv inside the blocks reads spikes or sums of spikes: exact events, no MACs
    block_convs = [n for n in ref if n.startswith("layer")]
    assert len(block_convs) == 7
    for name in block_convs:
        events, ops, top, neg = ref[name]
        assert got.loc[name, "mac_ops"] == 0, name
        assert got.loc[name, "syn_events"] == events, name
        assert got.loc[name, "syn_ops"] == ops, name
    for name in block_convs:
        assert got.loc[name, "max_level"] == ref[name][2] and not ref[name][3], name
    # the sums really are multi-level: layer2's inputs reach 2, layer3's reach >= 2
    assert ref["layer2.conv1"][2] >= 2 and ref["layer3.conv1"][2] >= 2
    assert ref["layer3.conv1"][1] > ref["layer3.conv1"][0]          # level-weighted > events
    graded = p.graded_spike_layers()
    assert set(graded.module) == {n for n in block_convs if ref[n][2] > 1}
    assert (graded.max_level > 1).all()
    # SpikingJelly's SynOpCounter agrees on every conv fed binary spikes, and counts 0 where the
    # ADD sums reach 2 (it prices those as MACs): the miscount this suite exists for
    peer = sj_synops(net, x)
    for name in block_convs:
        expected = ref[name][0] if ref[name][2] <= 1 else 0
        assert peer[name] == expected, name
    assert sum(peer[n] for n in block_convs) < sum(ref[n][0] for n in block_convs)


def test_explicit_spike_formats_keep_the_value_rule():
    """spike_formats= given: classification by value against those formats alone (the old
    behaviour): sums of binary spikes do not fit {0, 1} and count as MACs."""
    net, x = sew_net()
    ref, _ = reference(net, x)
    got = by_module(snnsim.profile(net, x, batch_size=1, spike_formats=[SpikeFormat(1.0, 1)]))
    for name in ("layer2.conv1", "layer3.conv1"):
        assert got.loc[name, "syn_events"] == 0 and got.loc[name, "mac_ops"] == got.loc[name, "dense_macs"]
    assert got.loc["layer1.conv1", "syn_events"] == ref["layer1.conv1"][0]   # still binary there


# ------------------------------------------------------------------------------- I-LIF
def test_ilif_integer_counts_are_level_weighted_events():
    torch.manual_seed(1)
    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), neuron.ILIFNode(),
                        layer.Conv2d(4, 3, 3, padding=1), neuron.ILIFNode(), layer.Flatten(),
                        layer.Linear(3 * 6 * 6, 4))
    functional.set_step_mode(net, "m")
    x = torch.rand(3, 2, 1, 6, 6) * 30
    ref, dense = reference(net, x)
    p = snnsim.profile(net, x, batch_size=2)
    got = by_module(p)
    assert p.totals["dense_macs"] * 2 == dense
    assert got.loc["0", "mac_ops"] == got.loc["0", "dense_macs"]
    for name in ("2", "5"):
        events, ops, top, _ = ref[name]
        assert top >= 2                                   # I-LIF really emits counts above 1
        assert got.loc[name, "mac_ops"] == 0
        assert got.loc[name, "syn_events"] * 2 == events  # per sample (batch 2)
        assert got.loc[name, "syn_ops"] * 2 == ops
        assert got.loc[name, "max_level"] == top


# ----------------------------------------------------------------------------- ternary
def test_ternary_spikes_and_their_signed_sums():
    """TernaryLIFNode emits -1 / 0 / +1: one event per nonzero spike whatever its sign; the sum
    of two ternary maps (-2..2) weighs each event by |level|."""
    torch.manual_seed(2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = layer.Conv2d(1, 4, 3, padding=1)
            self.a = neuron.TernaryLIFNode(v_threshold=0.5)
            self.b = neuron.TernaryLIFNode(v_threshold=0.3)
            self.conv = layer.Conv2d(4, 4, 3, padding=1)
            self.conv_sum = layer.Conv2d(4, 2, 1)

        def forward(self, x):
            s = self.a(self.enc(x))
            t = self.b(self.enc(x) * 2)
            return self.conv(s), self.conv_sum(s + t)

    net = Net()
    functional.set_step_mode(net, "m")
    x = torch.randn(2, 1, 1, 6, 6) * 2
    ref, _ = reference(net, x)
    seen = []
    net.a.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    prof = snnsim.profile(net, x, batch_size=1)
    got = by_module(prof)
    # neuron table: spikes and spike mass count each -1 as one spike (mass = sum |k|, no cancelling)
    rows = prof.neurons[prof.neurons["module"] == "a"].sort_values("t")
    assert list(rows["spikes"]) == [int((s != 0).sum()) for s in seen[0]]
    assert list(rows["spike_mass"]) == [float(s.abs().sum()) for s in seen[0]]
    assert (seen[0] < 0).any()
    events, ops, top, neg = ref["conv"]
    assert neg and top == 1
    assert got.loc["conv", "mac_ops"] == 0
    assert got.loc["conv", "syn_events"] == got.loc["conv", "syn_ops"] == events == ops
    assert got.loc["conv", "signed"] and got.loc["conv", "max_level"] == 1
    events, ops, top, neg = ref["conv_sum"]
    assert neg and top == 2 and ops > events
    assert got.loc["conv_sum", "mac_ops"] == 0
    assert (got.loc["conv_sum", "syn_events"], got.loc["conv_sum", "syn_ops"]) == (events, ops)
    assert got.loc["conv_sum", "max_level"] == 2 and got.loc["conv_sum", "signed"]


def test_signed_spike_format_fits():
    f = SpikeFormat(1.0, 1, signed=True)
    assert f.fits(torch.tensor([-1.0, 0.0, 1.0])) and not f.fits(torch.tensor([-2.0, 1.0]))
    assert not SpikeFormat(1.0, 1).fits(torch.tensor([-1.0, 1.0]))
    assert f.describe() == "ternary {-1,0,1}" and not f.binary


# ---------------------------------------------------------------- what stays real
def small_sj_net():
    torch.manual_seed(3)
    net = nn.Sequential(layer.Conv2d(1, 3, 3, padding=1), neuron.IFNode(v_threshold=0.5),
                        layer.Conv2d(3, 2, 3, padding=1))
    functional.set_step_mode(net, "m")
    return net


def test_all_zero_image_is_real_and_silent_neurons_give_zero_events():
    net = small_sj_net()
    p = snnsim.profile(net, torch.zeros(2, 1, 1, 5, 5), batch_size=1)
    got = by_module(p)
    # the zero image is no spike tensor: its conv is dense MACs (as on any other image)
    assert got.loc["0", "mac_ops"] == got.loc["0", "dense_macs"] == 2 * 25 * 9 * 3
    assert got.loc["0", "syn_events"] == 0
    # the neuron stays silent: its all-zero output is spikes, 0 events and no MACs
    assert got.loc["2", "mac_ops"] == 0 and got.loc["2", "syn_events"] == 0
    assert p.layers.set_index("module").loc["0", "operands"] == "real*weight"


def test_all_zero_state_tensor_is_real():
    """A zero hidden state (not a neuron's output) read by a linear layer is a real operand."""
    torch.manual_seed(4)

    class RNNish(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(3, 4)
            self.rec = nn.Linear(4, 4, bias=False)
            self.lif = neuron.IFNode(v_threshold=0.5)

        def forward(self, x):
            h = torch.zeros(x.shape[0], 4)
            return self.lif(self.inp(x) + self.rec(h))

    p = snnsim.profile(RNNish(), torch.randn(2, 3))
    rec = p.layers.set_index("module").loc["rec"]
    assert rec.operands == "real*weight" and rec.mac_ops == rec.dense_macs == 16


@pytest.mark.parametrize("image, spiking", [
    (torch.randint(0, 256, (2, 1, 1, 5, 5)).float(), False),   # a uint8 image as float: real
    (torch.randint(0, 2, (2, 1, 1, 5, 5)).float(), True),      # binary event frames: spikes
])
def test_integer_images(image, spiking):
    """Values from outside the model's neurons are spikes only if they fit a declared format's
    range (0..D): an 8-bit image does not, event frames {0, 1} do."""
    net = small_sj_net()
    ref, _ = reference(net, image)
    row = by_module(snnsim.profile(net, image, batch_size=1)).loc["0"]
    if spiking:
        assert row.mac_ops == 0 and row.syn_events == ref["0"][0]
    else:
        assert row.mac_ops == row.dense_macs and row.syn_events == 0


# --------------------------------------------------------------------------- Spikformer
def test_spikformer_residual_stream_of_spike_sums():
    """SpikingJelly's Spikformer adds spikes to spikes along its residual stream (stem + RPE,
    then x + attn(x), x + mlp(x)): the convs reading it get sums up to 5 here. Exact events on
    every conv but the stem; the head reads the time / token average (real: MACs)."""
    from spikingjelly.activation_based.model.spikformer import Spikformer

    torch.manual_seed(0)
    net = Spikformer(T=2, in_channels=3, img_size_h=16, img_size_w=16, patch_size=4, num_classes=5,
                     embed_dims=32, num_heads=2, mlp_ratio=2.0, depths=2).eval()
    with torch.no_grad():   # its initial weights are too small for untrained neurons to fire
        for m in net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                m.weight.mul_(60)
    x = torch.rand(1, 3, 16, 16)
    ref, dense = reference(net, x)
    p = snnsim.profile(net, x, batch_size=1)
    got = by_module(p)
    assert p.totals["dense_macs"] == dense
    stem, head = "patch_embed.stages.0.conv_bn.block.0", "head"
    assert got.loc[stem, "mac_ops"] == got.loc[stem, "dense_macs"]
    assert got.loc[head, "mac_ops"] == got.loc[head, "dense_macs"]
    convs = [n for n in ref if n not in (stem, head)]
    for name in convs:
        events, ops, top, _ = ref[name]
        assert got.loc[name, "mac_ops"] == 0, name
        assert (got.loc[name, "syn_events"], got.loc[name, "syn_ops"]) == (events, ops), name
    assert all(got.loc[n, "max_level"] == ref[n][2] for n in convs)
    assert max(ref[n][2] for n in convs) >= 3           # the stream really carries sums
    # SpikingJelly's own counter is right on the convs fed binary spikes, 0 on the residual sums
    peer = sj_synops(net, x)
    binary = [n for n in convs if ref[n][2] <= 1]
    assert binary and len(binary) < len(convs)
    for name in convs:
        assert peer[name] == (ref[name][0] if name in binary else 0), name
    assert p.totals["mac_ops"] == got.loc[stem, "mac_ops"] + got.loc[head, "mac_ops"]
