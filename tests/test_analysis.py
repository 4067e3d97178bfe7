"""snnsim.analysis tables, figures and the spike capture, on small hand-made inputs
(exact where the truth is exact; no tracker runs here)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from snnsim.analysis import figures, tables
from snnsim.analysis.capture import load_capture
from snnsim.counting import Profiler
from snnsim.pipeline.capture import CaptureError, SpikeCapture, _to_tbcp, check_module, choose_module
from snnsim.counting.formats import SpikeFormat


# ------------------------------------------------------------------ fixtures (plain data)
def _summary(model: str, kind: str, energy: dict, template: dict | None = None, reasons: dict | None = None) -> dict:
    details = []
    for hw, by in energy.items():
        for est, j in by.items():
            details.append({"hardware": hw, "estimator": est, "applicable": j is not None, "total_j": j,
                            "reason": (reasons or {}).get((hw, est)), "omitted": [f"{est} leaves out X"],
                            "assumptions": [f"{est} assumes Y"]})
    return {"model": model, "kind": kind, "params": 1000, "weights": "golden (test)", "energy": energy,
            "energy_template": template, "energy_details": details,
            "totals": {"dense_macs": 10.0, "mac_ops": 4.0}, "template": {"dense_macs": 5.0, "mac_ops": 2.0},
            "thop_macs": 15.0}


SNN = _summary("snn", "spiking", {"asic": {"ac-mac": 1e-3, "memory-aware": 4e-3}, "chip": {"loihi": 2e-3}},
               template={"asic": {"ac-mac": 5e-4, "memory-aware": 2e-3}, "chip": {"loihi": 1e-3}})
ANN = _summary("ann", "ann", {"asic": {"ac-mac": 1e-2, "memory-aware": 2e-2}, "chip": {"loihi": None}},
               template={"asic": {"ac-mac": 5e-3, "memory-aware": 1e-2}, "chip": {"loihi": None}},
               reasons={("chip", "loihi"): "the model has no spiking neurons (an ANN): chip runs spiking networks only"})


def _energy_table() -> pd.DataFrame:
    rows = []
    for branch, scale in (("frame", 1.0), ("template", 0.5)):
        for i in range(5):
            rows.append({"module": f"m{i}", "module_type": "Conv2d" if i % 2 else "Linear",
                         "compute_J": scale * (i + 1), "memory_J": scale * 2 * (i + 1), "comm_J": 0.0,
                         "total_J": scale * 3 * (i + 1), "hardware": "asic", "estimator": "memory-aware",
                         "branch": branch})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ formatting
def test_fmt_energy_units_and_not_applicable():
    assert tables.fmt_energy(1.921e-3) == "1.921 mJ"
    assert tables.fmt_energy(2.5) == "2.5 J"
    assert tables.fmt_energy(6.656e-5) == "66.56 µJ"
    assert tables.fmt_energy(None) == "not applicable"
    assert tables.fmt_energy(float("nan")) == "not applicable"
    assert tables.fmt_ratio(0.018) == "0.018 (1/55.6)"
    assert tables.fmt_ratio(None) == "not applicable"


# ------------------------------------------------------------------ headline and ratios
def test_headline_rows_ratios_and_not_applicable():
    head = tables.headline(SNN, [ANN])
    assert list(head["hardware"]) == ["asic", "asic", "chip"]
    assert head.loc[0, "joules_per_frame"] == pytest.approx(1e-3)
    assert head.loc[0, "joules_template_pass"] == pytest.approx(5e-4)
    assert head.loc[0, "ratio_vs_ann"] == pytest.approx(0.1)
    assert head.loc[1, "ratio_vs_ann"] == pytest.approx(0.2)
    assert pd.isna(head.loc[2, "ratio_vs_ann"])          # the ANN cannot run on the chip
    ann = tables.energy_rows(ANN)
    row = ann[ann["hardware"] == "chip"].iloc[0]
    assert not row["applicable"] and pd.isna(row["joules_per_frame"]) and "no spiking neurons" in row["reason"]


def test_not_applicable_is_a_sentence():
    (sentence,) = tables.not_applicable_sentences(ANN)
    assert sentence == ("On chip the loihi estimator is not applicable to ann: the model has no spiking neurons "
                        "(an ANN): chip runs spiking networks only.")
    two = _summary("ann", "ann", {"a": {"loihi": None}, "b": {"synop": None}},
                   reasons={("a", "loihi"): "no neurons: a runs SNNs only", ("b", "synop"): "no neurons: b runs SNNs only"})
    (grouped,) = tables.not_applicable_sentences(two)
    assert grouped == "On a (loihi) and b (synop) the estimators are not applicable to ann: no neurons: each of these " \
                      "runs SNNs only."
    assert tables.not_applicable_sentences(SNN) == []


def test_comparison_ratios_and_spread_exact():
    comp = tables.comparison([SNN, ANN])
    assert len(comp) == 6
    r = tables.ratios(comp)
    assert list(r["ratio"][:2]) == pytest.approx([0.1, 0.2])
    assert pd.isna(r.loc[2, "ratio"]) and "not applicable" in r.loc[2, "reason"] and "ann" in r.loc[2, "reason"]
    assert r.loc[0, "ann_over_snn"] == pytest.approx(10.0)
    s = tables.spread(comp).set_index(["model", "hardware"])
    assert s.loc[("snn", "asic"), "max_over_min"] == pytest.approx(4.0)
    assert s.loc[("snn", "all"), "n"] == 3 and s.loc[("snn", "all"), "max_over_min"] == pytest.approx(4.0)
    assert s.loc[("ann", "all"), "n"] == 2 and s.loc[("ann", "all"), "cheapest"] == "asic / ac-mac"


def test_estimator_notes_and_counts():
    notes = tables.estimator_notes(ANN)
    na = notes[notes["note"] == "not applicable"]
    assert list(na["hardware"]) == ["chip"]
    assert set(notes["note"]) == {"assumption", "omitted", "not applicable"}
    c = tables.counts_table(SNN).set_index("count")
    assert c.loc["dense_macs", "per_frame"] == 10.0 and c.loc["dense_macs", "template_pass"] == 5.0


# ------------------------------------------------------------------ per-layer energy
def test_layer_energy_shares_ranks_and_top_k():
    layers = tables.layer_energy(_energy_table())
    for _, g in layers.groupby("branch"):
        assert g["share"].sum() == pytest.approx(1.0)
        assert list(g["rank"]) == [1, 2, 3, 4, 5]
        assert list(g["module"]) == ["m4", "m3", "m2", "m1", "m0"]
    assert layers.loc[0, "share"] == pytest.approx(15 / 45)
    top = tables.top_layers(layers, 2)
    frame = top[top["branch"] == "frame"]
    assert list(frame["module"]) == ["m4", "m3", "(3 other modules)"]
    assert frame["total_J"].sum() == pytest.approx(45.0)        # the rest is kept, not dropped
    assert frame["compute_J"].sum() == pytest.approx(15.0)
    b = tables.branch_energy(layers).set_index("branch")
    assert b.loc["frame", "total_J"] == pytest.approx(45.0) and b.loc["template", "memory_J"] == pytest.approx(15.0)
    ts = tables.type_share(layers)
    assert ts["share"].sum() == pytest.approx(1.0)
    assert tables.layer_energy(None).empty and figures.layer_energy(tables.layer_energy(None)) is None


def test_layer_energy_figure_has_a_menu_per_profile():
    e = pd.concat([_energy_table(), _energy_table().assign(estimator="ac-mac")], ignore_index=True)
    fig = figures.layer_energy(tables.layer_energy(e), k=3)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["asic / memory-aware", "asic / ac-mac"]
    assert len(fig.data) == 2 * 2 * 3                            # combos x branches x components
    assert sum(bool(v) for v in buttons[1].args[0]["visible"]) == 6


# ------------------------------------------------------------------ firing rates
def _neurons() -> pd.DataFrame:
    rows = []
    for frame in (0, 1):
        for t in (0, 1):
            rows.append({"module": "a", "module_type": "LIF", "order": 0, "call": 0, "t": t, "neurons": 10,
                         "spikes": 2 + frame, "spike_mass": 4 + frame, "branch": "frame", "frame": frame})
            rows.append({"module": "b", "module_type": "LIF", "order": 1, "call": 0, "t": t, "neurons": 20,
                         "spikes": 5, "spike_mass": 5, "branch": "frame", "frame": frame})
            rows.append({"module": "b", "module_type": "LIF", "order": 2, "call": 1, "t": t, "neurons": 20,
                         "spikes": 0, "spike_mass": 0, "branch": "frame", "frame": frame})
    rows.append({"module": "a", "module_type": "LIF", "order": 0, "call": 0, "t": 0, "neurons": 10, "spikes": 10,
                 "spike_mass": 30, "branch": "template", "frame": -1})
    return pd.DataFrame(rows)


def test_firing_heatmap_aggregates_frames_exactly():
    heat = tables.firing_heatmap(_neurons())
    a = heat[(heat["branch"] == "frame") & (heat["module"] == "a") & (heat["t"] == 0)].iloc[0]
    assert a["neurons"] == 20 and a["spikes"] == 5 and a["firing_rate"] == pytest.approx(0.25)
    assert a["mean_level"] == pytest.approx(9 / 20)
    assert set(heat.loc[heat["module"] == "b", "row"]) == {"b [call 0]", "b [call 1]"}
    tpl = heat[heat["branch"] == "template"].iloc[0]
    assert tpl["firing_rate"] == 1.0 and tpl["mean_level"] == 3.0
    rates = tables.module_rates(_neurons()).set_index(["branch", "module"])
    assert rates.loc[("frame", "b"), "firing_rate"] == pytest.approx(20 / 160)
    fig = figures.firing_heatmap(heat)
    assert [tr.type for tr in fig.data] == ["heatmap", "heatmap"]     # template | frame side by side
    assert list(fig.data[1].y) == ["a", "b [call 0]", "b [call 1]"]
    assert np.isnan(fig.data[0].z[1][0])                             # blank where the module does not run
    assert figures.firing_heatmap(tables.firing_heatmap(None)) is None
    assert choose_module(_neurons()) == "a"                          # runs in both branches


# ------------------------------------------------------------------ capture
class _Neuron(nn.Module):
    """A neuron following snnsim's adapter protocol: multi-step, graded (q = 1/2, 2 levels)."""
    spike_format = SpikeFormat(0.5, 2)
    time_dim = 0

    def forward(self, x):
        return (x.clamp(0, 1) * 2).round() / 2


class _Tracker(nn.Module):
    kind = "spiking"
    timesteps = 2

    def __init__(self):
        super().__init__()
        self.lif = _Neuron()
        self.other = nn.Identity()

    def forward_template(self, z):
        return self.lif(z)

    def forward_search(self, x, cache):
        return self.lif(x)


def capture_spikes(model, module, template, searches):
    """The counted passes as profile_tracker runs them, with a SpikeCapture fed by the
    Profiler (module None: chosen after the first pass)."""
    cap = SpikeCapture(model, module)
    with torch.no_grad(), Profiler(model, observers=cap.observers()) as prof:
        if template is not None:
            cap.begin("template")
            model.forward_template(template)
            if cap.deciding:
                cap.choose(prof.result(1).neurons)
                prof.observers = cap.observers()
        for x in searches:
            prof.reset()
            cap.begin("frame")
            model.forward_search(x, None)
            if cap.deciding:
                cap.choose(prof.result(1).neurons)
                prof.observers = cap.observers()
    return cap.finish()


def test_capture_maps_are_exact():
    model = _Tracker()
    template = torch.zeros(2, 1, 3, 4, 4)
    template[:, 0, 1, 0, 0] = 1.0                                   # channel 1, top-left, both timesteps
    search = torch.zeros(2, 1, 3, 4, 4)
    search[0, 0, 2, 3, 3] = 0.5                                     # level 1 at t0 only
    cap = capture_spikes(model, "lif", template, [search, search])
    tm, fm = cap.maps[("template", 0)], cap.maps[("frame", 0)]
    assert tm["spatial_rate"][0, 0] == pytest.approx(1 / 3)         # 1 of 3 channels, both timesteps
    assert tm["channel_rate"].tolist() == pytest.approx([0, 1 / 16, 0])
    assert tm["channel_level"].tolist() == pytest.approx([0, 2 / 16, 0])   # value 1.0 = level 2
    assert fm["spatial_rate"][3, 3] == pytest.approx(1 / 6)         # half the timesteps, 1 of 3 channels
    assert fm["channel_position"].shape == (3, 16)
    assert cap.totals[("frame", 0)]["spikes"] == 2 and cap.totals[("frame", 0)]["neurons"] == 2 * 2 * 48
    assert cap.layout == "T, B, C, H, W"
    with pytest.raises(CaptureError, match="'other' is not a neuron module"):
        check_module(model, "other")
    with pytest.raises(CaptureError, match="'nope' is no module"):
        check_module(model, "nope")


def test_auto_capture_keeps_the_busiest_module_of_the_first_pass():
    class Two(_Tracker):
        def __init__(self):
            super().__init__()
            self.quiet = _Neuron()

        def forward_template(self, z):
            return self.quiet(z * 0) + self.lif(z)

        def forward_search(self, x, cache):
            return self.quiet(x * 0) + self.lif(x)

    x = (torch.rand(2, 1, 3, 4, 4) > 0.5).float()
    cap = capture_spikes(Two(), None, x, [x])
    assert cap.module == "lif" and set(cap.maps) == {("template", 0), ("frame", 0)}
    assert cap.totals[("template", 0)]["spikes"] == cap.totals[("frame", 0)]["spikes"] == int((x != 0).sum())


def test_capture_reads_bool_spikes():
    class BoolNeuron(_Neuron):
        spike_format = SpikeFormat(1.0, 1)

        def forward(self, x):
            return x > 0.5

    model = _Tracker()
    model.lif = BoolNeuron()
    x = torch.zeros(2, 1, 3, 4, 4)
    x[0, 0, 1, 2, 2] = 1.0
    cap = capture_spikes(model, "lif", None, [x])
    assert cap.totals[("frame", 0)]["spikes"] == 1 and cap.maps[("frame", 0)]["channel_level"][1] == pytest.approx(1 / 32)


def test_capture_files_round_trip(tmp_path):
    model = _Tracker()
    x = (torch.rand(2, 1, 3, 5, 5) > 0.5).float()
    cap = capture_spikes(model, "lif", None, [x])
    cap.save(tmp_path)
    back = load_capture(tmp_path)
    assert back["meta"]["module"] == "lif" and list(back["maps"]) == [("frame", 0)]
    np.testing.assert_array_equal(back["maps"][("frame", 0)]["spatial_rate"], cap.maps[("frame", 0)]["spatial_rate"])
    chans = pd.read_csv(tmp_path / "capture_channels.csv")
    assert len(chans) == 3 and chans["firing_rate"].tolist() == pytest.approx(cap.maps[("frame", 0)]["channel_rate"])
    assert figures.capture_spatial(back) is not None and figures.capture_channels(back) is not None
    assert load_capture(tmp_path / "absent") is None


@pytest.mark.parametrize("shape, time_dim, out, layout", [
    ((2, 1, 8, 16), 0, (2, 1, 8, 4, 4), "N=16 as 4 x 4"),
    ((2, 1, 8, 10), 0, (2, 1, 8, 1, 10), "N=10 as 1 x 10"),
    ((1, 8, 5, 6), None, (1, 1, 8, 5, 6), "B, C, H, W"),
    ((3, 1, 7), 0, (3, 1, 7, 1, 1), "no positions"),
])
def test_capture_layouts(shape, time_dim, out, layout):
    x, text = _to_tbcp(torch.zeros(shape), time_dim)
    assert tuple(x.shape) == out and layout in text


# ------------------------------------------------------------------ comparison figures
def test_comparison_figures():
    comp = tables.comparison([SNN, ANN])
    fig = figures.compare_energy(comp)
    assert len(fig.data) == 2 and list(fig.data[1].y) == [0.01, 0.02, None]    # no bar, never a 0
    only_ann = figures.compare_energy(tables.comparison([ANN]))
    assert [a.x for a in only_ann.layout.annotations if a.text == "not applicable"] == ["chip / loihi"]
    rb = figures.ratio_bars(tables.ratios(comp))
    assert list(rb.data[0].y) == pytest.approx([0.1, 0.2])
    sp = figures.estimator_spread(comp)
    assert any("spread 4x" == a.text for a in sp.layout.annotations)
    ticks = figures._log_axis([1e-3, 4e-3], "e")["tickvals"]
    assert all(1e-3 / 1.6 <= t <= 4e-3 * 1.6 for t in ticks) and not any(math.isnan(t) for t in ticks)


def test_capture_pools_positions_keeping_the_aspect_ratio():
    model = _Tracker()
    x = torch.zeros(2, 1, 3, 64, 128)
    x[:, :, :, :32, :] = 1.0                                        # the top half fires
    cap = capture_spikes(model, "lif", None, [x])
    m = cap.maps[("frame", 0)]
    assert m["grid"].tolist() == [16, 32] and m["channel_position"].shape == (3, 16 * 32)
    pooled = m["channel_position"].reshape(3, 16, 32)
    assert pooled[:, :8].min() == 1.0 and pooled[:, 8:].max() == 0.0
    assert m["spatial_rate"].shape == (64, 128)
