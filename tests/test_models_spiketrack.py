"""SpikeTrack: checkpoint layout (all six configs) and equality with the published code
(golden fixtures s256_t1, s256_t3, b256_t1), output by output and neuron call by call."""
from __future__ import annotations

import pytest
import torch

from snnsim.models.neurons import NILIF
from snnsim.models.spiketrack import CONFIGS, FrozenBatchNorm, build_spiketrack

ALL_CONFIGS = ["s256_t1", "s256_t3", "b256_t1", "b256_t3", "b384_t1", "b384_t3"]
FIXTURE_CONFIGS = ["s256_t1", "s256_t3", "b256_t1"]
PUBLISHED_PARAMS_M = {"s256_t1": 11.76, "s256_t3": 12.72, "b256_t1": 36.66, "b256_t3": 40.08,
                      "b384_t1": 43.35, "b384_t3": 46.77}
GAIN = 3.0
D = 4  # NI-LIF levels
OUT_ATOL = 1e-5  # README: caches, encoder output and heads match to about 1e-5 when no spike flipped
MEAN_REL_AFTER_FLIP = 0.13  # README: per-call mean_per_t within 13% after a first flip


# ----------------------------------------------------------------------------- layout
@pytest.fixture(scope="module", params=ALL_CONFIGS)
def built(request):
    """(config, model) for each of the six configs; pytest groups the tests per config so
    each model is built once and only one is alive at a time."""
    yield request.param, build_spiketrack(request.param).eval()


def test_state_dict_matches_published_keys(built, checkpoint_keys):
    cfg, model = built
    ref = checkpoint_keys(f"spiketrack_{cfg}")
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert set(got) == set(ref), (sorted(set(ref) - set(got))[:10], sorted(set(got) - set(ref))[:10])
    assert got == ref
    assert list(got) == list(ref)  # even the order of the published state_dict

    # parameters vs buffers as published: frozen backbone BN = 4 buffers, no num_batches_tracked
    params = dict(model.named_parameters())
    frozen_prefixes = {k.rsplit(".", 1)[0] for k in ref if k.endswith("running_mean")} - {
        k.rsplit(".", 1)[0] for k in ref if k.endswith("num_batches_tracked")}
    expect_params = {k for k in ref if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                     and k.rsplit(".", 1)[0] not in frozen_prefixes}
    assert set(params) == expect_params
    assert all(p.startswith("encoder.") for p in frozen_prefixes)
    for prefix in frozen_prefixes:
        mod = model.get_submodule(prefix)
        assert isinstance(mod, FrozenBatchNorm) and mod.eps == 1e-5
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(m.eps == 1e-5 for m in bns)

    n_params = sum(p.numel() for p in model.parameters())
    assert round(n_params / 1e6, 2) == PUBLISHED_PARAMS_M[cfg]

    # strict load of a state dict built from the key list alone
    sd = {k: torch.zeros(shape, dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
          for k, shape in ref.items()}
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_template_encoder_keys_and_shared_tensors(built, checkpoint_keys):
    cfg, model = built
    te = model.template_encoder
    ref = checkpoint_keys(f"spiketrack_{cfg}_tempenc")
    te_sd = te.state_dict()
    assert {k: tuple(v.shape) for k, v in te_sd.items()} == ref
    assert list(te_sd) == list(ref)
    # not a registered submodule, and every tensor is the encoder's own
    assert all(k.startswith(("encoder.", "decoder.")) for k in model.state_dict())
    assert te not in list(model.modules())
    enc_sd = model.state_dict()
    for k, v in te_sd.items():
        assert v.data_ptr() == enc_sd["encoder." + k].data_ptr(), k
    # neurons seen from the template encoder: no `encoder.` prefix, MRMs keep head/k/v only
    names = [n for n, m in te.named_modules() if isinstance(m, NILIF)]
    assert "ConvBlock1_1.0.Conv.spike1" in names and "mrm.0.retriever.k_spike" in names
    assert not any(n.startswith("encoder.") for n in names)
    mrm_neurons = {n.split(".", 3)[3] for n in names if n.startswith("mrm.")}
    assert mrm_neurons == {"head_spike", "k_spike", "v_spike"}


def test_registry_builds_spiketrack():
    from snnsim.models import build_model

    model = build_model("spiketrack-s256-t1")
    assert model.registry_name == "spiketrack-s256-t1"
    assert (model.family, model.kind, model.timesteps, model.golden_gain) == ("spiketrack", "spiking", 1, 3.0)
    assert not model.training
    assert model.input_description() == {"template": [1, 1, 3, 256, 256], "search": [1, 3, 256, 256]}
    with pytest.raises(ValueError, match="unknown SpikeTrack config"):
        build_spiketrack("s999_t9")


@pytest.mark.parametrize("cfg", ["s256_t3", "b384_t1"])
def test_example_inputs(cfg, reference_golden):
    model = build_spiketrack(cfg)
    c = CONFIGS[cfg]
    gold = model.example_inputs("golden")
    assert gold["template"].shape == (c.timesteps, 1, 3, c.size, c.size)
    assert gold["search"].shape == (1, 3, c.size, c.size)
    for t in range(c.timesteps):
        assert torch.equal(gold["template"][t], reference_golden.golden_image(t + 1, c.size))
    assert torch.equal(gold["search"], reference_golden.golden_image(7, c.size))
    rnd = model.example_inputs("random", batch=2)
    assert rnd["template"].shape == (c.timesteps, 2, 3, c.size, c.size) and rnd["search"].shape == (2, 3, c.size, c.size)


# ----------------------------------------------------------------------------- neuron records
_CHECKSUM_WEIGHTS: dict[int, torch.Tensor] = {}


def _record(out: torch.Tensor, time_dim: int) -> dict:
    """The fixture's per-call statistics of one neuron output: per timestep the spike count
    sum(round(out * D)), the checksum sum(c_i * ((i % 9973) + 1)) over the C-order index of the
    non-time dims, the mean and the nonzero fraction. The integer sums stay below 2**53, so
    float64 arithmetic gives them exactly (and fast)."""
    o = out.detach().movedim(time_dim, 0)
    flat = o.reshape(o.shape[0], -1)
    n = flat.shape[1]
    weights = _CHECKSUM_WEIGHTS.get(n)
    if weights is None:
        weights = _CHECKSUM_WEIGHTS[n] = torch.arange(n, dtype=torch.float64) % 9973 + 1
    levels = torch.round(flat * D).double()
    count = levels.sum(1)
    return {"count": [int(c) for c in count.tolist()], "checksum": [int(c) for c in (levels @ weights).tolist()],
            "mean": (count / (D * n)).tolist(), "nonzero": (torch.count_nonzero(flat, dim=1) / n).tolist()}


class NeuronRecorder:
    """Forward hooks on every NI-LIF, named by module path: template-encoder paths (no
    `encoder.` prefix) while `phase == 'template'`, tracker paths otherwise."""

    def __init__(self, model):
        self.phase = "search"
        self.calls: list[dict] = []
        self.template_names = {id(m): n for n, m in model.template_encoder.named_modules() if isinstance(m, NILIF)}
        self.names = {id(m): n for n, m in model.named_modules() if isinstance(m, NILIF)}
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, NILIF)]

    def _hook(self, module, inputs, out):
        names = self.template_names if self.phase == "template" else self.names
        self.calls.append({"name": names[id(module)], "shape": tuple(out.shape),
                           "time_dim": module.time_dim % out.dim(), **_record(out, module.time_dim)})

    def take(self) -> list[dict]:
        calls, self.calls = self.calls, []
        return calls

    def close(self):
        for h in self.handles:
            h.remove()


def assert_neurons_match(got: list[dict], ref: list[dict], label: str) -> int | None:
    """Exact counts / checksums in call order up to a first divergence, which must be a single
    +-1 count where the reference has a membrane within 1e-6 of k+0.5; after it, means within
    13%. Returns the index of the first divergent call (None: all exact)."""
    assert [g["name"] for g in got] == [r["name"] for r in ref], label
    first = None
    for i, (g, r) in enumerate(zip(got, ref)):
        where = f"{label} call {i} {r['name']}"
        assert g["shape"] == tuple(r["shape"]), where
        assert g["time_dim"] == r["time_dim"], where
        if first is None:
            if g["count"] == r["spike_count_per_t"] and g["checksum"] == r["spike_checksum_per_t"]:
                assert g["mean"] == pytest.approx(r["mean_per_t"], rel=1e-5, abs=1e-7), where
                assert g["nonzero"] == pytest.approx(r["nonzero_per_t"], rel=1e-5, abs=1e-7), where
                continue
            diffs = [a - b for a, b in zip(g["count"], r["spike_count_per_t"])]
            t0 = next((t for t, d in enumerate(diffs) if d != 0), None)
            assert t0 is not None and abs(diffs[t0]) == 1, f"{where}: first divergence is not a single flip: {diffs}"
            assert r["membrane_within_1e-6_of_half_per_t"][t0] > 0, \
                f"{where}: spike flip at t={t0} where the reference has no near-half membrane"
            first = i
            continue
        for a, b in zip(g["mean"], r["mean_per_t"]):
            assert abs(a - b) <= MEAN_REL_AFTER_FLIP * abs(b) + 1e-4, f"{where}: mean {a} vs {b} after a flip"
    return first


def _fake(name, count, checksum, mean, near_half=(0,)):
    return {"name": name, "shape": (1, 4), "time_dim": 0, "spike_count_per_t": list(count),
            "spike_checksum_per_t": list(checksum), "mean_per_t": list(mean), "nonzero_per_t": [0.5],
            "membrane_within_1e-6_of_half_per_t": list(near_half)}


def _got(rec):
    return {"name": rec["name"], "shape": rec["shape"], "time_dim": 0, "count": rec["spike_count_per_t"],
            "checksum": rec["spike_checksum_per_t"], "mean": rec["mean_per_t"], "nonzero": rec["nonzero_per_t"]}


def test_flip_allowance_rules():
    ref = [_fake("a", [8], [80], [0.5]), _fake("b", [8], [90], [0.5], near_half=[2]), _fake("c", [8], [70], [0.5])]
    exact = [_got(r) for r in ref]
    assert assert_neurons_match(exact, ref, "exact") is None
    # one +1 flip at a near-half membrane, then a 10% drift: accepted, divergence reported at call 1
    flipped = [dict(exact[0]), dict(exact[1], count=[9], checksum=[93]), dict(exact[2], count=[9], mean=[0.55])]
    assert assert_neurons_match(flipped, ref, "flip") == 1
    with pytest.raises(AssertionError, match="no near-half membrane"):  # flip where none is possible
        assert_neurons_match([dict(exact[0], count=[9], checksum=[81])] + exact[1:], ref, "bad")
    with pytest.raises(AssertionError, match="not a single flip"):
        assert_neurons_match([exact[0], dict(exact[1], count=[10], checksum=[99])], ref[:2], "bad")
    with pytest.raises(AssertionError, match="after a flip"):
        assert_neurons_match(flipped[:2] + [dict(exact[2], mean=[0.7])], ref, "bad")
    with pytest.raises(AssertionError):  # same count, different positions: not exact, not one flip
        assert_neurons_match([exact[0], dict(exact[1], checksum=[91])], ref[:2], "bad")


def _assert_outputs(got: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], names, exact_path: bool):
    for name in names:
        assert name in got, name
        g, r = got[name], ref[name]
        assert tuple(g.shape) == tuple(r.shape), name
        assert torch.isfinite(g).all(), name
        if exact_path:
            torch.testing.assert_close(g, r, atol=OUT_ATOL, rtol=1e-5, msg=lambda m: f"{name}: {m}")


# ----------------------------------------------------------------------------- golden fixtures
@pytest.mark.parametrize("cfg", FIXTURE_CONFIGS)
def test_matches_published_code(cfg, load_fixture, reference_golden):
    fx = load_fixture(f"spiketrack_{cfg}")
    assert fx["config"]["gain"] == GAIN
    model = build_spiketrack(cfg).eval()
    model.load_state_dict(reference_golden.golden_state_dict(model, GAIN), strict=True)
    inputs = model.example_inputs("golden")
    ref = fx["outputs"]
    rec = NeuronRecorder(model)
    try:
        with torch.no_grad():
            rec.phase = "template"
            cache = model.forward_template(inputs["template"])
            rec.phase = "search"
            out = model.forward_search(inputs["search"], cache)
            tracking_calls = rec.take()
            rec.phase = "train"
            train = model(list(inputs["template"].unbind(0)) + [inputs["search"]])
            train_calls = rec.take()
    finally:
        rec.close()

    # tracking path: template encoder then search network, neuron by neuron
    flip = assert_neurons_match(tracking_calls, fx["neurons"], f"{cfg} tracking")
    got = dict(out)
    got.update({f"template_cache/{k}": v for k, v in cache.items()})
    got.update(model.windowed_box(out))
    got["tracker_hann_window"] = model.hann_window()
    _assert_outputs(got, ref, [k for k in ref if not k.startswith("train_graph/")], flip is None)
    assert set(cache) == {f"cross_block_{k}" for k in range(6)}

    # training graph: every shared module on the templates, then on the search
    flip_train = assert_neurons_match(train_calls, fx["neurons_train_graph"], f"{cfg} train graph")
    _assert_outputs({f"train_graph/{k}": v for k, v in train.items()}, ref,
                    [k for k in ref if k.startswith("train_graph/")], flip_train is None)
    # the split inference is the training graph
    if flip is None and flip_train is None:
        for k in ("score_map", "size_map", "offset_map", "pred_boxes", "encoder_out_xz"):
            assert torch.equal(out[k], train[k]), k


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["b384_t3"])
def test_b384_runs_at_native_size(cfg):
    """384 crops: 24 x 24 token grid, MRM pooling from 96 / 48, the T = 3 gate; the split
    inference equals the training graph."""
    model = build_spiketrack(cfg).eval()
    model.load_golden()
    c = CONFIGS[cfg]
    inputs = model.example_inputs("golden")
    with torch.no_grad():
        cache = model.forward_template(inputs["template"])
        out = model.forward_search(inputs["search"], cache)
        train = model(inputs["template"], inputs["search"])
    F = c.size // 16
    assert out["score_map"].shape == (1, 1, F, F) and out["size_map"].shape == (1, 2, F, F)
    assert out["encoder_out_xz"].shape == (1, 1, c.dims[3], F, F)
    assert cache["cross_block_5"].shape == (c.timesteps, 1, 8, c.dims[3] // 8, c.dims[3] * 4 // 8)
    assert torch.isfinite(out["pred_boxes"]).all()
    for k in ("score_map", "size_map", "offset_map", "pred_boxes", "encoder_out_xz"):
        assert torch.equal(out[k], train[k]), k


def test_template_input_forms_and_cache_check():
    model = build_spiketrack("s256_t3").eval()
    crop = torch.randn(1, 3, 256, 256)
    stack = torch.stack([crop] * 3, 0)
    assert torch.equal(model._template_stack([crop, crop, crop]), stack)
    assert torch.equal(model._template_stack(crop), stack)  # one crop -> repeated T times (tracker init)
    with pytest.raises(ValueError, match="template memories"):
        model.forward_search(torch.randn(1, 3, 256, 256), {f"cross_block_{k}": torch.zeros(1, 1, 8, 4, 16)
                                                            for k in range(6)})
    with pytest.raises(ValueError, match="expects 3 template"):
        model.forward_template(torch.randn(2, 1, 3, 256, 256))
