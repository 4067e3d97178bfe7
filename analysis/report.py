"""The report of a run: `report.html` (self-contained: plotly's JS bundle inline, works
offline), `report.md` and every table as CSV and JSON under `tables/`.

It reads the files a profile run wrote (summary.json, layers.csv, energy.csv, neurons.csv,
capture.npz) and nothing else; `write_report(run_dir)` can rebuild a report from a run folder.

The report opens with the headline (energy per frame under each profile / estimator, and
the ratio to the ANN baselines when there are any), then says where the weights came from,
what each estimator assumes and leaves out, and which estimators do not apply -- in words,
never as a 0.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
import pathlib

import pandas as pd

from snnsim.pipeline.summary import weights_label

from . import figures, tables
from .tables import fmt_count, fmt_energy, fmt_ratio

TABLES_DIR = "tables"

_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
 color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .1em} h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.3em}
.lead{font-size:1.15em;line-height:1.5} .muted{color:#666;font-size:.92em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f1f3f6} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.na{color:#999;font-style:italic}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:8px 14px;margin:.8em 0}
.note{background:#eef4fb;border-left:4px solid #4c78a8;padding:8px 14px;margin:.8em 0}
details{margin:.3em 0} summary{cursor:pointer;font-weight:600}
.figure{margin:1em 0 2em} code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
nav a{margin-right:1em}
"""


# ------------------------------------------------------------------------ small renderers
def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def html_table(rows: list[list], header: list[str], numeric: set[int] = frozenset()) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>")
        for i, cell in enumerate(r):
            cls = "num" if i in numeric else ""
            if cell == "not applicable":
                cls = "na"
            out.append(f'<td class="{cls}">{_e(cell)}</td>' if cls else f"<td>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def md_table(rows: list[list], header: list[str]) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


class Doc:
    """Builds the HTML body and the Markdown text side by side."""

    def __init__(self, title: str):
        self.title = title
        self.html: list[str] = []
        self.md: list[str] = [f"# {title}", ""]
        self.figures = 0

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        aid = f' id="{_e(anchor)}"' if anchor else ""
        self.html.append(f"<h{level}{aid}>{_e(text)}</h{level}>")
        self.md += ["#" * level + " " + text, ""]

    def p(self, text: str, cls: str | None = None, md_prefix: str = "") -> None:
        c = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{c}>{_e(text)}</p>")
        self.md += [md_prefix + text, ""]

    def box(self, text: str, kind: str = "note") -> None:
        self.html.append(f'<div class="{kind}">{_e(text)}</div>')
        self.md += [("> **Warning:** " if kind == "warn" else "> ") + text, ""]

    def bullets(self, items: list[str]) -> None:
        if not items:
            return
        self.html.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>")
        self.md += [f"- {i}" for i in items] + [""]

    def table(self, rows: list[list], header: list[str], numeric: set[int] = frozenset()) -> None:
        self.html.append(html_table(rows, header, numeric))
        self.md += [md_table(rows, header), ""]

    def details(self, summary: str, items: list[str], md_heading: bool = True) -> None:
        self.html.append(f"<details><summary>{_e(summary)}</summary><ul>"
                         + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul></details>")
        self.md += ([f"**{summary}**", ""] if md_heading else []) + [f"- {i}" for i in items] + [""]

    def figure(self, fig, name: str, missing: str) -> None:
        """A plotly figure, or the sentence saying why there is none."""
        if fig is None:
            self.p(missing, cls="muted")
            return
        self.figures += 1
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{name}",
                          config={"displaylogo": False, "responsive": True})
        self.html.append(f'<div class="figure" data-figure="{_e(name)}">{div}</div>')
        self.md += [f"*Figure: {fig.layout.title.text or name} (see report.html).*", ""]

    def raw_html(self, text: str) -> None:
        self.html.append(text)

    def render_html(self, subtitle: str = "") -> str:
        from plotly.offline import get_plotlyjs

        js = get_plotlyjs() if self.figures else ""
        script = f'<script type="text/javascript">{js}</script>' if js else ""
        sub = f'<p class="muted">{_e(subtitle)}</p>' if subtitle else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{_e(self.title)}</title><style>{_CSS}</style>{script}</head>\n<body><main>"
                f"<h1>{_e(self.title)}</h1>{sub}\n" + "\n".join(self.html) + "\n</main></body></html>\n")

    def render_md(self) -> str:
        return "\n".join(self.md).rstrip() + "\n"


# ------------------------------------------------------------------------ tables on disk
def write_tables(out: pathlib.Path, named: dict[str, pd.DataFrame]) -> list[str]:
    """Each table as tables/<name>.csv and tables/<name>.json (records)."""
    folder = out / TABLES_DIR
    folder.mkdir(exist_ok=True)
    written = []
    for name, df in named.items():
        df.to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.json").write_text(df.to_json(orient="records", indent=1, force_ascii=False) + "\n")
        written += [f"{TABLES_DIR}/{name}.csv", f"{TABLES_DIR}/{name}.json"]
    return written


def _read_csv(path: pathlib.Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


# ------------------------------------------------------------------------ sentences
def provenance_sentences(summary: dict) -> tuple[list[str], list[str]]:
    """(statements, warnings) about the weights and inputs of a run."""
    record = summary.get("weights") if isinstance(summary.get("weights"), dict) else {}
    source = record.get("source", "unknown")
    weights = weights_label(summary)
    spiking = summary.get("kind") == "spiking"
    said = [f"Weights: {weights}."]
    warns = []
    untrained = not record.get("trained", False)
    if untrained:
        what = {"random": "random initialisation",
                "golden": "deterministic test-fixture weights, not trained ones"}.get(source, "not known to be trained")
        if spiking:
            warns.append(f"These weights are untrained ({what}): the firing rates, spike counts and every "
                         "spike-driven energy figure in this report are not those of the trained model. "
                         "Load a trained checkpoint (--weights PATH) for publishable numbers.")
        else:
            said.append(f"These weights are untrained ({what}); an ANN's operation counts do not depend on "
                        "its weight values (every multiply-accumulate runs), so its energy here is that of the "
                        "trained model too.")
    if record.get("path"):
        said.append(f"Checkpoint file {record['path']} (sha256 {record.get('sha256')}).")
    if source in ("checkpoint", "default"):
        said.append("The checkpoint loaded strictly: every key and shape matched the model (weights only, read "
                    "as data).")
    for note in summary.get("notes") or []:
        if untrained and "untrained" in note.lower():
            continue                        # said above, in words fitting the model's kind
        (warns if "untrained" in note.lower() else said).append(note)
    inp = summary.get("input") or {}
    source = inp.get("source", "?")
    src_text = {"golden": "built-in golden inputs (deterministic pseudo-random images; no download)",
                "random": "random inputs (a seeded normal distribution)"}.get(source, f"inputs from {source}")
    if source == "sequence":
        first, last = inp.get("frames", ["?", "?"])
        src_text = (f"frames {first}-{last} of the {inp.get('layout', '')} sequence {inp.get('sequence', '?')}: "
                    f"{inp.get('crops', '')}")
    shapes = ", ".join(f"{k} {'x'.join(map(str, inp[k]))}" for k in ("template", "search")
                       if isinstance(inp.get(k), list))
    said.append(f"Inputs: {src_text}; {shapes}. {summary.get('timesteps', 1)} timestep(s) T; "
                f"{summary.get('frames_profiled', 1)} tracking frame(s) profiled; energy is per tracking frame "
                "with the template cached (the template pass runs at initialisation and template updates only "
                "and is priced on its own).")
    return said, warns


def hardware_sentence(summary: dict) -> str | None:
    """Which file each hardware profile's numbers came from (a user's by absolute path), with
    the sha256 of its bytes, and the same for the bases it builds on."""
    parts = []
    for p in summary.get("hardware_profiles") or []:
        where = "shipped" if p.get("shipped") else "user file"
        text = f"{p.get('name')} ({where}: {p.get('file')}, sha256 {p.get('sha256')}"
        for b in p.get("base") or []:
            text += f"; base {b.get('ref')}: {b.get('file')}, sha256 {b.get('sha256')}"
        parts.append(text + ")")
    return ("Hardware profiles: " + "; ".join(parts) + ".") if parts else None


def _uncounted_sentence(summary: dict) -> str | None:
    rows = summary.get("uncounted") or []
    if not rows:
        return None
    parts = sorted({f"{r.get('op')}" + (f" in {r['module']}" if r.get("module") else "") for r in rows})
    return ("Operators with no counting formula are listed, never counted as zero: " + ", ".join(parts) + ".")


def _headline_sentence(summary: dict, head: pd.DataFrame) -> str:
    model, kind = summary.get("model"), summary.get("kind")
    params = summary.get("params")
    who = f"{model} ({kind}, {fmt_count(params)} parameters)" if params else f"{model} ({kind})"
    ok = head[head["applicable"]]
    if len(head) == 0:
        totals = summary.get("totals") or {}
        return (f"{who} runs {fmt_count(totals.get('dense_macs'))} dense MACs per tracking frame (thop view, template "
                f"+ search: {fmt_count(summary.get('thop_macs'))}); no hardware profile was given, so no energy was "
                "estimated.")
    if len(ok) == 0:
        return f"{who}: no energy estimate applies under the hardware profiles of this run (see below)."
    if len(ok) == 1:
        r = ok.iloc[0]
        return (f"{who} spends {fmt_energy(r['joules_per_frame'])} per tracking frame on {r['hardware']} "
                f"({r['estimator']} estimator), template cached.")
    lo = ok.loc[ok["joules_per_frame"].astype(float).idxmin()]
    hi = ok.loc[ok["joules_per_frame"].astype(float).idxmax()]
    return (f"{who} spends between {fmt_energy(lo['joules_per_frame'])} ({lo['hardware']} / {lo['estimator']}) and "
            f"{fmt_energy(hi['joules_per_frame'])} ({hi['hardware']} / {hi['estimator']}) per tracking frame, "
            f"template cached, depending on the hardware profile and estimator.")


def _ratio_columns(head: pd.DataFrame) -> list[str]:
    return [c for c in head.columns if c.startswith("ratio_vs_")]


def headline_block(doc: Doc, summary: dict, head: pd.DataFrame, baselines: list[dict]) -> None:
    doc.p(_headline_sentence(summary, head), cls="lead", md_prefix="**Headline:** ")
    partial = tables.partial_note(summary)
    if partial:
        doc.box(partial, "warn")
    if len(head) == 0:
        doc.p("No hardware profile was given, so no energy was estimated; pass --hardware "
              "(e.g. horowitz-45nm-fp32,loihi2,jetson-agx-orin) to price the counts.")
        return
    rcols = _ratio_columns(head)
    header = ["hardware profile", "estimator", "number format", "energy per frame", "template pass"] + \
        [f"ratio to {c[len('ratio_vs_'):]} (SNN/ANN)" for c in rcols]
    rows = []
    for _, r in head.iterrows():
        row = [r["hardware"], r["estimator"], r["precision"], fmt_energy(r["joules_per_frame"]),
               fmt_energy(r["joules_template_pass"]) if r["applicable"] else "not applicable"]
        row += [fmt_ratio(r[c]) if not _is_missing(r[c]) else "not applicable" for c in rcols]
        rows.append(row)
    doc.table(rows, header, numeric={3, 4, *range(5, 5 + len(rcols))})
    for s in tables.not_applicable_sentences(summary):
        doc.p(s)
    if summary.get("kind") == "spiking":
        anns = [b["model"] for b in baselines if b.get("kind") != "spiking" and b.get("model") != summary.get("model")]
        if anns:
            doc.p("A ratio below 1 means the spiking model spends less than the ANN baseline under the same profile "
                  "and estimator; 'not applicable' means one of the two cannot be priced there.", cls="muted")
        else:
            doc.p("No ANN baseline was profiled in this run, so there is no SNN/ANN ratio; run "
                  f"`snnsim compare {summary.get('model')} asymtrack-t transt` for one.", cls="muted")


def estimator_block(doc: Doc, notes: pd.DataFrame) -> None:
    if len(notes) == 0:
        return
    doc.p("Each estimator prices the same counts with the profile's cited constants; what it assumes and what "
          "it leaves out:")
    for (hw, est), g in notes.groupby(["hardware", "estimator"], sort=False):
        na = g[g["note"] == "not applicable"]["text"].tolist()
        items = [f"Not applicable: {t}" for t in na]
        items += [f"Assumes: {t}" for t in g[g["note"] == "assumption"]["text"]]
        items += [f"Leaves out: {t}" for t in g[g["note"] == "omitted"]["text"]]
        doc.details(f"{hw} / {est}" + (" (not applicable)" if na else ""), items)


GRADED_SHOWN = 20   # rows of the multi-level spike listing shown in the report (all in tables/)


def spike_levels_block(doc: Doc, graded: pd.DataFrame, unseen: pd.DataFrame) -> None:
    """The layers that received multi-level or signed spikes (largest level), and the neuron
    modules that ran unseen -- each only when there are any."""
    if len(graded):
        doc.h(3, "Layers receiving multi-level or signed spikes")
        doc.p(f"{len(graded)} layer operator(s) received spikes of more than one level (graded spikes, sums of "
              "spikes such as SEW \"ADD\" residuals) or signed spikes. A spike of level k is one synaptic event "
              "per synapse it reaches in syn_events and |k| in syn_ops.", cls="muted")
        shown = graded.head(GRADED_SHOWN)
        doc.table([[r["module"], r["module_type"], r["op"], r["branch"] or "-", int(r["max_level"]),
                    "yes" if r["signed"] else "no"] for _, r in shown.iterrows()],
                  ["module", "type", "operator", "branch", "largest |level|", "signed"], numeric={4})
        if len(graded) > len(shown):
            doc.p(f"The first {len(shown)} of {len(graded)} (largest level overall: {int(graded['max_level'].max())}"
                  f"{', some signed' if graded['signed'].any() else ''}); all of them: tables/graded_spikes.csv.",
                  cls="muted")
    if len(unseen):
        doc.box(f"{len(unseen)} neuron module(s) never seen running although the module holding them ran (a path "
                "that skips forward hooks): their updates and spikes are missing from the counts: "
                + ", ".join(f"{r['module']} ({r['module_type']}, {r['framework']})"
                            if isinstance(r["module_type"], str) else str(r["module"]) for _, r in unseen.iterrows())
                + ".", "warn")


# ------------------------------------------------------------------------ the profile report
def build_tables(summary: dict, energy: pd.DataFrame | None, neurons: pd.DataFrame | None,
                 baselines: list[dict], counts: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """`counts`: layers.csv (the per-layer counts), for the multi-level / signed spike listing."""
    layers = tables.layer_energy(energy)
    out = {
        "headline": tables.headline(summary, baselines),
        "counts": tables.counts_table(summary),
        "graded_spikes": tables.graded_spikes(counts, summary),
        "unseen_neurons": tables.unseen_neurons(summary),
        "estimator_notes": tables.estimator_notes(summary),
        "layer_energy": layers,
        "top_layers": tables.top_layers(layers, 12),
        "branch_energy": tables.branch_energy(layers),
        "type_share": tables.type_share(layers),
        "firing_heatmap": tables.firing_heatmap(neurons),
        "module_rates": tables.module_rates(neurons),
    }
    if baselines:
        comp = tables.comparison([summary] + [b for b in baselines if b.get("model") != summary.get("model")])
        out["ratios"] = tables.ratios(comp)
    return out


def write_report(run_dir: str | pathlib.Path, baselines: list[dict] | None = None,
                 links: dict[str, str] | None = None) -> dict[str, object]:
    """Write report.html, report.md and tables/ into a run folder from its files.

    baselines  summaries (summary.json dicts) of ANN models to report ratios against.
    links      {text: relative href} shown at the top (e.g. back to an index page).
    Returns {'figures': number of plot divs, 'files': written file names}.
    """
    run = pathlib.Path(run_dir)
    summary = json.loads((run / "summary.json").read_text())
    energy = _read_csv(run / "energy.csv")
    neurons = _read_csv(run / "neurons.csv")
    counts = _read_csv(run / "layers.csv")
    from .capture import load_capture

    capture = load_capture(run / "capture.npz")
    baselines = [b for b in (baselines or []) if b.get("model") != summary.get("model")]
    t = build_tables(summary, energy, neurons, baselines, counts)
    files = write_tables(run, t)

    model = summary.get("model", "model")
    doc = Doc(f"snnsim report: {model}")
    if links:
        doc.raw_html("<nav>" + "".join(f'<a href="{_e(h)}">{_e(k)}</a>' for k, h in links.items()) + "</nav>")
    # 1. headline
    doc.h(2, "Energy per tracking frame", "headline")
    headline_block(doc, summary, t["headline"], baselines)
    # 2. provenance
    doc.h(2, "Weights and inputs", "provenance")
    said, warns = provenance_sentences(summary)
    for w in warns:
        doc.box(w, "warn")
    for s in said:
        doc.p(s)
    hw_files = hardware_sentence(summary)
    if hw_files:
        doc.p(hw_files)
    # 3. estimators
    doc.h(2, "Estimator assumptions and what is left out", "assumptions")
    estimator_block(doc, t["estimator_notes"])
    # 4. counts
    doc.h(2, "Operation counts", "counts")
    c = t["counts"]
    doc.table([[r["count"], fmt_count(r["per_frame"]),
                fmt_count(r["template_pass"]) if not _is_missing(r["template_pass"]) else "-"]
               for _, r in c.iterrows()], ["count", "per tracking frame", "template pass"], numeric={1, 2})
    if tables.partial_note(summary):
        doc.box(tables.partial_note(summary), "warn")
    doc.p(f"Parameters: {fmt_count(summary.get('params'))} in the model, "
          f"{fmt_count(summary.get('thop_params'))} as thop counts them (conv / linear / norm modules that ran). "
          "Counts are per sample and include every timestep.", cls="muted")
    unc = _uncounted_sentence(summary)
    if unc:
        doc.p(unc, cls="muted")
    spike_levels_block(doc, t["graded_spikes"], t["unseen_neurons"])
    # 5. per-layer energy
    doc.h(2, "Per-layer energy", "layers")
    layers = t["layer_energy"]
    doc.figure(figures.layer_energy(layers), "layer-energy",
               "No per-layer energy: no estimator applies under the hardware profiles of this run.")
    if len(layers):
        first = t["top_layers"]
        hw, est = figures.default_combo(layers)
        for branch in ("frame", "template"):
            g = first[(first["hardware"] == hw) & (first["estimator"] == est) & (first["branch"] == branch)]
            if len(g) == 0:
                continue
            doc.h(3, f"Costliest modules, {figures.BRANCH_NAMES[branch]}, on {hw} / {est}")
            doc.table([[r["module"], r["module_type"], fmt_energy(r["compute_J"]), fmt_energy(r["memory_J"]),
                        fmt_energy(r["comm_J"]), fmt_energy(r["total_J"]), f"{100 * r['share']:.1f} %"]
                       for _, r in g.iterrows()],
                      ["module", "type", "compute", "memory", "communication", "total", "share"],
                      numeric={2, 3, 4, 5, 6})
        doc.p("Other profiles and estimators: the menu of the figure above, and tables/top_layers.csv.", cls="muted")
        doc.h(3, "Template branch apart from the per-frame branch")
        b = t["branch_energy"]
        doc.table([[r["hardware"], r["estimator"], figures.BRANCH_NAMES.get(r["branch"], r["branch"]),
                    fmt_energy(r["compute_J"]), fmt_energy(r["memory_J"]), fmt_energy(r["comm_J"]),
                    fmt_energy(r["total_J"])] for _, r in b.iterrows()],
                  ["hardware profile", "estimator", "branch", "compute", "memory", "communication", "total"],
                  numeric={3, 4, 5, 6})
        doc.figure(figures.type_share(t["type_share"]), "type-share", "")
    # 6. firing rates
    doc.h(2, "Firing rates", "firing")
    heat = t["firing_heatmap"]
    if len(heat) == 0:
        doc.p(f"Firing-rate heatmaps are not applicable to {model}: it has no spiking neurons (an ANN).")
    else:
        doc.p("Nonzero fraction is the share of neurons that emit a (nonzero) spike; mean level is the mean "
              "integer spike level (a graded spike of level k counts k). Template pass and tracking frame side by "
              "side.", cls="muted")
        doc.figure(figures.firing_heatmap(heat, "firing_rate"), "firing-rate", "")
        doc.figure(figures.firing_heatmap(heat, "mean_level"), "mean-level", "")
        if capture:
            meta = capture["meta"]
            doc.h(3, f"Where the spikes are: {meta['module']}")
            doc.p(f"Read off {meta['module']} ({meta['module_type']}) during the counted passes themselves (no "
                  f"second forward); its output read as [{meta['layout']}]. Files: capture.npz, capture_channels.csv, "
                  "capture_positions.csv.", cls="muted")
            doc.figure(figures.capture_spatial(capture), "capture-spatial", "")
            doc.figure(figures.capture_channels(capture), "capture-channels", "")
        else:
            doc.p("No channel x position map: no module was captured in this run (snnsim profile --capture MODULE).",
                  cls="muted")
    # 7. hardware comparison
    doc.h(2, "Hardware comparison", "hardware")
    doc.figure(figures.energy_by_profile(t["headline"], f"{model}: energy per frame by hardware profile and estimator"),
               "energy-by-profile", "No hardware profile was given, so there is nothing to compare.")
    if "ratios" in t:
        doc.figure(figures.ratio_bars(t["ratios"]), "ratios",
                   "No SNN/ANN ratio: no profile / estimator prices both models.")
    # 8. files
    doc.h(2, "Files", "files")
    listed = ["summary.json", "layers.csv", "neurons.csv", "energy.csv"] + \
        (["capture.npz", "capture_channels.csv", "capture_positions.csv"] if capture else []) + \
        ["report.md"] + files
    doc.bullets(listed)
    doc.p("neurons.csv: one row per (branch, neuron module, call, timestep); the tracking-frame rows are "
          "summed over every profiled frame (their `frames` column says how many), so memory stays flat "
          "whatever the number of frames.")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (run / "report.html").write_text(doc.render_html(f"generated by snnsim {_version()} on {stamp}"),
                                     encoding="utf-8")
    (run / "report.md").write_text(doc.render_md(), encoding="utf-8")
    return {"figures": doc.figures, "files": ["report.html", "report.md", *files]}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("snnsim")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "(source tree)"


# ------------------------------------------------------------------------ comparison report
def comparison_tables(summaries: list[dict]) -> dict[str, pd.DataFrame]:
    comp = tables.comparison(summaries)
    return {"comparison": comp, "ratios": tables.ratios(comp), "spread": tables.spread(comp)}


def comparison_headline_rows(comp: pd.DataFrame, ratios: pd.DataFrame) -> tuple[list[str], list[list]]:
    """Rows profile / estimator, columns the models' energy per frame and the SNN/ANN ratios."""
    models = list(dict.fromkeys(comp["model"]))
    pairs = list(dict.fromkeys(zip(ratios["snn"], ratios["ann"]))) if len(ratios) else []
    header = ["hardware profile", "estimator", "number format"] + models + [f"{s} / {a}" for s, a in pairs]
    idx = comp.set_index(["model", "hardware", "estimator"])["joules_per_frame"]
    ridx = ratios.set_index(["snn", "ann", "hardware", "estimator"])["ratio"] if len(ratios) else {}
    formats = comp.groupby(["hardware", "estimator"], sort=False)["precision"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    rows = []
    for hw, est in dict.fromkeys(zip(comp["hardware"], comp["estimator"])):
        row = [hw, est, formats[(hw, est)]] + [fmt_energy(idx.get((m, hw, est))) for m in models]
        row += [fmt_ratio(ridx.get((s, a, hw, est))) for s, a in pairs]
        rows.append(row)
    return header, rows


def write_comparison(out: str | pathlib.Path, summaries: list[dict], links: dict[str, str] | None = None,
                     name: str = "comparison") -> dict[str, object]:
    """comparison.csv / .json / .html / .md (+ ratios and spread tables) in `out`."""
    out = pathlib.Path(out)
    t = comparison_tables(summaries)
    comp, ratios, spread = t["comparison"], t["ratios"], t["spread"]
    comp.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.json").write_text(json.dumps({
        "models": [{k: s.get(k) for k in ("model", "kind", "params", "weights", "input", "timesteps", "totals",
                                          "template", "thop_macs", "energy", "energy_template",
                                          "hardware_profiles")}
                   for s in summaries],
        "comparison": json.loads(comp.to_json(orient="records")),
        "ratios": json.loads(ratios.to_json(orient="records")),
        "spread": json.loads(spread.to_json(orient="records"))}, indent=1) + "\n")
    files = [f"{name}.csv", f"{name}.json"] + write_tables(out, {"ratios": ratios, "spread": spread})

    models = [s["model"] for s in summaries]
    doc = Doc("snnsim comparison: " + ", ".join(models))
    if links:
        doc.raw_html("<nav>" + "".join(f'<a href="{_e(h)}">{_e(k)}</a>' for k, h in links.items()) + "</nav>")
    doc.h(2, "Energy per tracking frame", "headline")
    header, rows = comparison_headline_rows(comp, ratios)
    doc.p(_comparison_sentence(comp, ratios), cls="lead", md_prefix="**Headline:** ")
    doc.table(rows, header, numeric=set(range(3, len(header))))
    for s in summaries:
        for sentence in tables.not_applicable_sentences(s):
            doc.p(sentence)
    doc.p("SNN / ANN columns: the spiking model's energy per frame divided by the ANN's under the same profile and "
          "estimator (below 1: the SNN spends less).", cls="muted")
    doc.h(2, "Weights and inputs", "provenance")
    for s in summaries:
        said, warns = provenance_sentences(s)
        for w in warns + ([tables.partial_note(s)] if tables.partial_note(s) else []):
            doc.box(f"{s['model']}: {w}", "warn")
        doc.p(f"{s['model']}: " + " ".join(said))
    hw_files = next((hardware_sentence(s) for s in summaries if s.get("hardware_profiles")), None)
    if hw_files:
        doc.p(hw_files)
    doc.h(2, "Estimator assumptions and what is left out", "assumptions")
    notes = pd.concat([tables.estimator_notes(s) for s in summaries], ignore_index=True).drop_duplicates()
    estimator_block(doc, notes)
    doc.h(2, "Models x profiles x estimators", "figures")
    doc.figure(figures.compare_energy(comp), "compare-energy", "No energy was estimated.")
    doc.figure(figures.ratio_bars(ratios), "ratios",
               "No SNN/ANN ratio: the run needs a spiking model and an ANN priced under the same profile.")
    doc.h(2, "Spread between estimators", "spread")
    doc.figure(figures.estimator_spread(comp), "spread", "No energy was estimated.")
    spread = spread[(spread["scope"] == "all") | (spread["n"] > 1)] if len(spread) else spread
    if len(spread):
        doc.p("Within one profile: how far its estimators disagree; 'all': every profile and estimator that prices "
              "the model (hardware and estimator differences together).", cls="muted")
        doc.table([[r["model"], r["hardware"], r["n"], fmt_energy(r["min_joules"]), fmt_energy(r["max_joules"]),
                    _fmt_factor(r["max_over_min"]),
                    r["cheapest"], r["costliest"]] for _, r in spread.iterrows()],
                  ["model", "profile ('all': every profile)", "estimates", "lowest", "highest", "spread",
                   "lowest under", "highest under"], numeric={2, 3, 4, 5})
    doc.h(2, "Files", "files")
    doc.bullets([f"{name}.html", f"{name}.md"] + files)
    (out / f"{name}.html").write_text(doc.render_html(f"generated by snnsim {_version()}"), encoding="utf-8")
    (out / f"{name}.md").write_text(doc.render_md(), encoding="utf-8")
    return {"figures": doc.figures, "files": [f"{name}.html", f"{name}.md", *files]}


def _fmt_factor(x) -> str:
    if _is_missing(x):
        return "-"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def _comparison_sentence(comp: pd.DataFrame, ratios: pd.DataFrame) -> str:
    ok = ratios[ratios["ratio"].notna()] if len(ratios) else ratios
    if len(ok) == 0:
        n = comp["model"].nunique()
        return f"{n} model(s) priced under {comp[['hardware', 'estimator']].drop_duplicates().shape[0]} " \
               "profile / estimator pairs; no SNN/ANN pair is priced under the same profile."
    parts = []
    for (s, a), g in ok.groupby(["snn", "ann"], sort=False):
        lo, hi = g["ratio"].min(), g["ratio"].max()
        parts.append(f"{s} spends {fmt_ratio(lo)} to {fmt_ratio(hi)} of {a}'s energy per frame")
    return "; ".join(parts) + ", depending on the hardware profile and estimator."


# ------------------------------------------------------------------------ index (demo)
def write_index(out: str | pathlib.Path, summaries: list[dict], title: str, intro: str,
                comparison: str = "comparison.html", break_even: dict | None = None,
                counts_only: list[dict] | None = None) -> list[str]:
    """index.html (+ index.md): the headline table and links to every report; with
    `break_even` (see break_even_block) the twin pair's break-even section, with `counts_only`
    (summaries of models not priced: untrained weights) their counts in a table labelled so.
    Returns the extra files written (tables/)."""
    out = pathlib.Path(out)
    t = comparison_tables(summaries)
    header, rows = comparison_headline_rows(t["comparison"], t["ratios"])
    doc = Doc(title)
    doc.p(intro, cls="lead")
    doc.p(_comparison_sentence(t["comparison"], t["ratios"]))
    doc.table(rows, header, numeric=set(range(3, len(header))))
    for s in summaries:
        for sentence in tables.not_applicable_sentences(s):
            doc.p(sentence)
    files: list[str] = []
    if break_even:
        files += break_even_block(doc, out, break_even)
    if counts_only:
        counts_only_block(doc, counts_only)
        summaries = summaries + counts_only
    doc.h(2, "Reports")
    doc.raw_html("<ul>" + f'<li><a href="{_e(comparison)}">comparison of all models</a></li>' + "".join(
        f'<li><a href="{_e(s["model"])}/report.html">{_e(s["model"])}</a> ({_e(s.get("kind"))}; weights: '
        f'{_e(weights_label(s))})</li>' for s in summaries) + "</ul>")
    doc.md += [f"- [{comparison}]({comparison})"] + [f"- [{s['model']}]({s['model']}/report.md)" for s in summaries]
    doc.md.append("")
    (out / "index.html").write_text(doc.render_html(), encoding="utf-8")
    (out / "index.md").write_text(doc.render_md(), encoding="utf-8")
    return files


def _fmt_rate(r) -> str:
    return "-" if _is_missing(r) else f"{100 * float(r):.3g} %"


def break_even_block(doc: Doc, out: pathlib.Path, be: dict) -> list[str]:
    """The twin pair's break-even section. `be`: {'snn', 'ann' (names), 'whole' (one row per
    profile x estimator: snnsim.energy.break_even.break_even_table), 'layers' ({estimator:
    layer_break_even table}), 'layers_hardware', 'curves' (break_even_curves), 'activity_model',
    'frames' (a sentence: what the counts were taken on)}. Writes its tables under tables/."""
    snn, ann, whole = be["snn"], be["ann"], be["whole"]
    doc.h(2, f"Break-even firing rate: {snn} against its ANN twin {ann}", "break-even")
    doc.p(f"The mean firing rate at which {snn} would spend as much energy per frame as {ann} (the same network "
          f"with real-valued activations), under each profile and estimator, beside the rate it fires at. "
          f"Counts: {be['frames']}.", cls="lead")
    rows = []
    for _, r in whole.iterrows():
        if r["verdict"] == "break-even":
            at = _fmt_rate(r["break_even_rate"])
            room = _fmt_factor(r["factor"])
        else:
            at, room = r["verdict"], "-"
        rows.append([r["hardware"], r["estimator"], _fmt_rate(r["measured_rate"]), at, room,
                     fmt_energy(r["snn_j"]), fmt_energy(r["ann_j"])])
    doc.table(rows, ["hardware profile", "estimator", "measured rate", "break-even rate", "headroom",
                     f"{snn} per frame", f"{ann} per frame"], numeric={2, 4, 5, 6})
    reasons = [f"{r['hardware']} / {r['estimator']}: {r['reason']}" for _, r in whole.iterrows()
               if r["verdict"] != "break-even" and r.get("reason")]
    if reasons:
        doc.details("Why some pairs have no break-even rate", reasons)
    doc.p(f"Activity model: {be['activity_model']}. Headroom: how many times the activity could grow before "
          "the energies meet.", cls="muted")
    doc.figure(figures.break_even_curves(be["curves"], snn, ann), "break-even",
               "No curve: no profile prices both models.")
    for est, layers in be["layers"].items():
        if not len(layers):
            continue
        counts = layers["verdict"].value_counts()
        doc.h(3, f"Per layer, {be['layers_hardware']} / {est}")
        doc.p(f"{len(layers)} layers that take spikes: " + ", ".join(f"{n} {v}" for v, n in counts.items())
              + ". A layer's rate is its input spike rate (synaptic events / dense synapse-input pairs).",
              cls="muted")
        crossing = layers[layers["verdict"] == "break-even"].copy()
        if len(crossing):
            crossing["headroom"] = crossing["break_even_rate"] / crossing["input_rate"]
            crossing = crossing.sort_values("headroom").head(10)
            doc.table([[r["module"], _fmt_rate(r["input_rate"]), _fmt_rate(r["break_even_rate"]),
                        _fmt_factor(r["headroom"]), fmt_energy(r["snn_J"]), fmt_energy(r["ann_J"])]
                       for _, r in crossing.iterrows()],
                      ["layer (least headroom first)", "input rate", "break-even rate", "headroom",
                       f"{snn}", f"{ann}"], numeric={1, 2, 3, 4, 5})
    named = {"break_even": whole, "break_even_curves": be["curves"]}
    named.update({f"break_even_layers_{est}": t for est, t in be["layers"].items()})
    return write_tables(out, named)


def counts_only_block(doc: Doc, summaries: list[dict]) -> None:
    """Models profiled with untrained (golden / random) weights: counts, no energy -- their
    firing rates are not a trained network's, so no energy figure is drawn from them."""
    doc.h(2, "Untrained models: counts only", "counts-only")
    doc.p("These models ran with untrained weights (golden: the fixtures' deterministic weights; random). Their "
          "operation counts are exact for those weights, but their firing rates are not a trained network's, so "
          "they are not priced here.", cls="muted")
    rows = []
    for s in summaries:
        tot = s.get("totals") or {}
        rows.append([s["model"], s.get("kind"), weights_label(s), fmt_count(s.get("params")),
                     fmt_count(s.get("thop_macs")), fmt_count(tot.get("dense_macs")), fmt_count(tot.get("mac_ops")),
                     fmt_count(tot.get("syn_ops")), fmt_count(tot.get("spikes"))])
    doc.table(rows, ["model", "kind", "weights", "params", "thop MACs (template + search)", "dense MACs / frame",
                     "MACs / frame", "synaptic ops / frame", "spikes / frame"], numeric={3, 4, 5, 6, 7, 8})


# ------------------------------------------------------------------------ a tracking run
def write_track_report(path: pathlib.Path, summary: dict, per_frame_csv: pathlib.Path,
                       energy_columns: dict[str, str]) -> None:
    """report.html of `snnsim track`: the run's facts, its metrics and the energy-per-frame
    series, read back from per_frame.csv (nothing per frame is held in memory for it).
    `energy_columns`: {series label: per_frame.csv column of its joules per frame}."""
    import csv

    series: dict[str, list] = {label: [] for label in energy_columns}
    frames, template_frames = [], []
    with open(per_frame_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            f = int(r["frame"])
            frames.append(f)
            if r["template_ran"] == "1":
                template_frames.append(f)
            for label, col in energy_columns.items():
                v = r[col]
                series[label].append(float(v) if v != "" else None)
    seq = summary["input"]
    doc = Doc(f"snnsim track: {summary['model']} on {seq['name']}")
    listed = template_frames[:12]
    rows = [["model", summary["model"]], ["weights", weights_label(summary)],
            ["sequence", f"{seq['name']} ({seq['layout']})"],
            ["frames", summary["frames"]],
            ["template passes", f"{summary['template_passes']} (frames {', '.join(map(str, listed))}"
                                + (f", ... ({len(template_frames)} in all)" if len(template_frames) > 12 else "") + ")"]]
    for hw, by in summary["energy"].items():
        for est, j in by.items():
            tpl = (summary.get("energy_template") or {}).get(hw, {}).get(est)
            spread = summary["energy_with_template_per_frame"][hw][est]
            fmt = summary["energy_precision"].get(hw, {}).get(est, "not stated") or "n/a"
            rows.append([f"energy, {hw} / {est} ({fmt})", "not applicable" if j is None else
                         f"{fmt_energy(j)} per frame (search pass)"
                         + (f"; {fmt_energy(tpl)} per template pass; {fmt_energy(spread)} per frame with the "
                            "template passes spread over the frames" if tpl is not None else "")])
    m = summary.get("metrics")
    if m and summary["task"] == "sot":
        rows.append(["success AUC / precision / norm. precision",
                     f"{m['auc']:.3f} / {m['precision']:.3f} / {m['norm_precision']:.3f}"])
    elif m:
        rows.append(["HOTA / MOTA / IDF1", f"{m['HOTA']:.3f} / {m['MOTA']:.3f} / {m['IDF1']:.3f}"])
    doc.table(rows, ["", ""])
    doc.bullets(list(summary["notes"]))
    doc.figure(figures.energy_per_frame(frames, template_frames, series), "energy-per-frame",
               "No energy estimates (no hardware profile given, or none applies to this model).")
    path.write_text(doc.render_html(), encoding="utf-8")
