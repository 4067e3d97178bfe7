"""Break-even firing rates (snnsim.energy.break_even) against hand-solved cases.

The count tables are written by hand, priced under ac-mac (E = E_MAC mac_ops + E_AC syn_ops +
E_AC spike_spike), and the break-even rate solved on paper."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from snnsim.energy import estimate
from snnsim.energy.break_even import ScaledActivity, break_even, break_even_table, layer_break_even, measured_rate
from snnsim.energy.profiles import load_hardware, load_hardware_dict

SHIPPED = "horowitz-45nm-fp32"


def _half_ac_profile():
    """The shipped FP32 profile with E_MAC = 2 pJ and E_AC = 1 pJ (round numbers to solve by hand)."""
    import hardware_profiles
    from pathlib import Path
    data = yaml.safe_load((Path(hardware_profiles.__file__).parent / f"{SHIPPED}.yaml").read_text())
    data["name"] = "test-half-ac"
    data["constants"]["e_mac"]["value"] = 2.0
    data["constants"]["e_ac"]["value"] = 1.0
    return load_hardware_dict(data, "test")


def _layer(module, dense, mac=0.0, events=0.0, ops=0.0, ss=0.0, spiking=False, kind="conv"):
    return {"module": module, "module_type": "Conv2d", "op": "convolution", "kind": kind, "calls": 1.0,
            "dense_macs": dense, "mac_ops": mac, "syn_events": events, "syn_ops": ops, "spike_spike": ss,
            "weight_numel": 10.0, "in_numel": 10.0, "out_numel": 10.0, "spiking_input": spiking, "thop": True}


def _profile(layers, neurons=()):
    N = pd.DataFrame(list(neurons), columns=["module", "module_type", "t", "neurons", "spikes", "spike_mass"])
    return SimpleNamespace(layers=pd.DataFrame(layers), neurons=N, timesteps=1, is_spiking=bool(len(N)),
                           model="hand", uncounted=[], unseen_neurons=[])


LIF = ("lif", "LIF", 0, 100.0, 10.0, 40.0)   # 100 neurons, 10 spikes: rate 0.1, levels 4 each


def _twins():
    snn = _profile([_layer("enc", 100, mac=100),
                    _layer("fc", 1000, events=100, ops=400, spiking=True)], [LIF])
    ann = _profile([_layer("enc", 100, mac=100), _layer("fc", 1000, mac=1000)])
    return snn, ann


def test_measured_rate_is_spikes_over_updates():
    snn, _ = _twins()
    two = _profile(snn.layers.to_dict("records"), [LIF, ("lif2", "LIF", 0, 300.0, 90.0, 90.0)])
    assert measured_rate(two) == (pytest.approx(100 / 400), pytest.approx(0.3))


def test_scaling_touches_activity_only():
    snn, _ = _twins()
    s = ScaledActivity(snn, 3.0)
    fc = s.layers.set_index("module").loc["fc"]
    assert (fc["syn_events"], fc["syn_ops"], fc["dense_macs"], fc["mac_ops"]) == (300, 1200, 1000, 0)
    assert s.layers.set_index("module").loc["enc", "mac_ops"] == 100
    assert (s.neurons.loc[0, "spikes"], s.neurons.loc[0, "spike_mass"], s.neurons.loc[0, "neurons"]) == (30, 120, 100)
    assert snn.layers.set_index("module").loc["fc", "syn_ops"] == 400        # the original is untouched
    with pytest.raises(ValueError, match="activity factor"):
        ScaledActivity(snn, -1.0)


def test_whole_model_break_even_by_hand():
    # E_ann = (100 + 1000) x 2 pJ = 2200 pJ; E_snn(a) = 100 x 2 + 400 a x 1 = 200 + 400 a pJ
    # -> a* = 5, rate* = 5 x 0.1 = 0.5 (reachable: the only module fires at 0.1, a_max = 10)
    snn, ann = _twins()
    b = break_even(snn, ann, _half_ac_profile(), "ac-mac")
    assert b.verdict == "break-even"
    assert b.rate == pytest.approx(0.5, rel=1e-9)
    assert b.factor == pytest.approx(5.0, rel=1e-9)
    assert b.snn_j == pytest.approx(600e-12) and b.ann_j == pytest.approx(2200e-12)
    assert b.snn_j_silent == pytest.approx(200e-12) and b.rate_max == pytest.approx(1.0)


def test_layer_break_even_by_hand():
    snn, ann = _twins()
    t = layer_break_even(snn, ann, _half_ac_profile(), "ac-mac").set_index("module")
    assert list(t.index) == ["fc"]                       # 'enc' takes real input: no break-even
    fc = t.loc["fc"]
    assert fc["input_rate"] == pytest.approx(0.1)        # 100 events / 1000 synapse-input pairs
    assert fc["snn_J"] == pytest.approx(400e-12) and fc["ann_J"] == pytest.approx(2000e-12)
    assert fc["verdict"] == "break-even" and fc["break_even_rate"] == pytest.approx(0.5, rel=1e-9)


def test_spike_spike_products_scale_quadratically():
    # 'qk' multiplies two spike tensors: 50 a^2 products at E_AC; ANN: 200 MACs = 400 pJ.
    # whole model: 100 x 2 + 50 a^2 = 200 + 400 -> a = 2 sqrt(2), rate 0.1 x 2 sqrt(2)
    snn = _profile([_layer("enc", 100, mac=100), _layer("qk", 200, events=20, ss=50, spiking=True, kind="matmul")],
                   [LIF])
    ann = _profile([_layer("enc", 100, mac=100), _layer("qk", 200, mac=200, kind="matmul")])
    hw = _half_ac_profile()
    b = break_even(snn, ann, hw, "ac-mac")
    assert b.rate == pytest.approx(0.1 * 2 * math.sqrt(2), rel=1e-9)
    qk = layer_break_even(snn, ann, hw, "ac-mac").set_index("module").loc["qk"]
    assert qk["input_rate"] == pytest.approx(0.1)
    assert qk["break_even_rate"] == pytest.approx(0.1 * 2 * math.sqrt(2), rel=1e-9)


def test_verdicts_at_the_ends():
    snn, ann = _twins()
    # shipped FP32 (4.6 / 0.9 pJ): E_snn(a) = 460 + 360 a, E_ann = 5060 -> a* = 12.8 > a_max = 10
    b = break_even(snn, ann, SHIPPED, "ac-mac")
    assert b.verdict == "cheaper at any rate" and b.rate is None
    assert b.snn_j_at_max == pytest.approx((460 + 3600) * 1e-12)
    # an SNN whose real-input part alone costs more than the ANN
    heavy = _profile([_layer("enc", 5000, mac=5000), _layer("fc", 1000, events=100, ops=400, spiking=True)], [LIF])
    d = break_even(heavy, ann, SHIPPED, "ac-mac")
    assert d.verdict == "dearer at any rate" and d.rate is None and "silent" in d.reason
    # the ANN is not priced by the Loihi estimator: said, not a number
    n = break_even(snn, ann, "loihi", "loihi")
    assert n.verdict == "not applicable" and "ANN" in n.reason


def test_silent_model_is_refused():
    snn, ann = _twins()
    silent = _profile(snn.layers.to_dict("records"), [("lif", "LIF", 0, 100.0, 0.0, 0.0)])
    with pytest.raises(ValueError, match="no spikes"):
        break_even(silent, ann, SHIPPED)


def test_partial_counts_make_a_partial_break_even():
    snn, ann = _twins()
    snn.uncounted = [{"op": "aten.cdist", "module": "head", "calls": 1}]
    b = break_even(snn, ann, _half_ac_profile(), "ac-mac")
    assert b.complete is False and any("aten.cdist" in n for n in b.notes)


def test_frame_groups_are_weighted_like_estimate():
    # two frame structures, 3 and 1 frames: break-even of the mean frame energy
    snn, ann = _twins()
    busy = _profile([_layer("enc", 100, mac=100), _layer("fc", 1000, events=300, ops=1200, spiking=True)],
                    [("lif", "LIF", 0, 100.0, 30.0, 120.0)])

    class Grouped:
        model, uncounted, unseen_neurons, timesteps, is_spiking = "g", [], [], 1, True

        def frame_groups(self):
            return [(snn, 3), (busy, 1)]

    g = Grouped()
    hw = _half_ac_profile()
    # mean energy: (3 (200 + 400 a) + (200 + 1200 a)) / 4 = 200 + 600 a; ANN 2200 -> a* = 10/3;
    # mean rate (3 x 10 + 30) / 400 = 0.15 -> rate* = 0.5; busiest module rate 0.15
    assert estimate(g, hw, "ac-mac").total_j == pytest.approx(800e-12)
    b = break_even(g, ann, hw, "ac-mac")
    assert b.measured_rate == pytest.approx(0.15)
    assert b.rate == pytest.approx(0.5, rel=1e-9)


def test_table_covers_every_estimator_of_every_profile():
    snn, ann = _twins()
    t = break_even_table(snn, ann, [SHIPPED, "loihi"])
    pairs = list(zip(t["hardware"], t["estimator"]))
    assert pairs == [(SHIPPED, e) for e in load_hardware(SHIPPED).estimators] + \
        [("loihi", e) for e in load_hardware("loihi").estimators]


def test_curves_run_from_silent_to_the_busiest_module_at_rate_one():
    # E_snn(a) = 200 + 400 a pJ against E_ann = 2200 pJ; rate = 0.1 a, a in [0, 10]
    snn, ann = _twins()
    from snnsim.energy.break_even import break_even_curves
    c = break_even_curves(snn, ann, [_half_ac_profile(), "loihi"], points=3)
    assert set(c["hardware"]) == {"test-half-ac"}            # the ANN is not priced on Loihi
    assert set(c["estimator"]) == {"ac-mac", "memory-aware"}
    c = c[c["estimator"] == "ac-mac"]
    assert list(c["rate"]) == pytest.approx([0.0, 0.1, 0.5, 1.0])
    assert list(c["snn_j"]) == pytest.approx([200e-12, 600e-12, 2200e-12, 4200e-12])
    assert list(c["measured"]) == [False, True, False, False]
    assert c["ratio"].iloc[2] == pytest.approx(1.0)


def test_readouts_that_emit_voltages_have_no_firing_rate():
    # a Norse LI / snnTorch non-spiking readout is recorded spiking=False: its updates are not
    # part of the mean firing rate (20 spikes over 200 updates, not 20 over 300)
    snn, _ = _twins()
    rows = [dict(zip(["module", "module_type", "t", "neurons", "spikes", "spike_mass"], r), spiking=True)
            for r in (LIF, ("lif2", "LIF", 0, 100.0, 10.0, 10.0))]
    rows.append({"module": "readout", "module_type": "LI", "t": 0, "neurons": 100.0, "spikes": 0.0,
                 "spike_mass": 0.0, "spiking": False})
    p = SimpleNamespace(layers=snn.layers, neurons=pd.DataFrame(rows), timesteps=1, is_spiking=True, model="hand",
                        uncounted=[], unseen_neurons=[])
    assert measured_rate(p) == (pytest.approx(0.1), pytest.approx(0.1))


def test_loihi_energy_names_a_profile_without_the_loihi_estimator():
    from snnsim.loihi.fidelity import loihi_energy

    snn, _ = _twins()
    with pytest.raises(ValueError, match="'horowitz-45nm-fp32' has no 'loihi' estimator"):
        loihi_energy({"fixed": [snn]}, hardware=["horowitz-45nm-fp32"])
