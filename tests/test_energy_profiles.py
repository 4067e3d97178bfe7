"""Hardware profiles: every shipped one loads and is cited; malformed ones fail with one line."""
from __future__ import annotations

import importlib.resources
import pathlib

import pytest
import yaml

from snnsim.energy import (
    CONSTANTS,
    ESTIMATOR_FUNCTIONS,
    ESTIMATOR_REQUIREMENTS,
    HardwareProfileError,
    list_hardware,
    load_hardware,
)
from snnsim.energy.units import UNITS, to_si

PACKAGE_DIR = pathlib.Path(str(importlib.resources.files("snnsim.hardware_profiles")))
EXPECTED = {"horowitz-45nm-fp32", "horowitz-45nm-int8", "loihi", "loihi2", "truenorth",
            "spinnaker2", "jetson-agx-xavier", "jetson-agx-orin", "jetson-orin-nano",
            "gpu-a100", "gpu-h100"}


# --------------------------------------------------------------------------------------
# shipped profiles

def test_every_expected_profile_is_shipped():
    assert EXPECTED <= set(list_hardware())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_profile_loads_and_is_cited(name):
    hw = load_hardware(name)
    assert hw.name == name
    assert hw.description and hw.kind in ("asic", "neuromorphic", "gpu", "edge-gpu")
    assert hw.estimators
    for est in hw.estimators:
        for const in ESTIMATOR_REQUIREMENTS[est]:
            assert hw.has(const), (name, est, const)
    table = hw.constants_table()
    assert len(table) >= len(hw.constants)
    for row in table.itertuples():
        assert row.status in ("measured", "derived", "assumed")
        assert len(row.source.strip()) > 5, (name, row.name)
        assert row.si_value > 0
        if row.status == "assumed":
            # an assumption must say what it is and why
            assert "assum" in (row.source + row.note).lower(), (name, row.name)


def test_shipped_yaml_files_are_exactly_the_listed_profiles():
    stems = {p.stem for p in PACKAGE_DIR.glob("*.yaml")}
    assert stems == {n for n in list_hardware() if not n.startswith("measured/")}
    repo = pathlib.Path(__file__).resolve().parents[1]
    assert (repo / "hardware_profiles" / "measured" / "README.md").is_file()


def test_registry_and_schema_agree():
    assert tuple(ESTIMATOR_FUNCTIONS) == tuple(ESTIMATOR_REQUIREMENTS)


def test_si_normalisation_of_shipped_constants():
    fp32 = load_hardware("horowitz-45nm-fp32")
    assert fp32.si("e_mac") == pytest.approx(4.6e-12, rel=1e-12)
    assert fp32.si("e_ac") == pytest.approx(0.9e-12, rel=1e-12)
    assert fp32.si("e_mac") == pytest.approx(fp32.si("e_mult") + fp32.si("e_add"), rel=1e-12)
    assert fp32.si("e_dram") == pytest.approx(1.95e-9)
    assert fp32.si("on_chip_sram") == 1024**2
    assert fp32.si("word_bits") == 4                      # bytes
    assert fp32.sram_curve() == [(8192.0, pytest.approx(10e-12)), (32768.0, pytest.approx(20e-12)),
                                 (1048576.0, pytest.approx(100e-12))]
    int8 = load_hardware("horowitz-45nm-int8")
    assert int8.si("e_mac") == pytest.approx(0.23e-12) and int8.si("e_ac") == pytest.approx(0.03e-12)
    a100 = load_hardware("gpu-a100")
    assert a100.si("peak_fp16") == pytest.approx(312e12)
    assert a100.si("memory_bandwidth") == pytest.approx(2039e9)
    assert a100.power() == ("tdp", 400.0)
    h100 = load_hardware("gpu-h100")
    assert h100.si("memory_bandwidth") == pytest.approx(3.35e12)
    assert h100.si("peak_fp16") == pytest.approx(h100.si("peak_fp16_sparse") / 2)
    orin = load_hardware("jetson-agx-orin")
    assert orin.power() == ("MAXN", 60.0) and orin.power("15W") == ("15W", 15.0)
    assert orin.si("peak_int8") == pytest.approx(orin.si("peak_int8_sparse") / 2)
    nano = load_hardware("jetson-orin-nano")
    assert {m: c.si for m, c in nano.power_modes.items()} == {"7W": 7.0, "15W": 15.0, "25W": 25.0}
    xavier = load_hardware("jetson-agx-xavier")
    assert xavier.si("peak_int8") == pytest.approx(32e12) and xavier.power() == ("30W", 30.0)
    truenorth = load_hardware("truenorth")
    assert truenorth.si("e_synop") == pytest.approx(1 / truenorth.si("sops_per_watt"), rel=2e-3)


def test_loihi_profiles():
    l1 = load_hardware("loihi")
    assert l1.binary_spikes_only is True
    assert l1.si("e_synop") == pytest.approx(23.6e-12)
    assert l1.si("e_neuron_update") == pytest.approx(52e-12)
    assert l1.si("e_neuron_update_active") == pytest.approx(81e-12)
    assert l1.si("e_spike") == pytest.approx(1.7e-12)
    assert (l1.si("e_hop_ew"), l1.si("e_hop_ns")) == (pytest.approx(3e-12), pytest.approx(4e-12))
    assert l1.si("cores_per_chip") == 128 and l1.si("neurons_per_core") == 1024
    assert l1.si("synapse_memory_per_core") == 128 * 1024
    for name in ("e_synop", "e_neuron_update", "e_spike"):
        assert l1.constant(name).status == "measured"
    l2 = load_hardware("loihi2")
    assert l2.binary_spikes_only is False
    assert l2.si("cores_per_chip") == 128 and l2.si("neurons_per_chip") == 1e6
    assert l2.si("synapses_per_chip") == 120e6
    for name, c in l2.constants.items():
        if c.dimension == "energy":
            assert c.status == "assumed", name
            assert "scaled from" in (c.note or ""), name


def test_units_table():
    assert to_si(4.6, "pJ") == pytest.approx(4.6e-12)
    assert to_si(2, "mJ") == pytest.approx(2e-3)
    assert to_si(3, "uJ") == pytest.approx(3e-6) and to_si(5, "nJ") == pytest.approx(5e-9)
    assert to_si(7, "J") == 7 and to_si(30, "W") == 30
    assert to_si(32, "TOPS") == pytest.approx(32e12) and to_si(11, "TFLOPS") == pytest.approx(11e12)
    assert to_si(137, "GB/s") == pytest.approx(137e9)
    assert to_si(64, "bit") == 8 and to_si(8, "KiB") == 8192
    for unit in ("pJ", "nJ", "uJ", "mJ", "J", "W", "TOPS", "TFLOPS", "GB/s"):
        assert unit in UNITS


def test_load_returns_profile_unchanged_and_caches_shipped():
    hw = load_hardware("loihi")
    assert load_hardware(hw) is hw
    assert load_hardware("loihi") is hw


def test_load_by_path(tmp_path):
    src = PACKAGE_DIR / "loihi.yaml"
    dst = tmp_path / "my-loihi.yaml"
    dst.write_text(src.read_text())
    hw = load_hardware(dst)
    assert hw.name == "loihi" and hw.origin.endswith("my-loihi.yaml")
    assert load_hardware(str(dst)).si("e_synop") == pytest.approx(23.6e-12)


def test_base_profile_merges_constants(tmp_path):
    p = tmp_path / "slow-a100.yaml"
    p.write_text(yaml.safe_dump({
        "name": "slow-a100", "base": "gpu-a100",
        "constants": {"utilisation": {"value": 10, "unit": "%", "source": "my guess",
                                      "status": "assumed"}}}))
    hw = load_hardware(p)
    assert hw.name == "slow-a100" and hw.base == "gpu-a100"
    assert hw.si("utilisation") == pytest.approx(0.1)
    assert hw.si("peak_fp16") == pytest.approx(312e12)       # inherited


# --------------------------------------------------------------------------------------
# malformed profiles: one line naming the file, the field and the rule

def _base_doc() -> dict:
    return yaml.safe_load((PACKAGE_DIR / "horowitz-45nm-fp32.yaml").read_text())


def _write(tmp_path, doc, name="bad.yaml") -> pathlib.Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return p


def _error(path) -> str:
    with pytest.raises(HardwareProfileError) as info:
        load_hardware(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert isinstance(info.value, ValueError)
    assert path.name in msg, msg
    return msg


def _mutated(fn):
    doc = _base_doc()
    fn(doc)
    return doc


CASES = {
    "unknown top-level field": (lambda d: d.update(colour="blue"),
                                ["colour", "unknown field"]),
    "unknown constant field": (lambda d: d["constants"]["e_mac"].update(valeu=1),
                               ["constants.e_mac.valeu", "unknown field", "allowed: value"]),
    "unknown constant name": (lambda d: d["constants"].update(
        e_mca={"value": 1, "unit": "pJ", "source": "x", "status": "assumed"}),
        ["constants.e_mca", "unknown constant"]),
    "missing constant": (lambda d: d["constants"].pop("e_ac"),
                         ["constants.e_ac", "missing", "ac-mac"]),
    "missing memory constant": (lambda d: d["constants"].pop("on_chip_sram"),
                                ["constants.on_chip_sram", "missing", "memory-aware"]),
    "too few sram points": (lambda d: d.update(sram_read=d["sram_read"][:1]),
                            ["sram_read", "at least 2"]),
    "negative energy": (lambda d: d["constants"]["e_mac"].update(value=-4.6),
                        ["constants.e_mac.value", "energy must be > 0", "-4.6"]),
    "zero energy": (lambda d: d["constants"]["e_ac"].update(value=0),
                    ["constants.e_ac.value", "energy must be > 0"]),
    "zero sram energy": (lambda d: d["sram_read"][0]["energy"].update(value=0),
                         ["sram_read[0].energy.value", "> 0"]),
    "unknown unit": (lambda d: d["constants"]["e_mac"].update(unit="pj"),
                     ["constants.e_mac.unit", "unknown unit 'pj'", "pJ"]),
    "wrong dimension": (lambda d: d["constants"]["e_mac"].update(unit="W"),
                        ["constants.e_mac.unit", "power unit", "energy"]),
    "unknown estimator": (lambda d: d.update(estimators=["ac-mac", "magic"]),
                          ["estimators[1]", "unknown estimator 'magic'", "memory-aware"]),
    "unknown operation": (lambda d: d.update(pricing={"softmax": "e_mac"}),
                          ["pricing.softmax", "unknown operation", "mac_ops"]),
    "pricing to undefined constant": (lambda d: d.update(pricing={"spike_spike": "e_synop"}),
                                      ["pricing.spike_spike", "e_synop"]),
    "missing status": (lambda d: d["constants"]["e_mac"].pop("status"),
                       ["constants.e_mac.status", "missing"]),
    "bad status": (lambda d: d["constants"]["e_mac"].update(status="guessed"),
                   ["constants.e_mac.status", "measured"]),
    "missing source": (lambda d: d["constants"]["e_mac"].pop("source"),
                       ["constants.e_mac.source", "missing"]),
    "value not a number": (lambda d: d["constants"]["e_mac"].update(value="4.6 pJ"),
                           ["constants.e_mac.value", "number"]),
    "value a boolean": (lambda d: d["constants"]["e_mac"].update(value=True),
                        ["constants.e_mac.value", "not a boolean"]),
    "value not finite": (lambda d: d["constants"]["e_mac"].update(value=float("inf")),
                         ["constants.e_mac.value", "finite"]),
    "missing kind": (lambda d: d.pop("kind"), ["kind", "missing"]),
    "bad kind": (lambda d: d.update(kind="fpga"), ["kind", "asic"]),
    "fraction above one": (lambda d: d["constants"].update(
        utilisation={"value": 150, "unit": "%", "source": "x", "status": "assumed"}),
        ["constants.utilisation.value", "<= 1"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_profile_one_line_error(tmp_path, case):
    mutate, fragments = CASES[case]
    msg = _error(_write(tmp_path, _mutated(mutate)))
    for frag in fragments:
        assert frag in msg, (case, msg)


def test_gpu_profile_rules(tmp_path):
    doc = yaml.safe_load((PACKAGE_DIR / "jetson-agx-orin.yaml").read_text())
    doc["default_power_mode"] = "100W"
    msg = _error(_write(tmp_path, doc))
    assert "default_power_mode" in msg and "100W" in msg and "MAXN" in msg

    doc = yaml.safe_load((PACKAGE_DIR / "jetson-agx-orin.yaml").read_text())
    doc["power_modes"]["15W"]["value"] = 0
    msg = _error(_write(tmp_path, doc))
    assert "power_modes.15W.value" in msg and "> 0" in msg

    doc = yaml.safe_load((PACKAGE_DIR / "gpu-a100.yaml").read_text())
    doc["constants"].pop("tdp")
    msg = _error(_write(tmp_path, doc))
    assert "power_modes" in msg and "tdp" in msg

    doc = yaml.safe_load((PACKAGE_DIR / "gpu-a100.yaml").read_text())
    doc["default_precision"] = "fp8"
    msg = _error(_write(tmp_path, doc))
    assert "default_precision" in msg


def test_loihi_profile_needs_spike_format(tmp_path):
    doc = yaml.safe_load((PACKAGE_DIR / "loihi.yaml").read_text())
    doc.pop("binary_spikes_only")
    msg = _error(_write(tmp_path, doc))
    assert "binary_spikes_only" in msg and "loihi" in msg
    doc = yaml.safe_load((PACKAGE_DIR / "loihi.yaml").read_text())
    doc["constants"].pop("e_hop")
    msg = _error(_write(tmp_path, doc))
    assert "constants.e_hop" in msg and "missing" in msg


def test_measurement_must_be_measured(tmp_path):
    doc = {"name": "h100-nvml", "base": "gpu-h100",
           "measurements": {"toy": {"joules_per_frame": {"value": 3, "unit": "mJ",
                                                         "source": "NVML", "status": "assumed"},
                                    "method": "NVML energy counter"}}}
    msg = _error(_write(tmp_path, doc))
    assert "measurements.toy.joules_per_frame.status" in msg and "measured" in msg


def test_not_yaml(tmp_path):
    msg = _error(_write(tmp_path, "name: [unclosed\nkind: asic\n"))
    assert "not valid YAML" in msg and "line" in msg


@pytest.mark.parametrize("text,what", [("- a\n- b\n", "list"), ("", "empty document"),
                                       ("just a string\n", "str")])
def test_not_a_mapping(tmp_path, text, what):
    msg = _error(_write(tmp_path, text))
    assert "mapping" in msg and what in msg


def test_yaml_is_loaded_safely(tmp_path):
    msg = _error(_write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n"))
    assert "not valid YAML" in msg


def test_base_loop(tmp_path):
    _write(tmp_path, {"name": "a", "base": "b.yaml"}, "a.yaml")
    _write(tmp_path, {"name": "b", "base": "a.yaml"}, "b.yaml")
    with pytest.raises(HardwareProfileError, match="loop"):
        load_hardware(tmp_path / "a.yaml")


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(HardwareProfileError) as info:
        load_hardware("loihi3")
    msg = str(info.value)
    assert "unknown hardware 'loihi3'" in msg and "loihi2" in msg and "\n" not in msg
    with pytest.raises(HardwareProfileError, match="no such file"):
        load_hardware(tmp_path / "nope.yaml")


def test_every_constant_name_has_a_dimension():
    for name, (dim, meaning) in CONSTANTS.items():
        assert dim in ("energy", "power", "rate", "bandwidth", "memory", "count", "ratio",
                       "efficiency"), name
        assert meaning
