"""Single-object tracking metrics, one-pass evaluation (OTB / LaSOT / GOT-10k conventions).

Per frame, with boxes xywh:
* overlap = IoU(pred, gt) (0 for a degenerate or non-finite prediction);
* centre error = Euclidean distance of the box centres, in pixels (inf for a non-finite
  prediction); the normalised centre error divides dx by the gt width and dy by the gt
  height before taking the norm (LaSOT / TrackingNet normalised precision).

Curves, each a fraction of the scored frames:
* success(t)   = mean(overlap > t) for t in np.linspace(0, 1, 21); AUC = mean of the curve;
* precision(d) = mean(centre error <= d) for d = 0..50 px; the score is the value at 20 px;
* normalised precision(d) = mean(normalised error <= d) for d = 0, 0.01, ..., 0.5; the score
  is the value at 0.2 (pytracking's "Norm Prec").
AO is the mean overlap and SR_t = mean(overlap > t) (GOT-10k).

With ``carry_forward`` (OTB's calcSeqErrRobust, pytracking; not GOT-10k, whose toolkit scores
such a box 0) a prediction that is not finite or has w or h <= 0 is replaced by the previous
frame's box before scoring; a first frame without one scores 0.

Frames whose ground truth is absent or invalid (non-finite, w or h <= 0, or flagged absent):
``absent="exclude"`` leaves them out of every average, as the GOT-10k toolkit does;
``absent="fail"`` scores them as failures over the whole sequence length (overlap below every
threshold, infinite centre error), as the OTB / LaSOT protocols do (pytracking's default, the
LaSOT toolkit). ``skip_first`` also drops the initialisation frame (GOT-10k's convention; OTB
and LaSOT score it). ``bound`` (W, H) clips both boxes to the image before the overlap, the
way the GOT-10k toolkit's ``rect_iou(..., bound)`` does (x and y into [0, W] / [0, H], then w
and h into what is left).

Over a dataset (:func:`average_sot_metrics`) the curves, AUC and precisions are averaged over
sequences (OTB / LaSOT: each sequence weighs the same), while AO and SR pool every scored frame
(the GOT-10k toolkit concatenates the frames' overlaps: a long sequence weighs more).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .boxes import iou_paired, xywh_to_xyxy

__all__ = [
    "SUCCESS_THRESHOLDS", "PRECISION_THRESHOLDS", "NORM_PRECISION_THRESHOLDS", "overlaps",
    "center_errors", "normalized_center_errors", "valid_gt_mask", "success_curve",
    "precision_curve", "SOTMetrics", "sot_metrics", "average_sot_metrics", "static_boxes", "clip_to_image",
    "carry_forward_invalid",
]

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100.0
_PREC_AT = 20      # index of 20 px
_NORM_PREC_AT = 20  # index of 0.2


def _boxes(b, name: str) -> np.ndarray:
    arr = np.asarray(b, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be an array [N, 4] of x,y,w,h boxes, got shape {arr.shape}")
    return arr


def clip_to_image(b: np.ndarray, bound) -> np.ndarray:
    """Boxes clipped as the GOT-10k toolkit's rect_iou does with ``bound=(W, H)``: x into
    [0, W], y into [0, H], then w into [0, W - x] and h into [0, H - y] (a box partly left of
    the image is moved right, not cut)."""
    W, H = bound
    out = np.array(b, dtype=np.float64, copy=True)
    out[:, 0] = np.clip(out[:, 0], 0, W)
    out[:, 1] = np.clip(out[:, 1], 0, H)
    out[:, 2] = np.clip(out[:, 2], 0, W - out[:, 0])
    out[:, 3] = np.clip(out[:, 3], 0, H - out[:, 1])
    return out


def carry_forward_invalid(pred_xywh) -> np.ndarray:
    """Predictions with a non-finite value or w or h <= 0 replaced by the previous frame's
    (OTB / pytracking). A first frame without a valid box stays as it is (it scores 0)."""
    p = np.array(_boxes(pred_xywh, "pred"), copy=True)
    bad = ~(np.isfinite(p).all(1) & (p[:, 2] > 0) & (p[:, 3] > 0))
    for i in np.flatnonzero(bad):
        if i > 0:
            p[i] = p[i - 1]
    return p


def overlaps(pred_xywh, gt_xywh, bound=None) -> np.ndarray:
    """Per-frame IoU -> [N]; ``bound`` (W, H): both boxes clipped to the image first."""
    p, g = _boxes(pred_xywh, "pred"), _boxes(gt_xywh, "gt")
    if bound is not None:
        p, g = clip_to_image(p, bound), clip_to_image(g, bound)
    ok = np.isfinite(p).all(1) & (p[:, 2] > 0) & (p[:, 3] > 0)
    out = np.zeros(len(p))
    out[ok] = iou_paired(xywh_to_xyxy(p[ok]), xywh_to_xyxy(g[ok]))
    return out


def _centres(b: np.ndarray) -> np.ndarray:
    return b[:, :2] + b[:, 2:] / 2


def center_errors(pred_xywh, gt_xywh) -> np.ndarray:
    """Per-frame centre distance in pixels -> [N] (inf where the prediction is not finite)."""
    p, g = _boxes(pred_xywh, "pred"), _boxes(gt_xywh, "gt")
    err = np.linalg.norm(_centres(p) - _centres(g), axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def normalized_center_errors(pred_xywh, gt_xywh) -> np.ndarray:
    """Per-frame centre distance with dx / w_gt, dy / h_gt -> [N]."""
    p, g = _boxes(pred_xywh, "pred"), _boxes(gt_xywh, "gt")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (_centres(p) - _centres(g)) / g[:, 2:]
        err = np.linalg.norm(d, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def valid_gt_mask(gt_xywh, absent=None) -> np.ndarray:
    """Frames that can be scored: finite gt with w > 0 and h > 0, not flagged absent."""
    g = _boxes(gt_xywh, "gt")
    ok = np.isfinite(g).all(1) & (g[:, 2] > 0) & (g[:, 3] > 0)
    if absent is not None:
        ok &= ~np.asarray(absent, dtype=bool)
    return ok


def success_curve(ious, thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU strictly above each threshold."""
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    if ious.size == 0:
        raise ValueError("success_curve: no frames to score")
    return (ious[:, None] > np.asarray(thresholds)[None, :]).mean(0)


def precision_curve(errors, thresholds=PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with centre error at or below each threshold."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise ValueError("precision_curve: no frames to score")
    return (errors[:, None] <= np.asarray(thresholds)[None, :]).mean(0)


@dataclass(frozen=True)
class SOTMetrics:
    auc: float                          # success AUC (mean of the 21-point success curve)
    precision: float                    # precision at 20 px
    norm_precision: float               # normalised precision at 0.2
    ao: float                           # average overlap
    sr50: float                         # success rate IoU > 0.5
    sr75: float                         # success rate IoU > 0.75
    n_frames: int                       # frames scored
    success_curve: np.ndarray           # [21] at SUCCESS_THRESHOLDS
    precision_curve: np.ndarray         # [51] at PRECISION_THRESHOLDS
    norm_precision_curve: np.ndarray    # [51] at NORM_PRECISION_THRESHOLDS

    def as_dict(self, curves: bool = False) -> dict:
        d = asdict(self)
        for k in ("success_curve", "precision_curve", "norm_precision_curve"):
            if curves:
                d[k] = [float(v) for v in d[k]]
            else:
                d.pop(k)
        return d


def _from_curves(succ, prec, nprec, ao, sr50, sr75, n) -> SOTMetrics:
    return SOTMetrics(auc=float(np.mean(succ)), precision=float(prec[_PREC_AT]),
                      norm_precision=float(nprec[_NORM_PREC_AT]), ao=float(ao),
                      sr50=float(sr50), sr75=float(sr75), n_frames=int(n), success_curve=succ,
                      precision_curve=prec, norm_precision_curve=nprec)


def sot_metrics(pred_xywh, gt_xywh, valid=None, skip_first: bool = False, absent: str = "exclude",
                bound=None, carry_forward: bool = True) -> SOTMetrics:
    """One-pass metrics of one sequence.

    ``valid``: bool [N] of frames whose target is there (default: :func:`valid_gt_mask` of
    the gt); it is combined with the gt validity. ``absent``: what the other frames do,
    "exclude" (GOT-10k) or "fail" (OTB / LaSOT: scored as failures). ``bound``: (W, H) to clip
    the boxes to before the overlap (GOT-10k). ``carry_forward``: an invalid prediction takes
    the previous frame's box (OTB / LaSOT) instead of scoring 0 (GOT-10k).
    """
    if absent not in ("exclude", "fail"):
        raise ValueError(f"sot_metrics: absent must be 'exclude' or 'fail', got {absent!r}")
    p = carry_forward_invalid(pred_xywh) if carry_forward else _boxes(pred_xywh, "pred")
    g = _boxes(gt_xywh, "gt")
    if len(p) != len(g):
        raise ValueError(f"sot_metrics: {len(p)} predicted boxes for {len(g)} ground-truth boxes; "
                         "give one prediction per frame")
    mask = valid_gt_mask(g)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (len(g),):
            raise ValueError(f"sot_metrics: valid must have shape ({len(g)},), got {valid.shape}")
        mask &= valid
    scored = mask.copy() if absent == "exclude" else np.ones(len(g), dtype=bool)
    if skip_first and len(scored):
        scored[0] = False
    if not (mask & scored).any():
        raise ValueError("sot_metrics: no frame has a valid ground-truth box to score")
    there = mask[scored]                      # scored frames whose target is there
    p, g = p[scored], g[scored]
    ious = np.full(len(g), -1.0)              # a frame without its target fails every threshold
    errors, norm_errors = np.full(len(g), np.inf), np.full(len(g), np.inf)
    ious[there] = overlaps(p[there], g[there], bound)
    errors[there] = center_errors(p[there], g[there])
    norm_errors[there] = normalized_center_errors(p[there], g[there])
    succ = success_curve(ious)
    prec = precision_curve(errors)
    nprec = precision_curve(norm_errors, NORM_PRECISION_THRESHOLDS)
    overlap = np.maximum(ious, 0.0)           # AO: such a frame overlaps nothing
    return _from_curves(succ, prec, nprec, overlap.mean(), succ[10], (ious > 0.75).mean(), len(ious))


def average_sot_metrics(per_sequence: list[SOTMetrics]) -> SOTMetrics:
    """Dataset score: curves, AUC and precisions averaged over sequences (each sequence
    weighs the same, as in OTB / LaSOT); AO and SR over every scored frame of every sequence
    (the GOT-10k toolkit concatenates the frames' overlaps)."""
    if not per_sequence:
        raise ValueError("average_sot_metrics: no sequences")
    succ = np.mean([m.success_curve for m in per_sequence], axis=0)
    prec = np.mean([m.precision_curve for m in per_sequence], axis=0)
    nprec = np.mean([m.norm_precision_curve for m in per_sequence], axis=0)
    frames = np.array([m.n_frames for m in per_sequence], dtype=np.float64)

    def pooled(values) -> float:
        return float(np.dot(values, frames) / frames.sum())

    return _from_curves(succ, prec, nprec, pooled([m.ao for m in per_sequence]),
                        pooled([m.sr50 for m in per_sequence]), pooled([m.sr75 for m in per_sequence]),
                        int(frames.sum()))


def static_boxes(gt_xywh) -> np.ndarray:
    """The static-box baseline: the first ground-truth box kept for every frame."""
    g = _boxes(gt_xywh, "gt")
    return np.repeat(g[:1], len(g), axis=0)
