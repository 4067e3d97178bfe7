"""The training distribution (snnsim.tracking.training_scenes) and the ANN twin of
spiketrack-tiny: exact ground truth, determinism, the promised ranges, and a twin that
differs from the SNN in its activation modules only."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnsim.models.neurons import NILIF
from snnsim.models.registry import build_model, get_spec
from snnsim.models.spiketrack_tiny import ClippedReLU
from snnsim.tracking.training_scenes import PHOTO_FILES, TEXTURE_FAMILIES, DiverseScene, photo, texture


def _painted_extent(scene: DiverseScene, t: int) -> tuple[np.ndarray, int, int]:
    """Render frame t twice, with the target's texture replaced by two different flat colours
    and every photometric effect off; the pixels that differ are exactly the target's visible
    pixels. Returns (tight xywh box of the target as pasted, visible pixels, all its pixels)."""
    H, W = scene.size
    saved = (scene.target.texture, scene.target.gain_amp, scene.noise_sigma, scene.blur_sigma,
             scene.jpeg_quality, scene.front, scene.occluders)
    try:
        scene.noise_sigma = scene.blur_sigma = 0.0
        scene.jpeg_quality = 0
        scene.target.gain_amp = 0.0
        images = []
        for value in (0, 255):
            scene.target.texture = np.full_like(saved[0], value)
            images.append(scene._render(t, H, W).astype(int))
        visible = np.any(images[0] != images[1], axis=2)
        # the full extent: the same with nothing painted over the target
        scene.front, scene.occluders = [], []
        full = []
        for value in (0, 255):
            scene.target.texture = np.full_like(saved[0], value)
            full.append(scene._render(t, H, W).astype(int))
        mask = np.any(full[0] != full[1], axis=2)
    finally:
        (scene.target.texture, scene.target.gain_amp, scene.noise_sigma, scene.blur_sigma,
         scene.jpeg_quality, scene.front, scene.occluders) = saved
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=float)
    return box, int(visible.sum()), int(mask.sum())


@pytest.mark.parametrize("seed", range(12))
def test_box_is_the_pasted_extent_and_visibility_the_uncovered_share(seed):
    scene = DiverseScene(seed, n_frames=120)
    for t in (0, 37, 119):
        f = scene.frame(t, render=False)
        box, visible, total = _painted_extent(scene, t)
        np.testing.assert_array_equal(f.box, box)
        assert f.visibility == pytest.approx(visible / total, abs=1e-12)
        x, y, w, h = f.box
        assert x >= 0 and y >= 0 and x + w <= scene.size[1] and y + h <= scene.size[0]


def test_occluded_frames_exist_and_are_measured():
    """Across scenes with occluders, some frames have the target partly covered, and the
    stated visibility matches the painted pixels there too (checked above for any frame)."""
    seen = []
    for seed in range(40):
        scene = DiverseScene(seed, n_frames=150)
        if scene.params["occluders"]:
            seen += [scene.frame(t, render=False).visibility for t in range(0, 150, 3)]
    assert min(seen) < 0.5 and max(seen) == 1.0


def test_same_seed_same_frames_other_seed_other_frames():
    a, b, c = DiverseScene(7, n_frames=50), DiverseScene(7, n_frames=50), DiverseScene(8, n_frames=50)
    for t in (0, 25, 49):
        fa, fb = a.frame(t), b.frame(t)
        np.testing.assert_array_equal(fa.image, fb.image)
        np.testing.assert_array_equal(fa.box, fb.box)
    assert not np.array_equal(a.frame(10).image, c.frame(10).image)


def test_frames_are_random_access():
    scene = DiverseScene(3, n_frames=30)
    streamed = [f.image for f in scene]
    np.testing.assert_array_equal(DiverseScene(3, n_frames=30).frame(17).image, streamed[17])


def test_ranges_the_issue_asks_for():
    """Over 300 scenes: aspect ratios cover about 0.3..3, speeds 0..>=15 px/frame, every
    texture family appears for targets, cameras pan and zoom, blur / noise / JPEG /
    occluders / look-alike and unlike distractors all occur."""
    ps = [DiverseScene(s, n_frames=100).params for s in range(300)]
    aspects = [p["aspect"] for p in ps]
    assert min(aspects) < 0.4 and max(aspects) > 2.5
    speeds = [p["speed"] for p in ps]
    assert min(speeds) < 0.1 and max(speeds) > 15
    assert {p["target_family"] for p in ps} == set(TEXTURE_FAMILIES)
    assert any(p["camera_pan"] > 3 for p in ps) and any(p["zoom_amp"] > 0.15 for p in ps)
    assert any(p["blur_sigma"] for p in ps) and any(p["noise_sigma"] for p in ps) and any(p["jpeg_quality"] for p in ps)
    assert any(p["occluders"] for p in ps)
    assert any(p["lookalikes"] for p in ps) and any(p["distractors"] > p["lookalikes"] for p in ps)


def test_measured_speed_reaches_fifteen_pixels_per_frame():
    """The stated speed is the drift; the box centre really moves that fast (away from edges)."""
    fastest = 0.0
    for seed in range(200):
        scene = DiverseScene(seed, n_frames=4)
        if scene.params["speed"] < 15:
            continue
        c = [scene.frame(t, render=False).box for t in range(4)]
        centres = [b[:2] + b[2:] / 2 for b in c]
        fastest = max(fastest, max(np.linalg.norm(centres[t + 1] - centres[t]) for t in range(3)))
    assert fastest >= 15


def test_photos_come_from_the_installed_wheel():
    for name in PHOTO_FILES:
        img = photo(name)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 64
    with pytest.raises(ValueError, match="unknown photo"):
        photo("lena.png")


@pytest.mark.parametrize("family", TEXTURE_FAMILIES)
def test_every_texture_family_is_not_flat(family):
    t = texture(np.random.default_rng(1), family, 40, 60)
    assert t.shape == (40, 60, 3) and t.dtype == np.uint8 and t.std() > 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown texture family"):
        texture(np.random.default_rng(0), "plaid", 8, 8)
    with pytest.raises(IndexError, match="outside"):
        DiverseScene(0, n_frames=5).frame(5)
    with pytest.raises(ValueError, match="too small"):
        DiverseScene(0, size=(16, 16))


# ----------------------------------------------------------------------------- the ANN twin
def test_twin_differs_from_the_snn_only_in_its_activation_modules():
    snn, ann = build_model("spiketrack-tiny", "random"), build_model("spiketrack-tiny-ann", "random")
    assert get_spec("spiketrack-tiny").kind == "spiking" and get_spec("spiketrack-tiny-ann").kind == "ann"
    assert snn.kind == "spiking" and ann.kind == "ann"   # what the counter and the reports read
    snn_mods, ann_mods = dict(snn.named_modules()), dict(ann.named_modules())
    assert snn_mods.keys() == ann_mods.keys()
    swapped = [n for n, m in snn_mods.items() if n and type(m) is not type(ann_mods[n])]  # '' is the model
    assert swapped and all(isinstance(snn_mods[n], NILIF) and isinstance(ann_mods[n], ClippedReLU) for n in swapped)
    assert len(swapped) == sum(isinstance(m, NILIF) for m in snn_mods.values())
    assert all(ann_mods[n].levels == snn_mods[n].levels for n in swapped)
    # parameters: the same names and shapes, less the NI-LIF decay logits (unused at T = 1)
    snn_p = {k: v.shape for k, v in snn.state_dict().items()}
    ann_p = {k: v.shape for k, v in ann.state_dict().items()}
    dropped = {k.rsplit(".", 1)[0] for k in snn_p.keys() - ann_p.keys()}
    assert dropped == set(swapped) and all(k.endswith(".decay") for k in snn_p.keys() - ann_p.keys())
    assert {k: s for k, s in snn_p.items() if k in ann_p} == ann_p


def test_twin_with_the_snns_weights_differs_only_by_the_rounding():
    """Loaded with the SNN's weights, the twin's activations are the SNN's spikes before
    rounding: every activation differs from its spike by at most half a level."""
    torch.manual_seed(0)
    snn, ann = build_model("spiketrack-tiny", "random").eval(), build_model("spiketrack-tiny-ann", "random").eval()
    ann.load_state_dict({k: v for k, v in snn.state_dict().items() if k in ann.state_dict()}, strict=True)
    x = torch.randn(1, 3, 128, 128)
    first_snn = next(m for m in snn.modules() if isinstance(m, NILIF))
    first_ann = next(m for m in ann.modules() if isinstance(m, ClippedReLU))
    seen = {}
    first_snn.register_forward_hook(lambda m, i, o: seen.__setitem__("snn", (i[0], o)))
    first_ann.register_forward_hook(lambda m, i, o: seen.__setitem__("ann", (i[0], o)))
    with torch.no_grad():
        snn(x[None], x)     # template [1, B, 3, 128, 128] = the search image
        ann(x[None], x)
    (u_s, s), (u_a, a) = seen["snn"], seen["ann"]
    torch.testing.assert_close(u_s, u_a)          # same input to the first neuron
    assert float((s - a).abs().max()) <= 0.5 / 4 + 1e-6
    assert float((s - a).abs().max()) > 0         # and the rounding is really gone


def test_twin_is_counted_as_dense_macs_equal_to_the_flop_counter():
    """The twin has no neurons: every operand is real, so its counted MACs are its dense
    MACs, and those equal torch's FlopCounterMode (FLOPs / 2) on the same inputs; the SNN
    with the same architecture has the same dense MACs and no more real MACs than that."""
    from torch.utils.flop_counter import FlopCounterMode

    from snnsim.tracking.frame_counts import profile_tracker

    ann = build_model("spiketrack-tiny-ann", "random").eval()
    tp = profile_tracker(ann, "golden")
    ex = ann.example_inputs("golden")
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        ann.forward_search(ex["search"], ann.forward_template(ex["template"]))
    search_flops = flops.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as tflops:
        ann.forward_template(ex["template"])
    assert tp.totals["dense_macs"] == (search_flops - tflops.get_total_flops()) / 2
    assert tp.totals["mac_ops"] == tp.totals["dense_macs"] and tp.totals["syn_events"] == 0
    snn = profile_tracker(build_model("spiketrack-tiny", "random"), "golden")
    assert snn.totals["dense_macs"] == tp.totals["dense_macs"]
    assert snn.totals["mac_ops"] < tp.totals["mac_ops"]
