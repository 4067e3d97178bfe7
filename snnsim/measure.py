"""Measure a model's energy per frame on a real NVIDIA GPU with NVML and write a measured
hardware profile (hardware_profiles/measured/README.md describes the format).

NVML's total-energy counter (Volta and later) is read around N tracking frames. The idle
power, sampled for a few seconds before the run, is reported beside it and NOT subtracted
from the profile's joules_per_frame (the whole board's energy is what a deployment pays);
the above-idle figure is recorded in the measurement's method text. Nothing here is
modelled: without a GPU the command says so and stops.
"""
from __future__ import annotations

import datetime as _dt
import pathlib
import time

import yaml

# Which shipped spec-sheet profile a GPU is an instance of, by NVML name.
BASES = {"H100": "gpu-h100", "A100": "gpu-a100", "Orin": "jetson-agx-orin", "Xavier": "jetson-agx-xavier"}


class MeasurementUnavailable(RuntimeError):
    """No GPU / no NVML energy counter here: nothing can be measured."""


def _nvml():
    try:
        import pynvml
    except ImportError as exc:  # nvidia-ml-py is in requirements.lock; a user install may lack it
        raise MeasurementUnavailable("nvidia-ml-py is not installed; pip install nvidia-ml-py") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise MeasurementUnavailable(f"NVML is not available ({exc}); measure needs an NVIDIA GPU and driver") from exc
    return pynvml


def base_profile(gpu_name: str) -> str | None:
    return next((base for key, base in BASES.items() if key.lower() in gpu_name.lower()), None)


def measure(model_name: str, device: str = "cuda", frames: int = 100, weights: str | None = "golden",
            idle_seconds: float = 2.0) -> dict:
    """Energy per tracking frame of a registered model on `device` (template cached)."""
    import torch

    if frames < 1:
        raise ValueError(f"--frames must be at least 1 (got {frames})")
    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise MeasurementUnavailable(
            f"no CUDA GPU visible for device '{device}' (torch.cuda.is_available() is "
            f"{torch.cuda.is_available()}); run snnsim measure on a machine with an NVIDIA GPU")
    nvml = _nvml()
    from snnsim.models import build_model

    torch_device = torch.device(device)
    index = torch_device.index or 0
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    model = build_model(model_name, weights).to(torch_device)
    inputs = model.example_inputs("golden" if weights == "golden" else "random")
    template = inputs["template"].to(torch_device) if inputs["template"] is not None else None
    search = inputs["search"].to(torch_device)
    with torch.no_grad():
        cache = model.forward_template(template)
        for _ in range(5):  # warm-up: kernels chosen, clocks up
            model.forward_search(search, cache)
        torch.cuda.synchronize(torch_device)
        e0 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        time.sleep(idle_seconds)
        idle_w = (nvml.nvmlDeviceGetTotalEnergyConsumption(handle) - e0) / 1e3 / idle_seconds
        e1 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        start = time.perf_counter()
        for _ in range(frames):
            model.forward_search(search, cache)
        torch.cuda.synchronize(torch_device)
        elapsed = time.perf_counter() - start
        e2 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    joules = (e2 - e1) / 1e3  # NVML counts millijoules
    name = nvml.nvmlDeviceGetName(handle)
    name = name.decode() if isinstance(name, bytes) else name
    driver = nvml.nvmlSystemGetDriverVersion()
    driver = driver.decode() if isinstance(driver, bytes) else driver
    return {
        "gpu": name, "driver": driver, "torch": torch.__version__, "model": model_name,
        "weights": getattr(model, "weights_source", weights), "frames": frames,
        "date": _dt.date.today().isoformat(), "seconds": elapsed,
        "joules_per_frame": joules / frames, "watts": joules / elapsed, "idle_watts": idle_w,
        "joules_per_frame_above_idle": max(joules - idle_w * elapsed, 0.0) / frames,
    }


def write_measured_profile(result: dict, path, base: str | None = None) -> pathlib.Path:
    """A measured profile YAML (schema: hardware_profiles/measured/README.md), written through
    snnsim's output writer: `path` is a file name (never over a file snnsim did not write) or
    an already open snnsim.io.OutputFile (checked and locked by the caller before measuring)."""
    from snnsim.io import OutputFile, open_output_file

    base = base or base_profile(result["gpu"])
    if base is None:
        raise MeasurementUnavailable(f"no shipped profile for GPU '{result['gpu']}'; pass --base NAME (see snnsim hardware)")
    doc = {
        "name": None,   # the file's stem, set below
        "base": base,
        "description": f"{result['gpu']}, NVML energy counter, driver {result['driver']}, "
                       f"torch {result['torch']}, measured {result['date']}.",
        "measurements": {result["model"]: {
            "joules_per_frame": {
                "value": result["joules_per_frame"], "unit": "J", "status": "measured",
                "source": f"snnsim measure {result['model']} --frames {result['frames']} ({result['date']}); "
                          f"mean power {result['watts']:.1f} W, idle {result['idle_watts']:.1f} W",
            },
            "method": (f"NVML nvmlDeviceGetTotalEnergyConsumption difference over {result['frames']} tracking "
                       f"frames (template cached, batch 1, weights: {result['weights']}); idle power not "
                       f"subtracted (above idle: {result['joules_per_frame_above_idle']:.6g} J/frame)"),
            "batch_size": 1,
            "frames": result["frames"],
        }},
    }
    if isinstance(path, OutputFile):   # the caller's open output publishes it
        doc["name"] = path.path.stem
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path.path
    with open_output_file(path, "snnsim measure") as output:
        doc["name"] = output.path.stem
        output.write_text(yaml.safe_dump(doc, sort_keys=False))
    return output.path
