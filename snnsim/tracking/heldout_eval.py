"""Held-out evaluation sets for trained single-object trackers, and the loop that scores them.

Sets (``HELDOUT_SETS``), each a list of deterministic sequences made in memory, no download:
- ``checker-blocks``, ``glyph-plasma``, ``street-walkers``: the three styles of
  :mod:`snnsim.tracking.heldout_styles`, separate code that the training distribution never
  produced (seeds 0, 1, 2, ... and 150 frames by default);
- ``first-generator``: the project's own held-out set from before the diverse training
  distribution -- :class:`snnsim.tracking.synthetic.SyntheticScene` seeds 7000-7011, 0 / 1 / 2
  look-alike distractors in turn, the occluder bar in half of each group, 200 frames;
- ``diverse``: the training distribution itself (:class:`training_scenes.DiverseScene`) at
  seeds 9,000,000+ outside the training range: the in-distribution reference.

A sequence is a (name, frames, boxes) triple where ``frames`` is a re-iterable that renders
one frame at a time (memory stays flat) and ``boxes`` the ground truth [N, 4] xywh.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from .heldout_styles import HELDOUT_STYLES, HeldoutSequence
from .sot import make_sot_runtime
from .sot_metrics import SOTMetrics, average_sot_metrics, sot_metrics, static_boxes
from .synthetic import SyntheticScene
from .training_scenes import DiverseScene

__all__ = ["FIRST_GENERATOR_SEEDS", "DIVERSE_HELDOUT_SEED", "HELDOUT_SETS", "HeldoutSet", "evaluate_sets",
           "heldout_sequences", "track_boxes"]

FIRST_GENERATOR_SEEDS = range(7000, 7012)
DIVERSE_HELDOUT_SEED = 9_000_000     # beyond the training script's seed range (100,000 .. 10,000,000 excl.)
FRAME_SIZE = (256, 256)


@dataclass(frozen=True)
class HeldoutSet:
    name: str
    description: str
    held_out: bool                  # False: drawn from the training distribution (reference)
    default_sequences: int
    default_frames: int


HELDOUT_SETS: dict[str, HeldoutSet] = {s.name: s for s in [
    *[HeldoutSet(style, f"heldout_styles '{style}' (separate generator, never trained on)", True, 4, 150)
      for style in HELDOUT_STYLES],
    HeldoutSet("first-generator", "the first synthetic generator, seeds 7000-7011 (the project's earlier "
               "held-out set: 0/1/2 look-alike distractors, occluder in half)", True, 12, 200),
    HeldoutSet("diverse", "the training distribution at unseen seeds (in-distribution reference)", False, 4, 150),
]}


class _Frames:
    """Re-iterable frames of one sequence, rendered one at a time."""

    def __init__(self, n: int, render: Callable[[int], np.ndarray]):
        self.n, self._render = n, render

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[np.ndarray]:
        for t in range(self.n):
            yield self._render(t)


def heldout_sequences(set_name: str, n_sequences: int | None = None, n_frames: int | None = None
                      ) -> list[tuple[str, _Frames, np.ndarray]]:
    """The sequences of one set: [(name, frames, gt boxes [N, 4] xywh)]."""
    if set_name not in HELDOUT_SETS:
        raise ValueError(f"unknown held-out set '{set_name}' (known: {', '.join(HELDOUT_SETS)})")
    spec = HELDOUT_SETS[set_name]
    k = spec.default_sequences if n_sequences is None else int(n_sequences)
    n = spec.default_frames if n_frames is None else int(n_frames)
    if k < 1 or n < 2:
        raise ValueError(f"need at least 1 sequence of 2 frames, got {k} of {n}")
    out = []
    for i in range(k):
        if set_name in HELDOUT_STYLES:
            seq = HeldoutSequence(set_name, seed=i, n_frames=n, size=FRAME_SIZE)
            out.append((f"{set_name}-{i}", _Frames(n, lambda t, s=seq: s.frame(t).image), seq.boxes()))
        elif set_name == "first-generator":
            seed = FIRST_GENERATOR_SEEDS.start + i     # 7000-7011 by default; more sequences continue
            scene = SyntheticScene(FRAME_SIZE, n_targets=1, n_distractors=i % 3, seed=seed,
                                   occluder=(i // 3) % 2 == 0, n_frames=n)
            gt = np.stack([scene.frame(t).boxes[0] for t in range(n)])
            out.append((f"first-generator-{seed}", _Frames(n, lambda t, s=scene: s.frame(t).image), gt))
        else:
            scene = DiverseScene(DIVERSE_HELDOUT_SEED + i, FRAME_SIZE, n)
            gt = np.stack([scene.frame(t).box for t in range(n)])
            out.append((f"diverse-{DIVERSE_HELDOUT_SEED + i}", _Frames(n, lambda t, s=scene: s.frame(t).image), gt))
    return out


@torch.no_grad()
def track_boxes(model, frames: Iterable[np.ndarray], init_box) -> np.ndarray:
    """Boxes [N, 4] xywh of `model` tracking `frames` from `init_box` on the first frame, with
    the model family's own runtime (crops, window, template rule); frame 0 is the given box."""
    model.eval()
    rt = make_sot_runtime(model)
    it = iter(frames)
    boxes = [rt.initialize(next(it), init_box, search=False).box]
    boxes += [rt.track(image).box for image in it]
    return np.stack(boxes)


def evaluate_sets(models: dict, sets: Iterable[str], n_sequences: int | None = None, n_frames: int | None = None,
                  progress: Callable[[str], None] | None = None) -> list[dict]:
    """Score every model (name -> network) and the static box on every sequence of `sets`.
    Rows: {set, sequence, tracker, auc, precision, norm_precision, frames}, then one row per
    (set, tracker) with sequence '(mean)' averaged over sequences (OTB / LaSOT convention)."""
    rows: list[dict] = []
    for set_name in sets:
        per: dict[str, list[SOTMetrics]] = {}
        for seq_name, frames, gt in heldout_sequences(set_name, n_sequences, n_frames):
            preds = {"static box": static_boxes(gt)}
            for name, model in models.items():
                preds[name] = track_boxes(model, frames, gt[0])
            for tracker, boxes in preds.items():
                m = sot_metrics(boxes, gt)
                per.setdefault(tracker, []).append(m)
                rows.append(_row(set_name, seq_name, tracker, m))
            if progress is not None:
                progress(seq_name)
        for tracker, ms in per.items():
            rows.append(_row(set_name, "(mean)", tracker, average_sot_metrics(ms)))
    return rows


def _row(set_name: str, seq: str, tracker: str, m: SOTMetrics) -> dict:
    return {"set": set_name, "sequence": seq, "tracker": tracker, "auc": m.auc, "precision": m.precision,
            "norm_precision": m.norm_precision, "frames": m.n_frames}
