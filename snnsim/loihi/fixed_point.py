"""Pure fixed-point functions reproducing lava-nc 0.10.0's bit-accurate models.

Every function works on integer-valued torch tensors (int64, or bool for binary spikes) and
follows the arithmetic of lava-nc's ``PyLifModelBitAcc``, ``PyDenseModelBitAcc``,
``PyConvModelFixed`` and the fixed-point ``RingBuffer`` exactly, including the places where
lava's numpy code works in int32 and therefore wraps (see ``shared/specs/loihi.md``):

* LIF: ``u`` and ``v`` are int32 arrays in lava; ``np.int32(...)`` casts after the decay,
  ``a_in << 6`` and the additions are int32 operations (two's complement wrap).
* Dense: binary input sums ``weights[:, s].sum(axis=1)`` in int64 (numpy upcasts int32 sums),
  graded input ``weights.dot(s)`` stays int32; the result travels through an int32 channel.
* Conv: scipy ``convolve2d`` in float64, cast to int32, then ``signed_clamp(x, 24)``.

The fast paths (``exact_int32=False``) drop the int32 wrap emulation; callers use them only
where a static bound proves that no int32 overflow can happen.
"""
from __future__ import annotations

import contextlib
import functools
import warnings

from enum import IntEnum
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
ACT_SHIFT = 6                    # a_in << 6
VTH_SHIFT = 6                    # vth << 6
UV_BITS = 24
MAX_UV = 1 << (UV_BITS - 1)      # M = 2**23
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT32_BOUND = 1 << 31           # |INT32_MIN|: a bound on |value| this large says nothing (any int32)

# Largest integer magnitude below which float arithmetic of that width is exact.
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


class SignMode(IntEnum):
    """Values of ``lava.utils.weightutils.SignMode``."""

    NULL = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


# --------------------------------------------------------------------------- integer helpers
def wrap_signed(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's complement wrap of an int64 tensor into ``[-2**(bits-1), 2**(bits-1))``."""
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """What an int32 numpy array makes of an int64 value (cast or overflowing arithmetic)."""
    return wrap_signed(x, 32)


def wrap24(x: torch.Tensor) -> torch.Tensor:
    """lava's ``signed_clamp(x, bits=24)``: wrap into ``[-2**23, 2**23)``."""
    return wrap_signed(x, 24)


def rtz(x: torch.Tensor, shift: int = DECAY_SHIFT) -> torch.Tensor:
    """``sign(x) * (|x| >> shift)``: division by ``2**shift`` rounding toward zero (int64)."""
    # Negative values get 2**shift - 1 added before the arithmetic (floor) shift: that is the
    # ceiling, i.e. rounding toward zero. In place on a fresh tensor to save allocations.
    y = x.clone() if not x.is_floating_point() else x.to(torch.int64)
    y.add_((y >> 63) & ((1 << shift) - 1))
    return y.bitwise_right_shift_(shift)


def _rtz_inplace(y: torch.Tensor, shift: int = DECAY_SHIFT) -> torch.Tensor:
    y.add_((y >> 63) & ((1 << shift) - 1))
    return y.bitwise_right_shift_(shift)


def np_shift_int32(x: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """numpy's ``where(exp >= 0, left_shift(x, exp), right_shift(x, -exp))`` on int32 arrays.

    numpy defines shifts by the full width or more: a left shift gives 0, a right shift gives
    0 or -1 (the sign). The left-shifted value wraps to int32.
    """
    x = wrap32(x.to(torch.int64))
    exp = exp.to(torch.int64)
    left = torch.where(exp >= 32, torch.zeros_like(x), wrap32(x << exp.clamp(0, 31)))
    right_amt = (-exp).clamp(0, 63)
    right = torch.where(right_amt >= 32, torch.where(x < 0, -torch.ones_like(x), torch.zeros_like(x)),
                        x >> right_amt.clamp(0, 31))
    return torch.where(exp >= 0, left, right)


def as_int32_values(x: Any, what: str = "values") -> torch.Tensor:
    """Values as lava stores them in an int32 Var (``var[:] = init``): truncate, then wrap.
    Anything but numbers (None, text, objects) is a one-line ValueError naming ``what``."""
    if not torch.is_tensor(x):
        a = np.asarray(x.toarray() if hasattr(x, "toarray") else x)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{what} must be numbers, got {type(x).__name__} {str(x)[:60]!r}")
        x = a
    t = torch.as_tensor(x)
    if t.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32):
        return t.to(torch.int64)
    if t.is_floating_point():
        t = torch.trunc(t.to(torch.float64)).to(torch.int64)
    else:
        t = t.to(torch.int64)
    if t.numel():
        lo, hi = torch.aminmax(t)
        if int(lo) >= INT32_MIN and int(hi) <= INT32_MAX:
            return t
    return wrap32(t)


def as_int_values(x: Any, bits: int) -> torch.Tensor:
    """Like :func:`as_int32_values` for a ``bits``-wide signed integer Var (int16, int8)."""
    t = as_int32_values(x)
    return wrap_signed(t, bits)


# --------------------------------------------------------------------------- devices
def device_of(device: Any) -> torch.device:
    """A run's device, ``'cpu'`` or ``'cuda[:N]'``. Other accelerators are refused: their float
    modes were never checked for exactness here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda' (optionally 'cuda:N'), not {device!r}")
    return dev


def require_device(dev: torch.device) -> None:
    """A one-line ValueError unless ``dev`` exists on this machine."""
    if dev.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise ValueError(f"device={str(dev)!r}: no CUDA device here (torch.cuda.is_available() is False); "
                         f"use device='cpu'")
    if (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device={str(dev)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def _precision_settings() -> list:
    """torch's per-backend float32 precision settings (torch >= 2.9: ``fp32_precision``) for the
    products a run makes: cuBLAS and oneDNN matrix products, oneDNN convolutions."""
    found = [getattr(getattr(torch.backends, b, None), op, None)
             for b, op in (("cuda", "matmul"), ("mkldnn", "matmul"), ("mkldnn", "conv"))]
    return [m for m in found if m is not None and hasattr(m, "fp32_precision")]


@contextlib.contextmanager
def no_tf32():
    """Float products kept exact for a run, on any device: the plans pick float32 / float64 only
    where every partial sum is an integer the format holds, which holds in any summation order,
    but not through reduced-precision products -- TF32 (11-bit inputs: cuBLAS / cuDNN when a
    user's ``allow_tf32`` or ``set_float32_matmul_precision('high')`` allows it), bf16 (oneDNN
    on the CPU under 'medium' or a per-backend 'bf16') -- nor through cuDNN's Winograd / FFT
    convolutions. So: float32 products at full precision ('highest', each backend 'ieee') and
    cuDNN off (torch then convolves by im2col and a cuBLAS product); every setting put back as
    it was after, whichever of torch's two precision APIs the caller used (reading the legacy
    one raises once a per-backend one was set)."""
    try:
        legacy = torch.get_float32_matmul_precision()
    except RuntimeError:
        legacy = None
    backends = _precision_settings()
    per_backend = [m.fp32_precision for m in backends]
    cudnn = torch.backends.cudnn.enabled
    torch.set_float32_matmul_precision("highest")
    for m in backends:
        m.fp32_precision = "ieee"
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = cudnn
        torch.set_float32_matmul_precision(legacy or "highest")
        for m, value in zip(backends, per_backend):
            m.fp32_precision = value


# --------------------------------------------------------------------------- CUBA LIF
def effective_bias(bias_mant: torch.Tensor, bias_exp: torch.Tensor) -> torch.Tensor:
    """``bias_mant << bias_exp`` (``>> -bias_exp`` when negative), int32 as in lava.

    ``bias_mant`` is stored by lava as int16 and ``bias_exp`` as int16; pass the stored
    values (see :func:`as_int_values`).
    """
    bias_mant, bias_exp = torch.broadcast_tensors(torch.as_tensor(bias_mant), torch.as_tensor(bias_exp))
    return np_shift_int32(bias_mant, bias_exp)


def lif_fixed_step(u: torch.Tensor, v: torch.Tensor, a_in: Optional[torch.Tensor], du: int, dv: int,
                   bias: torch.Tensor, vth_eff: int, exact_int32: bool = True
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of lava's ``PyLifModelBitAcc`` (``fixed_pt``); returns new ``(u, v, s)``.

    ``u``, ``v`` int64 tensors holding int32 values, ``a_in`` the int32-valued synaptic input
    (None for none), ``bias`` from :func:`effective_bias`, ``vth_eff = vth << 6``.
    ``exact_int32=False`` skips the int32 wrap emulation and uses a modular form of the u
    wrap; it is exact when ``|u| <= 2**23``, ``|v| < 2**24``, ``0 <= du <= 4095``,
    ``0 <= dv <= 4096``, ``|a_in| < 2**18`` and ``|bias| < 2**28`` (the emulator checks).
    """
    fu = DECAY_UNITY - (du + 1)      # ds_offset = 1: the current decays by (4095 - du)/4096
    fv = DECAY_UNITY - dv            # dm_offset = 0
    M = MAX_UV
    if exact_int32:
        uu = wrap32(_rtz_inplace(u * fu))
        if a_in is not None:
            uu = wrap32(uu + wrap32(a_in.to(torch.int64) << ACT_SHIFT))
        # lava: one conditional wrap, not a modulo
        uu = torch.where(uu > M, uu - 2 * M, torch.where(uu <= -M, uu + 2 * M, uu))
        vv = wrap32(_rtz_inplace(v * fv))
        vv = wrap32(vv + uu + bias)
    else:
        uu = _rtz_inplace(u * fu)
        if a_in is not None:
            uu.add_(a_in.to(torch.int64) << ACT_SHIFT)
        # |uu| < 3M here, where the single conditional wrap equals the modulo into (-M, M]
        uu.add_(M - 1).bitwise_and_(2 * M - 1).sub_(M - 1)
        vv = _rtz_inplace(v * fv).add_(uu).add_(bias)
    vv.clamp_(-(M - 1), M - 1)
    s = vv > vth_eff                 # strict >
    vv.masked_fill_(s, 0)            # only v resets; no refractory period
    return uu, vv, s


# --------------------------------------------------------------------------- Dense
def determine_sign_mode(weights: torch.Tensor) -> SignMode:
    """lava's ``determine_sign_mode``: EXCITATORY if min >= 0, INHIBITORY if max <= 0."""
    # compared as they are: Sparse decides on raw (possibly fractional) weights
    if float(weights.min()) >= 0:
        return SignMode.EXCITATORY
    if float(weights.max()) <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def normalize_sign_mode(sign_mode: Any) -> Optional[SignMode]:
    """Map a lava ``SignMode`` member, an int, a name or None to :class:`SignMode` (None: auto).

    lava uses ``proc_params.get('sign_mode') or determine_sign_mode(w)``: every lava SignMode
    member (NULL included) is truthy and used as given.
    """
    if sign_mode is None:
        return None
    if isinstance(sign_mode, SignMode):
        return sign_mode
    name = getattr(sign_mode, "name", None)
    if name is not None and name in SignMode.__members__:
        return SignMode[name]
    if isinstance(sign_mode, str):
        return SignMode[sign_mode.upper()]
    if isinstance(sign_mode, int):
        return SignMode(sign_mode)
    raise ValueError(f"unknown sign_mode {sign_mode!r}")


def quantize_dense_weights(weights: Any, sign_mode: Any = None, num_weight_bits: int = 8) -> torch.Tensor:
    """The weights lava's ``PyDenseModelBitAcc`` uses after its first-step quantisation.

    int32 storage (truncate toward zero), sign mode (given or determined), ``clip_weights``
    to 8 bits (MIXED [-256, 255], EXCITATORY/NULL [0, 255], INHIBITORY [-255, 0]), then
    ``truncate_weights``: ``(w >> k) << k`` with ``k = 8 - num_weight_bits + is_mixed``, on
    ``-w`` for INHIBITORY. Returns int64.
    """
    w = as_int32_values(weights)
    mode = normalize_sign_mode(sign_mode)
    if mode is None:
        mode = determine_sign_mode(w)
    mixed = int(mode == SignMode.MIXED)
    inhib = mode == SignMode.INHIBITORY
    if inhib:
        w = -w
    w = w.clamp(-256 * mixed, 255)
    k = 8 - int(num_weight_bits) + mixed
    if not 0 <= k <= 31:
        raise ValueError(f"num_weight_bits={num_weight_bits} gives a shift of {k} bits; lava needs 0..31")
    w = (w >> k) << k
    if inhib:
        w = -w
    return w


def _exact_float_dtype(bound: int) -> Optional[torch.dtype]:
    if bound < FLOAT32_EXACT:
        return torch.float32
    if bound < FLOAT64_EXACT:
        return torch.float64
    return None


def dense_bound(weights_q: torch.Tensor, in_bound: int) -> int:
    """Upper bound on ``|W @ s|`` for ``|s| <= in_bound``."""
    if weights_q.numel() == 0:
        return 0
    return int(weights_q.abs().sum(dim=1).max()) * int(in_bound)


SPARSE_SHARE = 4   # weights with at most 1 / SPARSE_SHARE of them nonzero: a sparse product too


def prepare_dense(weights_q: torch.Tensor, in_bound: int, sparse: bool = False) -> Dict[str, Any]:
    """Transposed weights in the narrowest dtype that makes ``s @ W.T`` exact; ``sparse``: the
    weights also as a CSR matrix when few are nonzero (lava's Sparse), for several inputs at once."""
    acc_bound = dense_bound(weights_q, in_bound)
    dt = _exact_float_dtype(acc_bound)
    wt = weights_q.T.contiguous()
    plan = dict(dtype=dt, wt=wt.to(dt) if dt is not None else wt, acc_bound=acc_bound)
    if sparse and dt is not None and int((weights_q != 0).sum()) * SPARSE_SHARE <= weights_q.numel():
        with warnings.catch_warnings():   # ("sparse CSR support is in beta": the product used here is not)
            warnings.simplefilter("ignore", UserWarning)
            plan["csr"] = weights_q.to(dt).to_sparse_csr()
    return plan


EVENT_SHARE = 8   # inputs nonzero in at most 1 / EVENT_SHARE of the columns: sum only their rows


def _event_sums(s: torch.Tensor, plan: Dict[str, Any]) -> Optional[torch.Tensor]:
    """``s @ W.T`` (``s``: ``(B, n_in)``) from the weight rows of the inputs nonzero in some
    sample only, as an event-driven chip does: the same products and sums as the full product
    less its zero terms, so exact in the plan's dtype; None when too many inputs are nonzero for
    it to pay."""
    active = (s[0] if s.shape[0] == 1 else s.any(0) if s.dtype == torch.bool else (s != 0).any(0)).nonzero().view(-1)
    if active.numel() * EVENT_SHARE > s.shape[1]:
        return None
    rows = plan["wt"].index_select(0, active)
    values = s.index_select(1, active)
    if s.shape[0] == 1 and (values.dtype == torch.bool or bool((values == 1).all())):
        return rows.sum(0, keepdim=True).to(torch.int64)       # one sample of spikes: a sum of rows
    if not rows.is_floating_point():   # (a plan with no exact float dtype: int64 weights)
        return int_matmul(values.to(torch.int64), rows)
    return (values.to(rows.dtype) @ rows).to(torch.int64)


INT_MATMUL_CHUNK = 256   # input rows per chunk of a summed integer product (bounds its memory)


def int_matmul(a: torch.Tensor, w: torch.Tensor, chunked: Optional[bool] = None) -> torch.Tensor:
    """``a @ w`` for int64 ``a`` (..., n_in) and ``w`` (n_in, n_out): torch's product on the CPU.
    CUDA has no integer matrix product (``addmm_cuda`` is not implemented for Long), so there
    (or with ``chunked=True``) it is a sum of broadcast products over chunks of input rows; int64
    sums wrap modulo 2**64 in any order, so both give the same values."""
    if not (a.device.type != "cpu" if chunked is None else chunked):
        return a @ w
    out = a.new_zeros(a.shape[:-1] + (w.shape[1],))
    for lo in range(0, w.shape[0], INT_MATMUL_CHUNK):
        out += (a[..., lo:lo + INT_MATMUL_CHUNK].unsqueeze(-1) * w[lo:lo + INT_MATMUL_CHUNK]).sum(-2)
    return out


def shift_by_weight_exp(acc: torch.Tensor, weight_exp: int, int32_shift: bool) -> torch.Tensor:
    """lava's ``acc << weight_exp`` (``>> -weight_exp``: a floor shift) on int64 sums;
    ``int32_shift``: the left shift is an int32 operation (it wraps), as on graded Dense sums."""
    if weight_exp > 0:
        acc = acc << weight_exp
        return wrap32(acc) if int32_shift else acc
    return acc >> -weight_exp if weight_exp < 0 else acc


def dense_apply(s: torch.Tensor, plan: Dict[str, Any], weight_exp: int, graded: bool,
                binary01: bool = False) -> torch.Tensor:
    """``PyDenseModelBitAcc``'s new buffer for input ``s`` (``(..., n_in)``), from a
    :func:`prepare_dense` plan. Binary: ``s != 0`` selects columns and the sum is exact (int64
    in lava). Graded: ``W @ s`` in int32 (wraps). Then ``acc << weight_exp`` (``>>
    -weight_exp``, a floor shift) and the int32 channel. Returns int64 ``(..., n_out)``.
    ``binary01``: the caller guarantees ``s`` holds only 0 and 1 (LIF spikes)."""
    if not graded and s.dtype != torch.bool and not binary01:
        s = s != 0
    dt = plan["dtype"]
    acc = _event_sums(s, plan) if s.dim() == 2 else None
    if acc is not None:
        pass
    elif "csr" in plan and s.dim() == 2:
        acc = (plan["csr"] @ s.to(dt).T).T.to(torch.int64)
    elif dt is None:
        acc = int_matmul(s.to(torch.int64), plan["wt"])
    else:
        acc = (s.to(dt) @ plan["wt"]).to(torch.int64)
    bound = plan["acc_bound"]
    if graded and bound > INT32_MAX:
        acc = wrap32(acc)                 # numpy int32 dot
    we = int(weight_exp)
    acc = shift_by_weight_exp(acc, we, int32_shift=graded)
    if (bound << max(we, 0)) > INT32_MAX:
        acc = wrap32(acc)                 # the int32 channel
    return acc


def dense_fixed(weights_q: torch.Tensor, s: torch.Tensor, weight_exp: int = 0, graded: bool = False,
                in_bound: Optional[int] = None) -> torch.Tensor:
    """One Dense buffer update from quantised weights (see :func:`quantize_dense_weights`)."""
    if graded:
        if in_bound is None:
            in_bound = int(s.abs().max()) if s.numel() else 0
    else:
        in_bound = 1
    return dense_apply(s, prepare_dense(weights_q, in_bound), weight_exp, graded)


# --------------------------------------------------------------------------- Conv
def _pair(x: Any) -> Tuple[int, int]:
    if type(x) is tuple and len(x) == 2 and type(x[0]) is int and type(x[1]) is int:
        return x
    if isinstance(x, (int,)) or (hasattr(x, "ndim") and getattr(x, "ndim") == 0):
        return int(x), int(x)
    x = [int(a) for a in x]
    if len(x) == 1:
        return x[0], x[0]
    if len(x) != 2:
        raise ValueError(f"expected an int or a pair, got {x}")
    return x[0], x[1]


def conv_output_shape(input_shape: Sequence[int], out_channels: int, kernel_size: Sequence[int],
                      stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tuple[int, int, int]:
    """lava's ``conv.utils.output_shape`` in (X, Y, C) layout."""
    sx, sy = _pair(stride)
    px, py = _pair(padding)
    dx, dy = _pair(dilation)
    kx, ky = int(kernel_size[0]), int(kernel_size[1])
    xo = (int(input_shape[0]) + 2 * px - dx * (kx - 1) - 1) // sx + 1
    yo = (int(input_shape[1]) + 2 * py - dy * (ky - 1) - 1) // sy + 1
    if xo < 1 or yo < 1:
        raise ValueError(f"conv output would be empty: {(xo, yo)} from input {tuple(input_shape)}")
    return xo, yo, int(out_channels)


def conv_weight_to_torch(weight_lava: torch.Tensor) -> torch.Tensor:
    """lava kernel (C_out, KX, KY, C_in/g), applied as a true convolution, to a torch
    cross-correlation kernel on a (C, X, Y) input: (C_out, C_in/g, KX, KY), flipped in X and Y."""
    return weight_lava.flip(1, 2).permute(0, 3, 1, 2).contiguous()


def conv_bound(weight_lava: torch.Tensor, in_bound: int) -> int:
    """Upper bound on ``|conv(x, w)|`` for ``|x| <= in_bound``."""
    if weight_lava.numel() == 0:
        return 0
    return int(weight_lava.abs().sum(dim=(1, 2, 3)).max()) * int(in_bound)


def prepare_conv(weight_lava: torch.Tensor, in_bound: int) -> Dict[str, Any]:
    """Torch kernel in the narrowest float dtype that makes the convolution exact."""
    acc_bound = conv_bound(weight_lava, in_bound)
    dt = _exact_float_dtype(acc_bound)
    if dt is None:
        raise NotImplementedError(
            f"conv sums may reach {acc_bound} >= 2**53, where lava's float64 scipy convolution is not exact")
    # channels-last kernel: with lava's (B, X, Y, C) input viewed as channels-last NCHW, oneDNN
    # convolves without any layout copy (and fastest, from batch 2 on)
    w = conv_weight_to_torch(weight_lava.to(dt)).contiguous(memory_format=torch.channels_last)
    return dict(dtype=dt, w=w, acc_bound=acc_bound)


def conv_apply(x: torch.Tensor, plan: Dict[str, Any], stride: Any = 1, padding: Any = 0, dilation: Any = 1,
               groups: int = 1, graded: bool = False, as_int64: bool = True,
               binary01: bool = False) -> torch.Tensor:
    """``PyConvModelFixed``'s new buffer for ``x`` of shape ``(B, X, Y, C)`` (lava layout), from
    a :func:`prepare_conv` plan: a true convolution (scipy ``convolve2d``) with
    stride/padding/dilation in (x, y) order, computed exactly, cast to int32 the way numpy
    casts floats on x86 (out of range -> INT32_MIN), wrapped to 24 bits. Returns int64
    ``(B, X', Y', C_out)`` (with ``as_int64=False`` and a bound below 2**23, the exact float
    result, skipping a conversion). ``binary01``: the caller guarantees ``x`` holds only 0
    and 1 (LIF spikes), so it is used as it is."""
    if not graded and x.dtype != torch.bool and not binary01:
        x = x != 0
    dt = plan["dtype"]
    # torch's (H, W) are lava's (X, Y): the (B, X, Y, C) input is a channels-last NCHW tensor
    xin = x.to(dt, memory_format=torch.contiguous_format).permute(0, 3, 1, 2)
    out = F.conv2d(xin, plan["w"], stride=_pair(stride), padding=_pair(padding),
                   dilation=_pair(dilation), groups=int(groups))
    bound = plan["acc_bound"]
    out = out.permute(0, 2, 3, 1)
    if not as_int64 and bound < MAX_UV:
        return out.contiguous()
    out = out.to(torch.int64, memory_format=torch.contiguous_format)
    if bound > INT32_MAX:
        out = torch.where((out > INT32_MAX) | (out < INT32_MIN), torch.full_like(out, INT32_MIN), out)
    if bound >= MAX_UV:
        out = wrap24(out)
    return out


def conv_lava(x: torch.Tensor, weight_lava: torch.Tensor, stride: Any = 1, padding: Any = 0,
              dilation: Any = 1, groups: int = 1, graded: bool = False,
              in_bound: Optional[int] = None) -> torch.Tensor:
    """One Conv buffer update for ``x`` ``(B, X, Y, C)`` and a lava kernel
    ``(C_out, KX, KY, C_in/groups)``; see :func:`conv_apply`."""
    if graded:
        if in_bound is None:
            in_bound = int(x.abs().max()) if x.numel() else 0
    else:
        in_bound = 1
    plan = prepare_conv(weight_lava.to(torch.int64), in_bound)
    return conv_apply(x, plan, stride, padding, dilation, groups, graded)


# --------------------------------------------------------------------------- fused LIF kernel
# One compiled pass over flat arrays, in place: ``u``, ``v`` int32 state of B * N neurons,
# ``a`` the input (any numeric dtype holding integers), ``bias`` int64 of N, ``s`` bool
# spikes; the new u, v, s are also written to the record rows ``ur``, ``vr``, ``sr``. Two
# branch-free specialisations (numba vectorises them; a runtime flag in the loop would not),
# made from one source: ``exact_int32`` is closed over, and numba compiles a closed-over value
# as a constant, so each kernel keeps only its own branch. numba's cache keys a closure by its
# cell values as well as its code, so the two kernels cache apart.
def _lif_fused_py(exact_int32: bool):
    """The fused LIF kernel as plain Python for numba. ``exact_int32``: with lava's int32
    wraps (np.int32 casts, int32 shift and additions); without them it is valid only where
    :meth:`LIFPopulation.fast_ok` holds."""

    def lif_fused(u, v, a, bias, fu, fv, vth, s, ur, vr, sr):  # pragma: no cover - numba
        M = 8388608     # 2**23: u wraps to 24 bits, v saturates at +-(M - 1)
        H = 2147483648  # 2**31 and 2**32 - 1: ((x + H) & W) - H is x wrapped to int32
        W = 4294967295
        N = bias.shape[0]
        B = u.shape[0] // N
        for b in range(B):
            o = b * N
            for j in range(N):
                i = o + j
                x = np.int64(u[i]) * fu
                q = np.abs(x) >> 12
                d = q if x >= 0 else -q
                act = np.int64(a[i]) << 6
                if exact_int32:
                    d = ((d + H) & W) - H
                    act = ((act + H) & W) - H
                    d = ((d + act + H) & W) - H
                else:
                    d = d + act
                d = d - 2 * M if d > M else d
                d = d + 2 * M if d <= -M else d
                y = np.int64(v[i]) * fv
                r = np.abs(y) >> 12
                e = r if y >= 0 else -r
                if exact_int32:
                    e = ((e + H) & W) - H
                    e = ((e + d + bias[j] + H) & W) - H
                else:
                    e = e + d + bias[j]
                e = min(max(e, -(M - 1)), M - 1)
                sp = e > vth
                e = 0 if sp else e
                u[i] = d
                v[i] = e
                s[i] = sp
                ur[i] = d
                vr[i] = e
                sr[i] = sp

    return lif_fused


_lif_fused_fast_py = _lif_fused_py(exact_int32=False)
_lif_fused_exact_py = _lif_fused_py(exact_int32=True)


def numba_compile(*functions: Any, **options: Any) -> tuple | None:
    """numba.njit(cache=True, nogil=True, **options) of each function, or None where numba
    is missing (the torch paths are equally exact, only slower)."""
    try:
        import numba
    except Exception:  # pragma: no cover - numba is in requirements.lock
        return None
    jit = numba.njit(cache=True, nogil=True, **options)
    return tuple(jit(f) for f in functions)


@functools.cache
def lif_fused_kernel() -> Any:
    """``(fast, exact)`` numba-compiled fused LIF kernels, or None where numba is missing."""
    return numba_compile(_lif_fused_fast_py, _lif_fused_exact_py, error_model="numpy")


def lif_fused_step(u: torch.Tensor, v: torch.Tensor, a_in: Optional[torch.Tensor], du: int, dv: int,
                   bias: torch.Tensor, vth_eff: int, exact_int32: bool = True, s: Optional[torch.Tensor] = None,
                   records: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
    """:func:`lif_fixed_step` as one compiled pass, in place on contiguous int32 ``u``/``v`` of
    shape ``(B, *shape)`` (``bias`` of ``shape``); returns the bool spikes (into ``s`` if
    given) and, with ``records = (u_row, v_row, s_row)``, writes the new values there too."""
    kernels = lif_fused_kernel()
    if kernels is None:
        raise RuntimeError("lif_fused_step needs numba")
    if u.dtype != torch.int32 or v.dtype != torch.int32 or not (u.is_contiguous() and v.is_contiguous()):
        raise ValueError("lif_fused_step works in place on contiguous int32 u and v")
    if s is None:
        s = torch.empty(u.shape, dtype=torch.bool)
    if a_in is None:
        a = torch.zeros(u.shape, dtype=torch.int8)
    else:
        a = a_in.expand(u.shape).contiguous()
        if a.dtype == torch.bool:
            a = a.view(torch.uint8)
    if records is None:
        records = (torch.empty_like(u), torch.empty_like(v), torch.empty(u.shape, dtype=torch.int8))
    vth = max(min(int(vth_eff), 1 << 62), -(1 << 62))
    kern = kernels[1] if exact_int32 else kernels[0]
    kern(u.view(-1).numpy(), v.view(-1).numpy(), a.view(-1).numpy(),
         bias.to(torch.int64).contiguous().view(-1).numpy(), DECAY_UNITY - (du + 1), DECAY_UNITY - dv, vth,
         s.view(-1).numpy(), *(r.view(-1).numpy() for r in records))
    return s
