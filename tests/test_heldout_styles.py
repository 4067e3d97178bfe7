"""Held-out SOT styles (snnsim.tracking.heldout_styles): determinism, exact ground truth,
stateless frames, motion large enough to defeat a static box, street-walkers visibility,
the GOT-10k writer and argument errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from snnsim.tracking.heldout_styles import (HELDOUT_STYLES, HeldoutFrame, HeldoutSequence,
                                            write_heldout_sequence)
from snnsim.tracking.sequences import read_sot_sequence
from snnsim.tracking.sot_metrics import sot_metrics

N = 40                      # frames used by the quick checks
CHECK_FRAMES = (0, 7, 19, 33)


def _tight_box(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    return np.array([cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], dtype=np.float64)


@pytest.fixture(scope="module")
def sequences():
    # glyph-plasma: odd seeds draw a ring, even seeds a star
    return {(st, seed): HeldoutSequence(st, seed=seed, n_frames=N) for st in HELDOUT_STYLES for seed in (1, 2)}


def test_style_names():
    assert HELDOUT_STYLES == ("checker-blocks", "glyph-plasma", "street-walkers")


@pytest.mark.parametrize("style", HELDOUT_STYLES)
def test_determinism(style):
    a, b = HeldoutSequence(style, seed=3, n_frames=N), HeldoutSequence(style, seed=3, n_frames=N)
    c = HeldoutSequence(style, seed=4, n_frames=N)
    np.testing.assert_array_equal(a.boxes(), b.boxes())
    assert not np.array_equal(a.boxes(), c.boxes())
    for t in (0, 17):
        fa, fb, fc = a.frame(t), b.frame(t), c.frame(t)
        assert fa.image.dtype == np.uint8 and fa.image.shape == (256, 256, 3)
        np.testing.assert_array_equal(fa.image, fb.image)
        assert fa.visibility == fb.visibility
        assert not np.array_equal(fa.image, fc.image)


@pytest.mark.parametrize("seed", (1, 2))
@pytest.mark.parametrize("style", HELDOUT_STYLES)
def test_box_is_exact_extent_of_painted_target(style, seed, sequences):
    seq = sequences[style, seed]
    for t in CHECK_FRAMES:
        f = seq.frame(t, render=False)
        assert f.image is None and isinstance(f, HeldoutFrame)
        assert f.box.dtype == np.float64 and f.box.shape == (4,)
        np.testing.assert_array_equal(f.box, np.round(f.box))
        # the target alone on two flat backgrounds: the pixels that agree are the target's
        dark = seq._render(t, background=(0, 0, 0)).astype(int)
        light = seq._render(t, background=(255, 255, 255)).astype(int)
        painted = (dark == light).all(axis=2)
        mask = seq._target_mask(t)
        np.testing.assert_array_equal(painted, mask)
        np.testing.assert_array_equal(_tight_box(painted), f.box)
        # the mask touches all four box edges and the box lies inside the frame
        x, y, w, h = f.box.astype(int)
        sub = mask[y:y + h, x:x + w]
        assert sub.sum() == mask.sum()
        assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()
        assert x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256


def test_box_sizes_follow_the_documented_ranges():
    for seed in range(4):
        b = HeldoutSequence("checker-blocks", seed=seed, n_frames=5).boxes()
        assert 24 - 1 <= np.sqrt(b[0, 2] * b[0, 3]) <= 40 + 1
        assert 0.55 <= b[0, 2] / b[0, 3] <= 1.7
        assert (b[:, 2:] == b[0, 2:]).all()
        g = HeldoutSequence("street-walkers", seed=seed, n_frames=30).boxes()
        assert (g[:, 3] >= 45).all() and (g[:, 3] <= 100).all()
        assert (g[:, 2] / g[:, 3] < 0.55).all()
        assert len(np.unique(g[:, 3])) > 1       # the walk cycle changes the shape


def test_other_sizes_stay_inside_the_frame():
    for style in HELDOUT_STYLES:
        for size in ((96, 160), (200, 120)):
            seq = HeldoutSequence(style, seed=2, n_frames=60, size=size)
            b = seq.boxes()
            H, W = size
            assert (b[:, :2] >= 0).all() and (b[:, 0] + b[:, 2] <= W).all() and (b[:, 1] + b[:, 3] <= H).all()
            assert seq.frame(59).image.shape == (H, W, 3)


def test_glyph_kinds_alternate():
    kinds = [HeldoutSequence("glyph-plasma", seed=s, n_frames=1)._impl.kind for s in range(4)]
    assert kinds == ["star", "ring", "star", "ring"]


@pytest.mark.parametrize("style", HELDOUT_STYLES)
def test_frame_equals_iteration(style):
    seq = HeldoutSequence(style, seed=2, n_frames=12)
    it = iter(seq)
    assert not isinstance(it, (list, tuple))
    frames = list(it)
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_array_equal(np.stack([f.box for f in frames]), seq.boxes())
    for t in (11, 0, 5):  # out of order: frame(t) needs no earlier frame
        direct = HeldoutSequence(style, seed=2, n_frames=12).frame(t)
        np.testing.assert_array_equal(direct.image, frames[t].image)
        np.testing.assert_array_equal(direct.box, frames[t].box)
        assert direct.visibility == frames[t].visibility


@pytest.mark.parametrize("style", HELDOUT_STYLES)
def test_static_box_fails(style):
    for seed in range(3):
        gt = HeldoutSequence(style, seed=seed, n_frames=150).boxes()
        auc = sot_metrics(np.repeat(gt[:1], len(gt), axis=0), gt).auc
        assert auc < 0.2, (style, seed, auc)
        steps = np.abs(np.diff(gt[:, :2] + gt[:, 2:] / 2, axis=0)).max()
        assert steps <= 12, (style, seed, steps)  # smooth: no jumps


def test_street_walkers_visibility():
    seq = HeldoutSequence("street-walkers", seed=0, n_frames=70)
    vis = []
    for t in range(seq.n_frames):
        f = seq.frame(t, render=False)
        masks = seq._walker_masks(t)
        target, front = masks["target"], masks["front"]
        np.testing.assert_array_equal(target, seq._target_mask(t))
        expected = 1.0 - np.count_nonzero(target & front) / np.count_nonzero(target)
        assert f.visibility == pytest.approx(expected, abs=1e-12)
        assert 0.0 <= f.visibility <= 1.0
        vis.append(f.visibility)
    vis = np.array(vis)
    assert (vis < 1).any() and (vis > 0.2).all()   # the front walker crosses; partial occlusion
    assert np.mean(vis == 1.0) > 0.5               # visible most of the time
    # paint order: behind < target < front; visible target pixels keep the target's colours
    t = int(np.argmin(vis))
    img, alone = seq._render(t), seq._render(t, background=(0, 0, 0))
    masks = seq._walker_masks(t)
    shown = masks["target"] & ~masks["front"]
    np.testing.assert_array_equal(img[shown], alone[shown])
    assert not np.array_equal(img[masks["front"] & masks["target"]], alone[masks["front"] & masks["target"]])
    for other in ("checker-blocks", "glyph-plasma"):
        assert all(f.visibility == 1.0 for f in HeldoutSequence(other, seed=0, n_frames=5))


def test_write_and_read_back(tmp_path):
    root = tmp_path / "seq"
    seq = HeldoutSequence("glyph-plasma", seed=5, n_frames=6)
    out = write_heldout_sequence(root, "glyph-plasma", seed=5, n_frames=6)
    assert out == root
    assert sorted(p.name for p in root.glob("*.jpg")) == [f"{i:08d}.jpg" for i in range(1, 7)]
    back = read_sot_sequence(root, require_full_gt=True)
    assert len(back) == 6 and back.image_size == (256, 256)
    np.testing.assert_allclose(back.ground_truth, seq.boxes(), atol=1e-4)
    meta = json.loads((root / "style.json").read_text())
    assert meta == {"style": "glyph-plasma", "seed": 5, "n_frames": 6, "size": [256, 256],
                    "generator": "snnsim.tracking.heldout_styles"}
    with pytest.raises(ValueError, match="already holds files"):
        write_heldout_sequence(root, "glyph-plasma", seed=5, n_frames=6)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_heldout_sequence(empty, "street-walkers", n_frames=2)   # an empty folder is fine
    assert (empty / "groundtruth.txt").read_text().count("\n") == 2


def test_errors(tmp_path):
    with pytest.raises(ValueError) as err:
        HeldoutSequence("moving-squares")
    assert "moving-squares" in str(err.value) and all(s in str(err.value) for s in HELDOUT_STYLES)
    with pytest.raises(ValueError, match="n_frames"):
        HeldoutSequence("checker-blocks", n_frames=0)
    with pytest.raises(ValueError):
        write_heldout_sequence(tmp_path / "x", "nope")
    with pytest.raises(ValueError, match="n_frames"):
        write_heldout_sequence(tmp_path / "y", "checker-blocks", n_frames=0)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    seq = HeldoutSequence("checker-blocks", n_frames=3)
    with pytest.raises(ValueError):
        seq.frame(3)
    with pytest.raises(ValueError):
        seq.frame(-1)
