"""lava's synapses with axonal delays: ``DelayDense`` (``PyDelayDenseModelBitAcc``) and
``DelaySparse`` (``PyDelaySparseModelBitAcc``), bit for bit.

Each keeps a buffer ``a_buff`` of shape ``(n_out, D + 1)`` (``D``, the largest delay, is fixed
when the process is made). At every step lava sends column 0, receives the spikes, shifts the
buffer one column to the left (a zero enters at column ``D``) and adds, to column ``k``, the
input weighted by the synapses of delay ``k``, scaled by ``weight_exp``. So a spike sent at step
``t`` over a synapse of delay ``d`` reaches the post-synaptic ``a_in`` at step ``t + 1 + d``
(plain Dense: ``t + 1``); a synapse whose delay exceeds ``D`` never delivers anything -- except
in a DelaySparse whose buffer is one column deep (``D = 0``), where lava uses every weight.

The two differ in integer widths only: DelayDense multiplies in int32 (each product wraps) and
sums each slot in int64; DelaySparse's sparse product sums in int32 and its scaling shifts in
int32. Both add into the int32 buffer, which wraps. A sparse delay matrix's missing entries (and
stored zeros) are delay 0, as lava reads them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import fixed_point as fp
from .emulator import DenseLayer, ProcessModel, RunContext, SparseLayer, device_plan
from .fixed_point import INT32_BOUND
from .params import whole_number

__all__ = ["DelayDenseLayer", "DelaySparseLayer"]

MAX_DELAY = 63   # lava's bit-accurate delay models refuse longer delays


def _delay_matrix(delays: Any, shape: tuple[int, int], name: str) -> torch.Tensor:
    d = delays.toarray() if hasattr(delays, "toarray") else np.asarray(delays)
    if d.dtype.kind not in "biuf":
        raise ValueError(f"{name}: delays must be whole numbers >= 0 (an int or a matrix like the weights), "
                         f"got {delays!r:.60}")
    d = np.broadcast_to(d, shape) if d.ndim == 0 else d
    if d.shape != shape:
        raise ValueError(f"{name}: delays have shape {d.shape}, the weights {shape}")
    if d.size and (np.any(d < 0) or np.any(d != np.floor(d))):
        raise ValueError(f"{name}: delays must be whole numbers >= 0")
    if d.size and d.max() > MAX_DELAY:
        raise ValueError(f"{name}: a delay of {int(d.max())} steps; lava's bit-accurate model takes at most {MAX_DELAY}")
    return torch.as_tensor(np.array(d), dtype=torch.int64)   # (a copy: a broadcast view is read-only)


class DelayDenseLayer(DenseLayer):
    """lava ``DelayDense``: Dense's weights (clipped and truncated alike) with a delay per
    synapse; ``max_delay`` is the buffer's depth ``D`` (lava: the largest delay unless given)."""

    kind = "delay_dense"
    memo_ok = False          # the buffer moves every step, whatever the input
    slot_sum_int32 = False   # DelaySparse: the sparse product sums (and shifts) in int32
    one_column_takes_all = False   # DelaySparse: a buffer of depth 1 uses every weight

    def __init__(self, name: str, weights: Any, delays: Any, *, max_delay: Any = 0, depth: Any = None,
                 **dense: Any):
        super().__init__(name, weights, **dense)
        self.delays = _delay_matrix(delays, tuple(self.weights.shape), f"{type(self).__name__} {name!r}")
        # lava's constructor: max_delay 0 (or not given) means the largest delay; ``depth``: the
        # buffer's depth as a made process holds it (from_lava), whatever its delays are now
        largest = int(self.delays.max()) if self.delays.numel() else 0
        if depth is not None:
            self.max_delay = whole_number(depth, f"{type(self).__name__} {name!r} depth") - 1
        else:
            self.max_delay = whole_number(0 if max_delay is None else max_delay,
                                          f"{type(self).__name__} {name!r} max_delay") or largest
        if not 0 <= self.max_delay <= MAX_DELAY:
            raise ValueError(f"{type(self).__name__} {name!r}: max_delay must be 0..{MAX_DELAY} (got {self.max_delay})")

    @property
    def slot_weights(self) -> torch.Tensor:
        """``((D + 1) * n_out, n_in)``: slot k holds the synapses of delay k (longer delays are
        dropped), made again when the weights or delays change."""
        def make():
            w = self.weights.to(torch.int64)
            if self.max_delay == 0 and self.one_column_takes_all:
                return w
            return torch.cat([torch.where(self.delays == k, w, 0) for k in range(self.max_delay + 1)], dim=0)

        return self.cached("slots", (self.weights, self.delays), self.max_delay, make)

    def out_bound(self, in_bound: int) -> int:
        # the slots split the synapses: what column 0 holds when sent sums every synapse once,
        # each slot's scaled sum rounded (a floor shift) separately
        b = self.acc_bound(in_bound)
        we = self.weight_exp
        return b << we if we > 0 else ((b + (1 << -we) - 1) >> -we) + self.max_delay + 1

    def start_bound(self, bound: int, left: int) -> int:
        # what lava left in the buffer is added to what lands in the same columns
        return bound + left

    def process_model(self, ctx: RunContext) -> ProcessModel:
        return _DelayModel(self, ctx)

    def sent_first(self, batch: int) -> torch.Tensor:
        # the whole a_buff (n_out, D + 1) is the state; its column 0 goes out first
        return self.buffer_at_start(batch, self.out_shape + (self.max_delay + 1,))[..., 0].clone()


class DelaySparseLayer(DelayDenseLayer):
    """lava ``DelaySparse``: DelayDense's buffer on a sparse matrix (sign mode decided on the
    matrix as given, as :class:`~snnsim.loihi.emulator.SparseLayer`), int32 slot sums."""

    kind = "delay_sparse"
    slot_sum_int32 = True
    # lava's get_delay_wgts_mat returns the weights as they are when max_delay is 0, whatever the
    # delays (changed after the process was made); deeper buffers drop longer delays as DelayDense
    one_column_takes_all = True

    def __init__(self, name: str, weights: Any, delays: Any, **dense: Any):
        w, dense = SparseLayer.as_given(weights, dense)
        super().__init__(name, w, delays, **dense)


class _DelayModel(ProcessModel):
    """The buffer of one run, ``(B, n_out, D + 1)`` int32 values held in int64."""

    def __init__(self, n: DelayDenseLayer, ctx: RunContext):
        self.n, self.records = n, {}
        self.depth = n.max_delay + 1
        in_bound = ctx.in_bounds[n.name] if n.graded else 1
        # lava's products are int32: they wrap only when a weight times an input can pass 2**31
        self.products_wrap = not n.slot_sum_int32 and n.graded and \
            int(n.weights.abs().max() if n.weights.numel() else 0) * in_bound >= INT32_BOUND
        slots = n.slot_weights
        self.slots = slots.to(ctx.device) if self.products_wrap else None
        self.plan = device_plan(n, "plan", (slots,), in_bound, lambda: fp.prepare_dense(slots, in_bound), ctx.device)
        self.buffer = n.buffer_at_start(ctx.batch, n.out_shape + (self.depth,)).to(ctx.device)

    def _slot_sums(self, s: torch.Tensor) -> torch.Tensor:
        """(B, D + 1, n_out): each slot's weighted input sum, in lava's integer widths."""
        n = self.n
        if self.products_wrap:   # each int32 product wraps, the sum is int64
            acc = fp.wrap32(s.to(torch.int64).unsqueeze(1) * self.slots.unsqueeze(0)).sum(-1)
        else:
            dt = self.plan["dtype"]
            acc = (s.to(dt) @ self.plan["wt"]).to(torch.int64) if dt is not None else \
                fp.int_matmul(s.to(torch.int64), self.plan["wt"])
        if n.slot_sum_int32:
            acc = fp.wrap32(acc)
        # (DelayDense's int64 slot sums shift in int64; DelaySparse's int32 ones in int32)
        acc = fp.shift_by_weight_exp(acc, n.weight_exp, int32_shift=n.slot_sum_int32)
        return acc.view(s.shape[0], self.depth, -1)

    def compute(self, x):
        s = x if self.n.graded else x != 0
        acc = self._slot_sums(s)
        if acc.shape[0] != self.buffer.shape[0]:
            acc = acc.expand((self.buffer.shape[0],) + tuple(acc.shape[1:]))
        # send column 0, shift left (a zero enters at column D), add each slot's sum
        shifted = torch.cat([self.buffer[..., 1:], torch.zeros_like(self.buffer[..., :1])], dim=-1)
        self.buffer = fp.wrap32(shifted + acc.transpose(1, 2))
        return self.buffer[..., 0].clone()

    def final_state(self):
        return {"a_buff": self.buffer}
