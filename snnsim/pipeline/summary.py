"""One run summary: the core every command's summary.json holds (issue 13).

`RunSummary` is the typed core -- model, weights provenance, input, timesteps, frames, the
counts of a tracking frame and of a template pass apart, thop MACs, energy per tracking frame
and per template pass apart, what was not counted, notes -- and each command adds its own
sections beside it (extra keys are allowed and kept). Every command validates its summary
against this model before writing it, so a summary.json that does not hold the core is an
internal error, never a file.

The template pass is accounted the same way everywhere: `totals` and `energy` are per
tracking frame with the template's features cached (the search pass alone); `template` and
`energy_template` are per template pass; `template_passes` says how many the run made (a
profile 1, a track run one per template update). A command that also reports the template
cost spread over the frames does so in a section of its own, named so.

The JSON Schema shipped beside this module (run_summary.schema.json) is generated from the
model: `python -m snnsim.pipeline.summary --write` rewrites it; a test checks it is current.
"""
from __future__ import annotations

import json
import pathlib
import sys
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "snnsim.run_summary/1"
SCHEMA_FILE = pathlib.Path(__file__).with_name("run_summary.schema.json")
TEMPLATE_ACCOUNTING = ("totals and energy are per tracking frame with the template cached (the search pass "
                       "alone); template and energy_template are per template pass, made template_passes times")


class Weights(BaseModel):
    """Where the weights came from. trained is false for golden and random weights."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["default", "checkpoint", "golden", "random", "unknown"]
    path: Optional[str] = Field(None, description="the checkpoint file, absolute; null for golden / random")
    sha256: Optional[str] = Field(None, description="sha256 of the checkpoint file's bytes")
    trained: bool
    note: str = ""


class Counts(BaseModel):
    """Counts of one pass, per sample (see DESIGN, "Counting semantics")."""

    model_config = ConfigDict(extra="forbid")

    dense_macs: float
    mac_ops: float
    syn_events: float
    syn_ops: float
    spike_spike: float
    spike_mask: float
    neuron_updates: float
    spikes: float


EnergyTable = dict[str, dict[str, Optional[float]]]   # {hardware profile: {estimator: J, null if n/a}}


class RunSummary(BaseModel):
    """The shared core of summary.json; commands add sections beside it."""

    model_config = ConfigDict(extra="allow")

    schema_id: Literal["snnsim.run_summary/1"] = Field(SCHEMA_ID, alias="schema")
    command: Literal["profile", "compare", "demo", "track", "loihi"]
    model: str
    kind: Literal["spiking", "ann"]
    weights: Weights
    input: dict = Field(description="what was fed: built-in source or sequence, and the input shapes")
    timesteps: int = Field(ge=1)
    frames: int = Field(ge=0, description="tracking frames counted")
    totals: Counts = Field(description="mean per tracking frame, template cached (search pass alone)")
    template: Optional[Counts] = Field(description="per template pass; null when the model has none")
    template_passes: int = Field(ge=0)
    thop_macs: float = Field(description="conv / linear MACs of one tracking frame plus one template pass, "
                                         "as thop counts them (the papers' FLOPs)")
    energy: EnergyTable = Field(description="J per tracking frame, search pass alone")
    energy_template: Optional[EnergyTable] = Field(description="J per template pass")
    energy_precision: dict[str, dict[str, Optional[str]]] = Field(
        description="the number format each energy figure prices, {hardware profile: {estimator: format}} "
                    "(fp32, int8, a neuromorphic chip's fixed point...); null where the estimator does not "
                    "apply (no figure)")
    template_accounting: str = TEMPLATE_ACCOUNTING
    uncounted: list[dict] = Field(description="operators that ran with no formula, one row per (module, op): calls "
                                              "summed over every counted pass of the run (frames and template "
                                              "passes), the first few operand shapes; non-empty: partial totals")
    complete: bool
    notes: list[str]


def core_summary(command: str, *, model: str, kind: str, weights: dict, input: dict, timesteps: int,
                 frames: int, totals: dict, template: dict | None, template_passes: int, thop_macs: float,
                 energy: dict, energy_template: dict | None, energy_precision: dict, uncounted: list,
                 complete: bool, notes: list[str]) -> dict:
    """The core block as a plain dict in schema order (validated)."""
    core = {"schema": SCHEMA_ID, "command": command, "model": model, "kind": kind, "weights": weights,
            "input": input, "timesteps": int(timesteps), "frames": int(frames), "totals": _counts(totals),
            "template": _counts(template) if template is not None else None,
            "template_passes": int(template_passes), "thop_macs": float(thop_macs), "energy": energy,
            "energy_template": energy_template, "energy_precision": energy_precision,
            "template_accounting": TEMPLATE_ACCOUNTING,
            "uncounted": list(uncounted), "complete": bool(complete), "notes": list(notes)}
    RunSummary.model_validate(core)
    return core


def _counts(values: dict) -> dict:
    return {k: float(values.get(k, 0.0)) for k in Counts.model_fields}


def validate_summary(summary: dict) -> dict:
    """Check a command's summary against RunSummary (pydantic.ValidationError if the core is
    missing or malformed); returns it unchanged."""
    RunSummary.model_validate(summary)
    return summary


def weights_label(summary: dict) -> str:
    """The weights in words for tables and reports: the record's note, and 'untrained' for
    golden and random weights."""
    w = summary.get("weights")
    if not isinstance(w, dict):
        return str(w)
    label = w.get("note") or w.get("source", "unknown")
    if not w.get("trained") and "untrained" not in label:
        label += " [untrained]"
    return label


def schema_json() -> str:
    return json.dumps(RunSummary.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--write"]:
        print("usage: python -m snnsim.pipeline.summary --write   (regenerates run_summary.schema.json)",
              file=sys.stderr)
        return 2
    SCHEMA_FILE.write_text(schema_json())
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
