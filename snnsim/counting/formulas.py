"""Count formulas for synaptic operators: small pure functions keyed by aten operator.

Every formula receives the operator's arguments and an `Operand` per synaptic operand
(weight / spike / real, with its spike format), and returns an `OpCount` for the whole
call (all samples of the batch; the profiler divides by the batch size).

The exact counts rest on one identity: for a linear operator f(a, b), the number of
(nonzero a, nonzero b) pairs it multiplies is f(a != 0, b != 0) summed over the output,
and the level-weighted count is f(k_a, b != 0) summed. Dense weights make b != 0 all ones,
so a convolution's count collapses to the spike map weighted by its cover -- how many
(output position, kernel tap) pairs read each input position, padding excluded -- times
the kernels each input channel meets: exact at the borders, one matrix-vector product.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .formats import SpikeFormat

aten = torch.ops.aten


@dataclass
class Operand:
    """One operand of a synaptic operator and what it is."""

    tensor: torch.Tensor
    role: str                        # weight | spike | real
    fmt: SpikeFormat | None = None   # set when role == 'spike'

    @property
    def is_spike(self) -> bool:
        return self.role == "spike"

    @property
    def is_weight(self) -> bool:
        return self.role == "weight"

    def nonzero_mask(self) -> torch.Tensor:
        t = self.tensor
        if self.fmt is not None and self.fmt.binary and self.fmt.q == 1 and t.dtype == torch.float32:
            return t  # a {0, 1} float tensor is its own nonzero mask
        return t.bool().to(torch.float32)  # nonzero -> 1; the cast is faster than t != 0

    def levels(self) -> torch.Tensor:
        return self.fmt.levels_of(self.tensor)


@dataclass
class OpCount:
    dense_macs: float = 0.0
    mac_ops: float = 0.0
    syn_events: float = 0.0
    syn_ops: float = 0.0
    spike_spike: float = 0.0
    weight_numel: int = 0
    in_numel: int = 0
    out_numel: int = 0
    operands: str = ""
    kind: str = ""

    def __iadd__(self, other: "OpCount") -> "OpCount":
        for f in ("dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike", "in_numel", "out_numel"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.weight_numel = max(self.weight_numel, other.weight_numel)
        return self


def _operand_label(a: Operand, b: Operand) -> str:
    return f"{a.role}*{b.role}"


def _pair_counts(a: Operand, b: Operand, dense: float, pairs: Callable, weight_sparsity: bool) -> OpCount:
    """Route a two-operand product to mac_ops / syn_events / spike_spike.

    `pairs(sa, sb)` returns the summed output of the operator applied to the masks sa, sb
    (None means all-ones, which lets formulas take a cheaper exact path)."""
    count = OpCount(dense_macs=dense, operands=_operand_label(a, b))
    sparse_w = weight_sparsity and (a.is_weight or b.is_weight)
    mask_a = a.nonzero_mask() if (a.is_weight and weight_sparsity) else None
    mask_b = b.nonzero_mask() if (b.is_weight and weight_sparsity) else None
    if a.is_spike and b.is_spike:
        count.spike_spike = pairs(a.nonzero_mask(), b.nonzero_mask())
    elif a.is_spike:
        count.syn_events = pairs(a.nonzero_mask(), mask_b)
        count.syn_ops = count.syn_events if a.fmt.binary else pairs(a.levels(), mask_b)
    elif b.is_spike:
        count.syn_events = pairs(mask_a, b.nonzero_mask())
        count.syn_ops = count.syn_events if b.fmt.binary else pairs(mask_a, b.levels())
    else:
        count.mac_ops = pairs(mask_a, mask_b) if sparse_w else dense
    return count


# --------------------------------------------------------------------------- matmuls
def _mm_pairs(a_shape, b_shape):
    """Summed output of (..., M, K) @ (..., K, N) applied to masks (None = ones)."""
    def pairs(sa, sb):
        # sum_{m,n} sum_k sa[m,k] sb[k,n] = sum_k colsum(sa)[k] * rowsum(sb)[k]
        ca = sa.sum(-2, dtype=torch.float64) if sa is not None else \
            torch.full(a_shape[:-2] + (a_shape[-1],), float(a_shape[-2]), dtype=torch.float64)
        rb = sb.sum(-1, dtype=torch.float64) if sb is not None else \
            torch.full(b_shape[:-2] + (b_shape[-2],), float(b_shape[-1]), dtype=torch.float64)
        return float((ca * rb).sum())
    return pairs


def matmul_count(a: Operand, b: Operand, weight_sparsity: bool, kind: str = "matmul") -> OpCount:
    """(..., M, K) @ (..., K, N) with equal (already broadcast) batch dims."""
    a_shape, b_shape = tuple(a.tensor.shape), tuple(b.tensor.shape)
    batch = math.prod(a_shape[:-2]) if len(a_shape) > 2 else 1
    dense = float(batch * a_shape[-2] * a_shape[-1] * b_shape[-1])
    count = _pair_counts(a, b, dense, _mm_pairs(a_shape, b_shape), weight_sparsity)
    count.kind = kind
    _io(count, a, b, out_numel=batch * a_shape[-2] * b_shape[-1])
    return count


def _io(count: OpCount, a: Operand, b: Operand, out_numel: int) -> None:
    """Weight size and activation traffic: the weight is stored, the others are read."""
    for op in (a, b):
        if op.is_weight:
            count.weight_numel = max(count.weight_numel, op.tensor.numel())
        else:
            count.in_numel += op.tensor.numel()
    count.out_numel = out_numel


def _mm(args, operand, ws):
    return matmul_count(operand(args[0]), operand(args[1]), ws)


def _addmm(args, operand, ws):
    return matmul_count(operand(args[1]), operand(args[2]), ws)


def _mv(args, operand, ws):
    a, v = operand(args[0]), operand(args[1])
    v2 = Operand(v.tensor.unsqueeze(-1), v.role, v.fmt)
    return matmul_count(a, v2, ws)


def _addmv(args, operand, ws):
    return _mv(args[1:], operand, ws)


def _dot(args, operand, ws):
    a, b = operand(args[0]), operand(args[1])
    return matmul_count(Operand(a.tensor.unsqueeze(0), a.role, a.fmt), Operand(b.tensor.unsqueeze(-1), b.role, b.fmt), ws)


def _sdpa(args, operand, ws):
    """Fused attention: Q Kᵀ then softmax(·) V. The attention weights are real."""
    q, k, v = operand(args[0]), operand(args[1]), operand(args[2])
    kt = Operand(k.tensor.transpose(-2, -1), k.role, k.fmt)
    if q.tensor.shape[:-2] != kt.tensor.shape[:-2]:  # grouped-query attention
        kt = Operand(kt.tensor.expand(*q.tensor.shape[:-2], *kt.tensor.shape[-2:]), k.role, k.fmt)
    count = matmul_count(q, kt, ws, kind="attention")
    attn_shape = q.tensor.shape[:-1] + (kt.tensor.shape[-1],)
    probs = Operand(torch.ones(()).expand(attn_shape), "real")
    vv = v if v.tensor.shape[:-2] == q.tensor.shape[:-2] else Operand(
        v.tensor.expand(*q.tensor.shape[:-2], *v.tensor.shape[-2:]), v.role, v.fmt)
    second = matmul_count(probs, vv, ws, kind="attention")
    second.in_numel -= probs.tensor.numel()  # the probabilities are internal to the fused op
    count += second
    count.operands = f"{q.role}*{k.role}*{v.role}"
    return count


# ---------------------------------------------------------------------- convolution
def conv_count(x: Operand, w: Operand, stride, padding, dilation, transposed: bool,
               output_padding, groups: int, out: torch.Tensor, weight_sparsity: bool) -> OpCount:
    xs, wsh = tuple(x.tensor.shape), tuple(w.tensor.shape)
    ksize = wsh[2:]
    nd = len(ksize)
    kprod = math.prod(ksize)
    if not transposed:
        c_in, c_out = xs[1], wsh[0]
        # nominal MACs, padding taps included (thop / flop_counter convention)
        dense = float(out.numel() * (c_in // groups) * kprod)
    else:
        c_in, c_out = xs[1], wsh[1] * groups
        dense = float(x.tensor.numel() * (c_out // groups) * kprod)
    conv = {1: (F.conv1d, F.conv_transpose1d), 2: (F.conv2d, F.conv_transpose2d),
            3: (F.conv3d, F.conv_transpose3d)}[nd][int(transposed)]

    def run(inp, ker, g):
        if transposed:
            return conv(inp, ker, None, stride, padding, output_padding, g, dilation)
        return conv(inp, ker, None, stride, padding, dilation, g)

    # Masks and levels are small integers: a float32 conv of them is exact while a single
    # output's count stays below 2^24 (C_in * max level * taps); the grand total is summed
    # in float64.
    max_level = max((op.fmt.levels for op in (x, w) if op.is_spike), default=1)
    exact_f32 = c_in * max_level * kprod < 2 ** 24
    dtype = torch.float32 if exact_f32 else torch.float64

    def pairs(sx, sw):
        if sx is None:   # real activation against a sparse/spiking kernel: padding excluded
            sx = torch.ones(xs, dtype=dtype)
        if sw is None:
            # Dense kernel: every input element meets c_out/groups kernels at each of the
            # cover[p] (output position, tap) pairs that read its position p, so the count is
            # sum_{n,c,p} sx[n,c,p] * cover[p] * c_out/groups -- one matrix-vector product.
            # cover[p] <= taps, so a row's sum is exact in float32 below 2^24.
            cover = _cover(tuple(xs[2:]), tuple(out.shape[2:]), tuple(ksize), _ints(stride), _ints(padding),
                           _ints(dilation), bool(transposed), sx.device)
            row_dtype = torch.float32 if max_level * kprod * cover.numel() < 2 ** 24 else torch.float64
            rows = sx.reshape(-1, cover.numel()).to(row_dtype)
            per_row = torch.mv(rows, cover.to(row_dtype))
            return float(per_row.sum(dtype=torch.float64)) * (wsh[1] if transposed else c_out // groups)
        return float(run(sx.to(dtype), sw.to(dtype), groups).sum(dtype=torch.float64))

    count = _pair_counts(x, w, dense, pairs, weight_sparsity)
    count.kind = "conv"
    _io(count, x, w, out_numel=out.numel())
    return count


def _ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@functools.lru_cache(maxsize=256)
def _cover(in_size, out_size, ksize, stride, padding, dilation, transposed: bool,
           device: torch.device) -> torch.Tensor:
    """cover[p]: how many (output position, kernel tap) pairs of a convolution read input
    position p (padding taps read nothing). The index map is separable, so cover is the
    outer product of one cover per spatial dimension."""
    cover = torch.ones(())
    for d, (n_in, n_out, k) in enumerate(zip(in_size, out_size, ksize)):
        s, pad, dil = stride[d], padding[d], dilation[d]
        taps = torch.arange(k) * dil
        if transposed:   # input i writes output i*s - pad + j*dil; count those inside
            hit = torch.arange(n_in)[:, None] * s - pad + taps[None, :]
            one_d = ((hit >= 0) & (hit < n_out)).sum(1)
        else:            # output o reads input o*s - pad + j*dil; count reads per input
            read = (torch.arange(n_out)[:, None] * s - pad + taps[None, :]).flatten()
            read = read[(read >= 0) & (read < n_in)]
            one_d = torch.bincount(read, minlength=n_in)
        cover = cover[..., None] * one_d.to(torch.float32)
    return cover.flatten().to(device)


def _convolution(args, operand, ws, out):
    x, w = operand(args[0]), operand(args[1])
    stride, padding, dilation, transposed, output_padding, groups = args[3:9]
    return conv_count(x, w, stride, padding, dilation, transposed, output_padding, groups, out, ws)


# ------------------------------------------------------------------------- registry
# formula(args, operand, weight_sparsity[, out]) -> OpCount. `operand(t)` classifies t.
FORMULAS: dict = {
    aten.mm.default: _mm,
    aten.bmm.default: _mm,
    aten.addmm.default: _addmm,
    aten.baddbmm.default: _addmm,
    aten.mv.default: _mv,
    aten.addmv.default: _addmv,
    aten.dot.default: _dot,
    aten.vdot.default: _dot,
}
NEEDS_OUTPUT: dict = {
    aten.convolution.default: _convolution,
    aten._convolution.default: _convolution,
}
for _name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
              "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention"):
    if hasattr(aten, _name):
        FORMULAS[getattr(aten, _name).default] = _sdpa

# Operators that multiply activations by weights but have no formula here. They are
# reported as uncounted, never counted as zero silently.
_SYNAPTIC_HINTS = ("conv", "mm", "matmul", "attention", "linear", "einsum", "addr", "tensordot", "bilinear")
_NOT_SYNAPTIC = ("convert", "contiguous", "mmap", "upsample", "interpolat")


def looks_synaptic(func) -> bool:
    name = func.__name__ if hasattr(func, "__name__") else str(func)
    name = name.split(".")[0].lower()
    return any(h in name for h in _SYNAPTIC_HINTS) and not any(n in name for n in _NOT_SYNAPTIC)


def op_name(func) -> str:
    return str(func.overloadpacket.__name__) if hasattr(func, "overloadpacket") else str(func)
