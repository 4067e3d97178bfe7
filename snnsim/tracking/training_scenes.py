"""The training distribution of the trained trackers: diverse single-object scenes.

`spiketrack-tiny` was first trained on one generator (`snnsim.tracking.synthetic`) and
learned that generator, not tracking: on a sequence drawn by other code it lost the target
within five frames. `DiverseScene` draws each scene's look from many independent families so
that what is common to all of them is the task itself -- follow the thing in the first box:

* appearance: targets, distractors, occluders and backgrounds are textures from six
  families -- crops of the natural photographs that ship inside scikit-image's wheel
  (`skimage/data/*.png|jpg`, read from the installed package, never fetched), value noise,
  stripes, checkers, gradients and Gaussian blobs -- in random colours; targets are
  rectangles or ellipses;
* geometry: sqrt(area) 12-90 px, aspect ratio w / h from 0.3 to 3 (log-uniform), a smooth
  scale change (up to +-40 % plus a drift), speeds from 0 to 18 px per frame with a
  sinusoidal wobble, bouncing at the frame edges;
* camera: the background is a window into a larger world that pans (0-6 px per frame)
  and zooms (up to +-25 %);
* photometry: global lighting gain and colour cast that drift over the sequence, a slow
  brightness change of the target alone, Gaussian blur, sensor noise and JPEG artefacts;
* clutter: 0-3 distractors, each either a look-alike (the target's own texture, colours
  nudged, similar size) or unlike (another texture), passing behind or in front of the
  target; 0-2 occluders whose path crosses the target's.

Ground truth is exact by construction: the box is the integer pixel extent the target is
pasted into (an ellipse's mask touches all four edges), and `visibility` is the fraction of
the target's mask pixels not covered by anything painted after it.

Every frame is a closed-form function of (seed, t): `frame(t)` renders frame t without the
frames before it, so training draws (template, search) frame pairs from a fresh scene at
the cost of two frames.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .synthetic import _bounce  # reflect a coordinate into [half, extent - half], closed form

__all__ = ["TEXTURE_FAMILIES", "PHOTO_FILES", "DiverseFrame", "DiverseScene", "diverse_frames", "photo"]

TEXTURE_FAMILIES = ("photo", "noise", "stripes", "checkers", "gradient", "blobs")

# The natural images inside scikit-image 0.24's wheel (skimage/data), colour and grey.
PHOTO_FILES = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png",
               "coins.png", "color.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
               "moon.png", "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png")


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """One of PHOTO_FILES as uint8 RGB, read from the installed scikit-image package (the
    files are part of its wheel; nothing is downloaded). Cached: each is decoded once."""
    if name not in PHOTO_FILES:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(PHOTO_FILES)}")
    try:
        data = resources.files("skimage.data").joinpath(name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError(f"scikit-image's bundled image {name} is missing ({exc}); "
                           "install the pinned scikit-image (make setup)") from exc
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    # the largest images are shrunk once so crops cost the same whatever the file
    if max(rgb.shape[:2]) > 640:
        f = 640 / max(rgb.shape[:2])
        rgb = np.asarray(Image.fromarray(rgb).resize((round(rgb.shape[1] * f), round(rgb.shape[0] * f)),
                                                     Image.BILINEAR))
    return rgb


# ----------------------------------------------------------------------------- textures
def _colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random colours, at least 60 levels apart (L1 / 3) from each other where possible."""
    out = [rng.integers(0, 256, 3)]
    while len(out) < n:
        for _ in range(20):
            c = rng.integers(0, 256, 3)
            if all(np.abs(c - o).mean() >= 60 for o in out):
                break
        out.append(c)
    return np.stack(out).astype(np.float64)


def _mix(weight: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Blend colours[0] -> colours[1] (-> colours[2]) along weight in [0, 1] -> float [h, w, 3]."""
    w = np.clip(weight, 0.0, 1.0)[..., None]
    if len(colours) == 2:
        return colours[0] * (1 - w) + colours[1] * w
    lo = np.clip(2 * w, 0, 1)
    hi = np.clip(2 * w - 1, 0, 1)
    return colours[0] * (1 - lo) + colours[1] * (lo - hi) + colours[2] * hi


def _value_noise(rng: np.random.Generator, h: int, w: int, octaves: int) -> np.ndarray:
    """Multi-octave value noise in [0, 1] (bilinear upsampling of random grids)."""
    acc = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    cells = int(rng.integers(2, 6))
    for _ in range(octaves):
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        up = np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BILINEAR))
        acc += amp * up
        total += amp
        amp *= 0.5
        cells *= 2
    acc /= total
    return (acc - acc.min()) / max(acc.max() - acc.min(), 1e-9)


def texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    """A uint8 [h, w, 3] texture of one family, drawn from rng."""
    if family == "photo":
        img = photo(PHOTO_FILES[int(rng.integers(len(PHOTO_FILES)))])
        H, W = img.shape[:2]
        ch = int(rng.integers(max(8, H // 8), H + 1))
        cw = int(np.clip(round(ch * (w / h) * math.exp(rng.normal(0, 0.3))), 8, W))
        y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
        crop = Image.fromarray(img[y:y + ch, x:x + cw]).resize((w, h), Image.BILINEAR)
        out = np.asarray(crop, dtype=np.float64)
        if rng.random() < 0.3:  # recolour: grey photos become tinted, colour ones shift hue
            out = out[..., rng.permutation(3)]
        return np.clip(out, 0, 255).astype(np.uint8)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    colours = _colours(rng, 3 if rng.random() < 0.3 else 2).astype(np.float32)
    theta = rng.uniform(0, math.pi)
    u = xs * math.cos(theta) + ys * math.sin(theta)
    v = -xs * math.sin(theta) + ys * math.cos(theta)
    if family == "noise":
        weight = _value_noise(rng, h, w, int(rng.integers(1, 5)))
    elif family == "stripes":
        period = rng.uniform(3, max(4.0, max(h, w) / 2))
        weight = 0.5 + 0.5 * np.sin(2 * math.pi * u / period)
        if rng.random() < 0.5:
            weight = (weight > 0.5).astype(np.float32)
    elif family == "checkers":
        cell = rng.uniform(2, max(3.0, max(h, w) / 3))
        weight = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    elif family == "gradient":
        if rng.random() < 0.5:
            weight = (u - u.min()) / max(u.max() - u.min(), 1e-9)
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = np.hypot(xs - cx, ys - cy)
            weight = r / max(r.max(), 1e-9)
    elif family == "blobs":
        weight = np.zeros((h, w), dtype=np.float32)
        for _ in range(int(rng.integers(2, 9))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            s = rng.uniform(0.05, 0.35) * max(h, w)
            weight += rng.uniform(-1, 1) * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * s * s))
        weight = (weight - weight.min()) / max(weight.max() - weight.min(), 1e-9)
    else:
        raise ValueError(f"unknown texture family {family!r}; known: {', '.join(TEXTURE_FAMILIES)}")
    out = _mix(weight, colours)
    if rng.random() < 0.3:  # a little fine grain on top of smooth families
        out += rng.normal(0, 8, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _random_family(rng: np.random.Generator, weights=(3, 1, 1, 1, 1, 1)) -> str:
    p = np.asarray(weights, dtype=np.float64)
    return TEXTURE_FAMILIES[int(rng.choice(len(TEXTURE_FAMILIES), p=p / p.sum()))]


# ----------------------------------------------------------------------------- motion
@dataclass
class _Path:
    """Centre c(t) = c0 + v t + A sin(2 pi t / P + phi), per axis, reflected at the edges."""
    c0: np.ndarray
    vel: np.ndarray
    wobble: np.ndarray
    period: np.ndarray
    phase: np.ndarray

    def centre(self, t: float) -> np.ndarray:
        return self.c0 + self.vel * t + self.wobble * np.sin(2 * math.pi * t / self.period + self.phase)


def _speed(rng: np.random.Generator) -> float:
    """Target speed in px / frame: a fifth nearly static, the rest slow or fast up to 18."""
    r = rng.random()
    if r < 0.2:
        return rng.uniform(0.0, 0.5)
    if r < 0.6:
        return rng.uniform(0.5, 5.0)
    return rng.uniform(5.0, 18.0)


def _random_path(rng: np.random.Generator, speed: float, H: int, W: int) -> _Path:
    ang = rng.uniform(0, 2 * math.pi)
    return _Path(c0=np.array([rng.uniform(0, W), rng.uniform(0, H)]),
                 vel=speed * np.array([math.cos(ang), math.sin(ang)]),
                 wobble=rng.uniform(0, 20, 2) * (rng.random() < 0.6),
                 period=rng.uniform(30, 120, 2), phase=rng.uniform(0, 2 * math.pi, 2))


@dataclass
class _Object:
    """A pasted object: texture, shape, base size, scale law and path."""
    texture: np.ndarray          # uint8 [th, tw, 3], resized to the box each frame
    ellipse: bool
    w0: float
    h0: float
    path: _Path
    scale_amp: float = 0.0
    scale_period: float = 100.0
    scale_phase: float = 0.0
    scale_drift: float = 0.0     # log-scale change over the whole sequence
    n_frames: int = 1
    gain_amp: float = 0.0        # slow brightness change of this object alone
    gain_period: float = 100.0

    def scale(self, t: int) -> float:
        return math.exp(self.scale_amp * math.sin(2 * math.pi * t / self.scale_period + self.scale_phase)
                        + self.scale_drift * t / max(1, self.n_frames))

    def box(self, t: int, H: int, W: int) -> np.ndarray:
        """Integer xywh box, fully inside the frame."""
        s = self.scale(t)
        w = int(min(max(4, round(self.w0 * s)), W))
        h = int(min(max(4, round(self.h0 * s)), H))
        c = self.path.centre(t)
        cx = _bounce(float(c[0]), w / 2, W)
        cy = _bounce(float(c[1]), h / 2, H)
        x = min(max(int(round(cx - w / 2)), 0), W - w)
        y = min(max(int(round(cy - h / 2)), 0), H - h)
        return np.array([x, y, w, h], dtype=np.float64)

    def mask(self, w: int, h: int) -> np.ndarray:
        """Boolean [h, w] shape mask; an ellipse touches all four edges of its box."""
        if not self.ellipse:
            return np.ones((h, w), dtype=bool)
        m = Image.new("1", (w, h), 0)
        ImageDraw.Draw(m).ellipse((0, 0, w - 1, h - 1), fill=1)
        return np.asarray(m, dtype=bool)

    def patch(self, t: int, w: int, h: int) -> np.ndarray:
        p = np.asarray(Image.fromarray(self.texture).resize((w, h), Image.BILINEAR), dtype=np.float64)
        if self.gain_amp:
            p = p * (1 + self.gain_amp * math.sin(2 * math.pi * t / self.gain_period))
        return p


@dataclass(frozen=True)
class DiverseFrame:
    index: int
    image: np.ndarray | None        # uint8 [H, W, 3] RGB (None when render=False)
    box: np.ndarray                 # [4] xywh of the target, integer-valued
    visibility: float               # fraction of the target's mask not covered
    distractor_boxes: np.ndarray    # [n, 4] xywh
    occluder_boxes: np.ndarray      # [n, 4] xywh


@dataclass
class _Camera:
    world: np.ndarray               # uint8 [Hw, Ww, 3]
    path: _Path                     # of the view centre, in world pixels
    zoom_amp: float
    zoom_period: float
    zoom_phase: float

    def view(self, t: int, H: int, W: int) -> np.ndarray:
        z = math.exp(self.zoom_amp * math.sin(2 * math.pi * t / self.zoom_period + self.zoom_phase))
        vw, vh = W / z, H / z
        Hw, Ww = self.world.shape[:2]
        c = self.path.centre(t)
        cx = _bounce(float(c[0]), vw / 2, Ww)
        cy = _bounce(float(c[1]), vh / 2, Hw)
        im = Image.fromarray(self.world).transform((W, H), Image.EXTENT,
                                                   (cx - vw / 2, cy - vh / 2, cx + vw / 2, cy + vh / 2),
                                                   Image.BILINEAR)
        return np.asarray(im, dtype=np.float64)


@dataclass
class DiverseScene:
    """One scene of the training distribution; `frame(t)` renders frame t (any order)."""

    seed: int
    size: tuple[int, int] = (256, 256)      # (H, W)
    n_frames: int = 200
    params: dict = field(init=False, repr=False)

    def __post_init__(self):
        H, W = int(self.size[0]), int(self.size[1])
        if H < 32 or W < 32:
            raise ValueError(f"frame size {self.size} is too small; use at least 32 x 32")
        rng = np.random.default_rng([int(self.seed), 0x5EED])
        n = max(1, int(self.n_frames))
        # target
        side = math.exp(rng.uniform(math.log(12), math.log(min(90, 0.4 * min(H, W)))))
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(3.0)))
        w0, h0 = side * math.sqrt(aspect), side / math.sqrt(aspect)
        w0, h0 = min(w0, 0.7 * W), min(h0, 0.7 * H)
        family = _random_family(rng)
        tex_h, tex_w = max(8, int(round(h0))), max(8, int(round(w0)))
        speed = _speed(rng)
        self.target = _Object(texture(rng, family, tex_h, tex_w), bool(rng.random() < 0.3), w0, h0,
                              _random_path(rng, speed, H, W),
                              scale_amp=rng.uniform(0, 0.4), scale_period=rng.uniform(40, 200),
                              scale_phase=rng.uniform(0, 2 * math.pi), scale_drift=rng.uniform(-0.4, 0.4),
                              n_frames=n, gain_amp=rng.uniform(0, 0.25), gain_period=rng.uniform(40, 200))
        # camera over a world twice the frame (drawn at the frame's size and enlarged: the
        # texture maths on 4x the pixels would cost more than the frames themselves)
        world_family = _random_family(rng, (4, 2, 1, 1, 1, 1))
        world = texture(rng, world_family, H, W)
        if rng.random() < 0.4:  # a second layer blended in: busier backgrounds
            world = ((world.astype(np.uint16) + texture(rng, _random_family(rng), H, W)) // 2).astype(np.uint8)
        world = np.asarray(Image.fromarray(world).resize((2 * W, 2 * H), Image.BILINEAR))
        pan = rng.uniform(0, 6) * (rng.random() < 0.6)
        self.camera = _Camera(world, _random_path(rng, pan, 2 * H, 2 * W), zoom_amp=rng.uniform(0, 0.25),
                              zoom_period=rng.uniform(50, 200), zoom_phase=rng.uniform(0, 2 * math.pi))
        # distractors: look-alike (the target's texture, nudged) or unlike (another texture)
        self.behind, self.front = [], []
        lookalikes = 0
        for _ in range(int(rng.choice(4, p=[0.3, 0.3, 0.25, 0.15]))):
            s = math.exp(rng.normal(0, 0.2))
            if rng.random() < 0.5:
                tex = np.clip(self.target.texture.astype(np.int16) + rng.integers(-30, 31, 3), 0, 255
                              ).astype(np.uint8)
                dw, dh, ell = w0 * s, h0 * s, self.target.ellipse
                lookalikes += 1
            else:
                dside = side * math.exp(rng.normal(0, 0.4))
                da = math.exp(rng.uniform(math.log(0.3), math.log(3.0)))
                dw, dh, ell = dside * math.sqrt(da), dside / math.sqrt(da), bool(rng.random() < 0.3)
                tex = texture(rng, _random_family(rng), max(8, int(dh)), max(8, int(dw)))
            obj = _Object(tex, ell, min(dw, 0.7 * W), min(dh, 0.7 * H), _random_path(rng, _speed(rng), H, W),
                          scale_amp=rng.uniform(0, 0.3), scale_period=rng.uniform(40, 200), n_frames=n)
            (self.front if rng.random() < 0.3 else self.behind).append(obj)
        # occluders: their path crosses the target's centre at a chosen frame
        self.occluders = []
        for _ in range(int(rng.choice(3, p=[0.5, 0.35, 0.15]))):
            t_cross = rng.uniform(0.15, 0.85) * n
            vel = rng.uniform(2, 8) * np.array([math.cos(a := rng.uniform(0, 2 * math.pi)), math.sin(a)])
            hit = self.target.box(int(t_cross), H, W)
            c_hit = hit[:2] + hit[2:] / 2
            ow, oh = rng.uniform(0.3, 1.5) * w0, rng.uniform(0.3, 1.5) * h0
            if rng.random() < 0.5:  # a bar rather than a block
                ow, oh = (ow * 0.4, H * 0.6) if rng.random() < 0.5 else (W * 0.6, oh * 0.4)
            path = _Path(c_hit - vel * t_cross, vel, np.zeros(2), np.ones(2), np.zeros(2))
            tex = texture(rng, _random_family(rng), max(8, int(oh)), max(8, int(ow)))
            self.occluders.append(_Object(tex, False, min(ow, W), min(oh, H), path, n_frames=n))
        # photometry
        self.light = dict(gain_amp=rng.uniform(0, 0.3), gain_period=rng.uniform(40, 300),
                          gain_phase=rng.uniform(0, 2 * math.pi), cast=rng.normal(0, 0.08, 3),
                          cast_period=rng.uniform(60, 300))
        self.blur_sigma = rng.uniform(0.4, 2.0) if rng.random() < 0.3 else 0.0
        self.noise_sigma = rng.uniform(2, 12) if rng.random() < 0.5 else 0.0
        self.jpeg_quality = int(rng.integers(15, 76)) if rng.random() < 0.5 else 0
        self.params = {"target_family": family, "world_family": world_family, "speed": speed,
                       "side": side, "aspect": aspect, "ellipse": self.target.ellipse,
                       "distractors": len(self.behind) + len(self.front), "lookalikes": lookalikes,
                       "occluders": len(self.occluders), "camera_pan": pan,
                       "zoom_amp": self.camera.zoom_amp, "blur_sigma": self.blur_sigma,
                       "noise_sigma": self.noise_sigma, "jpeg_quality": self.jpeg_quality}

    # ------------------------------------------------------------------ frames
    def _boxes(self, objs, t: int) -> np.ndarray:
        H, W = self.size
        return np.stack([o.box(t, H, W) for o in objs]) if objs else np.zeros((0, 4))

    def frame(self, t: int, render: bool = True) -> DiverseFrame:
        H, W = int(self.size[0]), int(self.size[1])
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} outside 0..{self.n_frames - 1}")
        box = self.target.box(t, H, W)
        covering = self.front + self.occluders
        x, y, w, h = box.astype(int)
        tmask = self.target.mask(w, h)
        covered = np.zeros((h, w), dtype=bool)
        for o in covering:  # visibility: what is painted after the target over its mask
            ox, oy, ow, oh = o.box(t, H, W).astype(int)
            x0, y0, x1, y1 = max(x, ox), max(y, oy), min(x + w, ox + ow), min(y + h, oy + oh)
            if x1 > x0 and y1 > y0:
                om = o.mask(ow, oh)[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
                covered[y0 - y:y1 - y, x0 - x:x1 - x] |= om
        visibility = float((tmask & ~covered).sum() / tmask.sum())
        dboxes = self._boxes(self.behind + self.front, t)
        oboxes = self._boxes(self.occluders, t)
        image = None
        if render:
            image = self._render(t, H, W)
        return DiverseFrame(t, image, box, visibility, dboxes, oboxes)

    def _render(self, t: int, H: int, W: int) -> np.ndarray:
        frame = self.camera.view(t, H, W)
        for o in self.behind + [self.target] + self.front + self.occluders:
            x, y, w, h = o.box(t, H, W).astype(int)
            m = o.mask(w, h)
            region = frame[y:y + h, x:x + w]
            region[m] = o.patch(t, w, h)[m]
        L = self.light
        gain = 1 + L["gain_amp"] * math.sin(2 * math.pi * t / L["gain_period"] + L["gain_phase"])
        cast = 1 + L["cast"] * math.sin(2 * math.pi * t / L["cast_period"])
        frame = frame * gain * cast
        rng = np.random.default_rng([int(self.seed), int(t), 0xF7A3E])
        if self.noise_sigma:
            frame = frame + rng.normal(0, self.noise_sigma, frame.shape)
        image = np.clip(frame, 0, 255).astype(np.uint8)
        if self.blur_sigma or self.jpeg_quality:
            im = Image.fromarray(image)
            if self.blur_sigma:
                im = im.filter(ImageFilter.GaussianBlur(self.blur_sigma))
            if self.jpeg_quality:
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=self.jpeg_quality)
                buf.seek(0)
                im = Image.open(buf).convert("RGB")
            image = np.asarray(im)
        return image

    def __iter__(self) -> Iterator[DiverseFrame]:
        for t in range(self.n_frames):
            yield self.frame(t)


def diverse_frames(seed: int, n_frames: int = 200, size: tuple[int, int] = (256, 256)
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """In-memory single-object stream of one scene: ``(image, box xywh)`` per frame."""
    for f in DiverseScene(seed, size, n_frames):
        yield f.image, f.box.copy()
