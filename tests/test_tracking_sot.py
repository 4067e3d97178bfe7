"""Single-object runtime: crop geometry by hand, family rules, the trained tiny tracker."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snnsim.models.spiketrack import SpikeTrack
from snnsim.models.spiketrack_tiny import TINY_CONFIG, WEIGHTS_PATH, TinySpikeTrackConfig, build_spiketrack_tiny
from snnsim.tracking.sot import (
    CropWindow,
    SpikeTrackRuntime,
    clip_box_margin,
    context_side,
    crop_window,
    extract_crop,
    make_sot_runtime,
    normalise_crop,
    siamfc_side,
)
from snnsim.tracking.sot_metrics import sot_metrics
from snnsim.tracking.synthetic import SyntheticScene


# ----------------------------------------------------------------------------- crop math
def test_crop_and_back_projection_hand_case():
    # box 20 x 20 at (40, 50): centre (50, 60); context 4.0 -> side 80; origin round(c - 40)
    box = np.array([40.0, 50.0, 20.0, 20.0])
    side = context_side(box, 4.0)
    assert side == 80
    win = crop_window(box[:2] + box[2:] / 2, side, 128)
    assert (win.x0, win.y0, win.side, win.out) == (10.0, 20.0, 80.0, 128)
    assert win.scale == pytest.approx(128 / 80)
    # the box sits at the crop centre, a quarter of the crop wide
    np.testing.assert_allclose(win.to_crop(box), [0.5, 0.5, 0.25, 0.25])
    # a decoded box at the crop centre maps back onto the original box
    np.testing.assert_allclose(win.to_image([0.5, 0.5, 0.25, 0.25]), box)
    # and an off-centre one moves by crop-pixels / scale
    np.testing.assert_allclose(win.to_image([0.5 + 16 / 128, 0.5, 0.25, 0.25]), box + [10, 0, 0, 0])


def test_crop_window_origin_rules():
    # OSTrack / SeqTrack: round(c - side / 2) with Python's half-to-even round
    assert crop_window((10.5, 10.5), 10, 10).x0 == round(5.5) == 6
    assert crop_window((11.5, 11.5), 10, 10).x0 == round(6.5) == 6
    # pysot / TransT get_subwindow: floor(c - (side + 1) / 2 + 0.5)
    assert crop_window((10.5, 10.5), 10, 10, origin="floor").x0 == 5
    with pytest.raises(ValueError, match="origin"):
        crop_window((0, 0), 10, 10, origin="ceil")


def test_extract_crop_copies_pixels_and_pads_outside_the_frame():
    H, W = 40, 50
    img = (np.arange(H * W * 3) % 251).astype(np.uint8).reshape(H, W, 3)
    win = CropWindow(x0=-5.0, y0=30.0, side=20.0, out=20)  # no resize: pixels copied 1:1
    crop = extract_crop(img, win, pad_value=(1.0, 2.0, 3.0))[0]
    assert crop.shape == (3, 20, 20)
    # inside: rows 30..39, cols 0..14 of the image land at crop rows 0..9, cols 5..19
    np.testing.assert_array_equal(crop[:, :10, 5:].permute(1, 2, 0).numpy(), img[30:40, 0:15].astype(np.float32))
    # outside (left columns and bottom rows): the pad value per channel
    for c, v in enumerate((1.0, 2.0, 3.0)):
        assert torch.all(crop[c, :, :5] == v) and torch.all(crop[c, 10:, :] == v)


def test_extract_crop_resizes_like_half_pixel_bilinear():
    img = np.full((64, 64, 3), 100, dtype=np.uint8)
    crop = extract_crop(img, CropWindow(0.0, 0.0, 64.0, 32), (0, 0, 0))
    assert crop.shape == (1, 3, 32, 32) and torch.allclose(crop, torch.full_like(crop, 100.0))
    norm = normalise_crop(crop)
    assert norm[0, 0, 0, 0].item() == pytest.approx((100 / 255 - 0.485) / 0.229, rel=1e-5)


def test_siamfc_side_matches_transt_formula():
    # TransT: w_z = w + (w + h) / 2; s_z = ceil(sqrt(w_z h_z)); search with 3 (w + h) / 2
    box = [0, 0, 30.0, 10.0]
    assert siamfc_side(box, 2.0) == int(np.ceil(np.sqrt((30 + 20) * (10 + 20))))
    assert siamfc_side(box, 4.0) == int(np.ceil(np.sqrt((30 + 60) * (10 + 60))))


def test_clip_box_margin_keeps_box_inside():
    np.testing.assert_allclose(clip_box_margin([-5, -5, 20, 20], 100, 100), [0, 0, 15, 15])
    np.testing.assert_allclose(clip_box_margin([95, 50, 20, 20], 100, 100), [90, 50, 10, 20])
    np.testing.assert_allclose(clip_box_margin([10, 10, 2, 2], 100, 100), [10, 10, 10, 10])


def test_zero_size_box_is_rejected():
    with pytest.raises(ValueError, match="zero-size"):
        context_side([0, 0, 0, 10], 4.0)


# ----------------------------------------------------------------------------- runtimes
def _scene_frames(n, seed=7100, size=(256, 256), distractors=2):
    scene = SyntheticScene(size, n_targets=1, n_distractors=distractors, seed=seed, occluder=True, n_frames=n)
    frames = [scene.frame(t) for t in range(n)]
    return [f.image for f in frames], np.stack([f.boxes[0] for f in frames])


def test_template_fifo_keeps_the_initial_template():
    torch.manual_seed(0)
    model = SpikeTrack(TinySpikeTrackConfig("t3", TINY_CONFIG.dims, 64, 3, 128)).eval()
    calls = []
    rt = SpikeTrackRuntime(model, meter=lambda b: (calls.append(b), torch.no_grad())[1],
                           update_interval=2, update_threshold=-1.0)
    frames, gt = _scene_frames(7)
    steps = [rt.initialize(frames[0], gt[0])] + [rt.track(im) for im in frames[1:]]
    assert [s.frame for s in steps if s.template_ran] == [0, 2, 4, 6]
    assert [s.template_reason for s in steps] == ["init", None, "update", None, "update", None, "update"]
    assert rt.template_frames == [0, 2, 4, 6]
    assert len(rt.templates) == 3
    init_crop = rt.crop(frames[0], rt._template_window(gt[0]))
    assert torch.equal(rt.templates[0], init_crop)        # first entry: always the initial template
    assert not torch.equal(rt.templates[1], init_crop)    # the others were replaced (FIFO)
    # one search pass every frame, a template pass exactly where it ran
    assert calls.count("search") == 7 and calls.count("template") == 4


def test_template_update_rule_interval_and_threshold():
    model = SpikeTrack(TinySpikeTrackConfig("t3", TINY_CONFIG.dims, 64, 3, 128)).eval()
    frames, gt = _scene_frames(6)
    never = SpikeTrackRuntime(model, update_interval=2, update_threshold=1.1)  # conf <= 1 never passes
    never.initialize(frames[0], gt[0])
    assert not any(never.track(im).template_ran for im in frames[1:])
    t1 = SpikeTrackRuntime(build_spiketrack_tiny(None).eval(), update_interval=1, update_threshold=-1.0)
    t1.initialize(frames[0], gt[0])
    assert not any(t1.track(im).template_ran for im in frames[1:])  # T = 1: one template, never updated


def test_make_sot_runtime_rejects_detector():
    from snnsim.models import build_model

    with pytest.raises(ValueError, match="no single-object runtime"):
        make_sot_runtime(build_model("smtrack-s"))


def test_runtime_boxes_stay_in_frame_and_scores_are_confidences():
    model = build_spiketrack_tiny(None).eval()
    frames, gt = _scene_frames(5)
    rt = SpikeTrackRuntime(model)
    first = rt.initialize(frames[0], gt[0])
    np.testing.assert_array_equal(first.box, gt[0])
    for im in frames[1:]:
        s = rt.track(im)
        x, y, w, h = s.box
        assert 0 <= x and 0 <= y and x + w <= 256 + 1e-9 and y + h <= 256 + 1e-9 and w >= 10 and h >= 10
        assert 0 < s.score < 1


@pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="trained spiketrack-tiny checkpoint not shipped")
def test_trained_tiny_tracker_beats_static_baseline():
    from snnsim.models import build_model

    model = build_model("spiketrack-tiny")
    assert model.weights_source.startswith("trained spiketrack-tiny")
    for seed in (7300, 7301):  # held-out scenes (not training seeds): moving target, occluder bar
        frames, gt = _scene_frames(80, seed=seed, distractors=0)
        rt = make_sot_runtime(model)
        boxes = [rt.initialize(frames[0], gt[0], search=False).box] + [rt.track(im).box for im in frames[1:]]
        tracked = sot_metrics(np.stack(boxes), gt).auc
        static = sot_metrics(np.repeat(gt[:1], len(gt), 0), gt).auc
        assert static < 0.3
        assert tracked > 0.5 and tracked > static + 0.3


@pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="trained spiketrack-tiny checkpoint not shipped")
def test_random_weights_request_reinitialises_the_tiny_model():
    from snnsim.models import build_model

    trained = build_model("spiketrack-tiny")
    rnd = build_model("spiketrack-tiny", weights="random")
    assert rnd.weights_source.startswith("random")
    key = "decoder.conv5_ctr.weight"
    assert not torch.equal(trained.state_dict()[key], rnd.state_dict()[key])
