"""Single-object tracking runtime over the TrackerNet interface (SpikeTrack, AsymTrack, TransT).

One runtime object follows one target through one sequence, a frame at a time:
``initialize(image, box)`` on the first frame, ``track(image)`` on every later one. Images
are uint8 numpy arrays [H, W, 3] (RGB, as the sequence readers yield them); boxes are
x, y, w, h in pixels.

Per frame the runtime crops a square context window around the current box (padded where
it leaves the frame), resizes it to the network's input size, normalises it with the
ImageNet mean / std, runs the network's search branch, decodes the box and maps it back to
image coordinates, then clips it to the frame. The template branch runs at initialisation
and at template updates only; each result says whether it ran (``template_ran``), which is
what the per-frame energy accounting needs. Every network pass goes through ``meter(branch)``
(a context manager factory, 'template' or 'search'), so a caller can count each pass apart.

Frame 0 runs the template branch *and* the search branch (a streaming system runs its
per-frame branch on every frame); its reported box is the given initial box, as every
benchmark requires. So each frame costs one search pass, plus one template pass on the
frames where ``template_ran`` is true.

Crop geometry. ``CropWindow`` keeps the exact window that was cut (origin and side in image
pixels, output size), so back-projection is the exact inverse of the crop:
image = origin + crop * side / out. The published trackers map back with the previous box
centre instead of the rounded origin (a difference below half a pixel); the window centre
used here makes a box at the crop centre map back onto the box that was cropped.

Per-family settings (the published test-time code; see each runtime's docstring):

* SpikeTrack (faicaiwawa/SpikeTrack, lib/test/tracker/spiketrack_inf.py and
  experiments/spiketrack/*.yaml): template and search crops both sqrt(w h) x 4.0, same size;
  crop = SeqTrack's ``sample_target`` (origin round(c - side / 2), black padding); Hann window
  on the score map; confidence = the windowed peak; T > 1: template FIFO whose first entry
  is always the initial template, a new template every 25 frames when confidence > 0.7
  (LaSOT: 40 / 0.8); box clipped with OSTrack's ``clip_box`` (margin 10).
* AsymTrack (jiawen-zhu/AsymTrack is built on HiT, kangben258/HiT: lib/test/tracker/HiT.py,
  experiments/HiT/*.yaml TEST.TEMPLATE_FACTOR 2.0 / SEARCH_FACTOR 4.0): template
  sqrt(w h) x 2.0, search sqrt(w h) x 4.0, black padding, corner-head box taken as is (no
  window, no template update), ``clip_box`` margin 10.
* TransT (chenxin-dlut/TransT, pytracking/tracker/transt/transt.py + config.py): SiamFC-style
  context, template side sqrt((w + p)(h + p)) with p = (w + h) / 2, search with p = 3 (w + h) / 2;
  padding with the channel mean of the first frame; ``transt_select_box`` (Hann window,
  influence 0.49); centre clipped to the frame, w and h to [10, frame size].

Padding: the published OSTrack-family code (SpikeTrack, AsymTrack/HiT) pads with zeros
(black) and TransT with the first frame's channel mean; ``pad='mean'`` or ``pad='zero'``
overrides the family default ('published').
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import numpy as np
import torch
import torch.nn.functional as F

from .boxes import box_size_problem
from .errors import SequenceError

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "CropWindow", "TrackStep", "context_side", "siamfc_side",
    "crop_window", "extract_crop", "normalise_crop", "clip_box_margin", "SOTRuntime",
    "SpikeTrackRuntime", "AsymTrackRuntime", "TransTRuntime", "SOT_FAMILIES", "make_sot_runtime", "no_meter",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Meter = Callable[[str], ContextManager]


def no_meter(branch: str) -> ContextManager:
    """The default meter: counts nothing."""
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------
# crop geometry
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropWindow:
    """A square window of the image, ``side`` pixels wide from (x0, y0), resized to ``out``.

    Continuous coordinates (a pixel i covers [i, i + 1)): crop point u maps to image point
    x0 + u * side / out and back."""

    x0: float
    y0: float
    side: float
    out: int

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel (the published trackers' ``resize_factor``)."""
        return self.out / self.side

    def to_crop(self, box_xywh) -> np.ndarray:
        """Image box x, y, w, h -> box in the crop as normalised cx, cy, w, h (0..1 = the crop)."""
        x, y, w, h = np.asarray(box_xywh, dtype=np.float64)
        return np.array([(x + w / 2 - self.x0) / self.side, (y + h / 2 - self.y0) / self.side,
                         w / self.side, h / self.side])

    def to_image(self, box_cxcywh_norm) -> np.ndarray:
        """Normalised cx, cy, w, h in the crop -> image box x, y, w, h."""
        cx, cy, w, h = np.asarray(box_cxcywh_norm, dtype=np.float64) * self.side
        cx, cy = cx + self.x0, cy + self.y0
        return np.array([cx - w / 2, cy - h / 2, w, h])


def _check_box(box_xywh) -> np.ndarray:
    b = np.asarray(box_xywh, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise ValueError(f"box must be 4 finite numbers x, y, w, h; got {box_xywh!r}")
    problem = box_size_problem(b[2], b[3])
    if problem is not None:
        raise ValueError(problem)
    return b


def context_side(box_xywh, factor: float) -> int:
    """OSTrack-family crop side: ceil(sqrt(w h) * factor) image pixels."""
    _, _, w, h = _check_box(box_xywh)
    side = math.ceil(math.sqrt(w * h) * factor)
    if side < 1:
        raise ValueError(f"box {list(box_xywh)} is too small for a crop (side {side} px)")
    return side


def siamfc_side(box_xywh, factor: float) -> int:
    """SiamFC / pysot / TransT crop side: ceil(sqrt((w + p)(h + p))) with p = (factor - 1)(w + h) / 2
    (factor 2 for the template, 4 for the search region)."""
    _, _, w, h = _check_box(box_xywh)
    p = (factor - 1) * (w + h) / 2
    return max(1, math.ceil(math.sqrt((w + p) * (h + p))))


def crop_window(center_xy, side: int, out: int, origin: str = "round") -> CropWindow:
    """The window of ``side`` pixels centred on ``center_xy``; the origin is snapped to the pixel
    grid as the published code does: 'round' (OSTrack / SeqTrack / HiT ``sample_target``:
    round(c - side / 2), Python's half-to-even round) or 'floor' (pysot / TransT
    ``get_subwindow``: floor(c - (side + 1) / 2 + 0.5))."""
    cx, cy = (float(v) for v in center_xy)
    side = int(side)
    if origin == "round":
        x0, y0 = round(cx - side * 0.5), round(cy - side * 0.5)
    elif origin == "floor":
        c = (side + 1) / 2
        x0, y0 = math.floor(cx - c + 0.5), math.floor(cy - c + 0.5)
    else:
        raise ValueError(f"unknown crop origin rule '{origin}' (expected 'round' or 'floor')")
    return CropWindow(float(x0), float(y0), float(side), int(out))


def extract_crop(image: np.ndarray, window: CropWindow, pad_value=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """Cut ``window`` out of ``image`` (uint8 / float [H, W, 3]), fill the part outside the
    frame with ``pad_value`` (per channel, 0..255), resize bilinearly (half-pixel centres, no
    antialiasing, as cv2.resize INTER_LINEAR) -> float tensor [1, 3, out, out] in 0..255."""
    H, W = image.shape[:2]
    x0, y0, side = int(window.x0), int(window.y0), int(window.side)
    pad = torch.as_tensor(pad_value, dtype=torch.float32).reshape(3, 1, 1)
    patch = pad.expand(3, side, side).clone()
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + side, W), min(y0 + side, H)
    if ix1 > ix0 and iy1 > iy0:
        # a writable copy: decoded frames may be read-only arrays, which torch warns about
        region = torch.from_numpy(np.array(image[iy0:iy1, ix0:ix1])).permute(2, 0, 1)
        patch[:, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = region.to(torch.float32)
    patch = patch.unsqueeze(0)
    if side != window.out:
        patch = F.interpolate(patch, size=(window.out, window.out), mode="bilinear", align_corners=False)
    return patch


def normalise_crop(crop: torch.Tensor) -> torch.Tensor:
    """0..255 -> (x / 255 - ImageNet mean) / ImageNet std, per channel."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=crop.dtype).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=crop.dtype).reshape(1, 3, 1, 1)
    return (crop / 255.0 - mean) / std


def clip_box_margin(box_xywh, H: int, W: int, margin: float = 10.0) -> np.ndarray:
    """OSTrack / HiT ``clip_box``: corners clipped into the frame, width and height at least
    ``margin`` (the box keeps inside the frame)."""
    x1, y1, w, h = (float(v) for v in box_xywh)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0.0, x1), W - margin)
    x2 = min(max(margin, x2), W)
    y1 = min(max(0.0, y1), H - margin)
    y2 = min(max(margin, y2), H)
    return np.array([x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)])


def _pad_for(image: np.ndarray, rule: str) -> tuple[float, float, float]:
    if rule == "zero":
        return (0.0, 0.0, 0.0)
    if rule == "mean":
        return tuple(float(v) for v in image.reshape(-1, image.shape[-1]).mean(0)[:3])
    raise ValueError(f"unknown padding rule '{rule}' (expected 'published', 'mean' or 'zero')")


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"frames must be numpy arrays [H, W, 3] (RGB); got {type(image).__name__} {shape}")
    return image


# --------------------------------------------------------------------------------------
# runtimes
# --------------------------------------------------------------------------------------
@dataclass
class TrackStep:
    """The outcome of one frame."""

    frame: int                    # 0-based index in the sequence
    box: np.ndarray               # x, y, w, h (image pixels), float64
    score: float | None           # the tracker's confidence (None on the initial frame)
    template_ran: bool            # the template branch ran on this frame
    template_reason: str | None   # 'init' | 'update' | None


class SOTRuntime:
    """Base runtime: crop, search pass, decode, back-project, clip. Subclasses set the family
    settings and implement ``_decode`` (network output -> normalised crop box, score)."""

    family = ""
    # Crop settings default to the OSTrack-family test code (SeqTrack's ``sample_target``: both
    # crops sqrt(w h) x 4.0, origin rounded, zero padding); a family sets what it does differently.
    template_factor = 4.0
    search_factor = 4.0
    origin = "round"
    published_pad = "zero"

    def __init__(self, model, meter: Meter | None = None, pad: str = "published"):
        self.model = model
        self.meter = meter or no_meter
        self.pad_rule = self.published_pad if pad == "published" else pad
        if self.pad_rule not in ("mean", "zero"):
            raise ValueError(f"unknown padding rule '{pad}' (expected 'published', 'mean' or 'zero')")
        self.template_size, self.search_size = self._input_sizes(model)
        self.box: np.ndarray | None = None
        self.frame = -1
        self.cache: Any = None
        self.template_frames: list[int] = []

    # -- family hooks ---------------------------------------------------------------------
    def _input_sizes(self, model) -> tuple[int, int]:
        return int(model.template_size), int(model.search_size)

    def _template_window(self, box) -> CropWindow:
        side = context_side(box, self.template_factor)
        return crop_window(box[:2] + box[2:] / 2, side, self.template_size, self.origin)

    def _search_window(self, box) -> CropWindow:
        side = context_side(box, self.search_factor)
        return crop_window(box[:2] + box[2:] / 2, side, self.search_size, self.origin)

    def _pad(self, image: np.ndarray):
        return _pad_for(image, self.pad_rule)

    def _clip(self, box: np.ndarray, H: int, W: int) -> np.ndarray:
        return clip_box_margin(box, H, W, 10.0)

    def _decode(self, out: dict, window: CropWindow) -> tuple[np.ndarray, float | None]:
        raise NotImplementedError

    def _template_input(self, crop: torch.Tensor, init: bool):
        return crop

    def _maybe_update(self, image: np.ndarray, score: float | None) -> bool:
        return False

    # -- network passes (metered) -----------------------------------------------------------
    def crop(self, image: np.ndarray, window: CropWindow) -> torch.Tensor:
        return normalise_crop(extract_crop(image, window, self._pad(image)))

    def run_template(self, template) -> Any:
        with torch.no_grad(), self.meter("template"):
            return self.model.forward_template(template)

    def run_search(self, search: torch.Tensor) -> dict:
        with torch.no_grad(), self.meter("search"):
            return self.model.forward_search(search, self.cache)

    # -- public API -----------------------------------------------------------------------
    def initialize(self, image: np.ndarray, box_xywh, frame: int = 0, search: bool = True) -> TrackStep:
        """Set the target from ``box_xywh`` on ``image``: template pass, and (``search``) the
        frame's search pass, whose result is not used (the reported box is the given one)."""
        image = _check_image(image)
        box = _check_box(box_xywh)
        self.image_size = image.shape[:2]
        self.frame = frame
        self.box = box.copy()
        self.cache = self.run_template(self.template_input_at(image, box))
        self.template_frames.append(frame)
        if search:
            self.run_search(self.crop(image, self._search_window(box)))
        return TrackStep(frame, box.copy(), None, True, "init")

    def _on_init(self, image: np.ndarray) -> None:
        pass

    def template_input_at(self, image: np.ndarray, box_xywh) -> Any:
        """The template branch's input for the target at ``box_xywh`` on the first frame
        ``image``: the family's crop, padding and template stacking (no network pass)."""
        image, box = _check_image(image), _check_box(box_xywh)
        self._on_init(image)
        return self._template_input(self.crop(image, self._template_window(box)), init=True)

    def search_input_at(self, image: np.ndarray, box_xywh) -> torch.Tensor:
        """The search crop this tracker takes on ``image`` when its last box is ``box_xywh``."""
        return self.crop(_check_image(image), self._search_window(_check_box(box_xywh)))

    def track(self, image: np.ndarray) -> TrackStep:
        """One tracking frame: search pass, decode, back-project, clip; template update if the
        family's rule says so."""
        if self.box is None:
            raise RuntimeError("track() before initialize(): give the first frame and box first")
        image = _check_image(image)
        if image.shape[:2] != tuple(self.image_size):   # the sequence's frames are the user's input
            raise SequenceError(f"frame {self.frame + 1} is {image.shape[1]}x{image.shape[0]} but the first frame is "
                                f"{self.image_size[1]}x{self.image_size[0]}; every frame of a sequence must have "
                                f"the same size")
        self.frame += 1
        H, W = image.shape[:2]
        window = self._search_window(self.box)
        out = self.run_search(self.crop(image, window))
        box_norm, score = self._decode(out, window)
        box = window.to_image(box_norm)
        if np.isfinite(box).all():
            self.box = self._clip(box, H, W)
        updated = self._maybe_update(image, score)
        if updated:
            self.template_frames.append(self.frame)
        return TrackStep(self.frame, self.box.copy(), score, updated, "update" if updated else None)


class SpikeTrackRuntime(SOTRuntime):
    """SpikeTrack's tracker: crops sqrt(w h) x 4.0 for template and search (same size), Hann
    window on the score map, box and confidence at the windowed peak, OSTrack ``clip_box``
    (margin 10). T > 1: template FIFO [initial, ..., newest]; every ``update_interval``-th
    frame with confidence > ``update_threshold`` the newest template is cropped at the new
    box, the oldest non-initial one dropped, and the template branch re-run on the stack.
    Published: interval 25, threshold 0.7 (LaSOT 40, 0.8)."""

    family = "spiketrack"  # crop settings: SOTRuntime's OSTrack-family defaults

    def __init__(self, model, meter: Meter | None = None, pad: str = "published",
                 update_interval: int = 25, update_threshold: float = 0.7, window: bool = True):
        super().__init__(model, meter, pad)
        if update_interval < 1:
            raise ValueError(f"update_interval must be >= 1, got {update_interval}")
        self.num_templates = int(model.timesteps)
        self.update_interval = int(update_interval)
        self.update_threshold = float(update_threshold)
        self.window = model.hann_window() if window else None
        self.templates: list[torch.Tensor] = []

    def _template_input(self, crop: torch.Tensor, init: bool):
        if init:
            self.templates = [crop] * self.num_templates
        return torch.stack(self.templates, 0)

    def _decode(self, out: dict, window: CropWindow) -> tuple[np.ndarray, float]:
        score_map = out["score_map"]
        response = score_map * self.window if self.window is not None else score_map
        box, conf = self.model.decoder.cal_bbox(response, out["size_map"], out["offset_map"])
        return box.view(-1, 4).mean(0).double().numpy(), float(conf.reshape(-1)[0])

    def _maybe_update(self, image: np.ndarray, score: float | None) -> bool:
        if self.num_templates <= 1 or score is None:
            return False
        if self.frame % self.update_interval or not score > self.update_threshold:
            return False
        crop = self.crop(image, self._template_window(self.box))
        if len(self.templates) >= self.num_templates:
            self.templates.pop(1)
        self.templates.append(crop)
        self.cache = self.run_template(torch.stack(self.templates, 0))
        return True


class AsymTrackRuntime(SOTRuntime):
    """AsymTrack's tracker (HiT's test pipeline): template sqrt(w h) x 2.0 at the template size,
    search sqrt(w h) x 4.0 at the search size, the corner head's box as is (no window, no
    template update), OSTrack ``clip_box`` (margin 10). The corner head gives no confidence,
    so ``score`` is None."""

    family = "asymtrack"
    template_factor = 2.0  # the rest of the crop settings: SOTRuntime's OSTrack-family defaults

    def _input_sizes(self, model) -> tuple[int, int]:
        return int(model.cfg.template_size), int(model.cfg.search_size)

    def _decode(self, out: dict, window: CropWindow) -> tuple[np.ndarray, None]:
        return out["pred_boxes"].reshape(-1, 4).mean(0).double().numpy(), None


class TransTRuntime(SOTRuntime):
    """TransT's tracker (pytracking): SiamFC context crops (template factor 2 -> 128 px,
    search factor 4 -> 256 px), padding with the first frame's channel mean, candidate chosen
    by ``transt_select_box`` (Hann window, influence 0.49), box taken whole (lr 1), centre
    clipped to the frame and w, h to [10, frame size]."""

    family = "transt"
    template_factor = 2.0
    search_factor = 4.0
    origin = "floor"
    published_pad = "mean"

    def __init__(self, model, meter: Meter | None = None, pad: str = "published",
                 window_influence: float | None = None):
        super().__init__(model, meter, pad)
        from snnsim.models.transt import WINDOW_INFLUENCE

        self.window_influence = WINDOW_INFLUENCE if window_influence is None else float(window_influence)
        self._channel_average = None

    def _input_sizes(self, model) -> tuple[int, int]:
        from snnsim.models.transt import SEARCH_SIZE, TEMPLATE_SIZE

        return TEMPLATE_SIZE, SEARCH_SIZE

    def _on_init(self, image: np.ndarray) -> None:
        self._channel_average = _pad_for(image, "mean")

    def _pad(self, image: np.ndarray):
        if self.pad_rule == "mean" and self._channel_average is not None:
            return self._channel_average  # computed once, on the first frame, as TransT does
        return _pad_for(image, self.pad_rule)

    def _template_window(self, box) -> CropWindow:
        return crop_window(box[:2] + box[2:] / 2, siamfc_side(box, self.template_factor), self.template_size,
                           self.origin)

    def _search_window(self, box) -> CropWindow:
        return crop_window(box[:2] + box[2:] / 2, siamfc_side(box, self.search_factor), self.search_size,
                           self.origin)

    def _decode(self, out: dict, window: CropWindow) -> tuple[np.ndarray, float]:
        from snnsim.models.transt import transt_select_box

        box, score = transt_select_box(out["pred_logits"], out["pred_boxes"], self.window_influence)
        return box.reshape(-1, 4)[0].double().numpy(), float(score.reshape(-1)[0])

    def _clip(self, box: np.ndarray, H: int, W: int) -> np.ndarray:
        x, y, w, h = (float(v) for v in box)
        cx = max(0.0, min(x + w / 2, W))
        cy = max(0.0, min(y + h / 2, H))
        w = max(10.0, min(w, W))
        h = max(10.0, min(h, H))
        return np.array([cx - w / 2, cy - h / 2, w, h])


_RUNTIMES = {"spiketrack": SpikeTrackRuntime, "asymtrack": AsymTrackRuntime, "transt": TransTRuntime}
SOT_FAMILIES = tuple(_RUNTIMES)


def make_sot_runtime(model, meter: Meter | None = None, **options) -> SOTRuntime:
    """The runtime of a registered single-object tracker network (by its ``family``)."""
    family = getattr(model, "family", "")
    if family not in _RUNTIMES:
        raise ValueError(f"model family '{family}' has no single-object runtime "
                         f"(single-object families: {', '.join(_RUNTIMES)})")
    return _RUNTIMES[family](model, meter, **options)
