"""Properties that must hold for any input (hypothesis)."""
from __future__ import annotations

import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import snnsim
from snnsim import SpikeFormat
from snnsim.models.neurons import NILIF

FORMATS = [SpikeFormat(1.0, 1), SpikeFormat(0.25, 4), SpikeFormat(1.0, 4)]


def spike_tensor(seed: int, fmt: SpikeFormat, shape, density: float):
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(1, fmt.levels + 1, shape, generator=g).float()
    mask = torch.rand(shape, generator=g) < density
    return levels * mask * fmt.q


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), fmt=st.sampled_from(FORMATS), density=st.floats(0, 1),
       groups=st.sampled_from([1, 2, 4]), stride=st.sampled_from([1, 2]), padding=st.sampled_from([0, 1, 2]))
def test_syn_events_bounded_by_dense(seed, fmt, density, groups, stride, padding):
    x = spike_tensor(seed, fmt, (2, 4, 7, 7), density)
    model = nn.Conv2d(4, 8, 3, stride=stride, padding=padding, groups=groups)
    t = snnsim.profile(model, x, spike_formats=[fmt]).totals
    assert t["syn_events"] <= t["dense_macs"]
    assert t["syn_ops"] <= fmt.levels * t["syn_events"]
    assert t["syn_events"] <= t["syn_ops"] or t["syn_events"] == 0


@settings(max_examples=15, deadline=None)
@given(fmt=st.sampled_from(FORMATS), groups=st.sampled_from([1, 2]), padding=st.sampled_from([0, 1]))
def test_all_zero_spikes_count_nothing(fmt, groups, padding):
    # An all-zero tensor fits every format: it is a (silent) spike tensor, never MACs.
    x = torch.zeros(1, 4, 6, 6)
    t = snnsim.profile(nn.Conv2d(4, 4, 3, padding=padding, groups=groups), x, spike_formats=[fmt]).totals
    assert t["syn_events"] == t["syn_ops"] == t["mac_ops"] == 0
    assert t["dense_macs"] > 0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), fmt=st.sampled_from(FORMATS), batch=st.integers(2, 5))
def test_per_sample_counts_independent_of_batch(seed, fmt, batch):
    one = spike_tensor(seed, fmt, (1, 4, 6, 6), 0.4)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.Flatten(), nn.Linear(6 * 36, 5))
    single = snnsim.profile(model, one, spike_formats=[fmt]).totals
    repeated = snnsim.profile(model, one.repeat(batch, 1, 1, 1), spike_formats=[fmt]).totals
    assert single == repeated


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_repeated_runs_identical(seed):
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.lif = NILIF()
            self.fc = nn.Linear(8 * 16, 4)

        def forward(self, x):
            s = self.lif(self.conv(x).unsqueeze(0) * 3).squeeze(0)
            return self.fc(s.flatten(1))

    net, x = Net(), torch.randn(2, 3, 4, 4)
    a = snnsim.profile(net, x)
    b = snnsim.profile(net, x)
    assert a.totals == b.totals
    assert a.layers.equals(b.layers) and a.neurons.equals(b.neurons)
