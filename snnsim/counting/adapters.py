"""Neuron adapters: recognise a framework's spiking neurons and read their spikes.

An adapter says which modules are neurons, which spike format their output has, and how
time is laid out: a multi-step module sees all T timesteps in one call along a time axis;
a single-step module is called once per timestep. Frameworks are imported lazily, so a
missing peer library simply means its neurons are not looked for.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .formats import BINARY, SpikeFormat, nonzero_count


@dataclass
class NeuronStep:
    """Raw counts of one neuron module at one timestep (all samples of the batch)."""

    t: int
    neurons: int
    spikes: int
    spike_mass: float
    value_sum: float


class NeuronAdapter:
    name = "base"
    # top-level package whose classes this adapter recognises (None: any); an adapter whose
    # package no module of the model comes from is not even imported
    package: str | None = None

    def matches(self, module: nn.Module) -> bool:
        raise NotImplementedError

    def spike_format(self, module: nn.Module) -> SpikeFormat:
        return BINARY

    def time_dim(self, module: nn.Module) -> int | None:
        """Axis of time in the output for multi-step modules, None for one call per step."""
        return None

    def batch_dim(self, module: nn.Module) -> int:
        """Axis of the batch in the module's output: the first axis that is not time
        ([T, B, ...] -> 1; one call per step, [B, ...] -> 0; [B, ..., T] -> 0)."""
        return 1 if self.time_dim(module) == 0 else 0

    def spiking(self, module: nn.Module) -> bool:
        """False for readouts that emit voltages (leaky integrators): their updates count,
        their outputs are not spikes."""
        return True

    def bypass_methods(self, module: nn.Module) -> tuple[str, ...]:
        """Methods through which the framework can run the neuron without calling its
        forward (so module hooks never see it); the profiler watches them too."""
        return ()

    def loihi_neuron(self, module: nn.Module) -> dict | None:
        """How the neuron maps onto a Loihi neurocore, or None when it has no mapping:
        {'kind': 'NI-LIF' | 'I-LIF', 'decays': (leak factor of step 1, step 2, ...)} for the
        graded neurons snnsim.loihi emulates (see snnsim.loihi.graded)."""
        return None

    def spikes_of(self, output: Any) -> torch.Tensor:
        # (spikes, state), ((spikes,), state) ...: the first tensor
        while isinstance(output, (tuple, list)) and output:
            output = output[0]
        return output

    def input_of(self, args: Any) -> torch.Tensor | None:
        """The input the neuron integrates (non-spiking neurons are counted from it)."""
        while isinstance(args, (tuple, list)) and args:
            args = args[0]
        return args if isinstance(args, torch.Tensor) else None

    def voltages_of(self, output: Any) -> torch.Tensor | None:
        """A non-spiking neuron's output voltages as one tensor (None when not a tensor):
        a list of per-step voltages is stacked along a new time axis 0."""
        if isinstance(output, list) and output and all(isinstance(o, torch.Tensor) for o in output) \
                and len({tuple(o.shape) for o in output}) == 1:
            return torch.stack(output)
        while isinstance(output, (tuple, list)) and output:
            output = output[0]
        return output if isinstance(output, torch.Tensor) else None


class SnnsimAdapter(NeuronAdapter):
    """snnsim's own neurons (NI-LIF, I-LIF) and any module that declares `spike_format`
    and `time_dim` the same way (the protocol users' own neurons can follow)."""

    name = "snnsim"

    def matches(self, module):
        # a class attribute (property) or an instance one; asking the module for a name it
        # lacks goes through nn.Module.__getattr__'s raise, ~10x slower, once per module
        if not hasattr(type(module), "spike_format") and "spike_format" not in module.__dict__:
            return False
        return isinstance(getattr(module, "spike_format", None), SpikeFormat) and hasattr(module, "time_dim")

    def spike_format(self, module):
        return module.spike_format

    def time_dim(self, module):
        return module.time_dim

    def spiking(self, module):
        return bool(getattr(module, "spiking", True))

    def loihi_neuron(self, module):
        declare = getattr(module, "loihi_neuron", None)
        return declare() if callable(declare) else None


class SpikingJellyAdapter(NeuronAdapter):
    """SpikingJelly BaseNode neurons (step_mode 'm': [T, B, ...] in one call; 's': one call
    per step) and its non-spiking nodes (NonSpiking*Node: multi-step, they emit voltages).
    A node can also run through `functional_forward` (models imported from NIR wrap their
    nodes so), which skips the node's forward and its hooks: the profiler watches it."""

    name = "spikingjelly"
    package = "spikingjelly"

    def __init__(self):
        from spikingjelly.activation_based import neuron

        self._base = neuron.BaseNode
        self._non_spiking = tuple(getattr(neuron, n) for n in ("NonSpikingBaseNode", "NoisyNonSpikingBaseNode")
                                  if hasattr(neuron, n))

    def matches(self, module):
        return isinstance(module, (self._base, *self._non_spiking))

    def spiking(self, module):
        return not isinstance(module, self._non_spiking)

    def spike_format(self, module):
        """Ternary nodes emit -1/0/+1; multi-level nodes (ILIFNode) emit integer counts up to
        their surrogate's max_spike_count; every other node is binary."""
        if type(module).__name__.startswith("Ternary"):
            return SpikeFormat(1.0, 1, signed=True)
        levels = getattr(getattr(module, "surrogate_function", None), "max_spike_count", None)
        if isinstance(levels, int) and levels > 1:
            return SpikeFormat(1.0, levels)
        return BINARY

    def time_dim(self, module):
        if isinstance(module, self._non_spiking):
            return 0
        return 0 if getattr(module, "step_mode", "s") == "m" else None

    def bypass_methods(self, module):
        return ("functional_forward",) if callable(getattr(module, "functional_forward", None)) else ()


class SnnTorchAdapter(NeuronAdapter):
    """snnTorch SpikingNeuron subclasses: one call per step ([B, ...]), except the StateLeaky
    family (StateLeaky, LinearLeaky), which sees [T, B, C] at once and, unless built with
    output=True, returns its membrane potential only (a non-spiking readout)."""

    name = "snntorch"
    package = "snntorch"

    def __init__(self):
        from snntorch._neurons.neurons import SpikingNeuron

        self._base = SpikingNeuron
        try:
            from snntorch._neurons.stateleaky import StateLeaky
        except ImportError:  # older snnTorch
            StateLeaky = ()
        self._state_leaky = StateLeaky

    def matches(self, module):
        return isinstance(module, self._base)

    def spike_format(self, module):
        factor = float(getattr(module, "graded_spikes_factor", 1.0))
        return SpikeFormat(factor, 1) if factor > 0 else BINARY

    def time_dim(self, module):
        return 0 if self._state_leaky and isinstance(module, self._state_leaky) else None

    def spiking(self, module):
        if self._state_leaky and isinstance(module, self._state_leaky):
            return bool(getattr(module, "output", False))
        return True


class NorseAdapter(NeuronAdapter):
    """Norse cells (one call per step) and their multi-step SNN wrappers ([T, ...]). The
    leaky integrators (LICell, LI, LIBoxCell, LILinearCell) are readouts: they emit voltages."""

    name = "norse"
    package = "norse"

    def __init__(self):
        from norse.torch.module import snn

        self._cells = (snn.SNNCell, snn.SNNRecurrentCell)
        self._multi = (snn.SNN, snn.SNNRecurrent)
        readouts = []
        for mod, names in (("norse.torch.module.leaky_integrator", ("LICell", "LI", "LILinearCell")),
                           ("norse.torch.module.leaky_integrator_box", ("LIBoxCell", "LIBox"))):
            try:
                m = importlib.import_module(mod)
            except ImportError:
                continue
            readouts += [getattr(m, n) for n in names if hasattr(m, n)]
        self._readouts = tuple(readouts)

    def matches(self, module):
        return isinstance(module, self._cells + self._multi + self._readouts)

    def time_dim(self, module):
        return 0 if isinstance(module, self._multi) else None

    def spiking(self, module):
        return not isinstance(module, self._readouts)


_FRAMEWORK_ADAPTERS = (SpikingJellyAdapter, SnnTorchAdapter, NorseAdapter)
_ADAPTER_CACHE: dict[type, NeuronAdapter | None] = {}


def _packages_of(model: nn.Module, modules=None) -> set[str]:
    """Top-level packages the classes of the model's modules (and their bases) come from."""
    types = {type(m) for m in (modules if modules is not None else model.modules())}   # each class once
    return {cls.__module__.split(".")[0] for t in types for cls in t.__mro__}


def default_adapters(model: nn.Module | None = None, modules=None) -> list[NeuronAdapter]:
    """snnsim's adapter and one per installed framework. Given the model, only frameworks
    some module of the model comes from are imported: a model cannot hold a Norse neuron
    unless Norse is loaded, and importing a framework costs up to seconds. `modules`: the
    model's modules, when the caller has walked them already."""
    adapters: list[NeuronAdapter] = [SnnsimAdapter()]
    packages = _packages_of(model, modules) if model is not None else None
    for cls in _FRAMEWORK_ADAPTERS:
        if packages is not None and cls.package not in packages:
            continue
        if cls not in _ADAPTER_CACHE:
            try:
                _ADAPTER_CACHE[cls] = cls()
            except ImportError:
                _ADAPTER_CACHE[cls] = None
        if _ADAPTER_CACHE[cls] is not None:
            adapters.append(_ADAPTER_CACHE[cls])
    return adapters


LOOKED_FOR = ("snnsim NI-LIF / I-LIF (or any module with `spike_format` and `time_dim`)",
              "SpikingJelly BaseNode / NonSpiking*Node", "snnTorch SpikingNeuron",
              "Norse SNNCell / SNN / LICell / LI")


def find_neurons(model: nn.Module, adapters: list[NeuronAdapter],
                 named_modules=None) -> dict[str, tuple[nn.Module, NeuronAdapter]]:
    """Named neuron modules of the model, each with the adapter that recognised it.
    A neuron nested in another neuron (a wrapper) is counted once, at the outer module.
    `named_modules`: model.named_modules() as a list, when the caller has walked it already."""
    found: dict[str, tuple[nn.Module, NeuronAdapter]] = {}
    for name, module in (named_modules if named_modules is not None else model.named_modules()):
        # inside a neuron found earlier (named_modules is pre-order): one of its dotted
        # prefixes is a found name (a look-up per prefix, not a scan of every neuron found)
        dot = name.find(".")
        while dot != -1 and name[:dot] not in found:
            dot = name.find(".", dot + 1)
        if dot != -1:
            continue
        for adapter in adapters:
            if adapter.matches(module):
                found[name] = (module, adapter)
                break
    return found


def count_steps(spikes: torch.Tensor, fmt: SpikeFormat, time_dim: int | None, t0: int,
                binary_q: float | None = None, nonneg: bool = False) -> list[NeuronStep]:
    """Per-timestep neuron counts of one call's output. `binary_q`: every value is known to
    be 0 or binary_q (read off the values already), so the spike count is the value sum over
    binary_q and the nonzero pass is skipped; `nonneg`: no value is negative (known)."""
    spikes = spikes.detach()
    per_t = spikes.unbind(time_dim) if time_dim is not None else (spikes,)
    steps = []
    for i, st in enumerate(per_t):
        # spike values are multiples of q: a float32 sum is exact while the level total
        # stays below 2^24
        exact_f32 = st.dtype == torch.float32 and st.numel() * fmt.levels < 2 ** 24
        value_sum = float(st.sum() if exact_f32 else st.sum(dtype=torch.float64))
        # spike mass is the sum of |k| (DESIGN "Levels and signs"): a ternary -1 is one event,
        # not a cancellation of a +1
        mass = value_sum if not fmt.signed else float(
            st.abs().sum() if exact_f32 else st.abs().sum(dtype=torch.float64))
        if binary_q is not None and math.isfinite(value_sum):
            spikes_t = round(value_sum / binary_q)
        else:
            spikes_t = nonzero_count(st, nonneg, finite=math.isfinite(value_sum))
        steps.append(NeuronStep(
            t=t0 + i,
            neurons=st.numel(),
            spikes=spikes_t,
            spike_mass=mass / fmt.q,
            value_sum=value_sum,
        ))
    return steps


def count_updates(inp: torch.Tensor, volts: torch.Tensor | None, time_dim: int | None, t0: int) -> list[NeuronStep]:
    """Per-timestep counts of a non-spiking neuron (a readout emitting voltages): every
    neuron the input drives is updated, none spikes. `value_sum` is the voltages' sum where
    they line up with the input (the same shape), else 0."""
    inp = inp.detach()
    per_t = inp.unbind(time_dim) if time_dim is not None else (inp,)
    v_t = None
    if volts is not None and volts.is_floating_point() and tuple(volts.shape) == tuple(inp.shape):
        v_t = volts.detach().unbind(time_dim) if time_dim is not None else (volts.detach(),)
    return [NeuronStep(t=t0 + i, neurons=st.numel(), spikes=0, spike_mass=0.0,
                       value_sum=float(v_t[i].sum(dtype=torch.float64)) if v_t is not None else 0.0)
            for i, st in enumerate(per_t)]
