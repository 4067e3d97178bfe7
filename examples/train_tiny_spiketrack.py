"""Train `spiketrack-tiny` or its ANN twin `spiketrack-tiny-ann` on the CPU, the same way.

    python examples/train_tiny_spiketrack.py --model spiketrack-tiny       # 1400 steps, 45 min budget
    python examples/train_tiny_spiketrack.py --model spiketrack-tiny-ann   # the same data, steps, budget
    python examples/train_tiny_spiketrack.py --steps 12 --out /tmp/t.pt --json /tmp/t.json   # smoke run

What it does
1. Data: (template, search) pairs from a rolling pool of scenes (ScenePool): diverse scenes
   from `snnsim.tracking.training_scenes` (photographs from scikit-image's wheel and five
   procedural texture families, aspect 0.3-3, speeds 0-18 px / frame, camera pan / zoom,
   lighting, blur, noise, JPEG, occluders, look-alike and unlike distractors) and, as one
   family among many (10 %), scenes of the first generator `snnsim.tracking.synthetic`.
   The template is cut at the target box of frame i (target >= 70 % visible), the search
   at the box of a frame within 50 frames of it with a jittered centre and scale, both with
   the runtime's own crop code (snnsim.tracking.sot: sqrt(w h) x 4.0, black padding,
   ImageNet normalisation), so training sees what tracking feeds the network. The seed
   fixes everything: scene seeds, pairs and initialisation.
2. Targets and loss as in OSTrack / SpikeTrack's centre-head training: a Gaussian centre
   heatmap on the 8 x 8 score map (CenterNet radius at IoU 0.7) with the focal loss, and the
   box read from the size / offset maps at the ground-truth centre cell with GIoU + L1
   (weights 1 / 2 / 5).
3. The backbone BatchNorms of SpikeTrack are frozen (buffers) in the published model; training
   from scratch needs them to learn, so they are swapped for ordinary batch-statistics
   BatchNorms during training and folded back into the frozen buffers (same keys) at the end,
   after re-estimating every BatchNorm's statistics with the final weights.
4. The checkpoint is a bare state_dict in float16 (< 5 MB), loaded strictly by the model's
   builder; the final validation reloads it from disk. A JSON record (command, arguments,
   hardware, seconds, the curve with validation AUC per family, checkpoint sha256) is
   written beside the docs (docs/training/MODEL.json).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snnsim.io.output import OutputError, check_parent_writable
from snnsim.models.checkpoint import check_state_dict, extract_state_dict, read_checkpoint
from snnsim.models.registry import weights_record
from snnsim.models.spiketrack import FrozenBatchNorm
from snnsim.models.spiketrack_tiny import (ANN_WEIGHTS_PATH, TINY_CONFIG, WEIGHTS_PATH, build_spiketrack_tiny,
                                           build_spiketrack_tiny_ann)
from snnsim.tracking.heldout_eval import track_boxes
from snnsim.tracking.sot import context_side, crop_window, extract_crop, normalise_crop
from snnsim.tracking.sot_metrics import average_sot_metrics, sot_metrics
from snnsim.tracking.synthetic import SyntheticScene
from snnsim.tracking.training_scenes import DiverseScene

ROOT = Path(__file__).resolve().parents[1]
FRAME_SIZE = (256, 256)
TRAIN_SEEDS = (100_000, 10_000_000)   # scenes are drawn from this seed range
VAL_SEEDS = range(5_000, 5_004)       # curve checkpoints (never trained on)
# The two models of the twin pair: trained by this one script with the same data and steps.
BUILDERS = {"spiketrack-tiny": (build_spiketrack_tiny, WEIGHTS_PATH),
            "spiketrack-tiny-ann": (build_spiketrack_tiny_ann, ANN_WEIGHTS_PATH)}


# ----------------------------------------------------------------------------- initialisation
def init_from(model: nn.Module, path: Path) -> None:
    """Load `path` into `model` before training. Every key of the model must be in the file
    with its shape; the only keys allowed to be left over are NI-LIF decay logits (absent from
    the ANN twin, whose activations have no parameters). A file that is no checkpoint, or one
    that does not fit, is a ValueError (models.checkpoint's one-line messages)."""
    source = f"--init {path}"
    saved = extract_state_dict(read_checkpoint(path), source)
    own = model.state_dict()
    kept = {k: v for k, v in saved.items() if k in own or not k.endswith(".decay")}
    check_state_dict(model, kept, source)     # the strict check every checkpoint load goes through
    model.load_state_dict({k: kept[k].to(own[k].dtype) for k in own}, strict=True)


# ----------------------------------------------------------------------------- BatchNorm swap
class TrainableBN(nn.Module):
    """Batch-statistics BatchNorm for any [N, C, ...] tensor with FrozenBatchNorm's state keys
    (weight, bias, running_mean, running_var): eval mode computes exactly what FrozenBatchNorm
    computes from the same four tensors."""

    def __init__(self, frozen: FrozenBatchNorm, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = frozen.eps, momentum
        self.weight = nn.Parameter(frozen.weight.detach().clone())
        self.bias = nn.Parameter(frozen.bias.detach().clone())
        self.register_buffer("running_mean", frozen.running_mean.detach().clone())
        self.register_buffer("running_var", frozen.running_var.detach().clone())

        self.batches = 0  # for a cumulative average when momentum is None (re-estimation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        momentum = self.momentum
        if self.training and momentum is None:
            self.batches += 1
            momentum = 1.0 / self.batches
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, momentum, self.eps)


@torch.no_grad()
def reestimate_bn(model: nn.Module, batches, rng, pool, batch: int, center_jitter: float, scale_jitter: float) -> None:
    """Recompute every BatchNorm's running statistics with the final weights, as a plain average
    over `batches` fresh training batches (the running averages gathered during training lag
    behind weights that were still moving, and spiking thresholds are sensitive to that)."""
    norms = [m for m in model.modules() if isinstance(m, (TrainableBN, nn.modules.batchnorm._BatchNorm))]
    for m in norms:
        m.running_mean.zero_()
        m.running_var.fill_(1.0)
        m.momentum = None
        if isinstance(m, TrainableBN):
            m.batches = 0
        else:
            m.num_batches_tracked.zero_()
    model.train()
    for _ in range(batches):
        z, x, _ = make_batch(rng, pool, batch, center_jitter, scale_jitter)
        model(z, x)
    model.eval()


def swap_frozen_bn(model: nn.Module) -> int:
    """Replace every FrozenBatchNorm submodule by a TrainableBN in place; returns how many."""
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FrozenBatchNorm):
                setattr(parent, name, TrainableBN(child))
                n += 1
    return n


def export_state_dict(model: nn.Module, builder, dtype=torch.float16) -> dict[str, torch.Tensor]:
    """The model's state dict with the key set of the frozen-BN model, floats in `dtype`."""
    reference = builder(None).state_dict()
    sd = model.state_dict()
    missing = set(reference) ^ set(sd)
    if missing:
        raise RuntimeError(f"trained state dict does not match the frozen model: {sorted(missing)[:5]}")
    return {k: (sd[k].detach().to(dtype) if sd[k].is_floating_point() else sd[k].detach()).clone()
            for k in reference}


# ----------------------------------------------------------------------------- data
def gaussian_radius(h: float, w: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: the largest corner shift keeping IoU >= min_overlap (three cases)."""
    b1, c1 = h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3, c3 = -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def heatmap_target(box_cxcywh: np.ndarray, feat: int) -> np.ndarray:
    """Gaussian peak (value 1) at the centre cell of a normalised box on a feat x feat map."""
    cx, cy, w, h = box_cxcywh * feat
    ix, iy = min(max(int(cx), 0), feat - 1), min(max(int(cy), 0), feat - 1)
    r = max(0.0, gaussian_radius(h, w))
    sigma = (2 * r + 1) / 6
    ys, xs = np.mgrid[0:feat, 0:feat]
    return np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2))


class ScenePool:
    """A rolling pool of training scenes: each step draws its pairs from random pool members
    and replaces `refresh` of them with fresh scenes, so a scene (whose set-up costs about two
    frames' rendering) serves a few pairs before it is dropped. Deterministic given rng.

    `legacy` is the share of scenes drawn by the first generator (snnsim.tracking.synthetic):
    it stays in the mixture as one family among many, not as the distribution."""

    def __init__(self, rng: np.random.Generator, size: int = 48, refresh: int = 4, legacy: float = 0.1):
        self.rng, self.refresh, self.legacy = rng, refresh, legacy
        self.scenes = [self._new() for _ in range(size)]

    def _new(self):
        seed = int(self.rng.integers(*TRAIN_SEEDS))
        n = int(self.rng.integers(60, 300))
        if self.rng.random() < self.legacy:
            return SyntheticScene(FRAME_SIZE, n_targets=1, n_distractors=int(self.rng.integers(0, 3)), seed=seed,
                                  occluder=bool(self.rng.random() < 0.5), n_frames=n)
        return DiverseScene(seed, FRAME_SIZE, n)

    def step(self) -> None:
        for k in self.rng.choice(len(self.scenes), self.refresh, replace=False):
            self.scenes[int(k)] = self._new()

    def pick(self):
        return self.scenes[int(self.rng.integers(len(self.scenes)))]


def _target(scene, t: int):
    """(image, box, visibility) of the target in frame t of either generator."""
    f = scene.frame(t)
    if isinstance(scene, SyntheticScene):
        return f.image, f.boxes[0], float(f.visibility[0])
    return f.image, f.box, f.visibility


def sample_pair(rng: np.random.Generator, pool: ScenePool, center_jitter: float, scale_jitter: float,
                max_gap: int = 50):
    """One training pair from a pool scene: (template [3,Z,Z], search [3,X,X], target box
    cx,cy,w,h in the search crop, normalised). The template frame is one where the target is
    at least 70 % visible; the search frame lies up to `max_gap` frames before or after it."""
    scene = pool.pick()
    n = scene.n_frames
    for _ in range(5):
        i = int(rng.integers(0, n))
        fz_image, zbox, vis = _target(scene, i)
        if vis >= 0.7:
            break
    lo, hi = max(0, i - max_gap), min(n - 1, i + max_gap)
    j = int(rng.integers(lo, hi + 1))
    fx_image, xbox, _ = _target(scene, j)
    size = TINY_CONFIG.size
    zwin = crop_window(zbox[:2] + zbox[2:] / 2, context_side(zbox, 4.0), size)
    template = normalise_crop(extract_crop(fz_image, zwin))[0]
    # search: jittered size, then a centre shift of up to +-center_jitter / 2 x sqrt(area)
    wh = xbox[2:] * np.exp(rng.normal(size=2) * scale_jitter)
    ref = math.sqrt(float(wh[0] * wh[1]))
    centre = xbox[:2] + xbox[2:] / 2 + (rng.random(2) - 0.5) * ref * center_jitter
    side = max(1, math.ceil(ref * 4.0))
    xwin = crop_window(centre, side, size)
    search = normalise_crop(extract_crop(fx_image, xwin))[0]
    target = np.clip(xwin.to_crop(xbox), 0.0, 1.0)
    return template, search, target


def make_batch(rng, pool: ScenePool, batch: int, center_jitter: float, scale_jitter: float):
    z, x, t = zip(*(sample_pair(rng, pool, center_jitter, scale_jitter) for _ in range(batch)))
    pool.step()
    return torch.stack(z)[None], torch.stack(x), torch.tensor(np.stack(t), dtype=torch.float32)


# ----------------------------------------------------------------------------- loss
def focal_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """CenterNet focal loss (alpha 2, beta 4), normalised by the number of peaks."""
    pos = gt.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_loss = torch.log(1 - pred) * pred ** 2 * (1 - gt) ** 4 * neg
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)


def giou_terms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of each pair of xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    inter = ((torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0)).prod(1)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-7)
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    return 1 - (iou - (hull - union) / hull.clamp(min=1e-7))


NEIGHBOUR_WEIGHT = 0.5   # a cell next to the centre cell, against 1 for the centre cell


def losses(out: dict, target: torch.Tensor, feat: int, regress_cells: int = 1) -> dict[str, torch.Tensor]:
    """Focal loss on the centre heatmap; GIoU and L1 on the box read at the centre cell and,
    with ``regress_cells`` 3, also at its 8 neighbours (weight NEIGHBOUR_WEIGHT): the runtime
    reads the box at the score map's argmax, which falls next to the centre cell in about 40 %
    of jittered pairs (a centred target sits on the corner of four cells), and a head trained
    at the centre cell alone is off by about a cell there. The offset a cell must predict is
    ``centre * feat - cell`` (-1 to 2 at a neighbour)."""
    B = target.shape[0]
    heat = torch.tensor(np.stack([heatmap_target(t, feat) for t in target.numpy()]),
                        dtype=torch.float32).unsqueeze(1)
    focal = focal_loss(out["score_map"], heat)
    centre = (target[:, :2] * feat).long().clamp(0, feat - 1)
    reach = range(-1, 2) if regress_cells == 3 else range(0, 1)
    giou = l1 = weight_sum = torch.zeros(())
    for dy in reach:
        for dx in reach:
            c = centre + torch.tensor([dx, dy])
            inside = ((c >= 0) & (c < feat)).all(1).float() * (1.0 if dx == dy == 0 else NEIGHBOUR_WEIGHT)
            c = c.clamp(0, feat - 1)
            idx = (c[:, 1] * feat + c[:, 0]).view(B, 1, 1).expand(B, 2, 1)
            size = out["size_map"].flatten(2).gather(2, idx).squeeze(-1)
            offset = out["offset_map"].flatten(2).gather(2, idx).squeeze(-1)
            pred = torch.cat([(c.float() + offset) / feat, size], 1)
            giou = giou + (giou_terms(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(target)) * inside).sum()
            l1 = l1 + (F.l1_loss(pred, target, reduction="none").mean(1) * inside).sum()
            weight_sum = weight_sum + inside.sum()
    giou, l1 = giou / weight_sum, l1 / weight_sum
    return {"loss": focal + 2.0 * giou + 5.0 * l1, "focal": focal, "giou": giou, "l1": l1}


# ----------------------------------------------------------------------------- validation
def val_sequences(n_frames: int) -> list[tuple[str, list, np.ndarray]]:
    """The curve's validation set: diverse scenes and first-generator scenes whose seeds lie
    outside the training range (never trained on). Frames are kept: the set is small."""
    seqs = []
    for s in VAL_SEEDS:
        scene = DiverseScene(int(s), FRAME_SIZE, n_frames)
        frames = list(scene)
        seqs.append(("diverse", [f.image for f in frames], np.stack([f.box for f in frames])))
    for k, s in enumerate(VAL_SEEDS):
        scene = SyntheticScene(FRAME_SIZE, n_targets=1, n_distractors=k % 3, seed=int(s), occluder=k % 2 == 0,
                               n_frames=n_frames)
        frames = [scene.frame(t) for t in range(n_frames)]
        seqs.append(("first-generator", [f.image for f in frames], np.stack([f.boxes[0] for f in frames])))
    return seqs


@torch.no_grad()
def validate(model, seqs) -> dict[str, float]:
    """Success AUC per validation family, tracked with the SpikeTrack runtime."""
    per = {}
    for family, frames, gt in seqs:
        per.setdefault(family, []).append(sot_metrics(track_boxes(model, frames, gt[0]), gt))
    return {f"val_auc_{k.replace('-', '_')}": average_sot_metrics(v).auc for k, v in per.items()}


# ----------------------------------------------------------------------------- main
def lr_at(step: int, steps: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(BUILDERS), default="spiketrack-tiny")
    ap.add_argument("--steps", type=int, default=1400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--center-jitter", type=float, default=2.0)
    ap.add_argument("--scale-jitter", type=float, default=0.25)
    ap.add_argument("--legacy", type=float, default=0.1,
                    help="share of scenes from the first generator (snnsim.tracking.synthetic)")
    ap.add_argument("--regress-cells", type=int, choices=(1, 3), default=1,
                    help="supervise the box at the centre cell only (1: the shipped checkpoints' recipe) or "
                         "also at its 8 neighbours (3: tried, not shipped; docs/training_tiny.md), where the "
                         "runtime's argmax often lands")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bn-batches", type=int, default=20,
                    help="batches to re-estimate the BatchNorm statistics on after training (0: keep)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--val-frames", type=int, default=100)
    ap.add_argument("--time-limit", type=float, default=45.0,
                    help="minutes of training after which it stops early (the budget); the record says so")
    ap.add_argument("--init", default="",
                    help="start from this checkpoint instead of a random initialisation (a spiketrack-tiny "
                         "checkpoint initialises the twin too: the same tensors, without NI-LIF's decay logits)")
    ap.add_argument("--out", default="", help="checkpoint path (default: the model's shipped weights file)")
    ap.add_argument("--json", default="", help="curve and run record (default: docs/training/MODEL.json)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out / --json file given by hand (the defaults, which this "
                         "script makes, are always replaced)")
    args = ap.parse_args(argv)
    if args.init and not Path(args.init).is_file():
        ap.error(f"--init: no checkpoint file at '{args.init}'")
    for flag in ("steps", "batch", "threads", "log_every", "eval_every"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")

    builder, default_out = BUILDERS[args.model]
    # the defaults are the shipped checkpoint and its docs record (this script made both); a path
    # given for one puts the other beside it, never over the shipped one
    if args.out or args.json:
        out_path = Path(args.out) if args.out else Path(args.json).with_suffix(".pt")
        json_path = Path(args.json) if args.json else out_path.with_suffix(".json")
    else:
        out_path, json_path = Path(default_out), ROOT / "docs" / "training" / f"{args.model}.json"
    for given, path in ((args.out or args.json, out_path), (args.out or args.json, json_path),
                        (True, out_path.with_name(out_path.name + ".partial"))):
        if given and path.exists() and not args.overwrite:
            ap.error(f"{path} exists; choose a new path or pass --overwrite to replace it")
    for flag, path in (("--out", out_path), ("--json", json_path)):   # before training, not after it
        try:
            check_parent_writable(path, f"{flag} {path}")
        except OutputError as exc:
            ap.error(str(exc))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = builder(None)
    if args.init:
        try:
            init_from(model, Path(args.init))
        except ValueError as exc:
            ap.error(str(exc))
    n_bn = swap_frozen_bn(model)
    if not args.init:
        with torch.no_grad():  # CenterNet's prior: the centre map starts near 0.1, not 0.5
            model.decoder.conv5_ctr.bias.fill_(-math.log((1 - 0.1) / 0.1))
    print(f"{args.model}: {sum(p.numel() for p in model.parameters()):,} trainable parameters "
          f"({n_bn} frozen BatchNorms made trainable); {args.steps} steps x {args.batch}", flush=True)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() <= 1 or "pos_embed" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    pool = ScenePool(rng, legacy=args.legacy)
    val = val_sequences(args.val_frames)
    feat = TINY_CONFIG.feat_size
    curve, acc, n_acc = [], {}, 0
    t0 = time.time()
    step = 0
    stopped_early = False
    for step in range(args.steps):
        model.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        z, x, target = make_batch(rng, pool, args.batch, args.center_jitter, args.scale_jitter)
        out = model(z, x)
        parts = losses(out, target, feat, args.regress_cells)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + float(v.detach())
        n_acc += 1
        stopped_early = step + 1 < args.steps and (time.time() - t0) / 60 > args.time_limit
        last = step + 1 == args.steps or stopped_early
        if (step + 1) % args.log_every == 0 or last:
            row = {"step": step + 1, "minutes": (time.time() - t0) / 60, **{k: v / n_acc for k, v in acc.items()}}
            if (step + 1) % args.eval_every == 0 or last:
                row.update(validate(model, val))
            curve.append(row)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            acc, n_acc = {}, 0
        if last:
            break
    if args.bn_batches:
        reestimate_bn(model, args.bn_batches, rng, pool, args.batch, args.center_jitter, args.scale_jitter)
        print(f"re-estimated BatchNorm statistics on {args.bn_batches} batches", flush=True)
    train_seconds = time.time() - t0
    model.eval()
    sd = export_state_dict(model, builder)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    torch.save(sd, tmp)
    os.replace(tmp, out_path)
    size = out_path.stat().st_size
    print(f"saved {out_path} ({size:,} bytes)", flush=True)
    shipped = builder(out_path).eval()  # strict load of the file just written
    final_val = validate(shipped, val)
    try:
        shown = str(out_path.resolve().relative_to(ROOT))
    except ValueError:
        shown = str(out_path)
    record = {
        "model": args.model,
        "command": "python examples/train_tiny_spiketrack.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "arguments": vars(args),
        "steps_done": step + 1, "stopped_early_at_time_limit": stopped_early,
        "train_seconds": train_seconds, "seconds_per_step": train_seconds / (step + 1),
        "hardware": f"CPU ({platform.processor() or platform.machine()}), {args.threads} torch thread(s), "
                    f"{os.cpu_count()} cores on the machine, shared with other jobs",
        "torch": torch.__version__,
        "checkpoint": shown, "checkpoint_bytes": size,
        "checkpoint_sha256": weights_record("checkpoint", out_path)["sha256"],
        "curve": curve, "final_validation": final_val,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {json_path}; final validation {final_val}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
