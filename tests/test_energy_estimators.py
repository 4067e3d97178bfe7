"""Estimators on hand-built count tables, checked against energies computed by hand.

The counts are built here (a small dataclass with the counting engine's fields), never by the
engine, so these tests pin the estimators alone.
"""
from __future__ import annotations

import math
import pathlib
import re
from dataclasses import dataclass, field

import pandas as pd
import pytest
import yaml

from snnsim.energy import Energy, estimate, estimate_all, list_hardware, load_hardware
from snnsim.energy.memory_aware import sram_access_energy

pJ = 1e-12
nJ = 1e-9

# --------------------------------------------------------------------------------------
# hand-built counts

LAYER_DEFAULTS = dict(module_type="Conv2d", op="aten.convolution", kind="conv", calls=1,
                      dense_macs=0.0, mac_ops=0.0, syn_events=0.0, syn_ops=0.0,
                      spike_spike=0.0, weight_numel=0, in_numel=0, out_numel=0,
                      spiking_input=False, thop=True)


def layer(module: str, **kw) -> dict:
    row = {"module": module, **LAYER_DEFAULTS, **kw}
    unknown = set(kw) - set(LAYER_DEFAULTS)
    assert not unknown, unknown
    return row


def neuron(module: str, t: int, neurons: int, spikes: int, spike_mass: int | None = None,
           levels: int = 1, module_type: str = "LIFNode") -> dict:
    mass = spikes if spike_mass is None else spike_mass
    return {"module": module, "module_type": module_type, "t": t, "neurons": neurons,
            "spikes": spikes, "spike_mass": mass, "firing_rate": spikes / neurons,
            "mean_level": mass / neurons, "levels": levels}


@dataclass
class Counts:
    """What the counting engine's Profile exposes (the estimators' whole input)."""

    layers: pd.DataFrame
    neurons: pd.DataFrame
    totals: dict
    timesteps: int
    is_spiking: bool
    model: str | None = None
    extra: dict = field(default_factory=dict)


def make_counts(layers: list[dict], neurons: list[dict] | None = None, timesteps: int = 1,
                model: str | None = None) -> Counts:
    L = pd.DataFrame(layers)
    N = pd.DataFrame(neurons or [], columns=["module", "module_type", "t", "neurons", "spikes",
                                             "spike_mass", "firing_rate", "mean_level",
                                             "levels"])
    totals = {k: float(L[k].sum()) for k in ("dense_macs", "mac_ops", "syn_events", "syn_ops",
                                             "spike_spike")}
    totals["neuron_updates"] = float(N["neurons"].sum()) if len(N) else 0.0
    totals["spikes"] = float(N["spikes"].sum()) if len(N) else 0.0
    return Counts(layers=L, neurons=N, totals=totals, timesteps=timesteps,
                  is_spiking=len(N) > 0, model=model)


def ann(macs: float, **kw) -> Counts:
    """A one-layer ANN whose thop MACs are `macs`."""
    return make_counts([layer("backbone", module_type="Linear", kind="linear", dense_macs=macs,
                              mac_ops=macs, **kw)])


def small_snn() -> Counts:
    """T = 2. conv1 on the image (real input) -> lif1 (200 neurons) -> fc2 (200 -> 10, spike
    input) -> lif2 (10 neurons), plus a spike x spike matmul (attention)."""
    layers = [
        layer("conv1", dense_macs=1000, mac_ops=1000, weight_numel=100, in_numel=300,
              out_numel=400),
        layer("fc2", module_type="Linear", op="aten.addmm", kind="linear", dense_macs=4000,
              syn_events=800, syn_ops=800, weight_numel=2000, in_numel=400, out_numel=20,
              spiking_input=True),
        layer("attn", module_type="SpikeAttention", op="aten.bmm", kind="matmul",
              dense_macs=300, spike_spike=40, in_numel=80, out_numel=16, spiking_input=True,
              thop=False),
    ]
    neurons = [neuron("lif1", 0, 200, 50), neuron("lif1", 1, 200, 30),
               neuron("lif2", 0, 10, 4), neuron("lif2", 1, 10, 6)]
    return make_counts(layers, neurons, timesteps=2)


def graded_snn() -> Counts:
    """One synaptic layer on graded spikes (levels 0..4), one neuron module, T = 2:
    t0: 10 of 50 neurons spike, levels sum 25; t1: 6 spike, levels sum 12.
    fc: 100 (nonzero input, weight) pairs, level-weighted 250."""
    layers = [layer("fc", module_type="Linear", kind="linear", dense_macs=1000,
                    syn_events=100, syn_ops=250, weight_numel=500, in_numel=100,
                    out_numel=100, spiking_input=True)]
    neurons = [neuron("lif", 0, 50, 10, 25, levels=4), neuron("lif", 1, 50, 6, 12, levels=4)]
    return make_counts(layers, neurons, timesteps=2)


# --------------------------------------------------------------------------------------
# ac-mac

@pytest.mark.parametrize("tracker,gflops,mj", [("OSTrack", 21.5, 98.90), ("HiT-B", 4.3, 19.78),
                                                ("STARK", 12.8, 58.88)])
def test_sdtrack_ann_convention(tracker, gflops, mj):
    # SDTrack's table: E_ANN = FLOPs x 4.6 pJ, FLOPs = thop MACs.
    e = estimate(ann(gflops * 1e9), "horowitz-45nm-fp32", "ac-mac", view="thop")
    assert e.applicable and e.total_j == pytest.approx(gflops * 1e9 * 4.6e-12, rel=1e-12)
    assert round(e.total_mj, 2) == mj


def test_ac_mac_hand_computed():
    e = estimate(small_snn(), "horowitz-45nm-fp32", "ac-mac")
    # conv1: 1000 MACs x 4.6 pJ = 4.6 nJ; fc2: 800 ACs x 0.9 pJ = 0.72 nJ;
    # attn: 40 spike x spike products x 0.9 pJ = 0.036 nJ
    assert e.total_j == pytest.approx(4.6 * nJ + 0.72 * nJ + 0.036 * nJ, rel=1e-12)
    t = e.layers.set_index("module")
    assert t.loc["conv1", "compute_J"] == pytest.approx(4.6 * nJ)
    assert t.loc["fc2", "compute_J"] == pytest.approx(0.72 * nJ)
    assert t.loc["attn", "spike_spike_J"] == pytest.approx(0.036 * nJ)
    assert list(e.layers.columns[:6]) == ["module", "module_type", "compute_J", "memory_J",
                                          "comm_J", "total_J"]
    assert (e.layers["total_J"] == e.layers["compute_J"]).all()
    assert e.omitted and any("memory" in s for s in e.omitted)
    assert any("neuron updates" in s and "420" in s for s in e.omitted)


def test_ac_mac_thop_view_drops_attention():
    e = estimate(small_snn(), "horowitz-45nm-fp32", "ac-mac", view="thop")
    assert e.total_j == pytest.approx(4.6 * nJ + 0.72 * nJ, rel=1e-12)
    assert "attn" not in set(e.layers["module"])


def test_ac_mac_int8():
    e = estimate(small_snn(), "horowitz-45nm-int8", "ac-mac")
    # 1000 x 0.23 pJ + 800 x 0.03 pJ + 40 x 0.03 pJ = 230 + 24 + 1.2 pJ
    assert e.total_j == pytest.approx(255.2 * pJ, rel=1e-12)


def test_paper_formula_equals_ac_mac_binary():
    """E = E_MAC x FLOPs(first, real-input layer) + E_AC x sum_l FLOPs_l x rate_l x T,
    worked by hand on small_snn without the attention product."""
    c = small_snn()
    c.layers = c.layers[c.layers["module"] != "attn"].reset_index(drop=True)
    T = 2
    flops_first = 1000                       # conv1, as counted
    flops_fc2_per_step = 200 * 10            # 200 inputs -> 10 outputs
    rate_lif1 = (50 + 30) / (200 * T)        # 0.2
    paper = 4.6 * pJ * flops_first + 0.9 * pJ * flops_fc2_per_step * rate_lif1 * T
    assert paper == pytest.approx(4.6 * nJ + 0.72 * nJ)
    assert estimate(c, "horowitz-45nm-fp32", "ac-mac").total_j == pytest.approx(paper, rel=1e-12)


def test_paper_formula_equals_ac_mac_graded():
    """Graded spikes: the papers' rate x D (rate per binary step) is the mean level here;
    E_AC x FLOPs x mean_level x T == E_AC x syn_ops."""
    c = graded_snn()
    T = 2
    flops_per_step = 1000 / T
    mean_level = (25 + 12) / (50 * T)        # 0.37: sum of levels per neuron and step
    # a hand-built layer consistent with it: syn_ops = FLOPs x mean level x T = 370
    c.layers.loc[0, "syn_ops"] = flops_per_step * mean_level * T
    paper = 0.9 * pJ * flops_per_step * mean_level * T
    assert estimate(c, "horowitz-45nm-fp32", "ac-mac").total_j == pytest.approx(paper, rel=1e-12)
    assert paper == pytest.approx(370 * 0.9 * pJ)


def test_pricing_override(tmp_path):
    doc = yaml.safe_load(_shipped("horowitz-45nm-fp32").read_text())
    doc["name"] = "mac-for-qk"
    doc["pricing"] = {"spike_spike": "e_mac"}
    p = tmp_path / "mac-for-qk.yaml"
    p.write_text(yaml.safe_dump(doc))
    e = estimate(small_snn(), p, "ac-mac")
    assert e.total_j == pytest.approx(4.6 * nJ + 0.72 * nJ + 40 * 4.6 * pJ, rel=1e-12)


def _shipped(name: str) -> pathlib.Path:
    import importlib.resources
    return pathlib.Path(str(importlib.resources.files("snnsim.hardware_profiles"))) / f"{name}.yaml"


# --------------------------------------------------------------------------------------
# memory-aware

def test_sram_curve_interpolation():
    hw = load_hardware("horowitz-45nm-fp32")
    e = sram_access_energy(hw, [1024, 8192, 32768, 128 * 1024, 1024**2, 4 * 1024**2])
    assert e[0] == pytest.approx(10 * pJ)                    # held below 8 KiB
    assert e[1] == pytest.approx(10 * pJ) and e[2] == pytest.approx(20 * pJ)
    # 128 KiB is 2/5 of the way (in log size) from 32 KiB to 1 MiB: 20 x 5^0.4 pJ
    assert e[3] == pytest.approx(20 * 5 ** 0.4 * pJ, rel=1e-12)
    assert e[4] == pytest.approx(100 * pJ)
    # above 1 MiB: the last segment's slope, 4 MiB is 2/5 of a 32x step further
    assert e[5] == pytest.approx(100 * 5 ** 0.4 * pJ, rel=1e-12)
    # 16 KiB lies halfway (in log size) between 8 and 32 KiB: sqrt(10 x 20)
    assert sram_access_energy(hw, [16384])[0] == pytest.approx(math.sqrt(200) * pJ, rel=1e-12)


def test_memory_aware_hand_computed_snn():
    c = small_snn()
    c.layers = c.layers[c.layers["module"] != "attn"].reset_index(drop=True)
    e = estimate(c, "horowitz-45nm-fp32", "memory-aware")
    # fp32 words; every memory here is < 8 KiB -> 10 pJ per 64-bit access = 5 pJ per 32-bit
    # word, 0.15625 pJ per bit. Spikes are binary: 1 bit each.
    word = 5 * pJ
    conv1 = 4.6 * pJ * 1000 + 1000 * word + 300 * word + 400 * word   # MACs, weight reads,
    #                                                                   input reads, output writes
    fc2 = 0.9 * pJ * 800 + 800 * word + 400 * (10 * pJ / 64) + 20 * word
    lif1 = 2 * (200 + 200) * word          # potential read + write per update
    lif2 = 2 * (10 + 10) * word
    t = e.layers.set_index("module")
    assert t.loc["conv1", "total_J"] == pytest.approx(conv1, rel=1e-12)
    assert t.loc["conv1", "memory_J"] == pytest.approx(8.5 * nJ, rel=1e-12)
    assert t.loc["fc2", "total_J"] == pytest.approx(fc2, rel=1e-12)
    assert t.loc["fc2", "act_read_J"] == pytest.approx(62.5 * pJ, rel=1e-12)
    assert t.loc["lif1", "potential_J"] == pytest.approx(lif1, rel=1e-12)
    assert e.total_j == pytest.approx(conv1 + fc2 + lif1 + lif2, rel=1e-12)
    assert e.total_j == pytest.approx(22.1825 * nJ, rel=1e-12)
    assert t["fits_on_chip"].all()
    assert any("word" in a for a in e.assumptions) and e.omitted


def test_memory_aware_ann_spills_to_dram():
    # 300,000 fp32 weights = 1.2 MB > the 1 MiB on-chip SRAM -> DRAM streaming, and on-chip
    # accesses at the 1 MiB price (100 pJ per 64 bits = 50 pJ per word).
    c = ann(300_000, weight_numel=300_000, in_numel=1000, out_numel=300)
    e = estimate(c, "horowitz-45nm-fp32", "memory-aware")
    word = 50 * pJ
    compute = 300_000 * 4.6 * pJ
    sram = 300_000 * word + 1000 * word + 300 * word
    dram = (300_000 + 1000 + 300) * 32 / 64 * 1.95 * nJ
    assert e.total_j == pytest.approx(compute + sram + dram, rel=1e-12)
    row = e.layers.iloc[0]
    assert row["dram_J"] == pytest.approx(dram, rel=1e-12)
    assert not row["fits_on_chip"]
    assert e.details["modules_spilling_to_dram"] == ["backbone"]


def test_memory_aware_same_model_for_ann_and_snn():
    # an ANN and an SNN layer with the same shape: the ANN reads a weight per MAC, the SNN per
    # synaptic event, nothing else differs in kind
    a = estimate(ann(2000, weight_numel=2000, in_numel=200, out_numel=10), "horowitz-45nm-fp32",
                 "memory-aware")
    word = 5 * pJ
    assert a.total_j == pytest.approx(2000 * 4.6 * pJ + 2000 * word + 200 * word + 10 * word,
                                      rel=1e-12)


def test_memory_aware_graded_spike_bits_and_int8():
    e = estimate(graded_snn(), "horowitz-45nm-int8", "memory-aware")
    # int8 words (8 bits), 16-bit potentials, spikes with levels 0..4 take 3 bits.
    per_bit = 10 * pJ / 64                   # all memories < 8 KiB
    fc = 250 * 0.03 * pJ + 100 * 8 * per_bit + 100 * 3 * per_bit + 100 * 8 * per_bit
    lif = 2 * 100 * 16 * per_bit
    assert e.total_j == pytest.approx(fc + lif, rel=1e-12)
    assert e.details["spike_bits"] == 3


# --------------------------------------------------------------------------------------
# loihi

def test_loihi_graded_spikes_binary_chip_vs_loihi2():
    c = graded_snn()
    l1 = estimate(c, "loihi", "loihi")
    l2 = estimate(c, "loihi2", "loihi")
    msg = (1.7 + 1 * 3.5) * pJ                      # E_spike + 1 hop x mean E_hop
    updates = 16 * 81 * pJ + (100 - 16) * 52 * pJ   # 16 spiking updates, 84 silent ones
    # Loihi 1 pays a level-k spike as k binary events: syn_ops = 250 synops, 37 messages
    assert l1.total_j == pytest.approx(250 * 23.6 * pJ + updates + 37 * msg, rel=1e-12)
    assert l1.total_j == pytest.approx(11756.4 * pJ, rel=1e-12)
    # Loihi 2 sends one event with a payload: syn_events = 100 synops, 16 messages
    assert l2.total_j == pytest.approx(100 * 23.6 * pJ + updates + 16 * msg, rel=1e-12)
    assert l2.total_j == pytest.approx(8107.2 * pJ, rel=1e-12)
    t1 = l1.layers.set_index("module")
    assert t1.loc["fc", "synops"] == 250 and t1.loc["lif", "spike_messages"] == 37
    assert t1.loc["lif", "comm_J"] == pytest.approx(37 * msg)
    assert l2.layers.set_index("module").loc["lif", "spike_messages"] == 16
    assert any("k binary spikes" in a for a in l1.assumptions)
    assert any("payload" in a for a in l2.assumptions)


def test_loihi_binary_spikes_same_on_both_chips():
    c = small_snn()
    l1 = estimate(c, "loihi", "loihi").total_j
    l2 = estimate(c, "loihi2", "loihi").total_j
    assert l1 == pytest.approx(l2, rel=1e-12)     # same constants, binary spikes


def test_loihi_hand_computed_with_host_work_and_hops():
    e = estimate(small_snn(), "loihi", "loihi", mean_hops=2)
    msg = (1.7 + 2 * 3.5) * pJ
    synops = 800 * 23.6 * pJ                       # fc2 only; conv1 (real input) and the
    #                                                spike x spike matmul run on the host
    upd = (80 * 81 + 320 * 52 + 10 * 81 + 10 * 52) * pJ
    assert e.total_j == pytest.approx(synops + upd + 90 * msg, rel=1e-12)
    text = " ".join(e.omitted)
    assert "1,000 MACs on real-valued" in text and "40 spike x spike" in text
    assert e.details["mean_hops"] == 2
    assert any("2 mean hop" in a for a in e.assumptions)


def test_loihi_sanafe_prices_the_same_spikes_with_silicon_calibrated_constants():
    """SANA-FE's calibrated Loihi figures (synapse 35.5 pJ, soma update 21.6 pJ, spike out
    69.3 pJ, axon out 111 pJ), by hand on the graded net's binary-chip counts; static power
    stated beside the total, never in it."""
    c = graded_snn()
    e = estimate(c, "loihi-sanafe", "loihi")
    msg = (111 + 1 * 3.5) * pJ                                     # axon out + one (pre-silicon) hop
    updates = 16 * (21.6 + 69.3) * pJ + (100 - 16) * 21.6 * pJ     # spiking neurons also pay spike out
    assert e.total_j == pytest.approx(250 * 35.5 * pJ + updates + 37 * msg, rel=1e-12)
    chips = e.details["mapping"]["chips_needed"]
    assert e.details["static_power_chip_w"] == pytest.approx(3.34 / 32, rel=1e-12)
    assert e.details["static_power_w"] == pytest.approx(chips * 3.34 / 32, rel=1e-12)
    assert any(o.startswith("static power, stated apart: 104.4 mW per chip") for o in e.omitted)
    # the pre-silicon profile on the very same counts: the spread a report shows
    pre = estimate(c, "loihi", "loihi")
    assert e.total_j / pre.total_j == pytest.approx((250 * 35.5 + 16 * 90.9 + 84 * 21.6 + 37 * 114.5)
                                                    / 11756.4, rel=1e-12)
    assert "static_power_w" not in pre.details


def test_loihi_profile_says_its_energies_are_pre_silicon():
    pre, cal = load_hardware("loihi"), load_hardware("loihi-sanafe")
    for k in ("e_synop", "e_neuron_update", "e_neuron_update_active", "e_spike", "e_hop_ew", "e_hop_ns"):
        assert pre.constants[k].status == "simulated", k
        assert "pre-silicon" in pre.constants[k].source
    for k in ("cores_per_chip", "neurons_per_core"):
        assert pre.constants[k].status == "specified", k
    for k in ("e_synop", "e_neuron_update", "e_spike"):
        assert cal.constants[k].status == "derived" and "SANA-FE" in cal.constants[k].source, k
    assert "32-chip" in cal.constants["static_power_chip"].source
    assert all(c.status != "measured" for k, c in pre.constants.items() if k.startswith("e_"))


def test_ann_on_loihi_not_applicable():
    for hw in ("loihi", "loihi2", "truenorth", "spinnaker2"):
        est = load_hardware(hw).estimators[0]
        e = estimate(ann(21.5e9), hw, est)
        assert e.applicable is False
        assert e.total_j is None and e.total_mj is None
        assert "ANN" in e.reason and "spiking" in e.reason
        assert e.to_dict()["total_j"] is None
        assert "not applicable" in repr(e)


def _conv_snn(channels: int, side: int, T: int = 2) -> Counts:
    neurons_per_t = channels * side * side
    layers = [layer("conv", dense_macs=1.0, syn_events=1.0, syn_ops=1.0,
                    weight_numel=3 * 3 * channels * channels, in_numel=T * neurons_per_t,
                    out_numel=T * neurons_per_t, spiking_input=True)]
    neurons = [neuron("lif", t, neurons_per_t, 0) for t in range(T)]
    return make_counts(layers, neurons, timesteps=T)


def test_loihi_capacity_fits():
    m = estimate(_conv_snn(64, 32), "loihi", "loihi").details["mapping"]
    # 65,536 neurons / 1,024 per core = 64 cores; the 36,864 8-bit conv weights stored in each
    # of the 64 cores = 18.9 Mbit -> 18 cores of 1 Mbit: the neurons decide, 64 cores.
    assert m["fits"] is True and m["cores_needed"] == 64 and m["chips_needed"] == 1
    assert m["neurons"] == 65536
    assert m["synapse_bytes"] == 36864 * 64
    assert m["verdict"].startswith("fits on one loihi chip: 64 of 128 cores")


def test_loihi_capacity_does_not_fit_and_says_by_how_much():
    e = estimate(_conv_snn(64, 64), "loihi", "loihi")
    m = e.details["mapping"]
    # 262,144 neurons -> 256 cores = 2x the 128 cores of one chip
    assert m["fits"] is False and m["cores_needed"] == 256 and m["chips_needed"] == 2
    assert m["core_ratio"] == pytest.approx(2.0) and m["neuron_ratio"] == pytest.approx(2.0)
    assert m["synapse_ratio"] == pytest.approx(36864 * 8 * 256 / (128 * 1024 * 8 * 128))
    assert "does not fit" in m["verdict"] and "2.0x" in m["verdict"] and "2 chips" in m["verdict"]
    assert e.layers.set_index("module").loc["conv", "cores"] == 256
    # Loihi 2 holds 8,192 neurons per core: 32 cores
    m2 = estimate(_conv_snn(64, 64), "loihi2", "loihi").details["mapping"]
    assert m2["fits"] is True and m2["cores_needed"] == 32
    assert any("conv weight sharing" in a for a in e.assumptions)


def test_dense_layer_synapse_memory_decides_cores():
    # 1,000 x 1,000 dense 8-bit weights = 8 Mbit = 8 cores of 1 Mbit, only 1 neuron core
    layers = [layer("fc", kind="linear", module_type="Linear", dense_macs=1e6, syn_events=10,
                    syn_ops=10, weight_numel=1_000_000, in_numel=1000, out_numel=1000,
                    spiking_input=True)]
    c = make_counts(layers, [neuron("lif", 0, 1000, 1)], timesteps=1)
    m = estimate(c, "loihi", "loihi").details["mapping"]
    assert m["cores_needed"] == 8 and m["fits"] is True


# --------------------------------------------------------------------------------------
# synop (TrueNorth, SpiNNaker 2)

def test_synop_truenorth_and_spinnaker2():
    c = graded_snn()
    tn = estimate(c, "truenorth", "synop")
    # binary-only: 250 level-weighted synaptic operations x 21.7 pJ, nothing else
    assert tn.total_j == pytest.approx(250 * 21.7 * pJ, rel=1e-12)
    assert "mapping" in tn.details
    sp = estimate(c, "spinnaker2", "synop")
    # graded payload: 100 events x 0.45 nJ + 100 neuron updates x 2.19 nJ
    assert sp.total_j == pytest.approx(100 * 0.45 * nJ + 100 * 2.19 * nJ, rel=1e-12)


# --------------------------------------------------------------------------------------
# gpu

def _gpu_counts(dense_macs=1e9, syn_ops=0.0, neurons=None, T=1) -> Counts:
    layers = [layer("conv", dense_macs=dense_macs, mac_ops=dense_macs if not neurons else 0,
                    syn_events=syn_ops, syn_ops=syn_ops, weight_numel=1e6, in_numel=1e6,
                    out_numel=1e6, spiking_input=bool(neurons))]
    return make_counts(layers, neurons, timesteps=T)


def test_gpu_roofline_hand_computed():
    e = estimate(_gpu_counts(), "gpu-a100", "gpu")
    # fp16, 30 % utilisation: compute 2e9 ops / (312e12 x 0.3) = 21.37 us;
    # memory (1e6 weights + 1e6 in + 1e6 out) x 2 B / (2039e9 x 0.3) = 9.81 us -> compute-bound
    t_c = 2e9 / (312e12 * 0.3)
    t_m = 3e6 * 2 / (2039e9 * 0.3)
    assert t_c > t_m
    assert e.total_j == pytest.approx(t_c * 400, rel=1e-12)
    assert e.details["time_s"] == pytest.approx(t_c, rel=1e-12)
    row = e.layers.iloc[0]
    assert row["bound"] == "compute" and row["compute_J"] == pytest.approx(t_c * 400)
    assert e.details["power_mode"] == "tdp" and e.details["precision"] == "fp16"


def test_gpu_memory_bound_neurons_and_precision():
    n = [neuron("lif", t, 1_000_000, 100_000) for t in range(4)]
    e = estimate(_gpu_counts(dense_macs=1e6, syn_ops=1e5, neurons=n, T=4), "gpu-h100", "gpu",
                 precision="fp32", utilisation=0.5)
    bw = 3.35e12 * 0.5
    conv = max(2e6 / (67e12 * 0.5), 3e6 * 4 / bw)             # memory-bound
    lif = max(4 * 4e6 / (67e12 * 0.5), 4 * 4e6 * 4 / bw)      # 4 elements per update, 4 B
    assert e.total_j == pytest.approx((conv + lif) * 700, rel=1e-12)
    assert set(e.layers["bound"]) == {"memory"}


def test_gpu_skips_no_zeros_and_pays_every_timestep():
    sparse = estimate(_gpu_counts(syn_ops=1e7, neurons=[neuron("lif", 0, 10, 1)]), "gpu-a100", "gpu")
    dense = estimate(_gpu_counts(syn_ops=9e8, neurons=[neuron("lif", 0, 10, 9)]), "gpu-a100", "gpu")
    assert sparse.total_j == pytest.approx(dense.total_j, rel=1e-12)
    # T = 4 timesteps: the counts carry 4x the dense MACs, the GPU pays 4x
    one = estimate(_gpu_counts(dense_macs=1e10), "gpu-a100", "gpu").total_j
    four = estimate(_gpu_counts(dense_macs=4e10), "gpu-a100", "gpu").total_j
    assert four == pytest.approx(4 * one, rel=1e-9)


def test_gpu_power_modes():
    c = _gpu_counts()
    maxn = estimate(c, "jetson-agx-orin", "gpu")
    low = estimate(c, "jetson-agx-orin", "gpu", power_mode="15W")
    assert maxn.details["power_mode"] == "MAXN" and maxn.details["power_w"] == 60
    assert low.total_j == pytest.approx(maxn.total_j * 15 / 60, rel=1e-12)
    # int8 dense on the GPU alone = 85 TOPS (170 sparse; the DLAs' 105 sparse TOPS are not
    # PyTorch's to use) at 30 %
    t_c = 2e9 / (85e12 * 0.3)
    t_m = 3e6 * 1 / (204.8e9 * 0.3)
    assert maxn.total_j == pytest.approx(max(t_c, t_m) * 60, rel=1e-12)
    with pytest.raises(ValueError, match="no power mode '99W'.*MAXN"):
        estimate(c, "jetson-agx-orin", "gpu", power_mode="99W")
    # FP32 on the CUDA cores (5.3 TFLOPS), 4-byte operands
    fp32 = estimate(c, "jetson-agx-orin", "gpu", precision="fp32")
    assert fp32.total_j == pytest.approx(max(2e9 / (5.3e12 * 0.3), 3e6 * 4 / (204.8e9 * 0.3)) * 60, rel=1e-12)
    with pytest.raises(ValueError, match="peak_fp16"):
        estimate(c, "jetson-agx-orin", "gpu", precision="fp16")


def test_gpu_measured_profile_replaces_model(tmp_path):
    p = tmp_path / "h100-lab.yaml"
    p.write_text(yaml.safe_dump({
        "name": "h100-lab", "base": "gpu-h100",
        "description": "our H100, NVML",
        "measurements": {"toy-tracker": {
            "joules_per_frame": {"value": 12.5, "unit": "mJ", "status": "measured",
                                 "source": "NVML total energy counter, 200 frames"},
            "method": "nvmlDeviceGetTotalEnergyConsumption difference / frames",
            "power_mode": "tdp", "precision": "fp16"}}}))
    c = _gpu_counts()
    e = estimate(c, p, "gpu", model="toy-tracker")
    assert e.total_j == pytest.approx(12.5e-3) and e.details["measured"] is True
    assert any("measured" in a for a in e.assumptions)
    c.model = "toy-tracker"                   # taken from the profile object too
    assert estimate(c, p, "gpu").total_j == pytest.approx(12.5e-3)
    modelled = estimate(c, p, "gpu", use_measured=False)
    assert modelled.details["measured"] is False
    assert modelled.total_j == pytest.approx(estimate(c, "gpu-h100", "gpu").total_j)
    assert estimate(_gpu_counts(), p, "gpu", model="other").details["measured"] is False


# --------------------------------------------------------------------------------------
# dispatch, errors, every profile

def test_estimate_errors():
    c = small_snn()
    with pytest.raises(ValueError, match="does not apply to hardware 'gpu-a100'"):
        estimate(c, "gpu-a100", "loihi")
    with pytest.raises(ValueError, match="unknown estimator 'magic'"):
        estimate(c, "loihi", "magic")
    with pytest.raises(ValueError, match="no option 'power_mode'"):
        estimate(c, "loihi", "loihi", power_mode="30W")
    with pytest.raises(ValueError, match="unknown view"):
        estimate(c, "loihi", "loihi", view="half")
    bad = Counts(layers=c.layers.drop(columns=["syn_ops"]), neurons=c.neurons, totals={},
                 timesteps=2, is_spiking=True)
    with pytest.raises(ValueError, match="lacks column.*syn_ops"):
        estimate(bad, "loihi", "loihi")


def test_default_estimator_is_the_profiles_first():
    e = estimate(small_snn(), "horowitz-45nm-fp32")
    assert e.estimator == "ac-mac"


def test_every_shipped_profile_prices_snn_and_ann():
    snn = estimate_all(small_snn())
    expected = sum(len(load_hardware(n).estimators) for n in list_hardware(False))
    assert len(snn) == expected
    for e in snn:
        assert isinstance(e, Energy) and e.applicable and e.total_j > 0, (e.hardware, e.estimator)
        assert e.omitted and e.assumptions
        assert (e.layers["total_J"] - e.layers["compute_J"] - e.layers["memory_J"]
                - e.layers["comm_J"]).abs().max() < 1e-18
        assert e.total_j == pytest.approx(e.layers["total_J"].sum())
    for e in estimate_all(ann(1e9, weight_numel=1000, in_numel=1000, out_numel=1000)):
        if load_hardware(e.hardware).kind == "neuromorphic":
            assert not e.applicable and e.total_j is None
        else:
            assert e.applicable and e.total_j > 0


def test_energy_package_imports_no_torch():
    pkg = pathlib.Path(__file__).resolve().parents[1] / "snnsim" / "energy"
    for f in pkg.glob("*.py"):
        text = f.read_text()
        assert not re.search(r"^\s*(import torch|from torch)", text, re.M), f.name


def test_summarise_for_summary_json():
    from snnsim.energy import summarise
    s = summarise(estimate_all(ann(1e9), ["horowitz-45nm-fp32", "loihi"]))
    assert s["horowitz-45nm-fp32"]["ac-mac"] == pytest.approx(4.6e-3)
    assert set(s["horowitz-45nm-fp32"]) == {"ac-mac", "memory-aware"}
    assert s["loihi"] == {"loihi": None}


@dataclass
class FakeTracker:
    """The shape of snnsim.tracking's TrackerProfile: per-frame Profiles + a template pass."""

    model: str
    frames: list
    template: Counts | None

    def layers(self):          # a method there, not a table
        return pd.concat([f.layers for f in self.frames])


def test_tracker_profile_energy_is_mean_frame_and_template_apart():
    f1, f2 = small_snn(), small_snn()
    f2.layers.loc[f2.layers["module"] == "fc2", ["syn_events", "syn_ops"]] = 1200
    tpl = make_counts([layer("tpl_conv", dense_macs=500, mac_ops=500)])
    tp = FakeTracker(model="toy", frames=[f1, f2], template=tpl)
    e = estimate(tp, "horowitz-45nm-fp32", "ac-mac")
    # frame 1: 5.356 nJ (see test_ac_mac_hand_computed); frame 2: fc2 has 1200 ACs (+0.36 nJ)
    assert e.total_j == pytest.approx((5.356 * nJ + 5.716 * nJ) / 2, rel=1e-12)
    assert e.layers.set_index("module").loc["fc2", "ac_J"] == pytest.approx(1000 * 0.9 * pJ)
    assert e.details["frames"] == 2 and any("template cached" in a for a in e.assumptions)


def test_neurons_of_several_calls_at_one_timestep_add_up():
    # one neuron module called for two branches at t = 0: 600 + 600 neurons live at once
    layers = [layer("fc", kind="linear", module_type="Linear", dense_macs=10, syn_events=1,
                    syn_ops=1, weight_numel=10, in_numel=10, out_numel=1200, spiking_input=True)]
    c = make_counts(layers, [neuron("lif", 0, 600, 0), neuron("lif", 0, 600, 0)], timesteps=1)
    m = estimate(c, "loihi", "loihi").details["mapping"]
    assert m["neurons"] == 1200 and m["cores_needed"] == 2


def test_frame_mean_totals_are_the_hand_mean_over_frames_of_two_structures():
    """FrameMean.mean_totals (the loihi summary's totals): per-frame means of every count,
    spike_mask included, over frames of two different structures -- by hand."""
    from snnsim.energy.frames import FrameMean

    a = make_counts([layer("fc", dense_macs=100, syn_events=10, syn_ops=20, spike_spike=1)],
                    [neuron("lif", 0, 50, 5)])
    b = make_counts([layer("fc", dense_macs=100, syn_events=30, syn_ops=40),
                     layer("extra", dense_macs=8, mac_ops=8)], [neuron("lif", 0, 50, 15)])
    b.layers["spike_mask"] = [0.0, 6.0]
    fm = FrameMean("m")
    for c in (a, a, b):
        fm.add(c)
    t = fm.mean_totals()
    assert t == {"dense_macs": (100 + 100 + 108) / 3, "mac_ops": 8 / 3, "syn_events": (10 + 10 + 30) / 3,
                 "syn_ops": (20 + 20 + 40) / 3, "spike_spike": 2 / 3, "spike_mask": 6 / 3,
                 "neuron_updates": 50.0, "spikes": (5 + 5 + 15) / 3}
