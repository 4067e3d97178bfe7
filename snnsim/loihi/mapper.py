"""Map a trained snnsim spiking model onto Loihi 2: fold BatchNorm, quantise weights, map the
graded neurons, partition neurocore vs host.

Steps (:func:`map_model`):

1. **Trace** one template pass and one search pass of the float model (eval) with a
   dispatch-level provenance tracer: every tensor carries the set of things it was summed
   from - synaptic layers (conv / linear modules, with the BatchNorm that follows folded in),
   neuron outputs (spikes), host operations, parameters added to it (position embeddings),
   the model input. Sums, views and concatenations keep the union; anything else is a host
   operation. So each neuron module learns which layers add into its input (residual streams
   included) and which host operations feed it.
2. **Partition.** A synaptic layer whose input is spikes of snnsim neurons runs on a
   neurocore (one synaptic event per nonzero graded spike); one on real values (the first
   conv on the image) runs on the host. Every other operation on the way - products of two
   dynamic tensors (Q Kᵀ, Q M), softmax, average pooling to the token grid, bilinear
   upsampling, the sigmoid of the head, box decoding - is a host operation.
3. **Fold** each BatchNorm into the conv / linear before it (ordinary BatchNorm in eval mode
   with its running statistics, or SpikeTrack's FrozenBatchNorm): w' = w * g / sqrt(var + eps),
   b' = (b - mean) * g / sqrt(var + eps) + beta.
4. **Quantise.** Neurons whose inputs add up on one membrane must see every contribution in the
   same integer unit, so the layers adding into one neuron (a residual stream: the downsample
   conv and every block output added to it) form a *scale group* (union-find over the
   neurons' contributions). A group holds its values as integers in units of 2**-s; each of
   its neurocore layers stores 8-bit signed mantissas m in [-127, 127] with the shared
   exponent e = -s - log2(q) (q: the input spike quantum, 1/4 for NI-LIF), so that
   ``m * k`` (k the graded payload 0..4) is already in the group's unit. s is the largest
   value for which the group's largest |w| still fits: max|w| / 2**e <= 127, capped to
   [2, 16]. Mantissas are round(w / 2**e), **round half to even** (torch.round), then clipped
   to +-127 (a clip happens only where the cap s >= 2 forces it). Biases become integers in
   the group's unit, floor(b * 2**s + 1/2), and add on the neuron (a neuron's bias = the sum
   of its contributing layers' biases, plus a position embedding where one is added).
5. **Neurons.** NI-LIF / I-LIF become integer graded neurons (:mod:`snnsim.loihi.graded`)
   with unit 2**s of their group, 12-bit decays round(sigmoid(decay) * 4096) (I-LIF: 1024)
   and graded payload 0..4.

:func:`fixed_point_model` turns a copy of the float model into the fixed-point model: each
mapped module's class is swapped in place (so every reference to it, e.g. SpikeTrack's
template encoder, sees it): neurocore layers compute ``conv(spikes, m) * 2**e + b_int / 2**s``
- exact in float32, since every partial sum is an integer multiple of 2**-s below 2**24 units
(checked statically) -, host layers round their float output to the unit, folded BatchNorms
become identities and neurons run the integer graded neuron. Host operations stay the float
model's own code.

:func:`extract_segment` cuts the part of the network that runs on neurocores from the input
on, up to the first neuron fed by a host operation - for SpikeTrack the stem and the first
stage: downsample1_1 (host) -> ConvBlock1_1 -> the spikes of downsample1_2 - as data for the
lava-timed emulator and the lava backend.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

from snnsim.counting.adapters import default_adapters
from snnsim.counting.module_calls import ModuleCalls
from snnsim.models.registry import weights_info

from .graded import FixedGradedNeuronMixin, decay_to_fixed, loihi_spec, neuron_kind

__all__ = ["WEIGHT_BITS", "MANT_MAX", "MappingError", "LayerSpec", "SiteSpec", "HostOp", "LoihiMapping",
           "SegmentSpec", "fold_bn", "required_exponent", "quantize_weights", "map_model",
           "fixed_point_model", "extract_segment"]

WEIGHT_BITS = 8
MANT_MAX = (1 << (WEIGHT_BITS - 1)) - 1     # 127: symmetric 8-bit signed mantissas
S_MIN, S_MAX = 2, 16                        # fractional bits of a group's integer unit
S_HOST = 10                                 # unit of neurons fed by host operations only
LAVA_ACC_LIMIT = 1 << 23                    # lava's Conv wraps its output to 24 bits

PASS_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t", "expand", "clone",
    "contiguous", "squeeze", "unsqueeze", "select", "slice", "unbind", "split", "split_with_sizes", "chunk",
    "stack", "cat", "repeat", "alias", "detach", "_to_copy", "copy_", "as_strided", "flatten", "unflatten",
    "narrow", "lift_fresh", "movedim", "expand_as", "view_as", "squeeze_", "unsqueeze_"})
ADD_OPS = frozenset({"add", "add_", "sub", "sub_"})


class MappingError(ValueError):
    """The model cannot be mapped (one line: what and why)."""


# --------------------------------------------------------------------------- folding, quantisation
def _bn_affine(bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm / FrozenBatchNorm: y = x * scale + shift."""
    rm = bn.running_mean.detach().double()
    rv = bn.running_var.detach().double()
    w = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(rm)
    b = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(rm)
    scale = w / torch.sqrt(rv + float(bn.eps))
    return scale, b - rm * scale


def fold_bn(weight: torch.Tensor, bias: Optional[torch.Tensor], bn: Optional[nn.Module]
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm into the preceding conv / linear (float64 results):
    w' = w * scale (per output channel), b' = b * scale + shift."""
    w = weight.detach().double()
    b = bias.detach().double() if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is None:
        return w, b
    scale, shift = _bn_affine(bn)
    if scale.numel() != w.shape[0]:
        raise MappingError(f"BatchNorm of {scale.numel()} channels after a layer of {w.shape[0]} outputs")
    return w * scale.reshape((-1,) + (1,) * (w.dim() - 1)), b * scale + shift


def required_exponent(max_abs: float, bits: int = WEIGHT_BITS) -> int:
    """Smallest e with max_abs / 2**e <= 2**(bits-1) - 1 (the shared exponent of 8-bit mantissas)."""
    top = (1 << (bits - 1)) - 1
    if not max_abs > 0:
        return -64
    e = math.ceil(math.log2(max_abs / top))
    while max_abs / 2.0 ** e > top:
        e += 1
    while max_abs / 2.0 ** (e - 1) <= top:
        e -= 1
    return e


def quantize_weights(w: torch.Tensor, exponent: Optional[int] = None, bits: int = WEIGHT_BITS
                     ) -> Tuple[torch.Tensor, int]:
    """8-bit mantissas and one shared exponent: m = clip(round_half_even(w / 2**e), -127, 127).
    Without ``exponent`` the smallest e for which max|w| fits is used. Returns (int64 m, e)."""
    top = (1 << (bits - 1)) - 1
    w = w.detach().double()
    if exponent is None:
        exponent = required_exponent(float(w.abs().max()) if w.numel() else 0.0, bits)
    m = torch.round(w / 2.0 ** exponent).clamp(-top, top).to(torch.int64)
    return m, int(exponent)


# --------------------------------------------------------------------------- specs
@dataclass
class LayerSpec:
    name: str
    module_type: str
    op: str                          # conv1d | conv2d | linear
    where: str                       # neurocore | host
    why: str
    weight_shape: Tuple[int, ...]
    stride: Tuple[int, ...] = ()
    padding: Tuple[int, ...] = ()
    dilation: Tuple[int, ...] = ()
    groups: int = 1
    bn: Optional[str] = None         # folded BatchNorm
    q_in: Optional[float] = None     # spike quantum of the input (neurocore)
    levels_in: int = 0
    in_sites: List[str] = field(default_factory=list)
    in_shape: Tuple[int, ...] = ()   # per sample and step (C, H, W) / (C, L) / (F,)
    out_shape: Tuple[int, ...] = ()
    branches: Dict[str, int] = field(default_factory=dict)   # calls per pass
    consumers: List[str] = field(default_factory=list)       # neuron sites its output adds into
    host_readers: List[str] = field(default_factory=list)    # host operations that read it
    group: int = -1
    scale_bits: int = 0              # s: the output's integer unit is 2**-s
    exponent: int = 0                # e: weight = m * 2**e
    weight_max: float = 0.0
    quant_rel_error: float = 0.0     # ||w - m 2**e|| / ||w||
    clipped: int = 0                 # mantissas clipped at +-127
    acc_bound: int = 0               # max |sum m k| + |bias| of one output (integer units)
    weight: Optional[torch.Tensor] = None      # folded float64 weight
    bias: Optional[torch.Tensor] = None        # folded float64 bias
    mant: Optional[torch.Tensor] = None        # int64 mantissas (neurocore)
    bias_int: Optional[torch.Tensor] = None    # int64 bias in the group's unit

    @property
    def kernel(self) -> Tuple[int, ...]:
        return tuple(self.weight_shape[2:])

    @property
    def fan_in(self) -> int:
        return int(np.prod(self.weight_shape[1:]))

    def describe(self) -> str:
        if self.op == "linear":
            return f"linear {self.weight_shape[1]}->{self.weight_shape[0]}"
        k = "x".join(str(v) for v in self.kernel)
        cin = self.weight_shape[1] * self.groups
        g = f" groups {self.groups}" if self.groups > 1 else ""
        s = "x".join(str(v) for v in self.stride)
        st = f" stride {s}" if any(v != 1 for v in self.stride) else ""
        return f"{self.op} {k} {cin}->{self.weight_shape[0]}{g}{st}"


@dataclass
class SiteSpec:
    """A neuron module (all its calls share one unit)."""

    name: str
    module_type: str
    neuron: str                      # NI-LIF | I-LIF
    q_out: float
    levels: int
    time_dim: int
    shape: Tuple[int, ...]           # neurons of one step, one sample (largest call)
    neurons: int
    calls: Dict[str, int] = field(default_factory=dict)      # calls per pass
    timesteps: Dict[str, int] = field(default_factory=dict)  # steps per call, per pass
    layers: List[str] = field(default_factory=list)          # synaptic layers adding into it
    host_inputs: List[str] = field(default_factory=list)     # host operations adding into it
    biases: List[str] = field(default_factory=list)          # parameters added to it
    model_input: bool = False
    group: int = -1
    scale_bits: int = 0
    decay12: Tuple[int, ...] = ()

    @property
    def unit(self) -> int:
        return 1 << self.scale_bits

    @property
    def reset_unit(self) -> int:
        return int(round(self.unit * self.q_out))


@dataclass
class HostOp:
    module: str
    op: str
    why: str
    inputs: List[str]
    branches: Dict[str, int] = field(default_factory=dict)


@dataclass
class LoihiMapping:
    model: str
    weights: Dict[str, Any]                   # provenance record (models.registry.weights_info)
    layers: "OrderedDict[str, LayerSpec]"
    sites: "OrderedDict[str, SiteSpec]"
    host_ops: List[HostOp]
    bn_folded: Dict[str, str]                 # BatchNorm -> the layer it is folded into
    groups: Dict[int, Dict[str, Any]]
    timesteps: int
    input_shapes: Dict[str, Tuple[int, ...]]
    notes: List[str] = field(default_factory=list)

    # ---- views
    def neurocore_layers(self) -> List[LayerSpec]:
        return [s for s in self.layers.values() if s.where == "neurocore"]

    def host_layers(self) -> List[LayerSpec]:
        return [s for s in self.layers.values() if s.where == "host"]

    def table(self) -> pd.DataFrame:
        """The partition table (mapping.csv): one row per synaptic layer, folded BatchNorm,
        neuron module and host operation."""
        rows = []
        for s in self.layers.values():
            rows.append(dict(layer=s.name, op=s.describe(), where=s.where, why=s.why, kind="synaptic",
                             module_type=s.module_type, group=s.group, scale_bits=s.scale_bits,
                             exponent=s.exponent if s.where == "neurocore" else None,
                             weight_bits=WEIGHT_BITS if s.where == "neurocore" else None,
                             weight_max=s.weight_max, quant_rel_error=s.quant_rel_error if s.where == "neurocore"
                             else None, fan_out_sites=len(s.consumers), bn_folded=s.bn or "",
                             passes="+".join(sorted(s.branches))))
            if s.bn:
                rows.append(dict(layer=s.bn, op="batch_norm", where=s.where,
                                 why=f"folded into {s.name}: w' = w g / sqrt(var + eps), b' = (b - mean) g / "
                                     f"sqrt(var + eps) + beta (eval statistics)", kind="batchnorm",
                                 module_type="BatchNorm", group=s.group, scale_bits=s.scale_bits,
                                 passes="+".join(sorted(s.branches))))
        for s in self.sites.values():
            parts = []
            if s.layers:
                parts.append(f"adds {len(s.layers)} synaptic layer(s)")
            if s.host_inputs:
                parts.append(f"{len(s.host_inputs)} host input(s) injected as integer currents")
            if s.biases:
                parts.append("position embedding as a per-neuron bias")
            dyn = ("stateless (T = 1: restarts every frame)" if max(s.timesteps.values() or [1]) == 1 else
                   f"{max(s.timesteps.values())} steps per frame, 12-bit decays {list(s.decay12[:2])}")
            rows.append(dict(layer=s.name, op=f"{s.neuron} -> graded neuron (payload 0..{s.levels})",
                             where="neurocore",
                             why=(f"integer graded neuron, unit 2^{s.scale_bits}, 24-bit state, round half to even; "
                                  f"the level travels as a Loihi 2 graded-spike payload; {dyn}; "
                                  + "; ".join(parts)),
                             kind="neuron", module_type=s.module_type, group=s.group, scale_bits=s.scale_bits,
                             neurons=s.neurons, passes="+".join(sorted(s.calls))))
        for h in self.host_ops:
            rows.append(dict(layer=h.module or "<model>", op=h.op, where="host", why=h.why, kind="host-op",
                             passes="+".join(sorted(h.branches))))
        cols = ["layer", "op", "where", "why", "kind", "module_type", "group", "scale_bits", "exponent",
                "weight_bits", "weight_max", "quant_rel_error", "fan_out_sites", "bn_folded", "neurons", "passes"]
        return pd.DataFrame(rows).reindex(columns=cols)

    def summary(self) -> Dict[str, Any]:
        nc = self.neurocore_layers()
        return {
            "model": self.model, "weights": self.weights, "timesteps": self.timesteps,
            "synaptic_layers": len(self.layers), "neurocore_layers": len(nc),
            "host_layers": [s.name for s in self.host_layers()],
            "neuron_modules": len(self.sites), "host_operations": len(self.host_ops),
            "batchnorms_folded": len(self.bn_folded), "scale_groups": len(self.groups),
            "weight_bits": WEIGHT_BITS, "mantissa_range": [-MANT_MAX, MANT_MAX],
            "rounding": "weights: round half to even, clip to +-127; biases and host currents: floor(x 2^s + 1/2); "
                        "neuron levels: round half to even",
            "max_quant_rel_error": max([s.quant_rel_error for s in nc], default=0.0),
            "mean_quant_rel_error": float(np.mean([s.quant_rel_error for s in nc])) if nc else 0.0,
            "clipped_mantissas": int(sum(s.clipped for s in nc)),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- the tracer
_SYN_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)


def _is_bn(m: nn.Module) -> bool:
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return True
    return (type(m).__name__ == "FrozenBatchNorm" and hasattr(m, "running_mean") and hasattr(m, "running_var"))


class _Mode(TorchDispatchMode):
    def __init__(self, tracer: "_Tracer"):
        super().__init__()
        self.tr = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tr = self.tr
        if tr.opaque:
            return out
        name = func.overloadpacket.__name__
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        tags: Set[tuple] = set()
        for t in tensors:
            tags |= tr.tags_of(t)
        dynamic = {g for g in tags if g[0] != "param"}
        if name in PASS_OPS:
            new = tags
        elif name in ADD_OPS:
            new = {("bias", g[1]) if g[0] == "param" else g for g in tags}
        elif not dynamic:
            new = tags            # arithmetic on constants only
        else:
            module = tr.stack[-1] if tr.stack else _infer_module(dynamic, tr.modules)
            tr.record_host(module, name, dynamic)
            new = {("host", module, name)}
        for o in tree_flatten(out)[0]:
            if isinstance(o, torch.Tensor):
                tr.tags[o] = frozenset(new)
        return out


def _infer_module(tags: Set[tuple], modules: Dict[str, nn.Module]) -> str:
    """For an operation called outside any module's __call__ (a module method such as
    Retriever.forward_cached): the innermost non-container module around the producers of its
    inputs (a host result's own module; a layer's or neuron's enclosing block)."""
    def owner(name: str) -> str:
        parts = name.split(".")
        while parts:
            parts = parts[:-1]
            m = modules.get(".".join(parts))
            if m is not None and not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
                return ".".join(parts)
        return ""

    cands = set()
    for g in tags:
        if g[0] == "host" and g[1]:
            cands.add(g[1].split(" ")[0])
        elif g[0] in ("spike", "layer") and g[1]:
            cands.add(owner(g[1]))
    cands.discard("")
    if not cands:
        return ""
    parts = [c.split(".") for c in sorted(cands)]
    common: List[str] = []
    for col in zip(*parts):
        if len(set(col)) != 1:
            break
        common.append(col[0])
    name = ".".join(common)
    m = modules.get(name)
    if name and (m is None or isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))):
        name = owner(name + ".x")
    return f"{name} (inferred)" if name else ""


class _Tracer:
    def __init__(self, model: nn.Module):
        self.model = model
        self.tags = WeakTensorKeyDictionary()
        self.params: Dict[int, str] = {}
        for n, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.numel():
                self.params.setdefault(t.untyped_storage().data_ptr(), n)
        self.kinds: Dict[str, str] = {}
        self.modules: Dict[str, nn.Module] = dict(model.named_modules())
        self.adapters = default_adapters(model)          # neurons map through their adapters' protocol
        self._formats: Dict[str, Any] = {}
        for n, m in self.modules.items():
            if neuron_kind(m, self.adapters) is not None:
                self.kinds[n] = "neuron"
            elif isinstance(m, _SYN_TYPES):
                self.kinds[n] = "syn"
            elif _is_bn(m):
                self.kinds[n] = "bn"
        # which module is running: the module half of the operator tracer the Profiler shares
        self.calls = ModuleCalls(self.modules.items(), self._enter, self._leave, self._abort)
        self.stack = self.calls.stack
        self.opaque = 0
        self.branch = "search"
        self.layer_calls: Dict[str, List[dict]] = defaultdict(list)
        self.neuron_calls: Dict[str, List[dict]] = defaultdict(list)
        self.bn_calls: Dict[str, List[dict]] = defaultdict(list)
        self.host: "OrderedDict[Tuple[str, str, tuple], dict]" = OrderedDict()
        self.readers: Dict[str, Set[str]] = defaultdict(set)     # layer -> host ops reading it
        self._pending: Dict[str, List[Set[tuple]]] = defaultdict(list)

    def format_of(self, name: str):
        """The spike format a neuron module's adapter declares (found once per module)."""
        fmt = self._formats.get(name)
        if fmt is None:
            m = self.modules[name]
            adapter = next(a for a in self.adapters if a.matches(m))
            fmt = self._formats[name] = adapter.spike_format(m)
        return fmt

    def tags_of(self, t: torch.Tensor) -> Set[tuple]:
        g = self.tags.get(t)
        if g is not None:
            return set(g)
        if t.numel():
            name = self.params.get(t.untyped_storage().data_ptr())
            if name is not None:
                return {("param", name)}
        return set()

    def record_host(self, module: str, op: str, dynamic: Set[tuple]) -> None:
        kinds = tuple(sorted({g[0] for g in dynamic}))
        rec = self.host.setdefault((module, op, kinds), {"inputs": set(kinds), "branches": defaultdict(int)})
        rec["branches"][self.branch] += 1
        for g in dynamic:
            if g[0] == "layer":
                self.readers[g[1]].add(f"{module or '<model>'}:{op}")

    def install(self) -> None:
        self.calls.install()

    def remove(self) -> None:
        self.calls.remove()

    def _enter(self, name: str, args, kwargs) -> None:
        kind = self.kinds.get(name)
        if kind is None:
            return
        self.opaque += 1                 # the checks below are not the model's operations
        x = args[0] if args else None
        tags = self.tags_of(x) if isinstance(x, torch.Tensor) else set()
        if kind == "syn" and isinstance(x, torch.Tensor):
            srcs = {g[1] for g in tags}
            fits = bool(tags) and all(g[0] == "spike" for g in tags) and all(
                self.format_of(n).fits(x) for n in srcs)
            self._pending[name].append((tags, tuple(x.shape), fits))
        else:
            self._pending[name].append(tags)

    def _abort(self, name: str) -> None:
        if self.kinds.get(name) is not None:
            self.opaque -= 1
            self._pending[name].pop()

    def _leave(self, name: str, args, output) -> None:
        kind = self.kinds.get(name)
        if kind is None:
            return
        self.opaque -= 1
        pend = self._pending[name].pop()
        out = output[0] if isinstance(output, (tuple, list)) else output
        if kind == "syn":
            tags, in_shape, fits = pend
            self.layer_calls[name].append(dict(branch=self.branch, tags=tags, in_shape=in_shape,
                                               out_shape=tuple(out.shape), fits=fits))
            self.tags[out] = frozenset({("layer", name)})
        elif kind == "bn":
            self.bn_calls[name].append(dict(branch=self.branch, tags=pend))
            layers = {g for g in pend if g[0] == "layer"}
            if len(pend) == 1 and len(layers) == 1:
                self.tags[out] = frozenset(pend)
            else:
                dyn = {g for g in pend if g[0] != "param"}
                self.record_host(name, "batch_norm", dyn)
                self.tags[out] = frozenset({("host", name, "batch_norm")})
        else:
            self.neuron_calls[name].append(dict(branch=self.branch, tags=pend, shape=tuple(out.shape)))
            self.tags[out] = frozenset({("spike", name)})


def _drive(model: nn.Module, tracer: _Tracer, source: str) -> Dict[str, Tuple[int, ...]]:
    """One template pass and one search pass of a TrackerNet (or one forward of a plain module)."""
    from .finite import finite_outputs

    mode = _Mode(tracer)
    shapes: Dict[str, Tuple[int, ...]] = {}
    # the trace is not counted, so the profiler's NaN/inf check does not run here: weights
    # that overflow must stop the mapping, not quantise garbage
    with torch.no_grad(), finite_outputs(model):
        if hasattr(model, "forward_search") and hasattr(model, "example_inputs"):
            inputs = model.example_inputs(source)
            tpl, search = inputs.get("template"), inputs["search"]
            with mode:
                cache = None
                if tpl is not None:
                    tracer.tags[tpl] = frozenset({("input", "template")})
                    tracer.branch = "template"
                    cache = model.forward_template(tpl)
                    shapes["template"] = tuple(tpl.shape)
                tracer.tags[search] = frozenset({("input", "search")})
                tracer.branch = "search"
                model.forward_search(search, cache)
                shapes["search"] = tuple(search.shape)
        else:
            raise MappingError(f"{type(model).__name__} is not a tracker network (needs example_inputs / "
                               f"forward_template / forward_search)")
    return shapes


# --------------------------------------------------------------------------- host-op reasons
def _host_why(op: str, inputs: Set[str]) -> str:
    dyn = sorted(inputs)
    if op in ("bmm", "mm", "matmul", "baddbmm", "addmm", "einsum", "dot"):
        if "spike" in inputs and len(inputs) == 1:
            return ("spike x spike product (e.g. Q·Kᵀ, Kᵀ·V): both operands are dynamic; a neurocore multiplies "
                    "a spike only by a stored weight")
        return ("product of spikes and a host result (e.g. Q·M with the cached memory M = KᵀV): both operands "
                "are dynamic; a neurocore multiplies a spike only by a stored weight")
    if op in ("_softmax", "softmax", "_log_softmax"):
        return "softmax: exponentials normalised across neurons"
    if op.startswith("upsample") or op in ("_upsample_bilinear2d_aa", "grid_sampler_2d"):
        return "bilinear upsampling of a real-valued map back to the stream resolution"
    if "avg_pool" in op or op == "mean":
        return "average pooling of the real-valued residual stream to the token grid"
    if "max_pool" in op:
        return "max pooling of real values"
    if op in ("sigmoid", "sigmoid_"):
        return "sigmoid of the head outputs (nonlinear readout of integer accumulations)"
    if op in ("max", "argmax", "gather", "remainder", "div", "floor_divide", "index", "topk", "sort"):
        return "decoding of the head outputs (argmax, gather, box arithmetic)"
    if op in ("mul", "mul_"):
        return "scaling by a constant or by a host result (e.g. the attention scale, gate weights)"
    if op in ("clamp", "clamp_", "clamp_min", "clamp_max"):
        return "clamping of a host result"
    if op == "batch_norm":
        return "affine normalisation of a host value (not preceded by a foldable layer)"
    if op in ("exp", "log", "tanh", "relu", "gelu", "silu"):
        return "elementwise nonlinearity on real values"
    return f"operation on real values ({', '.join(dyn)}) with no neurocore equivalent"


# --------------------------------------------------------------------------- mapping
class _UnionFind:
    def __init__(self):
        self.parent: Dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _log2_exact(q: float) -> int:
    m, e = math.frexp(q)
    if m != 0.5:
        raise MappingError(f"spike quantum {q} is not a power of two; the integer mapping needs one")
    return e - 1


def _geometry(m: nn.Module) -> Dict[str, Any]:
    if isinstance(m, nn.Linear):
        return dict(op="linear", stride=(), padding=(), dilation=(), groups=1)
    if isinstance(m.padding, str):
        raise MappingError(f"padding='{m.padding}' is not supported by the mapper")
    op = "conv1d" if isinstance(m, nn.Conv1d) else "conv2d"
    return dict(op=op, stride=tuple(m.stride), padding=tuple(m.padding), dilation=tuple(m.dilation),
                groups=int(m.groups))


def _group_errors(nc: Sequence[LayerSpec], s: int) -> List[float]:
    errs = []
    for L in nc:
        e = -s - _log2_exact(L.q_in)
        deq = torch.round(L.weight / 2.0 ** e).clamp(-MANT_MAX, MANT_MAX) * 2.0 ** e
        nrm = float(L.weight.norm())
        errs.append(float((deq - L.weight).norm()) / nrm if nrm > 0 else 0.0)
    return errs


def _best_group_scale(nc: Sequence[LayerSpec], s0: int, extra_bits: int = 4) -> int:
    """The group's unit 2**-s: s0 makes every weight fit; a finer unit clips the largest weights
    of the layer that sets s0 but gives the group's small-weight layers more mantissa bits.
    Pick s in s0 .. s0 + extra_bits minimising the sum of squared relative weight errors of
    the group's layers (each layer counts once)."""
    best, best_cost = s0, None
    for s in range(s0, min(S_MAX, s0 + extra_bits) + 1):
        cost = sum(e * e for e in _group_errors(nc, s))
        if best_cost is None or cost < best_cost - 1e-12:
            best, best_cost = s, cost
    return best


def map_model(model: nn.Module, source: str = "golden", name: Optional[str] = None,
              clip_search: bool = True) -> LoihiMapping:
    """Trace, partition, fold and quantise a spiking tracker network (eval mode).
    ``clip_search``: let a scale group trade clipped outliers of its largest-weight layer for
    precision in its other layers (see :func:`_best_group_scale`); False: no weight is ever
    clipped."""
    model = model.eval()
    if getattr(model, "kind", "spiking") == "ann":
        raise MappingError(f"{name or type(model).__name__} is an ANN; Loihi runs spiking models")
    tracer = _Tracer(model)
    if not any(k == "neuron" for k in tracer.kinds.values()):
        raise MappingError(f"{name or type(model).__name__} has no snnsim NI-LIF / I-LIF neurons to map")
    tracer.install()
    try:
        input_shapes = _drive(model, tracer, source)
    finally:
        tracer.remove()
    modules = tracer.modules

    # ---- BatchNorm pairing
    bn_of: Dict[str, str] = {}
    bn_folded: Dict[str, str] = {}
    for bn, calls in tracer.bn_calls.items():
        srcs = {g[1] for c in calls for g in c["tags"] if g[0] == "layer"}
        if len(srcs) == 1 and all(len(c["tags"]) == 1 for c in calls):
            layer = next(iter(srcs))
            if layer in bn_of and bn_of[layer] != bn:
                raise MappingError(f"layer {layer} is followed by two BatchNorms ({bn_of[layer]}, {bn})")
            bn_of[layer] = bn
            bn_folded[bn] = layer

    # ---- sites
    sites: "OrderedDict[str, SiteSpec]" = OrderedDict()
    for n, calls in tracer.neuron_calls.items():
        m = modules[n]
        spec = loihi_spec(m, tracer.adapters)
        kind = spec["kind"]
        fmt = tracer.format_of(n)
        adapter = next(a for a in tracer.adapters if a.matches(m))
        td = int(adapter.time_dim(m) or 0)
        shape, neurons = (), 0
        calls_by: Dict[str, int] = defaultdict(int)
        steps_by: Dict[str, int] = {}
        tags: Set[tuple] = set()
        for c in calls:
            full = c["shape"]
            ax = td % len(full)
            T = full[ax]
            per = tuple(full[2:]) if ax == 0 else tuple(full[:ax]) + tuple(full[ax + 1:])
            k = int(np.prod(per))
            if k > neurons:
                neurons, shape = k, tuple(per)
            calls_by[c["branch"]] += 1
            steps_by[c["branch"]] = max(steps_by.get(c["branch"], 0), int(T))
            tags |= c["tags"]
        decay12 = tuple(decay_to_fixed(d) for d in spec["decays"])
        sites[n] = SiteSpec(
            name=n, module_type=type(m).__name__, neuron=kind, q_out=float(fmt.q), levels=int(fmt.levels),
            time_dim=td, shape=shape, neurons=neurons, calls=dict(calls_by), timesteps=steps_by,
            layers=sorted({g[1] for g in tags if g[0] == "layer"}),
            host_inputs=sorted({f"{g[1] or '<model>'}:{g[2]}" for g in tags if g[0] == "host"}
                               | {f"<spikes of {g[1]}>" for g in tags if g[0] == "spike"}),
            biases=sorted({g[1] for g in tags if g[0] == "bias"}),
            model_input=any(g[0] == "input" for g in tags), decay12=decay12)

    # ---- layers: partition, folding
    layers: "OrderedDict[str, LayerSpec]" = OrderedDict()
    consumers: Dict[str, List[str]] = defaultdict(list)
    for s in sites.values():
        for lname in s.layers:
            consumers[lname].append(s.name)
    for lname, calls in tracer.layer_calls.items():
        m = modules[lname]
        geo = _geometry(m)
        in_tags = set().union(*[c["tags"] for c in calls])
        spike_src = sorted({g[1] for g in in_tags if g[0] == "spike"})
        all_spikes = bool(in_tags) and all(g[0] == "spike" for g in in_tags)
        q_in, levels_in = None, 0
        if all_spikes:
            fmts = {tracer.format_of(s) for s in spike_src}
            if len(fmts) != 1:
                all_spikes = False
            else:
                fmt = next(iter(fmts))
                q_in, levels_in = float(fmt.q), int(fmt.levels)
                all_spikes = all(c["fits"] for c in calls)
        if all_spikes:
            where = "neurocore"
            why = (f"spike input (graded payload 0..{levels_in} from {', '.join(spike_src)}): one synaptic event "
                   f"per nonzero spike; 8-bit mantissas with the scale group's exponent")
        else:
            kinds = sorted({g[0] for g in in_tags})
            where = "host"
            if "input" in kinds:
                why = ("real-valued input (the normalised image): MACs, not synaptic events. Run on the host in "
                       "float32 and its output rounded to the next neurons' integer unit and injected as their input "
                       "current - cheaper than sending the 3-channel image as graded spikes, and the image's zero "
                       "padding stays exact")
            else:
                why = f"real-valued input ({', '.join(kinds)}): MACs on the host"
        bn = bn_of.get(lname)
        w, b = fold_bn(m.weight, getattr(m, "bias", None), modules[bn] if bn else None)
        c0 = calls[0]
        per_in = tuple(c0["in_shape"][1:])
        per_out = tuple(c0["out_shape"][1:])
        branches: Dict[str, int] = defaultdict(int)
        for c in calls:
            branches[c["branch"]] += 1
        layers[lname] = LayerSpec(
            name=lname, module_type=type(m).__name__, where=where, why=why, weight_shape=tuple(m.weight.shape),
            bn=bn, q_in=q_in, levels_in=levels_in, in_sites=spike_src, in_shape=per_in, out_shape=per_out,
            branches=dict(branches), consumers=consumers.get(lname, []), host_readers=sorted(tracer.readers[lname]),
            weight=w, bias=b, weight_max=float(w.abs().max()) if w.numel() else 0.0, **geo)

    # ---- scale groups: layers adding into the same neuron share one integer unit
    uf = _UnionFind()
    for lname in layers:
        uf.find(lname)
    for s in sites.values():
        uf.find(s.name)
        for lname in s.layers:
            uf.union(s.name, lname)
    members: Dict[str, List[str]] = defaultdict(list)
    for x in list(layers) + list(sites):
        members[uf.find(x)].append(x)
    groups: Dict[int, Dict[str, Any]] = {}
    notes: List[str] = []
    for gid, (root, mem) in enumerate(members.items()):
        nc = [layers[x] for x in mem if x in layers and layers[x].where == "neurocore"]
        if nc:
            limits = [-required_exponent(L.weight_max) - _log2_exact(L.q_in) for L in nc if L.weight_max > 0]
            s = min(limits) if limits else S_MAX
            s = max(S_MIN, min(S_MAX, s))
            if clip_search and len(nc) > 1:
                s = _best_group_scale(nc, s)
        else:
            s = S_HOST
        groups[gid] = {"members": mem, "scale_bits": s,
                       "neurocore_layers": [L.name for L in nc]}
        for x in mem:
            if x in layers:
                layers[x].group, layers[x].scale_bits = gid, s
            else:
                sites[x].group, sites[x].scale_bits = gid, s

    # ---- quantisation
    for L in layers.values():
        s = L.scale_bits
        L.bias_int = torch.floor(L.bias * 2.0 ** s + 0.5).to(torch.int64)
        if L.where != "neurocore":
            continue
        e = -s - _log2_exact(L.q_in)
        raw = torch.round(L.weight / 2.0 ** e)
        L.clipped = int((raw.abs() > MANT_MAX).sum())
        L.mant = raw.clamp(-MANT_MAX, MANT_MAX).to(torch.int64)
        L.exponent = e
        deq = L.mant.double() * 2.0 ** e
        nrm = float(L.weight.norm())
        L.quant_rel_error = float((deq - L.weight).norm()) / nrm if nrm > 0 else 0.0
        L.acc_bound = int(L.mant.abs().flatten(1).sum(1).max()) * L.levels_in + int(L.bias_int.abs().max())
        if L.acc_bound >= LAVA_ACC_LIMIT:
            notes.append(f"{L.name}: |sum m k| may reach {L.acc_bound} >= 2^23, where Loihi's 24-bit synaptic "
                         f"accumulation would wrap")
        if L.clipped and L.scale_bits == S_MIN:
            notes.append(f"{L.name}: {L.clipped} mantissa(s) clipped at +-{MANT_MAX} (scale group capped at s = {S_MIN})")

    host_ops = []
    for (module, op, _), rec in tracer.host.items():
        host_ops.append(HostOp(module=module, op=op, why=_host_why(op, rec["inputs"]), inputs=sorted(rec["inputs"]),
                               branches=dict(rec["branches"])))
    T = max([max(s.timesteps.values() or [1]) for s in sites.values()] or [1])
    return LoihiMapping(model=name or getattr(model, "registry_name", type(model).__name__),
                        weights=weights_info(model), layers=layers, sites=sites,
                        host_ops=host_ops, bn_folded=bn_folded, groups=groups, timesteps=T,
                        input_shapes=input_shapes, notes=notes)


# --------------------------------------------------------------------------- fixed-point model
class _FixedSynapseMixin:
    """Forward of a mapped conv / linear (class swapped in place)."""

    def _apply_kernel(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if isinstance(self, nn.Linear):
            return F.linear(x, w)
        return self._conv_forward(x, w, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # noqa: D401 - torch API
        if self.loihi_where == "neurocore":
            # x holds k * q exactly; sum(m k q) 2**e = sum(m k) 2**-s: exact in float32 (bound < 2**24 units)
            y = self._apply_kernel(x, self.loihi_mant) * self.loihi_out_scale
        else:
            y = self._apply_kernel(x, self.loihi_weight)
            y = torch.floor(y * self.loihi_unit + 0.5) * (1.0 / self.loihi_unit)
            if self.loihi_capture is not None:
                self.loihi_capture.append(torch.floor(self._apply_kernel(x, self.loihi_weight) * self.loihi_unit
                                                      + 0.5).detach().to(torch.int64))
        shape = (1, -1) + (1,) * (y.dim() - 2) if not isinstance(self, nn.Linear) else (-1,)
        return y + self.loihi_bias.reshape(shape)


class _FoldedBNMixin:
    def forward(self, x: torch.Tensor) -> torch.Tensor:   # noqa: D401 - torch API
        return x


_SWAPPED: Dict[Tuple[type, type], type] = {}


def _swap_class(m: nn.Module, mixin: type) -> None:
    cls = type(m)
    key = (mixin, cls)
    if key not in _SWAPPED:
        _SWAPPED[key] = type(f"Loihi{cls.__name__}", (mixin, cls), {"__module__": __name__})
    m.__class__ = _SWAPPED[key]


def fixed_point_model(model: nn.Module, mapping: LoihiMapping, copy_model: bool = True) -> nn.Module:
    """The fixed-point model: a copy of ``model`` whose mapped modules compute Loihi's integer
    arithmetic (see the module docstring). Host operations keep the float code."""
    fixed = copy.deepcopy(model) if copy_model else model
    fixed.eval()
    mods = dict(fixed.named_modules())
    for L in mapping.layers.values():
        m = mods[L.name]
        s = L.scale_bits
        _swap_class(m, _FixedSynapseMixin)
        m.loihi_where = L.where
        m.loihi_unit = float(2.0 ** s)
        m.loihi_capture = None
        m.register_buffer("loihi_bias", (L.bias_int.double() / 2.0 ** s).float(), persistent=False)
        if L.where == "neurocore":
            m.register_buffer("loihi_mant", L.mant.float(), persistent=False)
            m.loihi_out_scale = float(2.0 ** L.exponent)
        else:
            m.register_buffer("loihi_weight", L.weight.float(), persistent=False)
        if L.bn:
            _swap_class(mods[L.bn], _FoldedBNMixin)
    for S in mapping.sites.values():
        m = mods[S.name]
        _swap_class(m, FixedGradedNeuronMixin)
        m.loihi_unit = S.unit
        m.loihi_q = S.q_out
        m.loihi_levels = S.levels
        m.loihi_decay12 = S.decay12
        m.loihi_reset_unit = S.reset_unit
        m.loihi_saturated = 0
    fixed.loihi_mapping = mapping
    return fixed


# --------------------------------------------------------------------------- segment
@dataclass
class SegmentSpec:
    """The neurocore part of the network from the input on, in lava layout (X, Y, C):
    the entry is a host layer whose integer output (without bias) is injected into the
    populations in ``entry_sites``; layers are graded-input Convs."""

    model: str
    entry: str
    entry_shape: Tuple[int, int, int]                       # (X, Y, C)
    sites: "OrderedDict[str, Dict[str, Any]]"
    layers: "OrderedDict[str, Dict[str, Any]]"
    depth: int                                              # synaptic delays to the deepest site

    @property
    def settle_steps(self) -> int:
        """Steps after which every population shows the held input's result."""
        return self.depth + 1


def extract_segment(mapping: LoihiMapping) -> SegmentSpec:
    """The stem + first stage: sites reachable from the entry host layer through neurocore
    layers only, whose every input is the entry or a layer in the segment (fixpoint)."""
    entries = [L for L in mapping.layers.values() if L.where == "host" and L.consumers
               and "search" in L.branches and not L.in_sites]
    if not entries:
        raise MappingError(f"{mapping.model}: no host input layer feeding neurons; nothing to segment")
    entry = entries[0]
    if len(entry.out_shape) != 3:
        raise MappingError(f"{mapping.model}: the entry layer {entry.name} is not a 2-D convolution")
    def usable(l_: str) -> bool:
        L = mapping.layers[l_]
        return L.where == "neurocore" and L.op == "conv2d" and len(L.in_sites) == 1

    candidates = [S for S in mapping.sites.values()
                  if "search" in S.calls and not S.host_inputs and not S.biases and not S.model_input
                  and max(S.timesteps.values()) == 1 and S.layers
                  and all(l_ == entry.name or usable(l_) for l_ in S.layers)]
    sites: Set[str] = set()
    changed = True
    while changed:
        changed = False
        for S in candidates:
            if S.name not in sites and all(l_ == entry.name or mapping.layers[l_].in_sites[0] in sites
                                           for l_ in S.layers):
                sites.add(S.name)
                changed = True
    layers: Set[str] = {l_ for n in sites for l_ in mapping.sites[n].layers if l_ != entry.name}
    if not sites:
        raise MappingError(f"{mapping.model}: no neuron is fed by {entry.name} and neurocore layers only")
    order_sites = [n for n in mapping.sites if n in sites]
    order_layers = [n for n in mapping.layers if n in layers]
    # depth: synaptic delays from the entry (zero delay) to each site
    depth: Dict[str, int] = {}
    for _ in range(len(order_sites) + 1):
        for n in order_sites:
            S = mapping.sites[n]
            d = 0
            for l_ in S.layers:
                if l_ == entry.name:
                    continue
                src = mapping.layers[l_].in_sites
                d = max(d, 1 + max(depth.get(x, 0) for x in src))
            depth[n] = d
    X_in = lambda shp: (shp[2], shp[1], shp[0])   # noqa: E731 - (C, H, W) -> (X, Y, C)
    seg_sites: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()
    for n in order_sites:
        S = mapping.sites[n]
        bias = sum(mapping.layers[l_].bias_int for l_ in S.layers)
        C, H, W = S.shape
        b = bias.reshape(1, 1, C).expand(W, H, C).contiguous()
        seg_sites[n] = dict(name=n, shape=(W, H, C), unit=S.unit, levels=S.levels, bias=b, period=1,
                            decay12=(0,), reset_unit=S.reset_unit, neuron=S.neuron,
                            entry=entry.name in S.layers, inputs=[l_ for l_ in S.layers if l_ != entry.name],
                            depth=depth[n])
    seg_layers: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()
    for n in order_layers:
        L = mapping.layers[n]
        w_lava = L.mant.flip(2, 3).permute(0, 3, 2, 1).contiguous()    # (C_out, KX, KY, C_in/g)
        seg_layers[n] = dict(name=n, weight=w_lava, src=L.in_sites[0], dst=[s for s in L.consumers if s in sites],
                             stride=tuple(L.stride[::-1]), padding=tuple(L.padding[::-1]),
                             dilation=tuple(L.dilation[::-1]), groups=L.groups,
                             in_shape=(L.in_shape[2], L.in_shape[1], L.in_shape[0]))
    C, H, W = entry.out_shape
    return SegmentSpec(model=mapping.model, entry=entry.name, entry_shape=(W, H, C), sites=seg_sites,
                       layers=seg_layers, depth=max(depth.values()))


def entry_currents(fixed_model: nn.Module, spec: SegmentSpec, searches: Sequence[torch.Tensor], cache: Any
                   ) -> torch.Tensor:
    """The host entry layer's integer output (bias excluded: it lives in the neurons' bias) for
    each search crop, as the fixed-point model computes it, in lava layout (F, X, Y, C)."""
    mods = dict(fixed_model.named_modules())
    layer = mods[spec.entry]
    out = []
    layer.loihi_capture = out
    try:
        with torch.no_grad():
            for s in searches:
                fixed_model.forward_search(s, cache)
    finally:
        layer.loihi_capture = None
    cur = torch.stack([c[0] for c in out[:len(searches)]] if len(out) >= len(searches) else [c[0] for c in out])
    return cur.permute(0, 3, 2, 1).contiguous()      # (F, C, H, W) -> (F, X, Y, C)


def golden_segment(frames: int = 1) -> Dict[str, Any]:
    """spiketrack-tiny's mapped stem + first stage on its golden weights (deterministic and
    spiking, whatever checkpoint is installed) and the entry currents of ``frames`` golden search
    crops (the example search, then golden images 8, 9, ...): ``{model, mapping, fixed, seg,
    searches, cache, cur}``, the segment the emulator's benchmark and tests run."""
    from snnsim.models import build_model
    from snnsim.models.golden import golden_image

    model = build_model("spiketrack-tiny", weights="golden")
    mapping = map_model(model, "golden")
    fixed = fixed_point_model(model, mapping)
    seg = extract_segment(mapping)
    ex = model.example_inputs("golden")
    with torch.no_grad():
        cache = fixed.forward_template(ex["template"])
    searches = [ex["search"]] + [golden_image(8 + i, (128, 128), 1) for i in range(frames - 1)]
    return dict(model=model, mapping=mapping, fixed=fixed, seg=seg, searches=searches, cache=cache,
                cur=entry_currents(fixed, seg, searches, cache))
