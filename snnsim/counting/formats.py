"""Spike formats: which tensor values count as spikes.

A spike format (q, levels) says that a spike tensor holds only values k*q with an integer
0 <= k <= levels: binary spikes are (1, 1), SpikeTrack's NI-LIF (1/4, 4), SMTrack's I-LIF
(1, 4). An operand is classified by its values against the declared formats, never by
guessing a quantum from the data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Relative slack on the integer test for quanta that are not exact in binary floating point
# (q = 1/3, say). Dyadic quanta (1, 1/2, 1/4, ...) are tested exactly.
_LEVEL_TOL = 1e-4


@dataclass(frozen=True, order=True)
class SpikeFormat:
    """Spike values are k * q for integer k in [0, levels]."""

    q: float
    levels: int

    def __post_init__(self) -> None:
        if not self.q > 0:
            raise ValueError(f"SpikeFormat.q must be > 0, got {self.q}")
        if int(self.levels) != self.levels or self.levels < 1:
            raise ValueError(f"SpikeFormat.levels must be an integer >= 1, got {self.levels}")

    @property
    def binary(self) -> bool:
        return self.levels == 1

    def describe(self) -> str:
        if self.binary and self.q == 1:
            return "binary {0,1}"
        top = self.q * self.levels
        return f"graded k*{self.q:g}, k=0..{self.levels} (max {top:g})"

    def fits(self, x: torch.Tensor) -> bool:
        """True when every value of x is k*q with integer 0 <= k <= levels."""
        if x.numel() == 0:
            return False
        if x.dtype == torch.bool:
            return self.q == 1
        lo, hi = torch.aminmax(x.detach())
        if lo.item() < 0 or hi.item() > self.q * self.levels * (1 + _LEVEL_TOL):
            return False
        if not x.is_floating_point():
            return self.q == 1
        k = x.detach() if self.q == 1 else x.detach() / self.q
        if _is_dyadic(self.q):
            # k >= 0 here, so frac(k) >= 0 and its sum is 0 exactly when every frac is 0: a
            # sum of non-negative floats cannot round or cancel to 0. (Two cheap passes;
            # comparing k with round(k) costs several times more and runs on every operand.)
            return float(torch.frac(k).sum()) == 0.0
        return bool((k - torch.round(k)).abs().max().item() <= _LEVEL_TOL)

    def levels_of(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels k of a tensor known to fit this format (as float)."""
        if x.dtype == torch.bool:
            return x.to(torch.float32)
        k = x.to(torch.float32) / self.q
        return k if _is_dyadic(self.q) else torch.round(k)


BINARY = SpikeFormat(1.0, 1)


def _is_dyadic(q: float) -> bool:
    """Powers of two divide floats exactly, so k = x / q needs no tolerance."""
    mant, _ = math.frexp(q)
    return mant == 0.5


def order_formats(formats) -> list[SpikeFormat]:
    """Coarsest quantum first: a tensor that fits several formats takes the one that
    gives it the fewest events (a {0,1} tensor is binary before it is 4 quarter-levels)."""
    return sorted(set(formats), key=lambda f: (-f.q, f.levels))


def classify(x: torch.Tensor, formats: list[SpikeFormat]) -> SpikeFormat | None:
    """The first (coarsest) declared format that x fits, or None when x is real-valued."""
    for fmt in formats:
        if fmt.fits(x):
            return fmt
    return None
