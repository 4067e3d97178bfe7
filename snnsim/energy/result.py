"""`Energy`: what every estimator returns."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

BASE_COLUMNS = ["module", "module_type", "compute_J", "memory_J", "comm_J", "total_J"]


@dataclass
class Energy:
    """Energy of one model under one estimator on one hardware profile, per sample (frame).

    layers      per-module table: module, module_type, compute_J, memory_J, comm_J, total_J
                (total = compute + memory + comm) plus estimator-specific columns.
    total_j     joules per sample; None when the estimator does not apply (never 0 for that).
    omitted     sentences: what this estimate leaves out.
    assumptions sentences: what it assumes (constants used, modelling choices).
    applicable  False when the model cannot run on this hardware under this estimator;
                `reason` then says why.
    details     estimator-specific facts (Loihi mapping verdict, GPU time and power mode...).
    complete    False when the counts it prices leave something out -- operators that ran
                with no counting formula, neuron modules no hook saw: the total is then a
                lower bound, and `partial` (also the first sentence of `omitted`) names them.
    not_counted what is left out: "op in module" per uncounted operator, "neuron module" per
                unseen neuron module.
    """

    estimator: str
    hardware: str
    applicable: bool
    total_j: float | None
    layers: pd.DataFrame
    omitted: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    complete: bool = True
    not_counted: list[str] = field(default_factory=list)
    partial: str | None = None

    @property
    def total_mj(self) -> float | None:
        return None if self.total_j is None else self.total_j * 1e3

    def mark_partial(self, note: str, not_counted: list[str]) -> "Energy":
        """Mark this estimate partial: `note` ('partial: ...') leads `omitted` (replacing an
        earlier partial note); idempotent."""
        self.complete = False
        self.partial = note
        self.not_counted = list(dict.fromkeys(list(self.not_counted) + list(not_counted)))
        self.omitted = [note] + [o for o in self.omitted if not str(o).startswith("partial: ")]
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the per-layer table is left out; see `layers`)."""
        return {"estimator": self.estimator, "hardware": self.hardware,
                "applicable": self.applicable, "total_j": self.total_j,
                "reason": self.reason, "omitted": list(self.omitted),
                "assumptions": list(self.assumptions), "details": _jsonable(self.details),
                "complete": self.complete, "partial": self.partial, "not_counted": list(self.not_counted)}

    def __repr__(self) -> str:
        if not self.applicable:
            return (f"Energy({self.estimator} on {self.hardware}: not applicable - "
                    f"{self.reason})")
        return (f"Energy({self.estimator} on {self.hardware}: {self.total_j:.6g} J per sample"
                + ("" if self.complete else " (partial, a lower bound)") + f", {len(self.layers)} modules)")


def not_applicable(estimator: str, hardware: str, reason: str,
                   omitted: list[str] | None = None) -> Energy:
    return Energy(estimator=estimator, hardware=hardware, applicable=False, total_j=None,
                  layers=pd.DataFrame(columns=BASE_COLUMNS), omitted=list(omitted or []),
                  assumptions=[], reason=reason)


def finish_table(df: pd.DataFrame, types: dict[str, str], extra: list[str]) -> pd.DataFrame:
    """Order the columns (base first), fill module_type, compute total_J."""
    df = df.copy()
    for c in ("compute_J", "memory_J", "comm_J"):
        if c not in df.columns:
            df[c] = 0.0
    df["module_type"] = [types.get(m, "") for m in df["module"]]
    df["total_J"] = df["compute_J"] + df["memory_J"] + df["comm_J"]
    cols = BASE_COLUMNS + [c for c in extra if c in df.columns and c not in BASE_COLUMNS]
    return df[cols].reset_index(drop=True)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
