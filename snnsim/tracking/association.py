"""TrackTrack association (SMTrack's multi-object stage), detector-agnostic.

Written from the facts in specs/models.md and a reading of the TrackTrack tracker code
(``trackers/utils.py``, ``track.py``, ``tracker.py``, ``kalman_filter.py``). The reading, term
by term:

* **HIoU** is the *height IoU*, the 1-D IoU of the two boxes' vertical extents,
  (min(y2) - max(y1)) / (max(y2) - min(y1)). The motion term is 1 - HIoU * IoU, so boxes of
  the same height band are preferred (pedestrians in a crowd differ mostly in x).
* **Confidence term** |2 s_t - s_{t-1} - s_det|: s_t is the score of the track's latest
  matched detection, s_{t-1} the score of the one before it (s_t again for a one-frame
  track); 2 s_t - s_{t-1} is a linear extrapolation of the track's score.
* **Angle term**: boxes are reduced to their four corners (left-top, left-bottom,
  right-top, right-bottom). A track keeps a velocity per corner: at each update, the mean
  over dt = 1..3 of unit(corner(box_now) - corner(box at frame - dt)) / dt (a missing frame
  falls back to the latest stored box, i.e. a zero vector). For a candidate detection the
  direction per corner is unit(corner(det) - corner(track box at frame - 3, or its latest
  box)); the term is the mean over corners of arccos(clip(v . u, -1, 1)) / pi, in [0, 1],
  multiplied by the detection score. A fresh track (zero velocity) gets 0.5 * s_det.
  (TrackTrack's per-track ``get_vel`` uses y2 - y1 of different boxes for the two bottom
  corners - an apparent slip; here every corner uses its own coordinates, as TrackTrack's
  track-to-detection directions do.)
* **Cost** = 0.5 (1 - HIoU IoU) + 0.5 cos_dist + 0.1 conf + 0.05 angle; without ReID the
  first two weights become 1 and 0 (TrackTrack's no-ReID variant); + 0.2 on low-score
  columns, + 0.4 on deleted-high columns; IoU <= 0.1 -> 1; clip to [0, 1].
* **Iterative assignment**: accept every (row, col) that is the minimum of its row and of
  its column with cost < thr, blank those rows and columns, thr -= 0.05, repeat until a
  round adds nothing.
* **Detection split**: high = score > det_thr, low = the rest, from an NMS-0.80 set;
  deleted-high = boxes kept by NMS 0.95 whose best IoU with the NMS-0.80 set is < 0.97 (i.e.
  suppressed at 0.80), with score > det_thr. TrackTrack gets the two NMS sets from its
  detector; here both come from the raw detections given to :meth:`update`.
* **Lifecycle**: tracked + lost tracks are matched to high + low + deleted-high; unmatched
  ones become lost. New (unconfirmed) tracks are matched to the leftover highs; unmatched new
  tracks are removed. Tracks unseen for more than 2 x frame rate frames are removed. A track
  is confirmed (output) once it has 3 matched detections. Track-aware initialisation from the
  remaining highs: score > init_thr, IoU <= 0.55 with every tracked / new track, and not
  suppressed (IoU > 0.55) by a higher-scored detection that is itself initialised. Output:
  tracked tracks matched this frame whose Kalman box has area > 100.
* Box IoU is the continuous one (TrackTrack's cython ``bbox_overlaps`` adds one pixel to
  widths and heights; for boxes tens of pixels wide the difference is below 1e-2).
  TrackTrack's camera-motion compensation (OpenCV ECC) and DanceTrack-only tweaks are not
  part of this detector-agnostic core.
"""
from __future__ import annotations

import enum

import numpy as np

from .boxes import cxcywh_to_xyxy, hiou_matrix, iou_matrix, nms, xyxy_to_cxcywh
from .kalman import KalmanFilter

__all__ = [
    "TrackState", "Track", "TrackTrackAssociator", "conf_distance", "corner_directions",
    "angle_distance", "cosine_distance", "association_cost", "iterative_assignment",
    "split_detections", "track_aware_init",
]

_NORM_EPS = 1e-5  # TrackTrack adds this to the corner-displacement norms


# --------------------------------------------------------------------------------------
# cost terms (pure functions)
# --------------------------------------------------------------------------------------
def corners(boxes_xyxy) -> np.ndarray:
    """[..., 4] xyxy -> [..., 4, 2] corners in the order left-top, left-bottom, right-top, right-bottom."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([np.stack([x1, y1], -1), np.stack([x1, y2], -1),
                     np.stack([x2, y1], -1), np.stack([x2, y2], -1)], axis=-2)


def corner_directions(src_xyxy, dst_xyxy) -> np.ndarray:
    """Unit corner displacement from every src box [N, 4] to every dst box [M, 4] -> [N, M, 4, 2]
    (a zero displacement stays zero)."""
    d = corners(np.atleast_2d(dst_xyxy))[None] - corners(np.atleast_2d(src_xyxy))[:, None]
    return d / (np.linalg.norm(d, axis=-1, keepdims=True) + _NORM_EPS)


def conf_distance(track_scores, track_prev_scores, det_scores) -> np.ndarray:
    """|2 s_t - s_{t-1} - s_det| -> [N, M]."""
    proj = 2 * np.asarray(track_scores, dtype=np.float64) - np.asarray(track_prev_scores, dtype=np.float64)
    return np.abs(proj[:, None] - np.asarray(det_scores, dtype=np.float64)[None, :])


def angle_distance(track_velocity, track_ref_boxes, det_boxes, det_scores) -> np.ndarray:
    """Mean corner angle / pi between track velocity and track->detection direction, x s_det -> [N, M].

    track_velocity [N, 4, 2] (per-corner), track_ref_boxes [N, 4] xyxy (box dt frames ago),
    det_boxes [M, 4] xyxy, det_scores [M].
    """
    vel = np.asarray(track_velocity, dtype=np.float64)
    u = corner_directions(track_ref_boxes, det_boxes)          # [N, M, 4, 2]
    dot = np.clip((vel[:, None] * u).sum(-1), -1.0, 1.0)        # [N, M, 4]
    return (np.arccos(dot) / np.pi).mean(-1) * np.asarray(det_scores, dtype=np.float64)[None, :]


def cosine_distance(track_feats, det_feats) -> np.ndarray:
    """clip(1 - <f_track, f_det>, 0, 1) of L2-normalised features -> [N, M]."""
    return np.clip(1.0 - np.asarray(track_feats) @ np.asarray(det_feats).T, 0.0, 1.0)


def association_cost(track_boxes, det_boxes, conf_dist, angle_dist, n_high: int, n_low: int,
                     cos_dist=None, penalty_low: float = 0.2, penalty_deleted: float = 0.4,
                     min_iou: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """TrackTrack cost [N, M] (columns: n_high high, n_low low, then deleted-high) and the IoU.

    ``angle_dist`` already carries the detection-score factor. ``cos_dist`` None = no ReID
    (motion weight 1 instead of 0.5 + 0.5 ReID).
    """
    iou = iou_matrix(track_boxes, det_boxes)
    motion = 1.0 - hiou_matrix(track_boxes, det_boxes) * iou
    cost = motion if cos_dist is None else 0.5 * motion + 0.5 * np.asarray(cos_dist)
    cost = cost + 0.10 * np.asarray(conf_dist) + 0.05 * np.asarray(angle_dist)
    cost[:, n_high:n_high + n_low] += penalty_low
    cost[:, n_high + n_low:] += penalty_deleted
    cost[iou <= min_iou] = 1.0
    return np.clip(cost, 0.0, 1.0), iou


def iterative_assignment(cost, match_thr: float, reduce_step: float = 0.05):
    """Mutual-minimum matching with a falling threshold -> (matches, unmatched_rows, unmatched_cols).

    Each round accepts every pair that is the minimum of its row and of its column (first
    index on ties) with cost < thr; matched rows and columns are then blanked and thr drops
    by ``reduce_step``; the first round that accepts nothing ends it. ``matches`` is a list
    of (row, col) in acceptance order.
    """
    c = np.array(cost, dtype=np.float64)
    n, m = c.shape
    matches: list[tuple[int, int]] = []
    thr = float(match_thr)
    while n and m:
        best_col = np.argmin(c, axis=1)
        best_row = np.argmin(c, axis=0)
        new = [(r, int(k)) for r, k in enumerate(best_col) if best_row[k] == r and c[r, k] < thr]
        thr -= reduce_step
        if not new:
            break
        matches += new
        for r, k in new:
            c[r, :] = np.inf
            c[:, k] = np.inf
    rows = {r for r, _ in matches}
    cols = {k for _, k in matches}
    return matches, [r for r in range(n) if r not in rows], [k for k in range(m) if k not in cols]


def split_detections(detections, det_thr: float, min_score: float = 0.1, nms_thr: float = 0.80,
                     nms_wide_thr: float = 0.95, dup_iou: float = 0.97):
    """Indices (into ``detections`` [N, 5] x1,y1,x2,y2,score) of high, low and deleted-high.

    Detections scoring below ``min_score`` are ignored. high / low: the NMS-``nms_thr`` set
    split at ``det_thr`` (score > det_thr is high); deleted-high: boxes kept by
    NMS-``nms_wide_thr`` whose best IoU with the NMS-``nms_thr`` set is < ``dup_iou`` and whose
    score is > det_thr. Each list is ordered by decreasing score.
    """
    d = np.asarray(detections, dtype=np.float64).reshape(-1, 5)
    idx = np.flatnonzero(d[:, 4] >= min_score)
    empty = np.zeros(0, dtype=np.int64)
    if len(idx) == 0:
        return empty, empty, empty
    keep = idx[nms(d[idx, :4], d[idx, 4], nms_thr)]
    wide = idx[nms(d[idx, :4], d[idx, 4], nms_wide_thr)]
    best = iou_matrix(d[wide, :4], d[keep, :4]).max(axis=1)
    deleted = wide[best < dup_iou]
    high = keep[d[keep, 4] > det_thr]
    low = keep[d[keep, 4] <= det_thr]
    return high, low, deleted[d[deleted, 4] > det_thr]


def track_aware_init(det_boxes, det_scores, track_boxes, init_thr: float, tai_thr: float = 0.55) -> np.ndarray:
    """Which candidate detections start tracks -> bool [M] (see the module doc)."""
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    allow = scores > init_thr
    track_boxes = np.asarray(track_boxes, dtype=np.float64).reshape(-1, 4)
    if len(track_boxes) and len(det_boxes):
        allow &= iou_matrix(det_boxes, track_boxes).max(axis=1) <= tai_thr
    ious = iou_matrix(det_boxes, det_boxes)
    for i in np.argsort(-scores, kind="stable"):
        if allow[i]:
            allow &= ~((ious[i] > tai_thr) & (scores < scores[i]))
    return allow


# --------------------------------------------------------------------------------------
# tracks
# --------------------------------------------------------------------------------------
class TrackState(enum.IntEnum):
    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


class Track:
    """One track: Kalman state, recent matched detections, corner velocity, ReID feature."""

    def __init__(self, track_id: int, frame_id: int, box_xyxy, score: float, feat, kf: KalmanFilter,
                 history_len: int = 4):
        self.track_id = track_id
        self.kf = kf
        self.box = np.asarray(box_xyxy, dtype=np.float64).copy()  # latest matched detection
        self.score = float(score)
        self.feat = None if feat is None else feat / max(np.linalg.norm(feat), 1e-12)
        self.mean, self.cov = kf.initiate(xyxy_to_cxcywh(self.box))
        self.history: dict[int, tuple[np.ndarray, float]] = {frame_id: (self.box.copy(), self.score)}
        self.history_len = history_len
        self.velocity = np.zeros((4, 2))
        self.hits = 1
        self.end_frame = frame_id
        self.state = TrackState.NEW

    @property
    def xyxy(self) -> np.ndarray:
        return cxcywh_to_xyxy(self.mean[:4])

    def box_at(self, frame_id: int) -> np.ndarray:
        """Matched box of frame ``frame_id``, else the latest matched box."""
        if frame_id in self.history:
            return self.history[frame_id][0]
        return self.history[max(self.history)][0]

    @property
    def prev_score(self) -> float:
        """Score of the matched detection before the latest one (the latest if there is none)."""
        keys = sorted(self.history)
        return self.history[keys[-2] if len(keys) > 1 else keys[-1]][1]

    def predict(self) -> None:
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)

    def update(self, frame_id: int, box_xyxy, score: float, feat, min_hits: int, feat_alpha: float,
               angle_dt: int) -> None:
        box = np.asarray(box_xyxy, dtype=np.float64)
        self.mean, self.cov = self.kf.update(self.mean, self.cov, xyxy_to_cxcywh(box), score)
        if feat is not None and self.feat is not None:
            beta = feat_alpha + (1 - feat_alpha) * (1 - score)
            f = beta * self.feat + (1 - beta) * feat / max(np.linalg.norm(feat), 1e-12)
            self.feat = f / max(np.linalg.norm(f), 1e-12)
        self.history[frame_id] = (box.copy(), float(score))
        vel = np.zeros((4, 2))
        for dt in range(1, angle_dt + 1):
            vel += corner_directions(self.box_at(frame_id - dt), box)[0, 0] / dt
        self.velocity = vel / angle_dt
        while len(self.history) > self.history_len:
            del self.history[min(self.history)]
        self.box, self.score = box.copy(), float(score)
        self.hits += 1
        self.end_frame = frame_id
        self.state = TrackState.TRACKED if self.hits >= min_hits else TrackState.NEW


# --------------------------------------------------------------------------------------
# the tracker state machine
# --------------------------------------------------------------------------------------
class TrackTrackAssociator:
    """TrackTrack multi-object association, fed one frame of detections at a time.

    ``update(detections [N, 5] x1,y1,x2,y2,score, frame_id, features=None)`` returns the
    confirmed tracks of that frame as ``(track_id, box_xyxy [4], score)``. Pass ReID
    ``features`` [N, D] (one row per detection) on every frame or on none; ``uses_reid``
    reports which cost was used. Defaults are SMTrack's MOT17 thresholds.
    """

    def __init__(self, frame_rate: float = 30.0, det_thr: float = 0.60, init_thr: float = 0.70,
                 match_thr: float = 0.70, reduce_step: float = 0.05, penalty_low: float = 0.20,
                 penalty_deleted: float = 0.40, tai_thr: float = 0.55, min_hits: int = 3,
                 max_time_lost: float | None = None, min_box_area: float = 100.0,
                 max_aspect_ratio: float | None = None, min_score: float = 0.1, nms_thr: float = 0.80,
                 nms_wide_thr: float = 0.95, dup_iou: float = 0.97, min_iou: float = 0.10,
                 angle_dt: int = 3, feat_alpha: float = 0.95):
        if not frame_rate > 0:
            raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
        self.frame_rate = float(frame_rate)
        self.det_thr, self.init_thr, self.match_thr = det_thr, init_thr, match_thr
        self.reduce_step, self.penalty_low, self.penalty_deleted = reduce_step, penalty_low, penalty_deleted
        self.tai_thr, self.min_hits = tai_thr, int(min_hits)
        self.max_time_lost = 2 * self.frame_rate if max_time_lost is None else float(max_time_lost)
        self.min_box_area, self.max_aspect_ratio, self.min_score = min_box_area, max_aspect_ratio, min_score
        self.nms_thr, self.nms_wide_thr, self.dup_iou, self.min_iou = nms_thr, nms_wide_thr, dup_iou, min_iou
        self.angle_dt, self.feat_alpha = int(angle_dt), feat_alpha
        self.kf = KalmanFilter()
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self.frame_id = 0
        self._next_id = 1
        self._reid: bool | None = None

    @property
    def uses_reid(self) -> bool:
        """True when the cost includes the ReID cosine term (features were given)."""
        return bool(self._reid)

    # -- helpers ----------------------------------------------------------------------------
    def _cost(self, tracks: list[Track], boxes, scores, feats, n_high: int, n_low: int):
        if not tracks or len(boxes) == 0:
            return np.ones((len(tracks), len(boxes)))
        t_boxes = np.stack([t.xyxy for t in tracks])
        conf = conf_distance([t.score for t in tracks], [t.prev_score for t in tracks], scores)
        ref = np.stack([t.box_at(self.frame_id - self.angle_dt) for t in tracks])
        angle = angle_distance(np.stack([t.velocity for t in tracks]), ref, boxes, scores)
        cos = cosine_distance(np.concatenate([t.feat[None] for t in tracks]), feats) if self._reid else None
        cost, _ = association_cost(t_boxes, boxes, conf, angle, n_high, n_low, cos,
                                   self.penalty_low, self.penalty_deleted, self.min_iou)
        return cost

    def _update_track(self, t: Track, box, score, feat) -> None:
        t.update(self.frame_id, box, score, feat, self.min_hits, self.feat_alpha, self.angle_dt)

    # -- main -------------------------------------------------------------------------------
    def update(self, detections, frame_id: int | None = None, features=None) -> list[tuple[int, np.ndarray, float]]:
        dets = np.asarray(detections, dtype=np.float64)
        if dets.size == 0:
            dets = dets.reshape(0, 5)
        if dets.ndim != 2 or dets.shape[1] != 5:
            raise ValueError(f"detections must be an array [N, 5] of x1,y1,x2,y2,score, got shape {dets.shape}")
        if not np.isfinite(dets).all():
            raise ValueError("detections contain NaN or inf; drop those rows before tracking")
        has_feats = features is not None
        if self._reid is None:
            self._reid = has_feats
        elif self._reid != has_feats:
            raise ValueError("ReID features must be given on every frame or on none "
                             f"(this associator started {'with' if self._reid else 'without'} them)")
        feats = None
        if has_feats:
            feats = np.asarray(features, dtype=np.float64)
            if feats.ndim != 2 or len(feats) != len(dets):
                raise ValueError(f"features must be [N, D] with N = {len(dets)} detections, got {feats.shape}")
            feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        fid = self.frame_id + 1 if frame_id is None else int(frame_id)
        if fid <= self.frame_id:
            raise ValueError(f"frame_id must increase: got {fid} after {self.frame_id}")
        self.frame_id = fid

        high, low, deleted = split_detections(dets, self.det_thr, self.min_score, self.nms_thr,
                                              self.nms_wide_thr, self.dup_iou)
        order = np.concatenate([high, low, deleted]).astype(np.int64)
        boxes, scores = dets[order, :4], dets[order, 4]
        dfeat = None if feats is None else feats[order]

        tracked_lost = [t for t in self.tracks if t.state in (TrackState.TRACKED, TrackState.LOST)]
        new = [t for t in self.tracks if t.state == TrackState.NEW]
        for t in tracked_lost + new:
            t.predict()

        # 1. tracked + lost tracks vs high, low and deleted-high detections
        cost = self._cost(tracked_lost, boxes, scores, dfeat, len(high), len(low))
        matches, u_tracks, u_dets = iterative_assignment(cost, self.match_thr, self.reduce_step)
        for ti, di in matches:
            self._update_track(tracked_lost[ti], boxes[di], scores[di], None if dfeat is None else dfeat[di])
        for ti in u_tracks:
            tracked_lost[ti].state = TrackState.LOST

        # 2. new (unconfirmed) tracks vs the high detections left over
        left = [d for d in u_dets if d < len(high)]
        lb, ls = boxes[left], scores[left]
        lf = None if dfeat is None else dfeat[left]
        cost = self._cost(new, lb, ls, lf, len(left), 0)
        matches, u_new, u_left = iterative_assignment(cost, self.match_thr, self.reduce_step)
        for ti, di in matches:
            self._update_track(new[ti], lb[di], ls[di], None if lf is None else lf[di])
        for ti in u_new:
            new[ti].state = TrackState.REMOVED

        # 3. forget tracks lost for too long
        for t in self.tracks:
            if self.frame_id - t.end_frame > self.max_time_lost:
                t.state = TrackState.REMOVED
        self.tracks = [t for t in self.tracks if t.state != TrackState.REMOVED]

        # 4. track-aware initialisation from the remaining high detections
        live = [t.xyxy for t in self.tracks if t.state in (TrackState.TRACKED, TrackState.NEW)]
        cand = np.asarray(u_left, dtype=np.int64)
        if len(cand):
            start = track_aware_init(lb[cand], ls[cand], np.array(live).reshape(-1, 4), self.init_thr, self.tai_thr)
            for di in cand[start]:
                self.tracks.append(Track(self._next_id, self.frame_id, lb[di], ls[di],
                                         None if lf is None else lf[di], self.kf, self.angle_dt + 1))
                self._next_id += 1

        return self.outputs()

    def outputs(self) -> list[tuple[int, np.ndarray, float]]:
        """Confirmed tracks matched in the current frame, as (track_id, box_xyxy, score)."""
        out = []
        for t in self.tracks:
            if t.state != TrackState.TRACKED or t.end_frame != self.frame_id:
                continue
            box = t.xyxy
            w, h = box[2] - box[0], box[3] - box[1]
            if w * h <= self.min_box_area:
                continue
            if self.max_aspect_ratio is not None and h > 0 and w / h > self.max_aspect_ratio:
                continue
            out.append((t.track_id, box, t.score))
        return out
