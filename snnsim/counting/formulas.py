"""Count formulas for synaptic operators: small pure functions keyed by aten operator.

Every formula receives the operator's arguments and an `Operand` per synaptic operand
(weight / spike / real, with its spike format), and returns an `OpCount` for the whole
call (all samples of the batch; the profiler divides by the batch size).

The exact counts rest on one identity: for a linear operator f(a, b), the number of
(nonzero a, nonzero b) pairs it multiplies is f(a != 0, b != 0) summed over the output,
and the level-weighted count is f(|k_a|, b != 0) summed. Dense weights make b != 0 all ones,
so a convolution's count collapses to the spike map weighted by its cover -- how many
(output position, kernel tap) pairs read each input position, padding excluded -- times
the kernels each input channel meets: exact at the borders, one matrix-vector product.

Levels and signs: a spike of level k (graded, a sum of spikes, or a signed -k) is one
synaptic event in `syn_events` and |k| events in `syn_ops`. Real operands are dense: their
zeros are never skipped (only a weight's zeros, with `weight_sparsity=True`).

Element-wise spike operations (`spike_mask`): a Hadamard product with a spike operand (a
mask, a gate, spikes x spikes) counts one operation per output element where every spike
operand is nonzero (the other, real operands are dense); a sum of a spike tensor (a
spike-driven token sum) counts one accumulate per nonzero element summed. `elementwise_ops`
keeps their nominal size (every element, zeros included) for dense-execution estimators.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .formats import SpikeFormat, is_dyadic, nonzero_count

aten = torch.ops.aten


@dataclass
class Operand:
    """One operand of a synaptic operator and what it is."""

    tensor: torch.Tensor
    role: str                        # weight | spike | real
    fmt: SpikeFormat | None = None   # set when role == 'spike'
    max_level: int = 0               # spike: the largest |k| seen in this tensor
    signed: bool = False             # spike: some k < 0
    stored_numel: int | None = None  # weight: elements stored (before any broadcast / copy)

    @property
    def is_spike(self) -> bool:
        return self.role == "spike"

    @property
    def is_weight(self) -> bool:
        return self.role == "weight"

    def nonzero_mask(self) -> torch.Tensor:
        t = self.tensor
        if self.fmt is not None and self.fmt.binary and self.fmt.q == 1 and not self.signed \
                and t.dtype == torch.float32:
            return t  # a {0, 1} float tensor is its own nonzero mask
        if self.is_spike and t.dtype == torch.float32:
            # sign(t) is 0 / 1 on spike levels (finite by classification) in one pass;
            # t.bool().to(float32) takes two, and keeps a NaN weight nonzero
            return torch.sign(t) if not self.signed else torch.sign(t).abs_()
        return t.bool().to(torch.float32)  # nonzero -> 1; the cast is faster than t != 0

    def levels(self) -> torch.Tensor:
        """|k| per element: a level-k or level -k spike weighs k events."""
        return self.fmt.levels_of(self.tensor)

    def scaled_levels(self) -> tuple[torch.Tensor, float]:
        """(L, s) with levels() == L / s: the tensor itself and q when its levels are
        non-negative multiples of a power-of-two q in float32 (no pass to divide them out;
        a formula linear in its operand divides its total by q instead, exactly)."""
        t = self.tensor
        if t.dtype == torch.float32 and not self.signed and is_dyadic(self.fmt.q):
            return t, self.fmt.q
        return self.levels(), 1.0

    def same(self, tensor: torch.Tensor) -> "Operand":
        """This operand's class for another view of the same values (transpose, expand)."""
        return Operand(tensor, self.role, self.fmt, self.max_level, self.signed, self.stored_numel)


@dataclass
class OpCount:
    dense_macs: float = 0.0
    mac_ops: float = 0.0
    syn_events: float = 0.0
    syn_ops: float = 0.0
    spike_spike: float = 0.0
    spike_mask: float = 0.0          # element-wise spike operations (masks, gates, token sums)
    elementwise_ops: float = 0.0     # their nominal count, zeros included
    weight_numel: int = 0
    in_numel: int = 0
    out_numel: int = 0
    operands: str = ""
    kind: str = ""
    max_level: int = 0               # largest |spike level| among the spike operands
    signed: bool = False             # a spike operand held negative levels

    def __iadd__(self, other: "OpCount") -> "OpCount":
        for f in ("dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike", "spike_mask",
                  "elementwise_ops", "in_numel", "out_numel"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.weight_numel = max(self.weight_numel, other.weight_numel)
        self.max_level = max(self.max_level, other.max_level)
        self.signed = self.signed or other.signed
        return self

    def note_levels(self, *operands: "Operand") -> None:
        for op in operands:
            if op.is_spike:
                self.max_level = max(self.max_level, int(op.max_level))
                self.signed = self.signed or bool(op.signed)


def _operand_label(a: Operand, b: Operand) -> str:
    return f"{a.role}*{b.role}"


def _pair_counts(a: Operand, b: Operand, dense: float, pairs: Callable, weight_sparsity: bool,
                 sparse_dense: Callable | None = None) -> OpCount:
    """Route a two-operand product to mac_ops / syn_events / spike_spike.

    `pairs(sa, sb)` returns the summed output of the operator applied to the masks sa, sb
    (None means all-ones, which lets formulas take a cheaper exact path). `sparse_dense(sa,
    sb)`, when given, is the nominal count with only zero weights dropped (a convolution's
    padding taps stay in, as in dense_macs); by default `pairs` is that count."""
    count = OpCount(dense_macs=dense, operands=_operand_label(a, b))
    count.note_levels(a, b)
    sparse_w = weight_sparsity and (a.is_weight or b.is_weight)
    mask_a = a.nonzero_mask() if (a.is_weight and weight_sparsity) else None
    mask_b = b.nonzero_mask() if (b.is_weight and weight_sparsity) else None
    if a.is_spike and b.is_spike:
        count.spike_spike = pairs(a.nonzero_mask(), b.nonzero_mask())
    elif a.is_spike:
        count.syn_events = pairs(a.nonzero_mask(), mask_b)
        count.syn_ops = count.syn_events if a.fmt.binary else _level_pairs(pairs, a, mask_b, first=True)
    elif b.is_spike:
        count.syn_events = pairs(mask_a, b.nonzero_mask())
        count.syn_ops = count.syn_events if b.fmt.binary else _level_pairs(pairs, b, mask_a, first=False)
    else:
        count.mac_ops = (sparse_dense or pairs)(mask_a, mask_b) if sparse_w else dense
    return count


def _level_pairs(pairs: Callable, spike: Operand, other_mask, first: bool) -> float:
    """pairs() with the spike operand's levels: every formula's pairs is linear in each
    operand, so the levels' scale comes out of the total (see Operand.scaled_levels)."""
    levels, scale = spike.scaled_levels()
    total = pairs(levels, other_mask) if first else pairs(other_mask, levels)
    return total / scale


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


def _io(count: OpCount, *operands: Operand, out_numel: int) -> None:
    """Weight size and activation traffic: the weight is stored, the others are read."""
    for op in operands:
        if op.is_weight:
            stored = op.stored_numel if op.stored_numel is not None else op.tensor.numel()
            count.weight_numel = max(count.weight_numel, stored)
        else:
            count.in_numel += op.tensor.numel()
    count.out_numel = out_numel


def _mm(args, operand, ws):
    return matmul_count(operand(args[0]), operand(args[1]), ws)


def _addmm(args, operand, ws):
    return matmul_count(operand(args[1]), operand(args[2]), ws)


def _mv(args, operand, ws):
    a, v = operand(args[0]), operand(args[1])
    return matmul_count(a, v.same(v.tensor.unsqueeze(-1)), ws)


def _addmv(args, operand, ws):
    return _mv(args[1:], operand, ws)


def _dot(args, operand, ws):
    a, b = operand(args[0]), operand(args[1])
    return matmul_count(a.same(a.tensor.unsqueeze(0)), b.same(b.tensor.unsqueeze(-1)), ws)


def sdpa_count(q: Operand, k: Operand, v: Operand, weight_sparsity: bool,
               enable_gqa: bool | None = None) -> OpCount:
    """Scaled dot-product attention from its definition, whatever kernel torch runs:
    S = Q Kᵀ (then scaled, masked, softmaxed into P) and O = P V, on Q [..., Hq, L, E],
    K [..., Hk, S, E], V [..., Hk, S, Ev] of any rank (batch dims broadcast). Grouped-query
    attention (Hq = g * Hk) repeats each key / value head for g query heads, as torch does.

    Q and K keep the classes of the tensors passed in: the scale is a scalar applied to the
    scores, so binary Q and K make Q Kᵀ a spike x spike product (exact nonzero products)
    however a kernel folds the scale in. The mask is added to the scores and is no operand.
    P is real and dense (masked and dropped-out positions included, dropout assumed off), so
    O = P V counts as real x V: MACs, or L synaptic events per nonzero element of a spike V.
    dense_macs = the two nominal matmuls, as torch.utils.flop_counter counts them."""
    qt, kt, vt = q.tensor, k.tensor, v.tensor
    if qt.dim() >= 3 and kt.dim() >= 3 and kt.shape[-3] != qt.shape[-3]:
        gqa = enable_gqa if enable_gqa is not None else qt.shape[-3] % kt.shape[-3] == 0
        if not gqa or qt.shape[-3] % kt.shape[-3]:
            raise ValueError(f"attention: {qt.shape[-3]} query heads and {kt.shape[-3]} key heads "
                             f"(grouped-query attention needs enable_gqa and a whole ratio)")
        g = qt.shape[-3] // kt.shape[-3]
        kt, vt = kt.repeat_interleave(g, dim=-3), vt.repeat_interleave(g, dim=-3)
    batch = broadcast_shapes(qt.shape[:-2], kt.shape[:-2], vt.shape[:-2])
    L, S = qt.shape[-2], kt.shape[-2]
    qe = q.same(qt.expand(*batch, *qt.shape[-2:]))
    ke = k.same(kt.expand(*batch, *kt.shape[-2:]).transpose(-2, -1))
    ve = v.same(vt.expand(*batch, *vt.shape[-2:]))
    count = matmul_count(qe, ke, weight_sparsity, kind="attention")
    probs = Operand(torch.ones(()).expand(*batch, L, S), "real")
    count += matmul_count(probs, ve, weight_sparsity, kind="attention")
    count.operands = f"{q.role}*{k.role}*{v.role}"
    # what the fused operator reads and writes: Q, K, V once (not their broadcasts), O
    count.weight_numel = 0
    count.in_numel = 0
    _io(count, q, k, v, out_numel=math.prod(batch) * L * vt.shape[-1])
    return count


def _sdpa(args, operand, ws):
    """A fused attention operator called directly (its Q, K, V are the first arguments)."""
    return sdpa_count(operand(args[0]), operand(args[1]), operand(args[2]), ws)


# ------------------------------------------------------------------- element-wise
def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """The broadcast of concrete shapes (torch's rules). torch.broadcast_shapes does the same
    but imports torch.fx's symbolic shapes (and sympy) on first use: about 0.4 s of a first
    profile() call."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        sizes = {int(s[i]) for s in shapes if len(s) >= -i} - {1}
        if len(sizes) > 1:
            raise RuntimeError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def mul_count(a: Operand, b: Operand) -> OpCount:
    """Hadamard product a * b (broadcast) with at least one spike operand: one operation per
    output element where every spike operand is nonzero; real and weight operands are dense."""
    shape = broadcast_shapes(a.tensor.shape, b.tensor.shape)
    n_out = math.prod(shape)
    spikes = [op for op in (a, b) if op.is_spike]
    if len(spikes) == 1:
        s = spikes[0]
        # broadcasting repeats every element of s the same number of times
        hits = float(nonzero_count(s.tensor, nonneg=not s.signed)) * (n_out // max(1, s.tensor.numel()))
    else:
        hits = float((a.tensor.bool() & b.tensor.bool()).sum(dtype=torch.float64))
    count = OpCount(spike_mask=hits, elementwise_ops=float(n_out), operands=_operand_label(a, b),
                    kind="spike_mask")
    count.note_levels(a, b)
    _io(count, a, b, out_numel=n_out)
    return count


def scale_count(a: Operand, b: Operand, weight_sparsity: bool) -> OpCount:
    """Hadamard product a * b (broadcast) of a real activation and a weight: a learned scale
    (LayerScale, a per-channel gain) or a dot product written as ``(x * W).sum(-1)``. One
    multiply per output element, counted as a MAC (its accumulate adds nothing), real operands
    dense; with ``weight_sparsity`` only the elements whose weight is nonzero. The sum that may
    follow is free, as every reduction of real values is."""
    shape = broadcast_shapes(a.tensor.shape, b.tensor.shape)
    n_out = math.prod(shape)
    w = a if a.is_weight else b
    macs = float(n_out)
    if weight_sparsity and w.tensor.numel():
        # broadcasting repeats every weight element the same number of times
        macs = float(nonzero_count(w.tensor, nonneg=False)) * (n_out // w.tensor.numel())
    count = OpCount(dense_macs=float(n_out), mac_ops=macs, operands=_operand_label(a, b), kind="scale")
    _io(count, a, b, out_numel=n_out)
    return count


def sum_count(x: Operand, out: torch.Tensor) -> OpCount:
    """A sum of a spike tensor over some dims (a spike-driven token sum): one accumulate per
    nonzero element summed."""
    count = OpCount(spike_mask=float(nonzero_count(x.tensor, nonneg=not x.signed)),
                    elementwise_ops=float(x.tensor.numel()), operands=x.role, kind="token_sum",
                    in_numel=x.tensor.numel(), out_numel=out.numel())
    count.note_levels(x)
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
    max_level = max((max(op.fmt.levels, op.max_level) for op in (x, w) if op.is_spike), default=1)
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

    def sparse_dense(sx, sw):
        # weight sparsity on a real input: every output position (padding taps included, as
        # in dense_macs) meets only the nonzero weights -- per sample, (output positions) x
        # nnz(w) for a conv, (input positions) x nnz(w) for a transposed conv (whose weight
        # is [C_in, C_out/groups, k...]).
        positions = math.prod(xs[2:]) if transposed else math.prod(out.shape[2:])
        nnz_w = float(sw.sum(dtype=torch.float64)) if sw is not None else float(math.prod(wsh))
        return float(xs[0]) * positions * nnz_w

    count = _pair_counts(x, w, dense, pairs, weight_sparsity,
                         sparse_dense if (w.is_weight and not x.is_weight) else None)
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


# ------------------------------------------------- recurrent layers, conv_tbc, lookups
# (appended: formulas for operators that used to run uncounted)
def _recurrent_count(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, h_prev: torch.Tensor,
                     operand, ws) -> OpCount:
    """A recurrent layer's gates over all its steps: every step reads its input through
    W_ih [G*H, I] and the previous hidden state through W_hh [G*H, H] (G gates: LSTM 4,
    GRU 3, RNN 1), so dense MACs = steps x batch x G*H x (I + H). The input part is routed
    by the input's class (spikes: exact synaptic events); the hidden part by the hidden
    states the steps actually read (`h_prev`, one row per step and sample)."""
    # classify the tensors the layer received (a reshaped view is a new tensor object)
    xin = operand(x).same(x.reshape(-1, x.shape[-1]))
    hin = operand(h_prev.reshape(-1, h_prev.shape[-1]))
    count = matmul_count(xin, operand(w_ih).same(w_ih.t()), ws, kind="rnn")
    count += matmul_count(hin, operand(w_hh).same(w_hh.t()), ws, kind="rnn")
    count.operands = f"{xin.role}*weight,{hin.role}*weight"
    count.kind = "rnn"
    return count


def _mkldnn_rnn_layer(args, operand, ws, out):
    """aten.mkldnn_rnn_layer: one layer and one direction of nn.LSTM on CPU (oneDNN).
    args: input [T, B, I] (time-major), W_ih, W_hh, b_ih, b_hh, hx [B, H], cx, reverse, ...;
    out: the hidden states [T, B, H]. A forward direction reads hx then h_0..h_{T-2}; a
    reverse one reads h_{T-1}..h_1 then hx."""
    x, w_ih, w_hh, hx, reverse = args[0], args[1], args[2], args[5], bool(args[7])
    h0 = hx.reshape(1, *out.shape[1:])
    h_prev = torch.cat([out[1:], h0]) if reverse else torch.cat([h0, out[:-1]])
    count = _recurrent_count(x, w_ih, w_hh, h_prev, operand, ws)
    count.out_numel = out.numel()
    return count


def _conv_tbc(args, operand, ws, out):
    """aten.conv_tbc: a 1-D convolution over time on [T, B, C_in] with weight [K, C_in, C_out]
    and symmetric padding `pad`: the same counts as conv1d on [B, C_in, T]."""
    x, w = args[0], args[1]
    pad = int(args[3]) if len(args) > 3 else 0
    xo = operand(x).same(x.permute(1, 2, 0))
    wo = operand(w).same(w.permute(2, 1, 0))
    return conv_count(xo, wo, (1,), (pad,), (1,), False, (0,), 1, out.permute(1, 2, 0), ws)


def _embedding(args, operand, ws, out):
    """aten.embedding: a table lookup -- no multiply-accumulate (0 MACs, 0 synaptic events);
    listed as a `lookup` with the table's size and the rows it returns, so the read is visible."""
    weight, indices = args[0], args[1]
    return OpCount(kind="lookup", operands="weight*index", weight_numel=weight.numel(),
                   in_numel=indices.numel(), out_numel=out.numel())


def _embedding_bag(args, operand, ws, out):
    """aten._embedding_bag: lookups summed per bag (additions, no MACs) -- except with
    per_sample_weights, where each looked-up row is scaled and accumulated: one MAC per
    element of each row read."""
    weight, indices = args[0], args[1]
    psw = args[6] if len(args) > 6 else None
    macs = float(indices.numel() * weight.shape[-1]) if isinstance(psw, torch.Tensor) else 0.0
    return OpCount(dense_macs=macs, mac_ops=macs, kind="lookup", operands="weight*index",
                   weight_numel=weight.numel(), in_numel=indices.numel(), out_numel=out.numel())


NEEDS_OUTPUT[aten.mkldnn_rnn_layer.default] = _mkldnn_rnn_layer
NEEDS_OUTPUT[aten.conv_tbc.default] = _conv_tbc
NEEDS_OUTPUT[aten.embedding.default] = _embedding
NEEDS_OUTPUT[aten._embedding_bag.default] = _embedding_bag
FORMULAS[aten._addmm_activation.default] = _addmm      # addmm fused with relu / gelu
FORMULAS[aten.addbmm.default] = _addmm                 # sum over the batch of bmm: same pairs
