"""SOT metrics against hand arithmetic; MOT metrics (trackeval) on hand cases."""
from __future__ import annotations

import numpy as np
import pytest

from snnsim.tracking.boxes import hiou_matrix, iou_matrix, nms, xywh_to_xyxy, xyxy_to_cxcywh, cxcywh_to_xyxy
from snnsim.tracking.mot_metrics import mot_metrics, mot_metrics_combined
from snnsim.tracking.sot_metrics import (
    SUCCESS_THRESHOLDS, average_sot_metrics, precision_curve, sot_metrics, success_curve,
)


# --------------------------------------------------------------------------------- boxes
def test_box_conversions_iou_hiou_nms():
    b = np.array([[10.0, 20, 30, 60]])
    np.testing.assert_allclose(xyxy_to_cxcywh(b), [[20, 40, 20, 40]])
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(b)), b)
    a = xywh_to_xyxy([[0, 0, 10, 10]])
    c = xywh_to_xyxy([[5, 0, 10, 10]])
    # intersection 5 x 10 = 50, union 100 + 100 - 50 = 150
    assert iou_matrix(a, c)[0, 0] == pytest.approx(1 / 3)
    # heights [0, 20] and [2, 22]: overlap 18 over span 22
    assert hiou_matrix([[0, 0, 10, 20]], [[50, 2, 60, 22]])[0, 0] == pytest.approx(18 / 22)
    assert hiou_matrix([[0, 0, 10, 20]], [[0, 30, 10, 40]])[0, 0] == 0.0
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]]  # IoU(0, 1) = 90 / 110 = 0.818
    assert nms(boxes, [0.5, 0.9, 0.7], 0.8).tolist() == [1, 2]
    assert nms(boxes, [0.5, 0.9, 0.7], 0.85).tolist() == [1, 2, 0]


# ----------------------------------------------------------------------------------- SOT
def test_sot_hand_case():
    gt = np.array([[0, 0, 10, 10]] * 3 + [[0, 0, 0, 0]], dtype=float)  # frame 4: invalid gt, excluded
    pred = np.array([[0, 0, 10, 10],    # IoU 1,            centre error 0
                     [5, 0, 10, 10],    # IoU 50/150 = 1/3, centre error 5
                     [30, 0, 10, 10],   # IoU 0,            centre error 30
                     [99, 99, 1, 1]], dtype=float)
    m = sot_metrics(pred, gt)
    assert m.n_frames == 3
    # success(t) = share of IoU > t: 2/3 for the 7 thresholds 0..0.30, 1/3 for the 13
    # thresholds 0.35..0.95, 0 at 1.0 -> AUC = (7 * 2/3 + 13 * 1/3) / 21 = 9/21 = 3/7
    expected = np.where(SUCCESS_THRESHOLDS < 1 / 3, 2 / 3, 1 / 3)
    expected[-1] = 0.0
    np.testing.assert_allclose(m.success_curve, expected)
    assert m.auc == pytest.approx(3 / 7)
    assert m.precision == pytest.approx(2 / 3)       # errors 0, 5, 30: two are <= 20 px
    assert m.norm_precision == pytest.approx(1 / 3)  # normalised 0, 0.5, 3.0: one is <= 0.2
    assert m.ao == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m.sr50 == pytest.approx(1 / 3) and m.sr75 == pytest.approx(1 / 3)
    # GOT-10k style: without the first frame -> IoUs 1/3, 0 -> AO 1/6
    assert sot_metrics(pred, gt, skip_first=True).ao == pytest.approx(1 / 6)
    # an explicit mask combines with gt validity
    assert sot_metrics(pred, gt, valid=[True, False, True, True]).n_frames == 2


def test_sot_threshold_conventions_and_average():
    # success uses IoU > t (0.5 exactly is not a success at 0.5); precision uses error <= d
    assert success_curve([0.5])[10] == 0.0 and success_curve([0.5])[9] == 1.0
    assert precision_curve([20.0])[20] == 1.0 and precision_curve([20.0])[19] == 0.0
    gt = np.array([[0, 0, 10, 10]], dtype=float)
    perfect = sot_metrics(gt, gt)
    assert perfect.auc == pytest.approx(20 / 21)  # IoU 1 passes every threshold but 1.0
    miss = sot_metrics(np.array([[50, 50, 10, 10]], dtype=float), gt)
    assert miss.auc == 0.0 and miss.precision == 0.0
    avg = average_sot_metrics([perfect, miss])
    assert avg.auc == pytest.approx(10 / 21) and avg.precision == pytest.approx(0.5)
    # non-finite predictions score as failures, not errors
    nan = sot_metrics(np.full((1, 4), np.nan), gt)
    assert nan.auc == 0.0 and nan.precision == 0.0
    with pytest.raises(ValueError, match="one prediction per frame"):
        sot_metrics(gt[:0], gt)
    with pytest.raises(ValueError, match="no frame has a valid"):
        sot_metrics(gt, np.zeros((1, 4)))


# ----------------------------------------------------------------------------------- MOT
def _two_objects(n=4):
    """gt: A at x=10 and B at x=100, frames 1..n, perfectly localised by the results."""
    return [[f, oid, x, 10, 20, 40, 1, 1, 1] for f in range(1, n + 1) for oid, x in ((1, 10), (2, 100))]


def test_mot_perfect_tracking_is_one():
    gt = np.array(_two_objects())
    m = mot_metrics(gt, gt[:, :6])
    for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "MOTP"):
        assert m[k] == pytest.approx(1.0), k
    assert (m["FP"], m["FN"], m["IDSW"], m["gt_dets"], m["gt_ids"]) == (0, 0, 0, 8, 2)


def test_mot_id_switch_hand_case():
    gt = _two_objects()
    # B is tracked as id 2 in frames 1-2 and as id 3 in frames 3-4
    res = [[f, 1, 10, 10, 20, 40] for f in range(1, 5)] + \
          [[f, 2 if f <= 2 else 3, 100, 10, 20, 40] for f in range(1, 5)]
    m = mot_metrics(gt, res)
    # MOTA = 1 - (FN + FP + IDSW) / GT = 1 - (0 + 0 + 1) / 8
    assert (m["TP"], m["FN"], m["FP"], m["IDSW"]) == (8, 0, 0, 1)
    assert m["MOTA"] == pytest.approx(0.875)
    # IDF1: best one-to-one id map A<->1 (4 frames), B<->2 (2 frames): IDTP 6, IDFN 2, IDFP 2
    # -> 2 * 6 / (2 * 6 + 2 + 2) = 0.75
    assert (m["IDTP"], m["IDFN"], m["IDFP"]) == (6, 2, 2)
    assert m["IDF1"] == pytest.approx(0.75)
    # HOTA: DetA = 1; AssA = (4 * 1 + 2 * 2/4 + 2 * 2/4) / 8 = 0.75; HOTA = sqrt(0.75)
    assert m["DetA"] == pytest.approx(1.0) and m["AssA"] == pytest.approx(0.75)
    assert m["HOTA"] == pytest.approx(np.sqrt(0.75))


def test_mot_miss_hand_case():
    gt = _two_objects()
    res = [r[:6] for r in gt if not (r[0] == 2 and r[1] == 2)]  # B missed in frame 2
    m = mot_metrics(gt, res)
    # MOTA = 1 - 1/8; IDF1 = 2 * 7 / (2 * 7 + 1 + 0) = 14/15
    assert (m["TP"], m["FN"], m["FP"], m["IDSW"]) == (7, 1, 0, 0)
    assert m["MOTA"] == pytest.approx(7 / 8)
    assert m["IDF1"] == pytest.approx(14 / 15)
    # DetA = 7 / (7 + 1) ; AssA = (4 * 1 + 3 * 3/4) / 7 ; HOTA = sqrt(DetA * AssA)
    det_a, ass_a = 7 / 8, (4 + 3 * 0.75) / 7
    assert m["DetA"] == pytest.approx(det_a) and m["AssA"] == pytest.approx(ass_a)
    assert m["HOTA"] == pytest.approx(np.sqrt(det_a * ass_a))


def test_mot_preprocessing_and_combined():
    gt = _two_objects(2) + [[f, 9, 200, 10, 20, 40, 0, 8, 1] for f in (1, 2)]  # a distractor
    gt += [[1, 7, 300, 10, 20, 40, 0, 1, 1]]                                    # an ignored pedestrian
    res = [r[:6] for r in _two_objects(2)] + [[f, 5, 200, 10, 20, 40] for f in (1, 2)]
    m = mot_metrics(gt, res)
    # results on the distractor are dropped, the zero-marked gt is not counted
    assert (m["FP"], m["FN"], m["gt_dets"], m["res_dets"]) == (0, 0, 4, 4) and m["MOTA"] == 1.0
    assert mot_metrics(gt, res, preprocess=False)["FP"] == 2
    both = mot_metrics_combined({"a": (_two_objects(), [r[:6] for r in _two_objects()]),
                                 "b": (_two_objects(), [])})
    assert both["a"]["MOTA"] == 1.0 and both["b"]["FN"] == 8
    assert both["COMBINED"]["MOTA"] == pytest.approx(0.5) and both["COMBINED"]["gt_dets"] == 16
    with pytest.raises(ValueError, match="same id twice in frame 1"):
        mot_metrics(gt, [[1, 1, 0, 0, 5, 5], [1, 1, 9, 9, 5, 5]])


def test_mot_metrics_match_trackeval_file_pipeline(tmp_path):
    """Our data dict + preprocessing gives what trackeval's MotChallenge2DBox gives on files."""
    import contextlib
    import io

    from snnsim.tracking import synthetic
    from snnsim.tracking.sequences import open_sequence, read_mot_file, write_mot_result

    with contextlib.redirect_stdout(io.StringIO()):
        import trackeval
    seq = open_sequence(synthetic.write_mot_sequence(tmp_path / "gt" / "MOT17-train" / "SYN-01", n_frames=30,
                                                     size=(128, 160), n_targets=4, seed=3, n_distractors=2),
                        require_gt=True)
    rng = np.random.default_rng(1)
    gt = seq.ground_truth
    res = gt[rng.random(len(gt)) > 0.15][:, :6].copy()   # drop some rows (misses), keep distractor hits
    res[:, 2:6] += rng.normal(0, 2.0, (len(res), 4))
    res[(res[:, 1] == 2) & (res[:, 0] > 15), 1] = 7         # an identity switch
    out = write_mot_result(tmp_path / "tr" / "MOT17-train" / "mine" / "data" / "SYN-01.txt", res)
    (tmp_path / "gt" / "seqmaps").mkdir()
    (tmp_path / "gt" / "seqmaps" / "MOT17-train.txt").write_text("name\nSYN-01\n")
    ds = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "tr"), "BENCHMARK": "MOT17",
        "SPLIT_TO_EVAL": "train", "TRACKERS_TO_EVAL": ["mine"], "PRINT_CONFIG": False,
        "SEQMAP_FILE": str(tmp_path / "gt" / "seqmaps" / "MOT17-train.txt"),
        "GT_LOC_FORMAT": "{gt_folder}/{seq}/gt/gt.txt"})
    r = _trackeval_evaluate(ds, "SYN-01")
    m = mot_metrics(gt, read_mot_file(out), n_frames=len(seq))
    assert m["HOTA"] == pytest.approx(np.mean(r["HOTA"]["HOTA"]), abs=1e-12)
    assert m["AssA"] == pytest.approx(np.mean(r["HOTA"]["AssA"]), abs=1e-12)
    assert m["MOTA"] == pytest.approx(r["CLEAR"]["MOTA"], abs=1e-12)
    assert m["IDF1"] == pytest.approx(r["Identity"]["IDF1"], abs=1e-12)
    assert (m["FP"], m["FN"], m["IDSW"]) == (r["CLEAR"]["CLR_FP"], r["CLEAR"]["CLR_FN"], r["CLEAR"]["IDSW"])
    assert m["IDSW"] >= 1 and m["MOTA"] < 1


def _trackeval_evaluate(ds, seq: str) -> dict:
    """trackeval's Evaluator with HOTA, CLEAR and Identity on one dataset: seq's pedestrian results."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import trackeval
    ev = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                              "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                              "TIME_PROGRESS": False})
    with contextlib.redirect_stdout(io.StringIO()):
        ref, _ = ev.evaluate([ds], [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
                                    trackeval.metrics.Identity({"PRINT_CONFIG": False})])
    return ref["MotChallenge2DBox"]["mine"][seq]["pedestrian"]


def _trackeval_on_files(tmp_path, benchmark: str, seq: str, gt_rows, res_rows, n_frames: int) -> dict:
    """trackeval's own MotChallenge2DBox pipeline on files written from these rows."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import trackeval
    split = f"{benchmark}-train"
    root = tmp_path / benchmark
    (root / "gt" / split / seq / "gt").mkdir(parents=True)
    (root / "gt" / split / seq / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={n_frames}\n")
    (root / "gt" / split / seq / "gt" / "gt.txt").write_text(
        "".join(",".join(f"{v:g}" for v in r) + "\n" for r in gt_rows))
    (root / "tr" / split / "mine" / "data").mkdir(parents=True)
    (root / "tr" / split / "mine" / "data" / f"{seq}.txt").write_text(
        "".join(",".join(f"{v:g}" for v in r) + ",1,-1,-1,-1\n" for r in res_rows))
    (root / "gt" / "seqmaps").mkdir()
    (root / "gt" / "seqmaps" / f"{split}.txt").write_text(f"name\n{seq}\n")
    ds = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "tr"), "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": "train", "TRACKERS_TO_EVAL": ["mine"], "PRINT_CONFIG": False})
    return _trackeval_evaluate(ds, seq)


@pytest.mark.parametrize("benchmark,seq,extra_gt", [
    # MOT20's non-MOT vehicle (class 6) is a distractor there, not in MOT17: a box on it was an FP
    ("MOT20", "MOT20-01", [[f, 9, 200, 10, 20, 40, 1, 6, 1] for f in (1, 2, 3)]),
    ("MOT17", "MOT17-02", [[f, 9, 200, 10, 20, 40, 1, 6, 1] for f in (1, 2, 3)]),
    # a conf flag of 0.5 is 0 to trackeval (read as an integer): that gt box is ignored
    ("MOT17", "MOT17-04", [[f, 9, 200, 10, 20, 40, 0.5, 1, 1] for f in (1, 2, 3)]),
])
def test_mot_benchmark_rules_match_trackeval(tmp_path, benchmark, seq, extra_gt):
    from snnsim.tracking.mot_metrics import distractor_classes_for

    gt = [r for r in _two_objects(3)] + extra_gt
    res = [r[:6] for r in _two_objects(3)] + [[f, 5, 200, 10, 20, 40] for f in (1, 2, 3)]
    r = _trackeval_on_files(tmp_path, benchmark, seq, gt, res, 3)
    m = mot_metrics(gt, res, n_frames=3, distractor_classes=distractor_classes_for(seq))
    assert (m["FP"], m["FN"], m["TP"]) == (r["CLEAR"]["CLR_FP"], r["CLEAR"]["CLR_FN"], r["CLEAR"]["CLR_TP"])
    assert m["HOTA"] == pytest.approx(np.mean(r["HOTA"]["HOTA"]), abs=1e-12)
    assert m["IDF1"] == pytest.approx(r["Identity"]["IDF1"], abs=1e-12)
    combined = mot_metrics_combined({seq: (gt, res, 3)})[seq]            # picks the benchmark by name
    assert combined["FP"] == m["FP"]
    assert m["FP"] == (0 if benchmark == "MOT20" else 3)                 # MOT20: dropped, else false positives
    assert m["gt_dets"] == 6                                             # the two pedestrians only


# ------------------------------------------------------------------- SOT benchmark protocols
def test_got10k_ao_and_sr_pool_every_frame():
    """The GOT-10k toolkit concatenates the overlaps of all sequences: 10 frames at IoU 1 and
    100 at IoU 1/3 give AO (10 + 100/3) / 110, SR50 10 / 110 -- not the mean of the two
    sequences' AO (2/3) and SR (1/2). AUC and precision stay per-sequence means (OTB / LaSOT)."""
    gt = np.array([[5, 0, 10, 10]], dtype=float)
    exact = sot_metrics(np.repeat(gt, 10, 0), np.repeat(gt, 10, 0))
    third = sot_metrics(np.repeat([[0.0, 0, 10, 10]], 100, 0), np.repeat(gt, 100, 0))   # IoU 50 / 150
    avg = average_sot_metrics([exact, third])
    assert avg.ao == pytest.approx((10 + 100 / 3) / 110) and avg.sr50 == pytest.approx(10 / 110)
    assert avg.sr75 == pytest.approx(10 / 110) and avg.n_frames == 110
    assert avg.auc == pytest.approx((exact.auc + third.auc) / 2)


def test_got10k_clips_boxes_to_the_image_as_its_toolkit_does():
    """rect_iou(bound=(W, H)): x into [0, W], then w into [0, W - x] -- a box 10 px left of the
    image moves right onto the gt box (IoU 1); unclipped it overlaps 30 x 40 of 2,000 (0.6)."""
    gt = np.array([[0.0, 50, 40, 40]])
    pred = np.array([[-10.0, 50, 40, 40]])
    assert sot_metrics(pred, gt).ao == pytest.approx(1200 / 2000)
    assert sot_metrics(pred, gt, bound=(320, 240)).ao == pytest.approx(1.0)
    wide = np.array([[300.0, 50, 40, 40]])                    # 20 px past the right edge: w 40 -> 20
    assert sot_metrics(wide, np.array([[300.0, 50, 20, 40]]), bound=(320, 240)).ao == pytest.approx(1.0)


def test_lasot_scores_hidden_frames_as_failures_got10k_leaves_them_out():
    """Six frames tracked exactly, two of them flagged hidden: OTB / LaSOT (pytracking, the LaSOT
    toolkit) divide by all six, GOT-10k by the four it scores."""
    gt = np.repeat([[10.0, 10, 20, 20]], 6, 0)
    visible = np.array([1, 1, 0, 1, 0, 1], dtype=bool)
    fail = sot_metrics(gt, gt, valid=visible, absent="fail")
    assert fail.auc == pytest.approx(20 / 21 * 4 / 6) and fail.precision == pytest.approx(4 / 6)
    assert fail.norm_precision == pytest.approx(4 / 6) and fail.n_frames == 6 and fail.ao == pytest.approx(4 / 6)
    kept = sot_metrics(gt, gt, valid=visible)
    assert kept.auc == pytest.approx(20 / 21) and kept.n_frames == 4
    with pytest.raises(ValueError, match="absent must be"):
        sot_metrics(gt, gt, absent="drop")


def test_an_invalid_prediction_is_replaced_by_the_previous_box():
    """OTB's calcSeqErrRobust and pytracking: a NaN or zero-size box takes the previous frame's."""
    gt = np.repeat([[10.0, 10, 20, 20]], 3, 0)
    for bad in ([np.nan] * 4, [10.0, 10, 0, 20]):
        pred = np.array([[10.0, 10, 20, 20], bad, [10.0, 10, 20, 20]])
        m = sot_metrics(pred, gt)
        assert m.ao == pytest.approx(1.0) and m.precision == 1.0
    first_bad = sot_metrics(np.array([[np.nan] * 4, [10.0, 10, 20, 20]]), gt[:2])   # nothing to carry: a failure
    assert first_bad.ao == pytest.approx(0.5) and first_bad.precision == pytest.approx(0.5)
    # the GOT-10k toolkit's rect_iou scores an empty box 0: no carrying there
    got = sot_metrics(np.array([[10.0, 10, 20, 20], [10.0, 10, 0, 20], [10.0, 10, 20, 20]]), gt, carry_forward=False)
    assert got.ao == pytest.approx(2 / 3)
