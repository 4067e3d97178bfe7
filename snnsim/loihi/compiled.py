"""The emulator's whole-run compiled backend: every step of every sample in one numba call.

The scheduler in :mod:`snnsim.loihi.emulator` steps a network from Python: per step and node
it dispatches a kernel, which costs about 0.03 ms whatever the layer's size -- for a small or
quiet network that fixed cost is the run. Here the network becomes a table of operations
(one row per node: its kind, sizes, offsets into shared arrays, arithmetic flags) that one
compiled function interprets for all steps and samples, so Python is left once per run.

What it covers: RingBuffer / SpikeDataloader sources, LIF and LIFReset populations, Dense,
Sparse and Conv synapses (binary or graded messages), connections with any port transforms
(a reshape keeps the flat order; a transpose becomes an index map). :func:`unsupported` names
the first node outside that; the scheduler's own backends run such networks.

The arithmetic is the scheduler's, value for value (and so lava-nc's ``fixed_pt`` models'):

* a synapse sums, event-driven, the weights of the inputs that are nonzero -- a Dense's row
  of ``W.T``, a Sparse's stored column, a Conv's kernel taps landing in the output -- times
  the input (graded) or 1 (binary: any nonzero input is a spike), in int32 where no partial
  sum can leave it and in int64 elsewhere (weights held as int16 where they fit); then the
  same int32 wraps, ``weight_exp`` shifts
  and int32 / 24-bit channel rules as
  :func:`~snnsim.loihi.fixed_point.dense_apply` / :func:`~snnsim.loihi.fixed_point.conv_apply`;
* a LIF population is :func:`~snnsim.loihi.fixed_point.lif_fixed_step` element by element
  (the fused kernel's arithmetic), its input the sum of what its inputs sent, wrapped to
  int32 where several inputs can overflow it;
* timing as the scheduler's: sources and populations in zero-delay order send in the step,
  synapses send at step t what they computed at step t - 1.

Samples of a batch are independent, so the kernel runs them one after the other: the cost
per sample does not grow with the batch.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from . import fixed_point as fp

__all__ = ["CONV_OUTPUTS_AUTO", "run_compiled", "slower_here", "unsupported"]

# operation kinds
SOURCE, LIF, DENSE, SPARSE, CONV = 0, 1, 2, 3, 4
# columns of the operation table (int64); the meaning of a column depends on the kind
KIND, OUT, SIZE, IN_LO, IN_HI = 0, 1, 2, 3, 4
# SOURCE: data offset, steps, samples held (1: shared by the batch)
S_DATA, S_STEPS, S_SAMPLES = 5, 6, 7
# LIF: state offset, fu, fv, vth, bias offset, exact int32, record offset (-1: none),
#      reset interval (0: a plain LIF), reset offset
L_STATE, L_FU, L_FV, L_VTH, L_BIAS, L_EXACT, L_REC, L_RESET_EVERY, L_RESET_AT = 5, 6, 7, 8, 9, 10, 11, 12, 13
# synapses: input size, graded, weight_exp, wrap after the sum, wrap of the channel, weight
#           offset, sums fit int32 (accumulated in the message array itself), weights held
#           as int16 (they fit: half the memory traffic of a large layer's rows)
Y_NIN, Y_GRADED, Y_EXP, Y_WRAP_SUM, Y_WRAP_OUT, Y_W, Y_ACC32, Y_W16 = 5, 6, 7, 8, 9, 10, 11, 12
# SPARSE: offsets of its column pointers and row indices in the index array
P_PTR, P_ROW = 13, 14
# CONV: X, Y, C in; X, Y, C out; KX, KY; strides, paddings, dilations; groups; out-of-int32 rule; 24-bit wrap
C_X, C_Y, C_C, C_XO, C_YO, C_CO, C_KX, C_KY = 13, 14, 15, 16, 17, 18, 19, 20
C_SX, C_SY, C_PX, C_PY, C_DX, C_DY, C_G, C_INT32, C_WRAP24 = 21, 22, 23, 24, 25, 26, 27, 28, 29
N_COLS = 30


# --------------------------------------------------------------------------- what it covers
def unsupported(net) -> Optional[str]:
    """Why ``net`` cannot run compiled (the first node outside the backend), or None when it can."""
    from .emulator import (ConvLayer, DenseLayer, LIFPopulation, LIFResetPopulation, RingBufferSource,
                           SparseLayer, SpikeDataloaderSource)

    if _kernel() is None:
        return "numba is not installed"
    covered = (RingBufferSource, SpikeDataloaderSource, LIFPopulation, LIFResetPopulation, DenseLayer, SparseLayer,
               ConvLayer)
    for n in net.nodes.values():
        if type(n) not in covered:      # exact types: a subclass may step differently
            return f"{n!r}: {type(n).__name__} is not compiled"
    return None


# Above this many outputs a Conv is faster through oneDNN's dense convolution (the fused
# backend) than tap by tap: measured on two Conv 3x3 + LIF layers (benchmarks/loihi_speed.py
# shapes, 8 -> 16 channels) at 4 x 4 (256 outputs: compiled 2.2x faster) and 8 x 8 (1,024
# outputs: 1.8x slower), layers firing 50-70 %.
CONV_OUTPUTS_AUTO = 512


def slower_here(net) -> Optional[str]:
    """Why ``backend='auto'`` leaves a covered network to the fused backend (a large Conv),
    or None."""
    from .emulator import ConvLayer

    for n in net.nodes.values():
        if isinstance(n, ConvLayer) and math.prod(n.out_shape) > CONV_OUTPUTS_AUTO:
            return f"{n!r} has more than {CONV_OUTPUTS_AUTO} outputs: faster as a dense convolution"
    return None


# --------------------------------------------------------------------------- the kernel
# Every value sent fits int32 (spikes, RingBuffer data, the synapses' int32 / 24-bit channels),
# so messages are int32 arrays. A sum of several inputs is accumulated in int32 too: numba adds
# in int64 and stores back with a truncation, which is the int32 wrap the scheduler applies to
# the total where the inputs can overflow it (and no change where they cannot).
def _gather(sent, idx, lo, hi, n, a):  # pragma: no cover - numba
    """The sum of what the inputs ``idx[lo:hi]`` (pairs: offset in ``sent``, offset of the
    connection's index map in ``idx`` or -1 for none) sent, into ``a[:n]``."""
    for j in range(n):
        a[j] = 0
    for k in range(lo, hi, 2):
        src, perm = idx[k], idx[k + 1]
        if perm < 0:
            for j in range(n):
                a[j] += sent[src + j]
        else:
            for j in range(n):
                a[j] += sent[src + idx[perm + j]]


def _input(sent, idx, lo, hi, n, a):  # pragma: no cover - numba
    """A node's input: its one input's segment of ``sent`` as it is (no index map), or the sum
    of its inputs in the scratch ``a``."""
    if hi - lo == 2 and idx[lo + 1] < 0:
        return sent[idx[lo]:idx[lo] + n]
    _gather(sent, idx, lo, hi, n, a)
    return a[:n]


def _lif(P, op, t, b, sent, u, v, bias, rec_u, rec_v, rec_s, idx, a, scratch_u, scratch_v,
         scratch_s):  # pragma: no cover - numba
    out, n = P[op, OUT], P[op, SIZE]
    a_in = _input(sent, idx, P[op, IN_LO], P[op, IN_HI], n, a)
    s0, b0 = P[op, L_STATE], P[op, L_BIAS]
    every = P[op, L_RESET_EVERY]
    if every > 0 and (t + 1) % every == P[op, L_RESET_AT]:   # t + 1: lava's step (first_step folded in)
        for j in range(n):
            u[s0 + j] = 0
            v[s0 + j] = 0
    fu, fv, vth = P[op, L_FU], P[op, L_FV], P[op, L_VTH]
    r = P[op, L_REC]
    ui, vi, bi = u[s0:s0 + n], v[s0:s0 + n], bias[b0:b0 + n]
    sent_n = sent[out:out + n]
    # the fused kernel (fixed_point._lif_fused_py): two specialisations, each vectorised
    if r >= 0:
        rows = (rec_u[t, b, r:r + n], rec_v[t, b, r:r + n], rec_s[t, b, r:r + n])
    else:
        rows = (scratch_u[:n], scratch_v[:n], scratch_s[:n])
    if P[op, L_EXACT] != 0:
        _lif_exact(ui, vi, a_in, bi, fu, fv, vth, sent_n, rows[0], rows[1], rows[2])
    else:
        _lif_fast(ui, vi, a_in, bi, fu, fv, vth, sent_n, rows[0], rows[1], rows[2])


def _dense_sums(xs, weights, w0, graded, acc):  # pragma: no cover - numba
    """Event-driven ``W @ x``: the rows of W.T (from ``w0``) of the nonzero inputs, times the
    input (graded) or once (binary), added into ``acc`` (zeroed)."""
    n_out = acc.shape[0]
    for i in range(xs.shape[0]):
        xi = xs[i]
        if xi == 0:
            continue
        row = weights[w0 + i * n_out:w0 + (i + 1) * n_out]
        if graded:
            for j in range(n_out):
                acc[j] += np.int64(row[j]) * xi
        else:
            for j in range(n_out):
                acc[j] += row[j]


def _sparse_sums(xs, weights, w0, idx, ptr0, row0, graded, acc):  # pragma: no cover - numba
    """The same from a Sparse's stored weights, by input (column pointers, output indices)."""
    for i in range(xs.shape[0]):
        xi = xs[i]
        if xi == 0:
            continue
        lo, hi = idx[ptr0 + i], idx[ptr0 + i + 1]
        rows, w = idx[row0 + lo:row0 + hi], weights[w0 + lo:w0 + hi]
        if graded:
            for k in range(hi - lo):
                acc[rows[k]] += np.int64(w[k]) * xi
        else:
            for k in range(hi - lo):
                acc[rows[k]] += w[k]


def _landing(i, pad, k, dil, stride, size):  # pragma: no cover - numba
    """The output index input index ``i`` reaches through kernel tap ``k`` along one axis; -1
    when it falls between outputs (stride) or past the last, -2 before the first (as it does
    for every later tap: the index only decreases with ``k``)."""
    n = i + pad - k * dil
    if n < 0:
        return -2
    if stride != 1:
        if n % stride != 0:
            return -1
        n //= stride
    return n if n < size else -1


def _conv_taps(acc, weights, w, xi, yi, o_c, xv, graded, KX, KY, sx, sy, px, py, dx, dy, XO, YO, CO,
               cout_g):  # pragma: no cover - numba
    """Add the kernel taps of the input at (xi, yi) (weights from ``w``: its channel's
    (KX, KY, C_out / groups) block) to the outputs they land on (channels from ``o_c``)."""
    for kx in range(KX):
        nx = _landing(xi, px, kx, dx, sx, XO)
        if nx == -2:
            break
        if nx < 0:
            continue
        for ky in range(KY):
            ny = _landing(yi, py, ky, dy, sy, YO)
            if ny == -2:
                break
            if ny < 0:
                continue
            o = (nx * YO + ny) * CO + o_c
            k = w + (kx * KY + ky) * cout_g
            if graded:
                for c in range(cout_g):
                    acc[o + c] += np.int64(weights[k + c]) * xv
            else:
                for c in range(cout_g):
                    acc[o + c] += weights[k + c]


def _conv_sums(P, op, xs, weights, acc):  # pragma: no cover - numba
    """Event-driven ``conv_apply``: each nonzero input (xi, yi, ci) adds its kernel taps to the
    outputs they land on (torch's cross-correlation with lava's flipped kernel, zero padding,
    stride, dilation, groups); weights held as (C_in, KX, KY, C_out / groups)."""
    X, Y, C = P[op, C_X], P[op, C_Y], P[op, C_C]
    XO, YO, CO = P[op, C_XO], P[op, C_YO], P[op, C_CO]
    KX, KY = P[op, C_KX], P[op, C_KY]
    sx, sy, px, py, dx, dy = P[op, C_SX], P[op, C_SY], P[op, C_PX], P[op, C_PY], P[op, C_DX], P[op, C_DY]
    cin_g, cout_g = C // P[op, C_G], CO // P[op, C_G]
    graded = P[op, Y_GRADED] != 0
    w0 = P[op, Y_W]
    i = -1
    for xi in range(X):                  # (nested loops: no division to find a value's place)
        for yi in range(Y):
            for ci in range(C):
                i += 1
                xv = xs[i]
                if xv != 0:
                    _conv_taps(acc, weights, w0 + ci * KX * KY * cout_g, xi, yi, (ci // cin_g) * cout_g, xv, graded,
                               KX, KY, sx, sy, px, py, dx, dy, XO, YO, CO, cout_g)


def _sums_from(P, op, xs, weights, idx, acc):  # pragma: no cover - numba
    kind = P[op, KIND]
    if kind == DENSE:
        _dense_sums(xs, weights, P[op, Y_W], P[op, Y_GRADED] != 0, acc)
    elif kind == SPARSE:
        _sparse_sums(xs, weights, P[op, Y_W], idx, P[op, P_PTR], P[op, P_ROW], P[op, Y_GRADED] != 0, acc)
    else:
        _conv_sums(P, op, xs, weights, acc)


def _sums(P, op, xs, w16, w32, idx, acc):  # pragma: no cover - numba
    acc[:] = 0
    if P[op, Y_W16] != 0:               # (two calls: numba compiles one per weight type)
        _sums_from(P, op, xs, w16, idx, acc)
    else:
        _sums_from(P, op, xs, w32, idx, acc)


def _finish(P, op, acc, dst, in_place):  # pragma: no cover - numba
    """The rules after the sum, from ``acc`` into the int32 channel ``dst``: a Dense / Sparse's
    (``dense_apply``: int32 wrap of a graded sum, ``weight_exp``, the int32 channel) or a
    Conv's (``conv_apply``: out of int32 -> INT32_MIN as numpy casts floats on x86, 24-bit wrap)."""
    H = 2147483648
    W = 4294967295
    if P[op, KIND] == CONV:
        out_of_int32, wrap24 = P[op, C_INT32] != 0, P[op, C_WRAP24] != 0
        if in_place and not (out_of_int32 or wrap24):
            return
        for j in range(acc.shape[0]):
            y = np.int64(acc[j])
            if out_of_int32 and (y > 2147483647 or y < -2147483648):
                y = -2147483648
            if wrap24:
                y = ((y + 8388608) & 16777215) - 8388608
            dst[j] = y
        return
    graded = P[op, Y_GRADED] != 0
    we = P[op, Y_EXP]
    wrap_sum, wrap_out = P[op, Y_WRAP_SUM] != 0, P[op, Y_WRAP_OUT] != 0
    if in_place and we == 0 and not wrap_sum and not wrap_out:
        return                           # the sum as it is (the common case)
    for j in range(acc.shape[0]):
        y = np.int64(acc[j])
        if graded and wrap_sum:
            y = ((y + H) & W) - H
        if we > 0:
            y = y << we
            if graded:
                y = ((y + H) & W) - H
        elif we < 0:
            y = y >> (-we)
        if wrap_out:
            y = ((y + H) & W) - H
        dst[j] = y


def _synapse(P, op, sent, new, x, wide, w16, w32, idx):  # pragma: no cover - numba
    """A Dense / Sparse / Conv's new buffer from what its inputs sent this step, into ``new``:
    summed there directly when every partial sum fits int32 (it is then the channel), else in
    the int64 scratch ``wide``."""
    out, n = P[op, OUT], P[op, SIZE]
    if P[op, IN_HI] == P[op, IN_LO]:
        new[out:out + n] = 0             # no input: the buffer empties
        return
    xs = _input(sent, idx, P[op, IN_LO], P[op, IN_HI], P[op, Y_NIN], x)
    if P[op, Y_ACC32] != 0:
        acc = new[out:out + n]
        _sums(P, op, xs, w16, w32, idx, acc)
        _finish(P, op, acc, acc, True)
    else:
        acc64 = wide[:n]
        _sums(P, op, xs, w16, w32, idx, acc64)
        _finish(P, op, acc64, new[out:out + n], False)


def _run(P, zero_ops, buffered, T, B, start, src, u, v, bias, w16, w32, idx, rec_u, rec_v, rec_s,
         sent_size, scratch):  # pragma: no cover - numba
    """All ``T`` steps of all ``B`` samples. ``start`` (B, sent_size) int32: what every node
    sends at step 1 (the synapses' initial buffers); ``u``, ``v`` (B, n_state) int32, updated
    in place (the final state); returns (B, sent_size) whose synapse segments hold the buffers
    they would send next (the other segments are left-overs of the swapped arrays)."""
    final = np.zeros((B, sent_size), dtype=np.int32)
    a = np.zeros(scratch, dtype=np.int32)
    x = np.zeros(scratch, dtype=np.int32)
    wide = np.zeros(scratch, dtype=np.int64)
    su, sv, ss = np.zeros(scratch, np.int32), np.zeros(scratch, np.int32), np.zeros(scratch, np.int8)
    for b in range(B):
        sent = start[b].copy()
        new = np.zeros(sent_size, dtype=np.int32)
        ub, vb = u[b], v[b]
        for t in range(T):
            for k in range(zero_ops.shape[0]):
                op = zero_ops[k]
                if P[op, KIND] == SOURCE:
                    out, n = P[op, OUT], P[op, SIZE]
                    steps, held = P[op, S_STEPS], P[op, S_SAMPLES]
                    row = P[op, S_DATA] + ((t % steps) * held + (b if held > 1 else 0)) * n
                    sent[out:out + n] = src[row:row + n]
                else:
                    _lif(P, op, t, b, sent, ub, vb, bias, rec_u, rec_v, rec_s, idx, a, su, sv, ss)
            for k in range(buffered.shape[0]):
                _synapse(P, buffered[k], sent, new, x, wide, w16, w32, idx)
            # the new buffers are what the synapses send next step; every other value is sent
            # afresh each step before anything reads it: swapping the arrays moves the buffers
            sent, new = new, sent
        final[b] = sent
    return final


@functools.cache
def _kernel():
    """The compiled interpreter, or None where numba is missing.

    numba resolves a compiled function's callees from its module's globals when it compiles, so
    the helpers above are replaced here by their compiled versions (and the LIF kernels by
    fixed_point's) before the interpreter first compiles. Its on-disk cache is keyed on this
    file alone: after editing ``fixed_point._lif_fused_py``, whose code the cached interpreter
    embeds, touch this file too (a clean checkout has no cache)."""
    try:
        import numba
    except Exception:  # pragma: no cover - numba is in requirements.lock
        return None
    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
    g = globals()
    g["_lif_fast"], g["_lif_exact"] = fp.lif_fused_kernel()
    for name in ("_gather", "_input", "_lif", "_dense_sums", "_sparse_sums", "_landing", "_conv_taps",
                 "_conv_sums", "_sums_from", "_sums", "_finish", "_synapse"):
        g[name] = jit(g[name])
    return jit(_run)


# --------------------------------------------------------------------------- the table
class _Table:
    """Builds the operation table and the shared arrays, node by node."""

    def __init__(self) -> None:
        self.sent_off: Dict[str, int] = {}
        self.sent_size = 0
        self.ins: List[int] = []        # input lists (sent offset, index map offset), then index maps
        self.w16: List[np.ndarray] = []
        self.w32: List[np.ndarray] = []
        self.w_size = {np.dtype(np.int16): 0, np.dtype(np.int32): 0}
        self.src: List[np.ndarray] = []
        self.src_size = 0
        self.bias: List[np.ndarray] = []
        self.bias_size = 0
        self.state_size = 0
        self.rec_size = 0
        self.scratch = 1

    def place(self, name: str, size: int) -> None:
        """Give a node its segment of the message arrays."""
        self.sent_off[name] = self.sent_size
        self.sent_size += size

    def weights(self, w: np.ndarray) -> int:
        """Place a weight plan's array (int16 or int32) in its type's joined array; its offset."""
        off = self.w_size[w.dtype]
        (self.w16 if w.dtype == np.int16 else self.w32).append(w)
        self.w_size[w.dtype] += w.size
        return off


def _joined(net, what: str, parts: List[np.ndarray], dtype) -> np.ndarray:
    """The concatenation of ``parts``, kept on the network for the next run while the parts are
    the same arrays (the weight plans are cached per node: a network run again with the same
    weights is not copied again -- for 1024 x 1024 layers that copy would cost more than the run;
    parts made afresh for each run, input lists and index maps, count as the same when equal)."""
    cache = net.__dict__.setdefault("_compiled_joined", {})
    hit = cache.get(what)
    if hit is not None and len(hit[0]) == len(parts) and \
            all(a is b or (a.shape == b.shape and np.array_equal(a, b)) for a, b in zip(hit[0], parts)):
        return hit[1]
    joined = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(1, dtype=dtype)
    cache[what] = (list(parts), joined)
    return joined


def _narrow(w: np.ndarray) -> np.ndarray:
    """A copy of integer weights in int16 where every value fits it (8-bit lava weights always
    do), else int32: never a view of the node's own tensor."""
    fits = w.size == 0 or (int(w.min()) >= -(1 << 15) and int(w.max()) < (1 << 15))
    return w.astype(np.int16 if fits else np.int32)


def _dense_plan(n) -> Dict[str, np.ndarray]:
    """A Dense's weights as rows of W.T (n_in x n_out); a Sparse's stored weights by input:
    column pointers, output indices and values (int16 where they fit, else int32)."""
    wt = _narrow(n.weights.T.numpy())   # (n_in, n_out)
    if n.kind != "sparse":
        return {"w": wt.reshape(-1)}
    nz = wt != 0
    ptr = np.concatenate([[0], np.cumsum(nz.sum(1))]).astype(np.int64)
    ii, jj = np.nonzero(nz)                                              # row-major: by input, then output
    return {"w": np.ascontiguousarray(wt[ii, jj]), "ptr": ptr, "rows": jj.astype(np.int64)}


def _conv_plan(n) -> Dict[str, np.ndarray]:
    """A Conv's kernel as (C_in, KX, KY, C_out / groups), int16 or int32: input channel ci of group g
    reaches outputs g * C_out / groups + c (torch's cross-correlation kernel: lava's, flipped)."""
    wt = fp.conv_weight_to_torch(n.weight.to(torch.int64))   # (C_out, C_in/g, KX, KY)
    G, C, CO = n.groups, n.in_shape[2], n.out_shape[2]
    KX, KY = int(wt.shape[2]), int(wt.shape[3])
    w = wt.reshape(G, CO // G, C // G, KX, KY).permute(0, 2, 3, 4, 1).reshape(C, KX, KY, CO // G)
    return {"w": _narrow(w.contiguous().numpy().reshape(-1))}


def _index_map(conn) -> Optional[np.ndarray]:
    """For a connection that transposes: the source's flat index of each value the destination
    receives, in the destination's flat order; None when the order is kept (reshapes only)."""
    if all(op == "reshape" for op, _ in conn.transforms):
        return None
    from .emulator import _apply_transforms

    size = math.prod(conn.src.out_shape)
    src = torch.arange(size, dtype=torch.int64).reshape((1,) + conn.src.out_shape)
    return _apply_transforms(src, conn.transforms).reshape(-1).numpy().copy()


Records = Dict[str, Dict[str, torch.Tensor]]


def run_compiled(net, ctx, in_conns, start: Dict[str, torch.Tensor]) -> Tuple[Records, Records,
                                                                               Dict[str, torch.Tensor]]:
    """Run ``net`` for ``ctx.num_steps`` steps of ``ctx.batch`` samples compiled. ``start``:
    the buffered nodes' first messages by name ((B, *out_shape) int64). Returns the records
    (per population: u, v, s as (T, B, *shape) tensors), the final LIF states and the final
    buffers, as the scheduler's process models leave them."""
    from .emulator import ConvLayer, DenseLayer, LIFPopulation, LIFResetPopulation

    B, T = ctx.batch, ctx.num_steps
    tab = _Table()
    nodes = list(net.nodes.values())
    for n in nodes:
        tab.place(n.name, math.prod(n.out_shape))
    rows: Dict[str, np.ndarray] = {}
    lif_state: Dict[str, Tuple[int, int]] = {}
    rec_at: Dict[str, Tuple[int, int]] = {}
    u0: List[torch.Tensor] = []
    v0: List[torch.Tensor] = []
    pending_idx: List[Tuple[Any, int, np.ndarray]] = []   # (holder, where, array): offset to fill in
    for n in nodes:
        row = np.zeros(N_COLS, dtype=np.int64)
        size = math.prod(n.out_shape)
        row[OUT], row[SIZE] = tab.sent_off[n.name], size
        tab.scratch = max(tab.scratch, size, math.prod(n.in_shape) if n.in_shape else 0)
        conns = in_conns[n.name]
        row[IN_LO] = len(tab.ins)
        for c in conns:
            tab.ins.append(tab.sent_off[c.src.name])
            perm = _index_map(c)
            tab.ins.append(-1)
            if perm is not None:
                pending_idx.append((tab.ins, len(tab.ins) - 1, perm))
        row[IN_HI] = len(tab.ins)
        if n.name in ctx.source_steps:
            d = ctx.source_steps[n.name]                       # (T_s, b, *shape)
            row[KIND] = SOURCE
            row[S_DATA], row[S_STEPS], row[S_SAMPLES] = tab.src_size, d.shape[0], d.shape[1]
            flat = d.reshape(-1).numpy()
            tab.src.append(flat)
            tab.src_size += flat.size
        elif isinstance(n, LIFPopulation):
            row[KIND] = LIF
            row[L_STATE] = tab.state_size
            lif_state[n.name] = (tab.state_size, size)
            tab.state_size += size
            u0.append(n.u0.reshape(-1))
            v0.append(n.v0.reshape(-1))
            row[L_FU], row[L_FV] = fp.DECAY_UNITY - (n.du + 1), fp.DECAY_UNITY - n.dv
            row[L_VTH] = max(min(int(n.vth_eff), 1 << 62), -(1 << 62))
            row[L_BIAS] = tab.bias_size
            tab.bias.append(n.bias.to(torch.int64).reshape(-1).numpy())
            tab.bias_size += size
            row[L_EXACT] = not n.fast_ok(ctx.in_bounds[n.name])
            row[L_REC] = -1
            if n.name in ctx.recorded and ctx.record:
                row[L_REC] = tab.rec_size
                rec_at[n.name] = (tab.rec_size, size)
                tab.rec_size += size
            if isinstance(n, LIFResetPopulation):
                # the reset happens before run step t when lava's step t + first_step - 1 is due
                row[L_RESET_EVERY] = n.reset_interval
                row[L_RESET_AT] = (n.reset_offset - (ctx.first_step - 1)) % n.reset_interval
        elif isinstance(n, DenseLayer):
            acc_bound = n.acc_bound(ctx.in_bounds[n.name])
            row[Y_NIN], row[Y_GRADED], row[Y_EXP] = n.in_shape[0], n.graded, n.weight_exp
            row[Y_WRAP_SUM] = n.graded and acc_bound > fp.INT32_MAX
            row[Y_WRAP_OUT] = (acc_bound << max(n.weight_exp, 0)) > fp.INT32_MAX
            row[Y_ACC32] = acc_bound <= fp.INT32_MAX
            plan = n.cached("compiled", (n.weights,), 0, lambda: _dense_plan(n))
            row[Y_W], row[Y_W16] = tab.weights(plan["w"]), plan["w"].dtype == np.int16
            row[KIND] = SPARSE if n.kind == "sparse" else DENSE
            if n.kind == "sparse":
                pending_idx.append((row, P_PTR, plan["ptr"]))
                pending_idx.append((row, P_ROW, plan["rows"]))
        elif isinstance(n, ConvLayer):
            row[KIND] = CONV
            acc_bound = n.acc_bound(ctx.in_bounds[n.name])
            if acc_bound >= fp.FLOAT64_EXACT:
                raise NotImplementedError(f"Conv {n.name!r}: conv sums may reach {acc_bound} >= 2**53, where "
                                          f"lava's float64 scipy convolution is not exact")
            X, Y, C = n.in_shape
            XO, YO, CO = n.out_shape
            plan = n.cached("compiled", (n.weight,), 0, lambda: _conv_plan(n))
            KX, KY = int(n.weight.shape[1]), int(n.weight.shape[2])
            row[Y_NIN], row[Y_GRADED], row[Y_W] = X * Y * C, n.graded, tab.weights(plan["w"])
            row[Y_W16] = plan["w"].dtype == np.int16
            row[C_X], row[C_Y], row[C_C], row[C_XO], row[C_YO], row[C_CO] = X, Y, C, XO, YO, CO
            row[C_KX], row[C_KY] = KX, KY
            row[C_SX], row[C_SY] = n.stride
            row[C_PX], row[C_PY] = n.padding
            row[C_DX], row[C_DY] = n.dilation
            row[C_G] = n.groups
            row[C_INT32] = acc_bound > fp.INT32_MAX
            row[C_WRAP24] = acc_bound >= fp.MAX_UV
            row[Y_ACC32] = acc_bound <= fp.INT32_MAX
        else:   # pragma: no cover - unsupported() is asked first
            raise TypeError(f"{n!r} is not compiled")
        rows[n.name] = row
    # index maps and Sparse indices go after the input lists, in the one int64 index array
    at, extra = len(tab.ins), []
    for holder, col, arr in pending_idx:
        holder[col] = at
        extra.append(arr)
        at += arr.size
    idx = _joined(net, "idx", [np.asarray(tab.ins, dtype=np.int64)] + extra, np.int64) if at else \
        np.zeros(1, dtype=np.int64)
    order = {n.name: k for k, n in enumerate(nodes)}
    P = np.stack([rows[n.name] for n in nodes]) if nodes else np.zeros((0, N_COLS), dtype=np.int64)
    zero_ops = np.array([order[n.name] for n in net._zero_delay_order()], dtype=np.int64)
    buffered = np.array([order[n.name] for n in nodes if n.buffered], dtype=np.int64)

    start_arr = np.zeros((B, tab.sent_size), dtype=np.int32)
    for n in nodes:
        if n.buffered:
            o = tab.sent_off[n.name]
            start_arr[:, o:o + math.prod(n.out_shape)] = start[n.name].reshape(B, -1).numpy()
    u = torch.cat(u0).to(torch.int32).expand(B, -1).contiguous() if u0 else torch.zeros((B, 0), dtype=torch.int32)
    v = torch.cat(v0).to(torch.int32).expand(B, -1).contiguous() if v0 else torch.zeros((B, 0), dtype=torch.int32)
    rec_u = np.empty((T, B, tab.rec_size), dtype=np.int32)
    rec_v = np.empty((T, B, tab.rec_size), dtype=np.int32)
    rec_s = np.empty((T, B, tab.rec_size), dtype=np.int8)
    src = tab.src[0].astype(np.int32, copy=False) if len(tab.src) == 1 else \
        np.concatenate(tab.src).astype(np.int32, copy=False) if tab.src else np.zeros(1, np.int32)
    w16 = _joined(net, "w16", tab.w16, np.int16)
    w32 = _joined(net, "w32", tab.w32, np.int32)
    bias = np.concatenate(tab.bias) if tab.bias else np.zeros(1, np.int64)
    final = _kernel()(P, zero_ops, buffered, T, B, start_arr, src, u.numpy(), v.numpy(), bias, w16, w32, idx,
                      rec_u, rec_v, rec_s, tab.sent_size, tab.scratch)

    records: Dict[str, Dict[str, torch.Tensor]] = {}
    for name, (o, size) in rec_at.items():
        shape = (T, B) + net.nodes[name].out_shape
        records[name] = {k: torch.from_numpy(arr[:, :, o:o + size].reshape(shape))
                         for k, arr in (("u", rec_u), ("v", rec_v), ("s", rec_s))}
    states = {name: {"u": u[:, o:o + size].reshape((B,) + net.nodes[name].out_shape),
                     "v": v[:, o:o + size].reshape((B,) + net.nodes[name].out_shape)}
              for name, (o, size) in lif_state.items()}
    final_t = torch.from_numpy(final).to(torch.int64)   # (the scheduler's buffers are int64)
    buffers = {n.name: final_t[:, tab.sent_off[n.name]:tab.sent_off[n.name] + math.prod(n.out_shape)]
               .reshape((B,) + n.out_shape) for n in nodes if n.buffered}
    return records, states, buffers
