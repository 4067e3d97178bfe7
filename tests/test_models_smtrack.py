"""SMTrack's SpikeYOLOX-S detector: checkpoint compatibility and equality with the published
code (golden fixture `smtrack_spikeyolox_s`), decoding and post-processing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from snnsim.models.neurons import ILIF
from snnsim.models.smtrack import (
    SMTrackDetector,
    box_iou,
    build_smtrack,
    decode_outputs,
    make_grids,
    nms,
    postprocess,
)

FIXTURE = "smtrack_spikeyolox_s"
CKPT = "smtrack_s"
GOLDEN_HW = (256, 448)


@pytest.fixture(scope="module")
def model():
    return build_smtrack("s").eval()


@pytest.fixture(scope="module")
def golden_run(reference_golden, load_fixture):
    """Build, load the golden weights (reference golden.py, gain 1.0), run on
    golden_image(7, (256, 448)) with hooks recording every I-LIF call in call order."""
    torch.set_num_threads(2)  # the fixture's setting (module fixtures run before conftest's)
    fx = load_fixture(FIXTURE)
    net = build_smtrack("s").eval()
    net.load_state_dict(reference_golden.golden_state_dict(net, fx["config"]["gain"]), strict=True)
    calls: list[tuple[str, torch.Tensor]] = []
    handles = []
    for name, mod in net.named_modules():
        if isinstance(mod, ILIF):
            handles.append(mod.register_forward_hook(
                lambda m, i, o, name=name: calls.append((name, o.detach().clone()))))
    x = reference_golden.golden_image(fx["inputs"]["image_seed"], fx["inputs"]["size_hw"])
    with torch.no_grad():
        out = net.forward_search(x, None)
    for h in handles:
        h.remove()
    return fx, calls, out


def _checksum_per_t(spikes: torch.Tensor) -> list[int]:
    """Σ_i c_i·((i % 9973) + 1) over the C-order flat index of the non-time dims, per t."""
    flat = torch.round(spikes).reshape(spikes.shape[0], -1).long()
    w = torch.arange(flat.shape[1]) % 9973 + 1
    return [int(v) for v in (flat * w).sum(1)]


def _count_per_t(spikes: torch.Tensor) -> list[int]:
    return [int(v) for v in torch.round(spikes).reshape(spikes.shape[0], -1).long().sum(1)]


def _first_divergence(fx, calls):
    """Index of the first neuron call whose counts / checksums differ (None if none)."""
    for i, ((name, o), ref) in enumerate(zip(calls, fx["neurons"])):
        if (name != ref["name"] or _count_per_t(o) != ref["spike_count_per_t"]
                or _checksum_per_t(o) != ref["spike_checksum_per_t"]):
            return i
    return None


# ---------------------------------------------------------------- checkpoint compatibility

def test_state_dict_matches_checkpoint_key_list(model, checkpoint_keys):
    ref = checkpoint_keys(CKPT)
    sd = model.state_dict()
    assert list(sd) == list(ref)  # same keys, same order
    assert {k: tuple(v.shape) for k, v in sd.items()} == ref
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(k.endswith("num_batches_tracked") for k in ref) == n_bn == 92


def test_strict_load_from_key_list(checkpoint_keys):
    net = build_smtrack("s")
    ref = checkpoint_keys(CKPT)
    sd = {k: (torch.zeros(s, dtype=torch.long) if k.endswith("num_batches_tracked")
              else torch.full(s, 0.5)) for k, s in ref.items()}
    result = net.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert float(net.head.stems[0].conv.weight.detach()[0, 0, 0, 0]) == 0.5


def test_parameter_count(model):
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / 1e6 - 28.46) <= 0.01, n


def test_neuron_sites_and_bn_eps(model, load_fixture):
    names = [n for n, m in model.named_modules() if isinstance(m, ILIF)]
    assert len(names) == 79
    assert sorted(names) == sorted(r["name"] for r in load_fixture(FIXTURE)["neurons"])
    assert all(m.levels == 4 and m.decay == 0.25 for m in model.modules() if isinstance(m, ILIF))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 for m in bns)


def test_interface(model):
    assert isinstance(model, SMTrackDetector)
    assert (model.family, model.kind, model.timesteps, model.golden_gain) == ("smtrack", "spiking", 4, 1.0)
    g = model.example_inputs("golden")
    assert g["template"] is None and tuple(g["search"].shape) == (1, 3, *GOLDEN_HW)
    assert model.input_description() == {"search": [1, 3, 608, 1088]}
    assert tuple(model.example_inputs("random", batch=2, size=(64, 96))["search"].shape) == (2, 3, 64, 96)
    assert model.forward_template(None) is None
    with pytest.raises(ValueError, match="multiples of 32"):
        build_smtrack("s", input_size=(600, 1088))
    with pytest.raises(ValueError, match="variant"):
        build_smtrack("m")


def test_registry_builds_smtrack():
    from snnsim.models import build_model

    net = build_model("smtrack-s")
    assert isinstance(net, SMTrackDetector) and not net.training


def test_small_input_any_multiple_of_32(model):
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model.forward_search(x, None)
    a = 8 * 12 + 4 * 6 + 2 * 3
    assert tuple(out["raw_before_decode"].shape) == (2, a, 6)
    assert tuple(out["decoded"].shape) == (2, a, 6)
    assert tuple(out["level2/reg_pred_T"].shape) == (4, 2, 4, 2, 3)
    with pytest.raises(ValueError, match="multiples of 32"):
        model.forward_search(torch.zeros(1, 3, 64, 80), None)


# ---------------------------------------------------------------- golden fixture

def test_fixture_neurons_in_call_order(golden_run):
    fx, calls, _ = golden_run
    refs = fx["neurons"]
    assert [n for n, _ in calls] == [r["name"] for r in refs]
    first = _first_divergence(fx, calls)
    for i, ((name, o), ref) in enumerate(zip(calls, refs)):
        assert tuple(o.shape) == tuple(ref["shape"]), name
        per_t = o.reshape(o.shape[0], -1)
        mean = per_t.double().mean(1)
        nonzero = (per_t != 0).double().mean(1)
        if first is None or i < first:
            assert _count_per_t(o) == ref["spike_count_per_t"], name
            assert _checksum_per_t(o) == ref["spike_checksum_per_t"], name
            assert torch.allclose(mean, torch.tensor(ref["mean_per_t"], dtype=torch.float64), rtol=1e-9), name
            assert torch.allclose(nonzero, torch.tensor(ref["nonzero_per_t"], dtype=torch.float64), rtol=1e-9), name
        elif i == first:
            # an allowed divergence: a single ±1 count at a timestep where the reference
            # has a membrane within 1e-6 of a rounding boundary
            diff = [a - b for a, b in zip(_count_per_t(o), ref["spike_count_per_t"])]
            bad = [t for t, d in enumerate(diff) if d != 0]
            assert len(bad) == 1 and abs(diff[bad[0]]) == 1, (name, diff)
            assert ref["membrane_within_1e-6_of_half_per_t"][bad[0]] > 0, (name, diff)
        else:
            ref_mean = torch.tensor(ref["mean_per_t"], dtype=torch.float64)
            assert torch.allclose(mean, ref_mean, rtol=0.13), name


def test_fixture_outputs(golden_run):
    fx, calls, out = golden_run
    if _first_divergence(fx, calls) is not None:
        pytest.skip("a spike flipped at a near-tie (other CPU / thread count): outputs diverge by design")
    ref = fx["outputs"]
    for key in ["raw_before_decode", "decoded"] + [f"level{k}/{p}_pred_T" for k in range(3)
                                                   for p in ("cls", "reg", "obj")]:
        assert out[key].shape == ref[key].shape, key
        torch.testing.assert_close(out[key], ref[key], rtol=1e-5, atol=1e-5, msg=key)
    for k in range(3):
        p = out[f"fpn_out{k}"]
        torch.testing.assert_close(p.mean(2), ref[f"fpn_out{k}_channel_mean"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(p.double().mean((1, 2, 3, 4)).float(), ref[f"fpn_out{k}_mean_per_t"],
                                   rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- decoding, NMS

def test_decode_yolox_formula():
    hw = [(2, 3), (1, 2)]
    grids, strides = make_grids(hw, (8, 16))
    assert grids[0].tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, 0], [1, 0]]
    assert strides[0, :, 0].tolist() == [8] * 6 + [16] * 2
    raw = torch.zeros(1, 8, 6)
    raw[0, 4] = torch.tensor([0.5, -0.25, 0.0, 1.0, 0.3, 0.9])
    raw[0, 7] = torch.tensor([0.0, 0.0, -1.0, 0.0, 0.1, 0.2])
    dec = decode_outputs(raw, hw, (8, 16))
    torch.testing.assert_close(dec[0, 4], torch.tensor([12.0, 6.0, 8.0, 8 * torch.e, 0.3, 0.9]))
    torch.testing.assert_close(dec[0, 7], torch.tensor([16.0, 0.0, 16 / torch.e, 16.0, 0.1, 0.2]))


def test_nms_and_postprocess():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    iou = box_iou(boxes, boxes)
    torch.testing.assert_close(iou[0, 1], torch.tensor(81 / 119))
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]          # 0 and 1 suppressed by 3
    assert nms(boxes, scores, 0.96).tolist() == [3, 0, 1, 2]   # IoU(3, 0) = 100/105
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0
    # decoded rows: cx, cy, w, h, obj, cls
    dec = torch.tensor([[[5, 5, 10, 10, 0.9, 0.9],       # score 0.81
                         [6, 6, 10, 10, 0.9, 0.8],       # 0.72, overlaps the first
                         [25, 25, 10, 10, 0.5, 0.5],     # 0.25
                         [50, 50, 4, 4, 0.1, 0.5]]])     # 0.05 < threshold
    (det,) = postprocess(dec, conf_threshold=0.1, nms_threshold=0.45)
    torch.testing.assert_close(det, torch.tensor([[0, 0, 10, 10, 0.81], [20, 20, 30, 30, 0.25]]))
    (none,) = postprocess(dec, conf_threshold=0.99)
    assert none.shape == (0, 5)


def _greedy_nms(boxes, scores, thr):
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    while order.numel():
        keep.append(int(order[0]))
        rest = order[1:]
        order = rest[box_iou(boxes[order[0]][None], boxes[rest])[0] <= thr] if rest.numel() else rest
    return keep


def test_blocked_nms_equals_greedy_loop():
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(300, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=g) * 30 + 1], 1)
    scores = torch.rand(300, generator=g)
    scores[::7] = 0.5  # ties keep input order
    for thr in (0.3, 0.7):
        expected = _greedy_nms(boxes, scores, thr)
        assert nms(boxes, scores, thr, block=32).tolist() == expected
        assert nms(boxes, scores, thr).tolist() == expected


def test_dense_macs_against_flop_counter_and_the_published_90_gmac():
    """snnsim's dense MACs of the detector equal torch.utils.flop_counter's (FLOPs / 2) on the
    profiled 256x448 input, and at the native 608x1088 (shapes only: a meta-device run) the
    peer gives the specs' "about 90 GMAC per timestep" that README quotes as 90.3."""
    from torch.utils.flop_counter import FlopCounterMode

    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    net = build_model("smtrack-s", "golden")
    tp = profile_tracker(net, "golden")
    x = net.example_inputs("golden")["search"]
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net.forward_search(x, None)
    assert tp.totals["dense_macs"] == fc.get_total_flops() / 2

    meta = build_model("smtrack-s").to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        meta.forward_search(torch.empty(1, 3, 608, 1088, device="meta"), None)
    per_timestep = fc.get_total_flops() / 2 / meta.timesteps
    assert round(per_timestep / 1e9, 1) == 90.3
