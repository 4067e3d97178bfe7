"""The dispatch-level profiler: every aten operator, attributed to the innermost module.

The mode only classifies operands, dispatches to a formula (formulas.py) and accumulates;
module hooks keep the stack of module paths and read neuron outputs (adapters.py).

Operand classes (see DESIGN.md, "Counting semantics"):
- weight: a parameter or buffer of the model (recognised by storage, so views count), or a
  copy of one made by a layout operator (the expand + clone torch.matmul does to broadcast a
  weight); its stored size is the parameter's, not the broadcast's. Weights computed by
  arithmetic at run time (weight standardisation, parametrisations) are real operands.
- spike: with the model's declared formats (no `spike_formats=` given), a tensor is a spike
  when (a) it is spike-derived -- a spiking neuron's output, or made from spike-derived
  tensors (and scalars) by level-preserving operators: views, copies, cat / stack,
  indexing, padding, max-pooling, nearest upsampling, add / sub / neg / mul / sum /
  maximum / minimum -- and every value is an integer multiple of a declared quantum q (any
  integer level, either sign: SEW "ADD" sums, I-LIF counts, ternary -1/0/+1; levels read
  from the values); or (b) it is any other tensor whose values fit a declared format's range
  0..D (event-camera input, say) and that is not all zero. An all-zero tensor is a spike only
  when spike-derived (a silent neuron's output); a zero image or a zero membrane tensor is
  real. Integer-valued images (0..255) are real unless they fit 0..D of a declared format.
  With an explicit `spike_formats=`, rule (b) alone decides, zeros included (the old rule).
- real: anything else.

Element-wise spike operations: aten.mul with a spike operand (and another tensor, not a
scalar) and aten.sum of a spike tensor are counted as `spike_mask` (formulas.py), except
inside neuron modules (a neuron's own reset / threshold arithmetic is its update).

Attention: `F.scaled_dot_product_attention` is counted from its definition at the call
(a torch-function mode sees it before torch picks a kernel), so Q and K keep their classes
whatever path scales them; its internals are not counted again. nn.MultiheadAttention's
fused fast path is switched off while profiling so its projections and matmuls are counted.

Non-finite values: an operator output holding NaN or +inf stops profiling; -inf is accepted
only in the output of an operator that adds a mask holding -inf (addmm / baddbmm with a -inf
`self`: masked attention scores by design); a scaled_dot_product_attention output holding
NaN or inf stops it (its -inf masks never reach the output; torch 2.13 gives a fully masked
row zeros).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import warnings
import weakref
from collections import defaultdict
from typing import Iterable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .adapters import LOOKED_FOR, NeuronAdapter, count_steps, count_updates, default_adapters, find_neurons
from .formats import SpikeFormat, classify_levels, integer_levels, is_dyadic, order_formats
from .formulas import (FORMULAS, NEEDS_OUTPUT, OpCount, Operand, looks_synaptic, mul_count, op_name, scale_count,
                       sdpa_count, sum_count)
from .module_calls import ModuleCalls
from .result import MAX_UNCOUNTED_SHAPES, NeuronRecord, OpRecord, Profile

# Module types whose MACs thop (and the tracking papers' "FLOPs") count.
THOP_TYPES = (nn.modules.conv._ConvNd, nn.Linear)
# Module types whose parameters thop counts (those it hooks; only when called).
THOP_PARAM_TYPES = THOP_TYPES + (nn.modules.batchnorm._NormBase,)


class NonFiniteActivationError(FloatingPointError):
    """A module produced NaN or inf; counting garbage would be worse than stopping."""


class NoNeuronsWarning(UserWarning):
    pass


class BatchSizeError(ValueError):
    """The batch size cannot be told from the neurons' time layout or the inputs: the counts
    would be divided by a guess. Pass `batch_size=`."""


class UnseenNeuronsWarning(UserWarning):
    """Neuron modules of the model ran (their parent module did) but no hook saw them: their
    updates and spikes are missing from the counts."""


class SpikeFormatWarning(UserWarning):
    """A neuron's output does not fit the spike format its adapter declares."""


def has_non_finite(t: torch.Tensor) -> bool:
    """NaN or inf anywhere in t. A NaN/inf element makes the sum non-finite, so a finite sum
    clears the tensor in one fast reduction; only a non-finite sum (which finite values can
    also give, by overflow) is confirmed element by element."""
    total = t.sum()
    return not bool(torch.isfinite(total)) and not bool(torch.isfinite(t).all())


# Operators whose first argument is added to the product: a -inf there is a mask.
_MASKED = {aten_op.default for aten_op in (torch.ops.aten.addmm, torch.ops.aten.baddbmm, torch.ops.aten.addmv,
                                             torch.ops.aten.addbmm, torch.ops.aten._addmm_activation)}


def non_finite_kind(func, args, t: torch.Tensor) -> str | None:
    """What is wrong with an operator's non-finite output t, or None when nothing is: NaN and
    +inf always are; -inf is accepted where the operator adds a mask holding -inf."""
    if bool(torch.isnan(t).any()):
        return "NaN"
    if bool(torch.isposinf(t).any()):
        return "+inf"
    if func in _MASKED and args and isinstance(args[0], torch.Tensor) and bool(torch.isneginf(args[0]).any()):
        return None
    return "-inf"


class _CountingMode(TorchDispatchMode):
    def __init__(self, profiler: "Profiler"):
        super().__init__()
        self.p = profiler

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        action = _ACTIONS.get(func)
        if action is None:
            action = _ACTIONS[func] = _action_for(func)
        p = self.p
        if action is _SKIP or p._opaque:
            return func(*args, **(kwargs or {}))
        if action.__class__ is _Flow:
            return p._flow(action, func, args, kwargs or {})
        out = func(*args, **(kwargs or {}))
        module = p._current()
        if action is _IF_WEIGHTED:
            # no formula and not known to be free: uncounted when it reads a weight and an activation
            if p._reads_weight(args, kwargs):
                p._add_uncounted(module, func, args, kwargs)
            return out
        if action is _UNCOUNTED:
            p._add_uncounted(module, func, args, kwargs)
            return out
        result = out[0] if isinstance(out, (tuple, list)) else out
        if has_non_finite(result):
            bad = non_finite_kind(func, args, result)
            if bad is not None:
                raise NonFiniteActivationError(
                    f"module '{module or '<model>'}' produced NaN/inf ({bad}) in {op_name(func)}; "
                    f"check its input and weights")
        formula, needs_out = action
        count = formula(args, p._operand, p.weight_sparsity, result) if needs_out else \
            formula(args, p._operand, p.weight_sparsity)
        p._add_op(module, op_name(func), count)
        return out


class _FunctionMode(TorchFunctionMode):
    """Sees scaled_dot_product_attention at the call, before torch picks a kernel (a 5-D or
    masked call decomposes into scaled matmuls the dispatch mode could not tell apart)."""

    def __init__(self, profiler: "Profiler"):
        super().__init__()
        self.p = profiler

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is _SDPA and not self.p._opaque:
            return self.p._attention(func, args, kwargs or {})
        if func in _UNBATCHED_RANK_OF and args and len(args) > 1:
            # a Linear / conv called on one sample without a batch axis, by a module or by hand
            x, w = args[0], args[1]
            if isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor):
                self.p._note_input_rank(self.p._current(), x, _UNBATCHED_RANK_OF[func](w))
        return func(*args, **(kwargs or {}))


_SDPA = torch._C._nn.scaled_dot_product_attention
# functional calls that torch runs on one sample when the input has no batch axis: the rank
# that means it, from the weight (linear: [N]; conv: [C, *spatial], one less than the weight)
_UNBATCHED_RANK_OF = {torch._C._nn.linear: lambda w: 1,
                      **{f: (lambda w: w.dim() - 1) for f in (torch.conv1d, torch.conv2d, torch.conv3d,
                                                              torch.conv_transpose1d, torch.conv_transpose2d,
                                                              torch.conv_transpose3d)}}
_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_ELEMENTWISE_KINDS = ("spike_mask", "token_sum", "scale")   # never in the thop view (thop: conv / linear MACs)


# What the mode does with each operator, decided once per operator (the mode sees every
# elementwise op of every neuron, so per-call string work would dominate the overhead).
_SKIP, _UNCOUNTED = object(), object()
_IF_WEIGHTED = object()   # uncounted when a call reads a weight and an activation (see _is_free)
_ACTIONS: dict = {}


class _Flow:
    """An operator that carries spike levels or weights from its inputs to its outputs
    (spike: 'unary' | 'cat' | 'arith' | None; weight: copies a weight), counts element-wise
    spike work (count: 'mul' | 'sum' | None) or overwrites its first argument (inplace);
    `keeps`: its output holds exactly its first input's values (any layout, repeats), so spike
    levels read off the input hold for it ('pad': when the pad value is 0)."""

    __slots__ = ("spike", "weight", "count", "inplace", "keeps")

    def __init__(self, spike=None, weight=False, count=None, inplace=False, keeps=False):
        self.spike, self.weight, self.count, self.inplace, self.keeps = spike, weight, count, inplace, keeps


# Level-preserving operators, by overload packet name: the output's values are the input's
# values rearranged (layout), selected (max-pooling) or repeated (nearest upsampling).
_LAYOUT = {
    "view", "_unsafe_view", "_reshape_alias", "reshape", "alias", "expand", "expand_as", "permute", "transpose",
    "t", "numpy_T", "squeeze", "unsqueeze", "flatten", "unflatten", "select", "slice", "narrow", "split",
    "split_with_sizes", "unsafe_split", "chunk", "unbind", "unfold", "as_strided", "diagonal", "detach",
    "movedim", "swapaxes", "lift_fresh", "view_as", "clone", "contiguous", "_to_copy", "to", "index",
    "_unsafe_index", "index_select", "gather", "take", "repeat", "repeat_interleave", "roll", "flip",
    "constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
    "replication_pad2d", "replication_pad3d", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "im2col",
    "expand_copy", "permute_copy", "view_copy", "select_copy", "slice_copy", "transpose_copy", "unsqueeze_copy",
    "squeeze_copy", "t_copy", "unbind_copy", "split_copy", "alias_copy", "masked_select",
}
_POOL = {
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
    "amax", "amin", "max", "min", "neg", "abs", "relu",   # relu(k q) is 0 or k q: still a spike level
}
# Layout operators whose output holds every value of the input and no other (no subset, no
# dtype change): levels read off a spike tensor hold for these views and copies.
_KEEPS = {
    "view", "_unsafe_view", "_reshape_alias", "reshape", "alias", "expand", "expand_as", "permute", "transpose",
    "t", "numpy_T", "squeeze", "unsqueeze", "flatten", "unflatten", "detach", "movedim", "swapaxes", "view_as",
    "clone", "contiguous", "repeat", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "expand_copy",
    "permute_copy", "view_copy", "transpose_copy", "unsqueeze_copy", "squeeze_copy", "t_copy", "alias_copy",
}
_CAT = {"cat", "stack", "concat", "concatenate", "hstack", "vstack"}
_ARITH = {"add", "sub", "rsub", "mul", "maximum", "minimum"}


def _flow_for(name: str) -> _Flow | None:
    inplace = name.endswith("_") and not name.endswith("__") and not name.startswith("_")
    base = name[:-1] if inplace else name
    if base == "copy":   # dst.copy_(src): dst now holds src's values
        return _Flow(spike="copy", inplace=True)
    if base in _LAYOUT:
        keeps = not inplace and ("pad" if base == "constant_pad_nd" else base in _KEEPS)
        return _Flow(spike="unary", weight=True, inplace=inplace, keeps=keeps)
    if base in _POOL:
        return _Flow(spike="unary", inplace=inplace)
    if base in _CAT:
        return _Flow(spike="cat", weight=True)
    if base == "mul":
        return _Flow(spike="arith", count="mul", inplace=inplace)
    if base == "div":   # x / w is an element-wise product too (with 1 / w); no spike levels pass through
        return _Flow(count="mul", inplace=inplace)
    if base in _ARITH:
        return _Flow(spike="arith", inplace=inplace)
    if base == "sum":
        return _Flow(spike="unary", count="sum")
    if inplace:
        return _Flow(inplace=True)   # any other in-place op: its first argument is no longer what it was
    return None


def _action_for(func):
    if func in FORMULAS:
        return (FORMULAS[func], False)
    if func in NEEDS_OUTPUT:
        return (NEEDS_OUTPUT[func], True)
    if looks_synaptic(func):
        return _UNCOUNTED
    flow = _flow_for(op_name(func))
    return flow if flow is not None else _skip_or_check(func)


# Operators that take a weight and an activation without multiplying-and-accumulating them
# over a weight matrix: elementwise (by tag), views and in-place updates (by schema), reductions,
# norms, data movement, lookups by index, random ops. Any other operator without a formula that
# reads a weight and an activation is listed as uncounted (never a silent zero).
_FREE_NAME_PARTS = (
    "norm", "pool", "upsample", "interp", "softmax", "dropout", "rand", "bernoulli", "normal", "uniform",
    "copy", "clone", "pad", "cat", "stack", "index", "gather", "scatter", "select", "slice", "split", "chunk",
    "unbind", "repeat", "tile", "roll", "flip", "sort", "topk", "arg", "max", "min", "sum", "mean", "var",
    "std", "logsumexp", "cumsum", "cumprod", "nonzero", "unique", "masked", "where", "fill", "zero", "ones",
    "empty", "full", "arange", "linspace", "lift", "alias", "view", "reshape", "expand", "permute",
    "transpose", "squeeze", "detach", "resize", "set_", "as_strided", "_local_scalar", "equal", "isin",
    "grid_sampler", "col2im", "im2col", "shuffle", "prelu", "clamp", "one_hot", "histc", "bucketize",
    "searchsorted", "bincount", "diag", "tril", "triu", "loss", "_to_", "to_dense", "contiguous", "sym_",
)
_FREE_TAGS = tuple(getattr(torch.Tag, t) for t in ("pointwise", "reduction", "view_copy") if hasattr(torch.Tag, t))


def _is_free(func) -> bool:
    """True for operators that cannot be synaptic (see _FREE_NAME_PARTS)."""
    if any(t in _FREE_TAGS for t in getattr(func, "tags", ())):
        return True
    schema = getattr(func, "_schema", None)
    if schema is not None and any(r.alias_info is not None for r in schema.returns):
        return True
    name = op_name(func).lower()
    return any(part in name for part in _FREE_NAME_PARTS)


def _skip_or_check(func):
    return _SKIP if _is_free(func) else _IF_WEIGHTED


def unbatched_rank(module: nn.Module) -> int | None:
    """The input rank at which torch runs this recurrent module on one sample without a batch
    axis (RNN / LSTM / GRU on [L, H], their cells on [H]: they add the axis before calling the
    kernel, so only the module call shows it; Linear and conv calls are seen as functions, see
    _UNBATCHED_RANK_OF); None for other modules."""
    if isinstance(module, nn.RNNBase):
        return 2
    if isinstance(module, nn.RNNCellBase):
        return 1
    return None


def _weightless(module: nn.Module) -> bool:
    """No parameter or weight-named buffer of 2 or more dims in the module or below it. (Read
    off each module's own dicts: parameters() costs ~10x more, and this runs per module.)"""
    for m in module.modules():
        if any(p is not None and p.dim() >= 2 for p in m._parameters.values()):
            return False
        if any(b is not None and b.dim() >= 2 and "weight" in n for n, b in m._buffers.items()):
            return False
    return True


# torch modules whose forward holds no synaptic operation: normalisations, dropout, identity
# and element-wise activations. On real inputs every operator they run is one the counting
# mode would skip anyway (norms and pointwise ops are free, an activation's output is no spike
# level), so running them outside the modes changes no count; on spike inputs they run inside
# the modes (a norm's x * scale, dropout's mask are element-wise spike operations).
_NO_SYNAPSES = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.dropout._DropoutNd,
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Softmax,
    nn.LogSoftmax, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def _runs_quietly(module: nn.Module, neuron: bool) -> bool:
    """Whether a module runs outside the counting modes: a neuron (its arithmetic is its
    update, counted from its output), a torch module of _NO_SYNAPSES, or a module whose class
    declares `no_synaptic_ops = True` (the protocol for users' norms and the like) -- each only
    when weightless (no parameter of 2 or more dims, e.g. no recurrent weight, below it)."""
    if not (neuron or isinstance(module, _NO_SYNAPSES) or getattr(type(module), "no_synaptic_ops", False) is True):
        return False
    return _weightless(module)


@contextlib.contextmanager
def _bookkeeping():
    """The profiler's own reductions are bookkeeping, not the model's: neither counting mode
    sees them (each would pay its per-operator cost for nothing)."""
    with torch._C._DisableTorchDispatch(), torch._C.DisableTorchFunction():
        yield


def _dense(t: torch.Tensor) -> bool:
    """t's elements tile a block of memory without overlap or gaps (any dim order)."""
    if t.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((st, n) for st, n in zip(t.stride(), t.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _whole_multiple(a: float, q: float) -> bool:
    """a = n * q for a whole n >= 1 (so multiples of a are multiples of q)."""
    n = a / q
    return n >= 1 and abs(n - round(n)) <= 1e-9 * n


def _shapes(args, kwargs) -> str:
    """The tensor operands' shapes of one call, e.g. '5x2x3, 16x3, 16x4'."""
    flat = tree_flatten((args, kwargs or {}))[0]
    return ", ".join("x".join(map(str, t.shape)) or "scalar" for t in flat if isinstance(t, torch.Tensor))


class _PlainCountingMode(_CountingMode):
    """The counting mode without torch's dynamo-disabling wrapper around its handler. That
    wrapper imports torch._dynamo on the first operator (about a second, the bulk of a first
    profile() call); while torch._dynamo is not loaded nothing can be compiling, so there is
    nothing for it to disable. Profiler.__enter__ picks this class only then."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False

    __torch_dispatch__ = getattr(_CountingMode.__torch_dispatch__, "__wrapped__", _CountingMode.__torch_dispatch__)


class Profiler:
    """Counts synaptic operations and neuron activity of a model's forward passes.

        with Profiler(model) as prof:
            model(x)
        profile = prof.result(batch_size=x.shape[0])
    """

    def __init__(self, model: nn.Module, spike_formats: Iterable[SpikeFormat] | None = None,
                 weight_sparsity: bool = False, adapters: list[NeuronAdapter] | None = None,
                 observers: dict | None = None):
        self.model = model
        # {neuron module name: callable(output)}: handed each output of that neuron after it is
        # counted (spike maps read during the counted pass, not a second forward)
        self.observers = dict(observers or {})
        self.weight_sparsity = weight_sparsity
        # one walk over the modules (a model of hundreds of modules pays each walk per profile)
        self._named = list(model.named_modules())
        modules = [m for _, m in self._named]
        self.neuron_modules = find_neurons(model, adapters if adapters is not None else default_adapters(model, modules),
                                           self._named)
        # readouts that emit voltages (Norse LI, ...) are neurons without spikes or a format
        self._spiking = {n: a.spiking(m) for n, (m, a) in self.neuron_modules.items()}
        declared = {a.spike_format(m) for n, (m, a) in self.neuron_modules.items() if self._spiking[n]}
        if isinstance(spike_formats, SpikeFormat):   # one format given bare
            spike_formats = [spike_formats]
        if spike_formats is not None:
            spike_formats = list(spike_formats)
            bad = next((f for f in spike_formats if not isinstance(f, SpikeFormat)), None)
            if bad is not None:
                raise TypeError(f"spike_formats: {bad!r} is not a SpikeFormat; give e.g. "
                                f"[snnsim.SpikeFormat(0.25, 4)]")
        self.formats = order_formats(spike_formats if spike_formats is not None else declared)
        # Explicit formats decide by value alone (the old rule); declared ones also follow
        # spike-derived tensors beyond their range (sums, signed levels: see the docstring).
        self._explicit_formats = spike_formats is not None
        self._quanta = sorted({f.q for f in self.formats}, reverse=True)
        # id -> (weak ref, cached levels or None); the cache is (integer_levels' result, the
        # tensor's _version when read), so a value read once is not read again (see _operand)
        self._spike_tags: dict[int, tuple] = {}
        self._weight_tags: dict[int, tuple[weakref.ref, int]] = {}
        self._opaque = 0       # > 0 inside an operator counted as a whole (attention)
        self._fn_mode: _FunctionMode | None = None
        self._fastpath: bool | None = None
        # Weights are recognised by storage, so views (weight.t()) count too. The tensors are
        # kept alive here: a buffer the model replaces mid-run (snnTorch's membrane state)
        # would otherwise free its memory, and an activation allocated there would pass
        # for a weight.
        # (read off each module's own dicts: parameters() / buffers() recurse with name and
        # de-duplication bookkeeping that costs milliseconds on a tracker of ~800 modules)
        self._weight_refs = [t for m in modules for t in (*m._parameters.values(), *m._buffers.values())
                             if t is not None and t.numel()]
        self.weight_storages = {t.untyped_storage().data_ptr() for t in self._weight_refs}
        self.module_types, self.thop_modules, self.thop_param_sizes = {}, set(), {}
        for name, m in self._named:
            self.module_types[name] = type(m).__name__
            if isinstance(m, THOP_PARAM_TYPES):
                self.thop_param_sizes[name] = sum(p.numel() for p in m.parameters(recurse=False))
                if isinstance(m, THOP_TYPES):
                    self.thop_modules.add(name)
        self._called: set[str] = set()
        self._ops: dict[tuple[str, str, str], OpRecord] = {}
        # (module, op) -> [calls, distinct operand-shape signatures (the first few)]
        self._uncounted: dict[tuple[str, str], list] = {}
        self._neurons: list[NeuronRecord] = []
        self._step_of: dict[str, int] = defaultdict(int)
        self._calls_of: dict[str, int] = defaultdict(int)
        # batch sizes each neuron module's outputs imply (None: its output cannot tell)
        self._batch_votes: dict[str, set] = defaultdict(set)
        # recurrent modules by the input rank that means "no batch axis"; modules seen running a
        # Linear / conv / RNN on such an input (one sample: the batch is 1, whatever the neurons'
        # layout says) and those seen running one on a batch
        self._unbatched_rank = {n: r for n, m in self._named if (r := unbatched_rank(m)) is not None}
        self._unbatched: dict[str, tuple] = {}
        self._batched: set[str] = set()                # those modules seen called with a batch axis too
        self._inside: set[str] = set()                  # neuron modules whose forward is running
        # Modules whose insides the counting modes skip (see _runs_quietly): each of their
        # element-wise ops would pay the modes' per-operator cost for no count -- neurons and
        # norms are about half the operators of a spiking CNN.
        self._quiet_modules = {n for n, m in self._named if _runs_quietly(m, n in self.neuron_modules)}
        self._quiet: list = []                           # [module name, guards] while one runs
        # (storage address, classify?) -> (weak ref, _version, dtype, levels): see _read_values
        self._value_cache: dict[tuple[int, bool], tuple] = {}
        self._watched: list[tuple[nn.Module, str]] = []  # (module, method) watched for bypasses
        self._off_format: dict[str, list] = {}           # neuron -> values seen outside its format
        self._unseen_warned: set[str] = set()
        # which module is running (the module half of the operator tracer the mapper shares)
        self._calls = ModuleCalls(self._named, self._enter_module, self._exit_module, self._abort_module)
        self._stack = self._calls.stack
        self._mode: _CountingMode | None = None
        if not self.neuron_modules and spike_formats is None:
            warnings.warn(
                "no spiking neurons recognised and no spike_formats given; looked for: "
                + "; ".join(LOOKED_FOR) + ". Every operand counts as real-valued (MACs).",
                NoNeuronsWarning, stacklevel=3)

    # ------------------------------------------------------------------ hooks
    def _current(self) -> str:
        stack = self._stack
        return stack[-1] if stack else ""

    def _install(self) -> None:
        self._calls.install()
        for name, (module, adapter) in self.neuron_modules.items():
            for method in adapter.bypass_methods(module):
                self._watch(name, module, adapter, method)

    def _enter_module(self, name: str, args=(), kwargs=None) -> None:
        self._called.add(name)
        rank = self._unbatched_rank.get(name)
        if rank is not None and args and isinstance(args[0], torch.Tensor):
            self._note_input_rank(name, args[0], rank)
        neuron = name in self.neuron_modules
        if neuron:
            self._inside.add(name)
        # a norm / activation / declared module runs quietly only on real inputs: on spikes its
        # products (a norm's x * scale, dropout's mask) are element-wise spike operations
        if name in self._quiet_modules and not self._quiet and (neuron or not self._spike_input(args, kwargs)):
            guard = _bookkeeping()
            guard.__enter__()
            self._quiet = [name, guard]

    def _note_input_rank(self, name: str, x: torch.Tensor, rank: int) -> None:
        """Evidence for infer_batch_size: `name` ran a Linear / conv / RNN on x, which is one
        sample without a batch axis when its rank is `rank`, a batch when it is higher."""
        if x.dim() > rank:
            self._batched.add(name)
        elif x.dim() == rank and name not in self._unbatched and self._weight_numel(x) is None:
            # (a parameter fed to a Linear -- a FiLM conditioning vector -- is no sample)
            self._unbatched[name] = tuple(x.shape)

    def _spike_input(self, args, kwargs) -> bool:
        """Some tensor argument is a spike operand (by provenance or by value)."""
        with _bookkeeping():
            return any(isinstance(t, torch.Tensor) and t.numel() > 1 and self._operand(t).is_spike
                       for t in tree_flatten((args, kwargs or {}))[0])

    def _exit_module(self, name: str, args, output) -> None:
        if self._quiet and self._quiet[0] == name:
            self._end_quiet()
        neuron = self.neuron_modules.get(name)
        if neuron is not None:
            self._inside.discard(name)
            # The hook's own reductions are bookkeeping, not the model's: keep them out
            # of the counting mode (they would pay its per-operator cost for nothing).
            with _bookkeeping():
                levels = self._record_neuron(name, *neuron, output, args)
                self._observe(name, output)
            self._tag_neuron_output(*neuron, output, levels)

    def _observe(self, name: str, output) -> None:
        observer = self.observers.get(name)
        if observer is not None:
            observer(output)

    def _abort_module(self, name: str) -> None:
        """The module raised: leave it (quiet guards), recording nothing."""
        self._inside.discard(name)
        if self._quiet and self._quiet[0] == name:
            self._end_quiet()

    def _end_quiet(self) -> None:
        self._quiet[1].__exit__(None, None, None)
        self._quiet = []

    def _watch(self, name: str, module: nn.Module, adapter: NeuronAdapter, method: str) -> None:
        """Record a neuron run through `method` (SpikingJelly's functional_forward, which
        NIR-imported models call instead of forward) as if its forward had run."""
        original = getattr(module, method)

        def watched(*args, **kwargs):
            if name in self._inside:   # called from the module's own forward: its hook records it
                return original(*args, **kwargs)
            self._stack.append(name)
            self._called.add(name)
            self._inside.add(name)
            try:
                out = original(*args, **kwargs)
            finally:
                self._inside.discard(name)
                if self._stack and self._stack[-1] == name:
                    self._stack.pop()
            with _bookkeeping():
                levels = self._record_neuron(name, module, adapter, out, args)
                self._observe(name, out)
            self._tag_neuron_output(module, adapter, out, levels)
            return out

        module.__dict__[method] = watched
        self._watched.append((module, method))

    def _record_neuron(self, name, module, adapter, output, args=()):
        """Record one neuron call's per-step counts; return the spike levels read off its
        output (integer_levels' result under the declared formats, for _operand to reuse), or
        None."""
        time_dim = adapter.time_dim(module)
        spiking = self._spiking[name]
        fmt = adapter.spike_format(module)
        volts = None
        if spiking:
            source = adapter.spikes_of(output)
        else:   # a readout: the neurons it updates, from its voltages (or its input)
            volts, inp = adapter.voltages_of(output), adapter.input_of(args)
            source = volts if volts is not None and (inp is None or volts.dim() == inp.dim()) else inp
        if not isinstance(source, torch.Tensor):
            return None
        call = self._calls_of[name]
        self._calls_of[name] += 1
        t0 = self._step_of[name] if time_dim is None else 0
        levels = None
        if spiking:
            # One read of the values serves the format check, the spike count of binary
            # outputs and, cached on the tensor, the operand class of whatever reads them.
            levels = integer_levels(source, self._quanta) if source.numel() else None
            binary_q = levels[0].q if levels is not None and levels[1] <= 1 and not levels[2] \
                and is_dyadic(levels[0].q) else None
            steps = count_steps(source, fmt, time_dim, t0, binary_q, levels is not None and not levels[2])
            if any(not math.isfinite(step.value_sum) for step in steps) and has_non_finite(source):
                raise NonFiniteActivationError(f"neuron module '{name}' produced NaN/inf spikes")
            self._check_format(name, module, source, fmt, levels)
        else:
            steps = count_updates(source, volts, time_dim, t0)
        if time_dim is None:
            self._step_of[name] += 1
        self._vote_batch(name, adapter.batch_dim(module), time_dim, tuple(source.shape))
        order = len(self._neurons)
        for step in steps:
            self._neurons.append(NeuronRecord(name, type(module).__name__, adapter.name, order, call, step, fmt,
                                              tuple(source.shape), spiking))
        return levels if levels is not None and not self._explicit_formats else None

    def _check_format(self, name, module, spikes: torch.Tensor, fmt: SpikeFormat, levels=None) -> None:
        """Warn (once per module) when a neuron's output is not its declared spike format: not
        k*q for integers k (multi-level or signed multiples of q are graded / signed spikes,
        which the counts handle; anything else is not a spike). `levels`: the output's
        integer_levels under the profiler's quanta, when read already (its quantum a whole
        multiple of q settles it)."""
        if name in self._off_format or not spikes.numel():
            return
        if levels is not None and _whole_multiple(levels[0].q, fmt.q):
            return
        if fmt.fits(spikes) or integer_levels(spikes, [fmt.q]) is not None:
            return
        seen = torch.unique(spikes.detach().flatten()[: 1 << 20]).tolist()
        shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in seen]
        shown = shown if len(shown) <= 6 else shown[:4] + ["..."] + shown[-2:]
        self._off_format[name] = seen[:6]
        warnings.warn(
            f"neuron module '{name}' ({type(module).__name__}) emitted values outside its declared spike format "
            f"{fmt.describe()}: saw {', '.join(shown)}. Operands carrying them may count as real-valued (MACs); "
            "declare the format with spike_formats=[snnsim.SpikeFormat(q, levels)] if these are graded spikes.",
            SpikeFormatWarning, stacklevel=2)

    def _vote_batch(self, name: str, batch_dim: int, time_dim: int | None, shape: tuple) -> None:
        """The batch size one output's layout implies: its batch axis, when the output has at
        least one axis besides batch (and time); None when it cannot tell ([N] or [T, N])."""
        other = len(shape) - (time_dim is not None)
        self._batch_votes[name].add(int(shape[batch_dim]) if other >= 2 and batch_dim < len(shape) else None)

    # --------------------------------------------------------------- operands
    def _operand(self, t: torch.Tensor) -> Operand:
        stored = self._weight_numel(t)
        if stored is not None:
            return Operand(t, "weight", stored_numel=stored)
        if not self.formats:
            return Operand(t, "real")
        entry = None if self._explicit_formats else self._spike_tags.get(id(t))
        if entry is None or entry[0]() is not t:
            found = self._read_values(t, classify=True)
            if found is None or (found[1] == 0 and not self._explicit_formats):
                # all zeros and not from a neuron: not spikes. (Also inside a neuron's forward: a
                # recurrent layer's silent spike vector fed back there cannot be told from a zero
                # input or membrane state, so it counts dense -- an overcount, never a silent zero)
                return Operand(t, "real")
            return Operand(t, "spike", *found)
        cached = entry[1]
        found = cached[0] if cached is not None and cached[1] == t._version else self._read_values(t, classify=False)
        if found is None:
            return Operand(t, "real")
        return Operand(t, "spike", *found)

    def _read_values(self, t: torch.Tensor, classify: bool):
        """classify_levels(t, formats) (classify) or integer_levels(t, quanta), read once per
        storage and version: a tensor that covers its whole storage holds the same values,
        in any layout, as every other such view of it (an activation is often read by
        several operators, or as x and x.t()). Views of a part of a storage are read anew."""
        key = None
        if t.storage_offset() == 0:
            storage = t.untyped_storage()
            if t.numel() * t.element_size() == storage.nbytes() and _dense(t):
                key = (storage.data_ptr(), classify)
                hit = self._value_cache.get(key)
                if hit is not None and hit[1] == t._version and hit[2] == t.dtype:
                    owner = hit[0]()   # alive and on this storage still: the address is not reused
                    if owner is not None and owner.untyped_storage().data_ptr() == key[0]:
                        return hit[3]
        found = classify_levels(t, self.formats) if classify else integer_levels(t, self._quanta)
        if key is not None:
            self._value_cache[key] = (weakref.ref(t), t._version, t.dtype, found)
        return found

    # ------------------------------------------------------------ provenance
    # Spike-derived tensors and weight copies are remembered by identity (a weak reference,
    # so a freed tensor never lends its id to a new one's class), each with a value: a weight
    # copy's stored size; a spike tensor's levels (integer_levels' result) and the tensor's
    # _version when they were read, or None. In-place writes bump _version (a view's too:
    # views share their base's counter), so stale levels are never used -- except after a
    # write that torch does not version: through `.data`, or memory shared with numpy / CuPy
    # and changed there, between the neuron's output and the operator reading it (a limit of
    # the cache; such writes are unusual inside a forward pass).
    @staticmethod
    def _tag(table: dict, t: torch.Tensor, value) -> None:
        key = id(t)

        def gone(_ref, key=key, table=table):
            entry = table.get(key)
            if entry is not None and entry[0]() is None:
                del table[key]

        table[key] = (weakref.ref(t, gone), value)

    def _tag_spike(self, t: torch.Tensor, levels=None) -> None:
        self._tag(self._spike_tags, t, None if levels is None else (levels, t._version))

    def _is_spike(self, t) -> bool:
        entry = self._spike_tags.get(id(t))
        return entry is not None and entry[0]() is t

    def _cached_levels(self, t):
        """The levels cached on spike tensor t, when still valid, else None."""
        entry = self._spike_tags.get(id(t))
        if entry is None or entry[1] is None or entry[0]() is not t or entry[1][1] != t._version:
            return None
        return entry[1][0]

    def _weight_numel(self, t: torch.Tensor) -> int | None:
        """Stored elements of the weight t is (a view of / a layout copy of), else None."""
        entry = self._weight_tags.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        storage = t.untyped_storage()
        if storage.data_ptr() in self.weight_storages:
            return min(t.numel(), storage.nbytes() // max(1, t.element_size()))  # a broadcast stores less
        return None

    def _tag_neuron_output(self, module, adapter, output, levels=None) -> None:
        spiking = getattr(adapter, "spiking", None)
        if spiking is not None and not spiking(module):
            return    # a readout emitting voltages
        spikes = adapter.spikes_of(output)
        if isinstance(spikes, torch.Tensor):
            self._tag_spike(spikes, levels)

    def _in_neuron(self) -> bool:
        return bool(self._inside)

    def _flow(self, action: _Flow, func, args, kwargs):
        """Run an operator that moves spike levels / weights, or counts element-wise spike work."""
        count = None
        if action.count == "mul" and not self._in_neuron():
            count = self._mul_count(args)   # before running: mul_ overwrites its operand
        out = func(*args, **kwargs)
        if action.count == "sum" and not self._in_neuron():
            count = self._sum_count(args, out)
        self._propagate(action, args, out)
        if count is not None:
            self._add_op(self._current(), op_name(func), count)
        return out

    def _mul_count(self, args) -> OpCount | None:
        """An element-wise product's count: spike work when an operand is a spike, multiplies
        for a real activation times a weight, None (free) for anything else."""
        if len(args) < 2:
            return None
        a, b = args[0], args[1]
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.numel() <= 1 or b.numel() <= 1:
            return None   # scaling by a scalar is no element-wise product
        oa, ob = self._operand(a), self._operand(b)
        if oa.is_spike or ob.is_spike:
            return mul_count(oa, ob)
        if oa.is_weight != ob.is_weight:
            # a real activation times a weight, element by element (LayerScale, a dot product
            # written as (x * W).sum(-1)): multiplies, never a silent zero
            return scale_count(oa, ob, self.weight_sparsity)
        return None   # real x real (a gate) or weight x weight (set-up): free

    def _sum_count(self, args, out) -> OpCount | None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or x.numel() <= 1 or not isinstance(out, torch.Tensor):
            return None
        ox = self._operand(x)
        return sum_count(ox, out) if ox.is_spike else None

    def _propagate(self, action: _Flow, args, out) -> None:
        if not args:
            return
        src = args[0]
        kind = action.spike
        if kind == "unary" or kind == "copy":
            derived = self._is_spike(src if kind == "unary" else (args[1] if len(args) > 1 else None))
        elif kind == "cat":
            parts = [t for t in src if isinstance(t, torch.Tensor)] if isinstance(src, (list, tuple)) else []
            derived = bool(parts) and all(self._is_spike(t) for t in parts)
        elif kind == "arith":
            derived, any_tagged = True, False
            for v in args[:2]:
                if isinstance(v, torch.Tensor):
                    if self._is_spike(v):
                        any_tagged = True
                    elif v.numel() > 1:
                        derived = False
            derived = derived and any_tagged
        else:
            derived = False
        outs = out if isinstance(out, (tuple, list)) else (out,)
        levels = None
        if derived and action.keeps and (action.keeps is True or len(args) < 3 or args[2] == 0):
            levels = self._cached_levels(src)
        for o in outs:
            if not isinstance(o, torch.Tensor):
                continue
            if derived and (o.is_floating_point() or o.dtype == torch.bool):
                # (a repeat by 0 keeps no value: levels only for outputs at least as large)
                self._tag_spike(o, levels if levels is not None and o.numel() >= src.numel() else None)
            elif action.inplace and self._is_spike(o):
                del self._spike_tags[id(o)]
        if action.weight:
            if kind == "cat":
                parts = [t for t in src if isinstance(t, torch.Tensor)] if isinstance(src, (list, tuple)) else []
                sizes = [self._weight_numel(t) for t in parts]
                stored = sum(sizes) if parts and all(n is not None for n in sizes) else None
            else:
                stored = self._weight_numel(src) if isinstance(src, torch.Tensor) else None
            if stored is not None:
                for o in outs:
                    if isinstance(o, torch.Tensor):
                        self._tag(self._weight_tags, o, stored)
        elif action.inplace and isinstance(src, torch.Tensor):
            entry = self._weight_tags.get(id(src))
            if entry is not None and entry[0]() is src:
                del self._weight_tags[id(src)]

    def _attention(self, func, args, kwargs):
        """F.scaled_dot_product_attention, counted from its definition (formulas.sdpa_count)."""
        bound = dict(zip(_SDPA_ARGS, args))
        bound.update(kwargs)
        self._opaque += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self._opaque -= 1
        module = self._current()
        with torch._C._DisableTorchDispatch():
            result = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(result, torch.Tensor) and has_non_finite(result):
                bad = "NaN" if bool(torch.isnan(result).any()) else "inf"
                raise NonFiniteActivationError(
                    f"module '{module or '<model>'}' produced NaN/inf ({bad}) in scaled_dot_product_attention; "
                    f"check its query, key, value and mask")
            q, k, v = (self._operand(bound[n]) for n in ("query", "key", "value"))
            count = sdpa_count(q, k, v, self.weight_sparsity, enable_gqa=bool(bound.get("enable_gqa", False)))
        self._add_op(module, "scaled_dot_product_attention", count)
        return out

    def _reads_weight(self, args, kwargs) -> bool:
        """Some operand is a weight (parameter / buffer) and another a floating activation."""
        weight = activation = False
        for t in tree_flatten((args, kwargs or {}))[0]:
            if not isinstance(t, torch.Tensor):
                continue
            try:
                ptr = t.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError):
                continue
            if ptr in self.weight_storages:
                weight = True
            elif t.is_floating_point() or t.is_complex():
                activation = True
        return weight and activation

    def _add_uncounted(self, module: str, func, args, kwargs) -> None:
        """List an operator that ran without a formula, with its calls and (a few) operand shapes."""
        entry = self._uncounted.setdefault((module, op_name(func)), [0, []])
        entry[0] += 1
        if len(entry[1]) < MAX_UNCOUNTED_SHAPES:
            shapes = _shapes(args, kwargs)
            if shapes not in entry[1]:
                entry[1].append(shapes)

    def _add_op(self, module: str, op: str, count: OpCount) -> None:
        key = (module, op, count.operands)
        rec = self._ops.get(key)
        if rec is None:
            self._ops[key] = OpRecord(module, self.module_types.get(module, type(self.model).__name__), op,
                                      count, 1, module in self.thop_modules and count.kind not in _ELEMENTWISE_KINDS)
        else:
            rec.count += count
            rec.calls += 1

    # --------------------------------------------------------------- context
    def __enter__(self) -> "Profiler":
        if torch.is_inference_mode_enabled():
            # inference tensors carry no version counter and skip the Python dispatch the counter
            # runs in: every count would be a silent zero
            raise RuntimeError("snnsim.Profiler cannot count under torch.inference_mode(); run the model under "
                               "torch.no_grad() instead")
        self._install()
        # nn.MultiheadAttention / TransformerEncoderLayer's fused fast path is one opaque
        # kernel; the regular path runs the same maths as counted matmuls.
        self._fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        # without torch._dynamo loaded, skip the wrapper that would import it (see _PlainCountingMode)
        self._mode = (_CountingMode if "torch._dynamo" in sys.modules else _PlainCountingMode)(self)
        self._mode.__enter__()
        self._fn_mode = _FunctionMode(self)
        self._fn_mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._quiet:   # (a module's exit always runs; this is only a safety net)
            self._end_quiet()
        self._fn_mode.__exit__(*exc)
        self._fn_mode = None
        self._mode.__exit__(*exc)
        if self._fastpath is not None:
            torch.backends.mha.set_fastpath_enabled(self._fastpath)
            self._fastpath = None
        self._spike_tags.clear()
        self._weight_tags.clear()
        self._value_cache.clear()
        self._calls.remove()
        for module, method in self._watched:
            module.__dict__.pop(method, None)
        self._watched.clear()
        self._inside.clear()
        self._weight_refs = []
        self.weight_storages = set()

    def reset(self) -> None:
        """Forget what was counted (keeps the hooks): e.g. between template and search."""
        self._ops.clear()
        self._uncounted.clear()
        self._neurons.clear()
        self._step_of.clear()
        self._calls_of.clear()
        self._called.clear()
        self._batch_votes.clear()
        self._unbatched.clear()
        self._batched.clear()

    # ------------------------------------------------------------- results
    def infer_batch_size(self, inputs=None) -> int | None:
        """The batch size the run implies: from the neuron outputs seen, read by their
        adapters' time layout ([T, B, ...] -> axis 1; one call per step, [B, ...] -> axis 0);
        failing that, from the first input under the model's declared layout (no neurons:
        axis 0 of a [B, ...] input). A Linear, conv or RNN module called on an input without a
        batch axis (a single sample, as torch allows) says the batch is 1. Raises
        BatchSizeError when these disagree; None when nothing tells."""
        batch, source = self._batch_from_layouts(inputs)
        # a module called both ways (a side vector and a batch) says nothing about the batch
        unbatched = {n: s for n, s in self._unbatched.items() if n not in self._batched}
        if not unbatched:
            return batch
        name, shape = next(iter(unbatched.items()))
        if batch is not None and batch != 1:
            # e.g. a neuron's [C, H, W] output read as [B, ...], or a [T, N] input's T
            raise BatchSizeError(
                f"cannot tell the batch size: module '{name or '<model>'}' "
                f"({self.module_types.get(name, type(self.model).__name__)}) ran a Linear / conv / RNN on an input "
                f"without a batch axis ({list(shape)}), but {source} {batch}; pass batch_size=")
        return 1

    def _batch_from_layouts(self, inputs) -> tuple[int | None, str]:
        """infer_batch_size's reading of the neuron outputs (or the first input): the batch
        size and the words that say where it came from."""
        seen = {n: {b for b in v if b is not None} for n, v in self._batch_votes.items()}
        known = {b for v in seen.values() for b in v}
        if len(known) > 1:
            by_size: dict[int, list[str]] = defaultdict(list)
            for n, v in seen.items():
                for b in v:
                    by_size[b].append(n or "<model>")
            detail = "; ".join(f"{b} from {', '.join(sorted(ns)[:3])}" for b, ns in sorted(by_size.items()))
            raise BatchSizeError(f"cannot tell the batch size: the neuron outputs' layouts disagree ({detail}); "
                                 "pass batch_size=")
        if known:
            return known.pop(), "the neuron outputs' layouts say"
        if inputs is None:
            return None, ""
        layouts = {a.batch_dim(m) for m, a in self.neuron_modules.values()}
        if len(layouts) > 1:
            raise BatchSizeError("cannot tell the batch size: the model mixes multi-step ([T, B, ...]) and "
                                 "one-call-per-step ([B, ...]) neurons and none was seen running; pass batch_size=")
        bdim = layouts.pop() if layouts else 0
        tensors = [t for t in tree_flatten(inputs)[0] if isinstance(t, torch.Tensor)]
        if tensors and tensors[0].dim() >= bdim + 2:
            return int(tensors[0].shape[bdim]), f"axis {bdim} of the input {list(tensors[0].shape)} says"
        return None, ""

    def unseen_neurons(self) -> list[dict]:
        """Neuron modules never seen running although the module holding them ran: they ran
        through a path that skips the module call (or not at all); their updates and spikes are
        missing from the counts."""
        out = []
        for name, (module, adapter) in self.neuron_modules.items():
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            if name not in self._called and parent in self._called:
                out.append({"module": name, "module_type": type(module).__name__, "framework": adapter.name})
        return out

    def result(self, batch_size: int | None = None) -> Profile:
        """The Profile of what ran since entering (or the last reset), per sample. Without
        `batch_size` it is read from the neuron outputs' time layout; BatchSizeError when
        they cannot tell."""
        if batch_size is None:
            batch_size = self.infer_batch_size()
            if batch_size is None:
                raise BatchSizeError("cannot tell the batch size: no neuron output with a batch axis was seen; "
                                     "pass result(batch_size=)")
        thop_params = {n: k for n, k in self.thop_param_sizes.items() if n in self._called}
        unseen = self.unseen_neurons()
        fresh = [u["module"] for u in unseen if u["module"] not in self._unseen_warned]
        if fresh:
            self._unseen_warned.update(fresh)
            warnings.warn(
                f"{len(fresh)} neuron module(s) never seen running although the module holding them ran: "
                f"{', '.join(fresh[:5])}{' ...' if len(fresh) > 5 else ''}. They ran through a path that skips "
                "the module call (or not at all): their updates and spikes are missing, and the profile is marked "
                "partial (Profile.unseen_neurons).", UnseenNeuronsWarning, stacklevel=2)
        uncounted = {k: (v[0], tuple(v[1])) for k, v in self._uncounted.items()}
        per_call = {n for n, (m, a) in self.neuron_modules.items() if a.time_dim(m) is None}
        neurons = steps_by_shape(self._neurons, per_call)
        return Profile.from_records(list(self._ops.values()), neurons, uncounted,
                                    batch_size, self.formats, self.weight_sparsity, thop_params, unseen)


def steps_by_shape(records: list[NeuronRecord], per_call: set[str]) -> list[NeuronRecord]:
    """The records with the timesteps of a one-call-per-step neuron module that serves several
    layers (one snnTorch Leaky called for two layers each step, a Siamese network's template and
    search branches) counted per layer: such a module's k-th call is step k only when it serves
    one. A module is read as serving several when its outputs come in two or more shapes, each
    seen equally often and at least twice; its steps are then numbered per shape. (A module whose
    output grows every step keeps one step per call.)"""
    calls: dict[str, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, r in enumerate(records):
        if r.module in per_call:
            calls[r.module][r.shape].append(i)
    renumber: dict[int, int] = {}
    for by_shape in calls.values():
        sizes = {len(ix) for ix in by_shape.values()}
        if len(by_shape) >= 2 and len(sizes) == 1 and sizes.pop() >= 2:
            for ix in by_shape.values():
                renumber.update({i: t for t, i in enumerate(ix)})
    if not renumber:
        return list(records)
    return [dataclasses.replace(r, step=dataclasses.replace(r.step, t=renumber[i])) if i in renumber else r
            for i, r in enumerate(records)]


def profile(model: nn.Module, *inputs, spike_formats: Iterable[SpikeFormat] | None = None,
            weight_sparsity: bool = False, batch_size: int | None = None, **kwargs) -> Profile:
    """Run `model(*inputs, **kwargs)` once under the counter and return its Profile.

    Counts are per sample: divided by `batch_size`. Without it, the batch size comes from
    the neurons' time layout (a multi-step neuron's [T, B, ...] output: axis 1; a neuron
    called once per step, [B, ...]: axis 0) or, in a model without neurons, from axis 0 of a
    [B, ...] input; a Linear / conv / RNN module called on one sample without a batch axis
    makes it 1. Where it cannot be known (a 1-D input and no neurons, conflicting layouts, a
    layout that contradicts an unbatched call) BatchSizeError asks for it."""
    with torch.no_grad(), Profiler(model, spike_formats, weight_sparsity) as prof:
        model(*inputs, **kwargs)
    if batch_size is None:
        batch_size = prof.infer_batch_size(inputs)
        if batch_size is None:
            shapes = ", ".join("x".join(map(str, t.shape)) or "scalar"
                               for t in tree_flatten(inputs)[0] if isinstance(t, torch.Tensor)) or "none"
            raise BatchSizeError(f"cannot tell the batch size of {type(model).__name__}: no neuron output or input "
                                 f"has a batch axis (input shapes: {shapes}); pass batch_size=")
    return prof.result(batch_size)
