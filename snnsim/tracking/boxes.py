"""Axis-aligned box utilities: the one IoU and NMS of snnsim (the detector's post-processing,
the MOT association and metrics, the SOT metrics and the Loihi fidelity check all use these).

The core (`box_iou`, `box_iou_paired`, `nms_indices`) is torch and lives with the detector that needs it
(`snnsim.models.box_ops`: models never import tracking); the numpy entry points here
(`iou_matrix`, `iou_paired`, `nms`: float64, vectorised over the leading axes) run the same code on
float64 tensors. torchvision.ops has both, but torchvision is not installed beside the CPU
torch (requirements.lock), so they are written once.

Formats, always in pixels and continuous coordinates (a box covers [x1, x2) x [y1, y2)):
  xywh   - left, top, width, height (GOT-10k / LaSOT / OTB / MOTChallenge files)
  xyxy   - left, top, right, bottom (detector outputs, the association)
  cxcywh - centre x, centre y, width, height (the Kalman state)

IoU uses the continuous convention (intersection width = min(right) - max(left)); the
"+1 pixel" convention of some older toolkits gives the same IoU for xywh boxes whose right
edge is x + w - 1, so SOT scores match theirs.
"""
from __future__ import annotations

import numpy as np
import torch

from snnsim.models.box_ops import box_iou, box_iou_paired, nms_indices

__all__ = [
    "as_boxes", "xywh_to_xyxy", "xyxy_to_xywh", "xyxy_to_cxcywh", "cxcywh_to_xyxy",
    "xywh_to_cxcywh", "cxcywh_to_xywh", "box_area", "box_iou", "iou_matrix", "iou_paired",
    "iou_xywh", "hiou_matrix", "nms", "nms_indices", "box_size_problem",
]


def box_size_problem(w, h) -> str | None:
    """What is wrong with a box's width and height, said the right way round (negative,
    zero-size or not a number), or None when both are > 0."""
    if w > 0 and h > 0:
        return None
    if not (np.isfinite(w) and np.isfinite(h)):
        return f"box size is not a finite number (w={w:g}, h={h:g})"
    negative = [name for name, v in (("width", w), ("height", h)) if v < 0]
    if negative:
        return f"negative {' and '.join(negative)} (w={w:g}, h={h:g}); a box needs w > 0 and h > 0"
    return f"zero-size box (w={w:g}, h={h:g}); a box needs w > 0 and h > 0"


def as_boxes(boxes) -> np.ndarray:
    """Any array-like of boxes -> float64 array [N, 4] (a single box becomes [1, 4])."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    arr = np.atleast_2d(arr)
    if arr.shape[-1] != 4:
        raise ValueError(f"boxes must have 4 coordinates in the last axis, got shape {arr.shape}")
    return arr


def xywh_to_xyxy(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:4]], axis=-1)


def xyxy_to_xywh(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:4] - b[..., :2]], axis=-1)


def xyxy_to_cxcywh(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([(b[..., :2] + b[..., 2:4]) / 2, b[..., 2:4] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    half = b[..., 2:4] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xywh_to_cxcywh(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2] + b[..., 2:4] / 2, b[..., 2:4]], axis=-1)


def cxcywh_to_xywh(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2] - b[..., 2:4] / 2, b[..., 2:4]], axis=-1)


def box_area(xyxy) -> np.ndarray:
    """Area of xyxy boxes; degenerate (inverted) boxes have area 0."""
    b = np.asarray(xyxy, dtype=np.float64)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou_matrix(a_xyxy, b_xyxy) -> np.ndarray:
    """IoU of every box in a [N, 4] with every box in b [M, 4] -> [N, M] (numpy, float64)."""
    a, b = as_boxes(a_xyxy), as_boxes(b_xyxy)
    return box_iou(torch.from_numpy(np.array(a)), torch.from_numpy(np.array(b))).numpy()   # writable copies


def iou_paired(a_xyxy, b_xyxy) -> np.ndarray:
    """IoU of a[i] with b[i] -> [N]; 0 where either box is degenerate or not finite."""
    a, b = as_boxes(a_xyxy), as_boxes(b_xyxy)
    if a.shape != b.shape:
        raise ValueError(f"iou_paired needs equal shapes, got {a.shape} and {b.shape}")
    out = box_iou_paired(torch.from_numpy(np.array(a)), torch.from_numpy(np.array(b))).numpy()  # writable copies
    out[~np.isfinite(out)] = 0.0      # inf - inf and inf / inf in boxes that are not finite
    return out


def hiou_matrix(a_xyxy, b_xyxy) -> np.ndarray:
    """Height IoU (TrackTrack's "HIoU"): the 1-D IoU of the vertical extents.

    HIoU = (min(y2a, y2b) - max(y1a, y1b)) / (max(y2a, y2b) - min(y1a, y1b)), clipped to
    [0, 1] (TrackTrack leaves it negative when the boxes do not overlap vertically, but it is
    only ever multiplied by the box IoU, which is then 0, so the clip changes nothing).
    """
    a, b = as_boxes(a_xyxy), as_boxes(b_xyxy)
    inter = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    span = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
    out = np.zeros_like(inter)
    np.divide(inter, span, out=out, where=span > 0)
    return np.clip(out, 0.0, 1.0)


def iou_xywh(a, b) -> float:
    """IoU of two single xywh boxes (0 when either is degenerate or not finite)."""
    return float(iou_paired(xywh_to_xyxy(as_boxes(a)), xywh_to_xyxy(as_boxes(b)))[0])


def nms(boxes_xyxy, scores, iou_thr: float) -> np.ndarray:
    """`nms_indices` on array-likes -> int64 numpy indices of the kept boxes."""
    boxes = as_boxes(boxes_xyxy)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    return nms_indices(torch.from_numpy(boxes), torch.from_numpy(scores), iou_thr).numpy().astype(np.int64)
