"""Shared test fixtures: where ../shared lives, the reference golden.py, fixture files."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest
import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
# tests/hostile_cli.py (the hostile-input tables' runner) is imported by name: with
# --import-mode=importlib pytest leaves sys.path alone, so put tests/ on it here.
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
SHARED = pathlib.Path(os.environ.get("SNNSIM_SHARED", REPO.parent / "shared"))


def _need_shared() -> pathlib.Path:
    if not (SHARED / "golden").is_dir():
        pytest.skip(f"fixtures not found at {SHARED} (set SNNSIM_SHARED to the shared/ folder)")
    return SHARED


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    return _need_shared()


@pytest.fixture(scope="session")
def reference_golden():
    """The reference shared/tools/golden.py, loaded by path."""
    path = _need_shared() / "tools" / "golden.py"
    spec = importlib.util.spec_from_file_location("reference_golden", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_fixture():
    """load_fixture('spiketrack_s256_t1') -> the dict stored in shared/golden/<name>.pt."""
    def _load(name: str) -> dict:
        return torch.load(_need_shared() / "golden" / f"{name}.pt", weights_only=True)
    return _load


@pytest.fixture(scope="session")
def checkpoint_keys():
    """checkpoint_keys('transt_n4') -> {key: shape tuple} from shared/specs/checkpoints."""
    def _keys(name: str) -> dict[str, tuple[int, ...]]:
        out = {}
        for line in (_need_shared() / "specs" / "checkpoints" / f"{name}_keys.txt").read_text().splitlines():
            if "\t" not in line:
                continue  # banner lines such as '=====> Switch To Deploy'
            key, shape = line.split("\t")
            out[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
        return out
    return _keys


@pytest.fixture(autouse=True)
def _two_threads():
    # The fixtures were made with 2 threads; spiking outputs can flip a spike otherwise.
    torch.set_num_threads(2)
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """For the Loihi tests: results are integer-exact at any thread count, and one thread
    avoids OpenMP stalls on a loaded 2-core machine (runs after _two_threads, restores it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



@pytest.fixture()
def measured_gpu_profile(tmp_path):
    """A user's GPU profile (YAML path) holding a device measurement of spiketrack-tiny, 12.5 mJ
    a frame."""
    import yaml

    path = tmp_path / "h100-lab.yaml"
    path.write_text(yaml.safe_dump({
        "name": "h100-lab", "base": "gpu-h100", "description": "a lab's H100 with one measured model",
        "measurements": {"spiketrack-tiny": {
            "joules_per_frame": {"value": 12.5, "unit": "mJ", "status": "measured", "source": "NVML, lab log"},
            "method": "nvml", "power_mode": "tdp", "precision": "fp16"}}}))
    return path
