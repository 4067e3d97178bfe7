"""models/checkpoint.py: strict, weights-only checkpoint loading with one-line errors."""
from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from snnsim.models.checkpoint import (
    CheckpointError, CheckpointMismatchError, CheckpointReadError, extract_state_dict, load_checkpoint,
)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


class ToyWithHook(Toy):
    """A family whose checkpoints are stored in another form (like AsymTrack's training form)."""

    def convert_checkpoint(self, sd):
        self.converted = True
        return {k.replace("old_fc.", "fc."): v for k, v in sd.items()}


def _trained_sd(seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: (torch.randn_like(v) if v.is_floating_point() else v.clone()) for k, v in Toy().state_dict().items()}


def _assert_loaded(model, sd):
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k


@pytest.mark.parametrize("layout", ["bare", "net", "model", "state_dict", "nested", "module_prefix"])
def test_accepted_layouts(tmp_path, layout):
    sd = _trained_sd()
    obj = {
        "bare": sd,
        "net": {"net": sd, "epoch": 300, "net_type": "SpikeTrack"},
        "model": {"model": sd, "optimizer": {"lr": 1e-4}},
        "state_dict": {"state_dict": sd},
        "nested": {"model": {"state_dict": sd}},
        "module_prefix": {"net": {"module." + k: v for k, v in sd.items()}},
    }[layout]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    model = Toy()
    assert load_checkpoint(model, path) is model
    _assert_loaded(model, sd)


def test_convert_hook_is_called(tmp_path):
    sd = {k.replace("fc.", "old_fc."): v for k, v in _trained_sd().items()}
    torch.save(sd, tmp_path / "train_form.pt")
    model = ToyWithHook()
    load_checkpoint(model, tmp_path / "train_form.pt")
    assert model.converted
    _assert_loaded(model, {k.replace("old_fc.", "fc."): v for k, v in sd.items()})


def test_mismatch_message_lists_keys_and_config(tmp_path):
    sd = _trained_sd()
    del sd["fc.bias"]
    sd["conv.weight"] = torch.zeros(4, 3, 5, 5)
    for i in range(15):
        sd[f"extra.{i}"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save({"net": sd}, path)
    model = Toy()
    model.registry_name = "toy-small"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(model, path)
    err = info.value
    msg = str(err)
    assert isinstance(err, ValueError) and isinstance(err, CheckpointError)
    assert "\n" not in msg
    assert str(path) in msg and "toy-small" in msg
    assert "1 missing key(s): fc.bias" in msg
    assert "15 unexpected key(s)" in msg and "extra.9" in msg and "extra.10" not in msg and "+5 more" in msg
    assert "1 shape mismatch(es): conv.weight (4, 3, 5, 5) vs model (4, 3, 3, 3)" in msg
    assert err.missing == ["fc.bias"] and len(err.unexpected) == 15 and err.shape_mismatches == ["conv.weight"]
    # nothing was loaded
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_unreadable_files_name_the_path(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(CheckpointReadError, match="not found: .*nope.pth"):
        load_checkpoint(Toy(), missing)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointReadError, match="cannot read checkpoint .*garbage.pth") as info:
        load_checkpoint(Toy(), garbage)
    assert "\n" not in str(info.value)

    with pytest.raises(CheckpointReadError, match="directory"):
        load_checkpoint(Toy(), tmp_path)


class _Payload:  # an arbitrary Python object: must never be unpickled
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"net": _trained_sd(), "hook": _Payload()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointReadError, match="evil.pth") as info:
        load_checkpoint(Toy(), path)
    assert "weights-only" in str(info.value)


def test_no_state_dict_inside(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "settings": {"lr": 0.1}}, path)
    with pytest.raises(CheckpointReadError, match="no state dict found in .*meta.pth.*'epoch'"):
        load_checkpoint(Toy(), path)
    with pytest.raises(CheckpointReadError, match="holds a list"):
        extract_state_dict([1, 2])


def test_spiketrack_checkpoint_from_published_keys(tmp_path, checkpoint_keys, reference_golden):
    """An official-layout SpikeTrack checkpoint ({'net': sd} with exactly the published keys)
    loads strictly through the registry, and the template encoder sees the same tensors."""
    from snnsim.models import build_model

    keys = checkpoint_keys("spiketrack_s256_t1")
    sd = {k: reference_golden.golden_tensor(k, shape, torch.int64 if k.endswith("num_batches_tracked")
                                            else torch.float32, 3.0) for k, shape in keys.items()}
    path = tmp_path / "SPIKETRACK_ep0300.pth.tar"
    torch.save({"net": sd, "epoch": 300}, path)
    model = build_model("spiketrack-s256-t1", weights=str(path))
    assert model.weights_source.startswith(f"checkpoint {path}")
    assert model.weights_info["source"] == "checkpoint" and model.weights_info["path"] == str(path.resolve())
    loaded = model.state_dict()
    for k in ("encoder.downsample1_1.encode_conv.weight", "encoder.mrm.5.retriever.gate.mlp.1.decay",
              "decoder.conv5_size.bias"):
        assert torch.equal(loaded[k], sd[k])
    te = model.template_encoder.state_dict()
    assert torch.equal(te["mrm.3.retriever.t_pos_embeds.2"], sd["encoder.mrm.3.retriever.t_pos_embeds.2"])

    # a T3 checkpoint into the T1 model: the extra per-template responders are named
    sd3 = {k: torch.zeros(s) for k, s in checkpoint_keys("spiketrack_s256_t3").items()}
    path3 = tmp_path / "t3.pth"
    torch.save({"net": sd3}, path3)
    with pytest.raises(CheckpointMismatchError, match="spiketrack-s256-t1.*unexpected key.*seg_responder_dw.1"):
        load_checkpoint(model, path3)
