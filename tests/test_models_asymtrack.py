"""AsymTrack T / S / B: checkpoint keys, train -> deploy re-parameterisation, cached tracking,
and equality with the published code's outputs (shared/golden/asymtrack_*.pt)."""
from __future__ import annotations

import pytest
import torch
from golden_tolerance import fixture_tol

from snnsim.models.asymtrack import (
    AsymTrack,
    build_asymtrack,
    is_train_form,
    train_to_deploy,
)
from snnsim.models.asymtrack_layers import OPE, fold_ope_weight

VARIANTS = ["tiny", "small", "base"]


@pytest.fixture(scope="module")
def golden_models():
    """One deploy model per variant with golden weights (built once: CPU time is shared)."""
    cache: dict[str, AsymTrack] = {}

    def _get(variant: str) -> AsymTrack:
        if variant not in cache:
            m = build_asymtrack(variant)
            m.load_golden()
            cache[variant] = m.eval()
        return cache[variant]
    return _get


def _train_sd(model: AsymTrack, reference_golden) -> dict[str, torch.Tensor]:
    """Golden tensors on the training-form keys, made by the reference golden.py."""
    return {k: reference_golden.golden_tensor(k, s, d, 1.0) for k, (s, d) in model.train_form_state_shapes().items()}


# ----------------------------------------------------------------------------- structure

@pytest.mark.parametrize("variant", VARIANTS)
def test_deploy_and_train_keys_match_published(variant, checkpoint_keys):
    m = build_asymtrack(variant)
    sd = m.state_dict()
    ref = checkpoint_keys(f"asymtrack_{variant}_deploy")
    assert list(sd) == list(ref)
    assert {k: tuple(v.shape) for k, v in sd.items()} == ref
    train_ref = checkpoint_keys(f"asymtrack_{variant}_train")
    shapes = m.train_form_state_shapes()
    assert list(shapes) == list(train_ref)
    assert {k: tuple(s) for k, (s, _) in shapes.items()} == train_ref
    # the training-form model built directly has the same key list
    t = build_asymtrack(variant, deploy=False)
    assert {k: tuple(v.shape) for k, v in t.state_dict().items()} == train_ref
    assert list(t.state_dict()) == list(train_ref)


def test_thop_style_param_counts(golden_models):
    """Published 3.05 / 3.36 M are thop's count: parameters of the Conv / BN / Linear leaf
    modules that the forward calls (ETM's unused `post_kernels` / `downsample` and the
    non-leaf layer scales are not counted)."""
    expected = {"tiny": (3_049_404, 3_239_004), "small": (3_358_780, 3_549_148)}
    for variant, (thop_like, total) in expected.items():
        m = golden_models(variant)
        called: set = set()
        hooks = [mod.register_forward_hook(lambda mod, i, o: called.add(mod)) for mod in m.modules()]
        inp = m.example_inputs("golden")
        with torch.no_grad():
            m(inp["template"], inp["search"])
        for h in hooks:
            h.remove()
        leaf_types = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
        n = sum(p.numel() for mod in called if isinstance(mod, leaf_types) for p in mod.parameters())
        assert n == thop_like
        assert round(n / 1e6, 2) == {"tiny": 3.05, "small": 3.36}[variant]
        assert sum(p.numel() for p in m.parameters()) == total


def test_unknown_variant_error():
    with pytest.raises(ValueError, match="known: tiny, small, base"):
        build_asymtrack("huge")


def test_registry_builds_deploy_models():
    from snnsim.models import build_model

    m = build_model("asymtrack-t", weights="golden")
    assert isinstance(m, AsymTrack) and m.deploy and not m.training
    assert m.family == "asymtrack" and m.kind == "ann" and m.timesteps == 1
    assert m.input_description() == {"template": [1, 3, 128, 128], "search": [1, 3, 256, 256]}


# ----------------------------------------------------------------------------- train -> deploy

def test_fold_formula_matches_readme():
    g = torch.Generator().manual_seed(3)
    ws = [torch.randn(5, 4, 3, 3, generator=g) for _ in range(3)]
    theta = torch.randn(1, generator=g)
    ref = sum(w - torch.nn.functional.pad(torch.sigmoid(theta) * w.sum((2, 3))[:, :, None, None], (1, 1, 1, 1))
              for w in ws)
    torch.testing.assert_close(fold_ope_weight(ws, theta), ref, rtol=1e-6, atol=1e-6)


def test_ope_train_form_equals_deploy_form():
    torch.manual_seed(0)
    ope = OPE(16, deploy=False).eval()
    with torch.no_grad():
        ope.theta.fill_(0.3)
        ope.ibe_scale.normal_()
        x = torch.randn(2, 9, 7, 16)
        y_train = ope(x)
        ope.switch_to_deploy()
        y_deploy = ope(x)
    assert list(ope.state_dict()) == ["ibe_scale", "ln.weight", "ln.bias", "rbr_reparam.weight"]
    torch.testing.assert_close(y_deploy, y_train, rtol=0, atol=1e-5)


def test_convert_checkpoint_and_strict_loads(golden_models, reference_golden, checkpoint_keys):
    m = build_asymtrack("tiny")
    train_sd = _train_sd(m, reference_golden)
    assert list(train_sd) == list(checkpoint_keys("asymtrack_tiny_train"))
    assert is_train_form(train_sd)
    deploy_sd = m.convert_checkpoint(train_sd)
    assert not is_train_form(deploy_sd)
    assert list(deploy_sd) == list(checkpoint_keys("asymtrack_tiny_deploy"))
    assert all(torch.equal(deploy_sd[k], v) for k, v in train_to_deploy(train_sd).items())
    m.load_state_dict(deploy_sd, strict=True)
    # a deploy checkpoint passes through unchanged and loads strictly too
    again = m.convert_checkpoint(m.state_dict())
    build_asymtrack("tiny").load_state_dict(again, strict=True)
    # equal to the golden weights load_golden builds, and to the official switch_to_deploy path
    gold = golden_models("tiny").state_dict()
    assert all(torch.equal(gold[k], v) for k, v in m.state_dict().items())
    t = build_asymtrack("tiny", deploy=False)
    t.load_state_dict(train_sd, strict=True)
    t.switch_to_deploy()
    assert list(t.state_dict()) == list(gold)
    assert all(torch.equal(gold[k], v) for k, v in t.state_dict().items())


def test_incomplete_train_checkpoint_is_rejected(reference_golden):
    m = build_asymtrack("tiny")
    sd = _train_sd(m, reference_golden)
    del sd["backbone.layers.0.blocks.2.theta"]
    with pytest.raises(ValueError, match="incomplete training-form OPE"):
        m.convert_checkpoint(sd)
    with pytest.raises(RuntimeError, match="Missing key"):
        m.load_state_dict({k: v for k, v in m.state_dict().items() if "rbr_reparam" not in k}, strict=True)


def test_load_checkpoint_train_form_file(tmp_path, reference_golden, golden_models):
    checkpoint = pytest.importorskip("snnsim.models.checkpoint")
    m = build_asymtrack("tiny")
    path = tmp_path / "asymtrack_tiny_train.pth"
    torch.save(_train_sd(m, reference_golden), path)
    checkpoint.load_checkpoint(m, str(path))
    gold = golden_models("tiny").state_dict()
    assert all(torch.equal(gold[k], v) for k, v in m.state_dict().items())


# ----------------------------------------------------------------------------- fixtures

@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_fixture(variant, golden_models, load_fixture):
    fx = load_fixture(f"asymtrack_{variant}")
    m = golden_models(variant)
    assert fx["inputs"]["template_size"] == m.cfg.template_size
    assert fx["inputs"]["search_size"] == m.cfg.search_size
    inp = m.example_inputs("golden")
    with torch.no_grad():
        m.reset_cache()
        first = m(inp["template"], inp["search"])          # call 1: template + search
        second = m(None, inp["search"])                     # call 2: cached template
        cache = m.forward_template(inp["template"])
        split = m.forward_search(inp["search"], cache)
    worst = 0.0
    for name, ref in fx["outputs"].items():
        out = first if name.startswith("first_call/") else second
        got = out[name.split("/")[-1]]
        assert got.shape == ref.shape, name
        diff = (got - ref).abs().max().item()
        worst = max(worst, diff)
        assert diff <= fixture_tol(ref), f"{variant} {name}: max |diff| {diff:.3g}"
    for k, v in second.items():
        assert torch.equal(v, first[k]), k
        assert torch.equal(v, split[k]), k
    assert set(cache) == {"template_tokens", "etm_kernels"}
    assert list(cache["etm_kernels"]) == ["backbone.layers.1.blocks.2", f"backbone.layers.2.blocks.{m.cfg.depths[2]}"]
    assert list(cache["template_tokens"]) == [f"backbone.layers.2.blocks.{m.cfg.depths[2] + 2}"]
    print(f"asymtrack_{variant}: max |diff| vs fixture = {worst:.3g}")


def test_train_form_model_reproduces_fixture_closely(load_fixture, reference_golden):
    """The training-form forward (three branches + theta, before folding) gives the same
    tracking result up to float rounding."""
    t = build_asymtrack("tiny", deploy=False).eval()
    t.load_golden()
    fx = load_fixture("asymtrack_tiny")["outputs"]
    inp = t.example_inputs("golden")
    with torch.no_grad():
        out = t(inp["template"], inp["search"])
    for name in ("backbone_out", "pred_boxes", "score_map_tl", "score_map_br"):
        torch.testing.assert_close(out[name], fx[name], rtol=0, atol=1e-4)


def test_batch_and_cache_errors(golden_models):
    m = golden_models("tiny")
    a = m.example_inputs("golden")
    b = m.example_inputs("random")
    with torch.no_grad():
        one = m(a["template"], a["search"])["pred_boxes"]
        two = m(b["template"], b["search"])["pred_boxes"]
        both = m(torch.cat([a["template"], b["template"]]), torch.cat([a["search"], b["search"]]))["pred_boxes"]
    torch.testing.assert_close(both, torch.cat([one, two]), rtol=0, atol=1e-5)
    m.reset_cache()
    with pytest.raises(RuntimeError, match="no cached template"):
        m(None, a["search"])
