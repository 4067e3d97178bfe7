"""Counts of a tracker per tracking frame, with the template branch kept apart.

The template branch runs at initialisation and template updates only, so a tracking
frame costs the search branch + head; the template pass is reported on its own, and
`thop_macs` is one template pass + one search pass in the thop view (the number tracking
papers publish as "FLOPs").
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pandas as pd
import torch

from ..counting import Profile, Profiler
from ..counting.result import COUNT_FIELDS, TOTAL_FIELDS


@dataclass
class TrackerProfile:
    model: str
    kind: str
    params: int
    weights: str
    inputs: dict
    timesteps: int
    frames: list[Profile]
    template: Profile | None
    notes: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, float]:
        """Mean per tracking frame (template cached)."""
        n = len(self.frames)
        return {k: sum(p.totals[k] for p in self.frames) / n for k in TOTAL_FIELDS}

    @property
    def template_totals(self) -> dict[str, float] | None:
        return self.template.totals if self.template is not None else None

    @property
    def thop_macs(self) -> float:
        return (self.template.thop_macs if self.template is not None else 0.0) + self.frames[0].thop_macs

    @property
    def thop_params(self) -> int:
        """Parameters as thop counts them: conv / linear / norm modules that ran in the
        template or the search pass (the "Params" tracking papers publish)."""
        sizes = dict(self.frames[0].thop_param_sizes)
        if self.template is not None:
            sizes.update(self.template.thop_param_sizes)
        return int(sum(sizes.values()))

    @property
    def frame(self) -> Profile:
        """The first tracking frame (per-frame tables of the report)."""
        return self.frames[0]

    def layers(self) -> pd.DataFrame:
        """Per-layer counts: the template pass and the mean tracking frame, one `branch` column."""
        parts = []
        if self.template is not None:
            parts.append(self.template.layers.assign(branch="template"))
        frame = pd.concat([p.layers for p in self.frames]).groupby(
            ["module", "module_type", "op", "kind", "operands"], as_index=False, sort=False).agg(
            {"calls": "sum", **{f: "sum" for f in COUNT_FIELDS}, "weight_numel": "max", "in_numel": "sum",
             "out_numel": "sum", "spiking_input": "first", "thop": "first"})
        n = len(self.frames)
        for col in ("calls", *COUNT_FIELDS, "in_numel", "out_numel"):
            frame[col] = frame[col] / n
        parts.append(frame.assign(branch="frame"))
        return pd.concat(parts, ignore_index=True)

    def neurons(self) -> pd.DataFrame:
        parts = []
        if self.template is not None:
            parts.append(self.template.neurons.assign(branch="template", frame=-1))
        parts += [p.neurons.assign(branch="frame", frame=i) for i, p in enumerate(self.frames)]
        return pd.concat(parts, ignore_index=True)

    def summary(self) -> dict:
        return {
            "model": self.model, "kind": self.kind, "params": self.params, "weights": self.weights,
            "input": self.inputs, "timesteps": self.timesteps, "frames_profiled": len(self.frames),
            "totals": self.totals, "template": self.template_totals, "thop_macs": self.thop_macs,
            "thop_params": self.thop_params,
            "full_macs_per_frame": self.totals["dense_macs"],
            "uncounted": pd.concat([p.uncounted for p in self.frames]).drop_duplicates().to_dict(orient="records"),
            "notes": self.notes,
        }


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def frame_inputs(model, source: str, frames: int):
    """Template input and `frames` search inputs from built-in data (no download).
    'golden': the fixtures' inputs (search seed 7, then 8, 9, ... for further frames)."""
    base = model.example_inputs(source)
    searches = [base["search"]]
    if frames > 1:
        from snnsim.models.golden import golden_image

        shape = base["search"].shape
        size = tuple(shape[-2:])
        searches += [golden_image(7 + i, size, batch=shape[0]) for i in range(1, frames)]
    return base["template"], searches


def tracker_inputs(model, source: str = "random", frames: int = 1, sequence=None):
    """(template, searches, description) of the frames to profile: built-in data (`source`),
    or crops of the real sequence folder `sequence` (see sequence_inputs.py). `searches` is
    iterable (a sequence's frames are decoded one at a time)."""
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    if sequence is not None:
        from .sequence_inputs import sequence_inputs

        return sequence_inputs(model, sequence, frames)
    template, searches = frame_inputs(model, source, frames)
    return template, searches, {"source": source}


def profile_tracker(model, source: str = "random", frames: int = 1, progress=None, sequence=None) -> TrackerProfile:
    """Count one template pass and `frames` tracking frames of a registered tracker network,
    on built-in inputs or (`sequence`, a folder) on crops of a real sequence."""
    template, searches, inputs = tracker_inputs(model, source, frames, sequence)
    # ANNs have no spike formats: every operand is real, and no "no neurons" warning.
    formats = [] if model.kind == "ann" else None
    frame_profiles = []
    stream = iter(searches)
    first = next(stream)
    batch = first.shape[0]
    with torch.no_grad(), Profiler(model, spike_formats=formats) as prof:
        cache = model.forward_template(template)
        tpl = prof.result(batch) if template is not None else None
        for search in itertools.chain([first], stream):
            prof.reset()
            model.forward_search(search, cache)
            frame_profiles.append(prof.result(batch))
            if progress is not None:
                progress()
    notes = []
    weights = getattr(model, "weights_source", "unknown")
    if weights.startswith("random"):
        notes.append("Weights are untrained: firing rates and spike-driven energy are not those of the trained model.")
    return TrackerProfile(
        model=getattr(model, "registry_name", type(model).__name__), kind=model.kind, params=count_params(model),
        weights=weights,
        inputs={**inputs, **({"template": list(template.shape)} if template is not None else {}),
                "search": list(first.shape)},
        timesteps=model.timesteps, frames=frame_profiles, template=tpl, notes=notes)
