"""Break-even firing rates: the activity at which a spiking model spends as much energy as its
ANN twin (the same architecture with the neurons replaced by real-valued activations), under
one estimator and hardware profile -- for the whole model and layer by layer.

Why: an SNN's advantage is a function of its firing rate. A measured "x times cheaper" says
nothing about how much margin is left; the break-even rate does (Dampfhoffer et al., "Are
SNNs really more energy-efficient than ANNs?", and arXiv 2409.08290, which puts it near 5.7 %
once data movement is priced). Peer tools report the energy at the measured rate only.

The activity model (stated in every result): the SNN's measured count tables are split into
- activity-driven counts, scaled by a factor ``a`` (a = 1: as measured): ``syn_events`` and
  ``syn_ops`` (one spike operand), ``spike_mask`` (element-wise spike operations), the neurons'
  ``spikes`` and ``spike_mass``; ``spike_spike`` products scale by ``a**2`` (both operands
  are spikes);
- fixed counts: ``dense_macs``, ``mac_ops`` (layers with real inputs), neuron updates and
  every element / weight size.
So ``a`` multiplies every neuron's firing probability, keeping the level distribution and the
spatial pattern. The firing rate at factor ``a`` is ``a`` times the measured one; ``a`` is
bounded by the busiest neuron module reaching a rate of 1 (every neuron nonzero every step).

Whole model: the SNN's total under the *real estimator* is found by bisection in ``a`` (so a
non-linear estimator is handled as it is), against the ANN twin's total under the same
estimator and profile. Per layer: a layer's energy is read from the estimator's per-module
table at a = 0, 1/2, 1 and fitted as c0 + c1 a + c2 a^2 (exact for every separable
estimator); the fit is checked at a = 2 and, where it does not hold (an estimator whose layer
rows depend on the whole model, e.g. a roofline), the layer's break-even is reported as not
defined rather than guessed. The layer's rate is its *input* spike rate, syn_events /
dense_macs (the fraction of synapse-input pairs that carried a spike).

Nothing here imports torch or knows trackers: profiles are anything `estimate` prices,
including profiles aggregated over frames (``frame_groups``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .estimate import estimate, frame_groups_of, is_frame_aggregated
from .profiles import load_hardware

__all__ = ["ACTIVITY_MODEL", "BreakEven", "ScaledActivity", "break_even", "break_even_curves", "break_even_table", "layer_break_even",
           "measured_rate"]

LINEAR_LAYER_COLUMNS = ("syn_events", "syn_ops", "spike_mask")
QUADRATIC_LAYER_COLUMNS = ("spike_spike",)
LINEAR_NEURON_COLUMNS = ("spikes", "spike_mass")
ACTIVITY_MODEL = ("activity factor a scales syn_events, syn_ops, spike_mask and the neurons' spikes / spike_mass "
                  "by a and spike_spike products by a^2 (both operands are spikes); dense MACs on real inputs, "
                  "neuron updates and sizes stay as measured; rates are a x the measured ones, at most 1 in the "
                  "busiest neuron module")
_BISECTIONS = 60
_FIT_RTOL = 1e-9


def _scaled_tables(obj, a: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    layers = obj.layers.copy()
    for c in LINEAR_LAYER_COLUMNS:
        if c in layers.columns:
            layers[c] = layers[c].astype(float) * a
    for c in QUADRATIC_LAYER_COLUMNS:
        if c in layers.columns:
            layers[c] = layers[c].astype(float) * a * a
    neurons = getattr(obj, "neurons", None)
    if isinstance(neurons, pd.DataFrame) and len(neurons):
        neurons = neurons.copy()
        for c in LINEAR_NEURON_COLUMNS:
            if c in neurons.columns:
                neurons[c] = neurons[c].astype(float) * a
        if "firing_rate" in neurons.columns:
            neurons["firing_rate"] = neurons["firing_rate"].astype(float) * a
    return layers, neurons


class ScaledActivity:
    """A profile-like view of `profile` with its activity-driven counts scaled by `a`
    (see the module docstring); for a frame-aggregated profile, every frame group is scaled.
    Everything else (`uncounted`, `unseen_neurons`, `timesteps`, names) is the original's."""

    def __init__(self, profile, a: float):
        if not (isinstance(a, (int, float)) and math.isfinite(a) and a >= 0):
            raise ValueError(f"activity factor must be a finite number >= 0, got {a!r}")
        self._profile = profile
        self.a = float(a)
        self._grouped = is_frame_aggregated(profile)
        if not self._grouped:
            self.layers, self.neurons = _scaled_tables(profile, self.a)

    def frame_groups(self):
        if not self._grouped:
            raise AttributeError("frame_groups")
        return [(ScaledActivity(g, self.a), n) for g, n in self._profile.frame_groups()]

    def __getattr__(self, name: str) -> Any:
        # timesteps, is_spiking, model, uncounted, unseen_neurons, ... come from the original
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._profile, name)


def _parts(profile) -> list[tuple[Any, float]]:
    """(count tables, frames) of each frame structure of a frame-aggregated profile, or the
    profile itself with weight 1 (the same reading as snnsim.energy.estimate)."""
    groups = frame_groups_of(profile)
    return [(profile, 1.0)] if groups is None else groups


def _spiking_neuron_rows(N: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(N, pd.DataFrame) or not len(N):
        return pd.DataFrame(columns=["module", "neurons", "spikes"])
    if "spiking" in N.columns:       # non-spiking readouts (voltages) have no firing rate
        N = N[N["spiking"].astype(bool)]
    return N


def measured_rate(profile) -> tuple[float, float]:
    """(mean firing rate, busiest module's rate) of `profile`'s spiking neurons: spikes /
    neuron updates over all modules and timesteps (frames weighted by their count), and the
    largest per-module ratio. (0, 0) for a model without neurons."""
    spikes = updates = 0.0
    per_module: dict[str, list[float]] = {}
    for part, n in _parts(profile):
        N = _spiking_neuron_rows(getattr(part, "neurons", None))
        if not len(N):
            continue
        spikes += float(N["spikes"].astype(float).sum()) * n
        updates += float(N["neurons"].astype(float).sum()) * n
        g = N.groupby("module", sort=False)[["spikes", "neurons"]].sum()
        for m, row in g.iterrows():
            acc = per_module.setdefault(str(m), [0.0, 0.0])
            acc[0] += float(row["spikes"]) * n
            acc[1] += float(row["neurons"]) * n
    if updates <= 0:
        return 0.0, 0.0
    busiest = max((s / u for s, u in per_module.values() if u > 0), default=0.0)
    return spikes / updates, busiest


@dataclass
class BreakEven:
    """The whole-model break-even of one SNN against its ANN twin, one profile x estimator.

    rate            the mean firing rate at which the two energies are equal; None when there
                    is no such rate in [0, rate_max] (see `verdict`) or no estimate applies.
    measured_rate   the SNN's mean firing rate as counted; rate_max the largest reachable one
                    (the busiest neuron module at rate 1).
    factor          rate / measured_rate: how many times the activity could grow.
    verdict         one of 'break-even', 'cheaper at any rate', 'dearer at any rate',
                    'not applicable' -- with `reason` saying why in the last three cases.
    """

    hardware: str
    estimator: str
    verdict: str
    measured_rate: float
    rate_max: float
    snn_j: float | None
    ann_j: float | None
    rate: float | None = None
    factor: float | None = None
    snn_j_silent: float | None = None
    snn_j_at_max: float | None = None
    reason: str | None = None
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"hardware": self.hardware, "estimator": self.estimator, "verdict": self.verdict,
                "break_even_rate": self.rate, "measured_rate": self.measured_rate, "rate_max": self.rate_max,
                "factor": self.factor, "snn_j": self.snn_j, "ann_j": self.ann_j,
                "snn_j_silent": self.snn_j_silent, "snn_j_at_max": self.snn_j_at_max,
                "reason": self.reason, "complete": self.complete, "notes": list(self.notes),
                "activity_model": ACTIVITY_MODEL}


def _total(profile, hw, estimator: str, a: float, options: dict) -> tuple[float | None, Any]:
    e = estimate(ScaledActivity(profile, a), hw, estimator, **options)
    return (e.total_j if e.applicable else None), e


def break_even(snn, ann, hardware, estimator: str | None = None, **options) -> BreakEven:
    """The firing rate at which `snn` (counted) and its ANN twin `ann` (counted) spend the same
    energy per sample on `hardware` under `estimator` (default: the profile's first); options
    go to `snnsim.energy.estimate` for both models."""
    hw = load_hardware(hardware)
    name = estimator or hw.estimators[0]
    rate, busiest = measured_rate(snn)
    if rate <= 0:
        raise ValueError("break_even: the spiking model's counts hold no spikes (no neuron rows, or every neuron "
                         "silent), so there is no measured rate to scale; profile it on inputs that make it fire")
    a_max = 1.0 / busiest
    ann_e = estimate(ann, hw, name, **options)
    snn_j, snn_e = _total(snn, hw, name, 1.0, options)
    complete = bool(ann_e.complete and snn_e.complete)
    notes = [n for n in (snn_e.partial, ann_e.partial) if n]
    common = dict(hardware=hw.name, estimator=name, measured_rate=rate, rate_max=rate * a_max,
                  complete=complete, notes=notes)
    if not ann_e.applicable or snn_j is None:
        which = "the ANN twin" if not ann_e.applicable else "the spiking model"
        why = ann_e.reason if not ann_e.applicable else snn_e.reason
        return BreakEven(verdict="not applicable", snn_j=snn_j, ann_j=ann_e.total_j,
                         reason=f"{which} is not priced by '{name}' on {hw.name}: {why}", **common)
    ann_j = float(ann_e.total_j)
    silent, _ = _total(snn, hw, name, 0.0, options)
    at_max, _ = _total(snn, hw, name, a_max, options)
    common.update(snn_j=snn_j, ann_j=ann_j, snn_j_silent=silent, snn_j_at_max=at_max)
    if silent >= ann_j:
        return BreakEven(verdict="dearer at any rate", rate=None, reason=(
            f"silent, the spiking model already spends {silent:.4g} J >= the ANN's {ann_j:.4g} J (the parts "
            f"that do not depend on spikes: real-input MACs, neuron updates, dense pricing)"), **common)
    if at_max <= ann_j:
        return BreakEven(verdict="cheaper at any rate", rate=None, reason=(
            f"even with its busiest neuron module firing at every neuron and step (rate {rate * a_max:.3g}) the "
            f"spiking model spends {at_max:.4g} J <= the ANN's {ann_j:.4g} J"), **common)
    # the first crossing: scan a grid (a non-monotone estimator crosses where the grid says),
    # then bisect inside the bracket
    grid = np.linspace(0.0, a_max, 17)
    lo, hi = 0.0, a_max
    prev = 0.0
    for g in grid[1:]:
        if _total(snn, hw, name, float(g), options)[0] >= ann_j:
            lo, hi = prev, float(g)
            break
        prev = float(g)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if _total(snn, hw, name, mid, options)[0] >= ann_j:
            hi = mid
        else:
            lo = mid
    a_star = 0.5 * (lo + hi)
    return BreakEven(verdict="break-even", rate=a_star * rate, factor=a_star, **common)


def _module_energy(profile, hw, estimator: str, a: float, options: dict) -> pd.Series | None:
    e = estimate(ScaledActivity(profile, a), hw, estimator, **options)
    if not e.applicable:
        return None
    return e.layers.groupby("module", sort=False)["total_J"].sum()


def _input_rates(profile) -> pd.DataFrame:
    """Per synaptic module: dense_macs and syn_events summed (frames weighted), and whether
    any of its operators took spikes."""
    parts = []
    for part, n in _parts(profile):
        L = part.layers
        d = L[["module", "dense_macs", "syn_events"]].copy()
        d[["dense_macs", "syn_events"]] = d[["dense_macs", "syn_events"]].astype(float) * n
        d["spiking"] = L["spiking_input"].astype(bool)
        parts.append(d)
    all_rows = pd.concat(parts, ignore_index=True)
    g = all_rows.groupby("module", sort=False).agg(dense_macs=("dense_macs", "sum"),
                                                   syn_events=("syn_events", "sum"),
                                                   spiking=("spiking", "any"))
    return g


def layer_break_even(snn, ann, hardware, estimator: str | None = None, **options) -> pd.DataFrame:
    """Per synaptic module that takes spikes: its measured input spike rate, its energy in the
    SNN and in the ANN twin (same module name), and the input rate at which they are equal.

    Columns: module, input_rate, snn_J, ann_J, break_even_rate, verdict. The verdict is
    'break-even', 'cheaper at any rate', 'dearer at any rate' or 'not separable' (the
    estimator's layer rows are not a function of that layer's counts alone: the quadratic
    fit failed its check), 'not applicable' (an estimator that does not price one model)."""
    hw = load_hardware(hardware)
    name = estimator or hw.estimators[0]
    cols = ["module", "input_rate", "snn_J", "ann_J", "break_even_rate", "verdict"]
    e0, eh, e1, e2 = (_module_energy(snn, hw, name, a, options) for a in (0.0, 0.5, 1.0, 2.0))
    ann_e = estimate(ann, hw, name, **options)
    if e1 is None or not ann_e.applicable:
        return pd.DataFrame(columns=cols)
    ann_m = ann_e.layers.groupby("module", sort=False)["total_J"].sum()
    rows = []
    for module, r in _input_rates(snn).iterrows():
        if not r["spiking"] or r["dense_macs"] <= 0 or module not in e1.index:
            continue
        rate = float(r["syn_events"]) / float(r["dense_macs"])
        y0, yh, y1, y2 = (float(s.get(module, 0.0)) for s in (e0, eh, e1, e2))
        # y(a) = c0 + c1 a + c2 a^2 through a = 0, 1/2, 1
        c0 = y0
        c2 = 2.0 * (y1 - 2.0 * yh + y0)
        c1 = y1 - y0 - c2
        target = float(ann_m.get(module, 0.0))
        row = {"module": module, "input_rate": rate, "snn_J": y1, "ann_J": target, "break_even_rate": None}
        if abs(c0 + 2 * c1 + 4 * c2 - y2) > _FIT_RTOL * max(abs(y2), abs(y1), 1e-30):
            rows.append({**row, "verdict": "not separable"})
            continue
        a_max = 1.0 / rate if rate > 0 else math.inf
        a_star = _smallest_root(c2, c1, c0 - target)
        if c0 >= target:
            verdict = "dearer at any rate"
        elif a_star is None or a_star > a_max:
            verdict = "cheaper at any rate"
        else:
            verdict = "break-even"
            row["break_even_rate"] = a_star * rate if rate > 0 else None
        rows.append({**row, "verdict": verdict})
    return pd.DataFrame(rows, columns=cols)


def _smallest_root(c2: float, c1: float, c0: float) -> float | None:
    """Smallest a >= 0 with c2 a^2 + c1 a + c0 = 0 (c0 < 0 when it matters), else None."""
    scale = max(abs(c2), abs(c1), abs(c0), 1e-300)
    if abs(c2) <= 1e-12 * scale:
        if c1 <= 0:
            return None
        return -c0 / c1
    disc = c1 * c1 - 4.0 * c2 * c0
    if disc < 0:
        return None
    sq = math.sqrt(disc)
    roots = sorted(r for r in ((-c1 - sq) / (2 * c2), (-c1 + sq) / (2 * c2)) if r >= 0)
    return roots[0] if roots else None


def break_even_table(snn, ann, hardware: list[str], **options) -> pd.DataFrame:
    """Whole-model break-even for every profile in `hardware` x each of its estimators: one
    row per pair (BreakEven.to_dict without the activity model, which is stated once)."""
    rows = []
    for h in hardware:
        hw = load_hardware(h)
        for est in hw.estimators:
            d = break_even(snn, ann, hw, est, **options).to_dict()
            d.pop("activity_model")
            rows.append(d)
    return pd.DataFrame(rows)


def break_even_curves(snn, ann, hardware: list[str], points: int = 11, **options) -> pd.DataFrame:
    """The SNN's energy per sample against its mean firing rate, from silent to the largest
    reachable rate (`points` evenly spaced activity factors, the measured one added), beside
    the ANN twin's, for every profile x estimator that prices both. Columns: hardware,
    estimator, rate, measured (bool: the counted point), snn_j, ann_j, ratio (snn / ann)."""
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    rate, busiest = measured_rate(snn)
    if rate <= 0:
        raise ValueError("break_even_curves: the spiking model's counts hold no spikes")
    factors = sorted(set(np.linspace(0.0, 1.0 / busiest, points).tolist()) | {1.0})
    rows = []
    for h in hardware:
        hw = load_hardware(h)
        for est in hw.estimators:
            ann_e = estimate(ann, hw, est, **options)
            if not ann_e.applicable:
                continue
            for a in factors:
                snn_j, _ = _total(snn, hw, est, a, options)
                if snn_j is None:
                    break
                rows.append({"hardware": hw.name, "estimator": est, "rate": a * rate, "measured": a == 1.0,
                             "snn_j": snn_j, "ann_j": ann_e.total_j,
                             "ratio": snn_j / ann_e.total_j if ann_e.total_j else None})
    return pd.DataFrame(rows, columns=["hardware", "estimator", "rate", "measured", "snn_j", "ann_j", "ratio"])
