"""lava process parameters as the emulator's nodes take them: one whole number (lava's Vars hold
scalars as shape-(1,) arrays, often float) and a population's shape. Each refusal names the
parameter."""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np
import torch

from . import fixed_point as fp


def whole_number(x: Any, what: str) -> int:
    """``x`` as one int: a single number (bool, integer or integral float) of any shape."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":   # (None, text, objects: an int too large for int64 is one)
        raise ValueError(f"{what} must be a whole number, got {x!r:.60}")
    a = a.reshape(-1)
    if a.size != 1:
        raise ValueError(f"{what} must be a single value, got shape {np.shape(x)}")
    val = a[0].item()
    if isinstance(val, float):
        if not float(val).is_integer():
            raise ValueError(f"{what} must be an integer for the fixed-point model, got {val}")
        val = int(val)
    return int(val)


def population_shape(shape: Any, what: str = "shape") -> Tuple[int, ...]:
    """A population's shape: an int or a sequence of positive whole numbers."""
    try:
        dims = (whole_number(shape, what),) if np.ndim(shape) == 0 else tuple(whole_number(s, what) for s in shape)
    except (TypeError, ValueError):
        dims = ()
    if not dims or min(dims) < 1:
        raise ValueError(f"{what} must be positive whole numbers, got {shape!r}")
    return dims


def state_array(value: Any, shape: Tuple[int, ...], what: str) -> torch.Tensor:
    """A population's state Var (one value, or one per neuron) as lava's int32 values, broadcast
    to ``shape``."""
    t = fp.as_int32_values(value, what)
    try:
        return t.expand(shape).clone()
    except RuntimeError:
        raise ValueError(f"{what}: shape {tuple(t.shape)} does not fit the population's {shape}") from None
