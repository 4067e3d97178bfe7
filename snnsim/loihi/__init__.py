"""Loihi fixed-point emulation: bit-exact, batched torch versions of lava-nc's CUBA-LIF,
Dense, Conv and RingBuffer models, and ``from_lava`` to emulate an existing lava network."""
from . import fixed_point
from .emulator import (ConvLayer, Connection, DenseLayer, LIFPopulation, LoihiNetwork, Node,
                       RingBufferSource)
from .lava_bridge import from_lava

__all__ = ["fixed_point", "from_lava", "LoihiNetwork", "Node", "Connection", "RingBufferSource",
           "LIFPopulation", "DenseLayer", "ConvLayer"]
