"""snnsim's own spiking neurons: SpikeTrack's NI-LIF and SMTrack's I-LIF.

Both are multi-step modules on a tensor whose time axis is `time_dim` (0 for [T, B, ...]),
and both declare their `spike_format` so the counter recognises their output by value.
The functional cores are pure functions; the modules are thin wrappers (Norse style).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from snnsim.counting.formats import SpikeFormat


class _RoundST(torch.autograd.Function):
    """round(clamp(u, 0, D)) forward, straight-through gradient on [0, D]."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, levels: int) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.levels = levels
        # torch.round is half-to-even: the reference models rely on it (round(2.5) = 2).
        return torch.round(torch.clamp(u, 0, levels))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad * ((u >= 0) & (u <= ctx.levels)).to(grad.dtype), None


def quantise_levels(u: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer spike level round(clamp(u, 0, levels)), half to even."""
    return _RoundST.apply(u, levels)


def ni_lif(x: torch.Tensor, decay_logits: torch.Tensor, levels: int = 4, time_dim: int = 0) -> torch.Tensor:
    """NI-LIF over time (SpikeTrack's `mem_update`): U_0 = X_0,
    U_t = sigmoid(decay[t-1]) * (U_{t-1} - S_{t-1}) + X_t, S_t = round(clamp(U_t, 0, D)) / D.
    Soft reset by the normalised spike. Step t leaks by decay[t - 1] as the published code
    does (so with T <= 3, decay[2] is never used); the T = 3 golden fixtures confirm it."""
    xs = x.unbind(time_dim)
    out = []
    u = s = None
    for t, xt in enumerate(xs):
        u = xt if t == 0 else torch.sigmoid(decay_logits[t - 1]) * (u - s) + xt
        s = quantise_levels(u, levels) / levels
        out.append(s)
    return torch.stack(out, time_dim)


def i_lif(x: torch.Tensor, levels: int = 4, decay: float = 0.25, time_dim: int = 0) -> torch.Tensor:
    """I-LIF over time (SMTrack): u_0 = x_0, u_t = decay*(u_{t-1} - s_{t-1}) + x_t,
    s_t = round(clip(u_t, 0, D)) — integer spike levels."""
    xs = x.unbind(time_dim)
    out = []
    u = s = None
    for t, xt in enumerate(xs):
        u = xt if t == 0 else decay * (u - s) + xt
        s = quantise_levels(u, levels)
        out.append(s)
    return torch.stack(out, time_dim)


class NILIF(nn.Module):
    """SpikeTrack's `mem_update`: graded NI-LIF with D = 4, spikes in {0, .25, .5, .75, 1}.

    Parameter `decay` (3,) holds decay logits; step t >= 1 uses decay[t - 1]. Initialised at
    logit(0.25). Input [T, B, ...] (time_dim 0) or [..., T] (time_dim -1).
    """

    MAX_T = 3

    def __init__(self, levels: int = 4, time_dim: int = 0):
        super().__init__()
        self.levels = levels
        self.time_dim = time_dim
        self.decay = nn.Parameter(torch.full((self.MAX_T,), math.log(0.25 / 0.75)))

    @property
    def spike_format(self) -> SpikeFormat:
        return SpikeFormat(1.0 / self.levels, self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ni_lif(x, self.decay, self.levels, self.time_dim)

    def loihi_neuron(self) -> dict:
        """Its Loihi mapping (the adapter protocol): NI-LIF, leak sigmoid(decay[t - 1]) at step t."""
        return {"kind": "NI-LIF", "decays": tuple(float(torch.sigmoid(v)) for v in self.decay.detach().double())}

    def extra_repr(self) -> str:
        return f"levels={self.levels}, time_dim={self.time_dim}"


class ILIF(nn.Module):
    """SMTrack's I-LIF: integer spike levels 0..D (D = 4), leak 0.25, soft reset. No parameters."""

    def __init__(self, levels: int = 4, decay: float = 0.25, time_dim: int = 0):
        super().__init__()
        self.levels = levels
        self.decay = decay
        self.time_dim = time_dim

    @property
    def spike_format(self) -> SpikeFormat:
        return SpikeFormat(1.0, self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return i_lif(x, self.levels, self.decay, self.time_dim)

    def loihi_neuron(self) -> dict:
        """Its Loihi mapping (the adapter protocol): I-LIF, the same leak at every step."""
        return {"kind": "I-LIF", "decays": (float(self.decay),) * 3}

    def extra_repr(self) -> str:
        return f"levels={self.levels}, decay={self.decay}, time_dim={self.time_dim}"
