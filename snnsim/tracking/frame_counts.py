"""Counts of a tracker per tracking frame, with the template branch kept apart.

The template branch runs at initialisation and template updates only, so a tracking
frame costs the search branch + head; the template pass is reported on its own, and
`thop_macs` is one template pass + one search pass in the thop view (the number tracking
papers publish as "FLOPs").

Memory is bounded whatever ``frames`` is asked: the search inputs are made one at a time
(:class:`BuiltinFrames`, or a sequence's :class:`SequenceFrames`) and each frame's Profile is
folded into running aggregates (:class:`FrameAggregate`) and dropped. A TrackerProfile keeps
the first frame's full Profile (the report's per-frame tables, ``tp.frame``) and the last
one's, plus exact running sums over all frames: the totals, the layer table, the neuron table
and, for pricing, :class:`snnsim.energy.frames.FrameMean`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd
import torch

from ..counting import Profile, Profiler
from ..counting.result import NEURON_COLUMNS, TOTAL_FIELDS, UncountedTally, partial_note
from ..energy.frames import LAYER_MAXIMA as _LAYER_MAXIMA
from ..energy.frames import ExactSum, FrameMean

LAYER_KEYS = ["module", "module_type", "op", "kind", "operands"]
NEURON_KEYS = ["module", "module_type", "framework", "order", "call", "t", "shape", "levels", "quantum"]
_NEURON_SUMS = ["neurons", "spikes", "spike_mass"]
_NEURON_MEANS = ["firing_rate", "mean_level", "mean_value"]


class FrameAggregate:
    """The tracking frames' Profiles folded in one at a time: the first and the last Profile,
    the frame count, exact sums of the totals, the uncounted operators (UncountedTally) and the
    streaming count tables (FrameMean) the layer / neuron tables and the energy come from."""

    def __init__(self, model: str | None = None):
        self.first: Profile | None = None
        self.last: Profile | None = None
        self.n = 0
        self.totals_sum = ExactSum(len(TOTAL_FIELDS))   # in TOTAL_FIELDS order
        self.counts = FrameMean(model)
        self.uncounted = UncountedTally()

    def add(self, p: Profile) -> None:
        if self.first is None:
            self.first = p
        self.last = p
        self.n += 1
        self.totals_sum.add([p.totals[k] for k in TOTAL_FIELDS])
        self.counts.add(p)
        self.uncounted.add(p.uncounted)


class KeptFrames:
    """``TrackerProfile.frames``: len() is the number of profiled frames; only the first and the
    last frame's Profiles are kept (memory stays flat), the counts of every frame are in
    ``totals``, ``layers()``, ``neurons()`` and the energy."""

    def __init__(self, agg: FrameAggregate):
        self._agg = agg

    def __len__(self) -> int:
        return self._agg.n

    def __getitem__(self, i):
        n = self._agg.n
        if isinstance(i, slice):
            raise TypeError("TrackerProfile.frames keeps the first and the last frame only; it cannot be sliced")
        j = i + n if i < 0 else i
        if j == 0:
            return self._agg.first
        if j == n - 1:
            return self._agg.last
        raise IndexError(f"frame {i} of {n} is not kept: a TrackerProfile keeps the first and the last frame's "
                         f"Profile; the counts of all frames are in totals, layers() and neurons()")

    def __iter__(self):
        raise TypeError(f"TrackerProfile.frames keeps the first and the last of {self._agg.n} frame(s), not every "
                        f"frame: use totals, layers(), neurons() or frame_groups() for all of them")


@dataclass
class TrackerProfile:
    model: str
    kind: str
    params: int
    weights: dict                        # {source, path, sha256, trained, note} (models.registry.weights_info)
    inputs: dict
    timesteps: int
    aggregate: FrameAggregate
    template: Profile | None
    notes: list[str] = field(default_factory=list)
    capture: Any = None                  # snnsim.pipeline.capture.Capture of the counted passes, or None

    @property
    def frames(self) -> KeptFrames:
        """len() = frames profiled; [0] and [-1] the first and last frame's Profile."""
        return KeptFrames(self.aggregate)

    @property
    def n_frames(self) -> int:
        return self.aggregate.n

    @property
    def totals(self) -> dict[str, float]:
        """Mean per tracking frame (template cached): exact sums over the frames / frames."""
        n = self.aggregate.n
        return {k: float(v) / n for k, v in zip(TOTAL_FIELDS, self.aggregate.totals_sum.value())}

    def frame_groups(self):
        """The tracking frames' mean count tables per frame structure, with their frames
        (what snnsim.energy.estimate prices: the mean of the per-frame energies)."""
        return self.aggregate.counts.frame_groups()

    @property
    def template_totals(self) -> dict[str, float] | None:
        return self.template.totals if self.template is not None else None

    @property
    def thop_macs(self) -> float:
        return (self.template.thop_macs if self.template is not None else 0.0) + self.frame.thop_macs

    @property
    def thop_params(self) -> int:
        """Parameters as thop counts them: conv / linear / norm modules that ran in the
        template or the search pass (the "Params" tracking papers publish)."""
        sizes = dict(self.frame.thop_param_sizes)
        if self.template is not None:
            sizes.update(self.template.thop_param_sizes)
        return int(sum(sizes.values()))

    @property
    def frame(self) -> Profile:
        """The first tracking frame (per-frame tables of the report)."""
        return self.aggregate.first

    def layers(self) -> pd.DataFrame:
        """Per-layer counts: the template pass and the mean tracking frame, one `branch` column."""
        parts = []
        if self.template is not None:
            parts.append(self.template.layers.assign(branch="template"))
        sums = pd.concat([L for L, _, _ in self.aggregate.counts.sum_tables()], ignore_index=True)
        # counts and element numbers: summed, then / frames; sizes and maxima: the largest;
        # flags and labels: the first frame's
        agg, averaged = {}, []
        for c in sums.columns:
            if c in LAYER_KEYS:
                continue
            if c == "weight_numel" or c in _LAYER_MAXIMA:
                agg[c] = "max"
            elif pd.api.types.is_bool_dtype(sums[c]) or not pd.api.types.is_numeric_dtype(sums[c]):
                agg[c] = "first"
            else:
                agg[c] = "sum"
                averaged.append(c)
        frame = sums.groupby(LAYER_KEYS, as_index=False, sort=False).agg(agg)
        n = self.aggregate.n
        for col in averaged:
            frame[col] = frame[col] / n
        parts.append(frame.assign(branch="frame"))
        return pd.concat(parts, ignore_index=True)

    def neurons(self) -> pd.DataFrame:
        """Per (neuron module, call, timestep): the template pass (branch 'template') and the
        tracking frames (branch 'frame') summed over every profiled frame -- neurons, spikes
        and spike_mass are sums, firing_rate, mean_level and mean_value means over the frames;
        `frames` is the number of passes summed (1 for the template pass)."""
        parts = []
        if self.template is not None:
            parts.append(self.template.neurons.assign(branch="template", frames=1))
        n = self.aggregate.n
        sums = pd.concat([N for _, N, _ in self.aggregate.counts.sum_tables()], ignore_index=True)
        columns = [c for c in sums.columns] or list(NEURON_COLUMNS)
        if len(sums):
            summed = [c for c in _NEURON_SUMS + _NEURON_MEANS if c in sums.columns]
            keys = [c for c in sums.columns if c not in summed]      # NEURON_KEYS and any flags
            frame = sums.groupby(keys, as_index=False, sort=False, dropna=False).agg({c: "sum" for c in summed})
            for c in _NEURON_MEANS:
                if c in frame.columns:
                    frame[c] = frame[c] / n
            frame = frame[columns]
        else:
            frame = sums.reindex(columns=columns)
        parts.append(frame.assign(branch="frame", frames=n))
        return pd.concat(parts, ignore_index=True)

    def summary(self, command: str = "profile", energy: dict | None = None,
                energy_template: dict | None = None, energy_precision: dict | None = None) -> dict:
        """summary.json's content: the shared core (snnsim.pipeline.summary.RunSummary) with
        `energy` / `energy_template` as priced (snnsim.pipeline.price_tracker), then the
        profile's own sections."""
        from snnsim.pipeline.summary import core_summary

        summary = core_summary(
            command, model=self.model, kind=self.kind, weights=self.weights, input=self.inputs,
            timesteps=self.timesteps, frames=self.aggregate.n, totals=self.totals, template=self.template_totals,
            template_passes=1 if self.template is not None else 0, thop_macs=self.thop_macs,
            energy=energy or {}, energy_template=energy_template, energy_precision=energy_precision or {},
            uncounted=self.run_uncounted,
            complete=not self.run_uncounted and not self.unseen_neurons, notes=self.notes)
        summary.update({
            "params": self.params, "frames_profiled": self.aggregate.n, "thop_params": self.thop_params,
            "full_macs_per_frame": self.totals["dense_macs"],
            "unseen_neurons": self.unseen_neurons,
            "partial_note": partial_note(self.run_uncounted, self.unseen_neurons),
            "graded_spike_layers": self.frame.graded_spike_layers().to_dict(orient="records"),
            "non_spiking_neurons": self.frame.non_spiking_neurons,
        })
        return summary

    @property
    def uncounted(self) -> list[dict]:
        """Operators that ran with no counting formula in the profiled frames ({module, op,
        calls, shapes} rows): the estimators read this (snnsim.energy.estimate) to mark the
        per-frame energy partial; the template pass is priced from its own Profile."""
        return self.aggregate.uncounted.rows()

    @property
    def run_uncounted(self) -> list[dict]:
        """The run's uncounted operators, frames and template pass together (calls summed over
        every counted pass): summary.json's `uncounted`, as in every command."""
        tally = copy.deepcopy(self.aggregate.uncounted)
        if self.template is not None:
            tally.add(self.template.uncounted)
        return tally.rows()

    @property
    def unseen_neurons(self) -> list:
        """Neuron modules no hook saw in the template pass or a profiled frame (their updates
        and spikes are missing from the totals: the summary then says complete: false)."""
        seen: list = []
        for p in (self.template, self.frame):
            for name in (p.unseen_neurons if p is not None else []):
                if name not in seen:
                    seen.append(name)
        return seen


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class BuiltinFrames:
    """Re-iterable search inputs from built-in data, made one frame at a time: frame 0 is the
    model's example search input, frame i > 0 golden_image(7 + i) of the same shape."""

    def __init__(self, first: torch.Tensor, frames: int):
        self.first = first
        self.frames = int(frames)

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.frames < 1:
            return
        yield self.first
        if self.frames > 1:
            from snnsim.models.golden import golden_image

            shape = self.first.shape
            size = tuple(shape[-2:])
            for i in range(1, self.frames):
                yield golden_image(7 + i, size, batch=shape[0])


def frame_inputs(model, source: str, frames: int):
    """Template input and `frames` search inputs from built-in data (no download), the search
    inputs made one at a time (BuiltinFrames, re-iterable).
    'golden': the fixtures' inputs (search seed 7, then 8, 9, ... for further frames)."""
    base = model.example_inputs(source)
    return base["template"], BuiltinFrames(base["search"], frames)


def _one_at_a_time(head: list, rest: Iterator) -> Iterator:
    """The items of `head` (emptied as they go) then of `rest`: nothing is held but the item
    the consumer has."""
    while head:
        yield head.pop(0)
    yield from rest


def tracker_inputs(model, source: str = "random", frames: int = 1, sequence=None, skip: int = 0):
    """(template, searches, description) of the frames to profile: built-in data (`source`),
    or crops of the real sequence folder `sequence` (see sequence_inputs.py). `searches` is
    iterable (a sequence's frames are decoded one at a time)."""
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    if sequence is not None:
        from .sequence_inputs import sequence_inputs

        return sequence_inputs(model, sequence, frames, skip)
    template, searches = frame_inputs(model, source, frames)
    return template, searches, {"source": source}


def profile_tracker(model, source: str = "random", frames: int = 1, progress=None, sequence=None,
                    capture=None, skip: int = 0, on_frame=None) -> TrackerProfile:
    """Count one template pass and `frames` tracking frames of a registered tracker network,
    on built-in inputs or (`sequence`, a folder) on crops of a real sequence. The search
    inputs are consumed one at a time and each frame's Profile is folded into running
    aggregates (FrameAggregate): memory stays flat whatever `frames` is. `capture`: a
    snnsim.pipeline.capture.SpikeCapture fed during the same passes (spike maps without a
    second forward); the TrackerProfile's `capture` holds its result. `skip`: tracking frames
    of the sequence left out before the counted ones (a dataset run's later chunks);
    `on_frame(index, profile)` is handed each frame's Profile with its frame index."""
    if skip and sequence is None:
        raise ValueError("skip applies to a sequence's frames only")
    template, searches, inputs = tracker_inputs(model, source, frames, sequence, skip)
    indices = iter(getattr(searches, "indices", range(frames)))
    name = getattr(model, "registry_name", type(model).__name__)
    # ANNs have no spike formats: every operand is real, and no "no neurons" warning.
    formats = [] if model.kind == "ann" else None
    agg = FrameAggregate(name)
    stream = iter(searches)
    head = [next(stream)]
    batch = head[0].shape[0]
    search_shape = list(head[0].shape)
    observers = capture.observers() if capture is not None else None
    with torch.no_grad(), Profiler(model, spike_formats=formats, observers=observers) as prof:
        if capture is not None:
            capture.begin("template")
        cache = model.forward_template(template)
        tpl = prof.result(batch) if template is not None else None
        if capture is not None and tpl is not None and capture.deciding:
            capture.choose(tpl.neurons)
            prof.observers = capture.observers()
        for search in _one_at_a_time(head, stream):
            prof.reset()
            if capture is not None:
                capture.begin("frame")
            model.forward_search(search, cache)
            frame = prof.result(batch)
            agg.add(frame)
            if on_frame is not None:
                on_frame(next(indices), frame)
            if capture is not None and capture.deciding:   # no template pass: chosen on the first frame
                capture.choose(frame.neurons)
                prof.observers = capture.observers()
            if progress is not None:
                progress()
        del search
    from snnsim.models.registry import weights_info

    notes = []
    record = weights_info(model)
    if not record["trained"]:
        notes.append(f"Weights are untrained ({record['source']}): firing rates and spike-driven energy are not "
                     "those of a trained model.")
    return TrackerProfile(
        model=name, kind=model.kind, params=count_params(model), weights=record,
        inputs={**inputs, **({"template": list(template.shape)} if template is not None else {}),
                "search": search_shape},
        timesteps=model.timesteps, aggregate=agg, template=tpl, notes=notes,
        capture=capture.finish() if capture is not None else None)
