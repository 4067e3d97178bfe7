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
        assert row.status in ("measured", "specified", "simulated", "derived", "assumed")
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
        assert l1.constant(name).status == "simulated"   # Davies 2018 Table 2: pre-silicon
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
    dst.write_text(src.read_text().replace("name: loihi\n", "name: my-loihi\n", 1))
    hw = load_hardware(dst)
    assert hw.name == "my-loihi" and hw.origin.endswith("my-loihi.yaml")
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
    "fractional count": (lambda d: d["constants"].update(          # half a neuron per core was accepted
        neurons_per_core={"value": 0.5, "unit": "count", "source": "x", "status": "assumed"}),
        ["constants.neurons_per_core.value", "a count must be a whole number", "0.5"]),
    "negative mean count": (lambda d: d["constants"].update(
        mean_hops={"value": -1, "unit": "count", "source": "x", "status": "assumed"}),
        ["constants.mean_hops.value", "a mean count must be >= 0"]),
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


# --------------------------------------------------------------------------------------
# hostile input: duplicate keys, borrowed names, huge files, folders and devices

def _own_doc(name: str = "mine") -> dict:
    doc = _base_doc()
    doc["name"] = name
    return doc


def _lines(text: str, prefix: str) -> list[int]:
    """1-based numbers of the lines of `text` that start with `prefix`."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(prefix)]


def test_duplicate_top_level_key(tmp_path):
    text = yaml.safe_dump(_own_doc(), sort_keys=False) + "constants: {}\n"
    first, second = _lines(text, "constants:")
    msg = _error(_write(tmp_path, text))
    assert f"key 'constants' appears twice (lines {first} and {second}); keep one" in msg, msg


def test_duplicate_nested_key_names_the_field(tmp_path):
    lines = yaml.safe_dump(_own_doc(), sort_keys=False).splitlines(keepends=True)
    at = lines.index("  e_mac:\n")
    assert lines[at + 1].startswith("    value: ")
    lines.insert(at + 2, "    value: 1.0\n")             # the same key again, another number
    msg = _error(_write(tmp_path, "".join(lines)))
    assert f"constants.e_mac: key 'value' appears twice (lines {at + 2} and {at + 3})" in msg, msg


def test_duplicate_key_inside_a_list_item_and_three_times(tmp_path):
    text = ("name: mine\nsram_read:\n  - size: {value: 8, unit: KiB}\n"
            "    energy: {value: 1, unit: pJ, source: x, status: assumed}\n"
            "    size: {value: 9, unit: KiB}\n")
    msg = _error(_write(tmp_path, text))
    assert "sram_read[0]: key 'size' appears twice (lines 3 and 5)" in msg, msg
    msg = _error(_write(tmp_path, "name: a\nkind: asic\nname: b\nname: c\n"))
    assert "key 'name' appears 3 times (lines 1, 3 and 4)" in msg, msg


def test_duplicate_key_in_a_base_file_names_that_file(tmp_path):
    _write(tmp_path, "name: parent\nbase: gpu-a100\ndescription: a\ndescription: b\n", "parent.yaml")
    p = _write(tmp_path, {"name": "child", "base": "parent.yaml"}, "child.yaml")
    msg = _error(p)
    assert "parent.yaml" in msg and "key 'description' appears twice (lines 3 and 4)" in msg, msg


def test_merge_key_override_is_not_a_duplicate(tmp_path):
    text = yaml.safe_dump(_own_doc(), sort_keys=False).replace(
        "  e_add:\n", "  e_add: &add\n", 1)
    # e_ac starts from e_add (a `<<` merge) and sets its own value: an override, legitimate YAML
    lines = text.splitlines(keepends=True)
    at = lines.index("  e_ac:\n")
    end = at + 1
    while lines[end].startswith("    "):
        end += 1
    lines[at + 1:end] = ["    <<: *add\n", "    value: 0.5\n"]
    hw = load_hardware(_write(tmp_path, "".join(lines)))
    assert hw.si("e_ac") == pytest.approx(0.5e-12)
    assert hw.constant("e_ac").source == hw.constant("e_add").source


def test_user_profile_may_not_take_a_shipped_name(tmp_path):
    doc = _base_doc()                                       # name: horowitz-45nm-fp32
    doc["constants"]["e_mac"]["value"] = 1.0
    msg = _error(_write(tmp_path, doc, "my-asic.yaml"))
    assert "name: 'horowitz-45nm-fp32' is a shipped profile's" in msg, msg
    assert "own name" in msg and "base: horowitz-45nm-fp32" in msg and "copy" not in msg
    # a byte-for-byte copy says so
    copy = tmp_path / "copy.yaml"
    copy.write_bytes((PACKAGE_DIR / "loihi.yaml").read_bytes())
    msg = _error(copy)
    assert "'loihi' is a shipped profile's" in msg and "copy" in msg, msg
    # a name inherited from a shipped base is the shipped name too
    msg = _error(_write(tmp_path, {"base": "gpu-a100", "description": "my A100"}, "inherits.yaml"))
    assert "name: missing" in msg and "'gpu-a100'" in msg and "own name" in msg, msg
    # its own name, built on the shipped one: fine (this is what a measured profile does)
    hw = load_hardware(_write(tmp_path, {"name": "my-a100", "base": "gpu-a100"}, "ok.yaml"))
    assert hw.name == "my-a100" and not hw.shipped


def test_shipped_file_given_by_path_is_the_shipped_profile():
    hw = load_hardware(PACKAGE_DIR / "loihi.yaml")
    assert hw.name == "loihi" and hw.shipped and hw.source_path is None
    assert hw.sha256 == load_hardware("loihi").sha256


def _spy_open(monkeypatch) -> list[str]:
    from snnsim.energy import profiles

    opened: list[str] = []
    real = profiles.os.open

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(profiles.os, "open", spy)
    return opened


def test_file_above_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    from snnsim.energy import profiles

    limit = profiles.MAX_PROFILE_BYTES
    assert limit == 1024 * 1024
    line = "# padding padding padding padding padding padding padding padding\n"
    big = tmp_path / "huge.yaml"
    big.write_text(line * (limit // len(line) + 1))
    assert big.stat().st_size > limit
    opened = _spy_open(monkeypatch)
    monkeypatch.setattr(profiles, "_read_yaml", lambda *a: pytest.fail("parsed a file above the limit"))
    msg = _error(big)
    assert f"{big.stat().st_size:,} bytes" in msg and f"{limit:,}-byte" in msg and "limit" in msg, msg
    assert opened == []
    # exactly at the limit: read and parsed (only comments: an empty document)
    monkeypatch.undo()
    edge = tmp_path / "edge.yaml"
    edge.write_text("#" * (limit - 1) + "\n")
    assert edge.stat().st_size == limit
    msg = _error(edge)
    assert "bytes, above" not in msg and "empty document" in msg, msg


@pytest.mark.parametrize("kind", ["folder", "/dev/null", "/dev/zero", "named pipe"])
def test_not_a_regular_file_is_never_opened(tmp_path, monkeypatch, kind):
    import os

    if kind == "folder":
        target, what = tmp_path / "profiles.yaml", "a folder"
        target.mkdir()
    elif kind == "named pipe":
        target, what = tmp_path / "pipe.yaml", "a named pipe"
        os.mkfifo(target)
    else:
        target, what = pathlib.Path(kind), "a device"
    opened = _spy_open(monkeypatch)
    with pytest.raises(HardwareProfileError) as info:
        load_hardware(target)
    msg = str(info.value)
    assert msg.endswith(f"not a regular file ({what}); give the path to a profile YAML file"), msg
    assert target.name in msg and "no such file" not in msg
    assert opened == []
    # a link to a device is the device
    link = tmp_path / "link.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(HardwareProfileError, match=r"not a regular file \(a device\)"):
        load_hardware(link)
    assert opened == []


def test_provenance_names_the_file_and_its_hash(tmp_path, monkeypatch):
    import hashlib

    p = _write(tmp_path, _own_doc("mine"), "mine.yaml")
    monkeypatch.chdir(tmp_path)
    hw = load_hardware("mine.yaml")                          # relative: recorded absolute
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    assert hw.source_path == str(p.resolve()) and hw.sha256 == digest and not hw.shipped
    assert hw.provenance() == {"name": "mine", "shipped": False, "file": str(p.resolve()),
                               "sha256": digest}
    shipped = load_hardware("gpu-a100")
    assert shipped.shipped and shipped.source_path is None
    assert shipped.sha256 == hashlib.sha256((PACKAGE_DIR / "gpu-a100.yaml").read_bytes()).hexdigest()
    assert shipped.provenance()["file"] == "hardware_profiles/gpu-a100.yaml"
    # a base chain: the nearest base first, each with its file and hash
    mid = _write(tmp_path, {"name": "mid", "base": "gpu-a100"}, "mid.yaml")
    top = _write(tmp_path, {"name": "top", "base": "mid.yaml"}, "top.yaml")
    prov = load_hardware(top).provenance()
    assert prov["file"] == str(top.resolve())
    assert [(b["ref"], b["name"], b["shipped"], b["file"], b["sha256"]) for b in prov["base"]] == [
        ("mid.yaml", "mid", False, str(mid.resolve()), hashlib.sha256(mid.read_bytes()).hexdigest()),
        ("gpu-a100", "gpu-a100", True, "hardware_profiles/gpu-a100.yaml", shipped.sha256)]


def test_base_chain_depth_is_capped_and_said_once(tmp_path):
    from snnsim.energy import profiles

    depth = profiles.MAX_BASE_DEPTH + 4
    for i in range(depth):
        _write(tmp_path, {"name": f"p{i}", "base": f"p{i + 1}.yaml"}, f"p{i}.yaml")
    _write(tmp_path, {"name": f"p{depth}", "base": "gpu-a100"}, f"p{depth}.yaml")
    msg = _error(tmp_path / "p0.yaml")
    assert msg.startswith(str(tmp_path / "p0.yaml")) or msg.startswith("p0.yaml"), msg
    assert f"more than {profiles.MAX_BASE_DEPTH} profiles deep" in msg and "cannot load" not in msg, msg
    # within the cap: loads, every file in the chain cited
    hw = load_hardware(tmp_path / f"p{depth + 1 - profiles.MAX_BASE_DEPTH}.yaml")
    assert len(hw.provenance()["base"]) == profiles.MAX_BASE_DEPTH
    with pytest.raises(HardwareProfileError, match="profiles deep"):
        load_hardware(tmp_path / f"p{depth - profiles.MAX_BASE_DEPTH}.yaml")


def test_base_loop_is_said_once(tmp_path):
    _write(tmp_path, {"name": "a", "base": "b.yaml"}, "a.yaml")
    _write(tmp_path, {"name": "b", "base": "a.yaml"}, "b.yaml")
    msg = _error(tmp_path / "a.yaml")
    assert "loop" in msg and "cannot load" not in msg, msg


def test_datasheet_figures_are_specified_not_measured():
    """GPU and Jetson profiles cite data sheets: rated peaks, bandwidths, TDPs and power-mode
    caps are what the part is sold as, never 'measured' (a measured profile comes from
    `snnsim measure`)."""
    for name in ("gpu-a100", "gpu-h100", "jetson-agx-orin", "jetson-agx-xavier", "jetson-orin-nano"):
        table = load_hardware(name).constants_table()
        assert "measured" not in set(table["status"]), name
        assert "specified" in set(table["status"]), name


def test_orin_rates_are_the_gpu_alone():
    """The 275 sparse INT8 TOPS headline adds the two DLAs, which PyTorch never uses: the
    roofline runs on the GPU's 170 (85 dense); the DLAs are named apart."""
    hw = load_hardware("jetson-agx-orin")
    assert hw.si("peak_int8_sparse") == pytest.approx(170e12)
    assert hw.si("peak_int8") == pytest.approx(85e12)
    assert hw.si("peak_int8_sparse") + hw.si("dla_int8_sparse") == pytest.approx(275e12)
    assert "fp32" in hw.precisions()


def test_every_shipped_profile_states_its_number_format_and_blank_is_refused():
    from snnsim.energy.schema import HardwareProfileError, validate_profile

    for path in sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("hardware_profiles").glob("*.yaml")):
        hw = load_hardware(str(path))
        assert hw.number_format != "not stated in the profile", path.name
    data = yaml.safe_load(pathlib.Path(__file__).resolve().parents[1].joinpath(
        "hardware_profiles", "horowitz-45nm-fp32.yaml").read_text())
    assert load_hardware("horowitz-45nm-fp32").number_format == "fp32"
    data.update(name="blank-format", arithmetic="   ")
    with pytest.raises(HardwareProfileError, match="arithmetic: must say the number format"):
        validate_profile(data)


def test_a_mean_count_may_be_zero_or_fractional(tmp_path):
    """mean_hops is a mean over spike messages: 0 (every message stays on its core) and 1.5 are
    physical; a capacity (neurons_per_core) is a whole number."""
    for hops in (0, 1.5):
        doc = _base_doc()
        doc["name"] = f"hops-{hops}"
        doc["constants"]["mean_hops"] = {"value": hops, "unit": "count", "source": "x", "status": "assumed"}
        doc["constants"]["neurons_per_core"] = {"value": 8192, "unit": "count", "source": "x", "status": "assumed"}
        assert load_hardware(_write(tmp_path, doc, f"hops{hops}.yaml")).si("mean_hops") == hops
