"""Network inputs cut from a real sequence, for ``snnsim profile MODEL --sequence DIR``.

Spike counts depend on the input, so the energy a paper quotes should come from real frames.
The crops are the ones a tracker that stays on target would take: the template at frame 0's
ground-truth box, the search region of frame i at frame i-1's ground-truth box (held through
frames marked absent), each with the tracker family's own crop factor, padding and size
(`SOTRuntime.template_input_at` / `search_input_at`). They depend on the sequence and the
tracker family only, not on the network's predictions: every model sees the same frames, and
a second pass (the spike capture) sees the same inputs. SMTrack gets whole frames letterboxed
to its published input size. Frames are decoded one at a time, never held as a sequence.
For a closed-loop run (the tracker's own boxes) use ``snnsim track``.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import SequenceError

__all__ = ["SequenceFrames", "sequence_inputs"]


class SequenceFrames:
    """Re-iterable network inputs of some frames of a sequence, made one frame at a time."""

    def __init__(self, make: Callable[[int], torch.Tensor], indices: range):
        self._make = make
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for i in self.indices:
            yield self._make(i)


def held_boxes(ground_truth: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    """Box of frames 0..n-1, each frame's last valid ground-truth box (frame 0 must be valid)."""
    boxes = np.empty((n, 4))
    last = None
    for i in range(n):
        if valid[i]:
            last = ground_truth[i]
        if last is None:
            raise SequenceError("frame 0 has no valid ground-truth box; a tracker cannot start without one")
        boxes[i] = last
    return boxes


def sequence_input(seq) -> dict:
    """summary.json's `input` for a run on a sequence, the same in profile and track."""
    return {"source": "sequence", "sequence": str(seq.root), "name": seq.name, "layout": seq.layout,
            "frames_total": len(seq), "image_size": list(seq.image_size)}


def sequence_inputs(model, path: str | os.PathLike, frames: int, skip: int = 0):
    """(template, searches, description) for profiling `frames` tracking frames of `model` on
    the sequence at `path`, after skipping the first `skip` tracking frames (a dataset run's
    later chunks). `template` is None for SMTrack; `searches` is re-iterable."""
    from .sequences import open_sequence
    from .sot import SOT_FAMILIES, make_sot_runtime

    if frames < 1:
        raise SequenceError(f"--frames must be >= 1, got {frames}")
    if skip < 0:
        raise SequenceError(f"skip must be >= 0, got {skip}")
    seq = open_sequence(path)
    name = getattr(model, "registry_name", type(model).__name__)
    family = getattr(model, "family", "")
    info = sequence_input(seq)
    if family == "smtrack":
        if seq.kind != "mot":
            raise SequenceError(f"{name} is a multi-object tracker but {seq.root} is a single-object ({seq.layout}) "
                                "sequence; pass a MOTChallenge sequence folder")
        if skip + frames > len(seq):
            raise SequenceError(f"sequence {seq.name} has {len(seq)} frames; give --frames {len(seq) - skip} or fewer")
        from .mot import letterbox

        size = tuple(int(s) for s in model.input_size)
        info.update(frames=[skip, skip + frames - 1],
                    crops=f"whole frames letterboxed to {size[0]}x{size[1]} (the published input size)")
        return None, SequenceFrames(lambda i: letterbox(seq.read_frame(i), size)[0], range(skip, skip + frames)), info
    if family not in SOT_FAMILIES:
        raise SequenceError(f"{name} has no tracking runtime to cut crops for (families: smtrack, "
                            f"{', '.join(SOT_FAMILIES)})")
    if seq.kind != "sot":
        raise SequenceError(f"{name} is a single-object tracker but {seq.root} is a MOTChallenge sequence; pass a "
                            "GOT-10k / LaSOT / OTB sequence folder")
    if len(seq) < 2:
        raise SequenceError(f"sequence {seq.name} has only {len(seq)} frame: frame 0 gives the template and the "
                            "search regions come from the frames after it, so --sequence needs a sequence of at "
                            "least 2 frames")
    last = skip + frames   # the last search frame
    if last + 1 > len(seq):
        raise SequenceError(f"sequence {seq.name} has {len(seq)} frames: frame 0 gives the template, so give "
                            f"--frames {len(seq) - 1 - skip} or fewer")
    if last > 1 and not seq.has_full_gt:
        raise SequenceError(f"sequence {seq.name} has a box for frame 0 only; --sequence crops each search region at "
                            "the previous frame's ground-truth box, so it needs boxes for frames 0..N-1: give "
                            "--frames 1, or run snnsim track for a closed-loop run")
    boxes = held_boxes(seq.ground_truth, seq.valid, last)
    runtime = make_sot_runtime(model)
    template = runtime.template_input_at(seq.read_frame(0), boxes[0])
    info.update(frames=[skip + 1, last],
                crops=f"template at frame 0's ground-truth box, search region of frame i at frame i-1's "
                      f"ground-truth box ({type(runtime).__name__}: context factors {runtime.template_factor:g} / "
                      f"{runtime.search_factor:g}, padding '{runtime.pad_rule}')")
    return template, SequenceFrames(lambda i: runtime.search_input_at(seq.read_frame(i), boxes[i - 1]),
                                    range(skip + 1, last + 1)), info
