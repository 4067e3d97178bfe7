"""The graded neuron as a custom lava-nc process, and the mapped segment built in lava.

``GradedNeuron`` declares what (ports ``a_in`` / ``s_out``, variables ``u``, ``k``, ``bias``,
``unit``, ``levels``, ``period``, ``decay12``, ``reset_unit``); ``PyGradedNeuronModelFixed``
(tag ``fixed_pt``, LoihiProtocol, CPU) says how, in numpy integer arithmetic written
independently of the torch emulator but with the same rules (:mod:`snnsim.loihi.graded`)::

    j = (t - 1) % period             (period 0: never restart after step 1)
    x = 0 if j == 0 else rtz((u - k * reset_unit) * decay12[j - 1])
    u = clip(x + a_in + bias, -(2**23 - 1), 2**23 - 1)
    k = round_half_even(clip(u, 0, levels * unit) / unit)
    s_out <- k                        (graded payload, int32 port, 24-bit precision)

:func:`build_segment_lava` builds a :class:`~snnsim.loihi.mapper.SegmentSpec` from lava
processes: a ``RingBuffer`` holding the host's integer currents of the entry layer (each
frame held for ``hold`` steps) connected straight into the ``a_in`` of every population the
entry feeds, one graded-input ``Conv`` (num_message_bits = 8, weights = the 8-bit mantissas)
per neurocore layer, and a ``GradedNeuron`` per neuron module. A residual add is expressed
the way lava can: every Conv (and the RingBuffer) whose output belongs to a neuron's sum is
connected to that neuron's ``a_in``, and lava's InPort adds them (so a layer feeding several
later neurons of a residual stream is connected - and, on a chip, stored - once per neuron).

Note: lava's compiler looks for process models in every module next to this one (it executes
each file of ``snnsim/loihi`` once as a stand-alone module and warns where the relative
imports fail); :func:`run_segment_lava` silences those warnings.
"""
from __future__ import annotations

import typing as ty
import warnings

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

__all__ = ["GradedNeuron", "PyGradedNeuronModelFixed", "build_segment_lava", "run_segment_lava",
           "UV_LIMIT_LAVA"]

UV_LIMIT_LAVA = (1 << 23) - 1


class GradedNeuron(AbstractProcess):
    """Integer graded-spike neuron (NI-LIF / I-LIF mapped to Loihi 2), see the module docstring.

    Parameters: ``shape``; ``unit`` (integer value of a membrane of 1.0); ``levels`` (D);
    ``bias`` (per neuron, integer); ``period`` (restart every ``period`` steps, 0 never);
    ``decay12`` (12-bit decays of the steps after a restart); ``reset_unit`` (subtracted per
    level of the previous spike)."""

    def __init__(self, *, shape: ty.Tuple[int, ...], unit: int, levels: int = 4,
                 bias: ty.Union[int, np.ndarray] = 0, period: int = 1, decay12: ty.Sequence[int] = (0,),
                 reset_unit: int = 0, name: ty.Optional[str] = None, **kwargs) -> None:
        decay = np.asarray(list(decay12) or [0], dtype=np.int32).reshape(-1)
        super().__init__(shape=shape, unit=unit, levels=levels, bias=bias, period=period, decay12=decay,
                         reset_unit=reset_unit, name=name, **kwargs)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.k = Var(shape=shape, init=0)
        self.bias = Var(shape=shape, init=np.broadcast_to(np.asarray(bias, dtype=np.int64), shape).astype(np.int32))
        self.unit = Var(shape=(1,), init=int(unit))
        self.levels = Var(shape=(1,), init=int(levels))
        self.period = Var(shape=(1,), init=int(period))
        self.decay12 = Var(shape=decay.shape, init=decay)
        self.reset_unit = Var(shape=(1,), init=int(reset_unit))


@implements(proc=GradedNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGradedNeuronModelFixed(PyLoihiProcessModel):
    """Fixed-point graded neuron (integer, numpy)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    k: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    unit: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    levels: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    period: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    decay12: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    reset_unit: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        a_in = self.a_in.recv().astype(np.int64)
        unit = int(self.unit[0])
        levels = int(self.levels[0])
        period = int(self.period[0])
        t = int(self.time_step)
        if period == 0:
            restart, d12 = t == 1, int(self.decay12[0])
        else:
            j = (t - 1) % period
            restart = j == 0
            d12 = 0 if restart else int(self.decay12[j - 1])
        if restart:
            x = np.zeros(a_in.shape, dtype=np.int64)
        else:
            y = (self.u.astype(np.int64) - self.k.astype(np.int64) * int(self.reset_unit[0])) * d12
            x = np.sign(y) * np.right_shift(np.abs(y), 12)
        u = np.clip(x + a_in + self.bias.astype(np.int64), -UV_LIMIT_LAVA, UV_LIMIT_LAVA)
        c = np.clip(u, 0, levels * unit)
        k = c // unit
        r2 = 2 * (c - k * unit)
        k = k + ((r2 > unit) | ((r2 == unit) & (k % 2 == 1))).astype(np.int64)
        self.u[:] = u.astype(np.int32)
        self.k[:] = k.astype(np.int32)
        self.s_out.send(self.k)


# --------------------------------------------------------------------------- the mapped segment
def build_segment_lava(spec, currents: np.ndarray, hold: int, tamper: ty.Optional[str] = None):
    """lava processes for ``spec`` (a SegmentSpec). ``currents``: the entry layer's integer
    output per frame, (F, X, Y, C) in lava layout; each frame is held ``hold`` steps.
    Returns ``(populations: {name: GradedNeuron}, ring_buffer)``.

    ``tamper`` builds a deliberately wrong network for tests: 'drop-residual' leaves the
    entry's input out of the last population, 'bias+1' adds 1 to every bias of the first
    population."""
    from lava.proc.conv.process import Conv
    from lava.proc.io.source import RingBuffer

    cur = np.asarray(currents, dtype=np.int64)
    if cur.ndim != 4 or tuple(cur.shape[1:]) != tuple(spec.entry_shape):
        raise ValueError(f"currents must be (frames, *{spec.entry_shape}), got {cur.shape}")
    data = np.repeat(np.moveaxis(cur, 0, -1), int(hold), axis=-1).astype(np.int32)   # (X, Y, C, F * hold)
    src = RingBuffer(data=data)
    pops: ty.Dict[str, GradedNeuron] = {}
    names = list(spec.sites)
    for i, (name, s) in enumerate(spec.sites.items()):
        bias = np.asarray(s["bias"], dtype=np.int64)
        if tamper == "bias+1" and i == 0:
            bias = bias + 1
        pops[name] = GradedNeuron(shape=tuple(s["shape"]), unit=s["unit"], levels=s["levels"], bias=bias,
                                  period=s["period"], decay12=s["decay12"], reset_unit=s["reset_unit"],
                                  name=name)
        if s["entry"] and not (tamper == "drop-residual" and name == names[-1]):
            src.s_out.connect(pops[name].a_in)
    for lname, L in spec.layers.items():
        conv = Conv(weight=np.asarray(L["weight"], dtype=np.int32), input_shape=tuple(L["in_shape"]),
                    stride=L["stride"], padding=L["padding"], dilation=L["dilation"], groups=L["groups"],
                    num_message_bits=8, name=f"conv:{lname}")
        pops[L["src"]].s_out.connect(conv.s_in)
        for dst in L["dst"]:
            conv.a_out.connect(pops[dst].a_in)
    return pops, src


def run_segment_lava(spec, currents: np.ndarray, hold: int, record: ty.Sequence[str] = ("u", "s"),
                     tamper: ty.Optional[str] = None) -> ty.Dict[str, ty.Dict[str, np.ndarray]]:
    """Run the segment in lava (Loihi2SimCfg, fixed_pt) for frames x hold steps; Monitors on
    ``u`` and ``s_out`` of every population. Returns {population: {'u', 's'}} of shape
    (steps, X, Y, C)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.monitor.process import Monitor

    steps = int(np.asarray(currents).shape[0]) * int(hold)
    pops, src = build_segment_lava(spec, currents, hold, tamper)
    mons = []
    for name, p in pops.items():
        for key in record:
            target = p.u if key == "u" else p.s_out
            m = Monitor()
            m.probe(target, steps)
            mons.append((name, key, target.name, m))
    runner = next(iter(pops.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        try:
            out: ty.Dict[str, ty.Dict[str, np.ndarray]] = {}
            for name, key, var, m in mons:
                out.setdefault(name, {})[key] = np.asarray(m.get_data()[name][var]).astype(np.int64)
        finally:
            runner.stop()
    return out
