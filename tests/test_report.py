"""The reports a run writes: what they open with, what they say about weights, estimators
and what does not apply, and that every table is on disk as CSV and JSON.

One demo run (a spiking tracker and an ANN; `make demo` runs the full model list) feeds
every test here.
"""
from __future__ import annotations

import contextlib
import html
import io
import json
import re
import shutil

import pandas as pd
import pytest

import snnsim.cli as cli
from snnsim.analysis import write_report
from snnsim.analysis.tables import fmt_energy

SNN, ANN = "spiketrack-s256-t1", "asymtrack-t"
UNTRAINED = "spiketrack-tiny"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "snnsim-demo"
    with pytest.MonkeyPatch.context() as mp:
        # the pair (priced, break-even) need not be twins for the report's plumbing; an
        # untrained model with random weights stands for the counts-only rows
        mp.setattr(cli, "DEMO_PAIR", ((SNN, "golden"), (ANN, "golden")))
        mp.setattr(cli, "DEMO_PAIR_FRAMES", 2)
        mp.setattr(cli, "DEMO_UNTRAINED", ((UNTRAINED, "random"),))
        mp.setattr(cli, "DEMO_HARDWARE", ("horowitz-45nm-fp32", "loihi2", "jetson-agx-orin"))
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli.main(["demo", "--out", str(out)]) == 0
    return out, buf.getvalue()


def _text(path) -> str:
    """The visible text of an HTML page, roughly (tags dropped, entities decoded)."""
    body = path.read_text(encoding="utf-8")
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_demo_prints_the_headline_and_where_the_report_is(demo):
    out, printed = demo
    assert "Energy per tracking frame" in printed
    header = next(line for line in printed.splitlines() if line.startswith("hardware profile"))
    assert SNN in header and ANN in header and f"{SNN} / {ANN}" in header
    summary = json.loads((out / SNN / "summary.json").read_text())
    assert fmt_energy(summary["energy"]["loihi2"]["loihi"]) in printed
    assert str(out / "index.html") in printed
    for name in ("index.html", "index.md", "comparison.html", "comparison.csv", "comparison.json",
                 "comparison.md", f"{SNN}/report.html", f"{ANN}/report.md", ".snnsim-output"):
        assert (out / name).is_file(), name
    assert [p.name for p in out.parent.iterdir()] == [out.name]     # no partial folder left beside it


def test_report_opens_with_the_headline(demo):
    out, _ = demo
    summary = json.loads((out / SNN / "summary.json").read_text())
    text = _text(out / SNN / "report.html")
    head = text.index("Energy per tracking frame")
    prov = text.index("Weights and inputs")
    assume = text.index("Estimator assumptions and what is left out")
    layers = text.index("Per-layer energy")
    assert head < prov < assume < layers
    opening = text[head:prov]
    for hw, by_est in summary["energy"].items():
        for est, joules in by_est.items():
            assert hw in opening and est in opening
            assert fmt_energy(joules) in opening
    assert f"ratio to {ANN} (SNN/ANN)" in opening
    # the ratio shown is the one of the two summaries
    ann = json.loads((out / ANN / "summary.json").read_text())
    ratio = summary["energy"]["horowitz-45nm-fp32"]["ac-mac"] / ann["energy"]["horowitz-45nm-fp32"]["ac-mac"]
    assert f"{ratio:.3g}" in opening
    md = (out / SNN / "report.md").read_text()
    assert md.startswith(f"# snnsim report: {SNN}\n") and md.index("**Headline:**") < md.index("## Weights and inputs")


def test_report_states_weights_and_estimators(demo):
    out, _ = demo
    summary = json.loads((out / SNN / "summary.json").read_text())
    text = _text(out / SNN / "report.html")
    assert summary["weights"]["source"] == "golden" and summary["weights"]["trained"] is False
    assert f"Weights: {summary['weights']['note']} [untrained]." in text
    assert "These weights are untrained" in text and "not those of the trained model" in text
    # the demo's priced pair is counted on a built-in held-out sequence, said by name (not its
    # temporary folder)
    assert re.search(r"Inputs: frames 1-2 of the \S+ sequence 'checker-blocks' seed 0 \(built-in, held out\)", text)
    assert "random inputs (a seeded normal distribution)" in _text(out / UNTRAINED / "report.html")
    for d in summary["energy_details"]:
        for sentence in d["assumptions"][:2] + d["omitted"][:2]:
            assert sentence in text, sentence
    md = (out / SNN / "report.md").read_text()
    assert "> **Warning:** These weights are untrained" in md


def test_not_applicable_is_a_sentence_never_zero(demo):
    out, _ = demo
    text = _text(out / ANN / "report.html")
    assert re.search(rf"On loihi2 the loihi estimator is not applicable to {ANN}: the model has no spiking neurons",
                     text)
    headline = pd.read_csv(out / ANN / "tables" / "headline.csv")
    row = headline[headline["hardware"] == "loihi2"].iloc[0]
    assert not row["applicable"] and pd.isna(row["joules_per_frame"]) and "no spiking neurons" in row["reason"]
    opening = text[text.index("Energy per tracking frame"):text.index("Weights and inputs")]
    # no figure, so no number format either
    assert "loihi2 loihi n/a not applicable not applicable" in " ".join(opening.split())
    assert f"Firing-rate heatmaps are not applicable to {ANN}" in text
    comp = _text(out / "comparison.html")
    assert f"not applicable to {ANN}" in comp


def test_every_table_is_written_as_csv_and_json(demo):
    out, _ = demo
    tables = out / SNN / "tables"
    names = sorted(p.stem for p in tables.glob("*.csv"))
    assert {"headline", "counts", "estimator_notes", "layer_energy", "top_layers", "branch_energy", "type_share",
            "firing_heatmap", "module_rates", "ratios"} <= set(names)
    for name in names:
        csv = pd.read_csv(tables / f"{name}.csv")
        records = json.loads((tables / f"{name}.json").read_text())
        assert len(records) == len(csv), name
    layers = pd.read_csv(tables / "layer_energy.csv")
    assert set(layers["branch"]) == {"frame", "template"}          # the template branch kept apart
    energy = pd.read_csv(out / SNN / "energy.csv")
    frame = energy[(energy["hardware"] == "loihi2") & (energy["branch"] == "frame")]
    mine = layers[(layers["hardware"] == "loihi2") & (layers["branch"] == "frame")]
    assert mine["total_J"].sum() == pytest.approx(frame["total_J"].sum())
    heat = pd.read_csv(tables / "firing_heatmap.csv")
    neurons = pd.read_csv(out / SNN / "neurons.csv")
    assert heat["spikes"].sum() == neurons["spikes"].sum()


def test_capture_matches_the_counted_spikes(demo):
    out, _ = demo
    meta = json.loads((out / SNN / "capture.json").read_text())
    neurons = pd.read_csv(out / SNN / "neurons.csv")
    mine = neurons[neurons["module"] == meta["module"]]
    for p in meta["passes"]:
        counted = mine[(mine["branch"] == p["branch"]) & (mine["call"] == p["call"])]
        assert p["spikes"] == counted["spikes"].sum() and p["neurons"] == counted["neurons"].sum()
    assert {p["branch"] for p in meta["passes"]} == {"template", "frame"}
    assert not (out / ANN / "capture.npz").exists()


def test_reports_are_self_contained(demo):
    out, _ = demo
    for page, plots in ((out / SNN / "report.html", 8), (out / ANN / "report.html", 3), (out / "comparison.html", 3)):
        body = page.read_text(encoding="utf-8")
        # nothing is fetched: no script / stylesheet / image from elsewhere (the inline plotly.js bundle
        # mentions its CDN only as the default topojson URL of geo maps, which these figures do not use)
        assert not re.search(r"<script[^>]*\bsrc\s*=", body)
        markup = re.sub(r"<script\b[^>]*>.*?</script>", "", body, flags=re.S)
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", markup)
        assert body.count('class="plotly-graph-div"') == plots, page
        assert len(body) > 3_000_000                                  # plotly.js inline
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'href="{SNN}/report.html"' in index and 'href="comparison.html"' in index
    assert f'href="{UNTRAINED}/report.html"' in index
    assert index.count('class="plotly-graph-div"') == 1                # the break-even curves


def test_demo_index_has_break_even_and_counts_only_rows(demo):
    out, printed = demo
    text = _text(out / "index.html")
    be = pd.read_csv(out / "tables" / "break_even.csv")
    # every profile x estimator of the demo's hardware, in order, with a verdict
    assert list(zip(be["hardware"], be["estimator"])) == [
        ("horowitz-45nm-fp32", "ac-mac"), ("horowitz-45nm-fp32", "memory-aware"), ("loihi2", "loihi"),
        ("jetson-agx-orin", "gpu")]
    assert set(be["verdict"]) <= {"break-even", "cheaper at any rate", "dearer at any rate", "not applicable"}
    assert be.set_index("hardware").loc["loihi2", "verdict"] == "not applicable"   # the ANN runs on no Loihi
    # the measured rate is the SNN's counted spikes / neuron updates over the profiled frames
    neurons = pd.read_csv(out / SNN / "neurons.csv").query("branch == 'frame'")
    assert be["measured_rate"].iloc[0] == pytest.approx(neurons["spikes"].sum() / neurons["neurons"].sum())
    assert "Break-even firing rate" in text and "Activity model" in text
    assert (out / "tables" / "break_even_curves.csv").is_file()
    assert (out / "tables" / "break_even_layers_ac-mac.csv").is_file()
    assert "Break-even mean firing rate" in printed
    # the untrained model: counted, listed apart, never priced
    counts = text[text.index("Untrained models: counts only"):text.index("Reports")]
    assert UNTRAINED in counts and "random" in counts
    untrained = json.loads((out / UNTRAINED / "summary.json").read_text())
    assert untrained["energy"] == {} and untrained["totals"]["dense_macs"] > 0
    comp = pd.read_csv(out / "comparison.csv")
    assert UNTRAINED not in set(comp["model"])
    # weights that are not a trained checkpoint are never called trained
    assert "ran without its trained checkpoint" in text


def test_report_rebuilds_from_the_run_folder(demo, tmp_path):
    out, _ = demo
    copy = tmp_path / "run"
    shutil.copytree(out / SNN, copy)
    for name in ("report.html", "report.md"):
        (copy / name).unlink()
    shutil.rmtree(copy / "tables")
    result = write_report(copy)
    assert result["figures"] == 7                                    # no ANN baseline given: no ratio figure
    assert (copy / "report.html").is_file() and (copy / "tables" / "headline.csv").is_file()
    assert "No ANN baseline was profiled in this run" in _text(copy / "report.html")


def test_comparison_tables(demo):
    out, _ = demo
    comp = pd.read_csv(out / "comparison.csv")
    assert set(comp["model"]) == {SNN, ANN} and len(comp) == 2 * 4
    ratios = pd.read_csv(out / "tables" / "ratios.csv")
    r = ratios[(ratios["hardware"] == "jetson-agx-orin")].iloc[0]
    assert r["ratio"] == pytest.approx(r["snn_joules"] / r["ann_joules"])
    assert ratios.loc[ratios["hardware"] == "loihi2", "ratio"].isna().all()
    spread = pd.read_csv(out / "tables" / "spread.csv")
    both = spread[(spread["model"] == SNN) & (spread["hardware"] == "horowitz-45nm-fp32")].iloc[0]
    assert both["n"] == 2 and both["max_over_min"] == pytest.approx(both["max_joules"] / both["min_joules"])


def test_report_lists_multi_level_spike_layers_and_unseen_neurons(tmp_path):
    """A run folder written by hand (no tracker): a SEW-style "ADD" block, whose second conv
    reads sums of two spike maps (levels up to 2). The report lists that layer with its
    largest level, from layers.csv, and the unseen neuron modules named in summary.json."""
    import torch
    from torch import nn

    import snnsim

    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron

    class SEW(nn.Module):
        def __init__(self):
            super().__init__()
            self.sn0 = neuron.IFNode(v_threshold=0.5)
            self.conv1 = layer.Conv2d(2, 2, 3, padding=1, bias=False)
            self.sn1 = neuron.IFNode(v_threshold=0.1)
            self.conv2 = layer.Conv2d(2, 3, 1, bias=False)

        def forward(self, x):
            s = self.sn0(x)
            return self.conv2(self.sn1(self.conv1(s)) + s)       # SEW "ADD": spikes + spikes

    torch.manual_seed(0)
    net = SEW()
    with torch.no_grad():
        net.conv1.weight.fill_(0.5)
    functional.set_step_mode(net, "m")
    p = snnsim.profile(net, torch.rand(2, 1, 2, 6, 6) * 2, batch_size=1)
    graded = p.graded_spike_layers()
    assert list(graded.module) == ["conv2"] and int(graded.max_level[0]) == 2

    run = tmp_path / "run"
    run.mkdir()
    summary = {"model": "sew-toy", "kind": "spiking", "params": 21, "weights": "random", "timesteps": 2,
               "input": {"source": "random"}, "totals": p.totals, "thop_macs": p.thop_macs, "uncounted": [],
               "unseen_neurons": [{"module": "hidden.node", "module_type": "LIFNode", "framework": "spikingjelly"}]}
    (run / "summary.json").write_text(json.dumps(summary))
    p.layers.assign(branch="frame").to_csv(run / "layers.csv", index=False)
    p.neurons.assign(branch="frame", frames=1).to_csv(run / "neurons.csv", index=False)
    write_report(run)

    listing = pd.read_csv(run / "tables" / "graded_spikes.csv")
    assert listing[["module", "op", "max_level", "signed"]].values.tolist() == [["conv2", "convolution", 2, False]]
    text = " ".join(_text(run / "report.html").split())
    assert "Layers receiving multi-level or signed spikes" in text
    assert "conv2 Conv2d convolution frame 2 no" in text
    assert "hidden.node (LIFNode, spikingjelly)" in text and "never seen running" in text
    md = (run / "report.md").read_text()
    assert "Layers receiving multi-level or signed spikes" in md and "hidden.node" in md


def test_every_energy_figure_says_its_number_format(demo):
    """The precision of every figure, in summary.json and beside it in the report's tables:
    the 45 nm FP32 columns say fp32, Jetson's GPU estimate the precision it priced (INT8 by
    default), Loihi its fixed point."""
    out, _ = demo
    summary = json.loads((out / SNN / "summary.json").read_text())
    formats = summary["energy_precision"]
    assert formats["horowitz-45nm-fp32"] == {"ac-mac": "fp32", "memory-aware": "fp32"}
    assert formats["jetson-agx-orin"]["gpu"] == "int8"
    assert formats["loihi2"]["loihi"].startswith("fixed point")
    headline = pd.read_csv(out / SNN / "tables" / "headline.csv")
    assert set(headline["precision"]) == {f for by in formats.values() for f in by.values()}
    opening = " ".join(_text(out / SNN / "report.html").split())
    assert "horowitz-45nm-fp32 ac-mac fp32" in opening and "jetson-agx-orin gpu int8" in opening
    comparison = " ".join(_text(out / "comparison.html").split())
    assert "jetson-agx-orin gpu int8" in comparison
    # a figure that does not exist has no format: the ANN on a neuromorphic chip
    ann = json.loads((out / ANN / "summary.json").read_text())
    assert ann["energy"]["loihi2"]["loihi"] is None and ann["energy_precision"]["loihi2"]["loihi"] is None
    ann_headline = pd.read_csv(out / ANN / "tables" / "headline.csv", keep_default_na=False)
    assert list(ann_headline.loc[ann_headline["hardware"] == "loihi2", "precision"]) == ["n/a"]
