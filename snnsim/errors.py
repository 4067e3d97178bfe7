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
    ("snnsim.analysis.capture", "CaptureError"),
    ("snnsim.measure", "MeasurementUnavailable"),
)


def user_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The exception types that mean "bad input", plus a command's own `extra` ones."""
    found: list[type[BaseException]] = [FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                                        PermissionError, WeightsOptionError]
    for module, name in _USER_ERRORS:
        found.append(getattr(importlib.import_module(module), name))
    return tuple(found) + extra


class WeightsOptionError(ValueError):
    """--weights names nothing usable (empty, a folder): one line, exit code 2."""


def check_weights_option(value) -> None:
    """The `--weights` problems every command words the same way: an empty value (pathlib
    would read it as the current folder) and a folder. None means the shipped weights."""
    import pathlib

    choices = "give random, golden or the path to a checkpoint file (.pth / .pt)"
    if value is not None and not str(value).strip():
        raise WeightsOptionError(f"--weights is empty; {choices}, or leave --weights out for the model's shipped "
                                 f"weights")
    if value not in (None, "default", "random", "golden") and pathlib.Path(value).expanduser().is_dir():
        raise WeightsOptionError(f"--weights: '{value}' is a folder; {choices}")


def one_line(exc: BaseException) -> str:
    """The message on one line (whitespace collapsed), or the type's name when empty. An
    operating-system error names its path and what to check rather than an errno."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.strerror.lower()}: {exc.filename} (check the path in --out / the input arguments)"
    return " ".join(str(exc).split()) or type(exc).__name__
