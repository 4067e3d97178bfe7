"""Multi-object tracking metrics (HOTA, CLEAR MOTA, IDF1) through ``trackeval``.

The data dict that trackeval's metric classes consume is built here directly from arrays,
with the MOTChallenge preprocessing done as ``trackeval.datasets.MotChallenge2DBox`` does it
(reading files through that class would need its folder layout and seqmaps; the metric
classes only need the dict):

1. per frame, result boxes are matched to all gt boxes (Hungarian on IoU, pairs with
   IoU >= 0.5 only); results matched to a gt box of a distractor class (person on vehicle 2,
   static person 7, distractor 8, reflection 12; MOT20 adds non-MOT vehicle 6) are dropped;
2. gt boxes are kept only when their conf flag, read as an integer, is not 0 and their class
   is pedestrian (1);
3. ids are relabelled to 0..n-1; similarity = box IoU (xywh, continuous).

Arrays are MOTChallenge rows: gt [K, >= 6] frame,id,x,y,w,h[,conf,class,visibility]
(missing columns default to conf 1, class 1; a class <= 0, as in MOT15 files, reads as 1)
and results [L, >= 6] frame,id,x,y,w,h[,...].
Frames are 1-based. Scores are fractions (1.0 = perfect), not percentages.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
from scipy.optimize import linear_sum_assignment

from .boxes import iou_matrix, xywh_to_xyxy

__all__ = ["MOT17_DISTRACTOR_CLASSES", "MOT20_DISTRACTOR_CLASSES", "build_trackeval_data", "distractor_classes_for",
           "mot_metrics", "mot_metrics_combined"]

MOT17_DISTRACTOR_CLASSES = (2, 7, 8, 12)
MOT20_DISTRACTOR_CLASSES = (2, 6, 7, 8, 12)


def distractor_classes_for(sequence_name: str) -> tuple[int, ...]:
    """The distractor classes of a sequence's benchmark, as trackeval's BENCHMARK setting picks
    them: MOT20 sequences (named MOT20-...) add non-MOT vehicle 6; every other one MOT17's."""
    last = str(sequence_name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]   # a dataset run's name: a path
    return MOT20_DISTRACTOR_CLASSES if last.upper().startswith("MOT20") else MOT17_DISTRACTOR_CLASSES
_EPS = np.finfo(float).eps


def _trackeval_metrics():
    try:
        # trackeval's package import prints a notice about optional datasets (BURST needs
        # pycocotools); the metric classes need none of them.
        with contextlib.redirect_stdout(io.StringIO()):
            import trackeval.metrics as tm
    except ImportError as e:  # pragma: no cover - environment problem
        raise ImportError(f"MOT metrics need trackeval ({e}); install the 'tracking' extra: "
                          "pip install 'snnsim[tracking]'") from None
    return tm


def _rows(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 9))
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise ValueError(f"{name} must be MOTChallenge rows [K, >= 6] (frame,id,x,y,w,h,...), got shape {arr.shape}")
    out = np.ones((len(arr), 9))
    out[:, :min(arr.shape[1], 9)] = arr[:, :9]
    if arr.shape[1] >= 8:
        out[out[:, 7] <= 0, 7] = 1  # MOT15 keeps world x (-1) here: no class column, all pedestrians
    if not np.isfinite(out[:, :6]).all():
        raise ValueError(f"{name} has NaN or inf in frame,id,x,y,w,h")
    if (out[:, 0] < 1).any() or (out[:, 0] != np.round(out[:, 0])).any():
        raise ValueError(f"{name}: frame numbers must be integers >= 1")
    return out


def build_trackeval_data(gt, res, n_frames: int | None = None, preprocess: bool = True,
                         distractor_classes=MOT17_DISTRACTOR_CLASSES, pedestrian_class: int = 1) -> dict:
    """The per-sequence dict trackeval's metrics expect (see the module doc for the rules)."""
    g_all, r_all = _rows(gt, "gt"), _rows(res, "res")
    last = int(max(g_all[:, 0].max(initial=0), r_all[:, 0].max(initial=0)))
    T = last if n_frames is None else int(n_frames)
    if last > T:
        raise ValueError(f"rows reach frame {last} but the sequence has {T} frames")
    g_all = g_all[np.argsort(g_all[:, 0], kind="stable")]
    r_all = r_all[np.argsort(r_all[:, 0], kind="stable")]
    g_by = np.searchsorted(g_all[:, 0], np.arange(1, T + 2))
    r_by = np.searchsorted(r_all[:, 0], np.arange(1, T + 2))

    gt_ids, tr_ids, sims = [], [], []
    for t in range(T):
        g = g_all[g_by[t]:g_by[t + 1]]
        r = r_all[r_by[t]:r_by[t + 1]]
        for arr, who in ((g, "gt"), (r, "res")):
            if len(np.unique(arr[:, 1])) != len(arr):
                raise ValueError(f"{who} has the same id twice in frame {t + 1}; ids must be unique per frame")
        sim = iou_matrix(xywh_to_xyxy(g[:, 2:6]), xywh_to_xyxy(r[:, 2:6]))
        if preprocess and len(g) and len(r):
            m = np.where(sim < 0.5 - _EPS, 0.0, sim)
            rows, cols = linear_sum_assignment(-m)
            hit = m[rows, cols] > _EPS
            drop = cols[hit][np.isin(g[rows[hit], 7], distractor_classes)]
            keep_r = np.setdiff1d(np.arange(len(r)), drop)
            r, sim = r[keep_r], sim[:, keep_r]
        keep_g = g[:, 6].astype(np.int64) != 0   # trackeval reads the flag as an integer: 0.5 is 0
        if preprocess:
            keep_g &= g[:, 7] == pedestrian_class
        gt_ids.append(g[keep_g, 1].astype(np.int64))
        tr_ids.append(r[:, 1].astype(np.int64))
        sims.append(sim[keep_g])

    def relabel(ids_per_t):
        uniq = np.unique(np.concatenate(ids_per_t)) if ids_per_t else np.zeros(0, np.int64)
        return [np.searchsorted(uniq, ids) for ids in ids_per_t], len(uniq)

    gt_ids, n_gt_ids = relabel(gt_ids)
    tr_ids, n_tr_ids = relabel(tr_ids)
    return {
        "num_timesteps": T, "num_gt_ids": n_gt_ids, "num_tracker_ids": n_tr_ids,
        "num_gt_dets": int(sum(len(x) for x in gt_ids)), "num_tracker_dets": int(sum(len(x) for x in tr_ids)),
        "gt_ids": gt_ids, "tracker_ids": tr_ids, "similarity_scores": sims,
    }


def _metric_objects(threshold: float):
    tm = _trackeval_metrics()
    cfg = {"THRESHOLD": threshold, "PRINT_CONFIG": False}
    return {"HOTA": tm.HOTA(), "CLEAR": tm.CLEAR(cfg), "Identity": tm.Identity(cfg)}


def _summary(raw: dict, extra: dict) -> dict:
    h, c, i = raw["HOTA"], raw["CLEAR"], raw["Identity"]
    out = {k: float(np.mean(h[k])) for k in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")}
    out.update({k: float(c[k]) for k in ("MOTA", "MOTP", "MODA")})
    out.update({k: float(i[k]) for k in ("IDF1", "IDP", "IDR")})
    out.update({"TP": int(c["CLR_TP"]), "FP": int(c["CLR_FP"]), "FN": int(c["CLR_FN"]),
                "IDSW": int(c["IDSW"]), "Frag": int(c["Frag"]), "MT": int(c["MT"]), "PT": int(c["PT"]),
                "ML": int(c["ML"]), "IDTP": int(i["IDTP"]), "IDFP": int(i["IDFP"]), "IDFN": int(i["IDFN"])})
    out.update(extra)
    return out


def _evaluate(data: dict, metrics: dict) -> dict:
    return {name: m.eval_sequence(data) for name, m in metrics.items()}


def mot_metrics(gt, res, n_frames: int | None = None, preprocess: bool = True,
                distractor_classes=MOT17_DISTRACTOR_CLASSES, threshold: float = 0.5) -> dict:
    """HOTA / CLEAR / Identity metrics of one sequence -> flat dict.

    Keys: HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr (means over the 19 HOTA alphas),
    MOTA, MOTP, MODA, IDF1, IDP, IDR (fractions), TP, FP, FN, IDSW, Frag, MT, PT, ML, IDTP,
    IDFP, IDFN (counts), n_frames, gt_dets, res_dets, gt_ids, res_ids.
    ``threshold`` is the IoU needed for a CLEAR / Identity match (0.5 in MOTChallenge).
    """
    data = build_trackeval_data(gt, res, n_frames, preprocess, distractor_classes)
    raw = _evaluate(data, _metric_objects(threshold))
    return _summary(raw, {"n_frames": data["num_timesteps"], "gt_dets": data["num_gt_dets"],
                          "res_dets": data["num_tracker_dets"], "gt_ids": data["num_gt_ids"],
                          "res_ids": data["num_tracker_ids"]})


def mot_metrics_combined(sequences: dict, preprocess: bool = True,
                         distractor_classes=None, threshold: float = 0.5) -> dict:
    """Several sequences: ``{name: (gt, res)}`` or ``{name: (gt, res, n_frames)}`` ->
    ``{name: metrics, ..., "COMBINED": metrics}`` (combined as trackeval combines a benchmark:
    counts summed, HOTA association re-weighted by detections). ``distractor_classes``: None
    picks each sequence's benchmark by its name (:func:`distractor_classes_for`)."""
    if not sequences:
        raise ValueError("mot_metrics_combined: no sequences")
    metrics = _metric_objects(threshold)
    per_seq, raws, totals = {}, {}, {"n_frames": 0, "gt_dets": 0, "res_dets": 0, "gt_ids": 0, "res_ids": 0}
    for name, item in sequences.items():
        gt, res, *rest = item
        classes = distractor_classes_for(name) if distractor_classes is None else distractor_classes
        data = build_trackeval_data(gt, res, rest[0] if rest else None, preprocess, classes)
        raws[name] = _evaluate(data, metrics)
        extra = {"n_frames": data["num_timesteps"], "gt_dets": data["num_gt_dets"],
                 "res_dets": data["num_tracker_dets"], "gt_ids": data["num_gt_ids"],
                 "res_ids": data["num_tracker_ids"]}
        for k in totals:
            totals[k] += extra[k]
        per_seq[name] = _summary(raws[name], extra)
    combined = {mname: m.combine_sequences({s: raws[s][mname] for s in raws}) for mname, m in metrics.items()}
    per_seq["COMBINED"] = _summary(combined, totals)
    return per_seq
