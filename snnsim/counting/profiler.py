"""The dispatch-level profiler: every aten operator, attributed to the innermost module.

The mode only classifies operands, dispatches to a formula (formulas.py) and accumulates;
module hooks keep the stack of module paths and read neuron outputs (adapters.py).
"""
from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .adapters import LOOKED_FOR, NeuronAdapter, count_steps, default_adapters, find_neurons
from .formats import SpikeFormat, classify, order_formats
from .formulas import FORMULAS, NEEDS_OUTPUT, OpCount, Operand, looks_synaptic, op_name
from .result import NeuronRecord, OpRecord, Profile

# Module types whose MACs thop (and the tracking papers' "FLOPs") count.
THOP_TYPES = (nn.modules.conv._ConvNd, nn.Linear)
# Module types whose parameters thop counts (those it hooks; only when called).
THOP_PARAM_TYPES = THOP_TYPES + (nn.modules.batchnorm._NormBase,)


class NonFiniteActivationError(FloatingPointError):
    """A module produced NaN or inf; counting garbage would be worse than stopping."""


class NoNeuronsWarning(UserWarning):
    pass


def has_non_finite(t: torch.Tensor) -> bool:
    """NaN or inf anywhere in t. A NaN/inf element makes the sum non-finite, so a finite sum
    clears the tensor in one fast reduction; only a non-finite sum (which finite values can
    also give, by overflow) is confirmed element by element."""
    total = t.sum()
    return not bool(torch.isfinite(total)) and not bool(torch.isfinite(t).all())


class _CountingMode(TorchDispatchMode):
    def __init__(self, profiler: "Profiler"):
        super().__init__()
        self.p = profiler

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        action = _ACTIONS.get(func)
        if action is None:
            action = _ACTIONS[func] = _action_for(func)
        if action is _SKIP:
            return out
        p = self.p
        module = p._current()
        if action is _UNCOUNTED:
            p._uncounted[(module, op_name(func))] += 1
            return out
        result = out[0] if isinstance(out, (tuple, list)) else out
        if has_non_finite(result):
            raise NonFiniteActivationError(
                f"module '{module or '<model>'}' produced NaN/inf in {op_name(func)}; check its input and weights")
        formula, needs_out = action
        count = formula(args, p._operand, p.weight_sparsity, result) if needs_out else \
            formula(args, p._operand, p.weight_sparsity)
        p._add_op(module, op_name(func), count)
        return out


# What the mode does with each operator, decided once per operator (the mode sees every
# elementwise op of every neuron, so per-call string work would dominate the overhead).
_SKIP, _UNCOUNTED = object(), object()
_ACTIONS: dict = {}


def _action_for(func):
    if func in FORMULAS:
        return (FORMULAS[func], False)
    if func in NEEDS_OUTPUT:
        return (NEEDS_OUTPUT[func], True)
    return _UNCOUNTED if looks_synaptic(func) else _SKIP


class Profiler:
    """Counts synaptic operations and neuron activity of a model's forward passes.

        with Profiler(model) as prof:
            model(x)
        profile = prof.result(batch_size=x.shape[0])
    """

    def __init__(self, model: nn.Module, spike_formats: Iterable[SpikeFormat] | None = None,
                 weight_sparsity: bool = False, adapters: list[NeuronAdapter] | None = None):
        self.model = model
        self.weight_sparsity = weight_sparsity
        self.neuron_modules = find_neurons(model, adapters if adapters is not None else default_adapters())
        declared = {a.spike_format(m) for m, a in self.neuron_modules.values()}
        self.formats = order_formats(spike_formats if spike_formats is not None else declared)
        # Weights are recognised by storage, so views (weight.t()) count too. The tensors are
        # kept alive here: a buffer the model replaces mid-run (snnTorch's membrane state)
        # would otherwise free its memory, and an activation allocated there would pass
        # for a weight.
        self._weight_refs = [t for t in list(model.parameters()) + list(model.buffers()) if t.numel()]
        self.weight_storages = {t.untyped_storage().data_ptr() for t in self._weight_refs}
        self.module_types = {name: type(m).__name__ for name, m in model.named_modules()}
        self.thop_modules = {name for name, m in model.named_modules() if isinstance(m, THOP_TYPES)}
        self.thop_param_sizes = {name: sum(p.numel() for p in m.parameters(recurse=False))
                                 for name, m in model.named_modules() if isinstance(m, THOP_PARAM_TYPES)}
        self._called: set[str] = set()
        self._stack: list[str] = []
        self._ops: dict[tuple[str, str, str], OpRecord] = {}
        self._uncounted: dict[tuple[str, str], int] = defaultdict(int)
        self._neurons: list[NeuronRecord] = []
        self._step_of: dict[str, int] = defaultdict(int)
        self._calls_of: dict[str, int] = defaultdict(int)
        self._hooks: list = []
        self._mode: _CountingMode | None = None
        if not self.neuron_modules and spike_formats is None:
            warnings.warn(
                "no spiking neurons recognised and no spike_formats given; looked for: "
                + "; ".join(LOOKED_FOR) + ". Every operand counts as real-valued (MACs).",
                NoNeuronsWarning, stacklevel=3)

    # ------------------------------------------------------------------ hooks
    def _current(self) -> str:
        return self._stack[-1] if self._stack else ""

    def _install(self) -> None:
        for name, module in self.model.named_modules():
            self._hooks.append(module.register_forward_pre_hook(self._pre(name)))
            self._hooks.append(module.register_forward_hook(self._post(name), always_call=True))

    def _pre(self, name: str):
        def hook(module, args):
            self._stack.append(name)
            self._called.add(name)
        return hook

    def _post(self, name: str):
        neuron = self.neuron_modules.get(name)

        def hook(module, args, output):
            if self._stack and self._stack[-1] == name:
                self._stack.pop()
            if neuron is not None:
                # The hook's own reductions are bookkeeping, not the model's: keep them out
                # of the counting mode (they would pay its per-operator cost for nothing).
                with torch._C._DisableTorchDispatch():
                    self._record_neuron(name, *neuron, output)
        return hook

    def _record_neuron(self, name, module, adapter, output) -> None:
        spikes = adapter.spikes_of(output)
        time_dim = adapter.time_dim(module)
        fmt = adapter.spike_format(module)
        call = self._calls_of[name]
        self._calls_of[name] += 1
        t0 = self._step_of[name] if time_dim is None else 0
        steps = count_steps(spikes, fmt, time_dim, t0)
        if any(not math.isfinite(step.value_sum) for step in steps) and has_non_finite(spikes):
            raise NonFiniteActivationError(f"neuron module '{name}' produced NaN/inf spikes")
        if time_dim is None:
            self._step_of[name] += 1
        order = len(self._neurons)
        for step in steps:
            self._neurons.append(NeuronRecord(name, type(module).__name__, adapter.name, order, call, step, fmt,
                                              tuple(spikes.shape)))

    # --------------------------------------------------------------- operands
    def _operand(self, t: torch.Tensor) -> Operand:
        if t.untyped_storage().data_ptr() in self.weight_storages:
            return Operand(t, "weight")
        fmt = classify(t, self.formats) if self.formats else None
        return Operand(t, "spike", fmt) if fmt is not None else Operand(t, "real")

    def _add_op(self, module: str, op: str, count: OpCount) -> None:
        key = (module, op, count.operands)
        rec = self._ops.get(key)
        if rec is None:
            self._ops[key] = OpRecord(module, self.module_types.get(module, type(self.model).__name__), op,
                                      count, 1, module in self.thop_modules)
        else:
            rec.count += count
            rec.calls += 1

    # --------------------------------------------------------------- context
    def __enter__(self) -> "Profiler":
        self._install()
        self._mode = _CountingMode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._stack.clear()
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

    def result(self, batch_size: int = 1) -> Profile:
        thop_params = {n: k for n, k in self.thop_param_sizes.items() if n in self._called}
        return Profile.from_records(list(self._ops.values()), list(self._neurons), dict(self._uncounted),
                                    batch_size, self.formats, self.weight_sparsity, thop_params)


def _infer_batch(inputs) -> int:
    tensors = [t for t in tree_flatten(inputs)[0] if isinstance(t, torch.Tensor) and t.dim() > 0]
    return int(tensors[0].shape[0]) if tensors else 1


def profile(model: nn.Module, *inputs, spike_formats: Iterable[SpikeFormat] | None = None,
            weight_sparsity: bool = False, batch_size: int | None = None, **kwargs) -> Profile:
    """Run `model(*inputs, **kwargs)` once under the counter and return its Profile.

    Counts are per sample: divided by `batch_size` (default: dim 0 of the first tensor input;
    pass it for inputs laid out [T, B, ...])."""
    with torch.no_grad(), Profiler(model, spike_formats, weight_sparsity) as prof:
        model(*inputs, **kwargs)
    return prof.result(batch_size if batch_size is not None else _infer_batch(inputs))
