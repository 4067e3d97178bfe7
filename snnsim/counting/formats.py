"""Spike formats: which tensor values count as spikes.

A spike format (q, levels) says that a spike tensor holds only values k*q with an integer
0 <= k <= levels: binary spikes are (1, 1), SpikeTrack's NI-LIF (1/4, 4), SMTrack's I-LIF
(1, 4). A signed format (q, levels, signed=True) also holds the negative levels
-levels <= k < 0: ternary spikes -1/0/+1 are (1, 1, signed). An operand is classified by its
values against the declared formats (`classify`), never by guessing a quantum from the data.

Spike-derived tensors (a neuron's output, and what level-preserving operators -- views,
concatenation, max-pooling, sums and differences of spikes -- make of it; the profiler tracks
them) may leave a declared format's range: a SEW "ADD" residual holds sums 0..k of spikes, an
I-LIF neuron read through a binary adapter emits 0..4, a ternary neuron -1/0/+1. For those,
`integer_levels` keeps the declared quantum q and reads the levels from the values: every
value must be an integer multiple k*q of a declared q (any integer k, either sign); the
format's `levels` is then the largest |k| seen and `signed` whether a negative level occurs.
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
    """Spike values are k * q for integer k in [0, levels] ([-levels, levels] when signed)."""

    q: float
    levels: int
    signed: bool = False

    def __post_init__(self) -> None:
        if not self.q > 0:
            raise ValueError(f"SpikeFormat.q must be > 0, got {self.q}")
        if int(self.levels) != self.levels or self.levels < 1:
            raise ValueError(f"SpikeFormat.levels must be an integer >= 1, got {self.levels}")

    @property
    def binary(self) -> bool:
        """One unsigned level: {0, q}."""
        return self.levels == 1 and not self.signed

    def describe(self) -> str:
        if self.binary and self.q == 1:
            return "binary {0,1}"
        top = self.q * self.levels
        if self.signed:
            if self.levels == 1 and self.q == 1:
                return "ternary {-1,0,1}"
            return f"signed k*{self.q:g}, k=-{self.levels}..{self.levels} (max |{top:g}|)"
        return f"graded k*{self.q:g}, k=0..{self.levels} (max {top:g})"

    def fits(self, x: torch.Tensor) -> bool:
        """True when every value of x is k*q with integer 0 <= k <= levels (|k| <= levels
        when signed)."""
        return self._fits(x, _value_range(x))

    def _fits(self, x: torch.Tensor, rng: tuple[float, float] | None) -> bool:
        if rng is None:
            return False
        if x.dtype == torch.bool:
            return self.q == 1
        lo, hi = rng
        bound = self.q * self.levels * (1 + _LEVEL_TOL)
        if lo < (-bound if self.signed else 0) or hi > bound:
            return False
        if not x.is_floating_point():
            return self.q == 1
        return _all_multiples(x.detach(), self.q, nonneg=lo >= 0)

    def levels_of(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels |k| of a tensor known to fit this format (as float): the weight of
        each element in level-weighted counts (a level -k spike is k events, as a level k one)."""
        if x.dtype == torch.bool:
            return x.to(torch.float32)
        k = x.to(torch.float32) / self.q
        k = k if is_dyadic(self.q) else torch.round(k)
        return k.abs() if self.signed else k


BINARY = SpikeFormat(1.0, 1)


def is_dyadic(q: float) -> bool:
    """Powers of two divide floats exactly, so k = x / q needs no tolerance."""
    mant, _ = math.frexp(q)
    return mant == 0.5


def order_formats(formats) -> list[SpikeFormat]:
    """Coarsest quantum first: a tensor that fits several formats takes the one that
    gives it the fewest events (a {0,1} tensor is binary before it is 4 quarter-levels)."""
    return sorted(set(formats), key=lambda f: (-f.q, f.levels))


def classify(x: torch.Tensor, formats: list[SpikeFormat]) -> SpikeFormat | None:
    """The first (coarsest) declared format that x fits, or None when x is real-valued."""
    found = classify_levels(x, formats)
    return found[0] if found is not None else None


def classify_levels(x: torch.Tensor, formats: list[SpikeFormat]) -> tuple[SpikeFormat, int, bool] | None:
    """`classify` with the levels seen: (format, largest |k|, any k < 0), or None."""
    if _sample_rules_out(x, formats):
        return None
    rng = _value_range(x)
    for fmt in formats:
        if fmt._fits(x, rng):
            return fmt, _top_level(rng, fmt.q), rng[0] < 0
    return None


_SAMPLE = 16   # elements read first: a real tensor nearly always shows itself in them


def _sample_rules_out(x: torch.Tensor, formats: list[SpikeFormat]) -> bool:
    """True when a few elements of x already break every format (outside its range, or -- for
    a power-of-two quantum -- not a multiple of it): then x fits none, a proof from a subset,
    at a fraction of the cost of reading the whole tensor (most operands are real)."""
    if not x.is_floating_point() or x.dim() == 0 or x.numel() == 0:
        return False
    n = min(_SAMPLE, x.shape[-1])
    values = torch.as_strided(x.detach(), (n,), (x.stride(-1),), x.storage_offset()).tolist()
    for fmt in formats:
        bound = fmt.q * fmt.levels * (1 + _LEVEL_TOL)
        low = -bound if fmt.signed else 0.0
        exact = is_dyadic(fmt.q)
        if all(low <= v <= bound and (not exact or (v / fmt.q).is_integer()) for v in values):
            return False   # the sample fits this format: read the whole tensor
    return True


def _value_range(x: torch.Tensor) -> tuple[float, float] | None:
    """(min, max) of x as floats; None when x is empty. (amin and amax apart: on CPU the two
    vectorised reductions take about 2/3 of torch.aminmax's time.)"""
    if x.numel() == 0:
        return None
    if x.dtype == torch.bool:
        return 0.0, float(bool(x.any()))
    x = x.detach()
    return float(torch.amin(x)), float(torch.amax(x))


def nonzero_count(x: torch.Tensor, nonneg: bool = False, finite: bool = False) -> int:
    """Number of nonzero elements of x, exactly (NaN is nonzero). For float32, the sum of
    sign(x) (|sign(x)| unless x is known to be non-negative): on CPU about 3x faster than
    x.bool().sum(), whose integer accumulation is not vectorised, and 10x faster than
    torch.count_nonzero. A float32 sum of zeros and ones is exact below 2^24 elements. sign
    maps NaN to 0, so a tensor whose sum is not finite takes the bool count (`finite`: the
    caller knows the sum is finite already)."""
    x = x.detach()
    if x.dtype == torch.float32 and (finite or math.isfinite(float(x.sum()))):
        s = torch.sign(x)
        if not nonneg:
            s.abs_()
        return int(s.sum() if s.numel() < 2 ** 24 else s.sum(dtype=torch.float64))
    return int(x.bool().sum())


def _top_level(rng: tuple[float, float], q: float) -> int:
    return int(round(max(abs(rng[0]), abs(rng[1])) / q))


def _all_multiples(x: torch.Tensor, q: float, nonneg: bool) -> bool:
    """Every (finite, floating) value of x is an integer multiple of q."""
    if is_dyadic(q):
        # k = x / q exactly (q a power of two); its fractional parts in place of k
        frac = torch.frac(x) if q == 1 else torch.mul(x, 1.0 / q).frac_()
        if nonneg:
            # k >= 0 here, so frac(k) >= 0 and its sum is 0 exactly when every frac is 0: a
            # sum of non-negative floats cannot round or cancel to 0. (Two cheap passes;
            # comparing k with round(k) costs several times more and runs on every operand.)
            return float(frac.sum()) == 0.0
        return float(frac.abs_().sum()) == 0.0
    k = x / q
    return bool((k - torch.round(k)).abs().max().item() <= _LEVEL_TOL)


def integer_levels(x: torch.Tensor, quanta) -> tuple[SpikeFormat, int, bool] | None:
    """The format of a spike-derived tensor and the levels seen: (format, largest |k|, any
    k < 0) for the coarsest declared quantum q such that every value of x is k*q for an
    integer k (any sign, any size; the format's levels = the largest |k|, at least 1, and
    signed = whether some k < 0). None when no declared quantum divides every value (x is
    then real). See the module docstring for which tensors this applies to."""
    rng = _value_range(x)
    if rng is None:
        return None
    if x.dtype == torch.bool:
        return SpikeFormat(1.0, 1), int(rng[1]), False
    lo, hi = rng
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    t = x.detach()
    if not t.is_floating_point():
        t = t.to(torch.float64)
    for q in sorted({float(f) for f in quanta}, reverse=True):
        if q <= 0 or not _all_multiples(t, q, nonneg=lo >= 0):
            continue
        k = _top_level(rng, q)
        if k >= 2 ** 24 and t.dtype == torch.float32:
            return None   # float32 no longer resolves single levels: not a spike count
        return SpikeFormat(q, max(1, k), signed=lo < 0), k, lo < 0
    return None
