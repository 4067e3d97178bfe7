"""Hardware-profile schema: what a profile YAML may hold, and the rules it must obey.

A profile is data: named constants, each with a value, a unit, a citation and a status
(`measured` | `specified` | `derived` | `assumed`), plus the estimators that apply to it.
`measured`: read off the device or silicon; `specified`: a manufacturer's rated figure
(datasheet peak rates, TDPs, power-mode caps, interface bandwidths) -- what the part is sold
as, not what it was seen doing; `derived`: computed from cited figures; `assumed`: a
modelling choice of snnsim's, said so. This module only
describes and checks; `profiles.py` finds and reads files, the estimators use the numbers.

Every rule violation raises `HardwareProfileError` whose message is one line of the form
``<file>: <field>: <rule>`` -- it names the file, the field and what is wrong.
"""
from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any, Literal, Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from . import units as U

# simulated: a figure from a simulation of the hardware before it existed (pre-silicon SPICE /
# SDF), as its own paper describes it -- neither measured on a chip nor derived from measurements
STATUSES = ("measured", "specified", "simulated", "derived", "assumed")
KINDS = ("asic", "neuromorphic", "gpu", "edge-gpu")
PRECISIONS = ("fp32", "tf32", "fp16", "int8")
BYTES_PER_ELEMENT = {"fp32": 4, "tf32": 4, "fp16": 2, "int8": 1}

# Every constant a profile may name: name -> (dimension, meaning). A name not listed here is
# rejected (a typo such as `e_mca` must not silently fall back to nothing).
CONSTANTS: dict[str, tuple[str, str]] = {
    # arithmetic
    "e_add": ("energy", "one addition at the profile's word size"),
    "e_mult": ("energy", "one multiplication at the profile's word size"),
    "e_mac": ("energy", "one multiply-accumulate (mult + add)"),
    "e_ac": ("energy", "one accumulate (add), the cost of a synaptic event on a spike"),
    # memory
    "e_dram": ("energy", "one DRAM access of dram_access_bits"),
    "sram_access_bits": ("memory", "width of one access in the sram_read energy points"),
    "dram_access_bits": ("memory", "width of one DRAM access priced by e_dram"),
    "word_bits": ("memory", "width of a weight / activation word"),
    "potential_bits": ("memory", "width of a stored membrane potential"),
    "on_chip_sram": ("memory", "on-chip SRAM capacity; a larger working set spills to DRAM"),
    # neuromorphic cores
    "e_synop": ("energy", "one synaptic operation (spike x synapse)"),
    "e_neuron_update": ("energy", "one neuron update of a neuron that does not spike"),
    "e_neuron_update_active": ("energy", "one neuron update of a neuron that spikes"),
    "e_spike": ("energy", "sending one spike message (within a tile)"),
    "e_hop": ("energy", "one mesh hop of a spike message (mean over directions)"),
    "e_hop_ew": ("energy", "one east-west mesh hop"),
    "e_hop_ns": ("energy", "one north-south mesh hop"),
    "mean_hops": ("count", "mean mesh hops travelled by one spike message"),
    "neurons_per_core": ("count", "neurons one core can hold"),
    "cores_per_chip": ("count", "neuromorphic cores on one chip"),
    "neurons_per_chip": ("count", "neurons one chip can hold"),
    "synapses_per_chip": ("count", "synapses one chip can hold (vendor figure)"),
    "embedded_cores_per_chip": ("count", "embedded general-purpose cores on one chip"),
    "synapse_memory_per_core": ("memory", "synaptic memory of one core"),
    "synapse_bits": ("memory", "bits one synapse (weight) takes in synaptic memory"),
    "sops_per_watt": ("efficiency", "synaptic operations per joule (SOPS/W)"),
    "typical_power": ("power", "chip power at a typical operating point"),
    # GPUs
    "peak_fp32": ("rate", "peak dense FP32 rate"),
    "peak_tf32": ("rate", "peak dense TF32 tensor-core rate"),
    "peak_fp16": ("rate", "peak dense FP16 rate"),
    "peak_int8": ("rate", "peak dense INT8 rate"),
    "peak_tf32_sparse": ("rate", "peak TF32 rate with 2:4 structured sparsity"),
    "peak_fp16_sparse": ("rate", "peak FP16 rate with 2:4 structured sparsity"),
    "peak_int8_sparse": ("rate", "peak INT8 rate with 2:4 structured sparsity"),
    "dla_int8_sparse": ("rate", "peak INT8 rate (2:4 sparsity) of deep-learning accelerators beside the GPU; listed, never used by the gpu estimator (PyTorch runs on the GPU)"),
    "memory_bandwidth": ("bandwidth", "peak DRAM bandwidth"),
    "tdp": ("power", "thermal design power"),
    "static_power_chip": ("power", "static (leakage) power of one chip, stated beside the per-event energy, never added to it"),
    "utilisation": ("ratio", "fraction of peak compute and bandwidth reached"),
}

# What each estimator needs from a profile. Kept here, as data, so a profile is checked when it
# loads -- not when an estimate is half done.
ESTIMATOR_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "ac-mac": ("e_mac", "e_ac"),
    "memory-aware": ("e_mac", "e_ac", "e_dram", "sram_access_bits", "dram_access_bits",
                     "word_bits", "on_chip_sram"),
    "loihi": ("e_synop", "e_neuron_update", "e_spike", "e_hop", "mean_hops", "neurons_per_core",
              "synapse_memory_per_core", "synapse_bits", "cores_per_chip"),
    "synop": ("e_synop",),
    "gpu": ("memory_bandwidth", "utilisation"),
}
ESTIMATORS = tuple(ESTIMATOR_REQUIREMENTS)

# The counts that the arithmetic estimators price, and the constant that prices each by default.
# A profile's `pricing` map may point an operation at another energy constant.
# spike_mask: element-wise spike operations (a mask / gate product or a token-sum accumulate
# per nonzero spike element), one accumulate each by default.
DEFAULT_PRICING: dict[str, str] = {"mac_ops": "e_mac", "syn_ops": "e_ac", "spike_spike": "e_ac",
                                   "spike_mask": "e_ac"}
OPERATIONS = tuple(DEFAULT_PRICING)


class HardwareProfileError(ValueError):
    """A malformed or unknown hardware profile. str() is one line: file, field, rule."""


# ------------------------------------------------------------------------------------------
# Models (structure). Semantic rules live in `validate_profile`.

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _number(v: Any) -> Any:
    # YAML `true` would otherwise pass as 1.0
    if isinstance(v, bool):
        raise ValueError("must be a number, not a boolean")
    return v


class _ValueWithUnit(_Strict):
    """A number and its unit (from `units.UNITS`): what `Constant` and `Quantity` share."""

    value: float
    unit: str

    _value_is_number = field_validator("value", mode="before")(_number)

    @property
    def si(self) -> float:
        """The value in the SI unit of its dimension (J, W, ops/s, B/s, bytes, plain)."""
        return U.to_si(self.value, self.unit)


class Constant(_ValueWithUnit):
    """One cited number."""

    source: str = Field(min_length=1)
    status: Literal["measured", "specified", "simulated", "derived", "assumed"]
    note: Optional[str] = None

    @property
    def dimension(self) -> str:
        return U.UNITS[self.unit][0]


class Quantity(_ValueWithUnit):
    """A value with a unit and no citation of its own (the size of an SRAM energy point)."""


class SramPoint(_Strict):
    """The energy of one access of `sram_access_bits` to an SRAM array of `size`."""

    size: Quantity
    energy: Constant


class Measurement(_Strict):
    """Energy per frame measured on the real device for one model (e.g. with NVML)."""

    joules_per_frame: Constant
    method: str = Field(min_length=1)
    power_mode: Optional[str] = None
    precision: Optional[Literal["fp32", "tf32", "fp16", "int8"]] = None
    batch_size: Optional[int] = Field(default=None, ge=1)
    frames: Optional[int] = Field(default=None, ge=1)
    note: Optional[str] = None


class HardwareProfile(_Strict):
    """A validated hardware profile. Build it with `load_hardware` (or `validate_profile`)."""

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    kind: Literal["asic", "neuromorphic", "gpu", "edge-gpu"]
    estimators: list[str] = Field(min_length=1)
    constants: dict[str, Constant] = Field(default_factory=dict)
    sram_read: list[SramPoint] = Field(default_factory=list)
    power_modes: dict[str, Constant] = Field(default_factory=dict)
    default_power_mode: Optional[str] = None
    default_precision: Optional[Literal["fp32", "tf32", "fp16", "int8"]] = None
    # the number format the priced operations are in (every energy table shows it beside the
    # figure); GPU profiles price in the precision an estimate picks (default_precision) instead
    arithmetic: Optional[str] = Field(default=None, max_length=160)
    binary_spikes_only: Optional[bool] = None

    @field_validator("arithmetic")
    @classmethod
    def _arithmetic_said(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.strip():
            raise ValueError("must say the number format (e.g. fp32, int8, fixed point: ...), not be blank")
        return v
    pricing: dict[str, str] = Field(default_factory=dict)
    measurements: dict[str, Measurement] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    base: Optional[str] = None
    _origin: Optional[str] = PrivateAttr(default=None)
    # Where the numbers came from, set by the loader: the absolute path of a user's file (None
    # for a shipped profile or one built from a dict), the sha256 of the file's bytes (shipped
    # files too), whether it ships with snnsim, and the same facts for each `base` it builds on.
    _source_path: Optional[str] = PrivateAttr(default=None)
    _sha256: Optional[str] = PrivateAttr(default=None)
    _shipped: bool = PrivateAttr(default=False)
    _bases: tuple = PrivateAttr(default=())

    @property
    def origin(self) -> str | None:
        """The file this profile was read from (None when built from a dict)."""
        return self._origin

    @property
    def source_path(self) -> str | None:
        """Absolute path of the user file this profile was read from (None when shipped)."""
        return self._source_path

    @property
    def sha256(self) -> str | None:
        """sha256 (hex) of the bytes of the file this profile was read from."""
        return self._sha256

    @property
    def shipped(self) -> bool:
        """True for a profile that ships with snnsim (`list_hardware()`)."""
        return self._shipped

    def provenance(self) -> dict[str, Any]:
        """{name, shipped, file, sha256[, base]}: which file the numbers came from (a user's
        file by absolute path, a shipped one as hardware_profiles/NAME.yaml) and the hash of its
        bytes; `base` lists the same for each profile it builds on, nearest first."""
        out: dict[str, Any] = {"name": self.name, "shipped": self.shipped,
                               "file": self.source_path or self.origin, "sha256": self.sha256}
        if self._bases:
            out["base"] = [dict(b) for b in self._bases]
        return out

    # -- access --------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.constants

    def constant(self, name: str) -> Constant:
        try:
            return self.constants[name]
        except KeyError:
            raise KeyError(f"hardware '{self.name}' has no constant '{name}'") from None

    def si(self, name: str) -> float:
        """The SI value of a constant (J, W, ops/s, B/s, bytes or plain number)."""
        return self.constant(name).si

    def price(self, operation: str) -> float:
        """Joules per operation for `mac_ops`, `syn_ops` or `spike_spike`."""
        return self.si(self.pricing.get(operation, DEFAULT_PRICING[operation]))

    def pricing_constant(self, operation: str) -> str:
        return self.pricing.get(operation, DEFAULT_PRICING[operation])

    def sram_curve(self) -> list[tuple[float, float]]:
        """[(size in bytes, joules per access of sram_access_bits)], ascending by size."""
        return sorted((p.size.si, p.energy.si) for p in self.sram_read)

    def power(self, mode: str | None = None) -> tuple[str, float]:
        """(mode name, watts) of a power mode; default: `default_power_mode`, else the
        highest mode, else the TDP."""
        if self.power_modes:
            if mode is None:
                mode = self.default_power_mode or max(self.power_modes,
                                                      key=lambda m: self.power_modes[m].si)
            if mode not in self.power_modes:
                known = ", ".join(self.power_modes)
                raise ValueError(f"hardware '{self.name}' has no power mode '{mode}' "
                                 f"(its modes: {known})")
            return mode, self.power_modes[mode].si
        if mode not in (None, "tdp"):
            raise ValueError(f"hardware '{self.name}' has no power modes, only its TDP; "
                             f"got power mode '{mode}'")
        return "tdp", self.si("tdp")

    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if f"peak_{p}" in self.constants]

    @property
    def number_format(self) -> str:
        """The number format this profile's figures price: `arithmetic`, else a GPU's default
        precision (an estimate that picks another precision says so in its details)."""
        return self.arithmetic or self.default_precision or "not stated in the profile"

    def constants_table(self) -> pd.DataFrame:
        """One row per constant (and power mode, SRAM point): value, unit, SI value, status,
        source -- what `snnsim hardware NAME` prints."""
        rows = []

        def add(name: str, c: Constant) -> None:
            dim = c.dimension
            rows.append({"name": name, "value": c.value, "unit": c.unit, "si_value": c.si,
                         "si_unit": U.DIMENSIONS[dim].si_unit, "status": c.status,
                         "source": c.source, "note": c.note or ""})

        for name, c in self.constants.items():
            add(name, c)
        for mode, c in self.power_modes.items():
            add(f"power_mode[{mode}]", c)
        for p in self.sram_read:
            add(f"sram_read[{p.size.value:g} {p.size.unit}]", p.energy)
        for model, m in self.measurements.items():
            add(f"measured[{model}]", m.joules_per_frame)
        return pd.DataFrame(rows, columns=["name", "value", "unit", "si_value", "si_unit",
                                           "status", "source", "note"])

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# ------------------------------------------------------------------------------------------
# Validation

def _fail(src: str, field: str, rule: str) -> typing.NoReturn:
    line = f"{src}: {field}: {rule}" if field else f"{src}: {rule}"
    raise HardwareProfileError(" ".join(line.split()))


def _did_you_mean(name: str, options) -> str:
    options = list(options)
    same_letters = [o for o in options if o.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _loc_str(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (for listing its allowed fields)."""
    current: Any = HardwareProfile
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            args = typing.get_args(current)
            current = args[-1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _pydantic_fail(src: str, err: ValidationError) -> typing.NoReturn:
    first = err.errors()[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner else ""
        field = _loc_str(loc)
        hint = _did_you_mean(str(loc[-1]), owner.model_fields) if owner else ""
        rule = f"unknown field '{loc[-1]}'" + (f" ({hint}allowed: {allowed})" if allowed else "")
        _fail(src, field, rule)
    if kind == "missing":
        _fail(src, _loc_str(loc), "missing required field")
    rule = first.get("msg", "invalid value")
    if kind == "value_error" and rule.startswith("Value error, "):
        rule = rule[len("Value error, "):]
    if "input" in first and kind not in ("missing",):
        shown = repr(first["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        rule += f", got {shown}"
    _fail(src, _loc_str(loc), rule)


_MEAN_COUNTS = {"constants.mean_hops"}   # counts that are means over events, not capacities


def _check_constant(src: str, field: str, c: Constant, dimension: str | None,
                    what: str = "") -> None:
    """Unit known, of the right dimension, value finite and > 0 (a fraction also <= 1; a count
    a whole number; a mean count such as mean_hops >= 0 and any real)."""
    if c.unit not in U.UNITS:
        accepted = ", ".join(U.units_of(dimension)) if dimension else ", ".join(U.UNITS)
        hint = _did_you_mean(c.unit, U.units_of(dimension) if dimension else U.UNITS)
        _fail(src, f"{field}.unit", f"unknown unit '{c.unit}' ({hint}accepted: {accepted})")
    dim = U.UNITS[c.unit][0]
    if dimension is not None and dim != dimension:
        accepted = ", ".join(U.units_of(dimension))
        _fail(src, f"{field}.unit",
              f"'{c.unit}' is {U.DIMENSIONS[dim].measures} unit but {what or field} is "
              f"{U.DIMENSIONS[dimension].measures} (use one of: {accepted})")
    if not math.isfinite(c.value):
        _fail(src, f"{field}.value", f"must be a finite number, got {c.value!r}")
    if field in _MEAN_COUNTS:   # a mean may be 0 (spikes that stay on their core) or fractional
        if c.value < 0:
            _fail(src, f"{field}.value", f"a mean count must be >= 0, got {c.value:g}")
    elif dim == "count" and c.si != int(c.si):
        _fail(src, f"{field}.value", f"a count must be a whole number, got {c.value:g}")
    if c.value <= 0 and field not in _MEAN_COUNTS:
        noun = "energy" if dim == "energy" else U.DIMENSIONS[dim].measures.split(" ", 1)[1]
        _fail(src, f"{field}.value", f"{noun} must be > 0, got {c.value:g}")
    if dim == "ratio" and c.si > 1:
        _fail(src, f"{field}.value", f"a fraction must be <= 1 (100 %), got {c.value:g} {c.unit}")
    if not c.source.strip():
        _fail(src, f"{field}.source", "must cite where the number comes from")


def validate_profile(data: Any, src: str = "<profile>") -> HardwareProfile:
    """Check a parsed YAML document and return the profile; HardwareProfileError otherwise."""
    if not isinstance(data, dict):
        got = "an empty document" if data is None else f"a {type(data).__name__}"
        _fail(src, "", f"a hardware profile must be a YAML mapping of fields, got {got}")
    error: ValidationError | None = None
    try:
        hw = HardwareProfile.model_validate(data)
    except ValidationError as err:
        error = err
    if error is not None:
        _pydantic_fail(src, error)

    # constants: known names, units, dimensions, values
    for name, c in hw.constants.items():
        if name not in CONSTANTS:
            known = ", ".join(sorted(CONSTANTS))
            _fail(src, f"constants.{name}", f"unknown constant '{name}' "
                  f"({_did_you_mean(name, CONSTANTS)}known: {known})")
        _check_constant(src, f"constants.{name}", c, CONSTANTS[name][0], name)

    for mode, c in hw.power_modes.items():
        _check_constant(src, f"power_modes.{mode}", c, "power", f"power mode '{mode}'")
    if hw.default_power_mode is not None and hw.default_power_mode not in hw.power_modes:
        known = ", ".join(hw.power_modes) or "none declared"
        _fail(src, "default_power_mode",
              f"refers to unknown power mode '{hw.default_power_mode}' (power_modes: {known})")

    seen_sizes: set[float] = set()
    for i, p in enumerate(hw.sram_read):
        size_c = Constant(value=p.size.value, unit=p.size.unit, source="-", status="measured")
        _check_constant(src, f"sram_read[{i}].size", size_c, "memory", "an SRAM size")
        _check_constant(src, f"sram_read[{i}].energy", p.energy, "energy", "an SRAM access")
        if p.size.si in seen_sizes:
            _fail(src, f"sram_read[{i}].size", f"duplicate SRAM size {p.size.value:g} {p.size.unit}")
        seen_sizes.add(p.size.si)

    for model, m in hw.measurements.items():
        field = f"measurements.{model}"
        _check_constant(src, f"{field}.joules_per_frame", m.joules_per_frame, "energy",
                        "joules_per_frame")
        if m.joules_per_frame.status != "measured":
            _fail(src, f"{field}.joules_per_frame.status",
                  f"a measurement must have status 'measured', got '{m.joules_per_frame.status}'")
        tdp_only = not hw.power_modes and "tdp" in hw.constants and m.power_mode == "tdp"
        if m.power_mode is not None and m.power_mode not in hw.power_modes and not tdp_only:
            known = ", ".join(hw.power_modes) or "none declared"
            _fail(src, f"{field}.power_mode",
                  f"refers to unknown power mode '{m.power_mode}' (power_modes: {known})")

    for op, const in hw.pricing.items():
        if op not in OPERATIONS:
            _fail(src, f"pricing.{op}",
                  f"unknown operation '{op}' (known: {', '.join(OPERATIONS)})")
        if const not in hw.constants:
            _fail(src, f"pricing.{op}",
                  f"refers to constant '{const}', which this profile does not define")
        if CONSTANTS[const][0] != "energy":
            _fail(src, f"pricing.{op}", f"must name an energy constant, '{const}' is not one")

    # estimators: known, and everything each one needs is there
    for i, est in enumerate(hw.estimators):
        if est not in ESTIMATOR_REQUIREMENTS:
            _fail(src, f"estimators[{i}]", f"unknown estimator '{est}' "
                  f"({_did_you_mean(est, ESTIMATORS)}known: {', '.join(ESTIMATORS)})")
        need = ESTIMATOR_REQUIREMENTS[est]
        for name in need:
            if name not in hw.constants:
                _fail(src, f"constants.{name}",
                      f"missing, required by estimator '{est}' (it needs: {', '.join(need)})")
        if est == "memory-aware" and len(hw.sram_read) < 2:
            _fail(src, "sram_read", f"estimator 'memory-aware' needs at least 2 SRAM energy "
                                    f"points, got {len(hw.sram_read)}")
        if est in ("loihi", "synop") and hw.binary_spikes_only is None:
            _fail(src, "binary_spikes_only",
                  f"missing, required by estimator '{est}' (true: graded spikes are sent as k "
                  f"binary spikes; false: one spike carries its level as a payload)")
        if est == "gpu":
            if not hw.precisions():
                peaks = ", ".join(f"peak_{p}" for p in PRECISIONS)
                _fail(src, "constants", f"estimator 'gpu' needs a peak compute rate (one of: {peaks})")
            if not hw.power_modes and "tdp" not in hw.constants:
                _fail(src, "power_modes", "estimator 'gpu' needs power_modes or constants.tdp")
            precision = hw.default_precision or hw.precisions()[-1]
            if f"peak_{precision}" not in hw.constants:
                _fail(src, "default_precision",
                      f"'{precision}' has no constants.peak_{precision} "
                      f"(available: {', '.join(hw.precisions())})")
    if hw.default_precision is not None and f"peak_{hw.default_precision}" not in hw.constants:
        _fail(src, "default_precision",
              f"'{hw.default_precision}' has no constants.peak_{hw.default_precision}")
    return hw
