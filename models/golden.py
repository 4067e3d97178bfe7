"""Golden weights and inputs: deterministic tensors keyed by state_dict name.

Re-implements the reference scheme of shared/tools/golden.py (a tensor is a pure function
of its key and shape, seeded by crc32(key)), so `--weights golden` works without the
fixtures; tests check it equals the reference script bit for bit.
"""
from __future__ import annotations

import math
import zlib

import torch

# Gain per model family that the fixtures use (SpikeTrack's NI-LIF layers stay almost
# silent, and its score head dead, below 3.0).
FAMILY_GAIN = {"spiketrack": 3.0, "smtrack": 1.0, "asymtrack": 1.0, "transt": 1.0}


def golden_tensor(key: str, shape, dtype=torch.float32, gain: float = 1.0) -> torch.Tensor:
    shape = tuple(shape)
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    if key.endswith("running_var"):
        t = 0.5 + torch.rand(shape, generator=gen)
    elif key.endswith("running_mean"):
        t = 0.1 * torch.randn(shape, generator=gen)
    elif len(shape) <= 1 and key.endswith("weight"):
        t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
    elif len(shape) <= 1:
        t = 0.1 * torch.randn(shape, generator=gen)
    else:
        fan_in = math.prod(shape[1:]) or 1
        t = gain * torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return t.to(dtype)


def golden_state_dict(model: torch.nn.Module, gain: float = 1.0, prefix: str = "") -> dict[str, torch.Tensor]:
    """Golden tensors for every state_dict entry of `model`; `prefix` is prepended to each
    key before seeding (SpikeTrack's template encoder takes the `encoder.` tensors)."""
    return {k: golden_tensor(prefix + k, v.shape, v.dtype, gain) for k, v in model.state_dict().items()}


def golden_image(seed: int, size, batch: int = 1) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, 3, h, w), generator=gen)
