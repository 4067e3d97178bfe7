"""Loihi 2 resources of a mapped model: neurons, synapses, cores and chips per population.

Limits come from the shipped hardware profile (``snnsim.energy.load_hardware('loihi2')``),
so every number is cited there: neurons per core, synaptic memory per core, bits per
synaptic weight, cores per chip (and neurons / synapses per chip as a cross-check).

Placement model (stated in every report):

* One neuron population (a neuron module of the model) per set of cores; cores are not shared
  between populations. A population's neurons = the neuron module's elements per timestep.
* Synapses live with their destination neurons. A conv layer's weights are shared by every
  output position, so a core stores the kernel slice of the output channels whose neurons it
  hosts - once, whatever the number of positions on that core - for every synaptic layer
  adding into the population (8-bit weights). Populations are split across cores by output
  channel first (no weight copies); a channel whose map exceeds a core's neuron limit is split
  spatially and each spatial tile stores that channel's kernel again.
* Neurons fed by the host (the first conv's output, pooled / upsampled / attention results)
  receive one input synapse per neuron (an identity weight per channel) for the injected
  integer current.
* Residual streams, two ways, both reported: **fanout** - every layer adding into the stream
  is connected (stored) at every later neuron of the stream that sums it, as lava expresses a
  residual add (several Conv outputs into one ``a_in``); **relay** - each stream point also
  keeps a relay population holding the running sum, which passes it on as a 24-bit graded
  payload through an identity (depthwise 1x1) synapse, so each layer is stored once (twice:
  relay and spiking population). The recommended mapping is the one needing fewer cores.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

import pandas as pd

from .mapper import LoihiMapping, SiteSpec

__all__ = ["loihi2_limits", "place_population", "resource_report"]

_LIMIT_NAMES = ("neurons_per_core", "synapse_memory_per_core", "synapse_bits", "cores_per_chip",
                "neurons_per_chip", "synapses_per_chip", "embedded_cores_per_chip")


def loihi2_limits(hardware: str = "loihi2") -> Dict[str, Dict[str, Any]]:
    """The capacity constants of a neuromorphic profile, each with value, unit, SI value,
    status and source."""
    from snnsim.energy import load_hardware

    hw = load_hardware(hardware)
    out: Dict[str, Dict[str, Any]] = {"_profile": {"name": hw.name, "description": hw.description}}
    for name in _LIMIT_NAMES:
        if hw.has(name):
            c = hw.constant(name)
            out[name] = {"value": c.value, "unit": c.unit, "si": hw.si(name), "status": c.status,
                         "source": " ".join(str(c.source).split())}
    missing = [n for n in _LIMIT_NAMES[:4] if n not in out]
    if missing:
        raise ValueError(f"hardware '{hw.name}' lacks capacity constant(s) {', '.join(missing)}")
    return out


def place_population(channels: int, positions: int, weights_per_channel: int, npc: int, mem_bits: int,
                     weight_bits: int) -> Dict[str, Any]:
    """Cores for one population of ``channels`` x ``positions`` neurons whose output channels
    each need ``weights_per_channel`` stored weights (see the module docstring)."""
    C, P = max(int(channels), 1), max(int(positions), 1)
    ch_bits = int(weights_per_channel) * int(weight_bits)
    split_fan_in = 1
    if ch_bits > mem_bits:
        split_fan_in = math.ceil(ch_bits / mem_bits)      # one channel's kernel spans several cores
    if P <= npc:
        if ch_bits > mem_bits:
            per_core = 1                                   # each channel's kernel alone fills its cores
        else:
            per_core = max(1, min(C, npc // P, (mem_bits // ch_bits) if ch_bits else C))
        cores = math.ceil(C / per_core) * split_fan_in
        stored = C * ch_bits
        tiles = 1
    else:
        tiles = math.ceil(P / npc)
        cores = C * tiles * split_fan_in
        stored = C * tiles * ch_bits
    return {"cores": int(cores), "stored_bits": int(stored), "spatial_tiles": int(tiles),
            "fan_in_split": int(split_fan_in)}


def _weights_per_channel(mapping: LoihiMapping, layers: Sequence[str]) -> int:
    n = 0
    for name in layers:
        L = mapping.layers[name]
        n += int(L.fan_in)
    return n


def _channels_positions(site: SiteSpec) -> Tuple[int, int]:
    shp = tuple(site.shape)
    if not shp:
        return 1, 1
    C = int(shp[0])
    P = int(site.neurons // C) if C else 1
    return C, P


def _stream_order(mapping: LoihiMapping) -> Dict[int, List[str]]:
    by_group: Dict[int, List[str]] = {}
    for s in mapping.sites.values():
        by_group.setdefault(s.group, []).append(s.name)
    return by_group


def stream_layout(mapping: LoihiMapping) -> Dict[str, Dict[str, Any]]:
    """Per neuron module, for the relay mapping of residual streams: whether its scale group is
    a stream relayed point by point (the neurocore layer sets of its modules nest), its index in the stream, the layers new at this point (stored here - and in the
    relay population - instead of at every later point) and whether a relay population follows
    it (every point but the stream's last)."""
    nc_layers = {L.name for L in mapping.neurocore_layers()}
    groups = _stream_order(mapping)
    out: Dict[str, Dict[str, Any]] = {}
    for gid, names in groups.items():
        # stream order = growing layer sets (call order mixes the template and search passes)
        names = sorted(names, key=lambda n: len([x for x in mapping.sites[n].layers if x in nc_layers]))
        nested = len(names) > 1
        prev: set = set()
        for n in names:
            cur = {x for x in mapping.sites[n].layers if x in nc_layers}
            if not prev <= cur:
                nested = False
            prev = cur
        seen: List[str] = []
        for i, n in enumerate(names):
            cur = [x for x in mapping.sites[n].layers if x in nc_layers]
            out[n] = {"relayed": nested, "index": i, "stream": names if nested else [n],
                      "new_layers": [x for x in cur if x not in seen] if nested else cur,
                      "has_relay": nested and i < len(names) - 1}
            seen += [x for x in cur if x not in seen]
    return out


def layer_copies(mapping: LoihiMapping, residual: str = "fanout") -> Dict[str, int]:
    """How many neuron populations store (and evaluate) each neurocore layer: 'fanout' - every
    module that sums it; 'relay' - where it is new in its stream (and that point's relay
    population); 'one-copy' - 1 (the float model's count)."""
    copies: Dict[str, int] = {}
    if residual == "relay":
        layout = stream_layout(mapping)
        for n, lay in layout.items():
            if not lay["relayed"]:
                continue
            for x in lay["new_layers"]:
                copies[x] = 2 if lay["has_relay"] else 1
    for L in mapping.neurocore_layers():
        if residual == "one-copy":
            copies[L.name] = 1
        elif L.name not in copies:
            copies[L.name] = max(1, len(L.consumers))
    return copies


def resource_report(mapping: LoihiMapping, hardware: str = "loihi2") -> Dict[str, Any]:
    """Per population and total neurons, synapses, stored weights, cores and chips for the
    fanout and relay residual mappings (see the module docstring)."""
    lim = loihi2_limits(hardware)
    npc = int(lim["neurons_per_core"]["si"])
    mem_bits = int(lim["synapse_memory_per_core"]["si"] * 8)
    wbits = int(round(lim["synapse_bits"]["si"] * 8))
    cpc = int(lim["cores_per_chip"]["si"])

    nc_layers = {L.name for L in mapping.neurocore_layers()}
    rows: List[Dict[str, Any]] = []
    layout = stream_layout(mapping)

    for s in mapping.sites.values():
        C, P = _channels_positions(s)
        layers = [x for x in s.layers if x in nc_layers]
        host_in = len(s.host_inputs) + sum(1 for x in s.layers if x not in nc_layers)
        wpc = _weights_per_channel(mapping, layers) + host_in
        fan = place_population(C, P, wpc, npc, mem_bits, wbits)
        synapses = s.neurons * _weights_per_channel(mapping, layers) + s.neurons * host_in
        # relay variant
        lay = layout[s.name]
        if lay["relayed"]:
            ident = 1 if lay["index"] > 0 else 0
            wpc_r = _weights_per_channel(mapping, lay["new_layers"]) + host_in + ident
            rel = place_population(C, P, wpc_r, npc, mem_bits, wbits)
            rel_cores, rel_bits = rel["cores"], rel["stored_bits"]
            rel_syn = s.neurons * wpc_r
            rel_neurons = s.neurons
            if lay["has_relay"]:           # the relay population of this stream point
                rp = place_population(C, P, wpc_r, npc, mem_bits, wbits)
                rel_cores += rp["cores"]
                rel_bits += rp["stored_bits"]
                rel_syn += s.neurons * wpc_r
                rel_neurons += s.neurons
        else:
            rel_cores, rel_bits, rel_syn, rel_neurons = fan["cores"], fan["stored_bits"], synapses, s.neurons
        rows.append({
            "population": s.name, "neuron": s.neuron, "passes": "+".join(sorted(s.calls)),
            "shape": "x".join(str(v) for v in s.shape), "channels": C, "positions": P, "neurons": s.neurons,
            "synaptic_layers": len(layers), "host_inputs": host_in, "weights_per_channel": wpc,
            "synapses": int(synapses), "stored_weight_bytes": fan["stored_bits"] / 8, "cores": fan["cores"],
            "spatial_tiles": fan["spatial_tiles"], "fan_in_split": fan["fan_in_split"],
            "relay_neurons": int(rel_neurons), "relay_synapses": int(rel_syn),
            "relay_stored_weight_bytes": rel_bits / 8, "relay_cores": int(rel_cores),
        })
    table = pd.DataFrame(rows)
    tot: Dict[str, Any] = {}
    for strat, ncol, scol, bcol, ccol in (("fanout", "neurons", "synapses", "stored_weight_bytes", "cores"),
                                          ("relay", "relay_neurons", "relay_synapses", "relay_stored_weight_bytes",
                                           "relay_cores")):
        cores = int(table[ccol].sum()) if len(table) else 0
        neurons = int(table[ncol].sum()) if len(table) else 0
        chips = max(1, math.ceil(cores / cpc))
        tot[strat] = {"neurons": neurons, "synapses": int(table[scol].sum()) if len(table) else 0,
                      "stored_weight_bytes": float(table[bcol].sum()) if len(table) else 0.0,
                      "cores": cores, "chips": chips, "fits_one_chip": cores <= cpc}
        if "neurons_per_chip" in lim:
            tot[strat]["neuron_chips_lower_bound"] = max(1, math.ceil(neurons / lim["neurons_per_chip"]["si"]))
        if "synapses_per_chip" in lim:
            tot[strat]["synapse_chips_lower_bound"] = max(
                1, math.ceil(tot[strat]["stored_weight_bytes"] * 8 / wbits / lim["synapses_per_chip"]["si"]))
    best = min(("fanout", "relay"), key=lambda k: (tot[k]["cores"], k != "fanout"))
    host = mapping.host_layers()
    host_macs = 0
    for L in host:
        out = 1
        for v in L.out_shape:
            out *= int(v)
        host_macs += out * int(L.fan_in)
    unique_weights = sum(int(L.weight.numel()) for L in mapping.neurocore_layers())
    fan_copies, relay_copies = layer_copies(mapping, "fanout"), layer_copies(mapping, "relay")
    layer_rows = []
    for L in mapping.layers.values():
        outs = 1
        for v in L.out_shape:
            outs *= int(v)
        layer_rows.append({
            "layer": L.name, "op": L.describe(), "where": L.where, "weights": int(L.weight.numel()),
            "fan_in": int(L.fan_in), "output_neurons": outs, "connections": outs * int(L.fan_in),
            "stored_at": list(L.consumers), "copies_fanout": fan_copies.get(L.name, 0),
            "copies_relay": relay_copies.get(L.name, 0)})
    return {
        "hardware": lim.pop("_profile"),
        "limits": lim,
        "placement": [
            "one neuron population (neuron module) per set of cores; cores are not shared between populations",
            "a population's neurons = its neuron module's elements per timestep (one sample)",
            "conv weight sharing: each core stores the kernel slices (every synaptic layer adding into the "
            "population, 8-bit) of the output channels whose neurons it hosts, once for all positions on it; "
            "populations split by output channel first, then spatially (each spatial tile stores its channel's "
            "kernel again)",
            "host-fed neurons: one identity input synapse per channel for the injected integer current",
            "fanout: a residual stream's layers are stored at every later neuron of the stream that sums them "
            "(lava: several Conv outputs into one a_in); relay: a relay population per stream point carries the "
            "running sum as a 24-bit graded payload through identity synapses, each layer stored once per "
            "stream point (relay + spiking population)",
            "template-branch populations (memory keys / values) are counted: they run at template updates on "
            "the same chip",
        ],
        "totals": tot,
        "recommended": best,
        "cores": tot[best]["cores"],
        "chips": tot[best]["chips"],
        "unique_weights": unique_weights,
        "unique_weight_bytes": unique_weights * wbits / 8,
        "host": {"layers": [L.name for L in host], "macs_per_frame": int(host_macs),
                 "operations": [f"{h.module or '<model>'}:{h.op}" for h in mapping.host_ops],
                 "note": "host operations run on the chip's embedded x86 cores or off chip; they are not placed on "
                         "neurocores"},
        "populations": table,
        "layers": pd.DataFrame(layer_rows),
    }
