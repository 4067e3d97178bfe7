"""The profiler's shortcuts must not change a count (issue 12's overhead work).

What they are: modules that hold no synaptic operation (neurons, norms, activations, classes
declaring `no_synaptic_ops = True`) run outside the counting modes when weightless; spike
levels read once are cached on the tensor (and its views) until it is written in place; an
operand's first few elements can prove it real; nonzero counts come from sign(); the module
stack is kept by wrapping nn.Module.__call__ instead of hooks. Each test below is a case where
a careless shortcut would miscount, checked against a hand count or a brute force written
here (the module's own operator applied to (x != 0) and |x| with all-ones float64 weights).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snnsim
from snnsim import SpikeFormat
from snnsim.counting.formats import classify_levels, nonzero_count

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import neuron  # noqa: E402


def conv_pairs(conv: nn.Conv2d, x: torch.Tensor) -> tuple[float, float]:
    """(events, |level|-weighted ops) of conv on x: its operator on (x != 0) and |x| with
    all-ones weights, in float64."""
    ones = torch.ones_like(conv.weight, dtype=torch.float64)
    x = x.detach().to(torch.float64)

    def apply(t):
        return float(F.conv2d(t, ones, None, conv.stride, conv.padding, conv.dilation, conv.groups).sum())

    return apply((x != 0).double()), apply(x.abs())


class WriteAfterRead(nn.Module):
    """A binary neuron's output, viewed, then doubled in place before a conv reads the view:
    the levels first read off the output (binary) no longer hold."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Conv2d(2, 4, 3, padding=1)
        self.sn = neuron.IFNode(v_threshold=0.5)
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        s = self.sn(self.pre(x))
        v = s.view(s.shape)
        s.mul_(2.0)
        return self.conv(v)


def test_levels_cached_on_a_spike_tensor_are_dropped_when_it_is_written():
    torch.manual_seed(0)
    net = WriteAfterRead().eval()
    x = torch.randn(2, 2, 6, 6) * 2
    captured = {}
    h = net.conv.register_forward_hook(lambda m, a, o: captured.setdefault("x", a[0].clone()))
    p = snnsim.profile(net, x)
    h.remove()
    row = p.layers[p.layers["module"] == "conv"].iloc[0]
    events, ops = conv_pairs(net.conv, captured["x"])
    assert float(captured["x"].max()) == 2.0                 # the conv really read level-2 spikes
    assert row["syn_events"] * 2 == events
    assert row["syn_ops"] * 2 == ops == 2 * events             # level 2: two events' worth each
    assert row["max_level"] == 2


class DeclaredNorm(nn.Module):
    """A user's norm that declares it holds no synaptic operation."""

    no_synaptic_ops = True

    def __init__(self, c):
        super().__init__()
        self.scale = nn.Parameter(torch.full((c,), 1.5))

    def forward(self, x):
        return x * self.scale.view(1, -1, 1, 1) + 0.1


class LiesAboutWeights(DeclaredNorm):
    """Declares no synaptic operation but holds a 2-D weight it multiplies by: the
    declaration is ignored (the profiler runs quietly only what is weightless)."""

    def __init__(self, c):
        super().__init__(c)
        self.mix = nn.Parameter(torch.randn(c, c))

    def forward(self, x):
        return torch.einsum("bchw,dc->bdhw", x, self.mix)


def test_declared_norm_runs_quietly_and_a_weighted_one_is_still_counted():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), DeclaredNorm(4), LiesAboutWeights(4),
                        nn.Conv2d(4, 2, 1)).eval()
    p = snnsim.profile(net, torch.randn(2, 3, 5, 5), batch_size=2)
    by_module = p.layers.groupby("module")["dense_macs"].sum().to_dict()
    assert by_module["0"] == 25 * 4 * 3 * 9                   # hand counts, per sample
    assert by_module["2"] == 25 * 4 * 4                       # the einsum of the lying module
    assert by_module["3"] == 25 * 2 * 4
    assert "1" not in by_module                               # the norm: nothing synaptic
    assert p.complete


def test_a_quiet_module_fed_spikes_keeps_its_element_wise_spike_operations():
    """A norm that scales its input runs quietly on real inputs only: after a neuron, its
    x * scale is one element-wise spike operation per nonzero spike (hand count), as without
    the shortcut; train-mode dropout on spikes is counted as well."""
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), neuron.IFNode(v_threshold=0.5), DeclaredNorm(4)).eval()
    x = torch.randn(2, 2, 5, 5) * 2
    spikes = {}
    h = net[1].register_forward_hook(lambda m, a, o: spikes.setdefault("s", o.detach().clone()))
    p = snnsim.profile(net, x)
    h.remove()
    rows = p.layers[(p.layers["module"] == "2") & (p.layers["kind"] == "spike_mask")]
    assert len(rows) == 1
    assert rows["spike_mask"].iloc[0] * 2 == int((spikes["s"] != 0).sum()) > 0
    drop = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), neuron.IFNode(v_threshold=0.5), nn.Dropout(0.5)).train()
    q = snnsim.profile(drop, x)
    assert q.totals["spike_mask"] > 0                  # the dropout mask on spikes, not a silent zero


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


class FailingNeuron(neuron.IFNode):
    """Raises from inside a quiet neuron's forward."""

    def forward(self, x):
        raise RuntimeError("inside the neuron")


def test_an_exception_inside_a_quiet_neuron_leaves_nothing_installed():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), FailingNeuron())
    call_before = nn.Module.__call__
    with pytest.raises(RuntimeError, match="inside the neuron"):
        snnsim.profile(net, torch.randn(1, 1, 5, 5))
    assert nn.Module.__call__ is call_before
    # the counting modes and the module stack work again: a hand count right after
    ok = nn.Sequential(nn.Conv2d(1, 2, 3), neuron.IFNode())
    p = snnsim.profile(ok, torch.randn(1, 1, 5, 5))
    assert p.totals["dense_macs"] == 9 * 2 * 9
    assert p.totals["neuron_updates"] == 2 * 9


class OwnCall(nn.Module):
    """A module class with its own __call__ (it never reaches nn.Module.__call__'s wrapper)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def __call__(self, x):
        return super().__call__(x)

    def forward(self, x):
        return x @ self.lin.weight.t()


def test_module_with_its_own_call_keeps_its_name_and_nested_profilers_both_count():
    torch.manual_seed(2)
    net = nn.Sequential(OwnCall(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    call_before = nn.Module.__call__
    with torch.no_grad(), snnsim.Profiler(net) as outer:
        with snnsim.Profiler(net) as inner:
            net(x)
        net(x)
    assert nn.Module.__call__ is call_before
    first, both = inner.result(5), outer.result(5)
    assert first.layers.groupby("module")["dense_macs"].sum().to_dict() == {"0": 12.0, "1": 6.0}
    assert both.layers.groupby("module")["dense_macs"].sum().to_dict() == {"0": 24.0, "1": 12.0}


def _classify_by_hand(values: list[float], formats: list[SpikeFormat]):
    """The first format whose range and quantum every value fits (formats coarsest first)."""
    for f in formats:
        low = -f.q * f.levels if f.signed else 0.0
        if all(low <= v <= f.q * f.levels and (v / f.q).is_integer() for v in values):
            return f
    return None


@pytest.mark.parametrize("case", ["zeros-then-ones", "zeros-then-half", "ones-then-three", "real",
                                  "quarters", "signed", "nan-late"])
def test_value_classification_agrees_with_a_hand_reading_of_every_value(case):
    """The first elements may prove a tensor real; tensors whose first elements look like
    spikes must still be read to the end."""
    formats = [SpikeFormat(1.0, 1), SpikeFormat(1.0, 4), SpikeFormat(0.25, 4), SpikeFormat(1.0, 1, signed=True)]
    formats = sorted(formats, key=lambda f: (-f.q, f.levels))
    x = torch.zeros(3, 40)
    if case == "zeros-then-ones":
        x[2, 30:] = 1.0
    elif case == "zeros-then-half":
        x[2, 30:] = 0.5
    elif case == "ones-then-three":
        x[0, :] = 1.0
        x[2, 39] = 3.0
    elif case == "real":
        x = torch.randn(3, 40)
    elif case == "quarters":
        x[1, 5:9] = torch.tensor([0.25, 0.5, 0.75, 1.0])
    elif case == "signed":
        x[2, 30] = -1.0
        x[0, 3] = 1.0
    elif case == "nan-late":
        x[2, 39] = float("nan")
    found = classify_levels(x, formats)
    want = _classify_by_hand(x.flatten().tolist(), formats)
    assert (found[0] if found is not None else None) == want


@pytest.mark.parametrize("values", [
    [0.0, -0.0, 1.0, -1.0, 0.25, -3.0],
    [float("nan"), 0.0, 2.0],
    [0.0] * 5,
])
def test_nonzero_count_is_exact(values):
    x = torch.tensor(values)
    want = sum(1 for v in values if v != 0 or math.isnan(v))
    assert nonzero_count(x) == want
    assert nonzero_count(x.double()) == want
    assert nonzero_count(x.bool()) == want


def test_nonzero_count_above_float32_exact_range():
    x = torch.ones(2 ** 24 + 3)
    assert nonzero_count(x, nonneg=True) == 2 ** 24 + 3


def test_graded_binary_spikes_count_every_spike():
    """snnTorch's graded_spikes_factor: spikes of value 0.5; counted from the value sum
    (the binary shortcut) they must still equal the nonzero count."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(3)
    lif = snn.Leaky(beta=0.9, threshold=0.3, graded_spikes_factor=0.5, init_hidden=True)
    net = nn.Sequential(nn.Linear(6, 8), lif)
    x = torch.randn(4, 6) * 2
    out = {}
    h = lif.register_forward_hook(lambda m, a, o: out.setdefault("s", o.detach().clone()))
    p = snnsim.profile(net, x)
    h.remove()
    assert set(out["s"].unique().tolist()) <= {0.0, 0.5}
    assert p.totals["spikes"] * 4 == int((out["s"] != 0).sum()) > 0


def test_inference_mode_is_refused_in_one_line_not_counted_as_zero():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), neuron.IFNode())
    with torch.inference_mode(), pytest.raises(RuntimeError, match="torch.inference_mode.*torch.no_grad"):
        snnsim.profile(net, torch.randn(1, 1, 5, 5))
    assert snnsim.profile(net, torch.randn(1, 1, 5, 5)).totals["dense_macs"] == 9 * 2 * 9


def test_weight_sparsity_keeps_a_nan_weight_nonzero():
    """weight_sparsity drops zero weights only; a NaN weight is not zero (the run then stops on
    the NaN output, never counting it as a pruned synapse)."""
    from snnsim.counting.formulas import Operand

    w = torch.tensor([[0.0, float("nan")], [-1.0, 2.0]])
    assert Operand(w, "weight").nonzero_mask().tolist() == [[0.0, 1.0], [1.0, 1.0]]
