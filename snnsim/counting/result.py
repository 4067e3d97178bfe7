"""Profile: the counts of one profiled run as tidy pandas tables, per sample.

Tables:
- `layers`: one row per (module, operator, operand classes) — synaptic counts;
- `neurons`: one row per (neuron module, call, timestep);
- `by_kind`: totals per operator kind (conv / linear / matmul / attention);
- `uncounted`: operators with a weight operand or a synaptic name that have no formula, with
  their calls and operand shapes (never silently zero: a profile with any is `complete=False`).

`unseen_neurons` lists neuron modules of the model that no hook saw run (their updates and
spikes are missing, so the profile is not complete either).
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

import pandas as pd

from .adapters import NeuronStep
from .formats import SpikeFormat
from .formulas import OpCount

# spike_mask: element-wise spike operations (masks, gates, spike x spike Hadamard products,
# spike-driven token sums), one per nonzero product / accumulate (formulas.py).
COUNT_FIELDS = ("dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike", "spike_mask")
TOTAL_FIELDS = COUNT_FIELDS + ("neuron_updates", "spikes")
LAYER_COLUMNS = ["module", "module_type", "op", "kind", "operands", "calls", *COUNT_FIELDS,
                 "weight_numel", "in_numel", "out_numel", "spiking_input", "thop",
                 # nominal element-wise operations (zeros included) of spike_mask rows; the
                 # largest |spike level| among the row's spike operands; whether one was signed
                 "elementwise_ops", "max_level", "signed"]
NEURON_COLUMNS = ["module", "module_type", "framework", "order", "call", "t", "shape", "neurons", "spikes",
                  "spike_mass", "firing_rate", "mean_level", "mean_value", "levels", "quantum", "spiking"]
UNCOUNTED_COLUMNS = ["module", "op", "calls", "shapes"]
MAX_UNCOUNTED_SHAPES = 3   # operand-shape signatures kept per uncounted operator (a hint, not a census)


def module_names(seen: list[str], more) -> list[str]:
    """Neuron module names, in order, once: `seen` and then `more` (names, or {module: ...}
    rows as a summary's unseen_neurons lists them)."""
    return list(dict.fromkeys(list(seen) + [u["module"] if isinstance(u, dict) else str(u) for u in more]))


class UncountedTally:
    """The uncounted operators of a whole run, one meaning in every command: one row per
    (module, op), ``calls`` summed over every counted pass folded in (tracking frames and
    template passes alike), ``shapes`` the first few distinct operand-shape signatures. Memory
    is bounded by the number of distinct operators, not by the frames."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], dict] = {}

    def add(self, uncounted: pd.DataFrame) -> None:
        """Fold one pass's uncounted table (Profile.uncounted) in."""
        self.add_rows(uncounted.to_dict(orient="records"))

    def add_rows(self, rows: list[dict]) -> None:
        """Fold rows of the same shape in (another tally's rows(): calls add up)."""
        for row in rows:
            entry = self._rows.setdefault((row["module"], row["op"]),
                                          {"module": row["module"], "op": row["op"], "calls": 0, "shapes": []})
            entry["calls"] += int(row["calls"])
            for shape in str(row.get("shapes") or "").split("; "):
                if shape and shape not in entry["shapes"] and len(entry["shapes"]) < MAX_UNCOUNTED_SHAPES:
                    entry["shapes"].append(shape)

    def rows(self) -> list[dict]:
        return [{**e, "shapes": "; ".join(e["shapes"])} for e in self._rows.values()]

    def __len__(self) -> int:
        return len(self._rows)


@dataclass
class OpRecord:
    module: str
    module_type: str
    op: str
    count: OpCount
    calls: int
    thop: bool


@dataclass
class NeuronRecord:
    module: str
    module_type: str
    framework: str
    order: int          # position of the call among all neuron calls of the run
    call: int           # k-th call of this module
    step: NeuronStep
    fmt: SpikeFormat
    shape: tuple
    spiking: bool = True  # False: a readout emitting voltages (updates counted, no spikes)


@dataclass
class Profile:
    layers: pd.DataFrame
    neurons: pd.DataFrame
    uncounted: pd.DataFrame
    batch_size: int = 1
    spike_formats: list = field(default_factory=list)
    weight_sparsity: bool = False
    # parameters of the conv / linear / norm modules that ran, by module: thop's "Params"
    thop_param_sizes: dict = field(default_factory=dict)
    # neuron modules of the model no hook saw run: [{module, module_type, framework}]
    unseen_neurons: list = field(default_factory=list)

    # ------------------------------------------------------------ building
    @classmethod
    def from_records(cls, ops: list[OpRecord], neurons: list[NeuronRecord], uncounted: dict,
                     batch_size: int, formats, weight_sparsity: bool, thop_params: dict | None = None,
                     unseen_neurons: list | None = None) -> "Profile":
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        b = float(batch_size)
        # built column by column: a DataFrame from lists is several times faster than from
        # one dict per row, and this runs once per profiled frame
        counts = [r.count for r in ops]
        layers = {
            "module": [r.module for r in ops], "module_type": [r.module_type for r in ops],
            "op": [r.op for r in ops], "kind": [c.kind for c in counts], "operands": [c.operands for c in counts],
            "calls": [r.calls for r in ops],
            **{f: [getattr(c, f) / b for c in counts] for f in COUNT_FIELDS},
            "weight_numel": [c.weight_numel for c in counts],
            "in_numel": [c.in_numel / b for c in counts], "out_numel": [c.out_numel / b for c in counts],
            "spiking_input": ["spike" in c.operands for c in counts], "thop": [r.thop for r in ops],
            "elementwise_ops": [c.elementwise_ops / b for c in counts],
            "max_level": [int(c.max_level) for c in counts], "signed": [bool(c.signed) for c in counts],
        }
        steps = [r.step for r in neurons]
        per_neuron = [s.neurons or 1 for s in steps]   # a zero-neuron step's numerators are 0: its rates are 0
        neuron_cols = {
            "module": [r.module for r in neurons], "module_type": [r.module_type for r in neurons],
            "framework": [r.framework for r in neurons], "order": [r.order for r in neurons],
            "call": [r.call for r in neurons], "t": [s.t for s in steps],
            "shape": ["x".join(map(str, r.shape)) for r in neurons],
            "neurons": [s.neurons / b for s in steps], "spikes": [s.spikes / b for s in steps],
            "spike_mass": [s.spike_mass / b for s in steps],
            "firing_rate": [s.spikes / n for s, n in zip(steps, per_neuron)],
            "mean_level": [s.spike_mass / n for s, n in zip(steps, per_neuron)],
            "mean_value": [s.value_sum / n for s, n in zip(steps, per_neuron)],
            "levels": [r.fmt.levels for r in neurons], "quantum": [r.fmt.q for r in neurons],
            "spiking": [r.spiking for r in neurons],
        }
        unc_rows = []
        for (m, op), v in uncounted.items():
            calls, shapes = (v, ()) if isinstance(v, int) else v
            unc_rows.append({"module": m, "op": op, "calls": int(calls), "shapes": "; ".join(shapes)})
        return cls(pd.DataFrame(layers, columns=LAYER_COLUMNS),
                   pd.DataFrame(neuron_cols, columns=NEURON_COLUMNS),
                   pd.DataFrame(unc_rows, columns=UNCOUNTED_COLUMNS),
                   batch_size, list(formats), weight_sparsity, dict(thop_params or {}),
                   [dict(u) for u in (unseen_neurons or [])])

    # ------------------------------------------------------------- views
    @property
    def totals(self) -> dict[str, float]:
        out = {f: float(self.layers[f].sum()) for f in COUNT_FIELDS}
        out["neuron_updates"] = float(self.neurons["neurons"].sum())
        out["spikes"] = float(self.neurons["spikes"].sum())
        return out

    @property
    def thop_macs(self) -> float:
        """MACs of conv and linear modules only: the number tracking papers call FLOPs."""
        return float(self.layers.loc[self.layers["thop"], "dense_macs"].sum())

    @property
    def thop_params(self) -> int:
        return int(sum(self.thop_param_sizes.values()))

    @property
    def timesteps(self) -> int:
        return int(self.neurons["t"].max()) + 1 if len(self.neurons) else 1

    @property
    def is_spiking(self) -> bool:
        """True when some neuron module emits spikes (voltage readouts alone do not)."""
        if not len(self.neurons):
            return False
        if "spiking" not in self.neurons.columns:
            return True
        return bool(self.neurons["spiking"].astype(bool).any())

    @property
    def complete(self) -> bool:
        """False when some operator ran uncounted or some neuron module ran unseen: the
        totals then leave something out (`partial_note` says what)."""
        return not len(self.uncounted) and not self.unseen_neurons

    @property
    def partial_note(self) -> str | None:
        """'partial: ...' naming what the totals leave out, or None when complete."""
        return partial_note(self.uncounted.to_dict(orient="records"), self.unseen_neurons)

    @property
    def non_spiking_neurons(self) -> list[str]:
        """Neuron modules recorded as non-spiking readouts (they emit voltages)."""
        if not len(self.neurons) or "spiking" not in self.neurons.columns:
            return []
        return list(dict.fromkeys(self.neurons.loc[~self.neurons["spiking"].astype(bool), "module"]))

    def graded_spike_layers(self) -> pd.DataFrame:
        """Layers that received multi-level (|level| > 1: graded spikes, sums of spikes) or
        signed spikes, with the largest |level| seen: [module, op, operands, max_level, signed]."""
        cols = ["module", "op", "operands", "max_level", "signed"]
        L = self.layers
        if not len(L) or "max_level" not in L.columns:
            return pd.DataFrame(columns=cols)
        hit = (L["max_level"] > 1) | L["signed"].astype(bool)
        return L.loc[hit, cols].reset_index(drop=True)

    @property
    def by_kind(self) -> pd.DataFrame:
        return self.layers.groupby("kind", as_index=False)[list(COUNT_FIELDS)].sum()

    def rollup(self, depth: int | None = None) -> pd.DataFrame:
        """Counts summed per module and each of its parents (depth limits the path length).
        Row '' is the whole model."""
        rows: dict[str, dict[str, float]] = {}
        for rec in self.layers.itertuples(index=False):
            parts = rec.module.split(".") if rec.module else []
            prefixes = [""] + [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            for prefix in prefixes:
                if depth is not None and prefix and prefix.count(".") + 1 > depth:
                    continue
                acc = rows.setdefault(prefix, dict.fromkeys(COUNT_FIELDS, 0.0))
                for f in COUNT_FIELDS:
                    acc[f] += getattr(rec, f)
        df = pd.DataFrame([{"module": k, **v} for k, v in rows.items()], columns=["module", *COUNT_FIELDS])
        return df.sort_values("module", ignore_index=True)

    def thop_view(self) -> pd.DataFrame:
        return self.layers[self.layers["thop"]].reset_index(drop=True)

    def neuron_summary(self) -> pd.DataFrame:
        """Per neuron module and timestep, summed over calls."""
        if not len(self.neurons):
            return pd.DataFrame(columns=["module", "t", "neurons", "spikes", "spike_mass", "firing_rate", "mean_level"])
        g = self.neurons.groupby(["module", "t"], as_index=False, sort=False)[["neurons", "spikes", "spike_mass"]].sum()
        g["firing_rate"] = g["spikes"] / g["neurons"]
        g["mean_level"] = g["spike_mass"] / g["neurons"]
        return g

    # ------------------------------------------------------------- output
    def summary(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "spike_formats": [{"q": f.q, "levels": f.levels, **({"signed": True} if f.signed else {})}
                              for f in self.spike_formats],
            "weight_sparsity": self.weight_sparsity,
            "timesteps": self.timesteps,
            "totals": self.totals,
            "thop_macs": self.thop_macs,
            "thop_params": self.thop_params,
            "graded_spike_layers": self.graded_spike_layers().to_dict(orient="records"),
            "uncounted": self.uncounted.to_dict(orient="records"),
            "complete": self.complete,
            "unseen_neurons": [dict(u) for u in self.unseen_neurons],
            "non_spiking_neurons": self.non_spiking_neurons,
        }

    def to_json(self, path=None) -> str:
        text = json.dumps(self.summary(), indent=2)
        if path is not None:
            pathlib.Path(path).write_text(text + "\n")
        return text

    def to_csv(self, directory) -> list[pathlib.Path]:
        """Write layers.csv, neurons.csv, by_kind.csv (and uncounted.csv when any)."""
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        written = []
        for name, df in (("layers", self.layers), ("neurons", self.neurons), ("by_kind", self.by_kind)):
            df.to_csv(d / f"{name}.csv", index=False)
            written.append(d / f"{name}.csv")
        if len(self.uncounted):
            self.uncounted.to_csv(d / "uncounted.csv", index=False)
            written.append(d / "uncounted.csv")
        return written


def partial_note(uncounted: list[dict], unseen_neurons: list | None = None) -> str | None:
    """One sentence saying what a partial total leaves out: the operators that ran with no
    formula (by name, with their modules) and the neuron modules no hook saw; None when
    nothing is left out."""
    parts = []
    ops = sorted({str(r.get("op")) + (f" in {r['module']}" if r.get("module") else "") for r in uncounted or []})
    if ops:
        parts.append(f"{len(ops)} operator(s) not counted ({', '.join(ops)})")
    unseen = [u.get("module", u) if isinstance(u, dict) else str(u) for u in (unseen_neurons or [])]
    if unseen:
        parts.append(f"{len(unseen)} neuron module(s) never seen running ({', '.join(map(str, unseen))})")
    return ("partial: " + "; ".join(parts)) if parts else None
