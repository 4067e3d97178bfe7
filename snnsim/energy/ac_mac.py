"""`ac-mac`: the spiking-network literature's convention.

E = E_MAC * mac_ops + E_AC * syn_ops + E_AC * spike_spike + E_AC * spike_mask

- mac_ops: multiply-accumulates whose operands are all real (images, membrane potentials,
  ANN activations) -- an ANN is priced entirely here (E_ANN = E_MAC x MACs).
- syn_ops: accumulates triggered by spikes; a graded spike of level k weighs k, so it costs k
  accumulates (the counts are already level-weighted).
- spike_spike: exact nonzero products of two spike tensors (e.g. spiking Q K^T), one
  accumulate each.
- spike_mask: element-wise spike operations -- a mask / gate product (spikes x spikes or
  spikes x reals, e.g. the Spike-driven Transformer's K (.) V and Q (.) kv) per output element
  where the spikes are nonzero, and a spike-driven token sum per nonzero element summed --
  one accumulate each (a spike selects or adds a value; nothing is multiplied).
With the counting engine's exact operand classes this reproduces the papers' formula
E_MAC x FLOPs(first layer) + E_AC x sum_l FLOPs_l x rate_l x T without estimating rates.
A profile's `pricing` map can point an operation at another energy constant.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .counts import CountTables, group_sum
from .result import Energy, finish_table
from .schema import HardwareProfile
from .units import format_si


def compute_columns(layers: pd.DataFrame, hw: HardwareProfile) -> pd.DataFrame:
    """Per-row mac_J, ac_J, spike_spike_J, spike_mask_J under the profile's pricing (shared
    with memory-aware)."""
    out = pd.DataFrame({"module": layers["module"]})
    out["mac_J"] = layers["mac_ops"].to_numpy() * hw.price("mac_ops")
    out["ac_J"] = layers["syn_ops"].to_numpy() * hw.price("syn_ops")
    out["spike_spike_J"] = layers["spike_spike"].to_numpy() * hw.price("spike_spike")
    mask = layers["spike_mask"].to_numpy() if "spike_mask" in layers.columns else np.zeros(len(layers))
    out["spike_mask_J"] = mask * hw.price("spike_mask")
    return out


def pricing_assumptions(hw: HardwareProfile) -> list[str]:
    def c(op: str) -> str:
        name = hw.pricing_constant(op)
        return f"{name} = {format_si(hw.si(name), 'energy')}"
    return [
        f"each multiply-accumulate on real (non-spike) operands costs {c('mac_ops')} (mac_ops)",
        f"each spike-triggered accumulate costs {c('syn_ops')}; a graded spike of level k "
        f"costs k accumulates (syn_ops is level-weighted)",
        f"each nonzero spike x spike product costs one accumulate, {c('spike_spike')}",
        f"each element-wise spike operation (a mask / gate product where the spike is nonzero, "
        f"a token-sum accumulate of a nonzero spike) costs one accumulate, {c('spike_mask')} "
        f"(spike_mask)",
    ]


def estimate_ac_mac(counts: CountTables, hw: HardwareProfile) -> Energy:
    order = counts.module_order()
    per_row = compute_columns(counts.layers, hw)
    per_row["mac_ops"] = counts.layers["mac_ops"]
    per_row["syn_ops"] = counts.layers["syn_ops"]
    per_row["spike_spike"] = counts.layers["spike_spike"]
    per_row["spike_mask"] = counts.layers["spike_mask"]
    cols = ["mac_ops", "syn_ops", "spike_spike", "spike_mask", "mac_J", "ac_J", "spike_spike_J",
            "spike_mask_J"]
    table = group_sum(per_row, cols, order)
    table["compute_J"] = table["mac_J"] + table["ac_J"] + table["spike_spike_J"] + table["spike_mask_J"]
    table = finish_table(table, counts.module_types(), cols)
    total = float(np.sum(table["total_J"])) if len(table) else 0.0

    n_updates = float(counts.neurons["neurons"].sum()) if len(counts.neurons) else 0.0
    omitted = [
        "memory traffic: weight, activation / spike and membrane-potential reads and writes "
        "are not priced (the memory-aware estimator adds them)",
        f"neuron updates (leak, threshold, reset): {n_updates:,.0f} per sample, unpriced",
        "normalisation, softmax, pooling and other non-synaptic element-wise operators",
        "control, addressing of sparse events, clocking and static (leakage) power",
    ]
    assumptions = pricing_assumptions(hw) + [
        "counts are per sample and already include all T timesteps",
    ]
    if counts.view == "thop":
        assumptions.append("view 'thop': only conv / linear modules are counted (the tracking "
                           "papers' FLOPs); attention matmuls, element-wise spike operations "
                           "and other operators are left out")
        omitted.append("operators outside conv / linear modules (view 'thop')")
    return Energy(estimator="ac-mac", hardware=hw.name, applicable=True, total_j=total,
                  layers=table, omitted=omitted, assumptions=assumptions,
                  details={"view": counts.view,
                           "e_mac_J": hw.price("mac_ops"), "e_ac_J": hw.price("syn_ops")})
