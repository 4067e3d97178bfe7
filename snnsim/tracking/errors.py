"""Errors raised by the tracking package.

Every message is one line that names the offending path (and line, where there is one) and
says how to fix it, so the CLI can print it as is and exit with code 2.
"""
from __future__ import annotations


class SequenceError(ValueError):
    """A sequence folder, ground-truth file or frame that cannot be used as given."""
