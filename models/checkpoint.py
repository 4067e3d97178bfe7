"""Strict, data-only checkpoint loading for every model family.

`load_checkpoint(model, path)`:
  1. reads the file with `torch.load(..., map_location='cpu', weights_only=True)` (nothing
     in it is executed; a file torch cannot read is described from its bytes: empty, a zip
     that is not torch's, pickled Python objects, text);
  2. finds the state dict: a bare one, or under 'net' (SpikeTrack / pytracking), 'model',
     'state_dict' (one level of nesting is searched too); a DataParallel 'module.' prefix is
     dropped when the model has none;
  3. lets the family convert it when the model defines `convert_checkpoint(sd) -> sd`
     (e.g. AsymTrack's train -> deploy folding);
  4. checks keys and shapes against `model.state_dict()`, then that every floating-point
     tensor is finite (the first key holding NaN/inf is named as the file spells it), and
     loads strictly.
Errors are one line, name the file and the expected model, and subclass ValueError.
"""
from __future__ import annotations

import io
import os
import pickletools
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "CheckpointReadError", "CheckpointMismatchError", "CheckpointNonFiniteError",
           "check_finite", "extract_state_dict", "load_checkpoint", "read_checkpoint"]

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


class CheckpointNonFiniteError(CheckpointError):
    """A tensor of the checkpoint holds NaN or inf (e.g. saved after training diverged)."""

    def __init__(self, message: str, key: str = "", count: int = 0):
        super().__init__(message)
        self.key = key
        self.count = count


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
        # torch warns (on stderr) about pickle protocols it does not expect; the refusal below
        # says what matters, in one line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        try:
            why = _why_unreadable(path, exc)
        except Exception:   # a damaged file may defeat the description too: torch's own words then
            why = _torch_reason(exc)
        raise CheckpointReadError(f"cannot read checkpoint {path}: {why}") from exc


SAVE_HINT = "give a file written by torch.save(model.state_dict(), path)"
# Globals torch's own weights-only files use (tensors, storages): not "Python objects" of the user's.
_TORCH_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode")


def _pickle_globals(data: bytes, limit: int = 200_000) -> tuple[bool, list[str]]:
    """(starts with a whole pickle, the globals its pickles import), reading the opcodes only
    (pickletools: nothing is executed or imported). Torch's legacy format is several pickles
    in a row, so up to four are read."""
    found: list[str] = []
    buf = io.BytesIO(data)
    parsed = False
    n = 0
    for _ in range(4):
        strings: list[str] = []
        try:
            for op, arg, _pos in pickletools.genops(buf):
                n += 1
                if n >= limit:
                    return parsed, found
                if op.name in ("GLOBAL", "INST"):
                    found.append(".".join(str(arg).split(" ", 1)))
                elif isinstance(arg, str):
                    strings.append(arg)
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # not a pickle (or raw tensor bytes after the pickles): stop here
            return parsed, found
        parsed = True
        if buf.tell() >= len(data):
            break
    return parsed, found


def _why_unreadable(path: str, exc: BaseException) -> str:
    """One clause saying what the file is instead of a checkpoint (from its bytes, never by
    unpickling it)."""
    size = os.path.getsize(path)
    if size == 0:
        return f"the file is empty (0 bytes); {SAVE_HINT}"
    with open(path, "rb") as fh:
        head = fh.read(8)
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl = next((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), None)
            if pkl is None:
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                return (f"not a PyTorch checkpoint (a zip archive without torch's data.pkl; it holds "
                        f"{shown or 'no files'}); {SAVE_HINT}")
            data = zf.read(pkl)
    elif head.startswith(b"PK"):
        return f"not a complete PyTorch checkpoint (a damaged or truncated zip archive); {SAVE_HINT}"
    else:
        with open(path, "rb") as fh:
            data = fh.read(64 << 20)
    parsed, globals_ = _pickle_globals(data)
    user = [g for g in dict.fromkeys(globals_) if not g.startswith(_TORCH_GLOBAL_PREFIXES)]
    if user:
        shown = ", ".join(user[:3]) + (", ..." if len(user) > 3 else "")
        return (f"the file holds pickled Python objects ({shown}), which snnsim will not unpickle: it reads "
                f"weights-only checkpoints (tensors only) and never runs code from a file; {SAVE_HINT}")
    if parsed and not is_zip and not globals_:   # torch's legacy files reference torch's own globals
        return (f"a plain Python pickle, not a weights-only torch checkpoint (snnsim reads tensors only, never "
                f"unpickles objects); {SAVE_HINT}")
    if not parsed and not is_zip:
        try:
            text = head.decode("ascii")
            looks = f"it starts with the text {text!r}" if text.isprintable() else None
        except UnicodeDecodeError:
            looks = None
        looks = looks or f"it starts with the bytes {head[:4].hex(' ')}"
        return f"not a PyTorch checkpoint (neither a torch zip archive nor a pickle; {looks}); {SAVE_HINT}"
    return _torch_reason(exc)


def _torch_reason(exc: BaseException) -> str:
    reason = _one_line(exc).split(". ")[0][:160]  # torch's first sentence says enough
    return (f"{type(exc).__name__}: {reason} (not a weights-only torch checkpoint; snnsim loads tensors only, "
            f"never pickled objects)")


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


def check_finite(sd: Mapping[str, Any], source: str = "checkpoint") -> None:
    """Raise CheckpointNonFiniteError naming the first key (in the checkpoint's order) whose
    floating-point tensor holds NaN or inf, and how many such values it holds: a model built
    from it would count and price garbage."""
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
            continue
        finite = torch.isfinite(value)
        if bool(finite.all()):
            continue
        bad = int((~finite).sum())
        nan = int(torch.isnan(value).sum())
        kinds = ", ".join(part for part in (f"{nan} NaN" if nan else "", f"{bad - nan} inf" if bad - nan else "")
                          if part)
        raise CheckpointNonFiniteError(
            f"{source}: tensor '{key}' holds {bad} NaN/inf value{'s' if bad != 1 else ''} of {value.numel()} "
            f"({kinds}); a checkpoint must be finite (was it saved after training diverged?)", key, bad)


def check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str = "checkpoint",
                     as_saved: Mapping[str, Any] | None = None) -> None:
    """Raise CheckpointMismatchError unless `sd` has exactly the model's keys and shapes, then
    CheckpointNonFiniteError if a tensor holds NaN or inf. A checkpoint of another model is
    said first (its NaN would be beside the point); `as_saved`, the state dict as the file
    holds it (before prefix stripping and conversion), names the key as the file spells it."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [k for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or mismatched):
        if as_saved is not None:
            check_finite(as_saved, source)
        check_finite(sd, source)   # a conversion can overflow too
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
    saved = extract_state_dict(read_checkpoint(path), source)
    sd = _strip_module_prefix(saved, model.state_dict())
    convert = getattr(model, "convert_checkpoint", None)
    if callable(convert):
        sd = convert(sd)
    check_state_dict(model, sd, source, as_saved=saved)
    model.load_state_dict(sd, strict=True)
    return model
