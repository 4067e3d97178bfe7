"""Multi-object tracking runtime: SMTrack's spiking detector + TrackTrack association.

Per frame (uint8 [H, W, 3] RGB, as the sequence readers yield it):

1. letterbox the frame into the detector input (H_in, W_in) as ByteTrack's YOLOX ``preproc``
   does (the MOT YOLOX code SMTrack builds on): scale r = min(H_in / H, W_in / W), bilinear
   resize to (H r, W r), placed top-left on a canvas of value 114, then / 255 and the ImageNet
   mean / std (ByteTrack's MOT experiments);
2. one detector pass (the per-frame branch; the detector has no template branch), counted
   through ``meter('search')``;
3. YOLOX decoding + ``models.smtrack.postprocess`` (score = obj x cls >= ``min_score``,
   class-agnostic NMS at ``nms_threshold`` 0.95: TrackTrack's association runs its own
   NMS-0.80 / NMS-0.95 split, so the detector only removes near-duplicates), at most
   ``max_detections`` boxes, scaled back by 1 / r;
4. ``TrackTrackAssociator.update``. No ReID network is shipped, so the appearance (cosine)
   term of TrackTrack's cost is dropped and the motion term weighs 1 (TrackTrack's no-ReID
   variant); ``uses_reid`` is False and ``REID_NOTE`` says so in the outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .association import TrackTrackAssociator
from .sot import IMAGENET_MEAN, IMAGENET_STD, Meter, no_meter

__all__ = ["REID_NOTE", "MAX_INPUT_SIDE", "MOTStep", "MOTRuntime", "check_input_size", "check_memory",
           "letterbox", "memory_needed_mib"]

REID_NOTE = ("No ReID weights: TrackTrack's appearance (cosine) term is dropped and the motion term "
             "weighs 1 (its no-ReID variant), so identities rest on motion, confidence and angle cues only.")

# The detector input is allocated per frame (and its activation maps grow with it: one map of
# SMTrack-S's first stage, 64 channels x T = 4 at a quarter of the resolution, is 1 GiB at
# 4096 x 4096 in float32),
# so its size is checked against this limit before anything is built or allocated.
MAX_INPUT_SIDE = 4096

# Below that limit, memory decides. Peak RSS of a whole `snnsim track smtrack-s` process (2
# frames, default weights, torch 2.13 CPU, the project's 2-core developer machine), by detector
# input: 608x1088 1.41 GiB, 1024x1024 1.81, 1536x1536 2.93, 2048x2048 4.83 (measured; 4096x4096
# was killed by the kernel at 24 GiB on a 23 GiB machine). The quadratic through the last three
# (the candidate boxes and their NMS grow with the area) gives MiB = a + b A + c A^2 for A
# input megapixels; it predicts 28 GiB at 4096x4096.
MEMORY_MIB_BY_INPUT_MPX = (1076.0, 678.0, 58.5)


def memory_needed_mib(h: int, w: int) -> float:
    """Estimated peak memory (MiB) of a track run at detector input h x w (see above)."""
    a, b, c = MEMORY_MIB_BY_INPUT_MPX
    mpx = h * w / 1e6
    return a + b * mpx + c * mpx * mpx


def _read_number(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
        return int(text) if text.isdigit() else None   # cgroup v2 writes "max" for no limit
    except (OSError, ValueError):
        return None


def available_memory_mib(meminfo: str = "/proc/meminfo", cgroup_root: str = "/sys/fs/cgroup") -> float | None:
    """Memory this process may still use, in MiB: MemAvailable from /proc/meminfo, or less
    where a container's cgroup limit leaves less (v2 memory.max - memory.current, v1
    memory.limit_in_bytes - memory.usage_in_bytes); None where none can be read (not Linux)."""
    found = []
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("memory.max", "memory.current"),
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        cap, used = _read_number(f"{cgroup_root}/{limit}"), _read_number(f"{cgroup_root}/{usage}")
        if cap is not None and used is not None and cap < 1 << 60:   # v1 writes ~2**63 for no limit
            found.append(max(0, cap - used))
    return min(found) / (1 << 20) if found else None


def check_memory(h: int, w: int, what: str = "--input-size", available_mib: float | None = None) -> None:
    """ValueError, one line, when the estimated peak memory at h x w exceeds the memory
    available (read from the system unless given): the kernel would kill the run without a word."""
    available = available_memory_mib() if available_mib is None else available_mib
    need = memory_needed_mib(h, w)
    if available is None or need <= available:
        return
    a, b, c = MEMORY_MIB_BY_INPUT_MPX
    mpx = max(0.0, (-b + math.sqrt(b * b - 4 * c * (a - available))) / (2 * c)) if available > a else 0.0
    side = int(math.sqrt(mpx * 1e6)) // 32 * 32
    hint = f"e.g. {side}x{side}" if side >= 32 else "or free memory"
    size = f"{what} {h}x{w}".strip()
    raise ValueError(f"{size} would need about {need / 1024:.1f} GiB of memory (the detector's measured peak "
                     f"grows with the input area), more than the {available / 1024:.1f} GiB available; pass a "
                     f"smaller size, {hint}")


def check_input_size(size, what: str = "--input-size") -> tuple[int, int]:
    """(H, W) of a detector input, checked before any allocation: positive multiples of 32, at
    most MAX_INPUT_SIDE per side, and within the memory available (:func:`check_memory`).
    Raises ValueError, one line naming the size and the limit (``what`` names the option; ''
    where the caller's message already does, as argparse's does)."""
    try:
        h, w = (size, size) if isinstance(size, int) else (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {size!r} is not a size HxW such as 608x1088".strip()) from None
    shown = f"{what} {h}x{w}".strip()
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ValueError(f"{shown}: height and width must be positive multiples of 32 (the detector "
                         "downsamples by 32), such as 608x1088")
    if h > MAX_INPUT_SIDE or w > MAX_INPUT_SIDE:
        raise ValueError(f"{shown} is larger than the limit {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE} (at most "
                         f"{MAX_INPUT_SIDE} pixels per side: the detector's input and activations are allocated "
                         f"per frame); pass a smaller size")
    check_memory(h, w, what)
    return h, w


def letterbox(image: np.ndarray, size: tuple[int, int], pad: float = 114.0) -> tuple[torch.Tensor, float]:
    """ByteTrack's YOLOX ``preproc`` on an RGB frame -> (normalised tensor [1, 3, H_in, W_in], r)."""
    H, W = image.shape[:2]
    h_in, w_in = size
    r = min(h_in / H, w_in / W)
    h, w = int(H * r), int(W * r)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    if (h, w) != (H, W):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    canvas = torch.full((1, 3, h_in, w_in), float(pad))
    canvas[:, :, :h, :w] = x
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    return (canvas / 255.0 - mean) / std, r


@dataclass
class MOTStep:
    frame: int                                   # 0-based index (MOTChallenge frame = frame + 1)
    tracks: list = field(default_factory=list)   # [(track_id, box xywh [4], score)]
    detections: int = 0                          # detections handed to the association
    template_ran: bool = False                   # always False: the detector has no template branch


class MOTRuntime:
    """SMTrack: detector (``SMTrackDetector``) + ``TrackTrackAssociator``.

    ``input_size`` (H, W), multiples of 32, defaults to the model's (608 x 1088 for MOT17).
    ``frame_rate`` sets how long lost tracks are kept (2 x frame rate frames). Extra keyword
    arguments go to the associator (thresholds; defaults are SMTrack's MOT17 ones)."""

    def __init__(self, model, input_size=None, meter: Meter | None = None, frame_rate: float = 30.0,
                 min_score: float = 0.1, nms_threshold: float = 0.95, max_detections: int = 300,
                 **association):
        if getattr(model, "family", "") != "smtrack":
            raise ValueError(f"model family '{getattr(model, 'family', '')}' has no multi-object runtime "
                             "(multi-object families: smtrack)")
        from snnsim.models.smtrack import _check_size

        self.model = model
        if input_size is not None:
            input_size = check_input_size(input_size, "input_size")   # before any allocation
        self.input_size = _check_size(input_size if input_size is not None else model.input_size)
        self.meter = meter or no_meter
        self.min_score = float(min_score)
        self.nms_threshold = float(nms_threshold)
        self.max_detections = int(max_detections)
        self.associator = TrackTrackAssociator(frame_rate=frame_rate, min_score=min_score, **association)
        self.frame = -1

    @property
    def uses_reid(self) -> bool:
        return False

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Detections of one frame -> [N, 5] x1, y1, x2, y2, score in image pixels."""
        from snnsim.models.smtrack import postprocess

        x, r = letterbox(image, self.input_size)
        with torch.no_grad(), self.meter("search"):
            out = self.model.forward_search(x, None)
        with torch.no_grad():
            det = postprocess(out["decoded"], self.min_score, self.nms_threshold, self.max_detections)[0]
        det = det.double().numpy()
        det[:, :4] /= r
        return det

    def step(self, image: np.ndarray) -> MOTStep:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"frames must be numpy arrays [H, W, 3] (RGB); got {getattr(image, 'shape', None)}")
        self.frame += 1
        det = self.detect(image)
        tracks = self.associator.update(det, frame_id=self.frame + 1)
        out = [(int(tid), np.array([b[0], b[1], b[2] - b[0], b[3] - b[1]]), float(s)) for tid, b, s in tracks]
        return MOTStep(self.frame, out, len(det))

