"""Batched, vectorised emulator of lava-nc fixed-point networks: the scheduler and the nodes of
RingBuffer and SpikeDataloader sources, LIF / LIFReset / TernaryLIF populations, Dense, Sparse
and Conv (delay synapses in :mod:`snnsim.loihi.delays`, sigma-delta neurons in
:mod:`snnsim.loihi.sdn`, graded neurons in :mod:`snnsim.loihi.graded`).

A :class:`LoihiNetwork` holds nodes and connections and steps them with lava's LoihiProtocol
timing, bit for bit (arithmetic in :mod:`snnsim.loihi.fixed_point`):

* At step ``t`` (from 1) every Dense/Conv node sends the buffer it computed at step ``t-1``
  (zeros at ``t = 1``), RingBuffers send ``data[..., (t-1) % T]``, LIF populations receive
  the sum of their inputs, update and send their spikes; then each Dense/Conv node computes
  its new buffer from what its inputs sent at step ``t``.
* Nodes that send in the same step as they receive (sources, LIF) run in topological order;
  a cycle among them would deadlock lava and is rejected.

One scheduler (:meth:`LoihiNetwork.run`) steps every node type, as lava steps per-process
models: each node declares a bound on what it sends and builds a :class:`ProcessModel` for the
run (its state, its kernels, its records); the scheduler only plans the run (bounds, numba or
torch, message dtypes), orders the nodes and gathers their inputs. Graded populations
(:mod:`snnsim.loihi.graded`) plug in the same way.

Every tensor carries a leading batch dimension, so ``B`` different inputs (RingBuffer data)
run at once. ``run(num_steps)`` returns, for every LIF population, ``u``, ``v`` and ``s`` of
shape ``(num_steps, *shape)`` — ``(B, num_steps, *shape)`` for a batched run — equal to what
lava's ``Monitor`` records on a ``Loihi2SimCfg(select_tag='fixed_pt')`` run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from . import compiled
from . import fixed_point as fp
from .fixed_point import INT32_BOUND
from .params import population_shape, state_array, whole_number

MAX_STEPS = (1 << 31) - 1   # a run's records hold num_steps rows: past this, a typo, not a run
_FAST_A_IN = 1 << 18   # |a_in| below this keeps |u| <= 2**23 and rules out int32 overflow


# --------------------------------------------------------------------------- nodes
class Node:
    """A process of the network. ``in_shape``/``out_shape`` exclude the batch dimension."""

    buffered = False  # True: sends at step t what it computed at step t-1 (Dense, Conv)
    memo_ok = True    # a buffered node whose buffer is a function of this step's input alone
    kind = "node"
    state_keys: Tuple[str, ...] = ()   # the variables a run can record (a population's u, v, s)

    def __init__(self, name: str, in_shape: Optional[Tuple[int, ...]], out_shape: Tuple[int, ...]):
        self.name = str(name)
        self.in_shape = in_shape
        self.out_shape = out_shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, in={self.in_shape}, out={self.out_shape})"

    # The process-model protocol the scheduler steps (LoihiNetwork.run): a node says how large
    # what it sends can be, and builds its per-run model. A node type without them is refused.
    def out_bound(self, in_bound: int) -> int:
        """Bound on ``|value|`` this node sends when its summed input is bounded by ``in_bound``."""
        raise TypeError(f"the emulator cannot step {self!r}: {type(self).__name__} has no process model")

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        raise TypeError(f"the emulator cannot step {self!r}: {type(self).__name__} has no process model")

    def ready(self, ctx: "RunContext") -> bool:
        """Whether this node's fused (numba) kernel is available and exact for this run."""
        return True

    def cached(self, what: str, tensors: Tuple[torch.Tensor, ...], bound: int, make: Any) -> Any:
        """``make()`` for these ``tensors`` (weights...) and input ``bound``, kept for the next
        run (a weight plan: lava, too, prepares weights once, not per run). Tensors replaced, or
        changed in place by torch operations (their version moves), are prepared again; a
        change through a numpy view of them is not seen (replace the tensor instead)."""
        cache = self.__dict__.setdefault("_plans", {})
        versions = tuple(t._version for t in tensors)
        hit = cache.get((what, bound))
        if hit is None or any(a is not b for a, b in zip(hit[0], tensors)) or hit[1] != versions:
            same = [k for k in cache if k[0] == what]
            if len(same) >= 4:    # (graded inputs: the bound follows the data; keep a few)
                for k in same:
                    del cache[k]
            hit = cache[(what, bound)] = (tuple(tensors), versions, make())
        return hit[2]

    # A buffered node sends at step 1 what lava's buffer holds when the run starts: zeros for a
    # fresh network, what it computed last for one lava has run (``initial_buffer``).
    initial_buffer: Optional[torch.Tensor] = None

    def buffer_at_start(self, batch: int, shape: Optional[Tuple[int, ...]] = None) -> torch.Tensor:
        """``(B, *shape)`` (default: what it sends): zeros, or ``initial_buffer``."""
        shape = self.out_shape if shape is None else shape
        if self.initial_buffer is None:
            return torch.zeros((batch,) + shape, dtype=torch.int64)
        return fp.as_int32_values(self.initial_buffer).reshape(shape).expand((batch,) + shape).clone()

    def sent_first(self, batch: int) -> torch.Tensor:
        return self.buffer_at_start(batch)

    def start_bound(self, bound: int, left: int) -> int:
        """Bound on what it sends when lava left values up to ``left`` in its buffer: a Dense
        or Conv sends that buffer once, then what it computes."""
        return max(bound, left)


class RingBufferSource(Node):
    """lava ``RingBuffer`` (``PySendModelFixed``): sends ``data[..., (t-1) % T]`` at step t.

    ``data`` has shape ``(*shape, T)``; values are stored as int32 (truncated) like lava's, in
    the node's own copy (to change them, assign a new tensor to ``node.data``).
    """

    kind = "ringbuffer"
    takes_inputs = True   # run(inputs=...) may replace its data

    def __init__(self, name: str, data: Any):
        d = fp.as_int32_values(data, f"RingBuffer {name!r} data")
        if d.dim() < 2 or d.shape[-1] < 1:
            raise ValueError(f"RingBuffer {name!r}: data must be (*shape, T) with T >= 1 steps, got {tuple(d.shape)}")
        super().__init__(name, None, tuple(d.shape[:-1]))
        # its own copy, as lava's Var holds one: a run keeps what it derives from the data
        # (extremes, time-major copy) while the tensor is the same, so the caller's array must
        # not change it behind the node's back
        self.data = d.clone()

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        return _SourceModel(self, ctx.source_steps[self.name], ctx.batch, ctx.float_messages)

    def series(self, num_steps: int, first_step: int = 1) -> torch.Tensor:
        """What it sends over a run of ``num_steps`` steps from step ``first_step``, ``(*shape, T)``
        cycled over by the run: its data, turned to the phase lava's buffer is at then."""
        return roll_to_step(self.data, first_step)


class SpikeDataloaderSource(RingBufferSource):
    """lava ``SpikeDataloader`` (``PySpikeModelFixed``): sends a dataset's samples one after
    the other, each for ``interval`` steps. ``dataset[i]`` is ``(data, label)`` with time on
    data's last axis; a sample shorter than ``interval`` is padded with zeros, a longer one cut.
    lava loads sample ``n`` (cycling through the dataset) at the end of step
    ``offset + 1 + n * interval``, so its frame ``k`` is sent at step
    ``offset + 2 + n * interval + k``; the steps before the first sample send zeros. Values go
    out on an int32 channel (truncated toward zero)."""

    kind = "dataloader"
    takes_inputs = False

    def __init__(self, name: str, dataset: Any, interval: Any, offset: Any = 0):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ValueError(f"SpikeDataloader {name!r}: the dataset must support len() and dataset[i] -> "
                             f"(data, label), got {type(dataset).__name__}")
        if len(dataset) < 1:
            raise ValueError(f"SpikeDataloader {name!r}: the dataset is empty")
        item = dataset[0]
        first = np.asarray(item[0]) if isinstance(item, (tuple, list)) and len(item) == 2 else None
        if first is None or first.ndim < 1:
            raise ValueError(f"SpikeDataloader {name!r}: dataset[0] must be (data, label) with time on data's "
                             f"last axis, got {type(item).__name__}")
        Node.__init__(self, name, None, tuple(int(d) for d in first.shape[:-1]))
        self.dataset = dataset
        self.interval = whole_number(interval, f"SpikeDataloader {name!r} interval")
        if self.interval < 1:
            raise ValueError(f"SpikeDataloader {name!r}: interval must be >= 1")
        self.offset = whole_number(offset, f"SpikeDataloader {name!r} offset") % self.interval

    def series(self, num_steps: int, first_step: int = 1) -> torch.Tensor:
        out = torch.zeros(self.out_shape + (max(int(num_steps), 1),), dtype=torch.int64)
        first = self.offset + 2                       # the step sample 0's frame 0 is sent at
        last = first_step + num_steps - 1
        n = max(0, (first_step - first) // self.interval)
        while first + n * self.interval <= last:
            sent = first + n * self.interval          # the step frame 0 of sample n is sent at
            data = np.asarray(self.dataset[n % len(self.dataset)][0])
            if tuple(data.shape[:-1]) != self.out_shape:
                raise ValueError(f"SpikeDataloader {self.name!r}: sample {n % len(self.dataset)} has shape "
                                 f"{data.shape}, the first {self.out_shape + ('T',)}")
            lo, hi = max(sent, first_step), min(sent + min(self.interval, data.shape[-1]), last + 1)
            if hi > lo:
                out[..., lo - first_step:hi - first_step] = fp.as_int32_values(data[..., lo - sent:hi - sent])
            n += 1
        return out


class LIFPopulation(Node):
    """lava ``LIF`` with ``PyLifModelBitAcc`` (fixed point): CUBA leaky integrate-and-fire."""

    kind = "lif"
    state_keys = ("u", "v", "s")
    binary_spikes = True   # sends 0 / 1 (a Dense or Conv fed by it alone may use them as they are)

    def __init__(self, name: str, shape: Any, *, u: Any = 0, v: Any = 0, du: Any = 0, dv: Any = 0,
                 bias_mant: Any = 0, bias_exp: Any = 0, vth: Any = 10):
        shape = population_shape(shape, f"LIF {name!r} shape")
        super().__init__(name, shape, shape)
        self.u0 = state_array(u, shape, f"LIF {name!r} u")
        self.v0 = state_array(v, shape, f"LIF {name!r} v")
        self.du = whole_number(du, f"LIF {name!r} du")
        self.dv = whole_number(dv, f"LIF {name!r} dv")
        self.vth = whole_number(vth, f"LIF {name!r} vth")
        # lava stores bias_mant and bias_exp as int16 arrays
        self.bias_mant = fp.as_int_values(bias_mant, 16).expand(shape).clone()
        self.bias_exp = fp.as_int_values(bias_exp, 16).expand(shape).clone()
        self.bias = fp.effective_bias(self.bias_mant, self.bias_exp).expand(shape).contiguous()
        self.vth_eff = self.vth << fp.VTH_SHIFT  # captured on the first step in lava

    def fast_ok(self, a_in_bound: int) -> bool:
        """Whether the no-wrap fast path is exact for inputs bounded by ``a_in_bound``."""
        return (a_in_bound < _FAST_A_IN
                and 0 <= self.du <= 4095 and 0 <= self.dv <= 4096
                and int(self.u0.abs().max()) <= fp.MAX_UV
                and int(self.v0.abs().max()) < (1 << 24)
                and int(self.bias.abs().max()) < (1 << 28))

    def out_bound(self, in_bound: int) -> int:
        return 1

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        return _LIFModel(self, ctx)

    def ready(self, ctx: "RunContext") -> bool:
        return fp.lif_fused_kernel() is not None


class LIFResetPopulation(LIFPopulation):
    """lava ``LIFReset`` (``PyLifResetModelBitAcc``): a LIF whose u and v are set to 0 before the
    update of every step t with t % reset_interval == reset_offset % reset_interval."""

    kind = "lif-reset"

    def __init__(self, name: str, shape: Any, *, reset_interval: Any = 1, reset_offset: Any = 0, **lif: Any):
        super().__init__(name, shape, **lif)
        self.reset_interval = whole_number(reset_interval, f"LIFReset {name!r} reset_interval")
        offset = whole_number(reset_offset, f"LIFReset {name!r} reset_offset")
        if self.reset_interval < 1 or offset < 0:
            raise ValueError(f"LIFReset {name!r}: reset_interval must be >= 1 and reset_offset >= 0 (as lava), "
                             f"got {self.reset_interval}, {offset}")
        self.reset_offset = offset % self.reset_interval

    def resets_at(self, t: int) -> bool:
        return t % self.reset_interval == self.reset_offset

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        return _LIFResetModel(self, ctx)


class TernaryLIFPopulation(LIFPopulation):
    """lava ``TernaryLIF`` (``PyTernLifModelFixed``): LIF dynamics, and a spike of +1 when v >
    vth_hi << 6, of -1 when v < vth_lo << 6 (v then set to 0). No fused kernel: the torch path."""

    kind = "ternary-lif"
    binary_spikes = False

    def __init__(self, name: str, shape: Any, *, vth_hi: Any = 10, vth_lo: Any = -10, **lif: Any):
        super().__init__(name, shape, **lif)
        shape = self.out_shape
        # lava keeps the thresholds as int32 arrays and left-shifts them in int32
        self.vth_hi_eff = fp.wrap32(fp.as_int32_values(vth_hi).to(torch.int64) << fp.VTH_SHIFT).expand(shape)
        self.vth_lo_eff = fp.wrap32(fp.as_int32_values(vth_lo).to(torch.int64) << fp.VTH_SHIFT).expand(shape)

    def ready(self, ctx: "RunContext") -> bool:
        return False

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        return _TernaryLIFModel(self, ctx)


class DenseLayer(Node):
    """lava ``Dense`` with ``PyDenseModelBitAcc``: ``weights`` is (n_out, n_in)."""

    kind = "dense"
    buffered = True

    def __init__(self, name: str, weights: Any, *, weight_exp: Any = 0, num_weight_bits: Any = 8,
                 sign_mode: Any = None, num_message_bits: Any = 0, quantized: bool = False):
        w = np.asarray(weights)
        if w.dtype.kind not in "biuf":
            raise ValueError(f"Dense {name!r}: weights must be numbers, got {type(weights).__name__} of {w.dtype}")
        w = torch.as_tensor(w)
        if w.dim() != 2:
            raise ValueError(f"Dense {name!r}: weights must be 2-D, got {tuple(w.shape)}")
        super().__init__(name, (int(w.shape[1]),), (int(w.shape[0]),))
        self.weight_exp = whole_number(weight_exp, f"Dense {name!r} weight_exp")
        self.num_weight_bits = whole_number(num_weight_bits, f"Dense {name!r} num_weight_bits")
        self.num_message_bits = whole_number(num_message_bits, f"Dense {name!r} num_message_bits")
        self.sign_mode = sign_mode
        # quantized: lava's model already clipped and truncated them (at its first step; a later
        # Var.set() is used as it is): the values as they stand, in int32
        self.weights = fp.as_int32_values(w) if quantized else fp.quantize_dense_weights(w, sign_mode,
                                                                                        self.num_weight_bits)
        if abs(self.weight_exp) > 31:
            raise ValueError(f"Dense {name!r}: weight_exp={self.weight_exp} is outside -31..31")

    @property
    def graded(self) -> bool:
        return self.num_message_bits > 0

    def acc_bound(self, in_bound: int) -> int:
        """Bound on ``|W @ s|`` for its input bounded by ``in_bound`` (binary: 1); the weights'
        largest row sum is kept while the weights are (a run asks for it every time)."""
        row_max = self.cached("row_abs_max", (self.weights,), 0, lambda: fp.dense_bound(self.weights, 1))
        return row_max * (int(in_bound) if self.graded else 1)

    def out_bound(self, in_bound: int) -> int:
        b = self.acc_bound(in_bound)
        we = self.weight_exp
        return b << we if we > 0 else (b + (1 << -we) - 1) >> -we

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        return _DenseModel(self, ctx)


class SparseLayer(DenseLayer):
    """lava ``Sparse`` (``PySparseModelBitAcc``): the same arithmetic as Dense -- weights clipped and
    truncated alike, int32 products, the same shifts -- on a scipy sparse matrix, which lava's
    sign-mode rule reads with its implicit zeros, as a dense array has them."""

    kind = "sparse"

    def __init__(self, name: str, weights: Any, **dense: Any):
        w, dense = self.as_given(weights, dense)
        super().__init__(name, w, **dense)

    @staticmethod
    def as_given(weights: Any, dense: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        """A sparse (or dense) matrix as an array, and Dense's keywords with the sign mode lava's
        sparse processes decide on the matrix as given (a float or out-of-range weight
        included; they cast to int32 later, where Dense casts first)."""
        w = weights.toarray() if hasattr(weights, "toarray") else np.asarray(weights)
        if dense.get("sign_mode") is None:
            dense = dict(dense, sign_mode=fp.determine_sign_mode(torch.as_tensor(w, dtype=torch.float64)))
        return w, dense


class ConvLayer(Node):
    """lava ``Conv`` with ``PyConvModelFixed``: weight (C_out, KX, KY, C_in/groups), input
    (X, Y, C). ``weight_exp`` and ``num_weight_bits`` are kept but, as in lava, not used."""

    kind = "conv"
    buffered = True

    def __init__(self, name: str, weight: Any, input_shape: Any, *, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: Any = 1, num_message_bits: Any = 0, weight_exp: Any = 0,
                 num_weight_bits: Any = 8):
        w = fp.as_int32_values(weight, f"Conv {name!r} weight")
        if w.dim() != 4:
            raise ValueError(f"Conv {name!r}: weight must be (C_out, KX, KY, C_in), got {tuple(w.shape)}")
        input_shape = population_shape(input_shape, f"Conv {name!r} input_shape")
        if len(input_shape) != 3:
            raise ValueError(f"Conv {name!r}: input_shape must be (X, Y, C), got {input_shape}")
        try:
            self.stride, self.padding, self.dilation = fp._pair(stride), fp._pair(padding), fp._pair(dilation)
        except (TypeError, ValueError):
            raise ValueError(f"Conv {name!r}: stride, padding and dilation must each be an int or a pair of ints, "
                             f"got {stride!r}, {padding!r}, {dilation!r}") from None
        self.groups = whole_number(groups, f"Conv {name!r} groups")
        if min(self.stride + self.dilation + (self.groups,)) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv {name!r}: stride, dilation and groups must be >= 1 and padding >= 0, got "
                             f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}, "
                             f"padding={self.padding}")
        if input_shape[2] % self.groups or w.shape[0] % self.groups or w.shape[3] * self.groups != input_shape[2]:
            raise ValueError(f"Conv {name!r}: channels {input_shape[2]} -> {w.shape[0]} do not fit "
                             f"groups={self.groups} and weight {tuple(w.shape)}")
        out_shape = fp.conv_output_shape(input_shape, w.shape[0], w.shape[1:3], self.stride,
                                         self.padding, self.dilation)
        super().__init__(name, input_shape, out_shape)
        self.weight = w
        self.num_message_bits = whole_number(num_message_bits, f"Conv {name!r} num_message_bits")
        self.weight_exp = weight_exp
        self.num_weight_bits = num_weight_bits

    @property
    def graded(self) -> bool:
        return self.num_message_bits > 0

    def acc_bound(self, in_bound: int) -> int:
        """Bound on the convolution's ``|sum|`` for its input bounded by ``in_bound`` (binary: 1)."""
        kernel_max = self.cached("kernel_abs_max", (self.weight,), 0, lambda: fp.conv_bound(self.weight, 1))
        return kernel_max * (int(in_bound) if self.graded else 1)

    def out_bound(self, in_bound: int) -> int:
        return min(self.acc_bound(in_bound), fp.MAX_UV)  # wrapped to 24 bits

    def process_model(self, ctx: "RunContext") -> "ProcessModel":
        return _ConvModel(self, ctx)


@dataclass
class Connection:
    """``src`` output -> ``dst`` input, through lava virtual-port transforms applied in order:
    ``('reshape', shape)`` or ``('transpose', axes)`` (axes of the un-batched tensor)."""

    src: Node
    dst: Node
    transforms: Tuple[Tuple[str, Tuple[int, ...]], ...] = field(default_factory=tuple)


def _apply_transforms(x: torch.Tensor, transforms: Sequence[Tuple[str, Tuple[int, ...]]]) -> torch.Tensor:
    for op, arg in transforms:
        if op == "reshape":
            x = x.reshape((x.shape[0],) + tuple(arg))
        elif op == "transpose":
            x = x.permute((0,) + tuple(int(a) + 1 for a in arg))
        else:
            raise ValueError(f"unknown port transform {op!r}")
    return x


def _transformed_shape(shape: Tuple[int, ...], transforms) -> Tuple[int, ...]:
    for op, arg in transforms:
        if op == "reshape":
            if int(np.prod(arg)) != int(np.prod(shape)):
                raise ValueError(f"cannot reshape {shape} to {tuple(arg)}")
            shape = tuple(int(a) for a in arg)
        elif op == "transpose":
            shape = tuple(shape[int(a)] for a in arg)
        else:
            raise ValueError(f"unknown port transform {op!r}")
    return shape


# --------------------------------------------------------------------------- sources
_NARROW_INTS = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16), np.dtype(np.int32),
                torch.int8, torch.uint8, torch.int16, torch.int32)


def source_batch(node, raw, batch: Optional[int]) -> Tuple[torch.Tensor, Optional[int]]:
    """A source's data as (b, *shape, T) with b = 1 or B, and the batch size seen so far.
    `raw` is (*shape, T) (shared by every sample) or (B, *shape, T) (one per sample)."""
    raw = raw if torch.is_tensor(raw) else np.asarray(raw)
    if raw.dtype in _NARROW_INTS:   # already what lava's int32 buffer holds: used as it is (no int64 copy)
        d = raw if torch.is_tensor(raw) else torch.from_numpy(np.ascontiguousarray(raw))
    else:
        d = fp.as_int32_values(raw)
    if tuple(d.shape[:-1]) == node.out_shape:
        return d.unsqueeze(0), batch
    if tuple(d.shape[1:-1]) == node.out_shape:
        if batch is not None and batch != d.shape[0]:
            raise ValueError(f"batch sizes differ: {batch} vs {d.shape[0]} ({node.name!r})")
        return d, int(d.shape[0])
    raise ValueError(f"input for {node.name!r} has shape {tuple(d.shape)}, expected "
                     f"(*{node.out_shape}, T) or (B, *{node.out_shape}, T)")


def roll_to_step(data: torch.Tensor, first_step: int) -> torch.Tensor:
    """A RingBuffer's data ``(..., T)`` turned so that its column 0 is what lava sends at step
    ``first_step`` (``data[..., (first_step - 1) % T]``)."""
    shift = (int(first_step) - 1) % int(data.shape[-1]) if data.shape[-1] else 0
    return torch.roll(data, -shift, dims=-1) if shift else data


def source_step(node, steps: torch.Tensor, t: int, batch: int) -> torch.Tensor:
    """What a RingBufferSource sends at step t (1-based): its data cycles over its T steps,
    as lava's RingBuffer does; data shared by every sample is expanded to the batch."""
    x = steps[(t - 1) % steps.shape[0]]
    return x.expand((batch,) + node.out_shape) if x.shape[0] != batch else x


# --------------------------------------------------------------------------- process models
@dataclass
class RunContext:
    """What the scheduler decided for one run, handed to each node's process model. Steps are
    counted from 1 within the run; lava's step is ``first_step - 1`` more (a network taken over
    after lava ran it continues where it stopped)."""

    batch: int
    num_steps: int
    fused: bool                      # numba kernels (else vectorised torch ops)
    float_messages: bool             # every value sent fits float32 exactly (below 2**23)
    bounds: Dict[str, int]           # per node: bound on |value| it sends
    in_bounds: Dict[str, int]        # per node: bound on |sum of its inputs|
    sole_lif_input: Dict[str, bool]  # per node: its only input is a LIF population (0/1 spikes)
    source_steps: Dict[str, torch.Tensor]   # per source: its data time-major, (T, b, *shape)
    record: Tuple[str, ...]          # state variables asked for
    recorded: Tuple[str, ...]        # names of the populations to record
    first_step: int = 1              # lava's step at the run's step 1
    device: torch.device = torch.device("cpu")   # where the torch path computes (records included)


def device_plan(node: Node, what: str, tensors: Tuple[torch.Tensor, ...], bound: int, make: Any,
                device: torch.device) -> Dict[str, Any]:
    """``node.cached(what, ...)``'s plan (a dict of weights and figures) with its tensors on
    ``device``; the moved copy is kept too, per device, while the weights are the same."""
    plan = node.cached(what, tensors, bound, make)
    if device.type == "cpu":
        return plan
    return node.cached(f"{what} on {device}", tensors, bound,
                       lambda: {k: v.to(device) if torch.is_tensor(v) else v for k, v in plan.items()})


class ProcessModel:
    """One node's state and behaviour for one run, as a lava process model: ``step(t, a_in)``
    for a node that sends in the step it receives (sources, neurons), ``compute(x)`` for a
    buffered node (Dense, Conv: what it computes at step t is sent at step t + 1).
    ``records`` maps recorded variables to ``(num_steps, B, *shape)`` tensors."""

    records: Dict[str, torch.Tensor]

    def step(self, t: int, a_in: Optional[torch.Tensor]) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def compute(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def final_state(self) -> Dict[str, torch.Tensor]:
        return {}


def record_tensors(node: Node, ctx: RunContext, keys: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Uninitialised ``(num_steps, B, *shape)`` records of ``keys`` (int8 spikes / payloads,
    int32 state), on the run's device. numpy's allocator asks for huge pages: first writes into
    them fault less."""
    if ctx.device.type != "cpu":
        return {k: torch.empty((ctx.num_steps, ctx.batch) + node.out_shape, device=ctx.device,
                               dtype=torch.int8 if k == "s" else torch.int32) for k in keys}
    return {k: torch.from_numpy(np.empty((ctx.num_steps, ctx.batch) + node.out_shape,
                                         dtype=np.int8 if k == "s" else np.int32)) for k in keys}


class _SourceModel(ProcessModel):
    def __init__(self, node: RingBufferSource, steps: torch.Tensor, batch: int, float_messages: bool = False):
        self.node, self.steps, self.batch, self.records = node, steps, batch, {}
        self.float_messages = float_messages

    def step(self, t, a_in):
        x = source_step(self.node, self.steps, t, self.batch)
        return x.to(torch.float32) if self.float_messages else x


class _LIFModel(ProcessModel):
    """``PyLifModelBitAcc``: the fused numba kernel, or :func:`fixed_point.lif_fixed_step`."""

    def __init__(self, n: LIFPopulation, ctx: RunContext):
        B, shape = ctx.batch, (ctx.batch,) + n.out_shape
        self.n, self.fused = n, ctx.fused
        self.exact32 = not n.fast_ok(ctx.in_bounds[n.name])
        dt = torch.int32 if ctx.fused else torch.int64
        # copies: the run updates them in place and must never touch the node's initial state
        self.u = n.u0.expand(shape).to(ctx.device, dt, memory_format=torch.contiguous_format, copy=True)
        self.v = n.v0.expand(shape).to(ctx.device, dt, memory_format=torch.contiguous_format, copy=True)
        self.bias = n.bias.to(ctx.device)
        wanted = n.name in ctx.recorded and bool(ctx.record)
        # the kernel writes u, v and s rows every step: all three are recorded when any is
        self.records = record_tensors(n, ctx, ("u", "v", "s") if ctx.fused and wanted else
                                      [k for k in ctx.record if k in n.state_keys] if wanted else ())
        if ctx.fused:
            kernels = fp.lif_fused_kernel()
            # float32 0/1 spikes: the convolutions and matrix products take them as they are
            self.s = torch.zeros(shape, dtype=torch.float32)
            size = B * int(np.prod(n.out_shape))
            self.kern = kernels[1] if self.exact32 else kernels[0]
            # flat numpy views, made once: the kernel updates them in place every step
            self.flat = (self.u.view(-1).numpy(), self.v.view(-1).numpy())
            self.s_flat = self.s.view(-1).numpy()
            self.bias_flat = n.bias.to(torch.int64).contiguous().view(-1).numpy()
            self.fu, self.fv = fp.DECAY_UNITY - (n.du + 1), fp.DECAY_UNITY - n.dv
            self.vth = max(min(int(n.vth_eff), 1 << 62), -(1 << 62))
            self.zeros = np.zeros(size, dtype=np.int8)
            self.scratch = (np.empty(size, np.int32), np.empty(size, np.int32), np.empty(size, np.int8))
            self.rows = tuple(self.records[k].view(ctx.num_steps, size).numpy() for k in ("u", "v", "s")) \
                if self.records else None

    def step(self, t, a_in):
        n = self.n
        if self.fused:
            if a_in is None:
                a = self.zeros
            else:
                if a_in.shape[0] != self.s.shape[0]:
                    a_in = a_in.expand(self.s.shape)
                if a_in.dtype == torch.bool:
                    a_in = a_in.view(torch.uint8)
                a = a_in.contiguous().view(-1).numpy()
            rows = (self.rows[0][t - 1], self.rows[1][t - 1], self.rows[2][t - 1]) if self.rows else self.scratch
            self.kern(*self.flat, a, self.bias_flat, self.fu, self.fv, self.vth, self.s_flat, *rows)
            return self.s
        self.u, self.v, s = fp.lif_fixed_step(self.u, self.v, a_in, n.du, n.dv, self.bias, n.vth_eff,
                                              exact_int32=self.exact32)
        for key, val in (("u", self.u), ("v", self.v), ("s", s)):
            rec = self.records.get(key)
            if rec is not None:
                rec[t - 1].copy_(val)
        return s

    def final_state(self):
        return {"u": self.u, "v": self.v}


class _LIFResetModel(_LIFModel):
    """LIFReset: u and v zeroed in place (the fused kernel's views see it) before the step
    (its phase is lava's step, ``first_step - 1`` ahead of the run's)."""

    def __init__(self, n: LIFPopulation, ctx: RunContext):
        super().__init__(n, ctx)
        self.first_step = ctx.first_step

    def step(self, t, a_in):
        if self.n.resets_at(t + self.first_step - 1):
            self.u.zero_()
            self.v.zero_()
        return super().step(t, a_in)


class _TernaryLIFModel(_LIFModel):
    """TernaryLIF: LIF's sub-threshold update (no spike can reach an unreachable threshold),
    then lava's two thresholds and the reset of every neuron that spiked either way."""

    _NEVER = 1 << 40

    def __init__(self, n: "TernaryLIFPopulation", ctx: RunContext):
        super().__init__(n, ctx)
        self.vth_hi, self.vth_lo = n.vth_hi_eff.to(ctx.device), n.vth_lo_eff.to(ctx.device)

    def step(self, t, a_in):
        n = self.n
        u, v, _ = fp.lif_fixed_step(self.u, self.v, a_in, n.du, n.dv, self.bias, self._NEVER,
                                    exact_int32=self.exact32)
        s = (v > self.vth_hi).to(torch.int8) - (v < self.vth_lo).to(torch.int8)
        v = torch.where(s != 0, torch.zeros_like(v), v)
        self.u, self.v = u, v
        for key, val in (("u", u), ("v", v), ("s", s)):
            rec = self.records.get(key)
            if rec is not None:
                rec[t - 1].copy_(val)
        return s


class _DenseModel(ProcessModel):
    """``PyDenseModelBitAcc`` (:func:`fixed_point.dense_apply`)."""

    def __init__(self, n: DenseLayer, ctx: RunContext):
        self.n, self.records = n, {}
        bound = ctx.in_bounds[n.name] if n.graded else 1
        self.plan = device_plan(n, "dense", (n.weights,), bound,
                                lambda: fp.prepare_dense(n.weights, bound, sparse=n.kind == "sparse"), ctx.device)
        self.binary01 = ctx.sole_lif_input[n.name]

    def compute(self, x):
        return fp.dense_apply(x, self.plan, self.n.weight_exp, self.n.graded, binary01=self.binary01)


class _ConvModel(ProcessModel):
    """``PyConvModelFixed`` (:func:`fixed_point.conv_apply`)."""

    def __init__(self, n: ConvLayer, ctx: RunContext):
        self.n, self.records = n, {}
        bound = ctx.in_bounds[n.name] if n.graded else 1
        try:
            self.plan = device_plan(n, "conv", (n.weight,), bound, lambda: fp.prepare_conv(n.weight, bound),
                                    ctx.device)
        except NotImplementedError as e:
            raise NotImplementedError(f"Conv {n.name!r}: {e}") from None
        self.binary01 = ctx.sole_lif_input[n.name]
        # below 2**23 the conv needs neither wrap nor cast: keep the exact float result
        self.as_int64 = self.plan["acc_bound"] >= fp.MAX_UV

    def compute(self, x):
        n = self.n
        return fp.conv_apply(x, self.plan, n.stride, n.padding, n.dilation, n.groups, n.graded,
                             as_int64=self.as_int64, binary01=self.binary01)


# --------------------------------------------------------------------------- the scheduler
class LoihiNetwork:
    """A network of nodes -- :class:`RingBufferSource`, :class:`DenseLayer`, :class:`ConvLayer`,
    :class:`LIFPopulation`, :class:`~snnsim.loihi.graded.GradedPopulation` or any node with a
    process model -- stepped bit-exactly like lava-nc's fixed-point models.

    One scheduler serves every node type: each node builds its per-run process model
    (:meth:`Node.process_model`) and the run loop only orders, gathers and steps them."""

    memo_default = False   # see run(memo=...)

    def __init__(self) -> None:
        # lava's step at a run's first step: 1 for a fresh network; from_lava sets it for a
        # network lava already ran (its RingBuffers, dataloaders and resets keep their phase)
        self.first_step = 1
        self.nodes: Dict[str, Node] = {}
        self.connections: List[Connection] = []
        self.last_state: Dict[str, Dict[str, torch.Tensor]] = {}
        self.last_backend: Optional[str] = None

    # ---- construction
    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise ValueError(f"duplicate node name {node.name!r}")
        self.nodes[node.name] = node
        return node

    def node(self, name: str) -> Node:
        """The node called ``name``, or a ValueError listing the ones there are."""
        if name not in self.nodes:
            raise ValueError(f"no node named {name!r} in the network (it has: {', '.join(self.nodes) or 'none'})")
        return self.nodes[name]

    def _member(self, x: Any) -> Node:
        if isinstance(x, str):
            return self.node(x)
        if isinstance(x, Node) and self.nodes.get(x.name) is x:
            return x
        raise ValueError(f"connect takes nodes added to this network (net.add) or their names, not {x!r:.80}")

    def connect(self, src: Any, dst: Any, transforms: Iterable[Tuple[str, Sequence[int]]] = ()) -> Connection:
        """``src`` -> ``dst``, each a node added to this network or its name."""
        src, dst = (self._member(x) for x in (src, dst))
        if isinstance(dst, RingBufferSource):
            raise ValueError(f"{dst.name!r} is a source and takes no input")
        tr = tuple((op, tuple(int(a) for a in arg)) for op, arg in transforms)
        shape = _transformed_shape(src.out_shape, tr)
        if shape != dst.in_shape:
            raise ValueError(f"shape mismatch: {src.name!r} sends {shape}, {dst.name!r} takes {dst.in_shape}")
        conn = Connection(src, dst, tr)
        self.connections.append(conn)
        return conn

    @property
    def lif_populations(self) -> List[LIFPopulation]:
        return [n for n in self.nodes.values() if isinstance(n, LIFPopulation)]

    def inputs_of(self, node: Node) -> List[Connection]:
        return [c for c in self.connections if c.dst is node]

    # ---- planning
    def _zero_delay_order(self) -> List[Node]:
        zd = [n for n in self.nodes.values() if not n.buffered]
        deps = {n.name: [c.src.name for c in self.inputs_of(n) if not c.src.buffered] for n in zd}
        order: List[Node] = []
        state: Dict[str, int] = {}

        def visit(name: str, path: Tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ValueError("zero-delay cycle (lava would deadlock): " + " -> ".join(path + (name,)))
            state[name] = 1
            for d in deps[name]:
                visit(d, path + (name,))
            state[name] = 2
            order.append(self.nodes[name])

        for n in zd:
            visit(n.name, ())
        return order

    def _bounds(self, source_data: Mapping[str, torch.Tensor],
                own: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, int]:
        """Upper bounds on ``|value|`` each node can send (capped at 2**31). ``own``: the sources
        sending their own data (its extremes are kept on the node while the data is the same)."""
        own = own or {}

        def extremes(d: torch.Tensor) -> int:
            return max(-int(d.min()), int(d.max())) if d.numel() else 0

        bounds: Dict[str, int] = {}
        visiting: set = set()

        def in_bound(node: Node) -> int:
            return min(INT32_BOUND, sum(out_bound(c.src) for c in self.inputs_of(node)))

        def out_bound(node: Node) -> int:
            if node.name in bounds:
                return bounds[node.name]
            if node.name in visiting:   # a loop without a population in it: no useful bound
                return INT32_BOUND
            visiting.add(node.name)
            if isinstance(node, RingBufferSource):
                d = source_data[node.name]
                b = node.cached("extremes", (own[node.name],), 0, lambda: extremes(d)) if node.name in own \
                    else extremes(d)
            else:
                b = node.out_bound(in_bound(node) if self.inputs_of(node) else 0)
            if node.initial_buffer is not None and np.size(node.initial_buffer):   # what lava left in it
                b = node.start_bound(b, int(np.abs(np.asarray(node.initial_buffer, dtype=np.float64)).max()))
            visiting.discard(node.name)
            bounds[node.name] = min(b, INT32_BOUND)
            return bounds[node.name]

        for n in self.nodes.values():
            out_bound(n)
        return bounds

    # ---- running
    def run(self, num_steps: int, inputs: Optional[Mapping[str, Any]] = None,
            record: Sequence[str] = ("u", "v", "s"), as_numpy: bool = True,
            populations: Optional[Sequence[str]] = None, backend: str = "auto",
            memo: Optional[bool] = None, device: Any = "cpu") -> Dict[str, Dict[str, Any]]:
        """Run ``num_steps`` steps from the initial state.

        ``inputs`` maps RingBuffer names to data replacing theirs: ``(*shape, T)`` or, batched,
        ``(B, *shape, T)``. Returns ``{population: {variable: array}}`` for every population
        (LIF: int32 ``u``/``v`` and int8 ``s`` 0/1; graded: ``u`` and the payload ``s``) of shape
        ``(num_steps, *shape)``, or ``(B, num_steps, *shape)`` when any input is batched --
        what lava's Monitors record. ``record`` picks the variables, ``populations`` the
        populations. ``backend``: ``'torch'`` (vectorised torch ops), ``'fused'`` (the same
        arithmetic as one compiled numba pass per population), ``'compiled'`` (the whole run
        -- every step and sample -- in one numba call, for networks of the nodes
        :mod:`snnsim.loihi.compiled` covers) or ``'auto'`` (compiled where it covers the
        network, else fused where numba is installed); all are bit-exact. ``memo`` (scheduler
        backends; a compiled run computes only what changes anyway): a Dense / Conv whose input equals
        the previous step's keeps its buffer instead of recomputing it (its output is a
        function of its input alone; with inputs held for several steps most layers then run
        once per frame); default: the network class's ``memo_default``. ``device``: where the
        torch backend computes, ``'cpu'`` or ``'cuda[:N]'`` (the fused and compiled backends are
        CPU code; ``'auto'`` on CUDA is ``'torch'``); results and ``last_state`` come back on the
        CPU either way.
        """
        given = num_steps
        try:
            num_steps = -1 if isinstance(given, bool) else whole_number(given, "num_steps")
        except ValueError:
            num_steps = -1
        if not 0 <= num_steps <= MAX_STEPS:
            raise ValueError(f"num_steps must be a whole number from 0 to {MAX_STEPS}, got {given!r:.60}")
        if backend not in ("auto", "torch", "fused", "compiled"):
            raise ValueError(f"backend must be 'auto', 'compiled', 'fused' or 'torch', not {backend!r}")
        device = fp.device_of(device)
        if device.type != "cpu":
            if backend in ("fused", "compiled"):
                raise ValueError(f"backend={backend!r} runs on the CPU; device={str(device)!r} takes backend='torch' "
                                 f"(or 'auto')")
            fp.require_device(device)
            backend = "torch"
        given = record
        record = None if isinstance(record, (str, bytes)) or not isinstance(record, Iterable) else tuple(record)
        if record is None or not all(isinstance(k, str) for k in record):
            raise ValueError(f"record must be a sequence of variable names, e.g. ('u', 'v', 's'), or () for none; "
                             f"got {given!r:.60}")
        known = {k for n in self.nodes.values() for k in n.state_keys} | {"u", "v", "s"}
        bad = [k for k in record if k not in known]
        if bad:
            raise ValueError(f"can record {', '.join(sorted(known))}, not {bad[0]!r}")
        if populations is not None:
            if isinstance(populations, (str, bytes)) or not isinstance(populations, Iterable):
                raise ValueError(f"populations must be a sequence of population names, got {populations!r:.60}")
            populations = tuple(populations)
            named = [n.name for n in self.nodes.values() if n.state_keys]
            missing = [p for p in populations if p not in named]
            if missing:
                raise ValueError(f"no population named {missing[0]!r} to record (the network's: "
                                 f"{', '.join(named) or 'none'})")
        if memo is not None and not isinstance(memo, (bool, np.bool_)):
            raise ValueError(f"memo must be True, False or None (the network's default), got {memo!r:.60}")
        memo = self.memo_default if memo is None else bool(memo)
        if inputs is not None and not isinstance(inputs, Mapping):
            raise ValueError(f"inputs must map RingBuffer names to data, got {type(inputs).__name__}")
        inputs = dict(inputs or {})
        sources = [n for n in self.nodes.values() if isinstance(n, RingBufferSource)]
        unknown = set(inputs) - {n.name for n in sources}
        if unknown:
            raise ValueError(f"inputs for unknown RingBuffer(s) {sorted(unknown)} (the network's: "
                             f"{', '.join(n.name for n in sources) or 'none'})")

        # ---- source data, batch size
        batch: Optional[int] = None
        src_data: Dict[str, torch.Tensor] = {}   # (b, *shape, T) with b = 1 or B
        own: Dict[str, torch.Tensor] = {}        # sources sending their own data: that data
        for n in sources:
            if n.name in inputs:
                if not n.takes_inputs:
                    raise ValueError(f"{n.name!r} ({type(n).__name__}) feeds its own data; give inputs to "
                                     f"RingBuffer sources only")
                d, batch = source_batch(n, inputs[n.name], batch)
                if d.shape[-1] < 1:
                    raise ValueError(f"input for {n.name!r} has no time steps")
                d = roll_to_step(d, self.first_step)   # a user's data replaces the buffer's, at its phase
            else:
                series = n.series(num_steps, self.first_step)
                d = series.unsqueeze(0)
                if series is getattr(n, "data", None):   # its own data as it stands (not rolled or loaded):
                    own[n.name] = series                # what is made of it is kept for the next run
            src_data[n.name] = d
        batched = batch is not None
        B = batch if batched else 1

        # ---- the plan: bounds, kernels, message dtypes
        bounds = self._bounds(src_data, own)
        in_conns = {n.name: self.inputs_of(n) for n in self.nodes.values()}
        in_bounds = {name: sum(bounds[c.src.name] for c in conns) for name, conns in in_conns.items()}
        probe = RunContext(batch=B, num_steps=num_steps, fused=True, float_messages=False, bounds=bounds,
                           in_bounds=in_bounds, sole_lif_input={}, source_steps={}, record=record, recorded=())
        why_not = compiled.unsupported(self) if backend in ("auto", "compiled") else backend
        if backend == "compiled" and why_not:
            raise RuntimeError(f"backend='compiled': {why_not}; use backend='fused', 'torch' or 'auto'")
        if backend == "auto" and not why_not:
            why_not = compiled.slower_here(self)
        not_ready = [n for n in self.nodes.values() if not n.ready(probe)]
        fused = backend == "fused" or (backend == "auto" and not not_ready)
        if fused and not_ready:
            raise RuntimeError(f"backend='fused': {not_ready[0]!r} has no fused kernel here (numba missing, or a "
                               f"node the torch path alone steps); use backend='torch' or 'auto'")
        # float32 messages (sources, sums of several inputs) where every value is exact in it
        float_messages = fused and all(b < fp.MAX_UV for b in bounds.values()) and \
            all(b < fp.FLOAT32_EXACT for b in in_bounds.values())
        source_steps = {}
        for name, d in src_data.items():
            # held time-major in the narrowest integer type (a long batched input is converted
            # once per step, not all at once: 4x less memory traffic than float32 up front)
            b = bounds[name]
            dt = torch.int8 if b < 128 else torch.int16 if b < 32768 else torch.int32
            if not why_not:
                dt = torch.int32         # (the compiled run reads int32 messages: one conversion)

            def time_major(d=d, dt=dt) -> torch.Tensor:
                return d.movedim(-1, 0).to(dt, memory_format=torch.contiguous_format)  # (T, b, *shape)
            source_steps[name] = self.nodes[name].cached(f"time-major {dt}", (own[name],), 0, time_major) \
                if name in own else time_major()
        sole_lif = {name: len(conns) == 1 and getattr(conns[0].src, "binary_spikes", False)
                    for name, conns in in_conns.items()}
        recorded = tuple(n.name for n in self.nodes.values()
                         if n.state_keys and (populations is None or n.name in populations))
        source_steps = {name: d.to(device) for name, d in source_steps.items()}
        ctx = RunContext(B, num_steps, fused, float_messages, bounds, in_bounds, sole_lif, source_steps,
                         record, recorded, self.first_step, device)
        if not why_not:
            records, states, bufs = compiled.run_compiled(self, ctx, in_conns,
                                                          {n.name: n.sent_first(B) for n in self.nodes.values()
                                                           if n.buffered})
            self.last_backend = "compiled"
            self.last_state = {**states, **{name: {"buffer": b} for name, b in bufs.items()}}
            return self._recorded(recorded, records, record, batched, as_numpy)
        models = {name: n.process_model(ctx) for name, n in self.nodes.items()}
        order = self._zero_delay_order()
        buffered = [n for n in self.nodes.values() if n.buffered]
        sum_dtype = torch.float32 if float_messages else torch.int64

        def gather(name: str, sent: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
            conns = in_conns[name]
            if not conns:
                return None
            msgs = [_apply_transforms(sent[c.src.name], c.transforms) for c in conns]
            if len(msgs) == 1:
                return msgs[0]
            total = msgs[0].to(sum_dtype)
            for m in msgs[1:]:
                total = total + m.to(sum_dtype)
            if in_bounds[name] >= INT32_BOUND:   # lava adds the inputs in the int32 port
                total = fp.wrap32(total)
            return total

        # what each buffered node sends at step 1: zeros, or the buffer lava left it with
        bufs = {n.name: n.sent_first(B).to(device) for n in buffered}
        last_in: Dict[str, torch.Tensor] = {}
        with torch.no_grad(), fp.no_tf32():
            for t in range(1, num_steps + 1):
                sent: Dict[str, torch.Tensor] = dict(bufs)
                for n in order:
                    sent[n.name] = models[n.name].step(t, gather(n.name, sent))
                for n in buffered:
                    x = gather(n.name, sent)
                    if x is None:
                        if n.initial_buffer is None and n.memo_ok:
                            continue                # no input: the buffer stays zero
                        x = torch.zeros((B,) + n.in_shape, dtype=torch.int64, device=device)   # (it still moves)
                    if memo and n.memo_ok:
                        prev = last_in.get(n.name)
                        if prev is not None and torch.equal(prev, x):
                            continue                # same input as last step: the same buffer
                        last_in[n.name] = x.clone()
                    bufs[n.name] = models[n.name].compute(x)

        self.last_backend = "fused" if fused else "torch"
        self.last_state = {name: {k: v.cpu() for k, v in st.items()}
                           for name, st in ((name, m.final_state()) for name, m in models.items()) if st}
        self.last_state.update({name: {"buffer": b.cpu()} for name, b in bufs.items()})
        return self._recorded(recorded, {name: models[name].records for name in recorded}, record, batched, as_numpy)

    @staticmethod
    def _recorded(recorded, records, record, batched: bool, as_numpy: bool) -> Dict[str, Dict[str, Any]]:
        """``run``'s result from the ``(T, B, *shape)`` records of each population."""
        out: Dict[str, Dict[str, Any]] = {}
        for name in recorded:
            out[name] = {}
            for key, tens in records.get(name, {}).items():
                if key not in record:
                    continue
                tens = (tens.movedim(1, 0) if batched else tens[:, 0]).cpu()   # views: no copy (on the CPU)
                out[name][key] = tens.numpy() if as_numpy else tens
        return out
