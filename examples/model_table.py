"""Print the README's model table: params, thop GMACs (template + search, as papers publish),
full GMACs per tracking frame, template GMACs and neuron sites, from `snnsim profile`'s counts.

    python examples/model_table.py > /tmp/table.md
"""
from __future__ import annotations

import sys

import torch

from snnsim.models import build_model, list_models
from snnsim.tracking.frame_counts import profile_tracker

PUBLISHED = {  # thop GMACs / params as the papers publish them (specs/models.md)
    "asymtrack-t": (0.7, 3.05), "asymtrack-s": (0.8, 3.36), "asymtrack-b": (1.8, 3.36), "transt": (19.2, 23.0),
}


def main(names: list[str]) -> None:
    torch.set_num_threads(2)
    print("| model | kind | params (M) | thop params (M) | thop GMAC | published | full GMAC / frame | "
          "template GMAC | syn_ops G / frame | neuron sites |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in list_models():
        if names and spec.name not in names:
            continue
        weights = "golden" if spec.name != "spiketrack-tiny" else None
        tp = profile_tracker(build_model(spec.name, weights), "golden" if weights else "random")
        sites = set(tp.frame.neurons.module)
        if tp.template is not None:
            sites |= set(tp.template.neurons.module)
        pub = PUBLISHED.get(spec.name)
        pub_text = f"{pub[0]} G, {pub[1]} M" if pub else ""
        tpl = tp.template_totals["dense_macs"] / 1e9 if tp.template_totals else 0.0
        print(f"| {spec.name} | {spec.kind} | {tp.params / 1e6:.2f} | {tp.thop_params / 1e6:.2f} | "
              f"{tp.thop_macs / 1e9:.3f} | {pub_text} | {tp.totals['dense_macs'] / 1e9:.3f} | {tpl:.3f} | "
              f"{tp.totals['syn_ops'] / 1e9:.3f} | {len(sites)} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
