"""Plotly figures of the tidy tables (analysis.tables) and of a spike capture.

Each function takes tables, returns a `plotly.graph_objects.Figure` (or None when there is
nothing to draw -- the report then says so in words).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .tables import COMPONENTS, fmt_energy, fmt_ratio, top_layers

COMPONENT_NAMES = {"compute_J": "compute", "memory_J": "memory", "comm_J": "communication"}
COMPONENT_COLOURS = {"compute_J": "#4c78a8", "memory_J": "#f58518", "comm_J": "#54a24b"}
BRANCH_NAMES = {"frame": "per tracking frame", "template": "template pass"}
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=30, t=70, b=60), font=dict(size=12))


def _label(hw: str, est: str) -> str:
    return f"{hw} / {est}"


def _profile_labels(rows: pd.DataFrame) -> list[str]:
    """The profile / estimator label of each row."""
    return [_label(h, e) for h, e in zip(rows["hardware"], rows["estimator"])]


def _distinct_profile_labels(rows: pd.DataFrame) -> list[str]:
    """The label of each (hardware, estimator) pair in ``rows``, once, in first-seen order."""
    return [_label(h, e) for h, e in dict.fromkeys(zip(rows["hardware"], rows["estimator"]))]


def _log_axis(values, title: str, fmt=fmt_energy) -> dict:
    """A log axis with ticks at 1-2-5 x 10^k inside the data's range, labelled like the
    report's tables (fmt), instead of plotly's crowded minor labels."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)) and v > 0]
    axis = dict(type="log", title=title)
    if not vals:
        return axis
    lo, hi = min(vals) / 1.6, max(vals) * 1.6
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo <= t <= hi]
    if len(ticks) > 9:
        ticks = [t for t in ticks if round(t / 10.0 ** math.floor(math.log10(t) + 1e-9)) == 1]
    axis.update(tickvals=ticks, ticktext=[fmt(t) for t in ticks], range=[math.log10(lo), math.log10(hi)])
    return axis


def _na_annotations(labels: list[str]) -> list[dict]:
    return [dict(x=lab, y=0.02, xref="x", yref="paper", text="not applicable", showarrow=False,
                 textangle=-90, yanchor="bottom", font=dict(size=10, color="#888")) for lab in labels]


# ------------------------------------------------------------------------ energy
def energy_by_profile(headline: pd.DataFrame, title: str = "") -> go.Figure | None:
    """Energy per tracking frame under each profile / estimator (log scale); the template
    pass beside it."""
    if len(headline) == 0:
        return None
    labels = _profile_labels(headline)
    fig = go.Figure()
    for col, name, colour in (("joules_per_frame", "per tracking frame", "#4c78a8"),
                              ("joules_template_pass", "template pass", "#bab0ac")):
        y = [v if v is not None and not (isinstance(v, float) and math.isnan(v)) else None
             for v in headline[col]]
        if all(v is None for v in y):
            continue
        fig.add_bar(x=labels, y=y, name=name, marker_color=colour, text=[fmt_energy(v) if v else "" for v in y],
                    textposition="outside", hovertemplate="%{x}<br>%{text}<extra>" + name + "</extra>")
    na = [lab for lab, ok in zip(labels, headline["applicable"]) if not ok]
    fig.update_layout(**_LAYOUT, barmode="group", title=title or "Energy per frame by hardware profile and estimator",
                      yaxis=_log_axis(list(headline["joules_per_frame"]) + list(headline["joules_template_pass"]),
                                      "energy (log scale)"),
                      annotations=_na_annotations(na), legend=dict(orientation="h", y=-0.25), height=480)
    return fig


def default_combo(layers: pd.DataFrame) -> tuple[str, str] | None:
    """The (hardware, estimator) shown first: the first whose energy has more than one part
    (compute and memory / communication), else the first."""
    if len(layers) == 0:
        return None
    combos = list(dict.fromkeys(zip(layers["hardware"], layers["estimator"])))
    for hw, est in combos:
        g = layers[(layers["hardware"] == hw) & (layers["estimator"] == est)]
        if sum(bool(g[c].abs().sum() > 0) for c in COMPONENTS) > 1:
            return hw, est
    return combos[0]


def layer_energy(layers: pd.DataFrame, k: int = 12) -> go.Figure | None:
    """Stacked bars (compute / memory / communication) of the k costliest modules, the
    tracking frame and the template pass side by side; a menu picks profile / estimator."""
    if len(layers) == 0:
        return None
    top = top_layers(layers, k)
    combos = list(dict.fromkeys(zip(top["hardware"], top["estimator"])))
    first = combos.index(default_combo(layers))
    branches = [b for b in ("frame", "template") if b in set(top["branch"])]
    fig = make_subplots(rows=1, cols=len(branches), horizontal_spacing=0.28,
                        subplot_titles=[BRANCH_NAMES[b] for b in branches])
    per_combo = []
    for i, (hw, est) in enumerate(combos):
        n = 0
        for col, branch in enumerate(branches, start=1):
            g = top[(top["hardware"] == hw) & (top["estimator"] == est) & (top["branch"] == branch)]
            for comp in COMPONENTS:
                fig.add_bar(y=g["module"], x=g[comp], orientation="h", name=COMPONENT_NAMES[comp],
                            marker_color=COMPONENT_COLOURS[comp], legendgroup=comp,
                            showlegend=(col == 1), visible=(i == first), row=1, col=col,
                            customdata=np.stack([g["share"] * 100, g["total_J"]], axis=1) if len(g) else None,
                            hovertemplate="%{y}<br>" + COMPONENT_NAMES[comp] +
                            ": %{x:.3s}J<br>module total %{customdata[1]:.3s}J, %{customdata[0]:.1f}% of the "
                            + branch + "<extra></extra>")
                n += 1
        per_combo.append(n)
    total = sum(per_combo)
    buttons, start = [], 0
    for (hw, est), n in zip(combos, per_combo):
        visible = [False] * total
        visible[start:start + n] = [True] * n
        start += n
        buttons.append(dict(label=_label(hw, est), method="update", args=[{"visible": visible}]))
    fig.update_layout(**_LAYOUT, barmode="stack", height=140 + 26 * (k + 1),
                      title=f"Per-layer energy: the {k} costliest modules (the rest summed), compute vs memory vs "
                            "communication",
                      updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.22,
                                        yanchor="top", showactive=True, active=first)],
                      legend=dict(orientation="h", y=-0.12))
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=10))
    fig.update_xaxes(tickformat="~s", ticksuffix="J")
    return fig


def type_share(shares: pd.DataFrame) -> go.Figure | None:
    """Share of the tracking frame's energy by module type, per profile / estimator."""
    if len(shares) == 0:
        return None
    fig = go.Figure()
    for mtype, g in shares.groupby("module_type", sort=False):
        fig.add_bar(y=_profile_labels(g), x=g["share"] * 100, name=mtype, orientation="h",
                    customdata=g["total_J"], hovertemplate="%{y}<br>" + mtype +
                    ": %{x:.1f}% (%{customdata:.3s}J)<extra></extra>")
    labels = _distinct_profile_labels(shares)
    fig.update_layout(**_LAYOUT, barmode="stack", height=160 + 28 * len(labels),
                      title="Share of the per-frame energy by module type",
                      xaxis=dict(title="% of the frame's energy", range=[0, 100]),
                      yaxis=dict(categoryorder="array", categoryarray=labels[::-1]))
    return fig


# ------------------------------------------------------------------------ firing rates
def _row_order(heat: pd.DataFrame, branches: list[str]) -> list[str]:
    """Rows of the tracking frame in execution order, with the rows that run only in the
    template pass inserted after the row that precedes them there."""
    lists = {b: list(dict.fromkeys(heat.loc[heat["branch"] == b, "row"])) for b in branches}
    main = "frame" if "frame" in lists else branches[0]
    order = list(lists[main])
    for b in branches:
        if b == main:
            continue
        previous = None
        for r in lists[b]:
            if r not in order:
                order.insert(order.index(previous) + 1 if previous in order else 0, r)
            previous = r
    return order


def firing_heatmap(heat: pd.DataFrame, metric: str = "firing_rate") -> go.Figure | None:
    """Neuron module x timestep heatmap of `metric` ('firing_rate': nonzero fraction, or
    'mean_level'), template pass and tracking frame side by side (shared rows)."""
    if len(heat) == 0:
        return None
    branches = [b for b in ("template", "frame") if b in set(heat["branch"])]
    rows = _row_order(heat, branches)
    ts = sorted(heat["t"].unique())
    zmax = 1.0 if metric == "firing_rate" else float(np.nanmax(heat[metric].to_numpy(dtype=float)) or 1.0)
    names = {"firing_rate": "nonzero fraction (firing rate)", "mean_level": "mean spike level"}
    fig = make_subplots(rows=1, cols=len(branches), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[BRANCH_NAMES[b] for b in branches])
    for col, b in enumerate(branches, start=1):
        g = heat[heat["branch"] == b].pivot_table(index="row", columns="t", values=metric, aggfunc="mean")
        g = g.reindex(index=rows, columns=ts)
        fig.add_heatmap(z=g.to_numpy(dtype=float), x=[f"t{t}" for t in ts], y=rows, zmin=0, zmax=zmax,
                        colorscale="Viridis", showscale=(col == len(branches)),
                        colorbar=dict(title=metric.replace("_", " ")), row=1, col=col,
                        hovertemplate="%{y}<br>%{x}: %{z:.4f}<extra>" + b + "</extra>")
    fig.update_layout(**_LAYOUT, height=200 + 13 * len(rows),
                      title=f"Neuron module x timestep: {names.get(metric, metric)} "
                            "(blank: the module does not run in that pass)")
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=9))
    return fig


def _passes(capture: dict) -> list[tuple[str, int]]:
    keys = list(capture["maps"])
    out = []
    for b in ("template", "frame"):
        calls = sorted(c for bb, c in keys if bb == b)
        if calls:
            out.append((b, calls[0]))
    return out


def capture_spatial(capture: dict | None) -> go.Figure | None:
    """Where the spikes are: nonzero fraction per position (mean over channels and time) of
    the captured module, template pass and tracking frame side by side."""
    if not capture or not capture["maps"]:
        return None
    passes = _passes(capture)
    meta = capture["meta"]
    fig = make_subplots(rows=1, cols=len(passes), horizontal_spacing=0.08,
                        subplot_titles=[f"{BRANCH_NAMES[b]}" for b, _ in passes])
    for col, key in enumerate(passes, start=1):
        m = capture["maps"][key]
        fig.add_heatmap(z=m["spatial_rate"], zmin=0, zmax=1, colorscale="Viridis", showscale=(col == len(passes)),
                        colorbar=dict(title="nonzero<br>fraction"), row=1, col=col,
                        hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra>" + key[0] + "</extra>")
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    fig.update_layout(**_LAYOUT, height=460,
                      title=f"Where the spikes are: {meta['module']} ({meta['module_type']}), nonzero fraction "
                            "per position, mean over channels and timesteps")
    return fig


def capture_channels(capture: dict | None) -> go.Figure | None:
    """Channel x position map of the captured module (positions pooled to a small grid,
    row-major), template pass and tracking frame side by side."""
    if not capture or not capture["maps"]:
        return None
    passes = _passes(capture)
    meta = capture["meta"]
    titles = []
    for b, c in passes:
        gh, gw = capture["maps"][(b, c)]["grid"].tolist()
        titles.append(f"{BRANCH_NAMES[b]}: positions on a {gh} x {gw} grid")
    fig = make_subplots(rows=1, cols=len(passes), horizontal_spacing=0.06, subplot_titles=titles)
    for col, key in enumerate(passes, start=1):
        m = capture["maps"][key]
        fig.add_heatmap(z=m["channel_position"], zmin=0, zmax=1, colorscale="Viridis",
                        showscale=(col == len(passes)), colorbar=dict(title="nonzero<br>fraction"),
                        row=1, col=col, hovertemplate="channel %{y}, position %{x}: %{z:.3f}<extra>" + key[0]
                        + "</extra>")
        fig.update_yaxes(title="channel", autorange="reversed", row=1, col=col)
        fig.update_xaxes(title="position (row-major)", row=1, col=col)
    channels = int(capture["maps"][passes[0]]["shape"][0])
    fig.update_layout(**_LAYOUT, height=min(900, 260 + 4 * channels),
                      title=f"Channel x position firing map of {meta['module']}")
    return fig


# ------------------------------------------------------------------------ comparison
def compare_energy(comp: pd.DataFrame) -> go.Figure | None:
    """Energy per frame, models side by side under every profile / estimator (log scale)."""
    if len(comp) == 0:
        return None
    labels = _distinct_profile_labels(comp)
    fig = go.Figure()
    for model, g in comp.groupby("model", sort=False):
        y = [v if ok else None for v, ok in zip(g["joules_per_frame"], g["applicable"])]
        fig.add_bar(x=_profile_labels(g), y=y,
                    name=f"{model} ({g['kind'].iloc[0]})", text=[fmt_energy(v) if v else "n/a" for v in y],
                    hovertemplate="%{x}<br>%{text}<extra>" + model + "</extra>")
    row_labels = _profile_labels(comp)
    na = [lab for lab in labels if comp.loc[[r == lab for r in row_labels], "applicable"].eq(False).all()]
    fig.update_layout(**_LAYOUT, barmode="group", height=520,
                      title="Energy per tracking frame: models x hardware profiles x estimators",
                      yaxis=_log_axis(comp["joules_per_frame"], "energy per frame (log scale)"),
                      xaxis=dict(categoryorder="array", categoryarray=labels), annotations=_na_annotations(na),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def ratio_bars(ratios: pd.DataFrame) -> go.Figure | None:
    """SNN / ANN energy per frame under each profile / estimator (log scale; below 1 the
    SNN spends less)."""
    ok = ratios[ratios["ratio"].notna()] if len(ratios) else ratios
    if len(ok) == 0:
        return None
    fig = go.Figure()
    for (snn, ann), g in ok.groupby(["snn", "ann"], sort=False):
        fig.add_bar(x=_profile_labels(g), y=g["ratio"],
                    name=f"{snn} / {ann}", text=[fmt_ratio(r) for r in g["ratio"]], textposition="outside",
                    hovertemplate="%{x}<br>ratio %{text}<extra>" + f"{snn} / {ann}" + "</extra>")
    fig.add_hline(y=1, line_dash="dash", line_color="#888", annotation_text="same energy",
                  annotation_position="top left")
    fig.update_layout(**_LAYOUT, barmode="group", height=480,
                      title="SNN / ANN energy per frame by profile and estimator (below 1: the SNN spends less)",
                      yaxis=_log_axis(list(ok["ratio"]) + [1.0], "SNN / ANN energy (log scale)", lambda r: f"{r:g}"),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def estimator_spread(comp: pd.DataFrame) -> go.Figure | None:
    """Each model's energy per frame under every applicable profile / estimator, one column
    per model: how far the estimators disagree."""
    ok = comp[comp["applicable"] & comp["joules_per_frame"].notna()] if len(comp) else comp
    if len(ok) == 0:
        return None
    symbols = ["circle", "diamond", "square", "triangle-up", "x", "star"]
    fig = go.Figure()
    for model, g in ok.groupby("model", sort=False):
        lo, hi = g["joules_per_frame"].min(), g["joules_per_frame"].max()
        fig.add_scatter(x=[model, model], y=[lo, hi], mode="lines", line=dict(color="#ccc", width=8),
                        showlegend=False, hoverinfo="skip")
        if lo > 0:
            fig.add_annotation(x=model, y=math.log10(hi), text=f"spread {hi / lo:,.0f}x" if hi / lo >= 100 else f"spread {hi / lo:.3g}x", showarrow=False,
                               yshift=16)
    for i, (est, g) in enumerate(ok.groupby("estimator", sort=False)):
        fig.add_scatter(x=g["model"], y=g["joules_per_frame"], mode="markers", name=est,
                        marker=dict(size=11, symbol=symbols[i % len(symbols)], opacity=0.85),
                        text=[f"{h} / {est}: {fmt_energy(v)}" for h, v in zip(g["hardware"], g["joules_per_frame"])],
                        hovertemplate="%{x}<br>%{text}<extra></extra>")
    fig.update_layout(**_LAYOUT, height=480,
                      title="Spread between estimators: energy per frame of each model under every profile / "
                            "estimator",
                      yaxis=_log_axis(ok["joules_per_frame"], "energy per frame (log scale)"))
    return fig


def break_even_curves(curves: pd.DataFrame, snn: str = "SNN", ann: str = "ANN") -> go.Figure | None:
    """SNN / ANN-twin energy against the SNN's mean firing rate, one line per profile /
    estimator; the dashed line is equal energy, the marked point the measured rate."""
    ok = curves[curves["ratio"].notna()] if len(curves) else curves
    if len(ok) == 0:
        return None
    fig = go.Figure()
    for (hw, est), g in ok.groupby(["hardware", "estimator"], sort=False):
        g = g.sort_values("rate")
        fig.add_scatter(x=g["rate"], y=g["ratio"], mode="lines", name=_label(hw, est),
                        hovertemplate="rate %{x:.3f}<br>SNN / ANN %{y:.3g}<extra>" + _label(hw, est) + "</extra>")
        m = g[g["measured"]]
        fig.add_scatter(x=m["rate"], y=m["ratio"], mode="markers", showlegend=False,
                        marker=dict(size=10, symbol="circle-open", color="#222"),
                        hovertemplate="measured rate %{x:.3f}<br>SNN / ANN %{y:.3g}<extra>" + _label(hw, est)
                                      + "</extra>")
    fig.add_hline(y=1, line_dash="dash", line_color="#888", annotation_text="break-even (same energy)",
                  annotation_position="top left")
    fig.update_layout(**_LAYOUT, height=500,
                      title=f"{snn} / {ann} energy per frame against {snn}'s mean firing rate (circles: measured)",
                      xaxis=dict(title="mean firing rate (nonzero outputs / neuron updates)", rangemode="tozero"),
                      yaxis=_log_axis(list(ok["ratio"]) + [1.0], "SNN / ANN energy (log scale)", lambda r: f"{r:g}"),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def energy_per_frame(frames: list[int], template_frames: list[int], series: dict[str, list]) -> go.Figure | None:
    """A tracking run's energy per frame: one line per (profile / estimator) label in
    `series` (J per frame, None where not applicable), diamonds on the frames where the
    template branch ran. None when no series has a value."""
    fig = go.Figure()
    at = {f: i for i, f in enumerate(frames)}
    for label, joules in series.items():
        mj = [j * 1e3 if j is not None else None for j in joules]
        if all(v is None for v in mj):
            continue
        fig.add_trace(go.Scatter(x=frames, y=mj, mode="lines", name=label))
        marks = [f for f in template_frames if f in at]
        fig.add_trace(go.Scatter(x=marks, y=[mj[at[f]] for f in marks], mode="markers",
                                 name=f"template ran ({label})", marker={"symbol": "diamond", "size": 9}))
    if not fig.data:
        return None
    fig.update_layout(title="Energy per frame (search every frame, template where it ran)", xaxis_title="frame",
                      yaxis_title="energy per frame (mJ)", height=480, **_LAYOUT)
    return fig


# ------------------------------------------------------------------------ dataset runs
def dataset_energy_box(seq_table: pd.DataFrame, energy_cols: list[str]) -> go.Figure | None:
    """Energy per frame of each sequence, one box per model x profile / estimator (log scale)."""
    if len(seq_table) == 0 or not energy_cols:
        return None
    fig = go.Figure()
    values = []
    for model, g in seq_table.groupby("model", sort=False):
        xs, ys, names = [], [], []
        for col in energy_cols:
            v = pd.to_numeric(g[col], errors="coerce")
            keep = v.notna()
            xs += [col.split("/", 1)[1]] * int(keep.sum())
            ys += list(v[keep])
            names += list(g.loc[keep, "sequence"])
        if ys:
            values += ys
            fig.add_box(x=xs, y=ys, name=model, boxpoints="all", jitter=0.3, pointpos=0, customdata=names,
                        hovertemplate="%{customdata}<br>%{x}<br>%{y:.3s}J per frame<extra>" + model + "</extra>")
    if not values:
        return None
    fig.update_layout(**_LAYOUT, boxmode="group", height=520,
                      title="Energy per tracking frame across the sequences (one point per sequence)",
                      yaxis=_log_axis(values, "energy per frame (log scale)"))
    return fig


def dataset_ratio_box(ratios: pd.DataFrame) -> go.Figure | None:
    """SNN / ANN energy per frame of each sequence, one box per pair x profile / estimator."""
    ok = ratios.dropna(subset=["ratio"]) if len(ratios) else ratios
    if len(ok) == 0:
        return None
    fig = go.Figure()
    for (snn, ann), g in ok.groupby(["snn", "ann"], sort=False):
        fig.add_box(x=g["profile"], y=g["ratio"], name=f"{snn} / {ann}", boxpoints="all", jitter=0.3, pointpos=0,
                    customdata=g["sequence"], hovertemplate="%{customdata}<br>%{x}<br>ratio %{y:.3g}<extra></extra>")
    fig.add_hline(y=1, line_dash="dash", line_color="#888", annotation_text="same energy")
    fig.update_layout(**_LAYOUT, boxmode="group", height=480, title="SNN / ANN energy per frame, per sequence",
                      yaxis=dict(title="ratio (log scale)", type="log"))
    return fig


def firing_rate_spread(spread: pd.DataFrame, model: str) -> go.Figure | None:
    """Per-layer firing rate across the dataset: layers x percentiles of the sequences' rates."""
    if len(spread) == 0:
        return None
    cols = [c for c in spread.columns if c.startswith("p")]
    fig = go.Figure(go.Heatmap(z=spread[cols].to_numpy(), x=cols, y=list(spread.index), colorscale="Viridis",
                               colorbar=dict(title="firing rate"),
                               hovertemplate="%{y}<br>%{x}: %{z:.4f}<extra></extra>"))
    fig.update_layout(**_LAYOUT, height=max(320, 60 + 18 * len(spread)),
                      title=f"{model}: firing rate per neuron module, percentiles over the sequences",
                      yaxis=dict(autorange="reversed", tickfont=dict(size=9)))
    return fig
