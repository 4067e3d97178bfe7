"""TransT N4: checkpoint compatibility, equality with the official code's fixture, and the
tracker's Hanning-window selection rule."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from golden_tolerance import fixture_tol
from torch import nn

from snnsim.models.transt import (
    FrozenBatchNorm2d,
    SinePositionEncoding,
    TransT,
    build_transt,
    transt_hann_window,
    transt_select_box,
)

FIXTURE_OUTPUTS = ["pred_logits", "pred_boxes", "input_proj_template", "input_proj_search", "fusion_out_hs"]


@pytest.fixture(scope="module")
def model() -> TransT:
    return build_transt().eval()


@pytest.fixture(scope="module")
def golden_run(model, reference_golden):
    """Golden weights (reference golden.py, gain 1.0); template(z) then track(x), plus the
    training-style forward, as the fixture was made."""
    torch.set_num_threads(2)
    model.load_state_dict(reference_golden.golden_state_dict(model, 1.0), strict=True)
    z = reference_golden.golden_image(1, 128)
    x = reference_golden.golden_image(7, 256)
    with torch.no_grad():
        cache = model.forward_template(z)
        tracked = model.forward_search(x, cache)
        joint = model(x, z)
    return {"cache": cache, "tracked": tracked, "forward": joint, "z": z, "x": x}


# ----------------------------------------------------------------- checkpoint layout
def test_state_dict_keys_and_shapes_equal_official_checkpoint(model, checkpoint_keys):
    ref = checkpoint_keys("transt_n4")
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ref) - set(mine)) == [] and sorted(set(mine) - set(ref)) == []
    assert mine == ref
    assert list(mine) == list(ref)  # same order as the checkpoint, too


def test_strict_load_from_key_list(checkpoint_keys):
    ref = checkpoint_keys("transt_n4")
    net = build_transt()
    sd = {}
    for i, (k, shape) in enumerate(ref.items()):
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7, dtype=torch.long)
        else:
            sd[k] = torch.full(shape, float(i % 13) / 13.0)
    result = net.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k

    # A missing or an extra key is refused under strict loading.
    broken = dict(sd)
    broken.pop("featurefusion_network.decoder.norm.weight")
    broken["class_embed.layers.3.weight"] = torch.zeros(2, 256)
    with pytest.raises(RuntimeError, match="decoder.norm.weight|class_embed.layers.3"):
        net.load_state_dict(broken, strict=True)

    # A DETR-style state dict without num_batches_tracked also loads strictly.
    no_nbt = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    net.load_state_dict(no_nbt, strict=True)


def test_parameter_count(model):
    params = sum(p.numel() for p in model.parameters())
    # The official backbone BN is an eval-mode nn.BatchNorm2d: its affine terms are
    # parameters (15296 channels x (weight, bias)), its statistics buffers.
    bn_affine = sum(m.weight.numel() + m.bias.numel() for m in model.modules()
                    if isinstance(m, FrozenBatchNorm2d))
    assert bn_affine == 2 * 15296
    assert params == 23_016_006  # the official model's parameters(): "23.0 M"
    assert round(params / 1e6, 1) == 23.0


def test_architecture_facts(model):
    body = model.backbone[0].body
    assert body.layer3[0].conv2.dilation == (2, 2) and body.layer3[0].conv2.stride == (1, 1)
    assert body.layer3[0].conv2.padding == (2, 2)
    assert all(b.conv2.dilation == (1, 1) for b in body.layer3[1:])  # only the first block dilated
    assert body.layer2[0].conv2.stride == (2, 2)
    assert model.golden_gain == 1.0 and model.family == "transt" and model.kind == "ann"
    assert model.timesteps == 1
    mha = model.featurefusion_network.encoder.layers[0].self_attn1
    assert isinstance(mha, nn.MultiheadAttention) and mha.num_heads == 8 and not mha.batch_first


# ----------------------------------------------------------------- golden fixture
def test_example_inputs_are_the_fixture_inputs(model, reference_golden):
    inp = model.example_inputs("golden")
    assert torch.equal(inp["template"], reference_golden.golden_image(1, 128))
    assert torch.equal(inp["search"], reference_golden.golden_image(7, 256))
    rnd = model.example_inputs("random", batch=2)
    assert rnd["template"].shape == (2, 3, 128, 128) and rnd["search"].shape == (2, 3, 256, 256)
    assert model.input_description() == {"template": [1, 3, 128, 128], "search": [1, 3, 256, 256]}
    with pytest.raises(ValueError, match="golden"):
        model.example_inputs("webcam")


def test_tracking_path_matches_official_fixture(golden_run, load_fixture):
    fx = load_fixture("transt_n4")
    assert fx["config"]["gain"] == 1.0
    out = golden_run["tracked"]
    for name in FIXTURE_OUTPUTS:
        ref = fx["outputs"][name]
        assert out[name].shape == ref.shape, name
        diff = (out[name] - ref).abs().max().item()
        assert diff <= fixture_tol(ref), f"{name}: max |diff| {diff}"


def test_training_forward_matches_fixture_and_tracking_path(golden_run, load_fixture):
    fx = load_fixture("transt_n4")
    for name in ("pred_logits", "pred_boxes"):
        ref = fx["outputs"][f"forward/{name}"]
        diff = (golden_run["forward"][name] - ref).abs().max().item()
        assert diff <= fixture_tol(ref), f"forward/{name}: max |diff| {diff}"
        assert torch.equal(golden_run["forward"][name], golden_run["tracked"][name])


def test_template_cache_is_backbone_output_only(golden_run):
    cache = golden_run["cache"]
    assert cache["feature"].shape == (1, 1024, 16, 16)  # stride 8
    assert cache["mask"].shape == (1, 16, 16) and not cache["mask"].any()
    assert cache["pos"].shape == (1, 256, 16, 16)
    assert golden_run["tracked"]["input_proj_search"].shape == (1, 256, 32, 32)


# ----------------------------------------------------------------- small parts
def test_frozen_bn_is_eval_batchnorm_and_stays_frozen():
    g = torch.Generator().manual_seed(3)
    ref = nn.BatchNorm2d(6).eval()
    frozen = FrozenBatchNorm2d(6)
    with torch.no_grad():
        for t in ("weight", "bias", "running_mean"):
            v = torch.randn(6, generator=g)
            getattr(ref, t).copy_(v)
            getattr(frozen, t).copy_(v)
        v = torch.rand(6, generator=g) + 0.5
        ref.running_var.copy_(v)
        frozen.running_var.copy_(v)
    x = torch.randn(2, 6, 5, 5, generator=g)
    frozen.train()  # even in train mode: no batch statistics, no running-stat update
    before = frozen.running_mean.clone()
    assert torch.equal(frozen(x), ref(x))
    assert torch.equal(frozen.running_mean, before)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_sine_position_encoding_formula():
    pe = SinePositionEncoding(8)
    mask = torch.zeros(1, 3, 4, dtype=torch.bool)
    pos = pe(mask).double()
    assert pos.shape == (1, 16, 3, 4)
    for c in range(8):
        freq = 10000.0 ** (2 * (c // 2) / 8)
        f = math.sin if c % 2 == 0 else math.cos
        for i in range(3):
            for j in range(4):
                y = (i + 1) / (3 + 1e-6) * 2 * math.pi
                x = (j + 1) / (4 + 1e-6) * 2 * math.pi
                assert abs(pos[0, c, i, j].item() - f(y / freq)) < 1e-5
                assert abs(pos[0, 8 + c, i, j].item() - f(x / freq)) < 1e-5


# ----------------------------------------------------------------- test-time rule
def _official_rule(pred_logits: torch.Tensor, pred_boxes: torch.Tensor, influence: float = 0.49):
    """The tracker's numpy steps: score from softmax over [N, 2], window = outer(np.hanning)."""
    score = torch.softmax(pred_logits[0].float(), dim=1)[:, 0].numpy()
    window = np.outer(np.hanning(32), np.hanning(32)).flatten()
    pscore = score * (1 - influence) + window * influence
    best = int(np.argmax(pscore))
    return best, pred_boxes[0, best].numpy(), float(score[best])


def test_hann_window_is_numpy_hanning():
    w = transt_hann_window(32)
    assert w.shape == (1024,)
    assert np.array_equal(w.numpy(), np.outer(np.hanning(32), np.hanning(32)).flatten())


def test_select_box_on_fixture_outputs(golden_run, load_fixture):
    out = load_fixture("transt_n4")["outputs"]
    box, score = transt_select_box(out["pred_logits"], out["pred_boxes"])
    best, ref_box, ref_score = _official_rule(out["pred_logits"], out["pred_boxes"])
    assert box.shape == (1, 4) and score.shape == (1,)
    assert np.array_equal(box[0].numpy(), ref_box)
    assert score[0].item() == pytest.approx(ref_score, abs=0)
    # the model's own outputs choose the same box (the same anchor, its coordinates equal up
    # to the float tolerance of the fixture outputs)
    ours = golden_run["tracked"]
    box2, _ = transt_select_box(ours["pred_logits"], ours["pred_boxes"])
    best2, _, _ = _official_rule(ours["pred_logits"], ours["pred_boxes"])
    assert best2 == best
    assert (box2 - box).abs().max().item() <= fixture_tol(out["pred_boxes"])
    # unbatched form
    b1, s1 = transt_select_box(out["pred_logits"][0], out["pred_boxes"][0])
    assert torch.equal(b1, box[0]) and torch.equal(s1, score[0])


def test_select_box_hand_cases():
    n = 1024
    boxes = torch.arange(n * 4, dtype=torch.float32).reshape(1, n, 4) / (n * 4)
    logits = torch.zeros(1, n, 2)  # score 0.5 everywhere: the window decides
    box, score = transt_select_box(logits, boxes)
    w = np.outer(np.hanning(32), np.hanning(32)).flatten()
    centre = int(np.argmax(w))  # first of the four central maxima
    assert centre in (15 * 32 + 15, 15 * 32 + 16, 16 * 32 + 15, 16 * 32 + 16)
    assert torch.equal(box[0], boxes[0, centre]) and score.item() == 0.5

    # A confident corner candidate (window 0) loses to a mediocre central one:
    # 0.51 * 0.99 = 0.505 < 0.51 * 0.5 + 0.49 * 0.9976.
    logits = torch.zeros(1, n, 2)
    logits[0, 0, 0] = math.log(99.0)  # softmax -> 0.99 foreground
    box, score = transt_select_box(logits, boxes)
    assert torch.equal(box[0], boxes[0, centre])

    # Without the window the confident candidate wins; a strong off-centre candidate
    # near the centre beats the flat central score.
    box, score = transt_select_box(logits, boxes, window_influence=0.0)
    assert torch.equal(box[0], boxes[0, 0]) and score.item() == pytest.approx(0.99, abs=1e-6)
    near = 14 * 32 + 17
    logits[0, near, 0] = 4.0
    box, score = transt_select_box(logits, boxes)
    assert torch.equal(box[0], boxes[0, near])
    assert score.item() == pytest.approx(1 / (1 + math.exp(-4.0)), abs=1e-6)

    # Batched: each row chooses independently.
    both = torch.cat([torch.zeros(1, n, 2), logits])
    box, score = transt_select_box(both, boxes.expand(2, n, 4))
    assert torch.equal(box[0], boxes[0, centre]) and torch.equal(box[1], boxes[0, near])

    with pytest.raises(ValueError, match="square"):
        transt_select_box(torch.zeros(1, 1000, 2), torch.zeros(1, 1000, 4))


def test_registry_golden_weights_equal_reference(golden_run, model):
    """build_model('transt', 'golden') (snnsim's own golden.py) gives exactly the reference
    weights that golden_run loaded from shared/tools/golden.py."""
    from snnsim.models import build_model

    net = build_model("transt", weights="golden")
    assert isinstance(net, TransT) and not net.training
    assert "golden" in net.weights_source
    ref = model.state_dict()
    for k, v in net.state_dict().items():
        assert torch.equal(v, ref[k]), k
