"""Box IoU and greedy NMS on torch tensors: the one implementation, used by SMTrack's
post-processing and, through snnsim.tracking.boxes' numpy entry points, by the association,
the metrics and the Loihi fidelity check. Here because the detector needs it and models never
import tracking (tracking imports models)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["box_iou", "box_iou_paired", "nms_indices"]


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes a [..., 4] and b [..., 4], broadcast against each other (0 where the
    union is 0). Areas are taken before broadcasting, so a [N, 1, 4] x [1, M, 4] call computes
    N + M of them, not N * M."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = _area(a) + _area(b) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix of xyxy boxes a [N, 4] and b [M, 4] -> [N, M] (0 where the union is 0)."""
    return _iou(a[:, None, :], b[None, :, :])


def box_iou_paired(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of a[i] with b[i] for xyxy boxes of equal shape [N, 4] -> [N]."""
    return _iou(a, b)


def nms_indices(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, block: int = 512) -> torch.Tensor:
    """Greedy NMS on xyxy tensors: indices of kept boxes, highest score first. A box is
    suppressed when its IoU with a kept, higher-scoring box is > iou_threshold (torchvision's
    rule); equal scores keep their input order.

    Blocked for speed: boxes (in score order) are taken `block` at a time; inside a block
    the greedy pass runs on a precomputed suppression matrix, then the block's kept boxes
    suppress every later box at once. The result equals the plain one-box-at-a-time loop.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    alive = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for s in range(0, n, block):
        e = min(s + block, n)
        over = (box_iou(b[s:e], b[s:e]) > iou_threshold).triu(1).cpu().numpy()
        keep_blk = alive[s:e].cpu().numpy().copy()
        for i in np.flatnonzero(over.any(1)):  # only rows that can suppress something
            if keep_blk[i]:
                keep_blk &= ~over[i]
        alive[s:e] = torch.from_numpy(keep_blk).to(boxes.device)
        kept = b[s:e][alive[s:e]]
        if e < n and kept.shape[0]:
            rest = torch.nonzero(alive[e:]).squeeze(1) + e
            if rest.numel():
                hit = (box_iou(kept, b[rest]) > iou_threshold).any(0)
                alive[rest[hit]] = False
    return order[alive]
