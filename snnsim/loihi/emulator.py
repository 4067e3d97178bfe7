"""Batched, vectorised emulator of lava-nc fixed-point networks (RingBuffer, Dense, Conv, LIF).

A :class:`LoihiNetwork` holds nodes and connections and steps them with lava's LoihiProtocol
timing, bit for bit (arithmetic in :mod:`snnsim.loihi.fixed_point`):

* At step ``t`` (from 1) every Dense/Conv node sends the buffer it computed at step ``t-1``
  (zeros at ``t = 1``), RingBuffers send ``data[..., (t-1) % T]``, LIF populations receive
  the sum of their inputs, update and send their spikes; then each Dense/Conv node computes
  its new buffer from what its inputs sent at step ``t``.
* Nodes that send in the same step as they receive (sources, LIF) run in topological order;
  a cycle among them would deadlock lava and is rejected.

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

from . import fixed_point as fp

_INT32_BOUND = 1 << 31
_FAST_A_IN = 1 << 18   # |a_in| below this keeps |u| <= 2**23 and rules out int32 overflow


def _as_int(x: Any, what: str) -> int:
    a = np.asarray(x).reshape(-1)
    if a.size != 1:
        raise ValueError(f"{what} must be a single value, got shape {np.shape(x)}")
    val = a[0].item()
    if isinstance(val, float):
        if not float(val).is_integer():
            raise ValueError(f"{what} must be an integer for the fixed-point model, got {val}")
        val = int(val)
    return int(val)


def _shape(shape: Any) -> Tuple[int, ...]:
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(s) for s in shape)


# --------------------------------------------------------------------------- nodes
class Node:
    """A process of the network. ``in_shape``/``out_shape`` exclude the batch dimension."""

    buffered = False  # True: sends at step t what it computed at step t-1 (Dense, Conv)
    kind = "node"

    def __init__(self, name: str, in_shape: Optional[Tuple[int, ...]], out_shape: Tuple[int, ...]):
        self.name = str(name)
        self.in_shape = in_shape
        self.out_shape = out_shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, in={self.in_shape}, out={self.out_shape})"


class RingBufferSource(Node):
    """lava ``RingBuffer`` (``PySendModelFixed``): sends ``data[..., (t-1) % T]`` at step t.

    ``data`` has shape ``(*shape, T)``; values are stored as int32 (truncated) like lava's.
    """

    kind = "ringbuffer"

    def __init__(self, name: str, data: Any):
        d = fp.as_int32_values(data)
        if d.dim() < 2:
            raise ValueError(f"RingBuffer {name!r}: data must be (*shape, T), got {tuple(d.shape)}")
        super().__init__(name, None, tuple(d.shape[:-1]))
        self.data = d


class LIFPopulation(Node):
    """lava ``LIF`` with ``PyLifModelBitAcc`` (fixed point): CUBA leaky integrate-and-fire."""

    kind = "lif"

    def __init__(self, name: str, shape: Any, *, u: Any = 0, v: Any = 0, du: Any = 0, dv: Any = 0,
                 bias_mant: Any = 0, bias_exp: Any = 0, vth: Any = 10):
        shape = _shape(shape)
        super().__init__(name, shape, shape)
        self.u0 = fp.as_int32_values(u).expand(shape).clone()
        self.v0 = fp.as_int32_values(v).expand(shape).clone()
        self.du = _as_int(du, f"LIF {name!r} du")
        self.dv = _as_int(dv, f"LIF {name!r} dv")
        self.vth = _as_int(vth, f"LIF {name!r} vth")
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


class DenseLayer(Node):
    """lava ``Dense`` with ``PyDenseModelBitAcc``: ``weights`` is (n_out, n_in)."""

    kind = "dense"
    buffered = True

    def __init__(self, name: str, weights: Any, *, weight_exp: Any = 0, num_weight_bits: Any = 8,
                 sign_mode: Any = None, num_message_bits: Any = 0):
        w = torch.as_tensor(np.asarray(weights))
        if w.dim() != 2:
            raise ValueError(f"Dense {name!r}: weights must be 2-D, got {tuple(w.shape)}")
        super().__init__(name, (int(w.shape[1]),), (int(w.shape[0]),))
        self.weight_exp = _as_int(weight_exp, f"Dense {name!r} weight_exp")
        self.num_weight_bits = _as_int(num_weight_bits, f"Dense {name!r} num_weight_bits")
        self.num_message_bits = _as_int(num_message_bits, f"Dense {name!r} num_message_bits")
        self.sign_mode = sign_mode
        self.weights = fp.quantize_dense_weights(w, sign_mode, self.num_weight_bits)
        if abs(self.weight_exp) > 31:
            raise ValueError(f"Dense {name!r}: weight_exp={self.weight_exp} is outside -31..31")

    @property
    def graded(self) -> bool:
        return self.num_message_bits > 0


class ConvLayer(Node):
    """lava ``Conv`` with ``PyConvModelFixed``: weight (C_out, KX, KY, C_in/groups), input
    (X, Y, C). ``weight_exp`` and ``num_weight_bits`` are kept but, as in lava, not used."""

    kind = "conv"
    buffered = True

    def __init__(self, name: str, weight: Any, input_shape: Any, *, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: Any = 1, num_message_bits: Any = 0, weight_exp: Any = 0,
                 num_weight_bits: Any = 8):
        w = fp.as_int32_values(np.asarray(weight))
        if w.dim() != 4:
            raise ValueError(f"Conv {name!r}: weight must be (C_out, KX, KY, C_in), got {tuple(w.shape)}")
        input_shape = _shape(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"Conv {name!r}: input_shape must be (X, Y, C), got {input_shape}")
        self.stride = fp._pair(stride)
        self.padding = fp._pair(padding)
        self.dilation = fp._pair(dilation)
        self.groups = _as_int(groups, f"Conv {name!r} groups")
        if input_shape[2] % self.groups or w.shape[0] % self.groups or w.shape[3] * self.groups != input_shape[2]:
            raise ValueError(f"Conv {name!r}: channels {input_shape[2]} -> {w.shape[0]} do not fit "
                             f"groups={self.groups} and weight {tuple(w.shape)}")
        out_shape = fp.conv_output_shape(input_shape, w.shape[0], w.shape[1:3], self.stride,
                                         self.padding, self.dilation)
        super().__init__(name, input_shape, out_shape)
        self.weight = w
        self.num_message_bits = _as_int(num_message_bits, f"Conv {name!r} num_message_bits")
        self.weight_exp = weight_exp
        self.num_weight_bits = num_weight_bits

    @property
    def graded(self) -> bool:
        return self.num_message_bits > 0


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


# --------------------------------------------------------------------------- network
def source_batch(node, raw, batch: Optional[int]) -> Tuple[torch.Tensor, Optional[int]]:
    """A source's data as (b, *shape, T) with b = 1 or B, and the batch size seen so far.
    `raw` is (*shape, T) (shared by every sample) or (B, *shape, T) (one per sample)."""
    d = fp.as_int32_values(raw if torch.is_tensor(raw) else np.asarray(raw))
    if tuple(d.shape[:-1]) == node.out_shape:
        return d.unsqueeze(0), batch
    if tuple(d.shape[1:-1]) == node.out_shape:
        if batch is not None and batch != d.shape[0]:
            raise ValueError(f"batch sizes differ: {batch} vs {d.shape[0]} ({node.name!r})")
        return d, int(d.shape[0])
    raise ValueError(f"input for {node.name!r} has shape {tuple(d.shape)}, expected "
                     f"(*{node.out_shape}, T) or (B, *{node.out_shape}, T)")


def source_step(node, steps: torch.Tensor, t: int, batch: int) -> torch.Tensor:
    """What a RingBufferSource sends at step t (1-based): its data cycles over its T steps,
    as lava's RingBuffer does; data shared by every sample is expanded to the batch."""
    x = steps[(t - 1) % steps.shape[0]]
    return x.expand((batch,) + node.out_shape) if x.shape[0] != batch else x


class LoihiNetwork:
    """A network of :class:`RingBufferSource`, :class:`DenseLayer`, :class:`ConvLayer` and
    :class:`LIFPopulation` nodes, stepped bit-exactly like lava-nc's fixed-point models."""

    def __init__(self) -> None:
        self.nodes: Dict[str, Node] = {}
        self.connections: List[Connection] = []
        self.last_state: Dict[str, Dict[str, torch.Tensor]] = {}

    # ---- construction
    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise ValueError(f"duplicate node name {node.name!r}")
        self.nodes[node.name] = node
        return node

    def connect(self, src: Any, dst: Any, transforms: Iterable[Tuple[str, Sequence[int]]] = ()) -> Connection:
        src = self.nodes[src] if isinstance(src, str) else src
        dst = self.nodes[dst] if isinstance(dst, str) else dst
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

    def _bounds(self, source_data: Mapping[str, torch.Tensor]) -> Dict[str, int]:
        """Upper bounds on ``|value|`` each node can send (capped at 2**31)."""
        bounds: Dict[str, int] = {}
        visiting: set = set()

        def in_bound(node: Node) -> int:
            return min(_INT32_BOUND, sum(out_bound(c.src) for c in self.inputs_of(node)))

        def out_bound(node: Node) -> int:
            if node.name in bounds:
                return bounds[node.name]
            if node.name in visiting:   # a loop without a LIF in it: no useful bound
                return _INT32_BOUND
            visiting.add(node.name)
            if isinstance(node, RingBufferSource):
                d = source_data[node.name]
                if d.numel():
                    lo, hi = torch.aminmax(d)
                    b = max(-int(lo), int(hi))
                else:
                    b = 0
            elif isinstance(node, LIFPopulation):
                b = 1
            elif isinstance(node, DenseLayer):
                xb = in_bound(node) if node.graded else 1
                rows = int(node.weights.abs().sum(dim=1).max()) if node.weights.numel() else 0
                b = rows * xb
                we = node.weight_exp
                b = b << we if we > 0 else (b + (1 << -we) - 1) >> -we
                b = min(b, _INT32_BOUND)
            elif isinstance(node, ConvLayer):
                xb = in_bound(node) if node.graded else 1
                b = min(fp.conv_bound(node.weight, xb), _INT32_BOUND, fp.MAX_UV)
            else:  # pragma: no cover
                raise TypeError(node)
            visiting.discard(node.name)
            bounds[node.name] = b
            return b

        for n in self.nodes.values():
            out_bound(n)
        return bounds

    # ---- running
    def run(self, num_steps: int, inputs: Optional[Mapping[str, Any]] = None,
            record: Sequence[str] = ("u", "v", "s"), as_numpy: bool = True,
            populations: Optional[Sequence[str]] = None, backend: str = "auto") -> Dict[str, Dict[str, Any]]:
        """Run ``num_steps`` steps from the initial state.

        ``inputs`` maps RingBuffer names to data replacing theirs: ``(*shape, T)`` or, batched,
        ``(B, *shape, T)``. Returns ``{lif_name: {'u', 'v', 's'}}`` with int32 ``u``/``v`` and
        int8 ``s`` (0/1) of shape ``(num_steps, *shape)``, or ``(B, num_steps, *shape)`` when
        any input is batched. ``record`` picks the variables, ``populations`` the LIFs.
        ``backend``: ``'torch'`` (vectorised torch ops, :func:`fixed_point.lif_fixed_step`),
        ``'fused'`` (the same arithmetic as one compiled pass per population, numba) or
        ``'auto'`` (fused where numba is installed). Both are bit-exact.
        """
        num_steps = int(num_steps)
        if backend not in ("auto", "torch", "fused"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'fused', not {backend!r}")
        fused = backend == "fused" or (backend == "auto" and fp.lif_fused_kernel() is not None)
        if fused and fp.lif_fused_kernel() is None:
            raise RuntimeError("backend='fused' needs numba")
        inputs = dict(inputs or {})
        sources = [n for n in self.nodes.values() if isinstance(n, RingBufferSource)]
        unknown = set(inputs) - {n.name for n in sources}
        if unknown:
            raise KeyError(f"inputs for unknown RingBuffer(s): {sorted(unknown)}")

        # ---- source data, batch size
        batch: Optional[int] = None
        src_data: Dict[str, torch.Tensor] = {}   # (b, *shape, T) with b = 1 or B
        for n in sources:
            if n.name in inputs:
                d, batch = source_batch(n, inputs[n.name], batch)
                if d.shape[-1] < 1:
                    raise ValueError(f"input for {n.name!r} has no time steps")
            else:
                d = n.data.unsqueeze(0)
            src_data[n.name] = d
        batched = batch is not None
        B = batch if batched else 1

        bounds = self._bounds(src_data)
        order = self._zero_delay_order()
        buffered = [n for n in self.nodes.values() if n.buffered]
        in_conns = {n.name: self.inputs_of(n) for n in self.nodes.values()}

        def in_bound(node: Node) -> int:
            return sum(bounds[c.src.name] for c in in_conns[node.name])

        # ---- per-run plans
        # sources: time-major, in the narrowest integer dtype that holds the data
        src_steps = {}
        for name, d in src_data.items():
            b = bounds[name]
            dt = torch.int8 if b < 128 else torch.int16 if b < 32768 else torch.int32
            src_steps[name] = d.movedim(-1, 0).to(dt, memory_format=torch.contiguous_format)  # (T, b, *shape)
        lifs = self.lif_populations
        lif_fast = {n.name: n.fast_ok(in_bound(n)) for n in lifs}
        lif_state: Dict[str, List[torch.Tensor]] = {}
        spikes: Dict[str, torch.Tensor] = {}
        scratch: Dict[str, Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # unrecorded rows
        kplan: Dict[str, Dict[str, Any]] = {}
        for n in lifs:
            dt = torch.int32 if fused else torch.int64
            lif_state[n.name] = [n.u0.expand((B,) + n.out_shape).to(dt, memory_format=torch.contiguous_format),
                                 n.v0.expand((B,) + n.out_shape).to(dt, memory_format=torch.contiguous_format)]
            if fused:
                # float32 0/1 spikes: the convolutions and matrix products take them as they are
                spikes[n.name] = torch.zeros((B,) + n.out_shape, dtype=torch.float32)
                scratch[n.name] = (torch.empty((B,) + n.out_shape, dtype=torch.int32),
                                   torch.empty((B,) + n.out_shape, dtype=torch.int32),
                                   torch.empty((B,) + n.out_shape, dtype=torch.int8))
                kernels = fp.lif_fused_kernel()
                u_, v_ = lif_state[n.name]
                # flat numpy views, made once: the kernel updates them in place every step
                kplan[n.name] = dict(
                    kern=kernels[0] if lif_fast[n.name] else kernels[1],
                    u=u_.view(-1).numpy(), v=v_.view(-1).numpy(), s=spikes[n.name].view(-1).numpy(),
                    bias=n.bias.to(torch.int64).contiguous().view(-1).numpy(),
                    fu=fp.DECAY_UNITY - (n.du + 1), fv=fp.DECAY_UNITY - n.dv,
                    vth=max(min(int(n.vth_eff), 1 << 62), -(1 << 62)),
                    zeros=np.zeros(B * int(np.prod(n.out_shape)), dtype=np.int8),
                    scratch=tuple(x.view(-1).numpy() for x in scratch[n.name]))
        bufs: Dict[str, torch.Tensor] = {n.name: torch.zeros((B,) + n.out_shape, dtype=torch.int64)
                                         for n in buffered}
        plans: Dict[str, Dict[str, Any]] = {}
        for n in buffered:
            conns = in_conns[n.name]
            binary01 = len(conns) == 1 and isinstance(conns[0].src, LIFPopulation)
            xb = in_bound(n) if n.graded else 1
            if isinstance(n, DenseLayer):
                plans[n.name] = fp.prepare_dense(n.weights, xb)
            else:
                try:
                    plans[n.name] = fp.prepare_conv(n.weight, xb)
                except NotImplementedError as e:
                    raise NotImplementedError(f"Conv {n.name!r}: {e}") from None
            plans[n.name]["binary01"] = binary01

        pops = [n for n in lifs if populations is None or n.name in populations]
        rec: Dict[str, Dict[str, torch.Tensor]] = {}
        for n in pops:
            rec[n.name] = {}
            for key in ("u", "v", "s") if fused and record else record:
                if key not in ("u", "v", "s"):
                    raise ValueError(f"can record 'u', 'v', 's', not {key!r}")
                dt = np.int8 if key == "s" else np.int32
                # numpy's allocator asks for huge pages: first writes into the records fault less
                rec[n.name][key] = torch.from_numpy(np.empty((num_steps, B) + n.out_shape, dtype=dt))
            if fused and rec[n.name]:
                kplan[n.name]["rec"] = tuple(rec[n.name][k].view(num_steps, -1).numpy() for k in ("u", "v", "s"))

        def gather(node: Node, sent: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
            conns = in_conns[node.name]
            if not conns:
                return None
            msgs = [_apply_transforms(sent[c.src.name], c.transforms) for c in conns]
            if len(msgs) == 1:
                return msgs[0]
            total = msgs[0].to(torch.int64)
            for m in msgs[1:]:
                total = total + m.to(torch.int64)
            if in_bound(node) >= _INT32_BOUND:   # lava adds the inputs in the int32 port
                total = fp.wrap32(total)
            return total

        # ---- step loop
        with torch.no_grad():
            for t in range(1, num_steps + 1):
                sent: Dict[str, torch.Tensor] = {n.name: bufs[n.name] for n in buffered}
                for n in order:
                    if isinstance(n, RingBufferSource):
                        sent[n.name] = source_step(n, src_steps[n.name], t, B)
                        continue
                    a_in = gather(n, sent)
                    u, v = lif_state[n.name]
                    r = rec.get(n.name)
                    if fused:
                        kp = kplan[n.name]
                        if a_in is None:
                            an = kp["zeros"]
                        else:
                            if a_in.shape[0] != B:
                                a_in = a_in.expand((B,) + n.out_shape)
                            if a_in.dtype == torch.bool:
                                a_in = a_in.view(torch.uint8)
                            an = a_in.contiguous().view(-1).numpy()
                        if r:
                            ur, vr, sr = kp["rec"]
                            rows = (ur[t - 1], vr[t - 1], sr[t - 1])
                        else:
                            rows = kp["scratch"]
                        kp["kern"](kp["u"], kp["v"], an, kp["bias"], kp["fu"], kp["fv"], kp["vth"], kp["s"], *rows)
                        sent[n.name] = spikes[n.name]
                        continue
                    u, v, s = fp.lif_fixed_step(u, v, a_in, n.du, n.dv, n.bias, n.vth_eff,
                                                exact_int32=not lif_fast[n.name])
                    lif_state[n.name] = [u, v]
                    sent[n.name] = s
                    if r is not None:
                        if "u" in r:
                            r["u"][t - 1].copy_(u)
                        if "v" in r:
                            r["v"][t - 1].copy_(v)
                        if "s" in r:
                            r["s"][t - 1].copy_(s)
                for n in buffered:
                    x = gather(n, sent)
                    if x is None:
                        bufs[n.name] = torch.zeros_like(bufs[n.name])
                        continue
                    bufs[n.name] = self._compute_buffered(n, x, plans[n.name])

        self.last_state = {name: {"u": st[0], "v": st[1]} for name, st in lif_state.items()}
        self.last_state.update({name: {"buffer": b} for name, b in bufs.items()})

        out: Dict[str, Dict[str, Any]] = {}
        for name, r in rec.items():
            out[name] = {}
            for key, tens in r.items():
                if key not in record:
                    continue
                tens = tens.movedim(1, 0) if batched else tens[:, 0]   # views: no copy
                out[name][key] = tens.numpy() if as_numpy else tens
        return out

    @staticmethod
    def _compute_buffered(n: Node, x: torch.Tensor, plan: Dict[str, Any]) -> torch.Tensor:
        if isinstance(n, DenseLayer):
            return fp.dense_apply(x, plan, n.weight_exp, n.graded, binary01=plan["binary01"])
        # below 2**23 the conv needs neither wrap nor cast: keep the exact float result
        return fp.conv_apply(x, plan, n.stride, n.padding, n.dilation, n.groups, n.graded,
                             as_int64=plan["acc_bound"] >= fp.MAX_UV, binary01=plan["binary01"])
