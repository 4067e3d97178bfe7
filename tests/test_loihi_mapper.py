"""The Loihi mapper: BatchNorm folding, 8-bit quantisation, the integer graded neuron, the
partition of SpikeTrack (neurocore vs host), the fixed-point model, resources and the count
table the energy package prices. No lava needed.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnsim.loihi import graded
from snnsim.loihi.graded import GradedPopulation, decay_to_fixed, graded_level, graded_step
from snnsim.loihi.mapper import (MANT_MAX, MappingError, fold_bn, map_model, quantize_weights,
                                 required_exponent, fixed_point_model)
from snnsim.loihi.resources import place_population, resource_report
from snnsim.models.neurons import NILIF
from snnsim.models.spiketrack import FrozenBatchNorm

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- folding
@pytest.mark.parametrize("frozen", [False, True])
def test_fold_bn_matches_conv_then_bn(frozen):
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 7, 3, padding=1, bias=True)
    bn = FrozenBatchNorm(7) if frozen else nn.BatchNorm2d(7)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(7))
        bn.bias.copy_(torch.randn(7))
        bn.running_mean.copy_(torch.randn(7))
        bn.running_var.copy_(torch.rand(7) + 0.3)
    bn.eval()
    x = torch.randn(2, 5, 9, 9, dtype=torch.float64)
    ref = bn.double()(conv.double()(x))
    w, b = fold_bn(conv.weight, conv.bias, bn)
    out = torch.nn.functional.conv2d(x, w, b, padding=1)
    assert torch.allclose(out, ref, atol=1e-10)


def test_fold_bn_without_bias_or_bn():
    w0 = torch.randn(4, 3, 1, 1)
    w, b = fold_bn(w0, None, None)
    assert torch.equal(w, w0.double()) and torch.equal(b, torch.zeros(4, dtype=torch.float64))


# --------------------------------------------------------------------------- quantisation
def test_required_exponent_is_the_smallest_that_fits():
    for m in [1e-3, 0.37, 0.5, 1.0, 127.0, 127.5, 300.0, 2.0 ** -9 * 127]:
        e = required_exponent(m)
        assert m / 2.0 ** e <= MANT_MAX < m / 2.0 ** (e - 1), m
    assert required_exponent(127 * 2.0 ** -8) == -8          # exactly at the top: fits


def test_quantize_weights_rounding_and_range():
    w = torch.tensor([[0.5, -0.5, 1.5, 2.5, -2.5, 127.0, -127.0, 3.49]])
    m, e = quantize_weights(w)
    assert e == 0
    # round half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2
    assert m.tolist() == [[0, 0, 2, 2, -2, 127, -127, 3]]
    m2, e2 = quantize_weights(w, exponent=-1)           # forced exponent: clipped at +-127
    assert int(m2.abs().max()) == MANT_MAX and e2 == -1
    rng = torch.Generator().manual_seed(0)
    w = torch.randn(64, 32, generator=rng) * 0.05
    m, e = quantize_weights(w)
    assert int(m.abs().max()) <= MANT_MAX and int(m.abs().max()) > MANT_MAX // 2
    assert float((m.double() * 2.0 ** e - w.double()).abs().max()) <= 2.0 ** e / 2 + 1e-12


# --------------------------------------------------------------------------- the graded neuron
def test_graded_level_is_round_half_even_of_clamp():
    u = torch.arange(-300, 1400, dtype=torch.int64)
    for unit in (1, 2, 4, 64, 256, 48):
        got = graded_level(u, unit, 4)
        ref = torch.round(torch.clamp(u.double() / unit, 0, 4)).to(torch.int64)
        assert torch.equal(got, ref), unit


def test_graded_step_matches_float_ni_lif_on_the_grid():
    """With the decay 0.25 (12-bit exact) and inputs on a grid where every intermediate is exact,
    the integer neuron equals snnsim's float NI-LIF."""
    torch.manual_seed(0)
    neuron = NILIF()                       # decay logits logit(0.25)
    d12 = [decay_to_fixed(float(torch.sigmoid(v))) for v in neuron.decay.detach().double()]
    assert d12 == [1024, 1024, 1024]
    unit = 1 << 10
    x = torch.randint(-40, 120, (3, 1, 500)).double() * 16 / unit    # multiples of 16 / unit
    ref = neuron(x.float()).double()
    u = k = torch.zeros(1, 500, dtype=torch.int64)
    for t in range(3):
        xi = torch.round(x[t] * unit).to(torch.int64)
        u, k = graded_step(u, k, xi, torch.zeros(()), unit=unit, levels=4, decay12=d12[t - 1] if t else 0,
                           reset_unit=unit // 4, restart=t == 0)
        assert torch.equal(k.double() / 4, ref[t]), t


def test_graded_state_saturates_at_24_bits():
    u, k = graded_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                       torch.tensor([1 << 30, -(1 << 30), 5]), torch.zeros(()), unit=4, levels=4, decay12=0,
                       reset_unit=1, restart=True)
    assert u.tolist() == [(1 << 23) - 1, -((1 << 23) - 1), 5] and k.tolist() == [4, 0, 1]


def test_graded_population_schedule():
    p = GradedPopulation("p", (2,), unit=8, period=3, decay12=(100, 200))
    assert [p.schedule(t) for t in range(1, 8)] == [(True, 0), (False, 100), (False, 200), (True, 0),
                                                    (False, 100), (False, 200), (True, 0)]
    q = GradedPopulation("q", (2,), unit=8, period=0, decay12=(77,))
    assert [q.schedule(t) for t in (1, 2, 3)] == [(True, 77), (False, 77), (False, 77)]
    with pytest.raises(ValueError):
        GradedPopulation("bad", (2,), unit=0)


# --------------------------------------------------------------------------- SpikeTrack mapping
@pytest.fixture(scope="module")
def tiny():
    from snnsim.models import build_model

    torch.set_num_threads(1)
    model = build_model("spiketrack-tiny", weights="golden")
    mapping = map_model(model, "golden")
    return model, mapping


def test_partition_of_spiketrack(tiny):
    model, mp = tiny
    host = [L.name for L in mp.host_layers()]
    assert host == ["encoder.downsample1_1.encode_conv"]        # the image conv, and only it
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    ran = set(mp.layers)
    assert all(mp.layers[n].where == "neurocore" for n in ran if n not in host)
    assert len(mp.neurocore_layers()) >= 150 and ran <= set(convs)
    # every BatchNorm that ran is folded into the conv before it
    bns = {n for n, m in model.named_modules() if isinstance(m, (FrozenBatchNorm, nn.BatchNorm1d, nn.BatchNorm2d))}
    assert set(mp.bn_folded) <= bns and len(mp.bn_folded) == sum(1 for L in mp.layers.values() if L.bn)
    assert mp.layers["encoder.ConvBlock1_1.0.conv1"].bn == "encoder.ConvBlock1_1.0.bn1"
    # host operations: spike x spike products, Q M, pooling, upsampling, the sigmoid head
    ops = {(h.op, tuple(h.inputs)) for h in mp.host_ops}
    assert ("bmm", ("spike",)) in ops and ("bmm", ("host", "spike")) in ops
    kinds = {h.op for h in mp.host_ops}
    assert {"_adaptive_avg_pool2d", "upsample_bilinear2d", "sigmoid"} <= kinds
    table = mp.table()
    assert list(table.columns[:4]) == ["layer", "op", "where", "why"]
    assert set(table["where"]) == {"neurocore", "host"} and table["why"].str.len().min() > 10


def test_residual_stream_shares_one_scale(tiny):
    _, mp = tiny
    n3 = mp.sites["encoder.downsample1_2.encode_spike"]
    assert n3.layers == ["encoder.ConvBlock1_1.0.Conv.pwconv2.0", "encoder.ConvBlock1_1.0.conv2",
                         "encoder.downsample1_1.encode_conv"]
    groups = {mp.layers[l_].group for l_ in n3.layers}
    assert len(groups) == 1 and n3.group in groups
    s = n3.scale_bits
    for l_ in n3.layers:
        L = mp.layers[l_]
        assert L.scale_bits == s
        if L.where == "neurocore":
            assert L.exponent == -s + 2            # q = 1/4: m k 2**e q = m k 2**-s
            assert int(L.mant.abs().max()) <= MANT_MAX
    # the position embedding of the attention heads goes into the neurons' bias
    assert any(s.biases for s in mp.sites.values())


def test_scale_search_trades_clipping_for_precision(tiny):
    model, mp = tiny
    plain = map_model(model, "golden", clip_search=False)
    for L in plain.neurocore_layers():          # without the search no weight is clipped
        assert L.clipped == 0 and L.weight_max / 2.0 ** L.exponent <= MANT_MAX
    for gid, g in mp.groups.items():             # the search only ever makes a unit finer
        assert g["scale_bits"] >= plain.groups[gid]["scale_bits"]
    err = lambda m: sum(L.quant_rel_error ** 2 for L in m.neurocore_layers())   # noqa: E731
    assert err(mp) <= err(plain)


def test_fixed_synapse_is_integer_exact(tiny):
    model, mp = tiny
    fixed = fixed_point_model(model, mp)
    name = "encoder.ConvBlock1_1.0.conv1"
    L = mp.layers[name]
    layer = dict(fixed.named_modules())[name]
    k = torch.randint(0, 5, (1, 8, 12, 12))
    y = layer(k.float() / 4)
    acc = torch.nn.functional.conv2d(k.double(), L.mant.double(), padding=1)   # sum m k, exact
    ref = (acc + L.bias_int.double().reshape(1, -1, 1, 1)) / 2.0 ** L.scale_bits
    assert torch.equal(y.double(), ref)
    # the BatchNorm after it is an identity now; the float model is untouched
    assert torch.equal(dict(fixed.named_modules())["encoder.ConvBlock1_1.0.bn1"](y), y)
    assert type(dict(model.named_modules())[name]) is nn.Conv2d


def test_fixed_model_tracks_the_float_model(tiny):
    model, mp = tiny
    fixed = fixed_point_model(model, mp)
    ex = model.example_inputs("golden")
    with torch.no_grad():
        of = model.forward_search(ex["search"], model.forward_template(ex["template"]))
        oq = fixed.forward_search(ex["search"], fixed.forward_template(ex["template"]))
    assert of["score_map"].shape == oq["score_map"].shape
    assert float((of["score_map"] - oq["score_map"]).abs().max()) < 0.05
    assert not torch.equal(of["encoder_out_xz"], oq["encoder_out_xz"])       # it is a different arithmetic


def test_map_model_rejects_ann_and_neuronless():
    class Ann(nn.Module):
        kind = "ann"
    with pytest.raises(MappingError, match="is an ANN"):
        map_model(Ann(), name="dummy")

    class NoNeurons(nn.Module):
        kind = "spiking"

        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 1)
    with pytest.raises(MappingError, match="no snnsim NI-LIF"):
        map_model(NoNeurons(), name="dummy")


# --------------------------------------------------------------------------- resources
def test_place_population_by_hand():
    # 100 channels x 100 positions, 8192 neurons and 1024 bits per core, 10 weights of 8 bits per channel
    r = place_population(100, 100, 10, 8192, 1024, 8)
    assert r["cores"] == 9 and r["stored_bits"] == 100 * 80 and r["spatial_tiles"] == 1   # 12 channels per core (memory)
    r = place_population(4, 20000, 9, 8192, 1 << 20, 8)       # a channel's map needs 3 cores
    assert r["cores"] == 12 and r["spatial_tiles"] == 3 and r["stored_bits"] == 4 * 3 * 72
    r = place_population(2, 10, 300, 8192, 1024, 8)           # one channel's kernel spans 3 cores
    assert r["fan_in_split"] == 3 and r["cores"] == 2 * 3


def test_resource_report_tiny(tiny):
    _, mp = tiny
    r = resource_report(mp, "loihi2")
    lim = r["limits"]
    assert lim["neurons_per_core"]["si"] == 8192 and lim["cores_per_chip"]["si"] == 128
    assert all(v["source"] for v in lim.values())
    t = r["totals"][r["recommended"]]
    assert t["cores"] >= math.ceil(t["neurons"] / 8192) and t["chips"] == math.ceil(t["cores"] / 128)
    assert r["cores"] == t["cores"] and r["chips"] == t["chips"]
    pops = r["populations"]
    assert len(pops) == len(mp.sites) and int(pops["neurons"].sum()) == r["totals"]["fanout"]["neurons"]
    assert r["totals"]["relay"]["neurons"] > r["totals"]["fanout"]["neurons"]
    assert r["host"]["layers"] == ["encoder.downsample1_1.encode_conv"] and r["host"]["macs_per_frame"] > 0


# --------------------------------------------------------------------------- counts for the energy package
def test_loihi_counts_priced_by_the_loihi_estimator(tiny):
    from snnsim.counting import Profiler
    from snnsim.energy import estimate
    from snnsim.loihi.fidelity import loihi_counts

    model, mp = tiny
    fixed = fixed_point_model(model, mp)
    ex = model.example_inputs("golden")
    with torch.no_grad():
        cache = fixed.forward_template(ex["template"])
        with Profiler(fixed) as prof:
            fixed.forward_search(ex["search"], cache)
            p = prof.result(1)
    c1 = loihi_counts(p, mp, residual="one-copy")
    cf = loihi_counts(p, mp, residual="fanout")
    cr = loihi_counts(p, mp, residual="relay")
    L = c1.layers
    host = L[~L["module"].isin([x.name for x in mp.neurocore_layers()])]
    assert float(host["syn_events"].sum()) == 0 and float(host["mac_ops"].sum()) > 0
    nc = L[L["module"] == "encoder.downsample3.encode_conv"]
    assert float(cf.layers.loc[nc.index, "syn_events"].sum()) == pytest.approx(
        float(nc["syn_events"].sum()) * len(mp.layers["encoder.downsample3.encode_conv"].consumers))
    e = estimate(c1, "loihi2", "loihi")
    assert e.applicable and e.total_j > 0 and "mapping" in e.details
    # relay: a stream layer is evaluated at most twice, plus relay populations and identity synapses
    ds3 = cr.layers[cr.layers["module"] == "encoder.downsample3.encode_conv"]
    assert float(ds3["syn_events"].sum()) == pytest.approx(2 * float(nc["syn_events"].sum()))
    assert cr.layers["module"].str.endswith(".relay_in").any() and cr.neurons["module"].str.endswith(".relay").any()
    er, ef = estimate(cr, "loihi2", "loihi"), estimate(cf, "loihi2", "loihi")
    assert e.total_j < ef.total_j and e.total_j < er.total_j
    assert float(c1.neurons["spikes"].sum()) > 0


# --------------------------------------------------------------------------- the adapter protocol
class UserGradedSilent(nn.Module):
    """A user's own graded neuron (no snnsim class): the counting protocol only (spike_format,
    time_dim), no Loihi mapping declared."""

    @property
    def spike_format(self):
        from snnsim import SpikeFormat

        return SpikeFormat(1.0 / self.levels, self.levels)

    def forward(self, x):
        from snnsim.models.neurons import ni_lif

        return ni_lif(x, self.decay, self.levels, self.time_dim)


class UserGraded(UserGradedSilent):
    """The same, declaring its Loihi mapping (the adapter protocol's loihi_neuron)."""

    def loihi_neuron(self):
        return {"kind": "NI-LIF", "decays": tuple(float(torch.sigmoid(v)) for v in self.decay.detach().double())}


def _swap_neurons(model, declare: bool):
    """Every NI-LIF becomes a user class, in place (the model also holds its neurons outside
    the module tree: the template branch's views share them)."""
    for m in model.modules():
        if isinstance(m, NILIF):
            m.__class__ = UserGraded if declare else UserGradedSilent
    return model


def test_mapper_asks_the_neurons_not_their_classes(tiny):
    """The same network with every NI-LIF replaced by a user's class that declares the same
    Loihi mapping maps to the same sites (kind, decays, quanta, shapes)."""
    from snnsim.models import build_model

    _, ref = tiny
    user = _swap_neurons(build_model("spiketrack-tiny", weights="golden"), declare=True)
    assert not any(isinstance(m, NILIF) for m in user.modules())
    mp = map_model(user, "golden")
    assert list(mp.sites) == list(ref.sites)
    for name, site in mp.sites.items():
        want = ref.sites[name]
        assert (site.neuron, site.decay12, site.q_out, site.levels, site.shape) == \
            (want.neuron, want.decay12, want.q_out, want.levels, want.shape), name
    # without the declaration there is nothing to map
    silent = _swap_neurons(build_model("spiketrack-tiny", weights="golden"), declare=False)
    with pytest.raises(MappingError, match="no snnsim NI-LIF / I-LIF neurons"):
        map_model(silent, name="silent")
