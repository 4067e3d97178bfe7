"""Registered models: name -> (family builder, config). Data, not code paths."""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    kind: str                      # spiking | ann
    builder: str                   # "module:function" under snnsim.models
    config: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


def _spiketrack(name: str, cfg: str, summary: str) -> ModelSpec:
    return ModelSpec(name, "spiketrack", "spiking", "spiketrack:build_spiketrack", {"config": cfg}, summary)


MODELS: dict[str, ModelSpec] = {s.name: s for s in [
    _spiketrack("spiketrack-s256-t1", "s256_t1", "SpikeTrack S, 256 px, 1 template"),
    _spiketrack("spiketrack-s256-t3", "s256_t3", "SpikeTrack S, 256 px, 3 templates"),
    _spiketrack("spiketrack-b256-t1", "b256_t1", "SpikeTrack B, 256 px, 1 template"),
    _spiketrack("spiketrack-b256-t3", "b256_t3", "SpikeTrack B, 256 px, 3 templates"),
    _spiketrack("spiketrack-b384-t1", "b384_t1", "SpikeTrack B, 384 px, 1 template"),
    _spiketrack("spiketrack-b384-t3", "b384_t3", "SpikeTrack B, 384 px, 3 templates"),
    ModelSpec("spiketrack-tiny", "spiketrack", "spiking", "spiketrack_tiny:build_spiketrack_tiny", {},
              "SpikeTrack reduced (dims 16/32/64/80, 128 px, T=1), trained here on synthetic sequences "
              "(docs/training_tiny.md)"),
    ModelSpec("spiketrack-tiny-ann", "spiketrack", "ann", "spiketrack_tiny:build_spiketrack_tiny_ann", {},
              "spiketrack-tiny's ANN twin (NI-LIF -> clipped ReLU), trained by the same run (docs/training_tiny.md)"),
    ModelSpec("smtrack-s", "smtrack", "spiking", "smtrack:build_smtrack", {"variant": "s"},
              "SMTrack SpikeYOLOX-S detector (T=4, D=4) + TrackTrack association"),
    ModelSpec("asymtrack-t", "asymtrack", "ann", "asymtrack:build_asymtrack", {"variant": "tiny"},
              "AsymTrack-T (deploy form)"),
    ModelSpec("asymtrack-s", "asymtrack", "ann", "asymtrack:build_asymtrack", {"variant": "small"},
              "AsymTrack-S (deploy form)"),
    ModelSpec("asymtrack-b", "asymtrack", "ann", "asymtrack:build_asymtrack", {"variant": "base"},
              "AsymTrack-B (deploy form)"),
    ModelSpec("transt", "transt", "ann", "transt:build_transt", {}, "TransT N4 (ResNet-50)"),
]}


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UnknownModelError(f"unknown model '{name}'; known models: {', '.join(MODELS)} (see `snnsim models`)")
    return MODELS[name]


def list_models() -> list[ModelSpec]:
    return list(MODELS.values())


def build_model(name: str, weights: str | None = None) -> nn.Module:
    """Build a registered model. weights: None (the model's shipped default weights if it
    has any, else untrained), 'random' (untrained init), 'golden' (the fixtures'
    deterministic weights), or a checkpoint path (loaded strictly)."""
    spec = get_spec(name)
    module_name, func = spec.builder.split(":")
    builder = getattr(importlib.import_module(f"snnsim.models.{module_name}"), func)
    kwargs = dict(spec.config)
    if weights is not None and "weights" in inspect.signature(builder).parameters:
        kwargs["weights"] = None  # the caller chose the weights: the builder loads no default
    model = builder(**kwargs)
    model.registry_name = name
    if weights is None and getattr(model, "weights_info", None):
        pass  # the builder loaded the model's shipped default weights and said so
    elif weights in (None, "random"):
        model.weights_info = weights_record("random", note="random (untrained initialisation)")
    elif weights == "golden":
        model.load_golden()
        model.weights_info = weights_record(
            "golden", note=f"golden (deterministic fixture weights, gain {model.golden_gain})")
    else:
        from .checkpoint import load_checkpoint

        load_checkpoint(model, weights)
        model.weights_info = weights_record(
            "checkpoint", weights, trained=True,
            note=f"checkpoint {weights} (how it was trained is not recorded)")
    return model.eval()


def weights_record(source: str, path=None, *, trained: bool = False, note: str = "") -> dict:
    """Structured weight provenance for run summaries: {source, path, sha256, trained, note}.
    source: 'default' (the model's shipped checkpoint), 'checkpoint' (a path given), 'golden'
    (the fixtures' deterministic weights) or 'random' (untrained initialisation); golden and
    random are never trained. sha256 is of the checkpoint file's bytes."""
    import hashlib

    digest = None
    if path is not None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    return {"source": source, "path": None if path is None else str(Path(path).resolve()), "sha256": digest,
            "trained": bool(trained) and source in ("default", "checkpoint"), "note": note}


def weights_info(model) -> dict:
    """The model's weight provenance record (see weights_record); a model built outside the
    registry says 'unknown', untrained."""
    info = getattr(model, "weights_info", None)
    if info is not None:
        return dict(info)
    return {"source": "unknown", "path": None, "sha256": None, "trained": False, "note": "unknown"}
