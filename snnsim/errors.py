"""What counts as a user's bad input across snnsim's commands, and how it is said: one line
on stderr, exit code 2 (DESIGN.md "Conventions")."""
from __future__ import annotations

import importlib

# (module, exception) pairs: each names a bad input (unknown model, unreadable checkpoint,
# malformed profile, bad sequence, output folder that is not ours, unknown capture module).
_USER_ERRORS = (
    ("snnsim.models.registry", "UnknownModelError"),
    ("snnsim.models.checkpoint", "CheckpointError"),
    ("snnsim.energy", "HardwareProfileError"),
    ("snnsim.tracking.errors", "SequenceError"),
    ("snnsim.analysis.outputs", "OutputDirError"),
    ("snnsim.analysis.capture", "CaptureError"),
    ("snnsim.measure", "MeasurementUnavailable"),
)


def user_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The exception types that mean "bad input", plus a command's own `extra` ones."""
    found: list[type[BaseException]] = [FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                                        PermissionError]
    for module, name in _USER_ERRORS:
        found.append(getattr(importlib.import_module(module), name))
    return tuple(found) + extra


def one_line(exc: BaseException) -> str:
    """The message on one line (whitespace collapsed), or the type's name when empty. An
    operating-system error names its path and what to check rather than an errno."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.strerror.lower()}: {exc.filename} (check the path in --out / the input arguments)"
    return " ".join(str(exc).split()) or type(exc).__name__
