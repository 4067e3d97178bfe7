"""Tidy tables built from the files a profile run writes (summary.json, energy.csv,
neurons.csv) -- never from torch modules. Every function takes plain dicts / DataFrames and
returns a DataFrame with one observation per row, ready for CSV, JSON and plotly.

Energy is in joules (SI) throughout; `None` / NaN means "not applicable", never 0.
"""
from __future__ import annotations

import math

import pandas as pd

from snnsim.pipeline.summary import weights_label

COMPONENTS = ("compute_J", "memory_J", "comm_J")
LAYER_COLUMNS = ["hardware", "estimator", "branch", "module", "module_type", *COMPONENTS, "total_J",
                 "share", "rank"]


# ------------------------------------------------------------------------ formatting
_ENERGY_UNITS = ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ"))


def fmt_energy(joules) -> str:
    """'1.921 mJ'; 'not applicable' for None / NaN (never '0')."""
    if joules is None or (isinstance(joules, float) and math.isnan(joules)):
        return "not applicable"
    j = float(joules)
    if j == 0:
        return "0 J"
    for scale, unit in _ENERGY_UNITS:
        if abs(j) >= scale:
            return f"{j / scale:.4g} {unit}"
    return f"{j / 1e-12:.4g} pJ"


def fmt_ratio(ratio) -> str:
    """SNN/ANN ratio: '0.0181 (1/55.2)' below 1, '2.3' above."""
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "not applicable"
    r = float(ratio)
    if r <= 0:
        return f"{r:.3g}"
    if r < 1:
        return f"{r:.3g} (1/{1 / r:.3g})"
    return f"{r:.3g}"


def fmt_count(n) -> str:
    if n is None:
        return "-"
    n = float(n)
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.4g}"


def _num(value):
    """None for None / NaN, else float."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


# ------------------------------------------------------------------------ headline
def energy_rows(summary: dict) -> pd.DataFrame:
    """One row per (hardware, estimator) of a summary.json: the per-frame energy, the
    template pass, the number format it prices, whether it applies and why not. Columns: model,
    kind, hardware, estimator, precision, applicable, joules_per_frame, joules_template_pass,
    reason."""
    energy = summary.get("energy") or {}
    template = summary.get("energy_template") or {}
    details = {(d.get("hardware"), d.get("estimator")): d for d in summary.get("energy_details") or []}
    precision = summary.get("energy_precision") or {}
    rows = []
    for hw, by_est in energy.items():
        for est, joules in by_est.items():
            d = details.get((hw, est), {})
            tpl = (template.get(hw) or {}).get(est)
            applicable = bool(d.get("applicable", joules is not None)) and joules is not None
            rows.append({"model": summary.get("model"), "kind": summary.get("kind"), "hardware": hw,
                         "estimator": est, "precision": (precision.get(hw) or {}).get(est, "not stated") or "n/a",
                         "applicable": applicable,
                         "joules_per_frame": _num(joules) if applicable else None,
                         "joules_template_pass": _num(tpl) if applicable else None,
                         "reason": None if applicable else (d.get("reason") or "the estimator does not apply")})
    return pd.DataFrame(rows, columns=["model", "kind", "hardware", "estimator", "precision", "applicable",
                                       "joules_per_frame", "joules_template_pass", "reason"])


def headline(summary: dict, baselines: list[dict] | None = None) -> pd.DataFrame:
    """energy_rows plus, for each ANN baseline summary, `ratio_vs_<model>` = this model's
    joules per frame / the baseline's under the same profile and estimator (None where
    either does not apply). Baselines equal to the model itself are skipped."""
    table = energy_rows(summary)
    for base in baselines or []:
        if base.get("model") == summary.get("model"):
            continue
        other = energy_rows(base).set_index(["hardware", "estimator"])["joules_per_frame"]
        ratios = []
        for hw, est, j in zip(table["hardware"], table["estimator"], table["joules_per_frame"]):
            b = other.get((hw, est))
            ratios.append(j / b if _num(j) is not None and _num(b) not in (None, 0.0) else None)
        table[f"ratio_vs_{base['model']}"] = pd.Series(ratios, index=table.index, dtype=object)
    return table


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def not_applicable_sentences(summary: dict) -> list[str]:
    """Where an estimator does not apply, said in words: 'On loihi2 the loihi estimator is
    not applicable to asymtrack-t: <reason>.' Profiles that refuse the model for the same
    reason share one sentence."""
    groups: dict[str, list] = {}
    for row in energy_rows(summary).itertuples():
        if not row.applicable:
            reason = str(row.reason).rstrip(".")
            groups.setdefault(reason.replace(row.hardware, "<HW>"), []).append(row)
    out = []
    for template, rows in groups.items():
        model = rows[0].model
        if len(rows) == 1:
            r = rows[0]
            out.append(f"On {r.hardware} the {r.estimator} estimator is not applicable to {model}: "
                       f"{template.replace('<HW>', r.hardware)}.")
        else:
            where = _join([f"{r.hardware} ({r.estimator})" for r in rows])
            out.append(f"On {where} the estimators are not applicable to {model}: "
                       f"{template.replace('<HW>', 'each of these')}.")
    return out


def estimator_notes(summary: dict) -> pd.DataFrame:
    """One row per (hardware, estimator, kind of note, sentence): kind is 'assumption',
    'omitted' or 'not applicable'."""
    rows = []
    for d in summary.get("energy_details") or []:
        hw, est = d.get("hardware"), d.get("estimator")
        if not d.get("applicable", True):
            rows.append({"hardware": hw, "estimator": est, "note": "not applicable",
                         "text": d.get("reason") or "the estimator does not apply"})
        for text in d.get("assumptions") or []:
            rows.append({"hardware": hw, "estimator": est, "note": "assumption", "text": text})
        for text in d.get("omitted") or []:
            rows.append({"hardware": hw, "estimator": est, "note": "omitted", "text": text})
    return pd.DataFrame(rows, columns=["hardware", "estimator", "note", "text"])


def partial_note(summary: dict) -> str | None:
    """'partial: N operator(s) not counted (names)' when the totals leave out operators that ran
    with no counting formula (summary 'uncounted') or neuron modules no hook saw
    ('unseen_neurons'); None when the totals are complete."""
    ops = sorted({str(r.get("op")) + (f" in {r['module']}" if r.get("module") else "")
                  for r in summary.get("uncounted") or [] if isinstance(r, dict)})
    unseen = [str(u.get("module")) if isinstance(u, dict) else str(u) for u in summary.get("unseen_neurons") or []]
    parts = ([f"{len(ops)} operator(s) not counted ({', '.join(ops)})"] if ops else []) + \
        ([f"{len(unseen)} neuron module(s) never seen running ({', '.join(unseen)})"] if unseen else [])
    return ("partial: " + "; ".join(parts) + " - totals and energies are lower bounds") if parts else None


def counts_table(summary: dict) -> pd.DataFrame:
    """The count totals per tracking frame and per template pass, one row per count."""
    totals = summary.get("totals") or {}
    template = summary.get("template") or {}
    rows = [{"count": k, "per_frame": _num(v), "template_pass": _num(template.get(k)) if template else None}
            for k, v in totals.items()]
    rows.append({"count": "thop_macs (template + search, thop view)", "per_frame": _num(summary.get("thop_macs")),
                 "template_pass": None})
    return pd.DataFrame(rows, columns=["count", "per_frame", "template_pass"])


GRADED_COLUMNS = ["branch", "module", "module_type", "op", "operands", "max_level", "signed"]


def graded_spikes(layers: pd.DataFrame | None, summary: dict | None = None) -> pd.DataFrame:
    """The layers that received multi-level spikes (largest |level| > 1: graded spikes, sums
    of spikes such as SEW "ADD" residuals) or signed ones, one row per (branch, module, op)
    with the largest |level| seen and whether a level was negative. Read from layers.csv's
    `max_level` / `signed` columns; without them, from the summary's `graded_spike_layers`
    (a Profile's summary)."""
    rows = None
    if layers is not None and len(layers) and "max_level" in layers.columns:
        df = layers.copy()
        df["max_level"] = pd.to_numeric(df["max_level"], errors="coerce").fillna(0).astype(int)
        signed = df["signed"] if "signed" in df.columns else pd.Series(False, index=df.index)
        df["signed"] = signed.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
        rows = df[(df["max_level"] > 1) | df["signed"]]
    elif summary and summary.get("graded_spike_layers"):
        rows = pd.DataFrame(summary["graded_spike_layers"])
    if rows is None or not len(rows):
        return pd.DataFrame(columns=GRADED_COLUMNS)
    rows = rows.copy()
    for c, default in (("branch", ""), ("module_type", ""), ("operands", ""), ("signed", False)):
        if c not in rows.columns:
            rows[c] = default
    rows["module"] = rows["module"].fillna("").astype(str).replace("", "(top level)")
    rows["branch"] = rows["branch"].fillna("").astype(str)
    out = rows.groupby(["branch", "module", "op"], as_index=False, sort=False).agg(
        module_type=("module_type", "first"), operands=("operands", "first"),
        max_level=("max_level", "max"), signed=("signed", "any"))
    return out[GRADED_COLUMNS].reset_index(drop=True)


def unseen_neurons(summary: dict) -> pd.DataFrame:
    """Neuron modules of the model that ran unseen (summary `unseen_neurons`): their updates
    and spikes are missing from the counts."""
    rows = [u if isinstance(u, dict) else {"module": str(u)} for u in summary.get("unseen_neurons") or []]
    return pd.DataFrame(rows, columns=["module", "module_type", "framework"])


# ------------------------------------------------------------------------ per-layer energy
def layer_energy(energy: pd.DataFrame | None) -> pd.DataFrame:
    """energy.csv -> one row per (hardware, estimator, branch, module) with compute / memory /
    comm joules, the total, its share of that branch's total and its rank (1 = costliest)."""
    if energy is None or len(energy) == 0:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    df = energy.copy()
    for c in (*COMPONENTS, "total_J"):
        if c not in df.columns:
            df[c] = 0.0
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0.0)
    if "module_type" not in df.columns:
        df["module_type"] = ""
    df["module_type"] = df["module_type"].fillna("").astype(str)
    df["module"] = df["module"].fillna("").astype(str).replace("", "(top level)")
    keys = ["hardware", "estimator", "branch"]
    df = df.groupby([*keys, "module"], as_index=False, sort=False).agg(
        {"module_type": "first", **{c: "sum" for c in (*COMPONENTS, "total_J")}})
    totals = df.groupby(keys, sort=False)["total_J"].transform("sum")
    df["share"] = (df["total_J"] / totals.where(totals > 0)).fillna(0.0)
    df["rank"] = df.groupby(keys, sort=False)["total_J"].rank(ascending=False, method="first").astype(int)
    df["_group"] = df.groupby(keys, sort=False).ngroup()       # keep the profiles' order of appearance
    return df.sort_values(["_group", "rank"], kind="stable")[LAYER_COLUMNS].reset_index(drop=True)


def top_layers(layers: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The k costliest modules of each (hardware, estimator, branch), plus one row
    '(N other modules)' holding the rest, so the rows of a group still sum to its total."""
    if len(layers) == 0:
        return layers.copy()
    parts = []
    for key, g in layers.groupby(["hardware", "estimator", "branch"], sort=False):
        g = g.sort_values("rank")
        top, rest = g.head(k), g.iloc[k:]
        parts.append(top)
        if len(rest):
            other = {"hardware": key[0], "estimator": key[1], "branch": key[2],
                     "module": f"({len(rest)} other modules)", "module_type": "",
                     **{c: rest[c].sum() for c in (*COMPONENTS, "total_J", "share")}, "rank": k + 1}
            parts.append(pd.DataFrame([other]))
    return pd.concat(parts, ignore_index=True)[LAYER_COLUMNS]


def branch_energy(layers: pd.DataFrame) -> pd.DataFrame:
    """Per (hardware, estimator, branch): compute / memory / comm / total joules."""
    cols = ["hardware", "estimator", "branch", *COMPONENTS, "total_J"]
    if len(layers) == 0:
        return pd.DataFrame(columns=cols)
    return layers.groupby(["hardware", "estimator", "branch"], as_index=False, sort=False)[
        [*COMPONENTS, "total_J"]].sum()[cols]


def type_share(layers: pd.DataFrame, branch: str = "frame") -> pd.DataFrame:
    """Share of a branch's energy by module type, per (hardware, estimator)."""
    cols = ["hardware", "estimator", "branch", "module_type", "total_J", "share"]
    sel = layers[layers["branch"] == branch] if len(layers) else layers
    if len(sel) == 0:
        return pd.DataFrame(columns=cols)
    sel = sel.assign(module_type=sel["module_type"].replace("", "(other)"))
    out = sel.groupby(["hardware", "estimator", "branch", "module_type"], as_index=False, sort=False)[
        ["total_J", "share"]].sum()
    return out.sort_values(["hardware", "estimator", "total_J"], ascending=[True, True, False],
                           kind="stable")[cols].reset_index(drop=True)


# ------------------------------------------------------------------------ firing rates
def _row_labels(df: pd.DataFrame) -> pd.Series:
    """'module' or 'module [call c]' when a module runs more than once in a pass."""
    calls = df.groupby(["branch", "module"])["call"].transform("nunique")
    return df["module"].where(calls <= 1, df["module"] + " [call " + df["call"].astype(str) + "]")


def firing_heatmap(neurons: pd.DataFrame | None) -> pd.DataFrame:
    """neurons.csv -> one row per (branch, module call, timestep): neurons, spikes (nonzero
    outputs), spike_mass, firing_rate (nonzero fraction) and mean_level, summed over the
    profiled frames. `row` labels the heatmap row; `order` is the execution order."""
    cols = ["branch", "row", "module", "call", "t", "order", "neurons", "spikes", "spike_mass",
            "firing_rate", "mean_level"]
    if neurons is None or len(neurons) == 0:
        return pd.DataFrame(columns=cols)
    df = neurons.copy()
    if "branch" not in df.columns:
        df["branch"] = "frame"
    for c, default in (("call", 0), ("t", 0), ("order", 0)):
        if c not in df.columns:
            df[c] = default
    g = df.groupby(["branch", "module", "call", "t"], as_index=False, sort=False).agg(
        order=("order", "min"), neurons=("neurons", "sum"), spikes=("spikes", "sum"),
        spike_mass=("spike_mass", "sum"))
    g["firing_rate"] = g["spikes"] / g["neurons"].where(g["neurons"] > 0)
    g["mean_level"] = g["spike_mass"] / g["neurons"].where(g["neurons"] > 0)
    g["row"] = _row_labels(g)
    return g.sort_values(["branch", "order", "call", "t"], kind="stable")[cols].reset_index(drop=True)


def module_rates(neurons: pd.DataFrame | None) -> pd.DataFrame:
    """Per (branch, module): neurons updated, spikes, firing rate and mean level over all
    timesteps, calls and profiled frames."""
    cols = ["branch", "module", "module_type", "order", "neurons", "spikes", "spike_mass", "firing_rate",
            "mean_level"]
    if neurons is None or len(neurons) == 0:
        return pd.DataFrame(columns=cols)
    df = neurons.copy()
    if "branch" not in df.columns:
        df["branch"] = "frame"
    if "module_type" not in df.columns:
        df["module_type"] = ""
    g = df.groupby(["branch", "module"], as_index=False, sort=False).agg(
        module_type=("module_type", "first"), order=("order", "min"), neurons=("neurons", "sum"),
        spikes=("spikes", "sum"), spike_mass=("spike_mass", "sum"))
    g["firing_rate"] = g["spikes"] / g["neurons"].where(g["neurons"] > 0)
    g["mean_level"] = g["spike_mass"] / g["neurons"].where(g["neurons"] > 0)
    return g.sort_values(["branch", "order"], kind="stable")[cols].reset_index(drop=True)


# ------------------------------------------------------------------------ comparison
def comparison(summaries: list[dict]) -> pd.DataFrame:
    """Models x profiles x estimators: one row each, with the weights they ran with."""
    parts = [energy_rows(s).assign(weights=weights_label(s), thop_macs=_num(s.get("thop_macs")),
                                   params=s.get("params")) for s in summaries]
    cols = ["model", "kind", "weights", "params", "thop_macs", "hardware", "estimator", "precision", "applicable",
            "joules_per_frame", "joules_template_pass", "reason"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def ratios(comp: pd.DataFrame) -> pd.DataFrame:
    """SNN / ANN energy per frame for every (spiking model, ANN model, profile, estimator);
    `ratio` is None (with `reason`) where either side does not apply."""
    cols = ["snn", "ann", "hardware", "estimator", "snn_joules", "ann_joules", "ratio", "ann_over_snn",
            "reason"]
    if len(comp) == 0:
        return pd.DataFrame(columns=cols)
    snns = [m for m in dict.fromkeys(comp.loc[comp["kind"] == "spiking", "model"])]
    anns = [m for m in dict.fromkeys(comp.loc[comp["kind"] != "spiking", "model"])]
    index = comp.set_index(["model", "hardware", "estimator"])
    combos = list(dict.fromkeys(zip(comp["hardware"], comp["estimator"])))
    rows = []
    for s in snns:
        for a in anns:
            for hw, est in combos:
                sj = _num(index["joules_per_frame"].get((s, hw, est)))
                aj = _num(index["joules_per_frame"].get((a, hw, est)))
                reason = None
                if sj is None or aj is None:
                    missing = [f"{m}: {index['reason'].get((m, hw, est)) or 'not priced'}"
                               for m, j in ((s, sj), (a, aj)) if j is None]
                    reason = "not applicable (" + "; ".join(missing) + ")"
                ratio = sj / aj if sj is not None and aj else None
                rows.append({"snn": s, "ann": a, "hardware": hw, "estimator": est, "snn_joules": sj,
                             "ann_joules": aj, "ratio": ratio,
                             "ann_over_snn": (1 / ratio) if ratio else None, "reason": reason})
    return pd.DataFrame(rows, columns=cols)


def spread(comp: pd.DataFrame) -> pd.DataFrame:
    """How far the estimators disagree, per model: within one profile (its estimators,
    scope 'profile') and over every applicable profile x estimator (scope 'all').
    max_over_min is the spread factor."""
    cols = ["model", "scope", "hardware", "n", "min_joules", "max_joules", "max_over_min", "cheapest",
            "costliest"]
    rows = []
    ok = comp[comp["applicable"] & comp["joules_per_frame"].notna()] if len(comp) else comp
    for model, g in ok.groupby("model", sort=False):
        groups = [("profile", hw, h) for hw, h in g.groupby("hardware", sort=False)] + [("all", "all", g)]
        for scope, hw, h in groups:
            j = h["joules_per_frame"].astype(float)
            lo, hi = h.loc[j.idxmin()], h.loc[j.idxmax()]
            rows.append({"model": model, "scope": scope, "hardware": hw, "n": len(h),
                         "min_joules": float(j.min()), "max_joules": float(j.max()),
                         "max_over_min": float(j.max() / j.min()) if j.min() > 0 else None,
                         "cheapest": f"{lo['hardware']} / {lo['estimator']}",
                         "costliest": f"{hi['hardware']} / {hi['estimator']}"})
    return pd.DataFrame(rows, columns=cols)
