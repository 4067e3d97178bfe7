"""`memory-aware`: arithmetic (as ac-mac) plus the memory accesses it implies.

In the spirit of Lemaire et al., "An Analytical Estimation of Spiking Neural Networks Energy
Efficiency" (ICONIP 2022, arXiv:2210.13107): the same memory model for SNNs and ANNs, because
weight, potential and activation traffic -- not arithmetic -- usually dominates.

Per synaptic operator row (one module's op):
- operand reads: one weight read per synaptic event (SNN: `syn_events`, one read per nonzero
  input x weight pair whatever the spike level) or per MAC (ANN: `mac_ops`); a matmul without
  a weight reads its second (activation) operand instead;
- spike x spike products (`spike_spike`, e.g. spiking Q K^T): each nonzero product reads the
  second operand's nonzero element (a spike, ceil(log2(D + 1)) bits) from activation memory;
- element-wise spike operations (`spike_mask`: masks, gates, token sums): each reads the
  value the spike selects or the accumulator it adds to, one word from activation memory;
- activation / spike reads: `in_numel` elements (a spike element is ceil(log2(D + 1)) bits,
  a real element one word);
- activation writes: `out_numel` words.
Per neuron module: membrane potential read + write per neuron update.

An access of b bits to an SRAM of S bytes costs E(S) * b / sram_access_bits, with E(S)
interpolated log-log between the profile's SRAM points (Horowitz's 8 KB / 32 KB / 1 MB), held
at the smallest point below it and extended along the last segment above it. S is the memory
the accesses go to: the layer's weights (weight reads), its input + output activations for one
call (activation traffic), a neuron module's potentials at one timestep (potential traffic).
A layer whose working set (weights + activations of one call) exceeds `on_chip_sram` streams
its weights (once per call) and activations (once) through DRAM, and its on-chip accesses
cost the full on-chip SRAM's price.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .ac_mac import compute_columns, pricing_assumptions
from .counts import CountTables, group_sum
from .result import Energy, finish_table
from .schema import HardwareProfile
from .units import format_si


def sram_access_energy(hw: HardwareProfile, size_bytes) -> np.ndarray:
    """Joules of one `sram_access_bits` access to an SRAM of `size_bytes` (vectorised)."""
    curve = hw.sram_curve()
    sizes = np.log(np.array([s for s, _ in curve]))
    energies = np.log(np.array([e for _, e in curve]))
    x = np.log(np.maximum(np.asarray(size_bytes, dtype=float), math.exp(sizes[0])))
    y = np.interp(x, sizes, energies)
    slope = (energies[-1] - energies[-2]) / (sizes[-1] - sizes[-2])
    above = x > sizes[-1]
    y = np.where(above, energies[-1] + slope * (x - sizes[-1]), y)
    return np.exp(y)


def estimate_memory_aware(counts: CountTables, hw: HardwareProfile) -> Energy:
    L = counts.layers
    word_bits = hw.si("word_bits") * 8
    pot_bits = (hw.si("potential_bits") if hw.has("potential_bits") else hw.si("word_bits")) * 8
    access_bits = hw.si("sram_access_bits") * 8
    dram_bits = hw.si("dram_access_bits") * 8
    e_dram = hw.si("e_dram")
    on_chip = hw.si("on_chip_sram")
    levels = counts.max_levels()
    spike_bits = max(1, math.ceil(math.log2(levels + 1)))

    def per_bit(size_bytes):
        return sram_access_energy(hw, size_bytes) / access_bits

    # -- synaptic operator rows -----------------------------------------------------------
    rows = compute_columns(L, hw)
    calls = np.maximum(L["calls"].to_numpy(), 1.0)
    weight_numel = L["weight_numel"].to_numpy()
    in_numel = L["in_numel"].to_numpy()
    out_numel = L["out_numel"].to_numpy()
    in_bits = np.where(L["spiking_input"].to_numpy(), spike_bits, word_bits)
    w_bytes = weight_numel * word_bits / 8
    act_bytes = (in_numel * in_bits + out_numel * word_bits) / 8 / calls
    fits = (w_bytes + act_bytes) <= on_chip
    w_mem = np.where(fits, w_bytes, on_chip)
    a_mem = np.where(fits, act_bytes, on_chip)
    operand_reads = L["mac_ops"].to_numpy() + L["syn_events"].to_numpy()
    operand_mem = np.where(weight_numel > 0, w_mem, a_mem)
    rows["weight_read_J"] = operand_reads * word_bits * per_bit(operand_mem)
    spike_spike = L["spike_spike"].to_numpy()
    spike_mask = L["spike_mask"].to_numpy()
    rows["spike_read_J"] = (spike_spike * spike_bits + spike_mask * word_bits) * per_bit(a_mem)
    rows["act_read_J"] = in_numel * in_bits * per_bit(a_mem)
    rows["act_write_J"] = out_numel * word_bits * per_bit(a_mem)
    dram_traffic_bits = weight_numel * calls * word_bits + in_numel * in_bits + out_numel * word_bits
    rows["dram_J"] = np.where(fits, 0.0, dram_traffic_bits / dram_bits * e_dram)
    rows["potential_J"] = 0.0
    rows["spills"] = (~fits).astype(float)

    # -- neuron modules -------------------------------------------------------------------
    N = counts.neurons
    if len(N):
        per_mod = N.groupby("module", sort=False).agg(updates=("neurons", "sum"))
        at_one_t = counts.neurons_at_one_t().reindex(per_mod.index)
        pot_bytes = at_one_t.to_numpy() * pot_bits / 8
        pfits = pot_bytes <= on_chip
        pmem = np.where(pfits, pot_bytes, on_chip)
        upd = per_mod["updates"].to_numpy()
        nrows = pd.DataFrame({"module": per_mod.index.astype(str)})
        nrows["potential_J"] = 2 * upd * pot_bits * per_bit(pmem)
        nrows["dram_J"] = np.where(pfits, 0.0, 2 * upd * pot_bits / dram_bits * e_dram)
        nrows["spills"] = (~pfits).astype(float)
        rows = pd.concat([rows, nrows], ignore_index=True).fillna(0.0)

    cols = ["mac_J", "ac_J", "spike_spike_J", "spike_mask_J", "weight_read_J", "spike_read_J",
            "act_read_J", "act_write_J", "potential_J", "dram_J", "spills"]
    table = group_sum(rows, cols, counts.module_order())
    table["compute_J"] = (table["mac_J"] + table["ac_J"] + table["spike_spike_J"]
                          + table["spike_mask_J"])
    table["memory_J"] = (table["weight_read_J"] + table["spike_read_J"] + table["act_read_J"]
                         + table["act_write_J"] + table["potential_J"] + table["dram_J"])
    table["fits_on_chip"] = table["spills"] == 0
    table = finish_table(table, counts.module_types(),
                         [c for c in cols if c != "spills"] + ["fits_on_chip"])
    total = float(table["total_J"].sum()) if len(table) else 0.0

    curve = ", ".join(f"{format_si(s, 'memory')}: {format_si(e, 'energy')}"
                      for s, e in hw.sram_curve())
    assumptions = pricing_assumptions(hw) + [
        f"weights and activations are {word_bits:g}-bit words, membrane potentials "
        f"{pot_bits:g}-bit; a spike element is {spike_bits} bit(s) (largest spike level count "
        f"D = {levels}), and an operator with a spike input reads all its input elements at "
        f"that width",
        f"SRAM energy per {access_bits:g}-bit access by memory size ({curve}), interpolated "
        f"log-log, held at the smallest point below it; an access of b bits costs b/"
        f"{access_bits:g} of it; a write costs the same as a read",
        "one operand (weight) read per synaptic event (SNN, whatever the spike level) or per "
        "MAC (ANN); a matmul without a weight reads its second activation operand instead",
        f"a nonzero spike x spike product reads the second operand's nonzero element "
        f"({spike_bits}-bit spike) from activation memory; an element-wise spike operation "
        f"(mask, gate, token sum) reads one {word_bits:g}-bit word (the value it selects or the "
        f"accumulator it adds to) from activation memory",
        "every input element is read and every output element written once per call; "
        "membrane potential read + written once per neuron update",
        f"a layer whose weights + activations of one call exceed the on-chip SRAM "
        f"({format_si(on_chip, 'memory')}) streams them through DRAM once "
        f"({format_si(e_dram, 'energy')} per {dram_bits:g}-bit access); its on-chip accesses "
        f"then cost the full SRAM's price",
        "batch size 1; counts are per sample and include all T timesteps",
    ]
    omitted = [
        "neuron arithmetic (leak, threshold compare, reset) beyond the potential read / write",
        "address / index computation for sparse spike events (Lemaire et al.'s addressing "
        "term) and bias reads",
        "register files and on-chip data reuse beyond 'a layer that fits is served from SRAM'",
        "non-synaptic operators (normalisation, softmax, pooling) and their memory traffic",
        "control, clocking and static (leakage) power",
    ]
    if counts.view == "thop":
        omitted.append("operators outside conv / linear modules (view 'thop')")
    return Energy(estimator="memory-aware", hardware=hw.name, applicable=True, total_j=total,
                  layers=table, omitted=omitted, assumptions=assumptions,
                  details={"view": counts.view, "word_bits": word_bits,
                           "potential_bits": pot_bits, "spike_bits": spike_bits,
                           "on_chip_sram_bytes": on_chip,
                           "modules_spilling_to_dram": [m for m, f in zip(table["module"],
                                                        table["fits_on_chip"]) if not f]})
