"""spiketrack-tiny: a reduced SpikeTrack (dims 16/32/64/80, head 64, T = 1, 128 px crops).

The architecture is SpikeTrack's own (models/spiketrack.py), only smaller: the published
configs use 256 / 384 px crops with a 16 / 24 token grid in the attention and memory stages
(PATCHES), i.e. crop / 16; a 128 px crop gets an 8 x 8 grid by the same rule. The config
subclass below supplies that grid without touching the published table.

It was trained here, on synthetic sequences only (examples/train_tiny_spiketrack.py; curves
and held-out scores in docs/training_tiny.md), and so was its ANN twin spiketrack-tiny-ann
(NI-LIF -> clipped ReLU, the same run). They are demonstration models for the tracking
runtime and the energy reports (a twin pair whose firing rates and accuracies come from the
same training), not competitive trackers: on sequence styles they never saw they track
poorly (docs/training_tiny.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .neurons import NILIF
from .spiketrack import SpikeTrack, SpikeTrackConfig, TemplateEncoder

__all__ = ["ANN_WEIGHTS_PATH", "ANN_WEIGHTS_SOURCE", "ClippedReLU", "TINY_CONFIG", "SpikeTrackTiny",
           "SpikeTrackTinyANN", "TinySpikeTrackConfig", "WEIGHTS_PATH", "WEIGHTS_SOURCE",
           "build_spiketrack_tiny", "build_spiketrack_tiny_ann"]

_WEIGHTS = Path(__file__).resolve().parent / "weights"
WEIGHTS_PATH = _WEIGHTS / "spiketrack_tiny.pt"
ANN_WEIGHTS_PATH = _WEIGHTS / "spiketrack_tiny_ann.pt"
# How the shipped checkpoints were trained (examples/train_tiny_spiketrack.py; curves, held-out
# scores and the budget in docs/training_tiny.md): both twins start from the first
# spiketrack-tiny checkpoint (first synthetic generator) and are fine-tuned with the same
# script, data, seed, steps and time on the diverse distribution (snnsim.tracking.training_scenes).
WEIGHTS_SOURCE = ("trained spiketrack-tiny (snnsim, CPU: first synthetic generator, then the diverse synthetic "
                  "distribution, the same run as its ANN twin; see docs/training_tiny.md)")
ANN_WEIGHTS_SOURCE = ("trained spiketrack-tiny-ann (snnsim, CPU: from spiketrack-tiny's first checkpoint, the same "
                      "diverse-distribution run as the SNN; see docs/training_tiny.md)")


@dataclass(frozen=True)
class TinySpikeTrackConfig(SpikeTrackConfig):
    """A SpikeTrack config at any crop size that is a multiple of the stride: the token grid
    of the attention / memory stages is the final feature map (crop / stride), as for the
    published 256 -> 16 and 384 -> 24."""

    @property
    def patches(self) -> int:
        if self.size % self.stride:
            raise ValueError(f"crop size {self.size} is not a multiple of the stride {self.stride}")
        return self.size // self.stride


# C3 = 80 rather than 96 keeps the float16 checkpoint under 5 MB (96 gives 5.4 MB).
TINY_CONFIG = TinySpikeTrackConfig("tiny128_t1", (16, 32, 64, 80), 64, 1, 128)


class SpikeTrackTiny(SpikeTrack):
    """SpikeTrack at TINY_CONFIG (128 px crops, T = 1), trained here on synthetic data."""

    def __init__(self):
        super().__init__(TINY_CONFIG)


class ClippedReLU(nn.Module):
    """The ANN twin's activation: NI-LIF at one timestep without its rounding,
    clamp(x, 0, D) / D (a ReLU clipped at D, scaled to NI-LIF's [0, 1] output range).

    NI-LIF with T = 1 computes round(clamp(x, 0, D)) / D; removing the round leaves this
    real-valued activation, so the spiking model and its twin differ in exactly one thing:
    whether a layer's output is quantised to the spike levels {0, 1/D, ..., 1}. It is not a
    neuron (no state, no spike format), so the counter prices what follows it as dense MACs."""

    def __init__(self, levels: int = 4):
        super().__init__()
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0, self.levels) / self.levels

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


def replace_neurons(model: nn.Module) -> int:
    """Swap every NI-LIF submodule of `model` for a ClippedReLU with its levels, in place;
    returns how many were swapped."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, NILIF):
                setattr(parent, name, ClippedReLU(child.levels))
                swapped += 1
    return swapped


class SpikeTrackTinyANN(SpikeTrack):
    """spiketrack-tiny's ANN twin: the same modules and parameters except that every NI-LIF
    neuron is a ClippedReLU (so the NI-LIF `decay` logits, unused at T = 1, are absent)."""

    kind = "ann"

    def __init__(self):
        super().__init__(TINY_CONFIG)
        self.replaced_neurons = replace_neurons(self)
        # the template encoder (not a registered submodule: it shares the encoder's tensors) holds
        # its own references to the memory modules' neurons; made again, it holds the ClippedReLUs
        # the training graph runs, not the NI-LIFs replace_neurons took out of the encoder
        self.__dict__["_template_encoder"] = TemplateEncoder(self.encoder)


def _load(model: nn.Module, weights, default: Path, source: str):
    if weights is None:
        return model
    path = default if weights == "default" else Path(weights)
    if weights == "default" and not path.is_file():
        return model
    from .checkpoint import load_checkpoint

    from .registry import weights_record

    load_checkpoint(model, path)
    model.weights_info = weights_record("default", path, trained=True, note=source) if weights == "default" else \
        weights_record("checkpoint", path, trained=True,
                       note=f"checkpoint {path} (how it was trained is not recorded)")
    return model


def build_spiketrack_tiny_ann(weights: str | Path | None = "default") -> SpikeTrackTinyANN:
    """The ANN twin of spiketrack-tiny; `weights` as for build_spiketrack_tiny, the default
    being models/weights/spiketrack_tiny_ann.pt."""
    return _load(SpikeTrackTinyANN(), weights, ANN_WEIGHTS_PATH, ANN_WEIGHTS_SOURCE)


def build_spiketrack_tiny(weights: str | Path | None = "default") -> SpikeTrackTiny:
    """The reduced SpikeTrack. weights='default' loads the shipped trained checkpoint
    (models/weights/spiketrack_tiny.pt) when it is present and records it in `weights_info`; when it
    is absent the model stays at its untrained initialisation (the registry then reports
    random weights). weights=None never loads; a path loads that checkpoint strictly."""
    return _load(SpikeTrackTiny(), weights, WEIGHTS_PATH, WEIGHTS_SOURCE)
