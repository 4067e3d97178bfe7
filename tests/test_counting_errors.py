"""Bad input: warned, listed or refused — never a silent zero."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import snnsim
from snnsim.counting import NonFiniteActivationError, NoNeuronsWarning


def test_no_neurons_warns_once_naming_formats():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snnsim.profile(nn.Linear(3, 2), torch.randn(1, 3))
    ours = [w for w in caught if issubclass(w.category, NoNeuronsWarning)]
    assert len(ours) == 1
    text = str(ours[0].message)
    for looked in ("NI-LIF", "SpikingJelly", "snnTorch", "Norse"):
        assert looked in text


def test_formats_given_means_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoNeuronsWarning)
        snnsim.profile(nn.Linear(3, 2), torch.ones(1, 3), spike_formats=[snnsim.SpikeFormat(1, 1)])


def test_unsupported_synaptic_operator_listed_as_uncounted():
    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4))

        def forward(self, x):
            return torch.outer(x[0], self.w) + torch.addr(torch.zeros(3, 4), x[0], self.w)

    p = snnsim.profile(Outer(), torch.randn(1, 3), spike_formats=[snnsim.SpikeFormat(1, 1)])
    assert "addr" in set(p.uncounted.op)
    assert p.summary()["uncounted"]


def test_nan_activation_names_the_module():
    net = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 2)))
    with torch.no_grad():
        net[1][0].weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteActivationError, match=r"'1\.0'"):
        snnsim.profile(net, torch.randn(1, 3), spike_formats=[snnsim.SpikeFormat(1, 1)])


def test_inf_input_names_first_module():
    net = nn.Sequential(nn.Conv2d(1, 1, 3))
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteActivationError, match="'0'"):
        snnsim.profile(net, x, spike_formats=[snnsim.SpikeFormat(1, 1)])


def test_bad_spike_format():
    with pytest.raises(ValueError, match="q must be > 0"):
        snnsim.SpikeFormat(0, 1)
    with pytest.raises(ValueError, match="levels"):
        snnsim.SpikeFormat(1, 0)


def test_replaced_state_buffers_never_pass_for_weights():
    """snnTorch swaps its membrane buffers every step; memory freed that way must not make a
    later activation look like a weight (regression: counts drifted run after run)."""
    import snntorch as snn
    from snntorch import utils

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True),
                        nn.Conv2d(8, 8, 3, padding=1), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True))
    data = (torch.rand(4, 3, 3, 16, 16) > 0.5).float()
    runs = []
    with torch.no_grad():
        for _ in range(3):
            utils.reset(net)
            with snnsim.Profiler(net) as prof:
                for t in range(data.shape[1]):
                    net(data[:, t])
            p = prof.result(batch_size=4)
            assert set(p.layers.operands) == {"spike*weight"}
            runs.append(p.totals)
    assert runs[0] == runs[1] == runs[2]


def test_nan_spikes_from_a_neuron_name_it():
    from snnsim.models.neurons import ILIF

    net = nn.Sequential(ILIF())
    x = torch.zeros(2, 1, 4)
    x[1, 0, 2] = float("nan")
    with pytest.raises(NonFiniteActivationError, match="neuron module '0'"):
        snnsim.profile(net, x, batch_size=1)


def test_huge_finite_values_are_not_called_nan():
    # float32 values whose float64 sum is finite: no false alarm
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1e38)
    snnsim.profile(lin, torch.tensor([[1.0, 1.0]]), spike_formats=[snnsim.SpikeFormat(1, 1)])


def test_interpolation_is_not_an_uncounted_synaptic_op():
    class Up(nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")

    p = snnsim.profile(Up(), torch.randn(1, 1, 4, 4), spike_formats=[snnsim.SpikeFormat(1, 1)])
    assert len(p.uncounted) == 0
