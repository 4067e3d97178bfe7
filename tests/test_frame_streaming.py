"""Frames stream one at a time and are folded into running aggregates: nothing per frame is kept.

Structure, not speed or memory figures: the search inputs are consumed from a generator one at
a time (the previous frame's tensor is released before the next one is made), no per-frame
Profile list survives the run, and the aggregates over a few frames equal an independent
reference (each frame profiled alone and added by hand) -- counts exactly, energy to rounding,
for every estimator of every shipped profile.
"""
from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from snnsim.counting import Profiler
from snnsim.counting import profiler as profiler_module
from snnsim.counting.result import TOTAL_FIELDS
from snnsim.energy import estimate, list_hardware, load_hardware
from snnsim.energy.frames import FrameMean
from snnsim.models.base import TrackerNet
from snnsim.models.neurons import ILIF
from snnsim.tracking import frame_counts
from snnsim.tracking.frame_counts import LAYER_KEYS, NEURON_KEYS, frame_inputs, profile_tracker

FRAMES = 3


class ToyTracker(TrackerNet):
    """A small spiking tracker: a real-input conv (MACs), graded I-LIF spikes into a conv
    (synaptic events), a real x spike einsum with the cached template, a linear head."""

    family, kind, timesteps = "toy", "spiking", 2

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.lif1 = ILIF()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.lif2 = ILIF()
        self.head = nn.Linear(8, 4)

    def _features(self, x):
        y = self.stem(x).unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)      # [T, B, C, H, W]
        s = self.lif1(y)
        return self.lif2(self.conv2(s.flatten(0, 1)).reshape(s.shape))

    def example_inputs(self, source="random", batch=1):
        g = torch.Generator().manual_seed(0)
        return {"template": 2 * torch.randn((batch, 3, 8, 8), generator=g),
                "search": 2 * torch.randn((batch, 3, 16, 16), generator=g)}

    def forward_template(self, template):
        return self._features(template).mean((3, 4))                          # [T, B, C], real

    def forward_search(self, search, cache):
        s = self._features(search)
        corr = torch.einsum("tbc,tbcn->tbn", cache, s.flatten(3))
        return {"score": corr, "box": self.head(s.mean((0, 3, 4)))}


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(3)
    return ToyTracker().eval()


def test_searches_are_consumed_one_at_a_time_and_no_profile_list_is_kept(toy, monkeypatch):
    frames = 6
    template, searches = frame_inputs(toy, "random", frames)
    assert not isinstance(searches, (list, tuple)) and len(searches) == frames
    made, alive_when_making = [], []

    def stream():
        g = torch.Generator().manual_seed(1)
        for _ in range(frames):
            x = 2 * torch.randn((1, 3, 16, 16), generator=g)
            gc.collect()
            alive_when_making.append(sum(r() is not None for r in made))
            made.append(weakref.ref(x))
            yield x
            del x

    monkeypatch.setattr(frame_counts, "tracker_inputs",
                        lambda model, source, n, sequence, skip=0: (template, stream(), {"source": "test"}))
    profiles = []
    real_result = Profiler.result

    def result(self, batch_size=1):
        p = real_result(self, batch_size)
        profiles.append(weakref.ref(p))
        return p

    monkeypatch.setattr(profiler_module.Profiler, "result", result)
    tp = profile_tracker(toy, frames=frames)
    gc.collect()
    assert len(made) == frames
    # when frame i is made, at most the frame the loop still holds (i - 1) is alive
    assert max(alive_when_making) <= 1, alive_when_making
    assert all(r() is None for r in made)           # nothing of the inputs is kept
    # template + every frame profiled; only the template, first and last Profiles survive
    assert len(profiles) == frames + 1
    assert sum(r() is not None for r in profiles) == 3
    assert tp.n_frames == len(tp.frames) == frames and not isinstance(tp.frames, (list, tuple))
    assert tp.frames[0] is tp.frame and tp.frames[-1] is tp.frames[frames - 1]
    with pytest.raises(IndexError, match="not kept"):
        tp.frames[2]
    assert tp.summary()["frames_profiled"] == frames


@pytest.fixture(scope="module")
def toy_run(toy):
    """profile_tracker over FRAMES frames, and each frame profiled alone (an independent
    reference: a fresh Profiler per frame, template cached outside it)."""
    tp = profile_tracker(toy, "random", frames=FRAMES)
    template, searches = frame_inputs(toy, "random", FRAMES)
    with torch.no_grad():
        cache = toy.forward_template(template)
        alone = []
        for s in searches:
            with Profiler(toy) as prof:
                toy.forward_search(s, cache)
                alone.append(prof.result(1))
    return tp, alone


def test_aggregated_counts_equal_the_hand_sum_of_frames_profiled_alone(toy_run):
    tp, alone = toy_run
    assert alone[0].totals["syn_events"] > 0 and alone[0].totals["mac_ops"] > 0 and len(alone[0].neurons)
    assert alone[0].totals["spikes"] != alone[1].totals["spikes"]            # the frames differ
    for k in alone[0].totals:
        hand = sum(p.totals[k] for p in alone)
        assert dict(zip(TOTAL_FIELDS, tp.aggregate.totals_sum.value()))[k] == hand, k   # exact: integer counts                # exact: integer counts
        assert tp.totals[k] == pytest.approx(hand / FRAMES, rel=1e-15), k
    layers = tp.layers()
    frame = layers[layers["branch"] == "frame"].set_index(LAYER_KEYS)
    hand = pd.concat([p.layers for p in alone]).groupby(LAYER_KEYS, sort=False)[
        ["calls", "dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike", "in_numel"]].sum()
    assert len(frame) == len(hand)
    for col in hand.columns:
        assert np.array_equal(frame.loc[hand.index, col].to_numpy() * FRAMES, hand[col].to_numpy()), col
    neurons = tp.neurons()
    fn = neurons[neurons["branch"] == "frame"]
    assert set(fn["frames"]) == {FRAMES} and "frame" not in neurons.columns
    hand_n = pd.concat([p.neurons for p in alone]).groupby(NEURON_KEYS, sort=False)[
        ["neurons", "spikes", "spike_mass"]].sum()
    mine = fn.set_index(NEURON_KEYS).loc[hand_n.index]
    for col in hand_n.columns:
        assert np.array_equal(mine[col].to_numpy(), hand_n[col].to_numpy()), col


def test_energy_of_the_aggregate_is_the_mean_of_per_frame_energies(toy_run):
    tp, alone = toy_run
    checked = 0
    for name in list_hardware(include_measured=False):
        hw = load_hardware(name)
        for est in hw.estimators:
            mine = estimate(tp, hw, est)
            per_frame = [estimate(p, hw, est, model=tp.model) for p in alone]
            assert mine.applicable == per_frame[0].applicable
            if not mine.applicable:
                continue
            mean = sum(e.total_j for e in per_frame) / FRAMES
            assert mine.total_j == pytest.approx(mean, rel=1e-12), (name, est)
            table = pd.concat([e.layers for e in per_frame]).groupby("module", sort=False)["total_J"].sum() / FRAMES
            got = mine.layers.set_index("module")["total_J"]
            assert np.allclose(got.loc[table.index].to_numpy(), table.to_numpy(), rtol=1e-12, atol=0), (name, est)
            assert mine.details["frames"] == FRAMES
            checked += 1
    assert checked >= 8


# ------------------------------------------------------------------ FrameMean on hand tables
@dataclass
class Frame:
    layers: pd.DataFrame
    neurons: pd.DataFrame
    timesteps: int = 1
    is_spiking: bool = True


def _frame(in_numel: float, syn_events: float, spikes: float) -> Frame:
    layers = pd.DataFrame([{"module": "fc", "module_type": "Linear", "op": "aten.mm", "kind": "linear",
                            "calls": 1, "dense_macs": 4.0e6, "mac_ops": 0.0, "syn_events": syn_events,
                            "syn_ops": syn_events, "spike_spike": 0.0, "weight_numel": 4000,
                            "in_numel": in_numel, "out_numel": 1000.0, "spiking_input": True, "thop": True}])
    neurons = pd.DataFrame([{"module": "lif", "module_type": "LIFNode", "t": 0, "neurons": 1000.0,
                             "spikes": spikes, "spike_mass": spikes, "firing_rate": spikes / 1000,
                             "mean_level": spikes / 1000, "levels": 1}])
    return Frame(layers, neurons)


def test_frames_of_different_structure_are_priced_apart():
    """Memory-aware spills a layer whose working set exceeds the on-chip SRAM: a frame with a
    huge input spills, a small one does not. Priced on one pooled mean, the decision would be
    taken once for both; grouped by structure, the energy is the mean of the two estimates."""
    frames = [_frame(1e3, 500, 100), _frame(1e3, 700, 300), _frame(4e8, 900, 200), _frame(2e3, 600, 250)]
    grouped, pooled = FrameMean("toy"), FrameMean("toy", max_groups=1)
    for f in frames:
        grouped.add(f)
        pooled.add(f)
    assert len(grouped) == 4 and grouped.structures == 3 and pooled.pooled_frames == 2
    for hw, est in (("horowitz-45nm-fp32", "memory-aware"), ("horowitz-45nm-fp32", "ac-mac"),
                    ("loihi2", "loihi"), ("gpu-a100", "gpu")):
        mean = sum(estimate(f, hw, est).total_j for f in frames) / len(frames)
        assert estimate(grouped, hw, est).total_j == pytest.approx(mean, rel=1e-12), (hw, est)
    mean = sum(estimate(f, "horowitz-45nm-fp32", "memory-aware").total_j for f in frames) / len(frames)
    e = estimate(pooled, "horowitz-45nm-fp32", "memory-aware")
    assert e.total_j != pytest.approx(mean, rel=1e-6)               # the pooled approximation differs
    assert any("pooled" in a for a in e.assumptions)


def test_frame_mean_sums_are_exact_integers():
    fm = FrameMean()
    big = float(2 ** 52 + 1)                  # exact in float64; three of them are not
    for _ in range(3):
        fm.add(_frame(1e3, big, 1.0))
    (L, _, n), = fm.sum_tables()
    assert n == 3
    group = next(iter(fm._groups.values()))
    assert int(group.l_sum.ints[0]) == 3 * (2 ** 52 + 1)        # syn_events, summed as int64
    assert L["calls"].iloc[0] == 3 and L["weight_numel"].iloc[0] == 4000    # sizes are not summed


def test_fidelity_rows_are_spooled_and_written_one_at_a_time(tmp_path):
    import json

    from snnsim.loihi.fidelity import FrameRows
    from snnsim.loihi.job import _write_json_streaming

    rows = FrameRows()
    for i in range(300):
        rows.append({"frame": i + 1, "iou": i / 7, "box": [1.0, 2.5], "err": None, "bad": float("nan")})
    assert len(rows) == 300 and rows._fh.tell() > 0         # on disk, not in a list
    again = [r["frame"] for r in rows]
    assert again == list(range(1, 301)) == [r["frame"] for r in rows]     # re-iterable
    path = tmp_path / "fidelity.json"
    _write_json_streaming(path, {"model": "toy", "modules": [{"a": 1}], "per_frame": rows}, "per_frame")
    data = json.loads(path.read_text())
    assert data["model"] == "toy" and data["modules"] == [{"a": 1}] and len(data["per_frame"]) == 300
    assert data["per_frame"][6] == {"frame": 7, "iou": 6 / 7, "box": [1.0, 2.5], "err": None, "bad": None}
    _write_json_streaming(path, {"model": "toy", "per_frame": FrameRows()}, "per_frame")
    assert json.loads(path.read_text()) == {"model": "toy", "per_frame": []}


class CdistToy(ToyTracker):
    """The toy with a weight read through an operator snnsim has no formula for (cdist)."""

    def __init__(self):
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(3, 8))

    def forward_search(self, search, cache):
        out = super().forward_search(search, cache)
        out["dist"] = torch.cdist(self.head.weight.new_ones(1, 8) * out["box"].mean(), self.prototypes)
        return out


def test_summary_says_partial_naming_the_uncounted_operator_and_lists_graded_layers(toy):
    complete = profile_tracker(toy, "random", 2).summary()
    assert complete["complete"] is True and complete["partial_note"] is None and complete["uncounted"] == []
    # I-LIF emits levels 0..4: conv2 (lif1's spikes) and the model-level einsum (lif2's) receive
    # multi-level spikes and say their largest level; the stem (an image) and the head do not
    graded = {r["module"]: r for r in complete["graded_spike_layers"]}
    assert set(graded) == {"conv2", ""}
    assert all(2 <= r["max_level"] <= 4 and not r["signed"] for r in graded.values())
    torch.manual_seed(3)
    tp = profile_tracker(CdistToy().eval(), "random", 2)
    partial = tp.summary()
    assert partial["complete"] is False
    assert "cdist" in partial["partial_note"] and any("cdist" in u["op"] for u in partial["uncounted"])
    # and its energy says so: a lower bound, naming the operator, never a complete total
    e = estimate(tp, "horowitz-45nm-fp32", "ac-mac")
    assert e.complete is False and "cdist" in e.omitted[0]
    assert estimate(profile_tracker(toy, "random", 2), "horowitz-45nm-fp32", "ac-mac").complete is True
