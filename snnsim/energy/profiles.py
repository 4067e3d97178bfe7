"""Finding and reading hardware profiles.

Shipped profiles live in the `snnsim.hardware_profiles` package (one YAML file each; measured
ones under `measured/`). A user profile is any YAML path: a regular file (never a folder or a
device, checked before it is opened) of at most `MAX_PROFILE_BYTES`, whose `name` is its own
(not a shipped profile's). Files are read with a `yaml.SafeLoader` that also refuses a mapping
key given twice: a profile is data, never code, and no number in it is silently dropped.
Every loaded profile knows where it came from (`HardwareProfile.provenance()`: file, sha256 of
its bytes, and the same for each base).

A profile may name a `base` profile (shipped name, or a path relative to its own file): it then
starts from the base's fields, its own constants / power modes / measurements / pricing are
merged over the base's (key by key), and every other field it sets replaces the base's. That is
how a measured profile adds NVML measurements to a spec-sheet profile without copying it.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import os
import pathlib
import stat
import typing
from typing import Any

import yaml

from .schema import HardwareProfile, HardwareProfileError, Measurement, validate_profile

_MERGED_MAPPINGS = ("constants", "power_modes", "measurements", "pricing")
_SUFFIXES = (".yaml", ".yml")

# A profile is a few KiB of YAML (the largest shipped one is under 4 KiB). A file far above
# that is not a profile (a wrong path, a data dump), and PyYAML is slow on big input (a 50 MB
# file parses for ~20 s), so a larger file is refused from its size alone, before it is read.
MAX_PROFILE_BYTES = 1024 * 1024

# A `base` chain longer than this is a mistake (a measured profile on a spec-sheet one is two
# deep) or a loop through linked folders that never repeats a path; refused, not recursed.
MAX_BASE_DEPTH = 16

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclasses.dataclass(frozen=True)
class _Source:
    """One profile file as read: its text and the facts provenance needs."""

    text: str
    src: str                      # how messages name it
    here: pathlib.Path | None     # where its relative `base` paths start
    shipped: bool
    path: str | None              # absolute path of a user's file (None when shipped)
    sha256: str                   # of the file's bytes


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


class _ChainError(HardwareProfileError):
    """A fault of the whole `base` chain (a loop, too deep), said once for its first file."""


class _DuplicateKey(Exception):
    """A mapping key given more than once; str() is the rule, without the file."""


class _ProfileLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (plain data: no Python tags) that refuses a mapping key given twice,
    at any depth. Plain YAML lets the last one win silently, which drops what the author wrote
    first (a whole `constants` block, say). A key a `<<` merge brings in and the mapping then
    sets itself is an override, not a duplicate."""

    def construct_document(self, node):
        self._check_duplicate_keys(node)
        return super().construct_document(node)

    def _check_duplicate_keys(self, root) -> None:
        found = []                                  # (second line, key, where, lines)
        visited: set[int] = set()                   # aliases: each node is checked once
        stack = [(root, "")]
        while stack:
            node, where = stack.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node.value))
                continue
            if not isinstance(node, yaml.MappingNode):
                continue
            lines: dict[Any, list[int]] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    stack.append((value_node, where))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    continue                        # an unhashable key fails on its own
                key = self.construct_object(key_node)
                try:
                    lines.setdefault(key, []).append(key_node.start_mark.line + 1)
                except TypeError:
                    continue
                stack.append((value_node, f"{where}.{key}" if where else str(key)))
            for key, at in lines.items():
                if len(at) > 1:
                    found.append((at[1], key, where, at))
        if found:
            _, key, where, at = min(found, key=lambda f: f[0])
            times = "twice" if len(at) == 2 else f"{len(at)} times"
            shown = " and ".join(map(str, at)) if len(at) == 2 else \
                ", ".join(map(str, at[:-1])) + f" and {at[-1]}"
            raise _DuplicateKey((f"{where}: " if where else "")
                                + f"key '{key}' appears {times} (lines {shown}); keep one")


def _read_yaml(text: str, src: str) -> Any:
    loader = _ProfileLoader(text)
    try:
        return loader.get_single_data()
    except _DuplicateKey as dup:
        raise HardwareProfileError(f"{src}: {dup}") from None
    except RecursionError:
        raise HardwareProfileError(f"{src}: not valid YAML for a profile: nested too deeply") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise HardwareProfileError(f"{src}: not valid YAML: {problem}{where}") from None
    finally:
        loader.dispose()


def _display(path: pathlib.Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # other drive (Windows)
        return str(path)
    return str(path.resolve()) if rel.startswith("..") else rel


def _raw(name_or_path: str | os.PathLike, relative_to: pathlib.Path | None,
         chain: tuple[str, ...]) -> tuple[Any, list[tuple[_Source, Any, str]]]:
    """The merged raw mapping of a profile (its `base` chain resolved) and the files it was
    read from: [(source, that file's own `name` or None, how it was referred to)], the profile's
    own file first, then its base, its base's base..."""
    ref = os.fspath(name_or_path)
    source = _locate(ref, relative_to)
    src = source.src
    if src in chain:
        loop = " -> ".join(chain + (src,))
        raise _ChainError(f"{chain[0]}: base: profiles inherit from each other in a "
                          f"loop ({loop})")
    if len(chain) > MAX_BASE_DEPTH:
        raise _ChainError(f"{chain[0]}: base: more than {MAX_BASE_DEPTH} profiles deep "
                          f"({chain[1]} -> ... -> {src}); build on fewer profiles")
    data = _read_yaml(source.text, src)
    own_name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(data, dict) or "base" not in data:
        return data, [(source, own_name, ref)]
    base_ref = data["base"]
    if not isinstance(base_ref, str) or not base_ref.strip():
        raise HardwareProfileError(f"{src}: base: must be a profile name or a YAML path, "
                                   f"got {base_ref!r}")
    try:
        base, base_files = _raw(base_ref, source.here, chain + (src,))
    except HardwareProfileError as err:
        if isinstance(err, _ChainError) or str(err).startswith(src):
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
    return merged, [(source, own_name, ref), *base_files]


def _shipped_source(name: str, resource) -> _Source:
    data = resource.read_bytes()
    return _Source(text=data.decode("utf-8"), src=f"hardware_profiles/{name}.yaml", here=None,
                   shipped=True, path=None, sha256=hashlib.sha256(data).hexdigest())


def _shipped_at(path: pathlib.Path) -> str | None:
    """The shipped name of the file at `path` when it is a shipped file itself (given by path)."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return None
    for name, resource in _shipped_files().items():
        if isinstance(resource, pathlib.Path) and resource.resolve() == resolved:
            return name
    return None


def _not_regular(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _refuse_not_regular(shown: str, what: str) -> typing.NoReturn:
    raise HardwareProfileError(f"{shown}: not a regular file ({what}); give the path to a "
                               f"profile YAML file")


def _refuse_size(shown: str, size: int) -> typing.NoReturn:
    raise HardwareProfileError(f"{shown}: {size:,} bytes, above the {MAX_PROFILE_BYTES:,}-byte "
                               f"({MAX_PROFILE_BYTES // 1024**2} MiB) limit for a hardware profile "
                               f"(a profile is a few KiB of YAML); give the path to a profile YAML "
                               f"file")


def _user_source(path: pathlib.Path, st: os.stat_result) -> _Source:
    """A user's file, after its stat said what it is: never opened unless it is a regular file
    within the size limit, and read through a descriptor that is checked again (the path may
    have been swapped for something else in between)."""
    shown = _display(path)
    what = _not_regular(st.st_mode)
    if what is not None:
        _refuse_not_regular(shown, what)
    if st.st_size > MAX_PROFILE_BYTES:
        _refuse_size(shown, st.st_size)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise HardwareProfileError(f"{shown}: cannot read the file "
                                   f"({(err.strerror or str(err)).lower()})") from None
    with os.fdopen(fd, "rb") as fh:
        what = _not_regular(os.fstat(fh.fileno()).st_mode)
        if what is not None:
            _refuse_not_regular(shown, what)
        data = fh.read(MAX_PROFILE_BYTES + 1)
    if len(data) > MAX_PROFILE_BYTES:
        _refuse_size(shown, len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise HardwareProfileError(f"{shown}: not a text (UTF-8) YAML file") from None
    return _Source(text=text, src=shown, here=path.parent, shipped=False,
                   path=str(path.resolve()), sha256=hashlib.sha256(data).hexdigest())


def _locate(name_or_path: str | os.PathLike, relative_to: pathlib.Path | None) -> _Source:
    """The file of a shipped name or a path, read (see `_user_source` for what is refused)."""
    ref = os.fspath(name_or_path)
    shipped = _shipped_files()
    if ref in shipped:
        return _shipped_source(ref, shipped[ref])
    path = pathlib.Path(ref).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    looks_like_path = ref.endswith(_SUFFIXES) or os.sep in ref or "/" in ref
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError, ValueError):
        st = None
    except OSError as err:
        if looks_like_path:
            raise HardwareProfileError(f"{ref}: cannot read the file "
                                       f"({(err.strerror or str(err)).lower()})") from None
        st = None
    if st is not None and (looks_like_path or stat.S_ISREG(st.st_mode)):
        name = _shipped_at(path) if stat.S_ISREG(st.st_mode) else None
        if name is not None:               # a shipped file given by its path: that profile
            return _shipped_source(name, shipped[name])
        return _user_source(path, st)
    if looks_like_path:
        raise HardwareProfileError(f"{ref}: no such file")
    known = ", ".join(shipped) or "none"
    there = f": '{ref}' is {_not_regular(st.st_mode)}" if st is not None else ""
    raise HardwareProfileError(f"unknown hardware '{ref}' (known: {known}; or give the path "
                               f"to a profile YAML file{there})")


@functools.lru_cache(maxsize=None)
def _load_shipped(name: str) -> HardwareProfile:
    return _load(name)


@functools.lru_cache(maxsize=None)
def _shipped_profile_names() -> frozenset[str]:
    """Every name a shipped profile goes by: its file name (`list_hardware()`) and its `name`."""
    names = set(_shipped_files())
    for ref in list(names):
        try:
            names.add(_load_shipped(ref).name)
        except HardwareProfileError:
            pass                            # reported when that profile itself is loaded
    return frozenset(names)


def _check_own_name(hw: HardwareProfile, files: list[tuple[_Source, Any, str]]) -> None:
    """A user's profile must not go by a shipped profile's name: its numbers would be reported
    under the shipped name (and read as the shipped citations)."""
    source, own_name, _ = files[0]
    if source.shipped or hw.name not in _shipped_profile_names():
        return
    if own_name is None and len(files) > 1:
        raise HardwareProfileError(
            f"{source.src}: name: missing, so the profile would take the name '{hw.name}' of its "
            f"base, a shipped profile's; give your profile its own name (name: ...)")
    shipped = _shipped_files().get(hw.name)
    copy = (shipped is not None
            and hashlib.sha256(shipped.read_bytes()).hexdigest() == source.sha256)
    hint = (f"this file is a copy of it: name the shipped profile ('{hw.name}') instead of the "
            f"file, or give " if copy else "give ")
    raise HardwareProfileError(
        f"{source.src}: name: '{hw.name}' is a shipped profile's; {hint}your profile its own "
        f"name (it may start from the shipped one with base: {hw.name})")


def _load(ref: str | os.PathLike) -> HardwareProfile:
    data, files = _raw(ref, None, ())
    top = files[0][0]
    hw = validate_profile(data, top.src)
    _check_own_name(hw, files)
    hw._origin = top.src
    hw._source_path = top.path
    hw._sha256 = top.sha256
    hw._shipped = top.shipped
    hw._bases = tuple({"ref": base_ref, "name": base_name if isinstance(base_name, str) else None,
                       "shipped": s.shipped,
                       "file": s.path or s.src, "sha256": s.sha256}
                      for s, base_name, base_ref in files[1:])
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
