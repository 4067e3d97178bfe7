"""Units accepted in hardware profiles and their factors to SI.

Every constant in a profile carries a unit from this table. A unit belongs to one dimension
(energy, power, ...); `to_si` turns a value into the dimension's SI unit: J, W, ops/s, B/s,
bytes, or a plain number. Units are case-sensitive (`mW` and `MW` differ by 10^9).

Memory sizes: `KiB` / `MiB` / `GiB` are binary (1024-based), `KB` / `MB` / `GB` decimal, as
in IEC 80000-13. Horowitz's "8 KB / 32 KB / 1 MB" cache sizes are binary, so the shipped
profiles write them as KiB / MiB. Bandwidths (`GB/s`) are decimal, as vendors quote them.
"""
from __future__ import annotations

import math
from typing import NamedTuple


class Dimension(NamedTuple):
    """A dimension's SI unit and what it measures (a tuple, so ``DIMENSIONS[d][0]`` still works)."""

    si_unit: str   # "" for plain numbers
    measures: str  # with its article, for messages: "an energy"


DIMENSIONS: dict[str, Dimension] = {
    "energy": Dimension("J", "an energy"),
    "power": Dimension("W", "a power"),
    "rate": Dimension("ops/s", "a compute rate"),
    "bandwidth": Dimension("B/s", "a bandwidth"),
    "memory": Dimension("B", "a memory size"),
    "count": Dimension("", "a count"),
    "ratio": Dimension("", "a fraction"),
    "efficiency": Dimension("ops/J", "an energy efficiency"),
}

# unit -> (dimension, factor to SI)
UNITS: dict[str, tuple[str, float]] = {
    # energy
    "fJ": ("energy", 1e-15),
    "pJ": ("energy", 1e-12),
    "nJ": ("energy", 1e-9),
    "uJ": ("energy", 1e-6),
    "µJ": ("energy", 1e-6),
    "mJ": ("energy", 1e-3),
    "J": ("energy", 1.0),
    # power
    "uW": ("power", 1e-6),
    "mW": ("power", 1e-3),
    "W": ("power", 1.0),
    "kW": ("power", 1e3),
    # compute rate (an operation: one multiply or one add; a MAC is two)
    "ops/s": ("rate", 1.0),
    "GOPS": ("rate", 1e9),
    "TOPS": ("rate", 1e12),
    "GFLOPS": ("rate", 1e9),
    "TFLOPS": ("rate", 1e12),
    "PFLOPS": ("rate", 1e15),
    # bandwidth (decimal)
    "B/s": ("bandwidth", 1.0),
    "MB/s": ("bandwidth", 1e6),
    "GB/s": ("bandwidth", 1e9),
    "TB/s": ("bandwidth", 1e12),
    # memory size
    "bit": ("memory", 0.125),
    "Kibit": ("memory", 1024 / 8),
    "Mibit": ("memory", 1024**2 / 8),
    "B": ("memory", 1.0),
    "KiB": ("memory", 1024.0),
    "MiB": ("memory", 1024.0**2),
    "GiB": ("memory", 1024.0**3),
    "KB": ("memory", 1e3),
    "MB": ("memory", 1e6),
    "GB": ("memory", 1e9),
    # plain numbers
    "count": ("count", 1.0),
    "ratio": ("ratio", 1.0),
    "%": ("ratio", 0.01),
    # efficiency
    "GSOPS/W": ("efficiency", 1e9),
    "TOPS/W": ("efficiency", 1e12),
}


def units_of(dimension: str) -> list[str]:
    """The accepted units of one dimension, in table order."""
    return [u for u, (d, _) in UNITS.items() if d == dimension]


def dimension_of(unit: str) -> str | None:
    entry = UNITS.get(unit)
    return entry[0] if entry else None


def to_si(value: float, unit: str) -> float:
    """value in `unit` -> value in the SI unit of its dimension. KeyError on an unknown unit."""
    return float(value) * UNITS[unit][1]


def format_si(value: float, dimension: str) -> str:
    """A short human string of an SI value (1.2e-11 J -> '12 pJ')."""
    si_unit = DIMENSIONS[dimension].si_unit
    if dimension in ("count", "ratio"):
        return f"{value:g}"
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {si_unit}"
    if dimension == "memory":  # sizes read best in binary units (8 KiB, not 8.192 kB)
        for factor, name in ((1024.0**3, "GiB"), (1024.0**2, "MiB"), (1024.0, "KiB")):
            if abs(value) >= factor:
                return f"{value / factor:.4g} {name}"
        return f"{value:.4g} B"
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")]
    for factor, prefix in prefixes:
        # 0.9 pJ reads better than 900 fJ: take a prefix once the value reaches half of it
        if abs(value) >= 0.5 * factor:
            return f"{value / factor:.4g} {prefix}{si_unit}"
    return f"{value:.4g} {si_unit}"
