"""The batch size comes from the neurons' time layout, never dim 0 of the input silently
(issue 12: a multi-step [T, B, ...] input divided every count by T; a 1-D input by its length).

The references are brute forces written here with forward hooks: the nonzero inputs each
layer sees times its fan-out, summed over the whole batch.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import snnsim
from snnsim.counting import Profiler


def _batch_size_error():
    from snnsim.counting import BatchSizeError

    return BatchSizeError


def _brute_syn_events(model: nn.Module, *inputs) -> float:
    """Whole-batch synaptic events of every nn.Linear / nn.Conv2d: the layer applied to its
    input's nonzero mask with all-ones weights and no bias, summed (forward hooks)."""
    total = [0.0]

    def hook(mod, args, out):
        x = (args[0] != 0).float()
        if isinstance(mod, nn.Conv2d):
            x = x.flatten(0, x.dim() - 4)            # multi-step [T, B, C, H, W] -> [T*B, C, H, W]
            ones = torch.ones_like(mod.weight)
            total[0] += float(torch.nn.functional.conv2d(x, ones, None, mod.stride, mod.padding, mod.dilation,
                                                         mod.groups).sum())
        else:
            total[0] += float((x @ torch.ones_like(mod.weight).t()).sum())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def _profile_matches_brute_force(net, x, batch: int, neuron_updates: int):
    """Profile a net whose loop runs inside forward: the batch size found from its neurons,
    syn_events per sample x batch equal to the brute force, and the updates hand-counted."""
    ref = _brute_syn_events(net, x)
    p = snnsim.profile(net, x)
    assert p.batch_size == batch
    assert p.totals["syn_events"] * batch == pytest.approx(ref, rel=1e-12)
    assert p.totals["neuron_updates"] == neuron_updates
    return p

def _sj_net():
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(2, 8, 3, padding=1), neuron.LIFNode(v_threshold=0.2), layer.Flatten(),
                        layer.Linear(8 * 64, 10), neuron.LIFNode(v_threshold=0.2))
    functional.set_step_mode(net, "m")
    return net, functional


@pytest.mark.parametrize("B", [1, 3])
def test_spikingjelly_multistep_batch_is_axis_1(B):
    """The README's model: [T, B, C, H, W] in, step_mode 'm'. Without batch_size the counts
    are per sample (B from axis 1), not divided by T."""
    net, functional = _sj_net()
    T = 4
    torch.manual_seed(1)
    x = (torch.rand(T, B, 2, 8, 8) > 0.5).float()
    functional.reset_net(net)
    ref = _brute_syn_events(net, x)
    functional.reset_net(net)
    p = snnsim.profile(net, x)
    assert p.batch_size == B
    assert p.totals["syn_events"] * B == pytest.approx(ref, rel=1e-12)
    functional.reset_net(net)
    explicit = snnsim.profile(net, x, batch_size=B)
    assert explicit.totals == p.totals
    # binary input spikes everywhere: SpikingJelly's own counter is right here, for the batch
    from zoo_peers import sj_synops
    assert sum(sj_synops(net, x).values()) == pytest.approx(p.totals["syn_events"] * B, rel=1e-12)


def test_snntorch_loop_over_time_batch_is_the_neurons_axis_0():
    """snnTorch's documented style: the net takes [T, B, N] and loops over steps, its Leaky
    neurons see [B, H] per call. B is the neurons' axis 0, not the input's."""
    import snntorch as snn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 5)
            self.lif1 = snn.Leaky(beta=0.9, threshold=0.3)
            self.fc2 = nn.Linear(5, 3)
            self.lif2 = snn.Leaky(beta=0.9, threshold=0.3)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            out = []
            for step in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(spk2)
            return torch.stack(out)

    torch.manual_seed(2)
    net, T, B = Net(), 7, 2
    _profile_matches_brute_force(net, (torch.rand(T, B, 6) > 0.4).float(), B, T * (5 + 3))


@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_snntorch_synaptic_and_rleaky_documented_loops(kind):
    """snnTorch Synaptic (spk, syn, mem) and RLeaky (recurrent nn.Linear on its own spikes)
    in their tutorials' style, [T, B, N] looped inside the net."""
    import snntorch as snn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 5)
            self.lif = snn.Synaptic(alpha=0.8, beta=0.9, threshold=0.3) if kind == "synaptic" else \
                snn.RLeaky(beta=0.9, linear_features=5, threshold=0.3)

        def forward(self, x):
            if kind == "synaptic":
                syn, mem = self.lif.init_synaptic()
            else:
                spk, mem = self.lif.init_rleaky()
            out = []
            for step in range(x.shape[0]):
                if kind == "synaptic":
                    spk, syn, mem = self.lif(self.fc(x[step]), syn, mem)
                else:
                    spk, mem = self.lif(self.fc(x[step]), spk, mem)
                out.append(spk)
            return torch.stack(out)

    torch.manual_seed(4)
    net, T, B = Net(), 6, 4
    p = _profile_matches_brute_force(net, (torch.rand(T, B, 6) > 0.4).float(), B, T * 5)
    assert p.totals["spikes"] > 0


def test_norse_cell_loop_batch_from_the_cells():
    import norse.torch as norse

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 6)
            self.cell = norse.LIFCell()

        def forward(self, x):
            s, out = None, []
            for xt in x:
                z, s = self.cell(self.fc(xt) * 4, s)
                out.append(z)
            return torch.stack(out)

    torch.manual_seed(3)
    x = (torch.rand(5, 3, 4) > 0.5).float()       # [T=5, B=3, N]
    p = snnsim.profile(Net(), x)
    assert p.batch_size == 3
    assert p.totals["neuron_updates"] == 5 * 6


def test_one_dimensional_input_without_neurons_is_refused():
    """A 1-D input read only by a matrix-vector product: nothing says whether axis 0 is a batch."""
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(2, 3))

        def forward(self, x):
            return self.w @ x

    with pytest.raises(_batch_size_error()) as err:
        snnsim.profile(Functional(), torch.tensor([1.0, 0.0, 1.0]), spike_formats=[snnsim.SpikeFormat(1, 1)])
    msg = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in msg and "batch_size" in msg
    p = snnsim.profile(Functional(), torch.tensor([1.0, 0.0, 1.0]), spike_formats=[snnsim.SpikeFormat(1, 1)],
                       batch_size=1)
    assert p.totals["syn_events"] == 4


def test_a_module_called_on_one_sample_without_a_batch_axis_means_batch_one():
    """torch runs Linear on [N], ConvNd on [C, *spatial], RNNs on [L, H] as one sample. Hand
    counts for one snnTorch sample looped over T = 5 steps."""
    import snntorch as snn

    lin = nn.Linear(3, 2)
    p = snnsim.profile(lin, torch.tensor([1.0, 0.0, 1.0]), spike_formats=[snnsim.SpikeFormat(1, 1)])
    assert p.batch_size == 1 and p.totals["syn_events"] == 2 * 2      # 2 nonzero inputs x 2 outputs

    class Loop(nn.Module):
        def __init__(self, front):
            super().__init__()
            self.front, self.lif = front, snn.Leaky(beta=0.9)

        def forward(self, x):
            mem, out = self.lif.init_leaky(), []
            for xt in x:
                spk, mem = self.lif(self.front(xt), mem)
                out.append(spk)
            return torch.stack(out)

    torch.manual_seed(0)
    x = torch.rand(5, 10) * 2                      # [T, N]: one sample, no batch axis
    with pytest.raises(_batch_size_error(), match=r"'front' \(Linear\) ran a Linear / conv / RNN on an input without "
                                                  r"a batch axis \(\[10\]\), but axis 0 of the input \[5, 10\] says 5"):
        snnsim.profile(Loop(nn.Linear(10, 6)), x)
    p = snnsim.profile(Loop(nn.Linear(10, 6)), x, batch_size=1)
    assert p.totals["dense_macs"] == 5 * 10 * 6 and p.totals["neuron_updates"] == 5 * 6

    x = torch.rand(5, 1, 8, 8)                     # [T, C, H, W]: the neuron output [4, 8, 8] reads C as a batch
    with pytest.raises(_batch_size_error(), match=r"'front' \(Conv2d\) ran a Linear / conv / RNN on an input without "
                                                  r"a batch axis \(\[1, 8, 8\]\), but the neuron outputs' layouts say 4"):
        snnsim.profile(Loop(nn.Conv2d(1, 4, 3, padding=1)), x)
    p = snnsim.profile(Loop(nn.Conv2d(1, 4, 3, padding=1)), x, batch_size=1)
    assert p.totals["dense_macs"] == 5 * 4 * 9 * 64 and p.totals["neuron_updates"] == 5 * 4 * 64

    # by hand: F.conv2d on one [C, H, W] sample inside the model's own forward is the same evidence
    class ByHand(nn.Module):
        def __init__(self):
            super().__init__()
            self.w, self.lif = nn.Parameter(torch.randn(4, 1, 3, 3)), snn.Leaky(beta=0.9)

        def forward(self, x):
            mem, out = self.lif.init_leaky(), []
            for xt in x:
                spk, mem = self.lif(F.conv2d(xt, self.w, padding=1), mem)
                out.append(spk)
            return torch.stack(out)

    with pytest.raises(_batch_size_error(), match=r"'<model>' \(ByHand\) ran a Linear / conv / RNN on an input "
                                                  r"without a batch axis \(\[1, 8, 8\]\)"):
        snnsim.profile(ByHand(), torch.rand(5, 1, 8, 8))
    x = torch.rand(5, 3, 1, 8, 8)                  # [T, B, C, H, W]: the same net on a batch, as before
    p = snnsim.profile(Loop(nn.Conv2d(1, 4, 3, padding=1)), x)
    assert p.batch_size == 3 and p.totals["dense_macs"] == 5 * 4 * 9 * 64


def test_conflicting_layouts_are_refused():
    """A multi-step node on [T, B, N] and a single-step node on the flattened [T*B, N]: the
    batch cannot be told from the neurons."""
    from spikingjelly.activation_based import neuron

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.multi = neuron.IFNode(step_mode="m")
            self.single = neuron.IFNode(step_mode="s")

        def forward(self, x):
            return self.single(self.multi(x).flatten(0, 1))

    x = torch.rand(4, 2, 5)
    with pytest.raises(_batch_size_error(), match="batch_size"):
        snnsim.profile(Mixed(), x)
    assert snnsim.profile(Mixed(), x, batch_size=2).batch_size == 2


def test_profiler_result_reads_the_batch_from_neurons():
    net, functional = _sj_net()
    x = (torch.rand(3, 2, 2, 8, 8) > 0.5).float()
    with torch.no_grad(), Profiler(net) as prof:
        net(x)
    assert prof.result().batch_size == 2
    assert prof.result(5).batch_size == 5          # explicit still wins


def test_profiler_result_without_neurons_asks_for_the_batch():
    lin = nn.Linear(3, 2)
    with torch.no_grad(), Profiler(lin, spike_formats=[]) as prof:
        lin(torch.randn(4, 3))
    with pytest.raises(_batch_size_error(), match="batch_size"):
        prof.result()


@pytest.mark.parametrize("bad", [2.5, 0, -1, True, "2"])
def test_batch_size_must_be_a_whole_number(bad):
    net = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        snnsim.profile(net, torch.rand(4, 3), batch_size=bad)


def test_spike_formats_accepts_one_format_and_names_a_wrong_item():
    from snnsim import SpikeFormat

    net = nn.Linear(3, 2)
    x = (torch.rand(4, 3) > 0.5).float()
    one = snnsim.profile(net, x, spike_formats=SpikeFormat(1.0, 1), batch_size=4)
    assert one.totals["syn_events"] == float((x != 0).sum()) * 2 / 4     # every nonzero input meets 2 weights
    with pytest.raises(TypeError, match=r"spike_formats: \(1, 1\) is not a SpikeFormat"):
        snnsim.profile(net, x, spike_formats=[(1, 1)], batch_size=4)
