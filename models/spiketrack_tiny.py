"""spiketrack-tiny: a reduced SpikeTrack (dims 16/32/64/80, head 64, T = 1, 128 px crops).

The architecture is SpikeTrack's own (models/spiketrack.py), only smaller: the published
configs use 256 / 384 px crops with a 16 / 24 token grid in the attention and memory stages
(PATCHES), i.e. crop / 16; a 128 px crop gets an 8 x 8 grid by the same rule. The config
subclass below supplies that grid without touching the published table.

It was trained here, on synthetic sequences only (examples/train_tiny_spiketrack.py; curve
and held-out scores in docs/training_tiny.md). It is a demonstration model for the tracking
runtime and the energy reports (a spiking tracker whose firing rates come from trained
weights), not a competitive tracker on real video.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .spiketrack import SpikeTrack, SpikeTrackConfig

__all__ = ["TINY_CONFIG", "SpikeTrackTiny", "TinySpikeTrackConfig", "WEIGHTS_PATH", "WEIGHTS_SOURCE",
           "build_spiketrack_tiny"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "spiketrack_tiny.pt"
WEIGHTS_SOURCE = "trained spiketrack-tiny (snnsim, synthetic data; see docs/training_tiny.md)"


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


def build_spiketrack_tiny(weights: str | Path | None = "default") -> SpikeTrackTiny:
    """The reduced SpikeTrack. weights='default' loads the shipped trained checkpoint
    (models/weights/spiketrack_tiny.pt) when it is present and sets `weights_source`; when it
    is absent the model stays at its untrained initialisation (the registry then reports
    random weights). weights=None never loads; a path loads that checkpoint strictly."""
    model = SpikeTrackTiny()
    if weights is None:
        return model
    path = WEIGHTS_PATH if weights == "default" else Path(weights)
    if weights == "default" and not path.is_file():
        return model
    from .checkpoint import load_checkpoint

    load_checkpoint(model, path)
    if weights == "default":
        model.weights_source = WEIGHTS_SOURCE
    else:
        model.weights_source = f"checkpoint {path}"
    return model
