"""Per-frame count tables aggregated as they stream: memory stays flat whatever the number of
frames, and the energy of the aggregate is the mean of the per-frame energies.

A tracker (or the Loihi fidelity run) counts one frame at a time; keeping every frame's tables
grows without bound. :class:`FrameMean` keeps, instead, running sums -- exact: integer-valued
counts are added as int64, anything else as float64 -- grouped by the frame's *structure*.

Why group? The estimators are linear in the spike-dependent counts (syn_events, syn_ops,
spike_spike, spikes, spike_mass) only while everything else is fixed: memory-aware decides
DRAM spills and SRAM sizes from weight_numel / in_numel / out_numel / calls and the largest
spike level, the Loihi capacity verdict from output sizes and neurons at one timestep, the GPU
roofline takes a maximum of compute and memory time per operator from dense_macs and sizes.
Those are the *structure* of a frame (every column other than the spike-dependent ones).
Frames of one structure have identical structure columns, so the estimate of their mean
table equals the mean of their estimates (the rest is linear); the energy over all frames is
the frame-weighted mean over the groups. Real runs have one structure (fixed input size, same
graph every frame). At most ``max_groups`` structures are kept exactly; frames of further new
structures are pooled into one table of per-row sums (bounded by the distinct rows), whose
energy is that of their mean counts -- exact for ac-mac and synop, an approximation of the
fits / spill / roofline decisions otherwise; the estimate's assumptions say so.

Nothing here imports torch: it reads tables (the contract of :mod:`snnsim.energy.counts`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd

__all__ = ["FrameMean", "MeanCounts", "LAYER_EVENTS", "LAYER_MAXIMA", "NEURON_EVENTS", "SIZE_COLUMNS"]

# columns that depend on the spike values of a frame (summed); every other column is structure
LAYER_EVENTS = ("syn_events", "syn_ops", "spike_spike", "spike_mask")
NEURON_EVENTS = ("spikes", "spike_mass", "firing_rate", "mean_level", "mean_value")
# spike-dependent columns no estimator prices, kept as their largest value over the frames
LAYER_MAXIMA = ("max_level", "signed")
# numeric columns that are sizes or labels, never summed over frames
SIZE_COLUMNS = ("weight_numel", "t", "order", "call", "levels", "quantum") + LAYER_MAXIMA
MAX_GROUPS = 16
_EXACT = float(2 ** 53)


TOTAL_COUNTS = ("dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike", "spike_mask")


def table_totals(layers: pd.DataFrame, neurons: pd.DataFrame) -> dict[str, float]:
    """The totals of one count table: each layer count summed over the layers, and the neuron
    table's `neurons` (neuron_updates) and `spikes` (absent columns count 0)."""
    out = {f: float(layers[f].sum()) if f in layers else 0.0 for f in TOTAL_COUNTS}
    out["neuron_updates"] = float(neurons["neurons"].sum()) if "neurons" in neurons else 0.0
    out["spikes"] = float(neurons["spikes"].sum()) if "spikes" in neurons else 0.0
    return out


@dataclass
class MeanCounts:
    """The mean frame of a group: a count table in the contract of snnsim.energy.counts."""

    layers: pd.DataFrame
    neurons: pd.DataFrame
    timesteps: int | None
    is_spiking: bool | None
    model: str | None = None
    frames: int = 1
    pooled: bool = False

    @property
    def totals(self) -> dict[str, float]:
        return table_totals(self.layers, self.neurons)


class ExactSum:
    """Exact running sum of equal-length float vectors: integer-valued entries below 2^53 are
    added as int64 (exact to 9.2e18), the others as float64."""

    def __init__(self, size: int):
        self.ints = np.zeros(size, dtype=np.int64)
        self.floats = np.zeros(size, dtype=np.float64)

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        whole = np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < _EXACT)
        self.ints += np.where(whole, x, 0.0).astype(np.int64)
        self.floats += np.where(whole, 0.0, x)

    def value(self) -> np.ndarray:
        return self.ints.astype(np.float64) + self.floats


def _numeric(df: pd.DataFrame, col: str) -> bool:
    return pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])


def _key_rows(df: pd.DataFrame, cols: list[str]) -> tuple:
    """The rows of `cols` as hashable tuples (NaN -> None, so equal rows compare equal)."""
    if not cols or not len(df):
        return (len(df),)
    sub = df[cols].astype(object)
    sub = sub.where(sub.notna(), None)
    return tuple(sub.itertuples(index=False, name=None))


class _Group:
    """Frames of one structure: the first frame's tables and exact sums of the event columns."""

    def __init__(self, layers: pd.DataFrame, neurons: pd.DataFrame, timesteps, is_spiking):
        self.layers = layers.reset_index(drop=True).copy()
        self.neurons = neurons.reset_index(drop=True).copy()
        self.l_events = [c for c in LAYER_EVENTS if c in self.layers.columns]
        self.n_events = [c for c in NEURON_EVENTS if c in self.neurons.columns]
        self.l_maxima = [c for c in LAYER_MAXIMA if c in self.layers.columns]
        self.l_sum = ExactSum(len(self.layers) * len(self.l_events))
        self.n_sum = ExactSum(len(self.neurons) * len(self.n_events))
        self.l_max = None
        self.timesteps, self.is_spiking = timesteps, is_spiking
        self.n = 0

    def add(self, layers: pd.DataFrame, neurons: pd.DataFrame) -> None:
        if self.l_events:
            self.l_sum.add(layers[self.l_events].to_numpy(dtype=np.float64).ravel())
        if self.l_maxima:
            m = layers[self.l_maxima].to_numpy(dtype=np.float64)
            self.l_max = m if self.l_max is None else np.maximum(self.l_max, m)
        if self.n_events:
            self.n_sum.add(neurons[self.n_events].to_numpy(dtype=np.float64).ravel())
        self.n += 1

    def _tables(self, mean: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        L, N = self.layers.copy(), self.neurons.copy()
        for df, cols, acc in ((L, self.l_events, self.l_sum), (N, self.n_events, self.n_sum)):
            if not cols or not len(df):
                continue
            sums = acc.value().reshape(len(df), len(cols))
            if mean:
                sums = sums / self.n
            for j, c in enumerate(cols):
                df[c] = sums[:, j]
        for df, cols in ((L, self.l_events), (N, self.n_events)):
            if not mean and len(df):     # sums over the frames: structure counts times the frames
                for c in df.columns:
                    if c not in cols and c not in SIZE_COLUMNS and _numeric(df, c):
                        df[c] = df[c].astype(np.float64) * self.n
        if self.l_maxima and self.l_max is not None and len(L):
            for j, c in enumerate(self.l_maxima):
                L[c] = self.l_max[:, j].astype(L[c].dtype)
        return L, N

    def mean(self, model) -> MeanCounts:
        L, N = self._tables(mean=True)
        return MeanCounts(L, N, self.timesteps, self.is_spiking, model, self.n)

    def sums(self) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        L, N = self._tables(mean=False)
        return L, N, self.n


class _Pool:
    """Frames of structures beyond the kept ones: per-row sums keyed by the label and size
    columns (bounded by the distinct rows, not by the frames)."""

    def __init__(self):
        self.layers: pd.DataFrame | None = None
        self.neurons: pd.DataFrame | None = None
        self.n = 0
        self.timesteps = None
        self.is_spiking = None

    @staticmethod
    def _merge(acc: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
        both = new if acc is None else pd.concat([acc, new], ignore_index=True)
        if not len(both):
            return both.copy()
        summed = [c for c in both.columns if _numeric(both, c) and c not in SIZE_COLUMNS]
        maxima = [c for c in LAYER_MAXIMA if c in both.columns]
        keys = [c for c in both.columns if c not in summed and c not in maxima]
        agg = {**{c: "sum" for c in summed}, **{c: "max" for c in maxima}}
        if not keys:
            return both.agg(agg).to_frame().T[list(both.columns)]
        out = both.groupby(keys, sort=False, dropna=False, as_index=False).agg(agg)
        return out[list(both.columns)]

    def add(self, layers, neurons, timesteps, is_spiking, n: int = 1) -> None:
        """One frame's tables, or (a merge) the summed tables of `n` frames."""
        self.layers = self._merge(self.layers, layers)
        self.neurons = self._merge(self.neurons, neurons)
        self.timesteps = max(self.timesteps or 0, timesteps or 0) or timesteps
        self.is_spiking = bool(self.is_spiking) or bool(is_spiking)
        self.n += n

    def mean(self, model) -> MeanCounts:
        L, N = self.layers.copy(), self.neurons.copy()
        for df in (L, N):
            for c in df.columns:
                if _numeric(df, c) and c not in SIZE_COLUMNS:
                    df[c] = df[c].astype(np.float64) / self.n
        return MeanCounts(L, N, self.timesteps, self.is_spiking, model, self.n, pooled=True)

    def sums(self) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        return self.layers.copy(), self.neurons.copy(), self.n


class FrameMean:
    """Running aggregate of per-frame count tables (objects with `layers` and `neurons`
    DataFrames, optionally `timesteps` and `is_spiking`), one frame at a time.

    ``estimate(frame_mean, hardware, estimator)`` prices it: the mean over the added frames of
    the per-frame energy (see the module docstring). ``len()`` is the number of frames added.
    """

    def __init__(self, model: str | None = None, max_groups: int = MAX_GROUPS):
        self.model = model
        self.max_groups = max(1, int(max_groups))
        self._groups: dict[tuple, _Group] = {}
        self._pool: _Pool | None = None
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def add(self, counts: Any) -> None:
        layers, neurons = counts.layers, counts.neurons
        if not isinstance(layers, pd.DataFrame) or not isinstance(neurons, pd.DataFrame):
            raise ValueError("FrameMean.add: counts need `layers` and `neurons` pandas DataFrames")
        timesteps = getattr(counts, "timesteps", None)
        is_spiking = getattr(counts, "is_spiking", None)
        sig = _signature(layers, neurons, timesteps, is_spiking)
        group = self._groups.get(sig)
        if group is None and len(self._groups) < self.max_groups:
            group = self._groups[sig] = _Group(layers, neurons, timesteps, is_spiking)
        if group is not None:
            group.add(layers, neurons)
        else:
            self._pool_for().add(layers, neurons, timesteps, is_spiking)
        self.n += 1

    def _pool_for(self) -> "_Pool":
        if self._pool is None:
            self._pool = _Pool()
        return self._pool

    def to_state(self) -> dict:
        """JSON-ready data (see _frame_mean_state); FrameMean.from_state reads it back."""
        return _frame_mean_state(self)

    @staticmethod
    def from_state(state: dict) -> "FrameMean":
        return _frame_mean_from_state(state)

    def merge(self, other: "FrameMean") -> "FrameMean":
        """Fold another FrameMean's frames in (exact: see _merge_frame_means); returns self."""
        _merge_frame_means(self, other)
        return self

    def _parts(self) -> Iterator:
        yield from self._groups.values()
        if self._pool is not None:
            yield self._pool

    @property
    def structures(self) -> int:
        """Distinct frame structures seen (the pooled ones count as one)."""
        return len(self._groups) + (self._pool is not None)

    @property
    def pooled_frames(self) -> int:
        return self._pool.n if self._pool is not None else 0

    def frame_groups(self) -> list[tuple[MeanCounts, int]]:
        """(mean frame of a group, its frames) per group: what `estimate` prices."""
        if not self.n:
            raise ValueError("FrameMean: no frames added")
        return [(g.mean(self.model), g.n) for g in self._parts()]

    def sum_tables(self) -> list[tuple[pd.DataFrame, pd.DataFrame, int]]:
        """(layers, neurons, frames) per group: every summable numeric column summed over the
        group's frames (sizes and labels -- SIZE_COLUMNS -- as they are)."""
        return [g.sums() for g in self._parts()]

    def mean_totals(self) -> dict[str, float]:
        """Per-frame means of the count totals: the sum tables' totals over the frames."""
        totals: dict[str, float] = {}
        for L, N, _ in self.sum_tables():
            for k, v in table_totals(L, N).items():
                totals[k] = totals.get(k, 0.0) + v
        return {k: v / max(self.n, 1) for k, v in totals.items()}

    def mean(self) -> MeanCounts:
        """The one mean frame (a single structure), or the row-wise mean over all frames."""
        groups = self.frame_groups()
        if len(groups) == 1:
            return groups[0][0]
        pool = _Pool()
        for L, N, n in self.sum_tables():
            pool.layers = pool._merge(pool.layers, L)
            pool.neurons = pool._merge(pool.neurons, N)
            pool.n += n
        first = groups[0][0]
        pool.timesteps, pool.is_spiking = first.timesteps, first.is_spiking
        return pool.mean(self.model)


# ------------------------------------------------------------------------ transport and merge
# A FrameMean travels between processes (a dataset run's workers and its driver) and to disk
# (a finished sequence, read back when a run resumes) as plain JSON-ready data -- never a
# pickle: a resumed output folder is a file on disk like any other input. Integer sums stay
# Python ints (exact beyond float64), float sums are float64 (json writes them with repr, which
# reads back bit for bit). merge() adds another FrameMean's groups exactly as if its frames had
# been added here (integer sums are exact whatever the order; float columns add in the order
# of the merges, which a caller fixes to make results reproducible).
def _table_state(df: pd.DataFrame) -> dict:
    cols = list(df.columns)
    return {"columns": cols, "dtypes": [str(df[c].dtype) for c in cols],
            "data": [[_plain(v) for v in df[c].tolist()] for c in cols]}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return {"tuple": [_plain(x) for x in v]}
    if isinstance(v, np.generic):
        return v.item()
    return v


def _unplain(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"tuple"}:
        return tuple(_unplain(x) for x in v["tuple"])
    return v


def _table_from_state(state: dict) -> pd.DataFrame:
    data = {}
    for c, dt, values in zip(state["columns"], state["dtypes"], state["data"]):
        values = [_unplain(v) for v in values]
        data[c] = pd.Series(values, dtype=dt if dt != "object" else object)
    return pd.DataFrame(data, columns=state["columns"])


def _sum_state(acc: ExactSum) -> dict:
    return {"ints": [int(x) for x in acc.ints], "floats": [float(x) for x in acc.floats]}


def _sum_from_state(state: dict) -> ExactSum:
    acc = ExactSum(len(state["ints"]))
    acc.ints = np.asarray(state["ints"], dtype=np.int64).reshape(-1)
    acc.floats = np.asarray(state["floats"], dtype=np.float64).reshape(-1)
    return acc


def _group_state(g: _Group) -> dict:
    return {"layers": _table_state(g.layers), "neurons": _table_state(g.neurons), "l_sum": _sum_state(g.l_sum),
            "n_sum": _sum_state(g.n_sum), "l_max": None if g.l_max is None else g.l_max.tolist(),
            "timesteps": g.timesteps, "is_spiking": g.is_spiking, "n": int(g.n)}


def _group_from_state(state: dict) -> _Group:
    g = _Group(_table_from_state(state["layers"]), _table_from_state(state["neurons"]), state["timesteps"],
               state["is_spiking"])
    g.l_sum, g.n_sum = _sum_from_state(state["l_sum"]), _sum_from_state(state["n_sum"])
    g.l_max = None if state["l_max"] is None else np.asarray(state["l_max"], dtype=np.float64)
    g.n = int(state["n"])
    return g


def _signature(layers: pd.DataFrame, neurons: pd.DataFrame, timesteps, is_spiking) -> tuple:
    """A frame's structure: every column but the spike-dependent ones (see the module docstring)."""
    lkey = [c for c in layers.columns if c not in LAYER_EVENTS and c not in LAYER_MAXIMA]
    nkey = [c for c in neurons.columns if c not in NEURON_EVENTS]
    return (tuple(layers.columns), tuple(neurons.columns), timesteps, is_spiking,
            _key_rows(layers, lkey), _key_rows(neurons, nkey))


def _frame_mean_state(fm: "FrameMean") -> dict:
    pool = fm._pool
    return {"format": 1, "model": fm.model, "max_groups": fm.max_groups, "n": int(fm.n),
            "groups": [_group_state(g) for g in fm._groups.values()],
            "pool": None if pool is None else {"layers": _table_state(pool.layers),
                                               "neurons": _table_state(pool.neurons), "n": int(pool.n),
                                               "timesteps": pool.timesteps, "is_spiking": pool.is_spiking}}


def _frame_mean_from_state(state: dict) -> "FrameMean":
    if not isinstance(state, dict) or state.get("format") != 1:
        raise ValueError("not a FrameMean state (format 1)")
    fm = FrameMean(state["model"], state["max_groups"])
    for gs in state["groups"]:
        g = _group_from_state(gs)
        fm._groups[_signature(g.layers, g.neurons, g.timesteps, g.is_spiking)] = g
    if state["pool"] is not None:
        p = _Pool()
        p.layers, p.neurons = _table_from_state(state["pool"]["layers"]), _table_from_state(state["pool"]["neurons"])
        p.n, p.timesteps, p.is_spiking = int(state["pool"]["n"]), state["pool"]["timesteps"], state["pool"]["is_spiking"]
        fm._pool = p
    fm.n = int(state["n"])
    return fm


def _absorb(g: _Group, other: _Group) -> None:
    """Add another group of the same structure: exact sums, maxima, frames."""
    g.l_sum.ints += other.l_sum.ints
    g.l_sum.floats += other.l_sum.floats
    g.n_sum.ints += other.n_sum.ints
    g.n_sum.floats += other.n_sum.floats
    if other.l_max is not None:
        g.l_max = other.l_max.copy() if g.l_max is None else np.maximum(g.l_max, other.l_max)
    g.n += other.n


def _merge_frame_means(fm: "FrameMean", other: "FrameMean") -> None:
    """Fold `other` into `fm`, as if its frames had been added to `fm` (see above)."""
    for sig, g in other._groups.items():
        mine = fm._groups.get(sig)
        if mine is not None:
            _absorb(mine, g)
        elif len(fm._groups) < fm.max_groups:
            fm._groups[sig] = _group_from_state(_group_state(g))   # a copy: `other` stays as it was
        else:
            L, N, k = g.sums()
            fm._pool_for().add(L, N, g.timesteps, g.is_spiking, n=k)
    if other._pool is not None:
        p = other._pool
        fm._pool_for().add(p.layers, p.neurons, p.timesteps, p.is_spiking, n=p.n)
    fm.n += other.n
