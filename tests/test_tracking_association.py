"""Kalman filter, TrackTrack cost / assignment / split / initialisation, and a full MOT run."""
from __future__ import annotations

import numpy as np
import pytest

from snnsim.tracking import synthetic
from snnsim.tracking.association import (
    Track, TrackTrackAssociator, angle_distance, association_cost, conf_distance,
    iterative_assignment, split_detections, track_aware_init,
)
from snnsim.tracking.boxes import xywh_to_xyxy, xyxy_to_xywh
from snnsim.tracking.kalman import KalmanFilter
from snnsim.tracking.mot_metrics import mot_metrics
from snnsim.tracking.sequences import open_sequence, read_mot_file, write_mot_result


# -------------------------------------------------------------------------------- Kalman
def test_kalman_hand_case():
    kf = KalmanFilter()
    mean, cov = kf.initiate([10, 20, 4, 8])
    np.testing.assert_array_equal(mean, [10, 20, 4, 8, 0, 0, 0, 0])
    # P0 = diag(2w, 2h, 2w, 2h, 10w, 10h, 10w, 10h)^2 with w = 4, h = 8
    np.testing.assert_allclose(np.diag(cov), [64, 256, 64, 256, 1600, 6400, 1600, 6400])
    mean, cov = kf.predict(mean, cov)
    np.testing.assert_array_equal(mean, [10, 20, 4, 8, 0, 0, 0, 0])  # zero velocity
    # cx block: F P F^T = [[64 + 1600, 1600], [1600, 1600]] plus Q = diag((4/20)^2, (4/160)^2)
    assert cov[0, 0] == pytest.approx(1664.04)
    assert cov[0, 4] == pytest.approx(1600.0)
    assert cov[4, 4] == pytest.approx(1600.000625)
    assert cov[1, 1] == pytest.approx(256 + 6400 + 0.16)  # h = 8: (8/20)^2 = 0.16
    # measurement cx = 12 at score 0.5: R_cx = (4/20)^2 * (1 - 0.5) = 0.02, S = 1664.06
    new_mean, new_cov = kf.update(mean, cov, [12, 20, 4, 8], 0.5)
    assert new_mean[0] == pytest.approx(10 + 2 * 1664.04 / 1664.06)
    assert new_mean[4] == pytest.approx(2 * 1600 / 1664.06)          # velocity gain 1600 / S
    assert new_mean[1:4] == pytest.approx([20, 4, 8])
    assert new_cov[0, 0] == pytest.approx(1664.04 * 0.02 / 1664.06)  # P - P^2 / S
    # a detection of score 1 has no measurement noise: the box is taken as is
    sure_mean, _ = kf.update(mean, cov, [12, 20, 4, 8], 1.0)
    assert sure_mean[0] == pytest.approx(12.0)


# ---------------------------------------------------------------------------------- cost
def test_cost_hand_case():
    track = np.array([[0, 0, 10, 20]])       # predicted track box (xyxy)
    det = np.array([[0, 2, 10, 22]])         # detection, score 0.8
    # IoU = 10*18 / (200 + 200 - 180) = 9/11 ; HIoU = 18 / 22 = 9/11 -> motion 1 - 81/121 = 40/121
    conf = conf_distance([0.9], [0.7], [0.8])  # |2*0.9 - 0.7 - 0.8| = 0.3
    assert conf[0, 0] == pytest.approx(0.3)
    angle = angle_distance(np.zeros((1, 4, 2)), track, det, [0.8])  # zero velocity: 0.5 per corner * 0.8
    assert angle[0, 0] == pytest.approx(0.4)
    base = 40 / 121 + 0.1 * 0.3 + 0.05 * 0.4
    three = np.repeat(det, 3, axis=0)  # the same box as a high, a low and a deleted-high column
    cost, iou = association_cost(track, three, np.repeat(conf, 3, 1), np.repeat(angle, 3, 1), 1, 1)
    assert iou[0, 0] == pytest.approx(9 / 11)
    np.testing.assert_allclose(cost[0], [base, base + 0.2, base + 0.4])
    # with ReID: 0.5 motion + 0.5 cosine distance, cos dist = 1 - <(1,0), (0.6,0.8)> = 0.4
    cost_r, _ = association_cost(track, det, conf, angle, 1, 0, cos_dist=np.array([[0.4]]))
    assert cost_r[0, 0] == pytest.approx(0.5 * 40 / 121 + 0.5 * 0.4 + 0.03 + 0.02)
    # IoU <= 0.1 -> 1, and the result is clipped to [0, 1]
    far = np.array([[9.5, 0, 19.5, 20]])  # IoU = 0.5*20 / (400 - 10) < 0.1
    c_far, _ = association_cost(track, far, conf, np.zeros((1, 1)), 1, 0)
    assert c_far[0, 0] == 1.0
    c_big, _ = association_cost(track, det, np.full((1, 1), 9.0), angle, 0, 0)  # deleted column + big conf
    assert c_big[0, 0] == 1.0


def test_angle_term_directions():
    vel = np.tile([1.0, 0.0], (1, 4, 1))          # every corner moving right
    ref = np.array([[0, 0, 10, 10]])
    dets = np.array([[5, 0, 15, 10],                 # moved right: angle 0
                     [0, -5, 10, 5],                 # moved up: 90 deg -> 0.5
                     [-5, 0, 5, 10]])                # moved left: 180 deg -> 1
    np.testing.assert_allclose(angle_distance(vel, ref, dets, [1.0, 1.0, 0.5])[0], [0, 0.5, 0.5], atol=2e-3)  # TrackTrack's 1e-5 norm guard


def test_track_velocity_is_mean_of_corner_directions():
    kf = KalmanFilter()
    t = Track(1, 1, [0, 0, 10, 10], 0.9, None, kf)
    for f in (2, 3, 4):
        t.predict()
        t.update(f, [2 * (f - 1), 0, 10 + 2 * (f - 1), 10], 0.9, None, min_hits=3, feat_alpha=0.95, angle_dt=3)
    # at frame 4 every corner moved right w.r.t. frames 3, 2, 1: (1 + 1/2 + 1/3) / 3 = 11/18
    np.testing.assert_allclose(t.velocity, np.tile([11 / 18, 0.0], (4, 1)), atol=1e-4)
    assert t.state == 1 and t.hits == 4 and len(t.history) <= 4


# ---------------------------------------------------------------------------- assignment
def test_iterative_assignment_hand_matrix():
    cost = np.array([[0.10, 0.20, 0.90],
                     [0.15, 0.60, 0.90],
                     [0.90, 0.66, 0.64]])
    # round 1 (thr 0.70): row minima (0,0) (1,0) (2,2); column minima (0,0) (0,1) (2,2);
    #   mutual and < 0.70: (0,0), (2,2). Round 2 (thr 0.65): only row 1 / column 1 are left,
    #   0.60 < 0.65 -> (1,1). Round 3 adds nothing.
    matches, ur, uc = iterative_assignment(cost, 0.70)
    assert matches == [(0, 0), (2, 2), (1, 1)] and ur == [] and uc == []
    # the same with 0.66 left over: 0.66 is not < 0.65, so row 1 and column 1 stay unmatched
    cost[1, 1] = 0.66
    matches, ur, uc = iterative_assignment(cost, 0.70)
    assert matches == [(0, 0), (2, 2)] and ur == [1] and uc == [1]
    assert iterative_assignment(np.zeros((0, 3)), 0.7) == ([], [], [0, 1, 2])


def test_split_detections_hand_case():
    dets = np.array([[0, 0, 10, 10, 0.9],        # A: high
                     [0, 1, 10, 11, 0.8],        # B: IoU(A) = 90/110 = 0.82 -> cut at 0.80, kept at 0.95
                     [0, 0.2, 10, 10.2, 0.7],    # C: IoU(A) = 98/102 = 0.96 -> cut by both NMS
                     [50, 50, 60, 60, 0.5],      # D: low
                     [100, 100, 110, 110, 0.05]])  # E: below min_score, ignored
    high, low, deleted = split_detections(dets, det_thr=0.6)
    assert high.tolist() == [0] and low.tolist() == [3] and deleted.tolist() == [1]


def test_track_aware_init_hand_case():
    tracks = np.array([[0, 0, 10, 10]])
    cands = np.array([[0, 0, 10, 10.5],   # IoU with the track 100/105 > 0.55: no
                      [50, 0, 60, 10],    # free: yes
                      [51, 0, 61, 10],    # IoU 90/110 with the higher candidate 1: suppressed
                      [100, 0, 110, 10],  # score 0.65 < init 0.7: no
                      [0, 1, 10, 11]])    # on the track (0.82): no, and suppresses nothing
    scores = np.array([0.9, 0.8, 0.75, 0.65, 0.95])
    assert track_aware_init(cands, scores, tracks, init_thr=0.7).tolist() == [False, True, False, False, False]


# ------------------------------------------------------------------------------ lifecycle
def test_lifecycle_confirmation_loss_and_removal():
    tr = TrackTrackAssociator(frame_rate=5)  # lost tracks live 2 x 5 = 10 frames
    det = lambda x: np.array([[x, 0, x + 20, 40, 0.9]])
    outs = [tr.update(det(2.0 * f), f) for f in range(1, 6)]
    assert [len(o) for o in outs] == [0, 0, 1, 1, 1]  # confirmed after 3 hits
    tid = outs[2][0][0]
    assert all(o[0][0] == tid for o in outs[2:]) and not tr.uses_reid
    box = outs[-1][0][1]
    assert box[0] == pytest.approx(10.0, abs=0.5) and box[3] - box[1] == pytest.approx(40, abs=0.5)
    for f in range(6, 9):  # three frames without detections: lost, not reported
        assert tr.update(np.zeros((0, 5)), f) == []
    out = tr.update(det(2.0 * 9), 9)  # back where the Kalman filter predicts it: same id
    assert [o[0] for o in out] == [tid]
    for f in range(10, 21):
        tr.update(np.zeros((0, 5)), f)
    assert tr.tracks == []  # lost for more than 10 frames: removed
    outs = [tr.update(det(0.0), f) for f in range(21, 24)]
    assert outs[-1][0][0] != tid
    small = TrackTrackAssociator()
    outs = [small.update([[0, 0, 8, 8, 0.9]], f) for f in range(1, 5)]
    assert outs[-1] == [] and small.tracks[0].state == 1  # confirmed but area 64 <= 100 is not output
    with pytest.raises(ValueError, match="frame_id must increase"):
        small.update([[0, 0, 8, 8, 0.9]], 2)
    with pytest.raises(ValueError, match=r"\[N, 5\]"):
        small.update([[0, 0, 8, 8]], 9)


def test_reid_flag():
    tr = TrackTrackAssociator()
    tr.update([[0, 0, 20, 40, 0.9]], 1, features=[[1.0, 0.0]])
    assert tr.uses_reid
    with pytest.raises(ValueError, match="every frame or on none"):
        tr.update([[0, 0, 20, 40, 0.9]], 2)


# ------------------------------------------------------------------------------ full run
def test_synthetic_mot_with_gt_detections_tracks_near_perfectly(tmp_path):
    root = synthetic.write_mot_sequence(tmp_path / "SYN-MOT", n_frames=64, size=(256, 256), n_targets=4,
                                        seed=0, n_distractors=1)
    seq = open_sequence(root, require_gt=True)
    rng = np.random.default_rng(0)
    tr = TrackTrackAssociator(frame_rate=seq.frame_rate)
    rows = []
    for i in range(len(seq)):  # detector stand-in: the gt boxes, jittered, with scores
        gt = seq.gt_frame(i + 1)
        gt = gt[gt[:, 7] == 1]
        boxes = xywh_to_xyxy(gt[:, 2:6]) + rng.normal(0, 1.0, (len(gt), 4))
        dets = np.c_[boxes, rng.uniform(0.75, 0.95, len(gt))]
        for tid, box, score in tr.update(dets, i + 1):
            rows.append([i + 1, tid, *xyxy_to_xywh(box), score])
    res = read_mot_file(write_mot_result(tmp_path / "res" / "SYN-MOT.txt", rows))
    m = mot_metrics(seq.ground_truth, res, n_frames=len(seq))
    # the only misses are the first two frames of each track (confirmation after 3 hits)
    assert m["IDSW"] == 0 and m["FP"] == 0 and m["FN"] == 2 * 4
    assert m["MOTA"] == pytest.approx(1 - 8 / 256)
    assert m["IDF1"] > 0.95 and m["HOTA"] > 0.8
