"""Strict, data-only checkpoint loading for every model family.

`load_checkpoint(model, path)`:
  1. reads the file with `torch.load(..., map_location='cpu', weights_only=True)` (nothing
     in it is executed);
  2. finds the state dict: a bare one, or under 'net' (SpikeTrack / pytracking), 'model',
     'state_dict' (one level of nesting is searched too); a DataParallel 'module.' prefix is
     dropped when the model has none;
  3. lets the family convert it when the model defines `convert_checkpoint(sd) -> sd`
     (e.g. AsymTrack's train -> deploy folding);
  4. checks keys and shapes against `model.state_dict()` and loads strictly.
Errors are one line, name the file and the expected model, and subclass ValueError.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "CheckpointReadError", "CheckpointMismatchError",
           "extract_state_dict", "load_checkpoint", "read_checkpoint"]

# Containers under which training code commonly stores the weights, in lookup order.
STATE_DICT_KEYS = ("net", "model", "state_dict", "model_state_dict", "network")
MAX_LISTED = 10


class CheckpointError(ValueError):
    """A checkpoint could not be used."""


class CheckpointReadError(CheckpointError):
    """The file is missing, unreadable, not a weights-only torch file, or holds no state dict."""


class CheckpointMismatchError(CheckpointError):
    """The state dict does not match the model (missing / unexpected keys, shape mismatches)."""

    def __init__(self, message: str, missing=(), unexpected=(), shape_mismatches=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.shape_mismatches = list(shape_mismatches)


def _model_label(model: nn.Module) -> str:
    name = getattr(model, "registry_name", None)
    if name:
        return f"model '{name}'"
    cfg = getattr(model, "config_name", None)
    return f"{type(model).__name__}" + (f" (config {cfg})" if cfg else "")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_checkpoint(path: str | os.PathLike) -> Any:
    """torch.load the file as data only (weights_only=True) onto the CPU."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointReadError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise CheckpointReadError(f"checkpoint path is a directory, not a file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        reason = _one_line(exc).split(". ")[0][:160]  # torch's first sentence says enough
        # torch gives the same error for a corrupt file and for pickled Python objects
        hint = " (not a weights-only torch checkpoint; snnsim loads tensors only, never pickled objects)"
        raise CheckpointReadError(f"cannot read checkpoint {path}: {type(exc).__name__}: {reason}{hint}") from exc


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: bare, or under one of STATE_DICT_KEYS
    (searched one level deep, e.g. {'model': {'state_dict': ...}})."""
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if _is_state_dict(inner):
                return dict(inner)
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                for key2 in STATE_DICT_KEYS:
                    if _is_state_dict(inner.get(key2)):
                        return dict(inner[key2])
        top = ", ".join(repr(k) for k in list(obj)[:MAX_LISTED])
        raise CheckpointReadError(
            f"no state dict found in {source}: expected tensors keyed by name, bare or under one of "
            f"{', '.join(repr(k) for k in STATE_DICT_KEYS)}; top-level keys: {top or 'none'}")
    raise CheckpointReadError(f"no state dict found in {source}: it holds a {type(obj).__name__}, not a mapping")


def _strip_module_prefix(sd: dict[str, torch.Tensor], expected: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    prefix = "module."
    if sd and all(k.startswith(prefix) for k in sd) and not any(k.startswith(prefix) for k in expected):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    more = len(keys) - MAX_LISTED
    return shown + (f", ... (+{more} more)" if more > 0 else "")


def check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise CheckpointMismatchError unless `sd` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_listed(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}")
    if mismatched:
        shown = [f"{k} {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}" for k in mismatched]
        parts.append(f"{len(mismatched)} shape mismatch(es): {_listed(shown)}")
    raise CheckpointMismatchError(
        f"{source} does not match {_model_label(model)}: " + "; ".join(parts),
        missing, unexpected, mismatched)


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a checkpoint file into `model` strictly (see the module docstring). Returns the model."""
    source = f"checkpoint {os.fspath(path)}"
    sd = extract_state_dict(read_checkpoint(path), source)
    sd = _strip_module_prefix(sd, model.state_dict())
    convert = getattr(model, "convert_checkpoint", None)
    if callable(convert):
        sd = convert(sd)
    check_state_dict(model, sd, source)
    model.load_state_dict(sd, strict=True)
    return model
