"""Finding and reading hardware profiles.

Shipped profiles live in the `snnsim.hardware_profiles` package (one YAML file each; measured
ones under `measured/`). A user profile is any YAML path. Files are read with
`yaml.safe_load` only: a profile is data, never code.

A profile may name a `base` profile (shipped name, or a path relative to its own file): it then
starts from the base's fields, its own constants / power modes / measurements / pricing are
merged over the base's (key by key), and every other field it sets replaces the base's. That is
how a measured profile adds NVML measurements to a spec-sheet profile without copying it.
"""
from __future__ import annotations

import functools
import importlib.resources
import os
import pathlib
from typing import Any

import yaml

from .schema import HardwareProfile, HardwareProfileError, Measurement, validate_profile

_MERGED_MAPPINGS = ("constants", "power_modes", "measurements", "pricing")
_SUFFIXES = (".yaml", ".yml")


def _package_dir():
    return importlib.resources.files("snnsim.hardware_profiles")


def _shipped_files() -> dict[str, Any]:
    """name -> resource, for top-level profiles and `measured/<name>` ones."""
    root = _package_dir()
    out: dict[str, Any] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(_SUFFIXES):
            out[entry.name.rsplit(".", 1)[0]] = entry
    measured = root / "measured"
    if measured.is_dir():
        for entry in sorted(measured.iterdir(), key=lambda e: e.name):
            if entry.is_file() and entry.name.endswith(_SUFFIXES):
                out["measured/" + entry.name.rsplit(".", 1)[0]] = entry
    return out


def list_hardware(include_measured: bool = True) -> list[str]:
    """Names of the shipped profiles (measured ones as `measured/<name>`)."""
    names = list(_shipped_files())
    if not include_measured:
        names = [n for n in names if not n.startswith("measured/")]
    return names


def _read_yaml(text: str, src: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise HardwareProfileError(f"{src}: not valid YAML: {problem}{where}") from None


def _display(path: pathlib.Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # other drive (Windows)
        return str(path)
    return str(path.resolve()) if rel.startswith("..") else rel


def _raw(name_or_path: str | os.PathLike, relative_to: pathlib.Path | None,
         chain: tuple[str, ...]) -> tuple[dict, str]:
    """The merged raw mapping of a profile (its `base` chain resolved) and its display name."""
    text, src, here = _locate(name_or_path, relative_to)
    if src in chain:
        loop = " -> ".join(chain + (src,))
        raise HardwareProfileError(f"{chain[0]}: base: profiles inherit from each other in a "
                                   f"loop ({loop})")
    data = _read_yaml(text, src)
    if not isinstance(data, dict) or "base" not in data:
        return data, src
    base_ref = data["base"]
    if not isinstance(base_ref, str) or not base_ref.strip():
        raise HardwareProfileError(f"{src}: base: must be a profile name or a YAML path, "
                                   f"got {base_ref!r}")
    try:
        base, _ = _raw(base_ref, here, chain + (src,))
    except HardwareProfileError as err:
        if str(err).startswith(src):
            raise
        raise HardwareProfileError(f"{src}: base: cannot load '{base_ref}': {err}") from None
    if not isinstance(base, dict):
        raise HardwareProfileError(f"{src}: base: '{base_ref}' is not a profile mapping")
    merged = dict(base)
    for key, value in data.items():
        if key in _MERGED_MAPPINGS and isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged, src


def _locate(name_or_path: str | os.PathLike, relative_to: pathlib.Path | None
            ) -> tuple[str, str, pathlib.Path | None]:
    """(text, display name, directory for relative bases) of a shipped name or a path."""
    ref = os.fspath(name_or_path)
    shipped = _shipped_files()
    if ref in shipped:
        return shipped[ref].read_text(encoding="utf-8"), f"hardware_profiles/{ref}.yaml", None
    path = pathlib.Path(ref).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise HardwareProfileError(f"{_display(path)}: not a text (UTF-8) YAML file") from None
        return text, _display(path), path.parent
    if ref.endswith(_SUFFIXES) or os.sep in ref or "/" in ref:
        raise HardwareProfileError(f"{ref}: no such file")
    known = ", ".join(shipped) or "none"
    raise HardwareProfileError(f"unknown hardware '{ref}' (known: {known}; or give the path "
                               f"to a profile YAML file)")


@functools.lru_cache(maxsize=None)
def _load_shipped(name: str) -> HardwareProfile:
    return _load(name)


def _load(ref: str | os.PathLike) -> HardwareProfile:
    data, src = _raw(ref, None, ())
    hw = validate_profile(data, src)
    hw._origin = src
    return hw


def load_hardware(name_or_path: str | os.PathLike | HardwareProfile) -> HardwareProfile:
    """A validated profile: a shipped name (`list_hardware()`), a YAML path, or a profile
    (returned as is). Raises HardwareProfileError with a one-line message."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise HardwareProfileError(f"hardware must be a profile name or a YAML path, got "
                                   f"{type(name_or_path).__name__}")
    ref = os.fspath(name_or_path)
    if ref in _shipped_files():
        return _load_shipped(ref)
    return _load(ref)


def load_hardware_dict(data: Any, src: str = "<dict>") -> HardwareProfile:
    """A profile from an already-parsed mapping (no `base` resolution)."""
    return validate_profile(data, src)


def find_measurement(hw: HardwareProfile, model: str | None
                     ) -> tuple[Measurement, str] | None:
    """A measured joules-per-frame for `model` on `hw`: from the profile itself, else from a
    shipped measured profile whose `base` is this hardware. (measurement, where) or None."""
    if not model:
        return None
    if model in hw.measurements:
        return hw.measurements[model], hw.origin or hw.name
    for name in list_hardware():
        if not name.startswith("measured/"):
            continue
        other = load_hardware(name)
        if other.base == hw.name and model in other.measurements:
            return other.measurements[model], other.origin or name
    return None
