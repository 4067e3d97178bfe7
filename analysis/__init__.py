"""snnsim.analysis: tidy tables, plotly figures and the HTML / Markdown reports.

It reads what a run writes (summary.json, energy.csv, neurons.csv, capture.npz) -- tables,
never torch modules; `capture` is the one helper that runs a model (a forward hook on one
neuron module, for the channel x position maps).

    from snnsim.analysis import write_report, tables, figures
    write_report("out/st")          # report.html + report.md + tables/ from a run folder
"""
from . import figures, tables
from .outputs import write_profile, write_suite
from .report import write_comparison, write_index, write_report

__all__ = ["figures", "tables", "write_comparison", "write_index",
           "write_profile", "write_report", "write_suite"]
