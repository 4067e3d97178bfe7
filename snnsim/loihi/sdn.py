"""lava's sigma-delta neurons (lava.proc.sdn): ``Sigma``, ``Delta`` and ``SigmaDelta`` with their
fixed_pt models (``PySigmaModelFixed``, ``PyDeltaModelFixed``, ``PySigmaDeltaModelFixed``), bit
for bit. Each sends, in the step it receives, a graded int32 message.

Per step, in int32 arithmetic (every sum wraps, as lava's numpy int32 arrays do):

* Sigma: ``sigma += a_in``; sends ``sigma``.
* Delta: ``x = a_in << (spike_exp + state_exp)``; ``delta = x - act + residue``; without
  ``cum_error`` ``s = delta`` where ``|delta| >= vth``, else 0; with it ``error += delta``,
  ``s = delta`` where ``|error| >= vth`` and ``error`` is cleared where ``s != 0``; then
  ``residue = delta - s``, ``act = x``; sends ``s >> state_exp`` (a floor shift: the low bits
  are lost, not carried).
* SigmaDelta: ``sigma += a_in`` (no input shift); ``y = sigma + bias``; ``act_new = y`` (UNIT)
  or ``max(y, 0)`` (RELU); then Delta's threshold on ``act_new``.

``vth`` and ``bias`` are lava's Var values (the process scales them by
``2**(spike_exp + state_exp)`` and truncates when it is made). ``|x|`` is numpy's int32
absolute value, so ``|-2**31|`` stays negative and never reaches a threshold.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from . import fixed_point as fp
from .emulator import Node, ProcessModel, RunContext
from .fixed_point import INT32_BOUND
from .params import population_shape, state_array, whole_number

__all__ = ["DeltaPopulation", "SigmaDeltaPopulation", "SigmaPopulation"]
ACT_MODES = ("unit", "relu")   # lava.proc.sdn.ActivationMode: UNIT = 0, RELU = 1


def _abs32(x: torch.Tensor) -> torch.Tensor:
    """numpy's int32 abs: -2**31 stays -2**31."""
    return torch.where(x == -INT32_BOUND, x, x.abs())


class SigmaPopulation(Node):
    """lava ``Sigma``: accumulates its input and sends the sum."""

    kind = "sigma"
    binary_spikes = False
    state_keys = ("sigma", "s")
    _vars = ("sigma",)

    def __init__(self, name: str, shape: Any, **state: Any):
        shape = population_shape(shape, f"{type(self).__name__} {name!r} shape")
        super().__init__(name, shape, shape)
        unknown = set(state) - set(self._vars)
        if unknown:
            raise TypeError(f"{type(self).__name__} {name!r}: unknown state {sorted(unknown)}")
        self.init = {k: state_array(state.get(k, 0), shape, f"{type(self).__name__} {name!r} {k}") for k in self._vars}

    def out_bound(self, in_bound: int) -> int:
        return INT32_BOUND   # a running int32 sum: any value

    def process_model(self, ctx: RunContext) -> ProcessModel:
        return _SigmaDeltaModel(self, ctx)

    def constants(self, device: torch.device) -> Dict[str, torch.Tensor]:
        """The population's constant tensors an update reads, on the run's device."""
        return {}

    def update(self, st: Dict[str, torch.Tensor], a_in: torch.Tensor, const: Dict[str, torch.Tensor]) -> torch.Tensor:
        st["sigma"] = fp.wrap32(st["sigma"] + a_in)
        return st["sigma"]


class DeltaPopulation(SigmaPopulation):
    """lava ``Delta``: sends the change of its (scaled) input once it reaches ``vth``."""

    kind = "delta"
    state_keys = ("act", "residue", "error", "s")
    _vars = ("act", "residue", "error")

    def __init__(self, name: str, shape: Any, *, vth: Any, cum_error: bool = False, spike_exp: Any = 0,
                 state_exp: Any = 0, **state: Any):
        super().__init__(name, shape, **state)
        # lava's Var value (the process scaled it), stored in int32 as lava stores it: truncated
        try:
            v = np.asarray(vth, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            v = np.array([np.nan, np.nan])
        if v.size != 1 or not np.isfinite(v[0]):
            raise ValueError(f"{type(self).__name__} {name!r}: vth must be one finite number (lava's Var value), "
                             f"got {vth!r}")
        self.vth = int(fp.as_int32_values(v)[0])
        # (lava's Vars hold them as shape-(1,) arrays: whole_number takes one value of any shape)
        self.cum_error = bool(whole_number(cum_error, f"{type(self).__name__} {name!r} cum_error"))
        self.spike_exp = whole_number(spike_exp, f"{type(self).__name__} {name!r} spike_exp")
        self.state_exp = whole_number(state_exp, f"{type(self).__name__} {name!r} state_exp")
        if not (0 <= self.spike_exp + self.state_exp < 32 and 0 <= self.state_exp < 32):
            raise ValueError(f"{type(self).__name__} {name!r}: spike_exp / state_exp outside 0..31")

    def activation(self, st: Dict[str, torch.Tensor], a_in: torch.Tensor,
                   const: Dict[str, torch.Tensor]) -> torch.Tensor:
        return fp.wrap32(a_in << (self.spike_exp + self.state_exp))

    def update(self, st: Dict[str, torch.Tensor], a_in: torch.Tensor, const: Dict[str, torch.Tensor]) -> torch.Tensor:
        act = self.activation(st, a_in, const)
        delta = fp.wrap32(act - st["act"] + st["residue"])
        if self.cum_error:
            st["error"] = fp.wrap32(st["error"] + delta)
            s = torch.where(_abs32(st["error"]) >= self.vth, delta, torch.zeros_like(delta))
            # lava: error *= 1 - (|s| > 0), int32 abs: an s of -2**31 keeps its error
            st["error"] = torch.where(_abs32(s) > 0, torch.zeros_like(s), st["error"])
        else:
            s = torch.where(_abs32(delta) >= self.vth, delta, torch.zeros_like(delta))
        st["residue"] = fp.wrap32(delta - s)
        st["act"] = act
        return s >> self.state_exp


class SigmaDeltaPopulation(DeltaPopulation):
    """lava ``SigmaDelta``: a Sigma's sum plus ``bias``, through the activation (UNIT or
    RELU), sent as a Delta sends its input."""

    kind = "sigma_delta"
    state_keys = ("sigma", "act", "residue", "error", "s")
    _vars = ("sigma", "act", "residue", "error")

    def __init__(self, name: str, shape: Any, *, vth: Any, bias: Any = 0, act_mode: Any = "relu", **rest: Any):
        super().__init__(name, shape, vth=vth, **rest)
        mode = getattr(act_mode, "name", act_mode)
        if isinstance(mode, (int, np.integer)) and not isinstance(mode, bool):
            mode = ACT_MODES[int(mode)] if 0 <= int(mode) < len(ACT_MODES) else None
        else:
            mode = str(mode).lower()
        if mode not in ACT_MODES:
            raise ValueError(f"SigmaDelta {name!r}: act_mode {act_mode!r} is not one of UNIT, RELU "
                             f"(lava 0.10 defines no other)")
        self.act_mode = mode
        self.bias = state_array(bias, self.out_shape, f"SigmaDelta {name!r} bias")

    def constants(self, device: torch.device) -> Dict[str, torch.Tensor]:
        return {"bias": self.bias.to(device)}

    def activation(self, st: Dict[str, torch.Tensor], a_in: torch.Tensor,
                   const: Dict[str, torch.Tensor]) -> torch.Tensor:
        y = fp.wrap32(SigmaPopulation.update(self, st, a_in, const) + const["bias"])
        return y if self.act_mode == "unit" else y.clamp(min=0)


class _SigmaDeltaModel(ProcessModel):
    """One run's state of a sigma / delta population (int32 values held in int64), stepped by
    the node's own update; records are int32 ``(num_steps, B, *shape)``."""

    def __init__(self, n: SigmaPopulation, ctx: RunContext):
        self.n = n
        shape = (ctx.batch,) + n.out_shape
        self.state = {k: v.expand(shape).to(ctx.device, copy=True) for k, v in n.init.items()}
        self.const = n.constants(ctx.device)
        self.zeros = torch.zeros(shape, dtype=torch.int64, device=ctx.device)
        wanted = [k for k in ctx.record if k in n.state_keys] if n.name in ctx.recorded else []
        self.records = {k: torch.empty((ctx.num_steps,) + shape, dtype=torch.int32, device=ctx.device)
                        for k in wanted}

    def step(self, t, a_in):
        a = self.zeros if a_in is None else fp.wrap32(a_in.to(torch.int64))
        s = self.n.update(self.state, a.expand(self.zeros.shape), self.const)
        for key, rec in self.records.items():
            rec[t - 1].copy_(s if key == "s" else self.state[key])
        return s

    def final_state(self):
        return dict(self.state)
