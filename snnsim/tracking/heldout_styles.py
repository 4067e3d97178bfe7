"""Held-out single-object-tracking sequence styles, for evaluating trained trackers.

Each style is a deterministic, stateless, closed-form sequence generator: ``frame(t)``
computes any frame from ``(style, seed, size, t)`` alone, without rendering earlier
frames (street-walkers also schedules its crossings inside the first ``min(n_frames, 150)``
frames, so only its sequences shorter than 150 frames depend on ``n_frames``).
Frames are uint8 RGB ``[H, W, 3]`` (default ``(256, 256)``, given as ``(H, W)``). The box
of each frame is xywh in pixels, integer-valued, and equals *exactly* the tight bounding
box of the pixels painted for the target in that frame (the target's mask, taken from the
drawing itself). The target always stays fully inside the frame. Lengths below are for a
256 x 256 frame and scale with ``min(H, W) / 256``; the motion ranges are tuned so that a
"static box" baseline (the first box kept forever) scores a success AUC below 0.2 over 150
frames, while the motion stays smooth and the target visible.

Why these are *held out*: they are separate code (nothing is imported or copied from
``snnsim.tracking.synthetic`` or ``snnsim.tracking.training_scenes``), and they use
target shapes (checkerboards, stars, rings, articulated walkers), backgrounds (grey block
mosaics, colour plasma, a panning street) and motion laws (sums of sinusoids, Lissajous
curves, bouncing walks with a walk cycle) that the training generator does not produce, so
a score on them measures generalisation rather than fit to the training distribution.

Styles (public names in ``HELDOUT_STYLES``):

``"checker-blocks"``
    A rectangular target painted as a two-colour checkerboard (two random RGB colours at
    least 180 apart in Euclidean RGB distance; 3-6 cells per side, independently per axis;
    aspect w/h 0.6-1.6; sqrt(area) 24-40 px) over a static mosaic of grey square blocks
    (block side 16-32 px, random offset, grey levels 60-190). The top-left corner follows
    a sum of two sinusoids per axis (amplitudes together filling 70-100 % of the free
    range, 65-85 % of it in the first; the second 1.6-2.8x the first's frequency; random
    phases); the time scale is set so that the peak speed over the first 150 frames is
    2.5-5 px/frame. In the rare case where those 150 frames would still stay near the start
    (static-box AUC >= 0.15) the path is redrawn (deterministically, from the same
    generator). No occlusion.

``"glyph-plasma"``
    A non-rectangular target: a filled 5-8-pointed star (even seeds; inner/outer radius
    0.4-0.55, slow spin 0.005-0.03 rad/frame) or a thick ring (odd seeds; inner/outer
    radius 0.45-0.65), drawn
    with ``PIL.ImageDraw`` (the mask is the drawing), outer radius 14-24 px, coloured with
    a radial gradient between two random colours. The radius pulses by +-15 % (period
    25-60 frames). The background is a colour "plasma": the sum of 3-4 drifting 2-D
    sinusoids (wavelength 40-160 px, phase drift 0.02-0.08 rad/frame) mapped to RGB
    through per-channel sinusoids. The centre follows a Lissajous curve (frequency ratios
    1:2, 2:3, 1:3, 3:4 or their transposes; amplitudes 75-100 % of the free range), with
    peak speed 3-8 px/frame over the first 150 frames. The whole frame's brightness
    flickers: gain ``1 + 0.25 sin(2 pi t / P + phi)`` (0.75-1.25), period P 20-40 frames.

``"street-walkers"``
    A tall articulated target built like a walking person: an ellipse head, a rectangular
    torso and two leg rectangles whose lengths alternate with a walk cycle (period 14-24
    frames, +-12-20 % of the leg length; the feet stay on the ground, so the box height
    changes). Nominal height (legs level) 50-80 px, nominal aspect w/h 0.35-0.5. It walks
    left-right across the frame at 3-6 px/frame (a triangle wave: it turns at the frame
    edges) while its ground line drifts slowly by +-8-16 px (walking diagonally across
    the pavement, period 90-160 frames). The background is a street that scrolls
    horizontally (camera pan 1-3 px/frame, random direction): horizontal bands (sky,
    buildings with a random skyline, pavement with seams, kerb, road with lane dashes)
    and vertical window rectangles of random colours. Two other walkers with different
    colours and sizes also bounce across the frame (2-5 px/frame, at least 1.5 px/frame
    faster or slower than the target) and cross it: one in front (closer to the camera:
    ground line 15-30 % of the target's height lower, 70-95 % of its height, so it hides
    at most the lower part: partial occlusion; a head-on crossing is scheduled at 15-40 %
    of the first 150 frames) and one behind (further: ground line 10-25 % higher, 75-90 %
    or 110-125 % of the height, painted before the target; head-on crossing at 50-85 %).
    ``visibility`` is the fraction of the target's mask pixels not covered by objects
    painted after it (the front walker); it is 1 in the other two styles.

``write_heldout_sequence`` writes a sequence in the GOT-10k layout (``00000001.jpg ...``,
``groundtruth.txt`` with ``x,y,w,h`` rows, 4 decimals) plus ``style.json``.
"""
from __future__ import annotations

import json
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["HELDOUT_STYLES", "HeldoutFrame", "HeldoutSequence", "write_heldout_sequence"]

HELDOUT_STYLES: tuple[str, ...] = ("checker-blocks", "glyph-plasma", "street-walkers")

_GENERATOR = "snnsim.tracking.heldout_styles"
_MIN_SIDE = 64            # smallest frame side accepted
_REF_SIDE = 256.0         # lengths in the docstring are for this frame side
_SPEED_HORIZON = 150      # peak speeds are measured over the first 150 frames
_MARGIN = 2               # px kept free between the target and the frame border
_STATIC_AUC_GUARD = 0.15  # checker-blocks paths whose static-box AUC reaches this are redrawn


@dataclass(frozen=True, eq=False)
class HeldoutFrame:
    """One frame: ``image`` (None when rendered with ``render=False``), the target's box
    (xywh float64, integer-valued, the tight bbox of its mask) and its visibility."""
    index: int
    image: np.ndarray | None
    box: np.ndarray
    visibility: float


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Sprite:
    """Label image (0 = not painted) placed with its top-left corner at (y0, x0)."""
    y0: int
    x0: int
    labels: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.labels > 0

    def box(self) -> np.ndarray:
        m = self.mask
        rows = np.flatnonzero(m.any(1))
        cols = np.flatnonzero(m.any(0))
        if rows.size == 0:  # never happens for the styles below
            raise RuntimeError("empty target mask")
        return np.array([self.x0 + cols[0], self.y0 + rows[0],
                         cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], dtype=np.float64)

    def full_mask(self, H: int, W: int) -> np.ndarray:
        out = np.zeros((H, W), dtype=bool)
        h, w = self.labels.shape
        ys, xs = slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)
        if self.y0 < 0 or self.x0 < 0 or self.y0 + h > H or self.x0 + w > W:
            raise RuntimeError("sprite outside the frame")
        out[ys, xs] = self.mask
        return out

    def paint(self, image: np.ndarray, colours: np.ndarray) -> None:
        """Paint labels > 0 with ``colours`` ([h, w, 3] per pixel, or a [n_labels, 3] table)."""
        h, w = self.labels.shape
        region = image[self.y0:self.y0 + h, self.x0:self.x0 + w]
        m = self.mask
        if colours.ndim == 3:
            region[m] = colours[m]
        else:
            region[m] = colours[self.labels[m]]


def _far_colours(rng: np.random.Generator, n: int, min_dist: float, lo: int = 0, hi: int = 256,
                 avoid: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """n random RGB colours pairwise at least ``min_dist`` apart (and from ``avoid``)."""
    out: list[np.ndarray] = []
    others = list(avoid or [])
    dist = float(min_dist)
    tries = 0
    while len(out) < n:
        c = rng.integers(lo, hi, size=3).astype(np.int64)
        if all(np.linalg.norm(c - o) >= dist for o in out + others):
            out.append(c)
        tries += 1
        if tries % 200 == 0:  # relax (never reached in practice for the ranges used)
            dist *= 0.9
    return out


def _time_scale(velocity, speed: float, horizon: int = _SPEED_HORIZON) -> float:
    """k such that the path q(k t) has peak speed ``speed`` px/frame over t in [0, horizon].

    ``velocity(u)`` returns (vx, vy) of q at path parameter u. The peak
    f(k) = k * max_{u <= k horizon} |q'(u)| is increasing in k, so bisection finds it.
    """
    ts = np.linspace(0.0, float(horizon), 4 * horizon + 1)

    def peak(k: float) -> float:
        vx, vy = velocity(k * ts)
        return k * float(np.max(np.hypot(vx, vy)))

    lo, hi = 1e-6, 1e-3
    while peak(hi) < speed:
        lo, hi = hi, hi * 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if peak(mid) < speed:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _static_box_auc(boxes: np.ndarray) -> float:
    """Success AUC (21 IoU thresholds 0..1) of the first box kept forever (the SOT metrics'
    own definition: a metric, not a generator, so nothing of the training data is shared)."""
    from .sot_metrics import sot_metrics, static_boxes

    return sot_metrics(static_boxes(boxes), boxes).auc


def _check_background(background) -> np.ndarray:
    c = np.asarray(background, dtype=np.int64).reshape(-1)
    if c.size == 1:
        c = np.repeat(c, 3)
    if c.size != 3 or (c < 0).any() or (c > 255).any():
        raise ValueError(f"background must be an RGB colour with values 0..255, got {background!r}")
    return c.astype(np.uint8)


# --------------------------------------------------------------------------------------
# style 1: checker-blocks
# --------------------------------------------------------------------------------------
class _CheckerBlocks:
    def __init__(self, rng: np.random.Generator, H: int, W: int, n_frames: int, seed: int = 0):
        s = min(H, W) / _REF_SIDE
        self.H, self.W = H, W
        side = rng.uniform(24.0, 40.0) * s
        aspect = rng.uniform(0.6, 1.6)
        w = max(6, int(round(side * math.sqrt(aspect))))
        h = max(6, int(round(side / math.sqrt(aspect))))
        nx, ny = (int(v) for v in rng.integers(3, 7, size=2))
        c1, c2 = _far_colours(rng, 2, 180.0)
        cx = np.arange(w) * nx // w
        cy = np.arange(h) * ny // h
        parity = (cy[:, None] + cx[None, :]) % 2
        self.patch = np.where(parity[..., None] == 0, c1, c2).astype(np.uint8)
        self.w, self.h = w, h

        block = max(4, int(rng.integers(int(round(16 * s)), int(round(32 * s)) + 1)))
        oy, ox = (int(v) for v in rng.integers(0, block, size=2))
        nby, nbx = (H + oy) // block + 1, (W + ox) // block + 1
        greys = rng.integers(60, 191, size=(nby, nbx)).astype(np.uint8)
        iy = (np.arange(H) + oy) // block
        ix = (np.arange(W) + ox) // block
        self.background = np.repeat(greys[iy][:, ix][..., None], 3, axis=2)

        # top-left corner path: centre of the free range + two sinusoids per axis
        free_x, free_y = W - w - 2 * _MARGIN, H - h - 2 * _MARGIN
        self.base = np.array([_MARGIN + free_x / 2.0, _MARGIN + free_y / 2.0])
        # Redraw the path (deterministically, at most 20 times) in the rare case where its
        # first 150 frames stay so close to the start that a static box would do well.
        for _ in range(20):
            self._draw_path(rng, free_x, free_y)
            first = np.array([self._box(t) for t in range(_SPEED_HORIZON)])
            if _static_box_auc(first) < _STATIC_AUC_GUARD:
                break

    def _draw_path(self, rng: np.random.Generator, free_x: int, free_y: int) -> None:
        amps, freqs, phases = [], [], []
        for free in (free_x, free_y):
            total = 0.5 * free * rng.uniform(0.7, 1.0)
            r = rng.uniform(0.65, 0.85)
            f1 = rng.uniform(0.8, 1.25)
            f2 = f1 * rng.uniform(1.6, 2.8) * rng.choice([-1.0, 1.0])
            amps.append((total * r, total * (1 - r)))
            freqs.append((f1, f2))
            phases.append(tuple(rng.uniform(0, 2 * math.pi, size=2)))
        self.amps, self.freqs, self.phases = np.array(amps), np.array(freqs), np.array(phases)
        self.speed = rng.uniform(2.5, 5.0)
        self.k = _time_scale(self._velocity, self.speed)

    def _box(self, t: int) -> tuple[int, int, int, int]:
        y0, x0 = self._corner(t)
        return x0, y0, self.w, self.h

    def _velocity(self, u):
        out = []
        for a in range(2):
            (A1, A2), (f1, f2), (p1, p2) = self.amps[a], self.freqs[a], self.phases[a]
            out.append(A1 * f1 * np.cos(f1 * u + p1) + A2 * f2 * np.cos(f2 * u + p2))
        return out[0], out[1]

    def _corner(self, t: int) -> tuple[int, int]:
        u = self.k * t
        pos = []
        for a in range(2):
            (A1, A2), (f1, f2), (p1, p2) = self.amps[a], self.freqs[a], self.phases[a]
            pos.append(self.base[a] + A1 * math.sin(f1 * u + p1) + A2 * math.sin(f2 * u + p2))
        x0 = int(np.clip(round(pos[0]), 0, self.W - self.w))
        y0 = int(np.clip(round(pos[1]), 0, self.H - self.h))
        return y0, x0

    def target_sprite(self, t: int) -> _Sprite:
        y0, x0 = self._corner(t)
        return _Sprite(y0, x0, np.ones((self.h, self.w), dtype=np.uint8))

    def visibility(self, t: int) -> float:
        return 1.0

    def render(self, t: int, background=None) -> np.ndarray:
        if background is None:
            img = self.background.copy()
        else:
            img = np.empty((self.H, self.W, 3), np.uint8)
            img[:] = _check_background(background)
        y0, x0 = self._corner(t)
        img[y0:y0 + self.h, x0:x0 + self.w] = self.patch
        return img


# --------------------------------------------------------------------------------------
# style 2: glyph-plasma
# --------------------------------------------------------------------------------------
_LISSAJOUS_RATIOS = ((1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (3, 4), (4, 3))


class _GlyphPlasma:
    PULSE = 0.15
    FLICKER = 0.25

    def __init__(self, rng: np.random.Generator, H: int, W: int, n_frames: int, seed: int = 0):
        s = min(H, W) / _REF_SIDE
        self.H, self.W = H, W
        # even seeds draw a star, odd seeds a ring (any few consecutive seeds hold both)
        self.kind = "star" if seed % 2 == 0 else "ring"
        self.points = int(rng.integers(5, 9))
        self.inner = rng.uniform(0.4, 0.55) if self.kind == "star" else rng.uniform(0.45, 0.65)
        self.spin = rng.uniform(0.005, 0.03) * rng.choice([-1.0, 1.0]) if self.kind == "star" else 0.0
        self.angle0 = rng.uniform(0, 2 * math.pi)
        self.radius = rng.uniform(14.0, 24.0) * s
        self.pulse_period = rng.uniform(25.0, 60.0)
        self.pulse_phase = rng.uniform(0, 2 * math.pi)
        self.c_in, self.c_out = (c.astype(np.float64) for c in _far_colours(rng, 2, 200.0))

        # plasma: 3-4 drifting plane waves
        n_waves = int(rng.integers(3, 5))
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        self.wave_base = np.empty((n_waves, H, W), np.float32)
        self.wave_phase = rng.uniform(0, 2 * math.pi, size=n_waves)
        self.wave_drift = rng.uniform(0.02, 0.08, size=n_waves) * rng.choice([-1.0, 1.0], size=n_waves)
        for i in range(n_waves):
            theta = rng.uniform(0, math.pi)
            kmag = 2 * math.pi / (rng.uniform(40.0, 160.0) * s)
            self.wave_base[i] = kmag * (math.cos(theta) * xx + math.sin(theta) * yy)
        self.colour_freq = rng.uniform(0.6, 1.2, size=3)
        self.colour_phase = rng.uniform(0, 2 * math.pi, size=3)
        self.flicker_period = rng.uniform(20.0, 40.0)
        self.flicker_phase = rng.uniform(0, 2 * math.pi)

        # Lissajous path of the centre
        rmax = self.radius * (1 + self.PULSE) + 1.0
        self.ratio = _LISSAJOUS_RATIOS[int(rng.integers(len(_LISSAJOUS_RATIOS)))]
        self.amp = np.array([(W / 2.0 - rmax - _MARGIN - 1) * rng.uniform(0.75, 1.0),
                             (H / 2.0 - rmax - _MARGIN - 1) * rng.uniform(0.75, 1.0)])
        self.delta = rng.uniform(0, 2 * math.pi, size=2)
        self.speed = rng.uniform(3.0, 8.0)
        self.k = _time_scale(self._velocity, self.speed)

    def _velocity(self, u):
        a, b = self.ratio
        return (self.amp[0] * a * np.cos(a * u + self.delta[0]),
                self.amp[1] * b * np.cos(b * u + self.delta[1]))

    def _centre(self, t: int) -> tuple[float, float]:
        a, b = self.ratio
        u = self.k * t
        return (self.W / 2.0 + self.amp[0] * math.sin(a * u + self.delta[0]),
                self.H / 2.0 + self.amp[1] * math.sin(b * u + self.delta[1]))

    def _glyph(self, t: int) -> tuple[_Sprite, float, float, float]:
        cx, cy = self._centre(t)
        R = self.radius * (1 + self.PULSE * math.sin(2 * math.pi * t / self.pulse_period + self.pulse_phase))
        half = int(math.ceil(R)) + 2
        x0, y0 = int(math.floor(cx)) - half, int(math.floor(cy)) - half
        size = 2 * half + 2
        lcx, lcy = cx - x0, cy - y0
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        if self.kind == "star":
            ang = self.angle0 + self.spin * t
            pts = []
            for i in range(2 * self.points):
                rho = R if i % 2 == 0 else R * self.inner
                phi = ang + math.pi * i / self.points
                pts.append((lcx + rho * math.cos(phi), lcy + rho * math.sin(phi)))
            draw.polygon(pts, fill=1)
        else:
            r_in = R * self.inner
            draw.ellipse([lcx - R, lcy - R, lcx + R, lcy + R], fill=1)
            draw.ellipse([lcx - r_in, lcy - r_in, lcx + r_in, lcy + r_in], fill=0)
        return _Sprite(y0, x0, np.asarray(canvas, dtype=np.uint8)), lcx, lcy, R

    def target_sprite(self, t: int) -> _Sprite:
        return self._glyph(t)[0]

    def visibility(self, t: int) -> float:
        return 1.0

    def gain(self, t: int) -> float:
        return 1.0 + self.FLICKER * math.sin(2 * math.pi * t / self.flicker_period + self.flicker_phase)

    def _plasma(self, t: int) -> np.ndarray:
        v = np.zeros((self.H, self.W), np.float32)
        for i in range(len(self.wave_base)):
            v += np.sin(self.wave_base[i] + np.float32(self.wave_phase[i] + self.wave_drift[i] * t))
        v /= np.float32(len(self.wave_base))
        img = np.empty((self.H, self.W, 3), np.float32)
        for c in range(3):
            img[..., c] = 127.5 + 127.5 * np.sin(np.float32(math.pi * self.colour_freq[c]) * v
                                                 + np.float32(self.colour_phase[c]))
        return img

    def render(self, t: int, background=None) -> np.ndarray:
        if background is None:
            img = self._plasma(t)
        else:
            img = np.empty((self.H, self.W, 3), np.float32)
            img[:] = _check_background(background)
        sprite, lcx, lcy, R = self._glyph(t)
        h, w = sprite.labels.shape
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.clip(np.hypot(xx - lcx, yy - lcy) / R, 0.0, 1.0)[..., None]
        colours = (self.c_in * (1 - r) + self.c_out * r).astype(np.float32)
        region = img[sprite.y0:sprite.y0 + h, sprite.x0:sprite.x0 + w]
        region[sprite.mask] = colours[sprite.mask]
        img *= np.float32(self.gain(t))
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------
# style 3: street-walkers
# --------------------------------------------------------------------------------------
_SKIN = np.array([[241, 194, 160], [224, 172, 130], [198, 134, 94], [141, 85, 54], [255, 219, 185]])


@dataclass
class _Walker:
    height: float          # nominal height (legs level), px
    width: int
    ground: float          # mean ground row (feet)
    drift_amp: float       # ground line drift, px
    drift_period: float
    drift_phase: float
    speed: float           # px/frame
    lo: float              # range of the centre x
    hi: float
    u0: float              # triangle-wave phase
    walk_period: float
    walk_phase: float
    swing: float           # leg length alternation, fraction
    colours: np.ndarray    # [5, 3]: unused, head, torso, left leg, right leg

    def centre_x(self, t: float) -> tuple[float, int]:
        L = self.hi - self.lo
        u = (self.u0 + self.speed * t) % (2 * L)
        return (self.lo + u, 1) if u < L else (self.lo + 2 * L - u, -1)

    def ground_row(self, t: float) -> int:
        return int(round(self.ground + self.drift_amp * math.sin(2 * math.pi * t / self.drift_period
                                                                 + self.drift_phase)))

    def set_crossing(self, t: float, x: float, direction: int) -> None:
        """Choose u0 so that the centre is at x (clipped to the range), moving ``direction``, at t."""
        L = self.hi - self.lo
        x = min(max(x, self.lo), self.hi)
        u = (x - self.lo) if direction > 0 else (2 * L - (x - self.lo))
        self.u0 = (u - self.speed * t) % (2 * L)

    def sprite(self, t: int) -> _Sprite:
        W = self.width
        hh = max(3, int(round(0.2 * self.height)))
        th = max(4, int(round(0.38 * self.height)))
        leg0 = self.height - hh - th
        sw = math.sin(2 * math.pi * t / self.walk_period + self.walk_phase)
        left = max(2, int(round(leg0 * (1 + self.swing * sw))))
        right = max(2, int(round(leg0 * (1 - self.swing * sw))))
        total = hh + th + max(left, right)
        canvas = Image.new("L", (W, total), 0)
        draw = ImageDraw.Draw(canvas)
        head_w = max(3, int(round(0.62 * W)))
        hx0 = (W - head_w) // 2
        draw.ellipse([hx0, 0, hx0 + head_w - 1, hh], fill=1)           # head (overlaps torso 1 row)
        draw.rectangle([0, hh, W - 1, hh + th - 1], fill=2)            # torso
        leg_w = max(2, int(round(0.36 * W)))
        inset = int(round(0.06 * W))
        draw.rectangle([inset, hh + th, inset + leg_w - 1, hh + th + left - 1], fill=3)
        draw.rectangle([W - inset - leg_w, hh + th, W - inset - 1, hh + th + right - 1], fill=4)
        cx, _ = self.centre_x(t)
        x0 = int(round(cx - W / 2.0))
        y0 = self.ground_row(t) - total + 1
        return _Sprite(y0, x0, np.asarray(canvas, dtype=np.uint8))


def _other_speed(rng: np.random.Generator, v: float, lo: float = 2.0, hi: float = 5.0,
                 gap: float = 1.5) -> float:
    """A speed in [lo, hi] at least ``gap`` from v (walkers never stroll side by side for long)."""
    parts = [(lo, min(hi, v - gap)), (max(lo, v + gap), hi)]
    parts = [(a, b) for a, b in parts if b > a] or [(lo, hi)]
    lengths = np.array([b - a for a, b in parts])
    a, b = parts[int(rng.choice(len(parts), p=lengths / lengths.sum()))]
    return float(rng.uniform(a, b))


class _StreetWalkers:
    def __init__(self, rng: np.random.Generator, H: int, W: int, n_frames: int, seed: int = 0):
        s = min(H, W) / _REF_SIDE
        self.H, self.W = H, W
        self._build_street(rng, H, W, s)
        self.pan = rng.uniform(1.0, 3.0) * rng.choice([-1.0, 1.0])

        horizon = min(n_frames, _SPEED_HORIZON)
        torso = _far_colours(rng, 3, 150.0, lo=20, hi=236)
        legs = _far_colours(rng, 3, 90.0, lo=10, hi=160)
        skins = _SKIN[rng.integers(len(_SKIN), size=3)]

        def make(height, ground, drift_amp, speed, idx) -> _Walker:
            aspect = rng.uniform(0.35, 0.5)
            width = max(4, int(round(aspect * height)))
            lo = width / 2.0 + _MARGIN + 1
            hi = W - width / 2.0 - _MARGIN - 1
            lut = np.zeros((5, 3), np.uint8)
            lut[1] = np.clip(skins[idx] + rng.integers(-12, 13, size=3), 0, 255)
            lut[2] = torso[idx]
            lut[3] = legs[idx]
            lut[4] = np.clip(legs[idx].astype(int) + 25, 0, 255)
            return _Walker(height=height, width=width, ground=ground, drift_amp=drift_amp,
                           drift_period=rng.uniform(90.0, 160.0), drift_phase=rng.uniform(0, 2 * math.pi),
                           speed=speed, lo=lo, hi=hi, u0=rng.uniform(0, 2 * (hi - lo)),
                           walk_period=rng.uniform(14.0, 24.0), walk_phase=rng.uniform(0, 2 * math.pi),
                           swing=rng.uniform(0.12, 0.2), colours=lut)

        ht = rng.uniform(50.0, 80.0) * s
        drift = rng.uniform(8.0, 16.0) * s
        ground = rng.uniform(0.74, 0.8) * H
        self.target = make(ht, ground, drift, rng.uniform(3.0, 6.0), 0)

        # front walker: closer (lower ground line), 70-95 % of the height: hides the lower part
        d_front = rng.uniform(0.15, 0.3) * ht
        g_front = min(ground + d_front, H - 2 - drift)
        self.front = make(ht * rng.uniform(0.7, 0.95), g_front, drift, _other_speed(rng, self.target.speed), 1)
        # behind walker: further (higher ground line), a different size
        d_behind = rng.uniform(0.1, 0.25) * ht
        f_behind = rng.uniform(0.75, 0.9) if rng.uniform() < 0.5 else rng.uniform(1.1, 1.25)
        self.behind = make(ht * f_behind, ground - d_behind, drift, _other_speed(rng, self.target.speed), 2)
        # all share the ground drift phase (they walk along the same pavement slope)
        self.front.drift_phase = self.behind.drift_phase = self.target.drift_phase
        self.front.drift_period = self.behind.drift_period = self.target.drift_period

        # schedule the first crossings (head-on) inside the first frames
        tc_front = rng.uniform(0.15, 0.4) * horizon
        tc_behind = rng.uniform(0.5, 0.85) * horizon
        for walker, tc in ((self.front, tc_front), (self.behind, tc_behind)):
            x, d = self.target.centre_x(tc)
            walker.set_crossing(tc, x, -d)

    def _build_street(self, rng, H: int, W: int, s: float) -> None:
        P = max(2048, 4 * W)
        strip = np.empty((H, P, 3), np.uint8)
        y_sky = int(round(rng.uniform(0.08, 0.16) * H))
        y_pave = int(round(rng.uniform(0.5, 0.58) * H))
        y_kerb = int(round(rng.uniform(0.84, 0.88) * H))
        kerb_h = max(2, int(round(3 * s)))
        # sky: vertical gradient
        sky_top = rng.integers(90, 170, size=3)
        sky_bot = np.clip(sky_top + rng.integers(30, 80, size=3), 0, 255)
        frac = np.linspace(0, 1, y_pave)[:, None]
        strip[:y_pave] = (sky_top * (1 - frac) + sky_bot * frac).astype(np.uint8)[:, None, :]
        # buildings with windows
        x = 0
        while x < P:
            bw = int(rng.integers(int(40 * s), int(120 * s) + 1))
            bw = min(bw, P - x) if P - x - bw >= int(20 * s) else P - x
            top = int(rng.integers(y_sky, max(y_sky + 1, int(0.3 * H))))
            facade = rng.integers(60, 200, size=3).astype(np.uint8)
            strip[top:y_pave, x:x + bw] = facade
            ww = max(2, int(rng.integers(int(5 * s), int(10 * s) + 1)))
            wh = max(ww + 2, int(rng.integers(int(10 * s), int(20 * s) + 1)))
            gx = max(2, int(rng.integers(int(4 * s), int(8 * s) + 1)))
            gy = max(2, int(rng.integers(int(5 * s), int(10 * s) + 1)))
            yy = top + gy
            while yy + wh <= y_pave - gy:
                xx = x + gx
                while xx + ww <= x + bw - gx:
                    strip[yy:yy + wh, xx:xx + ww] = rng.integers(0, 256, size=3).astype(np.uint8)
                    xx += ww + gx
                yy += wh + gy
            x += bw
        # pavement with seams
        pave = rng.integers(140, 200)
        strip[y_pave:y_kerb] = np.array([pave, pave - 5, pave - 12], np.uint8)
        seam = max(12, int(rng.integers(int(20 * s), int(32 * s) + 1)))
        strip[y_pave:y_kerb, ::seam] = np.array([pave - 40] * 3, np.uint8)
        strip[y_pave:y_pave + 1] = np.array([pave - 50] * 3, np.uint8)
        # kerb and road with lane dashes
        strip[y_kerb:y_kerb + kerb_h] = np.array([200, 200, 195], np.uint8)
        road = rng.integers(40, 80)
        strip[y_kerb + kerb_h:] = np.array([road, road, road + 5], np.uint8)
        lane_y = (y_kerb + kerb_h + H) // 2
        dash, gap = int(24 * s) + 4, int(16 * s) + 4
        cols = (np.arange(P) % (dash + gap)) < dash
        strip[lane_y:lane_y + max(1, int(2 * s)), cols] = np.array([230, 220, 120], np.uint8)
        self.strip = strip

    def _background(self, t: int) -> np.ndarray:
        off = int(math.floor(self.pan * t))
        cols = (np.arange(self.W) + off) % self.strip.shape[1]
        return self.strip[:, cols]

    def sprites(self, t: int) -> dict[str, _Sprite]:
        return {"behind": self.behind.sprite(t), "target": self.target.sprite(t),
                "front": self.front.sprite(t)}

    def target_sprite(self, t: int) -> _Sprite:
        return self.target.sprite(t)

    def visibility(self, t: int) -> float:
        sp = self.sprites(t)
        tm = sp["target"].full_mask(self.H, self.W)
        fm = sp["front"].full_mask(self.H, self.W)
        return float(1.0 - np.count_nonzero(tm & fm) / np.count_nonzero(tm))

    def render(self, t: int, background=None) -> np.ndarray:
        if background is None:
            img = self._background(t)
            sp = self.sprites(t)
            sp["behind"].paint(img, self.behind.colours)
            sp["target"].paint(img, self.target.colours)
            sp["front"].paint(img, self.front.colours)
        else:
            img = np.empty((self.H, self.W, 3), np.uint8)
            img[:] = _check_background(background)
            self.target.sprite(t).paint(img, self.target.colours)
        return img


_IMPLS = {"checker-blocks": _CheckerBlocks, "glyph-plasma": _GlyphPlasma, "street-walkers": _StreetWalkers}


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def _check_style(style) -> str:
    if style not in HELDOUT_STYLES:
        raise ValueError(f"unknown held-out style {style!r}; choose one of {', '.join(HELDOUT_STYLES)}")
    return style


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_size(size) -> tuple[int, int]:
    try:
        H, W = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), got {size!r}") from None
    return _check_int(H, "size H", _MIN_SIDE), _check_int(W, "size W", _MIN_SIDE)


class HeldoutSequence:
    """A held-out sequence of one of ``HELDOUT_STYLES``, deterministic in ``seed``.

    ``frame(t)`` is stateless (closed form in t); iteration yields frames one at a time.
    """

    def __init__(self, style: str, seed: int = 0, n_frames: int = 150, size: tuple[int, int] = (256, 256)):
        self.style = _check_style(style)
        self.seed = _check_int(seed, "seed", 0)
        self.n_frames = _check_int(n_frames, "n_frames", 1)
        self.size = _check_size(size)
        ss = np.random.SeedSequence([self.seed, zlib.crc32(self.style.encode())])
        self._impl = _IMPLS[self.style](np.random.default_rng(ss), self.size[0], self.size[1], self.n_frames,
                                        self.seed)

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return (f"HeldoutSequence(style={self.style!r}, seed={self.seed}, n_frames={self.n_frames}, "
                f"size={self.size})")

    def _check_t(self, t) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ValueError(f"frame index must be an integer, got {t!r}")
        if not 0 <= t < self.n_frames:
            raise ValueError(f"frame index {t} outside [0, {self.n_frames})")
        return int(t)

    def frame(self, t: int, render: bool = True) -> HeldoutFrame:
        t = self._check_t(t)
        box = self._impl.target_sprite(t).box()
        image = self._impl.render(t) if render else None
        return HeldoutFrame(index=t, image=image, box=box, visibility=float(self._impl.visibility(t)))

    def __iter__(self) -> Iterator[HeldoutFrame]:
        for t in range(self.n_frames):
            yield self.frame(t)

    def boxes(self) -> np.ndarray:
        """Ground truth [n_frames, 4] xywh, without rendering any image."""
        return np.stack([self._impl.target_sprite(t).box() for t in range(self.n_frames)])

    # ---- private helpers (tests, debugging) ----
    def _target_mask(self, t: int) -> np.ndarray:
        """Boolean [H, W] mask of the target's painted pixels in frame t (before occlusion)."""
        return self._impl.target_sprite(self._check_t(t)).full_mask(*self.size)

    def _render(self, t: int, background=None) -> np.ndarray:
        """Frame t; with ``background`` (an RGB colour) the target alone on that flat colour."""
        return self._impl.render(self._check_t(t), background)

    def _walker_masks(self, t: int) -> dict[str, np.ndarray]:
        """street-walkers only: full-frame masks of 'behind', 'target', 'front' (paint order)."""
        if self.style != "street-walkers":
            raise ValueError("_walker_masks is only defined for street-walkers")
        H, W = self.size
        return {k: s.full_mask(H, W) for k, s in self._impl.sprites(self._check_t(t)).items()}


def write_heldout_sequence(root, style: str, seed: int = 0, n_frames: int = 150, size=(256, 256),
                           quality: int = 90) -> Path:
    """GOT-10k layout in folder ``root`` (created if missing; a folder that already holds files
    is refused with ValueError): 00000001.jpg ..., groundtruth.txt with 'x,y,w,h' rows
    (4 decimals), and style.json {style, seed, n_frames, size, generator}."""
    seq = HeldoutSequence(style, seed=seed, n_frames=n_frames, size=size)
    quality = _check_int(quality, "quality", 1)
    if quality > 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    root = Path(os.fspath(root))
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"{root} exists and is not a folder")
        if any(root.iterdir()):
            raise ValueError(f"{root} already holds files; give an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for f in seq:
        Image.fromarray(f.image).save(root / f"{f.index + 1:08d}.jpg", quality=quality)
        lines.append(",".join(f"{v:.4f}" for v in f.box) + "\n")
    (root / "groundtruth.txt").write_text("".join(lines))
    meta = {"style": seq.style, "seed": seq.seed, "n_frames": seq.n_frames, "size": list(seq.size),
            "generator": _GENERATOR}
    (root / "style.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root
