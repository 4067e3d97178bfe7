"""Reading the counting engine's tables -- the only thing the estimators know about a model.

The contract (see DESIGN.md, "Counting semantics"): an object with
- `layers`: one row per (module, op) with the LAYER_COLUMNS below, per sample;
- `neurons`: one row per (module, t) -- or (module, call, t) -- with the NEURON_COLUMNS
  below, per sample (empty for ANNs);
- `totals` (dict), `timesteps` (int), `is_spiking` (bool).
Nothing here imports torch: estimators read tables only.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

LAYER_COLUMNS = ("module", "module_type", "op", "kind", "calls", "dense_macs", "mac_ops",
                 "syn_events", "syn_ops", "spike_spike", "weight_numel", "in_numel",
                 "out_numel", "spiking_input", "thop")
# Optional layer columns (0 when a table predates them): element-wise spike operations --
# masks, gates, spike x spike Hadamard products, spike-driven token sums, one per nonzero
# product / accumulate -- and their nominal count (every element, zeros included).
OPTIONAL_LAYER_COLUMNS = ("spike_mask", "elementwise_ops")
NEURON_COLUMNS = ("module", "module_type", "t", "neurons", "spikes", "spike_mass")
_LAYER_NUMERIC = ("calls", "dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike",
                  "weight_numel", "in_numel", "out_numel")
_NEURON_NUMERIC = ("t", "neurons", "spikes", "spike_mass")
VIEWS = ("full", "thop")


@dataclass(frozen=True)
class CountTables:
    """The validated, numeric form of a Profile the estimators work on."""

    layers: pd.DataFrame      # LAYER_COLUMNS, numeric columns as float, bools as bool
    neurons: pd.DataFrame     # NEURON_COLUMNS (+ levels when given), numeric as float
    timesteps: int
    is_spiking: bool
    view: str
    model: str | None

    def module_order(self) -> list[str]:
        """Modules in order of first appearance: synaptic layers, then neuron modules."""
        seen: dict[str, None] = {}
        for m in list(self.layers["module"]) + list(self.neurons["module"]):
            seen.setdefault(m, None)
        return list(seen)

    def module_types(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for df in (self.layers, self.neurons):
            for m, t in zip(df["module"], df["module_type"]):
                out.setdefault(m, t)
        return out

    def neurons_at_one_t(self) -> pd.Series:
        """Neurons per module at one timestep: rows of the same (module, t) -- several calls
        of one module, e.g. two branches -- are added, then the largest timestep is taken."""
        if not len(self.neurons):
            return pd.Series(dtype=float)
        per_t = self.neurons.groupby(["module", "t"], sort=False)["neurons"].sum()
        return per_t.groupby(level=0, sort=False).max()

    def max_levels(self) -> int:
        """The largest spike level count D among the neuron modules (1 when unknown)."""
        if "levels" in self.neurons.columns and len(self.neurons):
            vals = pd.to_numeric(self.neurons["levels"], errors="coerce").dropna()
            if len(vals):
                return max(1, int(vals.max()))
        return 1


def _missing(df: pd.DataFrame, cols: tuple[str, ...]) -> list[str]:
    return [c for c in cols if c not in df.columns]


def read_counts(profile, view: str = "full", model: str | None = None) -> CountTables:
    """Check a Profile-like object against the contract and return its tables.

    view 'full' keeps every operator; view 'thop' keeps only rows flagged `thop` (conv and
    linear modules, as the tracking papers count "FLOPs"). Neuron rows are kept in both.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view '{view}' (known: {', '.join(VIEWS)})")
    layers = getattr(profile, "layers", None)
    if not isinstance(layers, pd.DataFrame):
        raise ValueError("counts: profile.layers must be a pandas DataFrame (one row per "
                         f"module and op), got {type(layers).__name__}")
    lack = _missing(layers, LAYER_COLUMNS)
    if lack:
        raise ValueError(f"counts: profile.layers lacks column(s) {', '.join(lack)}")
    neurons = getattr(profile, "neurons", None)
    if neurons is None or (isinstance(neurons, pd.DataFrame) and neurons.empty
                           and _missing(neurons, NEURON_COLUMNS)):
        neurons = pd.DataFrame({c: pd.Series(dtype=float if c in _NEURON_NUMERIC else object)
                                for c in NEURON_COLUMNS})
    if not isinstance(neurons, pd.DataFrame):
        raise ValueError(f"counts: profile.neurons must be a pandas DataFrame, got "
                         f"{type(neurons).__name__}")
    lack = _missing(neurons, NEURON_COLUMNS)
    if lack:
        raise ValueError(f"counts: profile.neurons lacks column(s) {', '.join(lack)}")

    layers = layers.copy()
    for c in OPTIONAL_LAYER_COLUMNS:
        if c not in layers.columns:
            layers[c] = 0.0
    for c in _LAYER_NUMERIC + OPTIONAL_LAYER_COLUMNS:
        layers[c] = pd.to_numeric(layers[c], errors="raise").astype(float)
    for c in ("spiking_input", "thop"):
        layers[c] = layers[c].astype(bool)
    layers["module"] = layers["module"].astype(str)
    neg = [c for c in _LAYER_NUMERIC + OPTIONAL_LAYER_COLUMNS if (layers[c] < 0).any()]
    if neg:
        raise ValueError(f"counts: profile.layers has negative values in {', '.join(neg)}")
    neurons = neurons.copy()
    for c in _NEURON_NUMERIC:
        neurons[c] = pd.to_numeric(neurons[c], errors="raise").astype(float)
    neurons["module"] = neurons["module"].astype(str)
    if view == "thop":
        layers = layers[layers["thop"]]
    layers = layers.reset_index(drop=True)
    neurons = neurons.reset_index(drop=True)

    timesteps = getattr(profile, "timesteps", None)
    if timesteps is None:
        timesteps = int(neurons["t"].nunique()) if len(neurons) else 1
    is_spiking = getattr(profile, "is_spiking", None)
    if is_spiking is None:
        is_spiking = len(neurons) > 0
    if model is None:
        model = getattr(profile, "model", None) or getattr(profile, "name", None)
        model = model if isinstance(model, str) else None
    return CountTables(layers=layers, neurons=neurons, timesteps=max(1, int(timesteps)),
                       is_spiking=bool(is_spiking), view=view, model=model)


def group_sum(df: pd.DataFrame, columns: list[str], order: list[str]) -> pd.DataFrame:
    """Sum `columns` per module, rows in `order` (modules absent from df are skipped)."""
    if df.empty:
        return pd.DataFrame({"module": pd.Series(dtype=object),
                             **{c: pd.Series(dtype=float) for c in columns}})
    g = df.groupby("module", sort=False)[columns].sum()
    present = [m for m in order if m in g.index]
    return g.loc[present].reset_index()

