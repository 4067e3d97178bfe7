"""Loihi fixed-point emulation: bit-exact, batched torch versions of lava-nc's fixed-point
process models (CUBA LIF and its variants, sigma-delta neurons, Dense / Sparse with and without
delays, Conv, RingBuffer and SpikeDataloader sources), and ``from_lava`` to emulate an existing
lava network;
the mapping of trained snnsim spiking models onto Loihi 2 (BatchNorm folding, 8-bit weights,
graded NI-LIF / I-LIF neurons, neurocore / host partition), their resources, fidelity and
Loihi energy, and the ``loihi`` job.

``snnsim.loihi.lava_graded`` (the graded neuron as a lava process) imports lava and is not
imported here."""
from . import fixed_point
from .delays import DelayDenseLayer, DelaySparseLayer
from .emulator import (ConvLayer, Connection, DenseLayer, LIFPopulation, LIFResetPopulation, LoihiNetwork, Node,
                       RingBufferSource, SparseLayer, SpikeDataloaderSource, TernaryLIFPopulation)
from .graded import GradedNetwork, GradedPopulation, build_segment_network, graded_level, graded_step
from .lava_bridge import from_lava
from .mapper import (LoihiMapping, MappingError, SegmentSpec, extract_segment, fixed_point_model, fold_bn,
                     map_model, quantize_weights)
from .resources import resource_report
from .sdn import DeltaPopulation, SigmaDeltaPopulation, SigmaPopulation

__all__ = ["fixed_point", "from_lava", "LoihiNetwork", "Node", "Connection", "RingBufferSource",
           "SpikeDataloaderSource", "LIFPopulation", "LIFResetPopulation", "TernaryLIFPopulation",
           "SigmaPopulation", "DeltaPopulation", "SigmaDeltaPopulation", "DenseLayer", "SparseLayer",
           "DelayDenseLayer", "DelaySparseLayer", "ConvLayer", "GradedNetwork", "GradedPopulation",
           "build_segment_network", "graded_level", "graded_step", "LoihiMapping", "MappingError",
           "SegmentSpec", "extract_segment", "fixed_point_model", "fold_bn", "map_model", "quantize_weights",
           "resource_report", "run_loihi_job"]


def run_loihi_job(*args, **kwargs):
    """See :func:`snnsim.loihi.job.run_loihi_job` (imported lazily: it pulls in the models)."""
    from .job import run_loihi_job as _run

    return _run(*args, **kwargs)
