"""Hostile sizes through the real CLI (a subprocess, as a user runs it): every size a user
controls is checked against a stated limit before anything is allocated.

Each case of the table is refused the same way: exit code 2, exactly one line on stderr that
names the size and the limit (or the rule), no traceback, no --out folder, and nothing under
the test's folder changed. The sizes table of the hostile-input suite (see test_hostile_inputs.py).
"""
from __future__ import annotations

import pathlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hostile_cli import assert_refused, run_cli, snapshot
from snnsim.tracking.synthetic import write_mot_sequence

def _forged_png(path: pathlib.Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height pixels (the pixel data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def _sot_with_forged_first_frame(tmp: pathlib.Path, width: int, height: int) -> str:
    seq = tmp / "got" / "GOT-10k_Val_000001"
    seq.mkdir(parents=True)
    _forged_png(seq / "00000001.png", width, height)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(seq / "00000002.png")
    (seq / "groundtruth.txt").write_text("10,10,20,20\n12,12,20,20\n")
    return str(seq)


def _mot(tmp: pathlib.Path) -> str:
    return str(write_mot_sequence(tmp / "mot" / "MOT17-00", n_frames=2, size=(64, 96), n_targets=1))


def _mot_claiming(tmp: pathlib.Path, width: int, height: int) -> str:
    seq = pathlib.Path(_mot(tmp))
    ini = seq / "seqinfo.ini"
    text = ini.read_text()
    text = text.replace("imWidth=96", f"imWidth={width}").replace("imHeight=64", f"imHeight={height}")
    ini.write_text(text)
    return str(seq)


# (id, setup(tmp) -> argv without --out, words the one stderr line must hold)
CASES = [
    ("input-size-oversized",
     lambda t: ["track", "smtrack-s", _mot(t), "--input-size", "3200000x3200000", "--quiet"],
     ["--input-size", "3200000x3200000", "larger than the limit 4096x4096", "pass a smaller size"]),
    ("input-size-one-side-over",
     lambda t: ["track", "smtrack-s", _mot(t), "--input-size", "608x4128", "--quiet"],
     ["608x4128", "larger than the limit 4096x4096"]),
    ("input-size-zero",
     lambda t: ["track", "smtrack-s", _mot(t), "--input-size", "0x1088", "--quiet"],
     ["--input-size", "0x1088", "positive multiples of 32"]),
    ("input-size-negative",
     lambda t: ["track", "smtrack-s", _mot(t), "--input-size=-64x1088", "--quiet"],
     ["--input-size", "-64x1088", "positive multiples of 32"]),
    ("input-size-not-multiple-of-32",
     lambda t: ["track", "smtrack-s", _mot(t), "--input-size", "600x1088", "--quiet"],
     ["--input-size", "600x1088", "multiples of 32"]),
    ("seqinfo-claims-1e9-squared",
     lambda t: ["track", "smtrack-s", _mot_claiming(t, 10 ** 9, 10 ** 9), "--quiet"],
     ["seqinfo.ini", "1000000000x1000000000", "larger than the limit", "8192x8192"]),
    ("frame-header-1e5-squared",      # beyond PIL's decompression-bomb error threshold
     lambda t: ["track", "spiketrack-tiny", _sot_with_forged_first_frame(t, 100_000, 100_000), "--quiet"],
     ["00000001.png", "8192x8192"]),
    ("frame-header-in-pil-warning-band",   # 1e8 pixels: PIL would only warn
     lambda t: ["profile", "spiketrack-tiny", "--sequence", _sot_with_forged_first_frame(t, 10_000, 10_000),
                "--frames", "1", "--hardware", "", "--quiet"],
     ["00000001.png", "8192x8192"]),
    ("frame-header-over-our-limit",   # 8.1e7 pixels: below PIL's threshold, over snnsim's
     lambda t: ["track", "spiketrack-tiny", _sot_with_forged_first_frame(t, 9000, 9000), "--quiet"],
     ["00000001.png", "9000x9000", "larger than the limit", "8192x8192"]),
]


@pytest.mark.parametrize("setup, needles", [pytest.param(s, n, id=i) for i, s, n in CASES])
def test_oversized_inputs_are_refused_before_allocation(setup, needles, tmp_path):
    argv = setup(tmp_path) + ["--out", str(tmp_path / "out")]
    before = snapshot(tmp_path)
    assert_refused(run_cli(argv, tmp_path), needles)
    assert not (tmp_path / "out").exists()
    assert snapshot(tmp_path) == before


def test_the_limit_is_stated_in_help_and_matches_the_code(tmp_path):
    from snnsim.tracking.mot import MAX_INPUT_SIDE

    proc = run_cli(["track", "--help"], tmp_path)
    assert proc.returncode == 0
    assert f"at most {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE}" in " ".join(proc.stdout.split())


def test_an_input_size_the_memory_cannot_hold_is_refused_with_one_that_fits():
    """Within the side limit, memory decides: the measured peak at 2048x2048 (4.83 GiB) against
    2,000 MiB available is refused, naming the largest square that fits (1088x1088 by the
    estimate, hand-solved from its quadratic); the same size fits 8 GiB."""
    from snnsim.tracking.mot import check_memory, memory_needed_mib

    with pytest.raises(ValueError, match=r"--input-size 2048x2048 would need about 4\.8 GiB of memory .* more than "
                                         r"the 2\.0 GiB available; pass a smaller size, e\.g\. 1088x1088$"):
        check_memory(2048, 2048, available_mib=2000)
    assert memory_needed_mib(1088, 1088) <= 2000 < memory_needed_mib(1120, 1120)
    check_memory(2048, 2048, available_mib=8192)
    assert abs(memory_needed_mib(1536, 1536) - 3002) < 5          # the measurement the curve went through


def test_an_input_size_past_this_machines_memory_is_refused_through_the_cli(tmp_path):
    """It used to be accepted (under the 4096 side limit) and killed by the kernel at 24 GiB."""
    from snnsim.tracking.mot import available_memory_mib, memory_needed_mib

    available = available_memory_mib()
    if available is None or memory_needed_mib(4096, 4096) <= available:
        pytest.skip("this machine has the memory for 4096x4096 (or does not say how much it has)")
    argv = ["track", "smtrack-s", _mot(tmp_path), "--input-size", "4096x4096", "--quiet", "--out", str(tmp_path / "o")]
    before = snapshot(tmp_path)
    assert_refused(run_cli(argv, tmp_path), ["--input-size: 4096x4096 would need about", "GiB available",
                                             "pass a smaller size"])
    assert snapshot(tmp_path) == before


def test_available_memory_is_the_tighter_of_the_machine_and_the_containers_limit(tmp_path):
    """A 4 GiB container on a large host: MemAvailable says 64 GiB, the cgroup leaves 3 GiB."""
    from snnsim.tracking.mot import available_memory_mib

    (tmp_path / "meminfo").write_text("MemTotal: 134217728 kB\nMemAvailable: 67108864 kB\n")
    cg = tmp_path / "cgroup"
    cg.mkdir()
    assert available_memory_mib(str(tmp_path / "meminfo"), str(cg)) == 64 * 1024          # no cgroup files
    (cg / "memory.max").write_text("max\n")
    (cg / "memory.current").write_text(f"{1 << 30}\n")
    assert available_memory_mib(str(tmp_path / "meminfo"), str(cg)) == 64 * 1024          # v2, no limit
    (cg / "memory.max").write_text(f"{4 << 30}\n")
    assert available_memory_mib(str(tmp_path / "meminfo"), str(cg)) == 3 * 1024           # v2 limit
    (cg / "memory.max").unlink()
    (cg / "memory").mkdir()
    (cg / "memory" / "memory.limit_in_bytes").write_text(f"{2 << 30}\n")
    (cg / "memory" / "memory.usage_in_bytes").write_text(f"{1 << 29}\n")
    assert available_memory_mib(str(tmp_path / "meminfo"), str(cg)) == 1.5 * 1024         # v1 limit
    assert available_memory_mib(str(tmp_path / "none"), str(tmp_path / "none")) is None
