"""Sequence readers (streaming) and result writers.

Layouts understood (auto-detected by :func:`open_sequence`):

* SOT - GOT-10k (frames ``00000001.jpg ...`` directly in the folder, ``groundtruth.txt``;
  test sequences carry only the first-frame box; optional ``absence.label``), LaSOT
  (``img/`` + ``groundtruth.txt``; optional ``full_occlusion.txt`` / ``out_of_view.txt``)
  and OTB (``img/`` + ``groundtruth_rect.txt``). Boxes are x,y,w,h separated by commas, tabs
  or spaces. An all-zero or NaN row is the usual "target absent" marker and reads as absent.
* MOT - MOTChallenge (``seqinfo.ini`` with frameRate, seqLength, imWidth, imHeight, imExt,
  imDir; frames in ``img1/``; ``gt/gt.txt`` rows frame,id,x,y,w,h,conf,class,visibility).

Sequences never hold their frames: they keep the frame paths and decode one frame at a time.
Frames come out as **uint8 numpy arrays H x W x 3, RGB** (decoded with PIL); use
:func:`image_to_tensor` for a float tensor [3, H, W] in 0..255. Iteration yields
``(index, image)`` with a 0-based index; MOTChallenge frame numbers are ``index + 1``.

Bad input raises :class:`~snnsim.tracking.errors.SequenceError` (a ``ValueError``) with a
one-line message naming the path (and line) and the fix.
"""
from __future__ import annotations

import configparser
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from .boxes import box_size_problem
from .errors import SequenceError

__all__ = [
    "IMAGE_EXTENSIONS", "SOTSequence", "MOTSequence", "open_sequence", "read_sot_sequence",
    "read_mot_sequence", "find_sequences", "load_image", "image_to_tensor",
    "write_sot_result", "write_mot_result", "read_sot_result", "read_mot_file", "is_sequence_folder", "looks_mot", "natural_key",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SOT_GT_NAMES = ("groundtruth.txt", "groundtruth_rect.txt")
_SPLIT = re.compile(r"[,\s]+")


# --------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------
# Frames are decoded whole (H x W x 3 bytes, then a float copy), so their size is checked from
# the header -- and a seqinfo.ini's imWidth x imHeight from the text -- before anything is
# allocated: at most MAX_FRAME_PIXELS (8192 x 8192; below PIL's own decompression-bomb
# threshold, which is turned into an error too). Text files (ground truth, flags) are read whole,
# so they are checked against MAX_TEXT_BYTES first.
MAX_FRAME_PIXELS = 8192 * 8192
MAX_TEXT_BYTES = 256 * 2 ** 20


def _frame_too_large(what: str, w: int, h: int) -> str | None:
    if w * h > MAX_FRAME_PIXELS:
        return (f"{what} is {w}x{h} ({w * h:,} pixels), larger than the limit of {MAX_FRAME_PIXELS:,} pixels "
                f"(8192x8192)")
    return None


def _open_checked(path: Path):
    """Image.open with the size checked from the header (PIL's decompression-bomb warning and
    error become SequenceError) -- nothing is decoded yet."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise SequenceError(f"frame {path} is too large to decode ({str(e).splitlines()[0]}); the limit is "
                            f"{MAX_FRAME_PIXELS:,} pixels (8192x8192): downscale the frames") from None
    problem = _frame_too_large(f"frame {path}", *im.size)
    if problem is not None:
        im.close()
        raise SequenceError(f"{problem}; downscale the frames")
    return im


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one image -> uint8 array [H, W, 3] (RGB). Raises SequenceError if unreadable or
    larger than MAX_FRAME_PIXELS (checked from the header, before decoding)."""
    path = Path(path)
    try:
        with _open_checked(path) as im:
            arr = np.array(im.convert("RGB"))
    except SequenceError:
        raise
    except FileNotFoundError:
        raise SequenceError(f"frame {path} does not exist; restore the file or re-extract the sequence") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SequenceError(f"cannot read frame {path} ({reason}); replace the file or re-extract the sequence") from None
    return arr


def image_to_tensor(image: np.ndarray):
    """uint8 [H, W, 3] -> float32 torch tensor [3, H, W] with values 0..255."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def natural_key(p: Path):
    """Sort key: names in natural order (seq2 before seq10)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


_natural_key = natural_key


def _list_images(folder: Path, exts=IMAGE_EXTENSIONS) -> list[Path]:
    exts = tuple(e.lower() for e in exts)
    with os.scandir(folder) as it:
        files = [Path(e.path) for e in it
                 if e.is_file() and not e.name.startswith(".") and e.name.lower().endswith(exts)]
    return sorted(files, key=_natural_key)


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the image header only (SequenceError above MAX_FRAME_PIXELS)."""
    try:
        with _open_checked(path) as im:
            w, h = im.size
    except SequenceError:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SequenceError(f"cannot read frame {path} ({reason}); replace the file or re-extract the sequence") from None
    return h, w


class _FrameStream:
    """Shared streaming behaviour: len, read_frame, iteration one frame at a time."""

    frame_paths: tuple[Path, ...]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.frame_paths)

    def read_frame(self, index: int) -> np.ndarray:
        """Decode frame ``index`` (0-based) -> uint8 [H, W, 3] RGB."""
        path = self.frame_paths[index]
        img = load_image(path)
        if img.shape[:2] != tuple(self.image_size):
            h, w = self.image_size
            raise SequenceError(
                f"frame {path} is {img.shape[1]}x{img.shape[0]} but the sequence is {w}x{h}; "
                "resize or replace the frame")
        return img

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(len(self.frame_paths)):
            yield i, self.read_frame(i)

    def frames(self, as_tensor: bool = False, start: int = 0, stop: int | None = None):
        """Iterate (index, frame) from ``start`` to ``stop``; tensors [3, H, W] if as_tensor."""
        stop = len(self) if stop is None else min(stop, len(self))
        for i in range(start, stop):
            img = self.read_frame(i)
            yield i, (image_to_tensor(img) if as_tensor else img)


# --------------------------------------------------------------------------------------
# text parsing
# --------------------------------------------------------------------------------------
def _read_rows(path: Path, min_cols: int, max_cols: int | None, what: str) -> list[tuple[int, list[float]]]:
    """Numeric rows of a comma / tab / space separated file -> [(line_number, values)].

    Trailing blank lines are ignored; a blank line followed by data is malformed (it would
    shift every later box by one frame).
    """
    try:
        size = path.stat().st_size
    except OSError:
        size = 0                                  # read_text below says what is wrong
    if size > MAX_TEXT_BYTES:                     # read whole: checked before reading
        raise SequenceError(f"{path} is {size:,} bytes, larger than the limit of {MAX_TEXT_BYTES:,} bytes "
                            f"(256 MiB) for {what} text; split the sequence or fix the file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SequenceError(f"{path} is not a text file; provide {what}") from None
    except OSError as e:
        raise SequenceError(f"cannot read {path} ({e.strerror}); check the file permissions") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    cols_hint = f"{min_cols}" if max_cols == min_cols else f"{min_cols} or more"
    for n, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            raise SequenceError(f"{path}:{n}: blank line inside the file; remove it so each line is {what}")
        parts = [p for p in _SPLIT.split(s) if p]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise SequenceError(
                f"{path}:{n}: malformed line {s[:60]!r}; expected {cols_hint} numbers ({what}) "
                "separated by commas, tabs or spaces") from None
        if len(vals) < min_cols or (max_cols is not None and len(vals) > max_cols):
            raise SequenceError(
                f"{path}:{n}: malformed line {s[:60]!r} has {len(vals)} values; expected {cols_hint} ({what})")
        rows.append((n, vals))
    return rows


def _require_folder(path: str | os.PathLike, what: str, fix: str) -> Path:
    """`path` as a Path; SequenceError unless it is a folder, saying whether the path is
    empty, missing or a file."""
    if not os.fspath(path).strip():   # Path("") would be ".", the current folder
        raise SequenceError(f"the {what} path is empty; {fix}")
    root = Path(path)
    if root.is_dir():
        return root
    if root.exists():
        kind = "a file, not a" if root.is_file() else "not a folder, so not a"
        raise SequenceError(f"{root} is {kind} {what}; {fix} (the folder itself, not a file in it)")
    raise SequenceError(f"{what} {root} does not exist; {fix}")


def _check_box(path: Path, line: int, x, y, w, h, size_hw: tuple[int, int] | None) -> None:
    problem = box_size_problem(w, h)
    if problem is not None:
        raise SequenceError(f"{path}:{line}: {problem}; fix the box or mark the frame absent with 0,0,0,0")
    if size_hw is not None:
        H, W = size_hw
        if x >= W or y >= H or x + w <= 0 or y + h <= 0:
            raise SequenceError(
                f"{path}:{line}: box {x:g},{y:g},{w:g},{h:g} (x,y,w,h) lies entirely outside the {W}x{H} "
                "frame; fix the box or mark the frame absent with 0,0,0,0")


def _read_flags(path: Path, n: int) -> np.ndarray | None:
    """0/1 per frame (one per line, or comma separated on one line) -> bool [n], or None."""
    if not path.is_file():
        return None
    vals = [v for _, row in _read_rows(path, 1, None, "0/1 flags") for v in row]
    if len(vals) != n:
        raise SequenceError(f"{path} has {len(vals)} flags for {n} boxes; make it one 0/1 flag per frame")
    return np.asarray(vals) != 0


# --------------------------------------------------------------------------------------
# single object
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SOTSequence(_FrameStream):
    """A single-object sequence (GOT-10k / LaSOT / OTB layout).

    ``ground_truth`` is float64 [n_gt, 4] xywh with n_gt == len(self) (full annotation) or 1
    (first-frame box only, GOT-10k test); rows of absent frames are NaN. ``absent`` marks
    frames flagged absent (0,0,0,0 / NaN rows, absence.label, LaSOT occlusion / out-of-view).
    """

    name: str
    root: Path
    frame_paths: tuple[Path, ...]
    ground_truth: np.ndarray
    absent: np.ndarray
    image_size: tuple[int, int]
    layout: str
    gt_path: Path
    kind: str = field(default="sot", init=False)

    @property
    def init_box(self) -> np.ndarray:
        """First-frame box, xywh."""
        return self.ground_truth[0].copy()

    @property
    def has_full_gt(self) -> bool:
        return len(self.ground_truth) == len(self.frame_paths)

    @property
    def valid(self) -> np.ndarray:
        """Frames whose ground truth can be scored (present, finite, positive size)."""
        gt = self.ground_truth
        return np.isfinite(gt).all(1) & (gt[:, 2] > 0) & (gt[:, 3] > 0) & ~self.absent


def read_sot_sequence(path: str | os.PathLike, require_full_gt: bool = False) -> SOTSequence:
    """Open a GOT-10k / LaSOT / OTB sequence folder (frames are not decoded).

    The first-frame box is always required (a tracker cannot start without it); with
    ``require_full_gt`` every frame must have a box (for evaluation).
    """
    root = _require_folder(path, "sequence folder", "pass the folder that holds the frames")
    img_dir = root / "img" if (root / "img").is_dir() else root
    frames = _list_images(img_dir)
    if not frames:
        raise SequenceError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {img_dir}; put the frames there "
            "(GOT-10k: in the sequence folder, LaSOT/OTB: in img/)")
    gt_path = next((root / n for n in SOT_GT_NAMES if (root / n).is_file()), None)
    if gt_path is None:
        raise SequenceError(
            f"no ground truth in {root}; add groundtruth.txt (GOT-10k/LaSOT) or groundtruth_rect.txt (OTB) "
            "with at least the first-frame box x,y,w,h")
    layout = ("otb" if gt_path.name == "groundtruth_rect.txt" else "lasot") if img_dir != root else "got10k"

    rows = _read_rows(gt_path, 4, 4, "x,y,w,h")
    n_gt, n_frames = len(rows), len(frames)
    if n_gt == 0:
        raise SequenceError(f"{gt_path} is empty; it needs at least the first-frame box x,y,w,h")
    if n_gt != n_frames and n_gt != 1:
        raise SequenceError(
            f"{gt_path} has {n_gt} boxes for {n_frames} images in {img_dir}; give one box per frame "
            "(or only the first-frame box)")
    if require_full_gt and n_gt != n_frames:
        raise SequenceError(
            f"{gt_path} has only the first-frame box; evaluation needs one box per frame "
            "(test-split sequences cannot be scored locally)")

    gt = np.array([v for _, v in rows], dtype=np.float64)
    absent = ~np.isfinite(gt).all(1) | (gt == 0).all(1)
    for flag_file in ("absence.label", "full_occlusion.txt", "out_of_view.txt"):
        flags = _read_flags(root / flag_file, n_gt)
        if flags is not None:
            absent |= flags
    size = _image_size(frames[0])
    for i, (line, (x, y, w, h)) in enumerate(rows):
        if not absent[i]:
            _check_box(gt_path, line, x, y, w, h, size)
    if absent[0]:
        raise SequenceError(f"{gt_path}:1: the first-frame box is missing or marked absent; "
                            "the tracker needs it to initialise")
    gt[absent & ~np.isfinite(gt).all(1)] = np.nan
    gt[(gt == 0).all(1)] = np.nan
    return SOTSequence(name=root.name, root=root, frame_paths=tuple(frames), ground_truth=gt,
                       absent=absent, image_size=size, layout=layout, gt_path=gt_path)


# --------------------------------------------------------------------------------------
# multi object
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MOTSequence(_FrameStream):
    """A MOTChallenge sequence.

    ``ground_truth`` (None when the sequence has no gt/gt.txt) is float64 [K, 9]:
    frame (1-based), id, x, y, w, h, conf (0 = ignore), class, visibility, sorted by frame
    then id.
    """

    name: str
    root: Path
    frame_paths: tuple[Path, ...]
    frame_rate: float
    image_size: tuple[int, int]
    im_ext: str
    ground_truth: np.ndarray | None
    gt_path: Path | None
    kind: str = field(default="mot", init=False)
    layout: str = field(default="motchallenge", init=False)

    @property
    def seq_length(self) -> int:
        return len(self.frame_paths)

    def gt_frame(self, frame: int) -> np.ndarray:
        """Ground-truth rows of 1-based frame number ``frame`` -> [k, 9]."""
        if self.ground_truth is None:
            raise SequenceError(f"{self.root} has no gt/gt.txt; add MOTChallenge ground truth to evaluate")
        gt = self.ground_truth
        lo, hi = np.searchsorted(gt[:, 0], [frame, frame + 1])
        return gt[lo:hi]


def _read_seqinfo(path: Path) -> dict:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # keys are camelCase
    if path.stat().st_size > MAX_TEXT_BYTES:      # read whole: checked before reading
        raise SequenceError(f"{path} is {path.stat().st_size:,} bytes, larger than the limit of "
                            f"{MAX_TEXT_BYTES:,} bytes (256 MiB); write it as MOTChallenge does")
    try:
        cp.read_string(path.read_text(encoding="utf-8-sig"))
    except (configparser.Error, UnicodeDecodeError) as e:
        raise SequenceError(f"{path} is not a valid ini file ({type(e).__name__}); "
                            "write it as MOTChallenge does: a [Sequence] section with key=value lines") from None
    if "Sequence" not in cp:
        raise SequenceError(f"{path} has no [Sequence] section; add one with frameRate, seqLength, "
                            "imWidth, imHeight, imExt")
    sec = cp["Sequence"]
    out = {"name": sec.get("name", path.parent.name), "imDir": sec.get("imDir", "img1"),
           "imExt": sec.get("imExt", ".jpg")}
    for key, cast in (("frameRate", float), ("seqLength", int), ("imWidth", int), ("imHeight", int)):
        if key not in sec:
            raise SequenceError(f"{path} lacks {key}; add '{key}=<value>' to its [Sequence] section")
        try:
            val = cast(sec[key])
        except ValueError:
            raise SequenceError(f"{path}: {key}={sec[key]!r} is not a number; fix it") from None
        if not val > 0:
            raise SequenceError(f"{path}: {key} must be > 0, got {sec[key]}; fix it")
        out[key] = val
    problem = _frame_too_large(f"{path}: imWidth x imHeight", out["imWidth"], out["imHeight"])
    if problem is not None:    # checked before any frame is decoded or any canvas allocated
        raise SequenceError(f"{problem}; fix the sizes or downscale the frames")
    if not out["imExt"].startswith("."):
        out["imExt"] = "." + out["imExt"]
    return out


def _read_mot_rows(path: Path, n_frames: int | None, size_hw: tuple[int, int] | None,
                   check_boxes: bool) -> np.ndarray:
    """MOTChallenge text rows -> float64 [K, 9] (frame,id,x,y,w,h,conf,class,visibility)."""
    rows = _read_rows(path, 6, None, "frame,id,x,y,w,h[,conf,class,visibility]")
    out = np.zeros((len(rows), 9))
    out[:, 6:9] = 1.0
    for i, (line, vals) in enumerate(rows):
        if not all(math.isfinite(v) for v in vals[:9]):   # MOT has no NaN "absent" marker: a NaN is an error
            raise SequenceError(f"{path}:{line}: NaN or inf in frame,id,x,y,w,h,conf,class,visibility "
                                f"({', '.join(f'{v:g}' for v in vals[:9])}); fix the line")
        out[i, :min(len(vals), 9)] = vals[:9]
        if len(vals) >= 8 and vals[7] <= 0:
            out[i, 7] = 1.0  # MOT15 stores world x (-1) here: no class column, all pedestrians
        frame, tid = vals[0], vals[1]
        if frame != int(frame) or frame < 1 or (n_frames is not None and frame > n_frames):
            rng = f"1..{n_frames}" if n_frames is not None else ">= 1"
            raise SequenceError(f"{path}:{line}: frame {frame:g} is not an integer in {rng}; fix the line")
        if tid != int(tid):
            raise SequenceError(f"{path}:{line}: id {tid:g} is not an integer; fix the line")
        if check_boxes:
            _check_box(path, line, *vals[2:6], size_hw)
    order = np.lexsort((out[:, 1], out[:, 0]))
    ordered = out[order]
    twice = np.flatnonzero((ordered[1:, 0] == ordered[:-1, 0]) & (ordered[1:, 1] == ordered[:-1, 1]))
    if len(twice):   # the metrics match boxes by id within a frame
        a, b = sorted((rows[order[twice[0]]][0], rows[order[twice[0] + 1]][0]))
        raise SequenceError(f"{path}:{b}: frame {ordered[twice[0], 0]:g} has id {ordered[twice[0], 1]:g} twice "
                            f"(also on line {a}); ids must be unique within a frame")
    return ordered


def read_mot_sequence(path: str | os.PathLike, require_gt: bool = False) -> MOTSequence:
    """Open a MOTChallenge sequence folder (frames are not decoded)."""
    root = _require_folder(path, "sequence folder", "pass the MOTChallenge sequence folder")
    ini = root / "seqinfo.ini"
    if not ini.is_file():
        raise SequenceError(f"{ini} is missing; add it with a [Sequence] section giving frameRate, "
                            "seqLength, imWidth, imHeight, imExt")
    info = _read_seqinfo(ini)
    img_dir = root / info["imDir"]
    if not img_dir.is_dir():
        raise SequenceError(f"image folder {img_dir} does not exist; put the frames there or fix imDir in {ini}")
    frames = _list_images(img_dir, (info["imExt"],))
    if not frames:
        raise SequenceError(f"no {info['imExt']} images in {img_dir}; put the frames there or fix imExt in {ini}")
    if len(frames) != info["seqLength"]:
        raise SequenceError(f"{img_dir} has {len(frames)} {info['imExt']} images but {ini} says "
                            f"seqLength={info['seqLength']}; make them agree")
    size = (info["imHeight"], info["imWidth"])
    gt_path = root / "gt" / "gt.txt"
    gt = None
    if gt_path.is_file():
        gt = _read_mot_rows(gt_path, len(frames), size, check_boxes=True)
    elif require_gt:
        raise SequenceError(f"{gt_path} is missing; evaluation needs MOTChallenge ground truth "
                            "(frame,id,x,y,w,h,conf,class,visibility per line)")
    else:
        gt_path = None
    return MOTSequence(name=info["name"], root=root, frame_paths=tuple(frames), frame_rate=info["frameRate"],
                       image_size=size, im_ext=info["imExt"], ground_truth=gt, gt_path=gt_path)


# --------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------
def _looks_mot(root: Path) -> bool:
    return (root / "seqinfo.ini").is_file() or (root / "img1").is_dir()


def looks_mot(path: Path) -> bool:
    """Whether a folder looks like a MOTChallenge sequence (seqinfo.ini or img1/)."""
    return _looks_mot(path)


def is_sequence_folder(path: Path) -> bool:
    """Whether a folder looks like one sequence (MOTChallenge, or GOT-10k / LaSOT / OTB)."""
    return _looks_mot(path) or _looks_sot(path)


def _looks_sot(root: Path) -> bool:
    if any((root / n).is_file() for n in SOT_GT_NAMES) or (root / "img").is_dir():
        return True
    try:
        with os.scandir(root) as it:
            return any(e.name.lower().endswith(IMAGE_EXTENSIONS) for e in it)
    except OSError:
        return False


def open_sequence(path: str | os.PathLike, require_gt: bool = False) -> SOTSequence | MOTSequence:
    """Detect the layout of a sequence folder and open it.

    ``require_gt``: SOT needs a box for every frame, MOT needs gt/gt.txt (for evaluation).
    """
    root = _require_folder(path, "sequence folder", "pass a GOT-10k / LaSOT / OTB or MOTChallenge sequence folder")
    if _looks_mot(root):
        return read_mot_sequence(root, require_gt=require_gt)
    if _looks_sot(root):
        return read_sot_sequence(root, require_full_gt=require_gt)
    raise SequenceError(
        f"{root} is not a sequence folder; expected seqinfo.ini + img1/ (MOTChallenge) or frames + "
        "groundtruth.txt / groundtruth_rect.txt (GOT-10k, LaSOT img/, OTB img/)")


def find_sequences(path: str | os.PathLike) -> list[Path]:
    """The folder itself if it is a sequence, else its sub-folders that are (sorted by name)."""
    root = _require_folder(path, "folder", "pass a sequence folder or a dataset folder")
    if _looks_mot(root) or _looks_sot(root):
        return [root]
    subs = sorted((p for p in root.iterdir() if p.is_dir() and (_looks_mot(p) or _looks_sot(p))),
                  key=_natural_key)
    if not subs:
        raise SequenceError(f"no sequence folders in {root}; pass a GOT-10k / LaSOT / OTB or MOTChallenge "
                            "sequence folder or the folder that holds them")
    return subs


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_sot_result(path: str | os.PathLike, boxes_xywh) -> Path:
    """Write one x,y,w,h line per frame, comma separated (GOT-10k / LaSOT / OTB result file)."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    bad = ~np.isfinite(boxes).all(1)
    if bad.any():
        raise ValueError(f"write_sot_result: box of frame {int(np.argmax(bad))} is not finite; "
                         "write the last valid box for frames the tracker lost")
    text = "".join(",".join(_fmt(v) for v in b) + "\n" for b in boxes)
    return _atomic_write(Path(path), text)


def write_mot_result(path: str | os.PathLike, rows) -> Path:
    """Write a MOTChallenge result file: frame,id,x,y,w,h,conf,-1,-1,-1 per line.

    ``rows``: array-like [K, 6] (frame, id, x, y, w, h; conf = 1) or [K, 7] (with conf);
    frames are 1-based. Lines are sorted by frame then id.
    """
    arr = np.asarray(rows, dtype=np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, 7)
    if arr.ndim != 2 or arr.shape[1] not in (6, 7):
        raise ValueError(f"write_mot_result: rows must be [K, 6] or [K, 7], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("write_mot_result: rows contain NaN or inf; drop those boxes")
    if arr.shape[1] == 6:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    lines = [f"{int(r[0])},{int(r[1])},{_fmt(r[2])},{_fmt(r[3])},{_fmt(r[4])},{_fmt(r[5])},{_fmt(r[6])},-1,-1,-1\n"
             for r in arr]
    return _atomic_write(Path(path), "".join(lines))


def read_sot_result(path: str | os.PathLike) -> np.ndarray:
    """A SOT result / box file -> float64 [N, 4] xywh (no validity checks)."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"result file {path} does not exist; run the tracker first or fix the path")
    rows = _read_rows(path, 4, 4, "x,y,w,h")
    return np.array([v for _, v in rows], dtype=np.float64).reshape(-1, 4)


def read_mot_file(path: str | os.PathLike) -> np.ndarray:
    """A MOTChallenge gt or result file -> float64 [K, 9] (frame,id,x,y,w,h,conf,class,vis)."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"MOT file {path} does not exist; run the tracker first or fix the path")
    return _read_mot_rows(path, None, None, check_boxes=False)
