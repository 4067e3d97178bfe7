"""Fixed-point graded-spike neurons: SpikeTrack's NI-LIF and SMTrack's I-LIF as integer
neurons whose spike carries a level 0..D (D = 4) as a Loihi 2 graded-spike payload.

The neuron model (the same integer rules here, in the torch model-level emulator and in the
custom lava process of :mod:`snnsim.loihi.lava_graded`)::

    unit      integer value of 1.0 of the float membrane (2**s: the neuron holds U * 2**s)
    restart   first step of a model sequence (step j = 0 of each period of P steps)
    x = 0                                   if restart
    x = rtz((u - k * reset_unit) * decay12) otherwise      # rtz(y) = sign(y) * (|y| >> 12)
    u = clip(x + a_in + bias, -(2**23 - 1), 2**23 - 1)     # 24-bit state, saturating
    k = round_half_even(clip(u, 0, D * unit) / unit)       # graded payload 0..D
    send k

This is the float neuron ``U_t = d_t (U_{t-1} - S_{t-1}) + X_t, S_t = round(clamp(U_t, 0, D))
* q`` with U in units of 1/unit, the decay d_t as a 12-bit fraction decay12 / 4096, and the
soft reset S_{t-1} = k q as ``k * reset_unit`` (reset_unit = unit * q: unit / 4 for NI-LIF,
whose spike is k / 4, unit for I-LIF, whose spike is the integer k). ``round`` is half to
even, as torch.round in the float models. A period of 1 makes the neuron stateless (``u =
a_in + bias`` every step): the mapping of a T = 1 model (SpikeTrack's search branch), whose
neurons restart every frame.

:class:`GradedPopulation` is that neuron as a node of the bit-exact lava-timed emulator: it
brings its own process model, which the one scheduler (:meth:`LoihiNetwork.run
<snnsim.loihi.emulator.LoihiNetwork.run>`) steps beside LIF populations with lava's
LoihiProtocol timing (Conv / Dense send at step t what they computed at step t - 1,
populations receive, update and send in the same step); :class:`GradedNetwork` is that
scheduler with buffer reuse on by default.
:class:`FixedGradedNeuronMixin` is the same neuron for the model-level emulator
(:func:`snnsim.loihi.mapper.fixed_point_model`), where each neuron module of the float
model is swapped for it.
"""
from __future__ import annotations

import functools

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from . import fixed_point as fp
from .emulator import ConvLayer, LoihiNetwork, Node, ProcessModel, RingBufferSource, RunContext, record_tensors
from .params import population_shape

__all__ = ["UV_LIMIT", "DECAY_BITS", "decay_to_fixed", "graded_level", "graded_step", "GradedPopulation",
           "GradedNetwork", "FixedGradedNeuronMixin", "neuron_kind"]

UV_LIMIT = (1 << 23) - 1        # 24-bit signed state, saturating at +-(2**23 - 1)
DECAY_BITS = 12                 # decays as 12-bit fractions of 4096, as lava's LIF
_DECAY_ONE = 1 << DECAY_BITS


def decay_to_fixed(decay: float) -> int:
    """A decay factor in [0, 1] as the 12-bit fraction round(decay * 4096) (half to even)."""
    d = float(decay)
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"decay factor must be in [0, 1], got {d}")
    return int(round(d * _DECAY_ONE))


def _rtz_shift(y: torch.Tensor) -> torch.Tensor:
    """sign(y) * (|y| >> 12) on int64 (rounds toward zero, as lava's LIF decay)."""
    return torch.sign(y) * (y.abs() >> DECAY_BITS)


def graded_level(u: torch.Tensor, unit: int, levels: int) -> torch.Tensor:
    """round_half_even(clip(u, 0, levels * unit) / unit) for int64 ``u``: the graded level."""
    unit = int(unit)
    c = u.clamp(0, int(levels) * unit)
    k = torch.div(c, unit, rounding_mode="floor")
    r2 = 2 * (c - k * unit)
    up = (r2 > unit) | ((r2 == unit) & ((k & 1) == 1))
    return k + up.to(k.dtype)


def graded_step(u: torch.Tensor, k: torch.Tensor, a_in: Optional[torch.Tensor], bias: torch.Tensor, *,
                unit: int, levels: int, decay12: int, reset_unit: int, restart: bool
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One step of the graded neuron on int64 tensors; returns the new ``(u, k)``."""
    if restart:
        x = torch.zeros_like(u)
    else:
        x = _rtz_shift((u - k * int(reset_unit)) * int(decay12))
    if a_in is not None:
        x = x + a_in.to(torch.int64)
    x = (x + torch.as_tensor(bias).to(torch.int64)).clamp_(-UV_LIMIT, UV_LIMIT)
    return x, graded_level(x, unit, levels)


GRADED_KINDS = ("NI-LIF", "I-LIF")


def loihi_spec(module: torch.nn.Module, adapters: Optional[Sequence[Any]] = None) -> Optional[Dict[str, Any]]:
    """The Loihi mapping a neuron declares through its adapter (NeuronAdapter.loihi_neuron):
    {'kind': 'NI-LIF' | 'I-LIF', 'decays': per-step leak factors}, or None for a module that
    is no neuron or declares none. The mapper asks this, never the model's classes.
    `adapters`: the model's (counting.adapters.default_adapters(model)), found once."""
    if adapters is None:
        from snnsim.counting.adapters import default_adapters

        adapters = default_adapters(module)
    adapter = next((a for a in adapters if a.matches(module)), None)
    spec = adapter.loihi_neuron(module) if adapter is not None else None
    if spec is None:
        return None
    if spec.get("kind") not in GRADED_KINDS or not spec.get("decays"):
        raise ValueError(f"{type(module).__name__}.loihi_neuron(): kind must be one of {', '.join(GRADED_KINDS)} "
                         f"with per-step 'decays', got {spec!r}")
    return spec


def neuron_kind(module: torch.nn.Module, adapters: Optional[Sequence[Any]] = None) -> Optional[str]:
    """'NI-LIF' or 'I-LIF' for a neuron declaring that Loihi mapping, None for anything else."""
    spec = loihi_spec(module, adapters)
    return spec["kind"] if spec is not None else None


# --------------------------------------------------------------------------- network node
class GradedPopulation(Node):
    """A population of graded neurons (see the module docstring) in a :class:`GradedNetwork`.

    ``bias`` is one integer per neuron (broadcast to ``shape``); ``period`` P >= 1 restarts
    the neuron every P steps (P = 1: stateless), P = 0 never; ``decay12`` holds the 12-bit
    decays of the steps j = 1 .. P - 1 after a restart (one value used at every step when P =
    0); ``reset_unit`` is subtracted once per level of the previous spike."""

    kind = "graded"
    state_keys = ("u", "s")

    def __init__(self, name: str, shape: Any, *, unit: int, levels: int = 4, bias: Any = 0, period: int = 1,
                 decay12: Sequence[int] = (0,), reset_unit: Optional[int] = None, neuron: str = "NI-LIF"):
        shape = population_shape(shape)
        super().__init__(name, shape, shape)
        if int(unit) < 1:
            raise ValueError(f"graded population {name!r}: unit must be a positive integer, got {unit}")
        self.unit = int(unit)
        self.ushift = self.unit.bit_length() - 1 if self.unit & (self.unit - 1) == 0 else -1
        self.levels = int(levels)
        b = torch.as_tensor(np.asarray(bias))
        if b.is_floating_point():
            if not bool((b == torch.round(b)).all()):
                raise ValueError(f"graded population {name!r}: bias must be integers")
        self.bias = b.to(torch.int64).expand(shape).contiguous()
        if int(self.bias.abs().max()) > UV_LIMIT:
            raise ValueError(f"graded population {name!r}: bias beyond the 24-bit state")
        self.period = int(period)
        if self.period < 0:
            raise ValueError(f"graded population {name!r}: period must be >= 0")
        self.decay12 = tuple(int(d) for d in decay12) or (0,)
        if any(not 0 <= d <= _DECAY_ONE for d in self.decay12):
            raise ValueError(f"graded population {name!r}: 12-bit decays must be in 0..4096")
        if self.period > 1 and len(self.decay12) < self.period - 1:
            raise ValueError(f"graded population {name!r}: need {self.period - 1} decays for period {self.period}")
        q = 0.25 if neuron == "NI-LIF" else 1.0
        self.reset_unit = int(reset_unit) if reset_unit is not None else int(round(self.unit * q))
        self.neuron = neuron

    def schedule(self, t: int) -> Tuple[bool, int]:
        """(restart, decay12) at lava time step ``t`` (from 1)."""
        if self.period == 0:
            return t == 1, self.decay12[0]
        j = (t - 1) % self.period
        if j == 0:
            return True, 0
        return False, self.decay12[j - 1]

    def out_bound(self, in_bound: int) -> int:
        return self.levels

    def process_model(self, ctx: RunContext) -> ProcessModel:
        return _GradedModel(self, ctx)

    def ready(self, ctx: RunContext) -> bool:
        return graded_fused_kernel() is not None


# --------------------------------------------------------------------------- fused kernel
def _graded_fused_py(u, k, a, bias, unit, ushift, levels, d12, reset_unit, restart, ur, sr):  # pragma: no cover
    """graded_step as one compiled pass, in place: u int32, k float32 (the payload the next
    layer convolves), a the input (exact integers in any numeric dtype), bias int64 of N,
    ushift = log2(unit) when unit is a power of two (a shift, not a division), else -1;
    the new u, k also go to the record rows ur (int32), sr (int8)."""
    L = 8388607
    N = bias.shape[0]
    B = u.shape[0] // N
    top = levels * unit
    for b in range(B):
        o = b * N
        for j in range(N):
            i = o + j
            if restart:
                x = np.int64(0)
            else:
                y = (np.int64(u[i]) - np.int64(k[i]) * reset_unit) * d12
                x = (y >> 12) if y >= 0 else -((-y) >> 12)
            v = x + np.int64(a[i]) + bias[j]
            v = min(max(v, -L), L)
            c = min(max(v, 0), top)
            q = (c >> ushift) if ushift >= 0 else c // unit
            r2 = 2 * (c - q * unit)
            if r2 > unit or (r2 == unit and (q & 1) == 1):
                q += 1
            u[i] = v
            k[i] = q
            ur[i] = v
            sr[i] = q


def _graded_stateless_py(u, k, a, bias, inv_unit, top, ur, sr):  # pragma: no cover - numba
    """The restart step (u = clip(a_in + bias), k = level(u)) in float32 on (B, N) arrays, for a
    power-of-two unit: every value is an integer below 2**24 (exact), c * inv_unit is exact and
    rint rounds half to even, so this equals :func:`graded_step` with ``restart=True``. (2-D
    indexing lets LLVM vectorise the inner loop.)"""
    L = np.float32(8388607.0)
    z = np.float32(0.0)
    B, N = a.shape
    for b in range(B):
        ab = a[b]
        ub = u[b]
        kb = k[b]
        urb = ur[b]
        srb = sr[b]
        for j in range(N):
            v = min(max(ab[j] + bias[j], -L), L)
            q = np.rint(min(max(v, z), top) * inv_unit)
            ub[j] = np.int32(v)
            kb[j] = q
            urb[j] = np.int32(v)
            srb[j] = np.int8(np.int32(q))


@functools.cache
def graded_fused_kernel() -> Any:
    """The numba-compiled ``(general, stateless)`` kernels, or None where numba is missing."""
    general = fp.numba_compile(_graded_fused_py)
    # fastmath: lets min / max vectorise (no NaN here; rint keeps rounding half to even)
    stateless = fp.numba_compile(_graded_stateless_py, fastmath=True)
    return None if general is None else general + stateless


# --------------------------------------------------------------------------- process model
class _GradedModel(ProcessModel):
    """The graded neuron's per-run state and step: the fused numba kernels (u int32, the payload
    k float32, which the next layer convolves as it is) or :func:`graded_step` on int64."""

    def __init__(self, n: GradedPopulation, ctx: RunContext):
        self.n, self.fused, self.B = n, ctx.fused, ctx.batch
        shape = (ctx.batch,) + n.out_shape
        self.records = record_tensors(n, ctx, [k for k in ctx.record if k in n.state_keys]
                                      if n.name in ctx.recorded else ())
        if not ctx.fused:
            self.u = torch.zeros(shape, dtype=torch.int64, device=ctx.device)
            self.k = torch.zeros(shape, dtype=torch.int64, device=ctx.device)
            self.bias = n.bias.to(ctx.device)
            return
        self.kern = graded_fused_kernel()
        self.u = torch.zeros(shape, dtype=torch.int32)
        self.k = torch.zeros(shape, dtype=torch.float32)
        size = ctx.batch * int(np.prod(n.out_shape))
        self.scratch = (np.empty(size, dtype=np.int32), np.empty(size, dtype=np.int8))
        self.zeros = torch.zeros(shape, dtype=torch.float32)
        # the restart step in float32 is exact while |a_in| + |bias| stays below 2**24
        self.stateless_ok = (n.ushift >= 0 and
                             ctx.in_bounds[n.name] + int(n.bias.abs().max()) < fp.FLOAT32_EXACT)
        self.bias_f = n.bias.view(-1).numpy().astype(np.float32)
        self.bias_i = n.bias.view(-1).numpy()

    def step(self, t, a_in):
        n, B = self.n, self.B
        if a_in is not None and a_in.shape[0] != B:
            a_in = a_in.expand((B,) + n.out_shape)
        restart, d12 = n.schedule(t)
        r = self.records
        if self.fused:
            a = (a_in if a_in is not None else self.zeros).contiguous()
            urow = r["u"][t - 1].view(-1).numpy() if "u" in r else self.scratch[0]
            srow = r["s"][t - 1].view(-1).numpy() if "s" in r else self.scratch[1]
            if restart and self.stateless_ok:
                if a.dtype != torch.float32:
                    a = a.to(torch.float32)
                self.kern[1](self.u.view(B, -1).numpy(), self.k.view(B, -1).numpy(), a.view(B, -1).numpy(),
                             self.bias_f, np.float32(1.0 / n.unit), np.float32(n.levels * n.unit),
                             urow.reshape(B, -1), srow.reshape(B, -1))
            else:
                if a.dtype == torch.bool:
                    a = a.view(torch.uint8)
                self.kern[0](self.u.view(-1).numpy(), self.k.view(-1).numpy(), a.view(-1).numpy(), self.bias_i,
                             n.unit, n.ushift, n.levels, d12, n.reset_unit, restart, urow, srow)
            return self.k
        self.u, self.k = graded_step(self.u, self.k, a_in, self.bias, unit=n.unit, levels=n.levels, decay12=d12,
                                     reset_unit=n.reset_unit, restart=restart)
        if "u" in r:
            r["u"][t - 1].copy_(self.u)
        if "s" in r:
            r["s"][t - 1].copy_(self.k)
        return self.k

    def final_state(self):
        return {"u": self.u.to(torch.int64), "k": self.k.to(torch.int64)}


class GradedNetwork(LoihiNetwork):
    """A lava-timed network with :class:`GradedPopulation` nodes (and any other node the
    scheduler steps), bit-exact with the same network built from lava processes
    (:func:`snnsim.loihi.lava_graded.build_lava`). The one scheduler is
    :meth:`LoihiNetwork.run`; here a Conv / Dense keeps its buffer while its input is
    unchanged (``memo``) unless told otherwise, since the mapped segments hold each frame for
    several steps. ``s`` of a graded population is its payload."""

    memo_default = True


# --------------------------------------------------------------------------- model-level neuron
class FixedGradedNeuronMixin:
    """Forward of a graded neuron module swapped into a float model (its class is replaced by
    a subclass with this mixin first, so every reference to the module sees it).

    Attributes set by the mapper: ``loihi_unit`` (2**s), ``loihi_q`` (spike quantum: 1/4 or 1),
    ``loihi_levels``, ``loihi_decay12`` (12-bit decay of step t >= 1, indexed t - 1),
    ``loihi_reset_unit``. The input X (float, values on the 1/unit grid where they come from
    neurocore layers) enters as the integer floor(X * unit + 1/2): exact for neurocore sums,
    the host's rounding where a host operation contributes. Saturations of the 24-bit state
    are counted in ``loihi_saturated``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # noqa: D401 - torch API
        unit = int(self.loihi_unit)
        levels = int(self.loihi_levels)
        td = int(self.time_dim)
        q = float(self.loihi_q)
        if x.shape[td] == 1 and unit & (unit - 1) == 0:
            # one step (T = 1): restart only. In x's float dtype: floor(x unit + 1/2) is exact for
            # the integers below 2**23 that matter (larger ones saturate), the clamps are exact and
            # rint(c / unit) with a power-of-two unit rounds half to even like graded_level.
            xi = torch.floor(x * unit + 0.5)
            self.loihi_saturated = getattr(self, "loihi_saturated", 0) + int((xi.abs() > UV_LIMIT).sum())
            u = xi.clamp_(-UV_LIMIT, UV_LIMIT)
            k = torch.round(u.clamp_(0, levels * unit).mul_(1.0 / unit))
            return k.mul_(q)
        xs = x.unbind(td)
        out = []
        u = k = None
        for t, xt in enumerate(xs):
            xf = torch.floor(xt * unit + 0.5)
            sat = int((xf.abs() > UV_LIMIT).sum())
            xi = xf.clamp_(-(1 << 40), 1 << 40).to(torch.int64)
            z = xi.new_zeros(())
            if t == 0:
                u, k = graded_step(torch.zeros_like(xi), torch.zeros_like(xi), xi, z, unit=unit, levels=levels,
                                   decay12=0, reset_unit=0, restart=True)
            else:
                d12 = self.loihi_decay12[min(t - 1, len(self.loihi_decay12) - 1)]
                u, k = graded_step(u, k, xi, z, unit=unit, levels=levels, decay12=d12,
                                   reset_unit=int(self.loihi_reset_unit), restart=False)
            self.loihi_saturated = getattr(self, "loihi_saturated", 0) + sat
            out.append(k.to(x.dtype) * q)
        return torch.stack(out, td)


# --------------------------------------------------------------------------- the mapped segment
def build_segment_network(spec, currents: Any, hold: int, tamper: Optional[str] = None) -> GradedNetwork:
    """The emulator network of a :class:`~snnsim.loihi.mapper.SegmentSpec`, wired exactly as
    :func:`snnsim.loihi.lava_graded.build_segment_lava` wires the lava processes: a RingBuffer
    of the entry currents ((F, X, Y, C), each frame held ``hold`` steps) into every population
    the entry feeds, a graded-input Conv per layer into each population it adds into.
    ``currents`` may carry a leading batch axis (B, F, X, Y, C) for batched runs of the
    returned network (pass them as ``run(..., inputs=segment_inputs(...))``)."""
    cur = torch.as_tensor(np.asarray(currents)).to(torch.int64)
    if cur.dim() == 5:
        cur = cur[0]
    if cur.dim() != 4 or tuple(cur.shape[1:]) != tuple(spec.entry_shape):
        raise ValueError(f"currents must be (frames, *{spec.entry_shape}), got {tuple(cur.shape)}")
    net = GradedNetwork()
    src = net.add(RingBufferSource("entry", segment_ringbuffer(cur, hold)))
    names = list(spec.sites)
    for i, (name, s) in enumerate(spec.sites.items()):
        bias = torch.as_tensor(np.asarray(s["bias"])).to(torch.int64)
        if tamper == "bias+1" and i == 0:
            bias = bias + 1
        net.add(GradedPopulation(name, s["shape"], unit=s["unit"], levels=s["levels"], bias=bias,
                                 period=s["period"], decay12=s["decay12"], reset_unit=s["reset_unit"],
                                 neuron=s["neuron"]))
        if s["entry"] and not (tamper == "drop-residual" and name == names[-1]):
            net.connect(src, name)
    for lname, L in spec.layers.items():
        conv = net.add(ConvLayer(f"conv:{lname}", np.asarray(L["weight"]), L["in_shape"], stride=L["stride"],
                                 padding=L["padding"], dilation=L["dilation"], groups=L["groups"],
                                 num_message_bits=8))
        net.connect(L["src"], conv)
        for dst in L["dst"]:
            net.connect(conv, dst)
    return net


def segment_ringbuffer(currents: torch.Tensor, hold: int) -> torch.Tensor:
    """(F, X, Y, C) [or (B, F, X, Y, C)] currents -> RingBuffer data (..., X, Y, C, F * hold)."""
    cur = torch.as_tensor(np.asarray(currents)).to(torch.int64)
    return cur.movedim(-4, -1).repeat_interleave(int(hold), dim=-1).contiguous()
