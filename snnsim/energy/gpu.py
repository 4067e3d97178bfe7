"""`gpu`: dense execution timed by a roofline, times the power of a power mode.

A GPU skips no zeros: every operator costs its nominal `dense_macs` (2 operations each), and a
spiking model pays all T timesteps (the counts already include them). Per operator row:
    t = max(2 x dense_macs / (peak x u), bytes / (bandwidth x u))
with bytes = (weights x calls + input + output elements) x bytes per element at the chosen
precision; neuron modules are element-wise (read input and potential, write potential and
spike: 4 elements per neuron update). Element-wise spike operations (masks, gates, token
sums: `spike_mask` rows) run dense too: one operation per element, zeros included
(`elementwise_ops`), plus their input and output bytes. Energy = sum of t x P(power mode).
When a measurement of this model on this device exists (a profile's `measurements`, or a
shipped measured profile based on this one), it replaces the model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .counts import CountTables, group_sum
from .profiles import find_measurement
from .result import BASE_COLUMNS, Energy, finish_table
from .schema import BYTES_PER_ELEMENT, PRECISIONS, HardwareProfile
from .units import format_si

_NEURON_ELEMENTS = 4      # read input current and potential, write potential and spike
_NEURON_OPS = 4           # leak, integrate, compare, reset


def _measured(counts: CountTables, hw: HardwareProfile, found, power_mode) -> Energy:
    m, where = found
    jpf = m.joules_per_frame
    table = pd.DataFrame([{"module": "(whole model, measured)", "module_type": "",
                           "compute_J": jpf.si, "memory_J": 0.0, "comm_J": 0.0,
                           "total_J": jpf.si}], columns=BASE_COLUMNS)
    assumptions = [f"measured on the device: {format_si(jpf.si, 'energy')} per frame for "
                   f"'{counts.model}' ({m.method}; source: {jpf.source})"]
    if m.power_mode:
        assumptions.append(f"measured in power mode {m.power_mode}")
    if m.precision:
        assumptions.append(f"measured at {m.precision}")
    if m.batch_size:
        assumptions.append(f"measured at batch size {m.batch_size}")
    if power_mode is not None and m.power_mode and power_mode != m.power_mode:
        assumptions.append(f"the requested power mode {power_mode} differs from the measured "
                           f"one; the measurement is used as is")
    omitted = ["no per-layer split: a device measurement gives the whole model's energy"]
    return Energy(estimator="gpu", hardware=hw.name, applicable=True, total_j=jpf.si,
                  layers=table, omitted=omitted, assumptions=assumptions,
                  details={"measured": True, "measurement_source": where,
                           "power_mode": m.power_mode, "precision": m.precision or "as measured (not stated)",
                           "view": counts.view})


def estimate_gpu(counts: CountTables, hw: HardwareProfile, power_mode: str | None = None,
                 precision: str | None = None, utilisation: float | None = None,
                 use_measured: bool = True) -> Energy:
    if use_measured:
        found = find_measurement(hw, counts.model)
        if found is not None:
            return _measured(counts, hw, found, power_mode)

    precision = precision or hw.default_precision or hw.precisions()[-1]
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})")
    if f"peak_{precision}" not in hw.constants:
        raise ValueError(f"hardware '{hw.name}' has no peak_{precision} rate (its precisions: "
                         f"{', '.join(hw.precisions())})")
    u = hw.si("utilisation") if utilisation is None else float(utilisation)
    if not 0 < u <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation!r}")
    mode, watts = hw.power(power_mode)
    peak = hw.si(f"peak_{precision}") * u
    bandwidth = hw.si("memory_bandwidth") * u
    nbytes = BYTES_PER_ELEMENT[precision]

    L = counts.layers
    rows = pd.DataFrame({"module": L["module"]})
    rows["ops"] = 2 * L["dense_macs"].to_numpy() + L["elementwise_ops"].to_numpy()
    rows["bytes"] = (L["weight_numel"].to_numpy() * np.maximum(L["calls"].to_numpy(), 1)
                     + L["in_numel"].to_numpy() + L["out_numel"].to_numpy()) * nbytes
    N = counts.neurons
    if len(N):
        nrows = pd.DataFrame({"module": N["module"]})
        nrows["ops"] = _NEURON_OPS * N["neurons"].to_numpy()
        nrows["bytes"] = _NEURON_ELEMENTS * N["neurons"].to_numpy() * nbytes
        rows = pd.concat([rows, nrows], ignore_index=True)
    rows["compute_s"] = rows["ops"] / peak
    rows["memory_s"] = rows["bytes"] / bandwidth
    rows["time_s"] = np.maximum(rows["compute_s"], rows["memory_s"])
    memory_bound = rows["memory_s"] > rows["compute_s"]
    rows["compute_J"] = np.where(memory_bound, 0.0, rows["time_s"] * watts)
    rows["memory_J"] = np.where(memory_bound, rows["time_s"] * watts, 0.0)
    rows["memory_bound"] = memory_bound.astype(float)

    cols = ["ops", "bytes", "compute_s", "memory_s", "time_s", "compute_J", "memory_J",
            "memory_bound"]
    table = group_sum(rows, cols, counts.module_order())
    table["bound"] = np.where(table["memory_s"] > table["compute_s"], "memory", "compute")
    table = finish_table(table, counts.module_types(),
                         ["ops", "bytes", "time_s", "compute_s", "memory_s", "bound"])
    total_time = float(table["time_s"].sum()) if len(table) else 0.0
    total = total_time * watts

    assumptions = [
        "dense execution: no zero skipping, every operator pays its nominal dense MACs "
        "(2 operations each); a spiking model pays all T timesteps (included in the counts)",
        f"roofline per operator: time = max(operations / peak, bytes / bandwidth) at "
        f"{precision} ({format_si(hw.si(f'peak_{precision}'), 'rate')} peak, "
        f"{format_si(hw.si('memory_bandwidth'), 'bandwidth')}), both at {u:.0%} utilisation",
        f"bytes = (weights x calls + input + output elements) x {nbytes} byte(s); batch size 1, "
        f"so weights are re-read every call; no cache reuse between operators",
        f"neuron updates are element-wise: {_NEURON_ELEMENTS} elements moved and "
        f"{_NEURON_OPS} operations per update",
        "element-wise spike operations (masks, gates, token sums) run dense: one operation per "
        "element, zeros included (a GPU skips no zero spikes), and their input and output bytes",
        f"the device draws the full {watts:g} W of power mode '{mode}' while busy",
    ]
    omitted = [
        "kernel-launch and framework overheads (batch-1 latency is often launch-bound, so "
        "the real time and energy are higher)",
        "idle / static power between frames, host CPU and host-device transfers",
        "non-synaptic operators (normalisation, softmax, pooling, element-wise) other than "
        "neuron updates and element-wise spike operations",
        "no measurement of this model on this device was found (a measured profile would "
        "replace this model)" if use_measured else "device measurements (disabled)",
    ]
    if counts.view == "thop":
        omitted.append("operators outside conv / linear modules (view 'thop')")
    return Energy(estimator="gpu", hardware=hw.name, applicable=True, total_j=total,
                  layers=table, omitted=omitted, assumptions=assumptions,
                  details={"measured": False, "precision": precision, "power_mode": mode,
                           "power_w": watts, "utilisation": u, "time_s": total_time,
                           "view": counts.view})
