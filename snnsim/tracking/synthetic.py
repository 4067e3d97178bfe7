"""Synthetic tracking sequences: deterministic by seed, numpy + PIL, no downloads.

A scene has a smooth textured background, ``n_targets`` textured rectangles that move at
constant velocity (bouncing off the frame edges) and change scale sinusoidally, optional
distractors (same texture as target 0 with a slight colour change, for SOT) and a vertical
occluder bar that sweeps across target 0 in the middle third of the sequence. Boxes are
integer pixels, xywh; the visibility of a target is the fraction of its box not covered by
objects drawn after it (later targets, the occluder).

Outputs:
* :func:`generate_frames` - in memory, one :class:`SyntheticFrame` at a time;
* :func:`sot_frames` - in memory ``(image, box)`` pairs of target 0 (for training loops);
* :func:`write_sot_sequence` - GOT-10k layout (00000001.jpg ..., groundtruth.txt);
* :func:`write_mot_sequence` - MOTChallenge layout (seqinfo.ini, img1/, gt/gt.txt with
  class 1 and visibility; distractors, if any, as class 8 with conf 0 as MOT17 marks them).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

__all__ = ["SyntheticFrame", "SyntheticScene", "generate_frames", "sot_frames",
           "write_sot_sequence", "write_mot_sequence"]

_TEX = 32  # texture resolution before resizing to the box


@dataclass(frozen=True)
class SyntheticFrame:
    index: int                      # 0-based
    image: np.ndarray | None        # uint8 [H, W, 3] RGB (None when render=False)
    boxes: np.ndarray               # [n_targets, 4] xywh, integer-valued
    visibility: np.ndarray          # [n_targets] in [0, 1]
    distractor_boxes: np.ndarray    # [n_distractors, 4] xywh
    occluder_box: np.ndarray | None  # [4] xywh, None when off screen


@dataclass
class _Mover:
    w0: float
    h0: float
    c0: np.ndarray          # initial centre (x, y)
    vel: np.ndarray         # px / frame
    amp: float              # relative scale amplitude
    period: float
    phase: float
    texture: np.ndarray     # uint8 [_TEX, _TEX, 3]

    def box(self, t: int, H: int, W: int) -> np.ndarray:
        s = 1.0 + self.amp * math.sin(2 * math.pi * t / self.period + self.phase)
        w = max(4, int(round(self.w0 * s)))
        h = max(4, int(round(self.h0 * s)))
        cx = _bounce(self.c0[0] + self.vel[0] * t, self.w0 * (1 + self.amp) / 2 + 1, W)
        cy = _bounce(self.c0[1] + self.vel[1] * t, self.h0 * (1 + self.amp) / 2 + 1, H)
        x = min(max(int(round(cx - w / 2)), 0), W - w)
        y = min(max(int(round(cy - h / 2)), 0), H - h)
        return np.array([x, y, w, h], dtype=np.float64)


def _bounce(p: float, half: float, extent: int) -> float:
    """Reflect a coordinate into [half, extent - half] (closed form, any t)."""
    lo, hi = half, extent - half
    if hi <= lo:
        return extent / 2
    span = hi - lo
    u = (p - lo) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def _texture(rng: np.random.Generator, colours: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """A blocky two-colour pattern with stripes and a dark rim -> uint8 [_TEX, _TEX, 3]."""
    cells = np.kron(pattern, np.ones((_TEX // pattern.shape[0], _TEX // pattern.shape[1])))
    tex = np.where(cells[..., None] > 0, colours[1], colours[0]).astype(np.float64)
    stripes = 0.85 + 0.15 * np.cos(np.arange(_TEX) * 2 * math.pi / 8)[:, None, None]
    tex = tex * stripes
    tex[:2], tex[-2:], tex[:, :2], tex[:, -2:] = 30, 30, 30, 30
    return np.clip(tex, 0, 255).astype(np.uint8)


class SyntheticScene:
    """The random draws of one scene; frames are rendered on demand (closed-form motion)."""

    def __init__(self, size: tuple[int, int] = (256, 256), n_targets: int = 1, n_distractors: int = 0,
                 seed: int = 0, occluder: bool = True, mot: bool = False, n_frames: int | None = 64):
        H, W = int(size[0]), int(size[1])
        if H < 32 or W < 32:
            raise ValueError(f"synthetic frame size must be at least 32x32, got {W}x{H}")
        if H * W > 8192 * 8192:   # the background is allocated whole: checked first
            raise ValueError(f"synthetic frame size {W}x{H} is larger than the limit 8192x8192 pixels; "
                             f"pass a smaller size")
        if n_targets < 1 or n_distractors < 0:
            raise ValueError(f"need n_targets >= 1 and n_distractors >= 0, got {n_targets}, {n_distractors}")
        self.H, self.W = H, W
        self.n_frames = n_frames
        rng = np.random.default_rng(seed)
        m = min(H, W)

        # background: smooth colour field + fixed fine grain
        grid = rng.integers(60, 200, size=(6, 6, 3)).astype(np.uint8)
        bg = np.asarray(Image.fromarray(grid).resize((W, H), Image.BILINEAR), dtype=np.int16)
        bg = bg + rng.integers(-10, 11, size=(H, W, 1))
        self.background = np.clip(bg, 0, 255).astype(np.uint8)

        def mover(texture: np.ndarray) -> _Mover:
            if mot:  # pedestrian-like: upright boxes
                w0 = rng.uniform(0.07, 0.11) * m
                h0 = w0 * rng.uniform(1.8, 2.4)
                speed, amp = rng.uniform(1.0, 2.5), rng.uniform(0.05, 0.15)
            else:
                w0 = rng.uniform(0.14, 0.22) * m
                h0 = w0 * rng.uniform(0.6, 1.6)
                speed, amp = rng.uniform(1.5, 4.0), rng.uniform(0.15, 0.3)
            ang = rng.uniform(0, 2 * math.pi)
            c0 = np.array([rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.8) * H])
            return _Mover(w0, h0, c0, speed * np.array([math.cos(ang), math.sin(ang)]), amp,
                          rng.uniform(40, 80), rng.uniform(0, 2 * math.pi), texture)

        self.targets: list[_Mover] = []
        patterns = []
        for _ in range(n_targets):
            pattern = rng.integers(0, 2, size=(4, 4))
            colours = rng.integers(20, 236, size=(2, 3)).astype(np.float64)
            patterns.append((pattern, colours))
            self.targets.append(mover(_texture(rng, colours, pattern)))
        self.distractors: list[_Mover] = []
        pattern0, colours0 = patterns[0]
        for _ in range(n_distractors):  # similar-looking: target 0's pattern, colours nudged
            colours = np.clip(colours0 + rng.integers(-25, 26, size=(2, 3)), 0, 255)
            d = mover(_texture(rng, colours, pattern0))
            d.w0, d.h0 = self.targets[0].w0 * rng.uniform(0.85, 1.15), self.targets[0].h0 * rng.uniform(0.85, 1.15)
            self.distractors.append(d)
        self.occluder = occluder
        self.occ_width = max(3, int(round(0.5 * self.targets[0].w0)))
        self.occ_colour = rng.integers(40, 90, size=3).astype(np.uint8)

    # -- geometry -------------------------------------------------------------------------
    def _occluder_box(self, t: int, target0: np.ndarray) -> np.ndarray | None:
        if not self.occluder:
            return None
        period = self.n_frames if self.n_frames else 64
        window = max(period / 3, 3.0)
        tt = t % period
        start = (period - window) / 2
        if not (start <= tt <= start + window):
            return None
        frac = (tt - start) / window  # 0 .. 1 across the window
        cx = target0[0] + target0[2] / 2 + (frac - 0.5) * self.W
        x0 = int(round(cx - self.occ_width / 2))
        x1, x0 = min(x0 + self.occ_width, self.W), max(x0, 0)
        if x1 <= x0:
            return None
        return np.array([x0, 0, x1 - x0, self.H], dtype=np.float64)

    def frame(self, t: int, render: bool = True) -> SyntheticFrame:
        H, W = self.H, self.W
        boxes = np.stack([m.box(t, H, W) for m in self.targets])
        dboxes = np.stack([m.box(t, H, W) for m in self.distractors]) if self.distractors else np.zeros((0, 4))
        occ = self._occluder_box(t, boxes[0])

        # visibility: covered by later targets (drawn on top) and the occluder
        vis = np.ones(len(boxes))
        for i, (x, y, w, h) in enumerate(boxes.astype(int)):
            cover = np.zeros((h, w), dtype=bool)
            later = list(boxes[i + 1:]) + ([occ] if occ is not None else [])
            for (bx, by, bw, bh) in np.asarray(later, dtype=int).reshape(-1, 4):
                x0, y0 = max(bx - x, 0), max(by - y, 0)
                x1, y1 = min(bx + bw - x, w), min(by + bh - y, h)
                if x1 > x0 and y1 > y0:
                    cover[y0:y1, x0:x1] = True
            vis[i] = 1.0 - cover.mean()

        image = None
        if render:
            image = self.background.copy()
            for m, b in list(zip(self.distractors, dboxes)) + list(zip(self.targets, boxes)):
                x, y, w, h = b.astype(int)
                patch = Image.fromarray(m.texture).resize((w, h), Image.BILINEAR)
                image[y:y + h, x:x + w] = np.asarray(patch)
            if occ is not None:
                x, y, w, h = occ.astype(int)
                image[y:y + h, x:x + w] = self.occ_colour
                image[y:y + h, x:x + w:4] //= 2  # a little texture on the bar
        return SyntheticFrame(t, image, boxes, vis, dboxes, occ)


def generate_frames(n_frames: int | None = 64, size: tuple[int, int] = (256, 256), n_targets: int = 1,
                    seed: int = 0, n_distractors: int = 0, occluder: bool = True, mot: bool = False,
                    render: bool = True) -> Iterator[SyntheticFrame]:
    """Yield frames 0..n_frames-1 (endless when n_frames is None), rendered one at a time."""
    scene = SyntheticScene(size, n_targets, n_distractors, seed, occluder, mot, n_frames)
    t = 0
    while n_frames is None or t < n_frames:
        yield scene.frame(t, render=render)
        t += 1


def sot_frames(n_frames: int | None = 64, size: tuple[int, int] = (256, 256), seed: int = 0,
               n_distractors: int = 2, occluder: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """In-memory single-object stream: ``(image uint8 [H, W, 3], box xywh float [4])`` per frame."""
    for f in generate_frames(n_frames, size, 1, seed, n_distractors, occluder):
        yield f.image, f.boxes[0].copy()


def _save_jpeg(image: np.ndarray, path: Path, quality: int) -> None:
    Image.fromarray(image).save(path, quality=quality)


def write_sot_sequence(root: str | os.PathLike, n_frames: int = 64, size: tuple[int, int] = (256, 256),
                       seed: int = 0, n_distractors: int = 2, occluder: bool = True,
                       quality: int = 90) -> Path:
    """Write a GOT-10k-style sequence into folder ``root`` (created): 00000001.jpg ..., groundtruth.txt."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for f in generate_frames(n_frames, size, 1, seed, n_distractors, occluder):
        _save_jpeg(f.image, root / f"{f.index + 1:08d}.jpg", quality)
        lines.append(",".join(f"{v:.4f}" for v in f.boxes[0]) + "\n")
    (root / "groundtruth.txt").write_text("".join(lines))
    return root


def write_mot_sequence(root: str | os.PathLike, n_frames: int = 64, size: tuple[int, int] = (256, 256),
                       n_targets: int = 4, seed: int = 0, frame_rate: int = 30, n_distractors: int = 0,
                       occluder: bool = True, quality: int = 90) -> Path:
    """Write a MOTChallenge-style sequence into folder ``root`` (created).

    gt/gt.txt rows: frame,id,x,y,w,h,1,1,visibility for targets (ids 1..n_targets) and
    frame,id,x,y,w,h,0,8,1 for distractors (ids after the targets).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    root = Path(root)
    (root / "img1").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(exist_ok=True)
    H, W = int(size[0]), int(size[1])
    rows = []
    for f in generate_frames(n_frames, size, n_targets, seed, n_distractors, occluder, mot=True):
        _save_jpeg(f.image, root / "img1" / f"{f.index + 1:06d}.jpg", quality)
        for k, (b, v) in enumerate(zip(f.boxes, f.visibility)):
            rows.append((k + 1, f.index + 1, f"{f.index + 1},{k + 1},{b[0]:g},{b[1]:g},{b[2]:g},{b[3]:g},1,1,{v:.3f}\n"))
        for k, b in enumerate(f.distractor_boxes):
            tid = n_targets + k + 1
            rows.append((tid, f.index + 1, f"{f.index + 1},{tid},{b[0]:g},{b[1]:g},{b[2]:g},{b[3]:g},0,8,1\n"))
    rows.sort(key=lambda r: (r[0], r[1]))  # MOTChallenge gt is ordered by id, then frame
    (root / "gt" / "gt.txt").write_text("".join(r[2] for r in rows))
    (root / "seqinfo.ini").write_text(
        "[Sequence]\n"
        f"name={root.name}\nimDir=img1\nframeRate={frame_rate}\nseqLength={n_frames}\n"
        f"imWidth={W}\nimHeight={H}\nimExt=.jpg\n")
    return root
