"""Neuron records of the models users bring (issue 12): neurons that run without their
forward hooks firing (a SpikingJelly model imported back from NIR), readouts that emit
voltages (Norse LI / LICell, snnTorch StateLeaky(output=False), SpikingJelly NonSpiking
nodes) and neuron outputs outside their declared spike format.

References are brute forces written here: the same network run as plain PyTorch modules
with forward hooks collecting every neuron output, or hand counts from the shapes.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import snnsim
from snnsim import SpikeFormat


def _collect(model: nn.Module, types, run) -> dict[str, list[torch.Tensor]]:
    """Outputs of every module of `types`, per call, collected by forward hooks while run()."""
    seen: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, types):
            def hook(mod, args, out, name=name):
                while isinstance(out, (tuple, list)):
                    out = out[0]
                seen.setdefault(name, []).append(out.detach().clone())
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return seen


# ----------------------------------------------------------------- neurons hooks never see
def _sj_nir_pair():
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir

    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(6, 5), neuron.LIFNode(tau=2.0, v_threshold=0.3),
                        layer.Linear(5, 3), neuron.LIFNode(tau=2.0, v_threshold=0.3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = import_from_nir(export_to_nir(net, torch.rand(2, 6)))
    return net, gm, functional, neuron


def test_spikingjelly_model_imported_from_nir_counts_its_neurons():
    """import_from_nir wraps each node and runs it through functional_forward: no forward hook
    of the node fires. The counts must match the original network's, whose hooks do."""
    net, gm, functional, neuron = _sj_nir_pair()
    T, B = 4, 2
    torch.manual_seed(1)
    x = (torch.rand(T, B, 6) > 0.5).float()

    functional.reset_net(net)
    ref = _collect(net, neuron.BaseNode, lambda: [net(xt) for xt in x])
    ref_spikes = sum(int((o != 0).sum()) for outs in ref.values() for o in outs)
    assert ref_spikes > 0

    class Loop(nn.Module):                 # the documented way to run the imported graph
        def __init__(self):
            super().__init__()
            self.gm = gm

        def forward(self, seq):
            state, outs = None, []
            for xt in seq:
                out, state = self.gm(xt, state)
                outs.append(out)
            return torch.stack(outs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = snnsim.profile(Loop(), x, batch_size=B)
    assert p.totals["neuron_updates"] == T * (5 + 3)
    assert p.timesteps == T
    assert p.totals["spikes"] * B == ref_spikes
    assert p.complete and not p.unseen_neurons
    assert not [w for w in caught if type(w.message).__name__ == "UnseenNeuronsWarning"]
    assert snnsim.profile(Loop(), x).batch_size == B        # read from the neurons' [B, N] outputs
    per_module = p.neurons.groupby("module")["spikes"].sum() * B
    assert sorted(per_module.tolist()) == sorted(sum(int((o != 0).sum()) for o in outs) for outs in ref.values())


def test_neuron_running_around_its_hooks_is_reported_not_zero():
    """A wrapper that calls a node's step function directly skips the node's hooks: the node
    is named in a warning, in Profile.unseen_neurons, and the profile and energy are partial."""
    from spikingjelly.activation_based import neuron

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.node = neuron.LIFNode(tau=2.0)

        def forward(self, x):
            return self.node.single_step_forward(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.wrap = Wrap()

        def forward(self, x):
            return self.wrap(self.fc(x))

    with pytest.warns(snnsim.counting.UnseenNeuronsWarning, match="wrap.node"):
        p = snnsim.profile(Net(), torch.rand(2, 4), batch_size=2)
    assert [u["module"] for u in p.unseen_neurons] == ["wrap.node"]
    assert not p.complete and "wrap.node" in p.partial_note
    assert p.summary()["unseen_neurons"][0]["module"] == "wrap.node"
    e = snnsim.energy.estimate(p, "loihi2", "loihi")
    assert not e.complete and "wrap.node" in e.omitted[0]

    from analysis import tables
    assert "wrap.node" in tables.partial_note(p.summary())


# --------------------------------------------------------------------- non-spiking readouts
def test_norse_licell_readout_is_a_non_spiking_neuron():
    import norse.torch as norse

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 6)
            self.lif = norse.LIFCell()
            self.fc2 = nn.Linear(6, 3)
            self.li = norse.LICell()

        def forward(self, x):
            s1 = s2 = None
            out = []
            for xt in x:
                z, s1 = self.lif(self.fc1(xt) * 40, s1)
                v, s2 = self.li(self.fc2(z), s2)
                out.append(v)
            return torch.stack(out)

    torch.manual_seed(2)
    net, T, B = Net(), 6, 2
    x = torch.rand(T, B, 4)
    ref = _collect(net, (norse.LIFCell, norse.LICell), lambda: net(x))
    lif_spikes = sum(int((z != 0).sum()) for z in ref["lif"])
    assert lif_spikes > 0 and all(bool((v != 0).any()) for v in ref["li"][1:])   # the readout's voltages are nonzero

    p = snnsim.profile(net, x, batch_size=B)
    li = p.neurons[p.neurons.module == "li"]
    assert len(li) == T and not li.spiking.any()
    assert (li.spikes == 0).all() and (li.neurons == 3).all() and (li.firing_rate == 0).all()
    assert li.mean_value.tolist() == pytest.approx([float(v.mean()) for v in ref["li"]])
    assert p.totals["spikes"] * B == lif_spikes                     # only the LIF cell's spikes
    assert p.totals["neuron_updates"] == T * (6 + 3)
    assert p.non_spiking_neurons == ["li"] and p.is_spiking

    e = snnsim.energy.estimate(p, "loihi2", "loihi")
    row = e.layers.set_index("module").loc["li"]
    assert row.spike_messages == 0 and row.comm_J == 0 and row.neuron_updates == T * 3
    assert e.layers["spike_messages"].sum() * B == lif_spikes


def test_norse_li_multistep_readout():
    import norse.torch as norse

    torch.manual_seed(3)
    x = torch.rand(5, 2, 4)
    v, _ = norse.LI()(x)
    assert bool((v != 0).any())                       # voltages, counted as spikes before
    p = snnsim.profile(norse.LI(), x)
    assert p.batch_size == 2 and p.timesteps == 5
    assert p.totals["spikes"] == 0 and p.totals["neuron_updates"] == 5 * 4
    assert not p.neurons.spiking.any()


@pytest.mark.parametrize("output", [False, True])
def test_snntorch_stateleaky_time_major_and_membrane_only(output):
    """snnTorch's StateLeaky sees [T, B, C] at once; with output=False it returns the
    membrane potential only (a readout)."""
    import snntorch as snn

    torch.manual_seed(4)
    T, B, C = 6, 2, 3
    x = torch.rand(T, B, C) * 2
    lif = snn.StateLeaky(beta=0.8, channels=C, output=output)
    with torch.no_grad():
        out = lif(x)
    p = snnsim.profile(lif, x)
    assert p.batch_size == B and p.timesteps == T
    assert p.totals["neuron_updates"] == T * C
    if output:
        assert p.neurons.spiking.all()
        assert p.totals["spikes"] * B == int((out[0] != 0).sum())
    else:
        assert not p.neurons.spiking.any() and p.totals["spikes"] == 0


def test_spikingjelly_non_spiking_node_is_counted():
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(5)
    net = nn.Sequential(layer.Linear(4, 6), neuron.LIFNode(v_threshold=0.3), layer.Linear(6, 2),
                        neuron.NonSpikingLIFNode(tau=2.0))
    functional.set_step_mode(net, "m")
    T, B = 4, 3
    x = torch.rand(T, B, 4)
    p = snnsim.profile(net, x)
    assert p.batch_size == B
    readout = p.neurons[p.neurons.module == "3"]
    assert len(readout) == T and (readout.neurons == 2).all() and not readout.spiking.any()
    assert p.totals["neuron_updates"] == T * (6 + 2)


# ----------------------------------------------------------------- outputs off their format
def test_neuron_output_outside_its_format_warns_with_the_values():
    class HalfSpike(nn.Module):
        """A user neuron following snnsim's protocol, declaring binary spikes, emitting 0.5."""
        spike_format = SpikeFormat(1.0, 1)
        time_dim = None

        def forward(self, x):
            return (x > 0).float() * 0.5

    net = nn.Sequential(nn.Linear(3, 4), HalfSpike())
    with pytest.warns(snnsim.counting.SpikeFormatWarning, match=r"'1' \(HalfSpike\).*saw 0, 0\.5"):
        snnsim.profile(net, torch.randn(2, 3))


def test_library_neurons_in_format_do_not_warn():
    import norse.torch as norse
    import snntorch as snn
    from spikingjelly.activation_based import neuron

    torch.manual_seed(6)
    x = torch.rand(2, 5) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", snnsim.counting.SpikeFormatWarning)
        snnsim.profile(neuron.LIFNode(v_threshold=0.5), x)
        snnsim.profile(snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True), x)
        snnsim.profile(snn.Leaky(beta=0.9, threshold=0.5, graded_spikes_factor=0.25, init_hidden=True), x)
        snnsim.profile(norse.LIFCell(), x * 4)


def test_one_neuron_instance_serving_two_layers_keeps_the_true_timesteps():
    """An snnTorch Leaky called for two layers each step (its state passed in explicitly): each
    call used to be a timestep, so T doubled and each step's row held one layer. Hand count: T
    steps, each with both layers' neurons and spikes."""
    import snntorch as snn

    torch.manual_seed(0)
    T, B = 4, 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.lif = nn.Linear(6, 5), nn.Linear(5, 3), snn.Leaky(beta=0.9, threshold=0.2)

        def forward(self, x):
            m1, m2, out = self.lif.init_leaky(), self.lif.init_leaky(), []
            for xt in x:
                s1, m1 = self.lif(self.fc1(xt), m1)
                s2, m2 = self.lif(self.fc2(s1), m2)
                out.append((s1, s2))
            return out

    net, x = Net(), torch.rand(T, B, 6)
    with torch.no_grad():
        spikes = net(x)
    p = snnsim.profile(net, x)
    assert p.timesteps == T
    rows = p.neuron_summary().set_index("t")
    assert list(rows.neurons) == [5.0 + 3.0] * T                       # per sample, both layers
    assert [rows.spikes[t] * B for t in range(T)] == [float((s1 != 0).sum() + (s2 != 0).sum()) for s1, s2 in spikes]


def test_a_neuron_whose_output_grows_every_step_keeps_one_step_per_call():
    """Shapes that never repeat are steps of one layer, not layers: T stays the number of calls."""
    from spikingjelly.activation_based import neuron

    lif = neuron.IFNode(v_threshold=0.5)

    class Growing(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = lif

        def forward(self, x):
            return [self.lif(x[:, : t + 1]) for t in range(3)]       # [B, 1], [B, 2], [B, 3]

    p = snnsim.profile(Growing(), torch.rand(2, 3) * 2, batch_size=2)
    assert p.timesteps == 3 and list(p.neuron_summary().neurons) == [1.0, 2.0, 3.0]
