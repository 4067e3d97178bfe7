"""Neuron adapters: recognise a framework's spiking neurons and read their spikes.

An adapter says which modules are neurons, which spike format their output has, and how
time is laid out: a multi-step module sees all T timesteps in one call along a time axis;
a single-step module is called once per timestep. Frameworks are imported lazily, so a
missing peer library simply means its neurons are not looked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .formats import BINARY, SpikeFormat


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

    def matches(self, module: nn.Module) -> bool:
        raise NotImplementedError

    def spike_format(self, module: nn.Module) -> SpikeFormat:
        return BINARY

    def time_dim(self, module: nn.Module) -> int | None:
        """Axis of time in the output for multi-step modules, None for one call per step."""
        return None

    def spikes_of(self, output: Any) -> torch.Tensor:
        if isinstance(output, (tuple, list)):
            output = output[0]
        return output


class SnnsimAdapter(NeuronAdapter):
    """snnsim's own neurons (NI-LIF, I-LIF) and any module that declares `spike_format`
    and `time_dim` the same way (the protocol users' own neurons can follow)."""

    name = "snnsim"

    def matches(self, module):
        return isinstance(getattr(module, "spike_format", None), SpikeFormat) and hasattr(module, "time_dim")

    def spike_format(self, module):
        return module.spike_format

    def time_dim(self, module):
        return module.time_dim


class SpikingJellyAdapter(NeuronAdapter):
    name = "spikingjelly"

    def __init__(self):
        from spikingjelly.activation_based.neuron import BaseNode

        self._base = BaseNode

    def matches(self, module):
        return isinstance(module, self._base)

    def time_dim(self, module):
        return 0 if getattr(module, "step_mode", "s") == "m" else None


class SnnTorchAdapter(NeuronAdapter):
    name = "snntorch"

    def __init__(self):
        from snntorch._neurons.neurons import SpikingNeuron

        self._base = SpikingNeuron

    def matches(self, module):
        return isinstance(module, self._base)

    def spike_format(self, module):
        factor = float(getattr(module, "graded_spikes_factor", 1.0))
        return SpikeFormat(factor, 1) if factor > 0 else BINARY


class NorseAdapter(NeuronAdapter):
    """Norse cells (one call per step) and their multi-step SNN wrappers ([T, ...])."""

    name = "norse"

    def __init__(self):
        from norse.torch.module import snn

        self._cells = (snn.SNNCell, snn.SNNRecurrentCell)
        self._multi = (snn.SNN, snn.SNNRecurrent)

    def matches(self, module):
        return isinstance(module, self._cells + self._multi)

    def time_dim(self, module):
        return 0 if isinstance(module, self._multi) else None


def default_adapters() -> list[NeuronAdapter]:
    adapters: list[NeuronAdapter] = [SnnsimAdapter()]
    for cls in (SpikingJellyAdapter, SnnTorchAdapter, NorseAdapter):
        try:
            adapters.append(cls())
        except ImportError:
            pass
    return adapters


LOOKED_FOR = ("snnsim NI-LIF / I-LIF (or any module with `spike_format` and `time_dim`)",
              "SpikingJelly BaseNode", "snnTorch SpikingNeuron", "Norse SNNCell / SNN")


def find_neurons(model: nn.Module, adapters: list[NeuronAdapter]) -> dict[str, tuple[nn.Module, NeuronAdapter]]:
    """Named neuron modules of the model, each with the adapter that recognised it.
    A neuron nested in another neuron (a wrapper) is counted once, at the outer module."""
    found: dict[str, tuple[nn.Module, NeuronAdapter]] = {}
    for name, module in model.named_modules():
        if any(name.startswith(p + ".") for p in found):
            continue
        for adapter in adapters:
            if adapter.matches(module):
                found[name] = (module, adapter)
                break
    return found


def count_steps(spikes: torch.Tensor, fmt: SpikeFormat, time_dim: int | None, t0: int) -> list[NeuronStep]:
    """Per-timestep neuron counts of one call's output."""
    spikes = spikes.detach()
    per_t = spikes.unbind(time_dim) if time_dim is not None else (spikes,)
    steps = []
    for i, st in enumerate(per_t):
        # spike values are multiples of q: a float32 sum is exact while the level total
        # stays below 2^24
        exact_f32 = st.dtype == torch.float32 and st.numel() * fmt.levels < 2 ** 24
        value_sum = float(st.sum() if exact_f32 else st.sum(dtype=torch.float64))
        steps.append(NeuronStep(
            t=t0 + i,
            neurons=st.numel(),
            spikes=_nonzero_count(st),
            spike_mass=value_sum / fmt.q,
            value_sum=value_sum,
        ))
    return steps


def _nonzero_count(x: torch.Tensor) -> int:
    """Number of nonzero elements. Casting to bool (nonzero -> True) and summing is exact and,
    on CPU, several times faster than torch.count_nonzero on a float tensor; this runs once
    per neuron call and timestep."""
    return int(x.bool().sum())
