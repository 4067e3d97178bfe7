"""What counts as a user's bad input across snnsim's commands, and how it is said: one line
on stderr, exit code 2 (DESIGN.md "Conventions")."""
from __future__ import annotations

import importlib

# (module, exception) pairs: each names a bad input (unknown model, unreadable or non-finite
# checkpoint, weights whose activations overflow to NaN/inf, malformed profile, bad sequence,
# bad track argument, output folder that is not ours, unknown capture module). Anything else
# (a plain ValueError included) is a bug: it keeps its traceback and exit code 1.
_USER_ERRORS = (
    ("snnsim.models.registry", "UnknownModelError"),
    ("snnsim.models.checkpoint", "CheckpointError"),
    ("snnsim.counting", "NonFiniteActivationError"),
    ("snnsim.tracking.run", "TrackError"),
    ("snnsim.energy", "HardwareProfileError"),
    ("snnsim.tracking.errors", "SequenceError"),
    ("snnsim.io", "OutputError"),
    ("snnsim.pipeline.capture", "CaptureError"),
    ("snnsim.measure", "MeasurementUnavailable"),
    ("snnsim.datasets.errors", "DatasetError"),
)


def user_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The exception types that mean "bad input", plus a command's own `extra` ones."""
    found: list[type[BaseException]] = [FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                                        PermissionError, WeightsOptionError, HardwareOptionError]
    for module, name in _USER_ERRORS:
        found.append(getattr(importlib.import_module(module), name))
    return tuple(found) + extra


class WeightsOptionError(ValueError):
    """--weights names nothing usable (empty, a folder, no such file): one line, exit code 2."""


_WEIGHTS_CHOICES = "give default, random, golden or the path to a checkpoint file (.pth / .pt)"


def check_weights(value):
    """The one `--weights` check every command and job runs before any work: the keywords
    (None, 'default', 'random', 'golden') pass as they are; anything else must be an existing
    checkpoint file and comes back as its expanded path. An empty value (pathlib would read
    it as the current folder), a folder or a missing file is WeightsOptionError: one line
    naming the fix (exit code 2)."""
    import pathlib

    if value in (None, "default", "random", "golden"):
        return value
    if not str(value).strip():
        raise WeightsOptionError(f"--weights is empty; {_WEIGHTS_CHOICES}")
    try:
        path = pathlib.Path(value).expanduser()
        is_dir, is_file = path.is_dir(), path.is_file()
    except (OSError, RuntimeError) as exc:   # an unknown ~user, a name too long for the file system
        raise WeightsOptionError(f"--weights: cannot read '{value}' ({one_line(exc)}); {_WEIGHTS_CHOICES}") from None
    if is_dir:
        raise WeightsOptionError(f"--weights: '{value}' is a folder; {_WEIGHTS_CHOICES}")
    if not is_file:
        missing = next((p for p in reversed(path.parents) if not p.exists()), None)
        where = f" (folder '{missing}' does not exist)" if missing is not None else ""
        raise WeightsOptionError(f"--weights: no checkpoint file at '{value}'{where}; {_WEIGHTS_CHOICES}")
    return str(path)


class HardwareOptionError(ValueError):
    """--hardware names a profile twice or leaves a name empty: one line, exit code 2."""


def check_hardware(value) -> list[str]:
    """The one `--hardware` check: the comma-separated profiles (names or YAML paths), each
    loaded now (HardwareProfileError, one line: unknown name or malformed file) and each given
    once (HardwareOptionError). Returns the references, in order; [] for counts only."""
    from snnsim.energy import load_hardware

    if isinstance(value, str) and value.strip():
        parts = [h.strip() for h in value.split(",")]
        if not all(parts):   # ',' or 'loihi2,' or 'a,,b': a name left out, not counts only
            raise HardwareOptionError(f"--hardware {value!r} has an empty profile name; give names separated by "
                                      "single commas, or '' for counts only")
    refs = [h.strip() for h in (value or "").split(",") if h.strip()] if isinstance(value, str) else \
        [str(h).strip() for h in value if str(h).strip()]
    names: list[str] = []
    for ref in refs:
        hw = load_hardware(ref)
        if hw.name in names:
            raise HardwareOptionError(f"--hardware: profile '{hw.name}' is given twice; name each profile once")
        names.append(hw.name)
    return refs


def one_line(exc: BaseException) -> str:
    """The message on one line (whitespace collapsed), or the type's name when empty. An
    operating-system error names its path and what to check rather than an errno."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.strerror.lower()}: {exc.filename} (check the path in --out / the input arguments)"
    return " ".join(str(exc).split()) or type(exc).__name__
