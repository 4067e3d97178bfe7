"""Neuromorphic estimators: `loihi` (per-event energies + core-capacity verdict) and `synop`
(one energy per synaptic operation, for chips that publish only that, e.g. TrueNorth).

loihi:  E = synops x E_synop
          + sum over neuron updates of (E_update_active if the neuron spiked else E_update)
          + spike messages x (E_spike + mean_hops x E_hop)
- binary-only chips (Loihi 1): a graded spike of level k is sent as k binary spikes, so
  synops = syn_ops (level-weighted) and messages = spike_mass (sum of levels);
- graded-spike chips (Loihi 2): one message carries the level as a payload, so
  synops = syn_events and messages = spikes (nonzero count).
Operations a neurocore cannot do -- MACs on real-valued inputs (the encoding layer),
products of two spike tensors and element-wise spike operations (masks / gates multiplying
two activations, token sums over a layer's spikes: `spike_mask`) -- run on the host /
embedded cores; they are reported, not priced. ANNs are not applicable (no spiking neurons to place on the chip).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .counts import CountTables, group_sum
from .result import Energy, finish_table, not_applicable
from .schema import HardwareProfile
from .units import format_si

_CAPACITY = ("neurons_per_core", "cores_per_chip", "synapse_memory_per_core", "synapse_bits")


def _ann_reason(hw: HardwareProfile) -> str:
    return (f"the model has no spiking neurons (an ANN): {hw.name} runs spiking networks "
            f"only, so there is nothing to place on its cores; convert it to an SNN first")


def _synops(counts: CountTables, hw: HardwareProfile) -> np.ndarray:
    col = "syn_ops" if hw.binary_spikes_only else "syn_events"
    return counts.layers[col].to_numpy()


def _synop_rows(counts: CountTables, hw: HardwareProfile, e_syn: float) -> pd.DataFrame:
    """Per-operator rows both neuromorphic estimators start from: synaptic operations on the
    cores and their energy; MACs and spike x spike products stay on the host (not priced)."""
    L = counts.layers
    rows = pd.DataFrame({"module": L["module"], "synops": _synops(counts, hw),
                         "host_macs": L["mac_ops"], "host_spike_spike": L["spike_spike"],
                         "host_spike_mask": L["spike_mask"]})
    rows["synop_J"] = rows["synops"] * e_syn
    return rows


def _messages_column(hw: HardwareProfile) -> str:
    return "spike_mass" if hw.binary_spikes_only else "spikes"


def capacity(counts: CountTables, hw: HardwareProfile) -> tuple[dict, pd.Series]:
    """Fits / does-not-fit verdict from core limits, and cores per module.

    Layers that run on the cores: synaptic operators with a weight and a spike input. A layer's
    neurons = its output elements per timestep (out_numel / T). Cores for a layer = the larger
    of ceil(neurons / neurons_per_core) and ceil(synapse bits / synapse memory per core), one
    layer per core; a conv layer's shared kernel is stored once in every core its neurons map
    to (so its synapse bits = weights x synapse_bits x its neuron cores), a dense layer's
    weights once.
    """
    L = counts.layers
    T = counts.timesteps
    npc = hw.si("neurons_per_core")
    cpc = hw.si("cores_per_chip")
    mem_bits = hw.si("synapse_memory_per_core") * 8
    syn_bits = hw.si("synapse_bits") * 8

    # (element-wise spike operations run on the host even when one operand is a parameter)
    on_chip = L[(L["weight_numel"] > 0) & L["spiking_input"] & ~L["kind"].isin(("spike_mask", "token_sum"))]
    cores = pd.Series(dtype=float)
    total_syn_bits = 0.0
    if len(on_chip):
        g = on_chip.groupby("module", sort=False).agg(weights=("weight_numel", "max"),
                                                      out=("out_numel", "sum"),
                                                      kind=("kind", "first"))
        layer_neurons = g["out"].to_numpy() / T
        neuron_cores = np.ceil(layer_neurons / npc)
        is_conv = (g["kind"] == "conv").to_numpy()
        bits = g["weights"].to_numpy() * syn_bits * np.where(is_conv, np.maximum(neuron_cores, 1), 1)
        syn_cores = np.ceil(bits / mem_bits)
        per_layer = np.maximum(np.maximum(neuron_cores, syn_cores), 1)
        cores = pd.Series(per_layer, index=g.index.astype(str))
        total_syn_bits = float(bits.sum())

    model_neurons = float(counts.neurons_at_one_t().sum())
    cores_needed = int(max(cores.sum() if len(cores) else 0, math.ceil(model_neurons / npc)))
    chips_needed = max(1, math.ceil(cores_needed / cpc))
    neuron_cap = npc * cpc
    syn_cap_bits = mem_bits * cpc
    fits = cores_needed <= cpc

    host = L[(L["mac_ops"] > 0) | (L["spike_spike"] > 0) | (L["spike_mask"] > 0)]
    host_modules = list(dict.fromkeys(host["module"]))
    if fits:
        verdict = (f"fits on one {hw.name} chip: {cores_needed} of {cpc:.0f} cores "
                   f"({100 * cores_needed / cpc:.0f} %), {model_neurons:,.0f} of "
                   f"{neuron_cap:,.0f} neurons, {total_syn_bits / 8 / 1024:,.0f} KiB of "
                   f"{syn_cap_bits / 8 / 1024:,.0f} KiB synaptic memory")
    else:
        verdict = (f"does not fit on one {hw.name} chip: needs {cores_needed:,} cores, "
                   f"{cores_needed / cpc:.1f}x the {cpc:.0f} cores of one chip "
                   f"({chips_needed} chips); neurons {model_neurons / neuron_cap:.2f}x and "
                   f"synaptic memory {total_syn_bits / syn_cap_bits:.2f}x one chip's capacity")
    mapping = {
        "fits": bool(fits),
        "verdict": verdict,
        "cores_needed": cores_needed,
        "chips_needed": chips_needed,
        "cores_per_chip": int(cpc),
        "neurons": model_neurons,
        "neurons_per_chip": neuron_cap,
        "neuron_ratio": model_neurons / neuron_cap,
        "synapse_bytes": total_syn_bits / 8,
        "synapse_bytes_per_chip": syn_cap_bits / 8,
        "synapse_ratio": total_syn_bits / syn_cap_bits,
        "core_ratio": cores_needed / cpc,
        "host_modules": host_modules,
    }
    return mapping, cores


def _mapping_assumptions(hw: HardwareProfile) -> list[str]:
    return [
        f"mapping: one layer per core (cores are not shared between layers); a layer's "
        f"neurons are its output elements per timestep; {hw.si('neurons_per_core'):,.0f} "
        f"neurons and {format_si(hw.si('synapse_memory_per_core'), 'memory')} of synaptic "
        f"memory per core, {hw.si('synapse_bits') * 8:g}-bit synapses",
        "conv weight sharing: a conv layer's kernel is stored once in every core its neurons "
        "map to; dense / linear weights are stored once",
        "the model's neurons = the sum over neuron modules of their neurons at one timestep",
    ]


_HOST_RULE = ("operations with no synapse to run on -- MACs on real-valued inputs, spike x spike "
              "products (spike_spike) and element-wise spike operations (spike_mask: masks, "
              "gates, token sums) -- run on the host / embedded cores and are not priced")


def _host_sentence(counts: CountTables) -> list[str]:
    L = counts.layers
    host_macs = float(L["mac_ops"].sum())
    host_ss = float(L["spike_spike"].sum())
    out = []
    if host_macs:
        out.append(f"{host_macs:,.0f} MACs on real-valued (non-spike) inputs per sample, "
                   f"e.g. the encoding layer on the image, run off the neurocores (host / "
                   f"embedded cores) and are not priced")
    if host_ss:
        out.append(f"{host_ss:,.0f} spike x spike products per sample (e.g. spiking Q K^T) "
                   f"cannot run on neurocores; run on the host / embedded cores, not priced")
    host_mask = float(L["spike_mask"].sum())
    if host_mask:
        out.append(f"{host_mask:,.0f} element-wise spike operations per sample (masks / gates "
                   f"multiplying two activations, spike-driven token sums) have no synapse to "
                   f"run on; run on the host / embedded cores, not priced")
    return out


def estimate_loihi(counts: CountTables, hw: HardwareProfile,
                   mean_hops: float | None = None) -> Energy:
    base_omitted = ["static (leakage) power of idle cores and the chip's fixed overhead",
                    "timestep barrier synchronisation messages",
                    "input / output traffic between the host and the chip"]
    if not counts.is_spiking:
        return not_applicable("loihi", hw.name, _ann_reason(hw), base_omitted)
    hops = float(mean_hops) if mean_hops is not None else hw.si("mean_hops")
    if not (hops >= 0 and math.isfinite(hops)):
        raise ValueError(f"mean_hops must be a finite number >= 0, got {mean_hops!r}")
    e_syn = hw.si("e_synop")
    e_inact = hw.si("e_neuron_update")
    e_act = hw.si("e_neuron_update_active") if hw.has("e_neuron_update_active") else e_inact
    e_msg = hw.si("e_spike") + hops * hw.si("e_hop")
    binary = bool(hw.binary_spikes_only)
    msg_col = _messages_column(hw)

    rows = _synop_rows(counts, hw, e_syn)
    N = counts.neurons
    if len(N):
        active = N["spikes"].to_numpy()
        inactive = np.maximum(N["neurons"].to_numpy() - active, 0)
        nrows = pd.DataFrame({"module": N["module"], "neuron_updates": N["neurons"],
                              "active_updates": active, "spike_messages": N[msg_col]})
        nrows["neuron_J"] = active * e_act + inactive * e_inact
        nrows["comm_J"] = nrows["spike_messages"] * e_msg
        rows = pd.concat([rows, nrows], ignore_index=True).fillna(0.0)
    cols = ["synops", "neuron_updates", "active_updates", "spike_messages", "host_macs",
            "host_spike_spike", "host_spike_mask", "synop_J", "neuron_J", "comm_J"]
    for c in cols:
        if c not in rows.columns:
            rows[c] = 0.0
    table = group_sum(rows, cols, counts.module_order())
    table["compute_J"] = table["synop_J"] + table["neuron_J"]
    mapping, cores = capacity(counts, hw)
    table["cores"] = [float(cores.get(m, 0.0)) for m in table["module"]]
    table = finish_table(table, counts.module_types(), cols + ["cores"])
    total = float(table["total_J"].sum()) if len(table) else 0.0

    if binary:
        spike_rule = ("binary spikes only: a graded spike of level k is sent as k binary spikes "
                      "- k messages (spike_mass) and k synaptic operations per synapse (syn_ops)")
    else:
        spike_rule = ("graded spikes: a spike of any level is one message carrying its level as "
                      "a payload (spikes) and one synaptic operation per synapse (syn_events), "
                      "assumed to cost the same as a binary one")
    assumptions = [
        spike_rule,
        f"E_synop = {format_si(e_syn, 'energy')} per synaptic operation; neuron update "
        f"{format_si(e_act, 'energy')} when the neuron spikes at that timestep, "
        f"{format_si(e_inact, 'energy')} otherwise",
        f"each spike message costs E_spike + hops x E_hop = {format_si(hw.si('e_spike'), 'energy')}"
        f" + {hops:g} x {format_si(hw.si('e_hop'), 'energy')}; {hops:g} mean hop(s) per "
        f"message is an assumption (the placement is not known from the counts)",
        "one spike message per spike reaches its destination; fan-out to several destination "
        "cores is counted as one message",
        _HOST_RULE,
    ] + _mapping_assumptions(hw)
    details = {"mapping": mapping, "binary_spikes_only": binary, "mean_hops": hops, "view": counts.view}
    if hw.has("static_power_chip"):
        # a stated term beside the total: static energy = power x the time the chips are held,
        # which no count gives (it depends on the timestep rate and the host)
        p_chip = hw.si("static_power_chip")
        details["static_power_chip_w"] = p_chip
        details["static_power_w"] = p_chip * mapping["chips_needed"]
        base_omitted = [f"static power, stated apart: {format_si(p_chip, 'power')} per chip x "
                        f"{mapping['chips_needed']} chip(s) = {format_si(details['static_power_w'], 'power')} while "
                        "the chips are held (its energy per frame is that power times the frame's duration, "
                        "which the counts do not give)"] + base_omitted[1:]
    omitted = _host_sentence(counts) + base_omitted + [
        "on-chip learning (synaptic updates) and the embedded x86 cores' own energy",
        "fixed-point quantisation effects on the spike counts (price the emulator's counts "
        "for those)",
    ]
    return Energy(estimator="loihi", hardware=hw.name, applicable=True, total_j=total,
                  layers=table, omitted=omitted, assumptions=assumptions, details=details)


def estimate_synop(counts: CountTables, hw: HardwareProfile) -> Energy:
    base_omitted = ["spike routing / communication energy as a separate term",
                    "static (leakage) power beyond what the per-operation figure folds in",
                    "input / output traffic between the host and the chip"]
    if not counts.is_spiking:
        return not_applicable("synop", hw.name, _ann_reason(hw), base_omitted)
    e_syn = hw.si("e_synop")
    has_update = hw.has("e_neuron_update")
    rows = _synop_rows(counts, hw, e_syn)
    N = counts.neurons
    if len(N):
        nrows = pd.DataFrame({"module": N["module"], "neuron_updates": N["neurons"]})
        nrows["neuron_J"] = nrows["neuron_updates"] * (hw.si("e_neuron_update") if has_update else 0.0)
        rows = pd.concat([rows, nrows], ignore_index=True).fillna(0.0)
    cols = ["synops", "neuron_updates", "host_macs", "host_spike_spike", "host_spike_mask", "synop_J",
            "neuron_J"]
    for c in cols:
        if c not in rows.columns:
            rows[c] = 0.0
    table = group_sum(rows, cols, counts.module_order())
    table["compute_J"] = table["synop_J"] + table["neuron_J"]
    details: dict = {"binary_spikes_only": bool(hw.binary_spikes_only), "view": counts.view}
    assumptions = [
        (f"binary spikes only: a graded spike of level k costs k synaptic operations (syn_ops)"
         if hw.binary_spikes_only else
         "a graded spike costs one synaptic operation per synapse (syn_events)"),
        f"E_synop = {format_si(e_syn, 'energy')} per synaptic operation"
        + ("" if has_update else "; this figure is a whole-chip average (power / SOPS), so "
           "neuron updates and routing are folded in, not added"),
        _HOST_RULE,
    ]
    if has_update:
        assumptions.append(f"each neuron update costs {format_si(hw.si('e_neuron_update'), 'energy')}")
    if all(hw.has(c) for c in _CAPACITY):
        mapping, cores = capacity(counts, hw)
        table["cores"] = [float(cores.get(m, 0.0)) for m in table["module"]]
        cols = cols + ["cores"]
        details["mapping"] = mapping
        assumptions += _mapping_assumptions(hw)
    table = finish_table(table, counts.module_types(), cols)
    total = float(table["total_J"].sum()) if len(table) else 0.0
    omitted = _host_sentence(counts) + base_omitted
    if "mapping" in details:
        omitted.append("per-neuron fan-in / fan-out limits of the cores (e.g. 256 axons per "
                       "TrueNorth core) - layers beyond them must be split")
    return Energy(estimator="synop", hardware=hw.name, applicable=True, total_j=total,
                  layers=table, omitted=omitted, assumptions=assumptions, details=details)
