"""Errors of a dataset run."""
from __future__ import annotations


class SequenceFailure(ValueError):
    """One sequence cannot be run (an unreadable frame, broken ground truth...): it is listed in
    failures.csv with this one-line reason and the other sequences go on."""


class DatasetError(ValueError):
    """A bad argument of the dataset run itself (not of one sequence): one line, exit 2."""
