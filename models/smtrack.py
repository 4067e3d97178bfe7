"""SMTrack's detector: SpikeYOLOX-S (SpikeYOLO blocks in the YOLOX-S topology), T = 4, D = 4.

Structure (state-dict prefixes as in the official checkpoint):
- `backbone.backbone.dark{2..5}`: spiking darknet; dark2 has strides 4, the others 2 each.
- `backbone.{downConv1..5, MSConv1..5}`: YOLOX PAFPN topology with spiking blocks.
- `head.*`: YOLOX decoupled head per level (stem, cls / reg towers, cls / reg / obj preds).

The frame is repeated over T = 4 timesteps; every tensor inside is [T, B, C, H, W]. Head
outputs [reg(4), sigmoid(obj), sigmoid(cls)] are averaged over T (sigmoid per timestep,
before the mean), flattened level by level (strides 8, 16, 32, h-major) and decoded the
YOLOX way: xy = (p + grid) * stride, wh = exp(p) * stride.

`postprocess` turns decoded predictions into x1, y1, x2, y2, score boxes (score = obj * cls,
confidence threshold, class-agnostic NMS) for the MOT tracker.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import TrackerNet
from .box_ops import box_iou, nms_indices as nms  # noqa: F401  (box_iou: part of this module's API)
from .smtrack_blocks import (
    MSAllConvBlock,
    MSConvBlock,
    MSDownSampling,
    MSStandardConv,
    SpikeConv,
    SpikeConvWithoutBN,
    SpikeSPPF,
)

NATIVE_SIZE = (608, 1088)      # MOT17 test size (H, W)
GOLDEN_SIZE = (256, 448)       # size of the golden fixture
STRIDES = (8, 16, 32)
TIMESTEPS = 4

# variant -> (base channels, number of classes)
VARIANTS = {"s": (64, 1)}


def _up2(x: torch.Tensor) -> torch.Tensor:
    """Nearest 2x upsampling of a [T, B, C, H, W] tensor."""
    t, b = x.shape[:2]
    y = F.interpolate(x.flatten(0, 1), scale_factor=2, mode="nearest")
    return y.reshape(t, b, *y.shape[1:])


class SpikeDarknet(nn.Module):
    """dark2 = DS(3->c, k7, s4, p2, first) + AllConv(c, 4); dark3 = DS(->2c) + AllConv(2c, 4);
    dark4 = DS(->4c) + AllConv(4c, 3); dark5 = DS(->8c) + AllConv(8c, 2) + SpikeSPPF."""

    def __init__(self, c: int = 64, in_channels: int = 3):
        super().__init__()
        self.dark2 = nn.Sequential(MSDownSampling(in_channels, c, 7, 4, 2, first=True), MSAllConvBlock(c, 4))
        self.dark3 = nn.Sequential(MSDownSampling(c, 2 * c), MSAllConvBlock(2 * c, 4))
        self.dark4 = nn.Sequential(MSDownSampling(2 * c, 4 * c), MSAllConvBlock(4 * c, 3))
        self.dark5 = nn.Sequential(MSDownSampling(4 * c, 8 * c), MSAllConvBlock(8 * c, 2),
                                   SpikeSPPF(8 * c, 8 * c))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dark2(x)
        d3 = self.dark3(x)
        d4 = self.dark4(d3)
        d5 = self.dark5(d4)
        return d3, d4, d5


class SpikeYOLOPAFPN(nn.Module):
    """Backbone + PAFPN neck; returns (P3, P4, P5) at strides 8, 16, 32."""

    def __init__(self, c: int = 64, timesteps: int = TIMESTEPS):
        super().__init__()
        self.timesteps = timesteps
        self.backbone = SpikeDarknet(c)
        c3, c4, c5 = 2 * c, 4 * c, 8 * c  # 128, 256, 512
        self.downConv1 = MSStandardConv(c5, c4, 1)            # f0
        self.MSConv1 = MSConvBlock(c4, 3)
        self.downConv2 = MSStandardConv(2 * c4, c3, 1)        # f1
        self.MSConv2 = MSAllConvBlock(c3, 4)
        self.downConv3 = MSStandardConv(2 * c3, c3, 1)
        self.MSConv3 = MSAllConvBlock(c3, 4)                  # -> P3
        self.downConv4 = MSStandardConv(c3, c3, 3, 2)
        self.MSConv4 = MSConvBlock(2 * c3, 3)                 # -> P4
        self.downConv5 = MSStandardConv(2 * c3, c4, 3, 2)
        self.MSConv5 = MSConvBlock(2 * c4, 1)                 # -> P5

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = image.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)  # [T, B, 3, H, W]
        d3, d4, d5 = self.backbone(x)
        f0 = self.downConv1(d5)
        y = torch.cat([self.MSConv1(_up2(f0)), d4], 2)
        f1 = self.downConv2(y)
        y = torch.cat([self.MSConv2(_up2(f1)), d3], 2)
        p3 = self.MSConv3(self.downConv3(y))
        y = torch.cat([self.downConv4(p3), f1], 2)
        p4 = self.MSConv4(y)
        y = torch.cat([self.downConv5(p4), f0], 2)
        p5 = self.MSConv5(y)
        return p3, p4, p5


class SpikeYOLOXHead(nn.Module):
    """YOLOX decoupled head with spiking convs; per level: stem SpikeConv 1x1 -> w, cls and
    reg towers of two SpikeConv 3x3, prediction layers SpikeConvWithoutBN 1x1."""

    def __init__(self, num_classes: int = 1, width: int = 128, in_channels=(128, 256, 512)):
        super().__init__()
        self.num_classes = num_classes
        # registration order = the checkpoint's key order
        self.cls_convs = nn.ModuleList(
            nn.Sequential(SpikeConv(width, width, 3), SpikeConv(width, width, 3)) for _ in in_channels)
        self.reg_convs = nn.ModuleList(
            nn.Sequential(SpikeConv(width, width, 3), SpikeConv(width, width, 3)) for _ in in_channels)
        self.cls_preds = nn.ModuleList(SpikeConvWithoutBN(width, num_classes, 1) for _ in in_channels)
        self.reg_preds = nn.ModuleList(SpikeConvWithoutBN(width, 4, 1) for _ in in_channels)
        self.obj_preds = nn.ModuleList(SpikeConvWithoutBN(width, 1, 1) for _ in in_channels)
        self.stems = nn.ModuleList(SpikeConv(c, width, 1) for c in in_channels)

    def forward(self, feats) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Returns the per-level T-averaged maps [B, 5 + nc, H, W] and the per-timestep
        prediction logits {'level{k}/{cls,reg,obj}_pred_T': [T, B, c, H, W]}."""
        outs, per_t = [], {}
        for k, x in enumerate(feats):
            x = self.stems[k](x)
            cls_out = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            reg_out = self.reg_preds[k](reg_feat)
            obj_out = self.obj_preds[k](reg_feat)
            per_t[f"level{k}/cls_pred_T"] = cls_out
            per_t[f"level{k}/reg_pred_T"] = reg_out
            per_t[f"level{k}/obj_pred_T"] = obj_out
            out = torch.cat([reg_out, obj_out.sigmoid(), cls_out.sigmoid()], 2)
            outs.append(out.mean(0))
        return outs, per_t


def make_grids(hw: list[tuple[int, int]], strides=STRIDES, dtype=torch.float32, device=None):
    """YOLOX anchor grid [1, A, 2] (x, y cell indices, h-major per level) and strides [1, A, 1]."""
    grids, strs = [], []
    for (h, w), s in zip(hw, strides):
        yv, xv = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        grids.append(torch.stack((xv, yv), 2).view(1, -1, 2))
        strs.append(torch.full((1, h * w, 1), s, device=device))
    return torch.cat(grids, 1).to(dtype), torch.cat(strs, 1).to(dtype)


def decode_outputs(raw: torch.Tensor, hw: list[tuple[int, int]], strides=STRIDES) -> torch.Tensor:
    """raw [B, A, 5 + nc] -> boxes (cx, cy, w, h) in pixels, then obj, cls unchanged."""
    grids, strs = make_grids(hw, strides, raw.dtype, raw.device)
    return torch.cat([(raw[..., 0:2] + grids) * strs, torch.exp(raw[..., 2:4]) * strs, raw[..., 4:]], dim=-1)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), -1)


def postprocess(decoded: torch.Tensor, conf_threshold: float = 0.01, nms_threshold: float = 0.7,
                max_detections: int | None = None) -> list[torch.Tensor]:
    """decoded [B, A, 5 + nc] (cx, cy, w, h, obj, cls...) -> per image a tensor [N, 5] of
    x1, y1, x2, y2, score with score = obj * max class probability >= conf_threshold,
    after class-agnostic NMS at nms_threshold, sorted by score (highest first)."""
    results = []
    for pred in decoded:
        cls_conf = pred[:, 5:].max(1).values if pred.shape[1] > 5 else torch.ones_like(pred[:, 4])
        score = pred[:, 4] * cls_conf
        mask = score >= conf_threshold
        boxes = cxcywh_to_xyxy(pred[mask, :4])
        score = score[mask]
        keep = nms(boxes, score, nms_threshold)
        if max_detections is not None:
            keep = keep[:max_detections]
        results.append(torch.cat([boxes[keep], score[keep, None]], 1))
    return results


class SMTrackDetector(TrackerNet):
    """SpikeYOLOX-S: `forward_search(image)` runs the detector on one frame [B, 3, H, W]."""

    family = "smtrack"
    kind = "spiking"
    timesteps = TIMESTEPS
    golden_gain = 1.0

    def __init__(self, variant: str = "s", input_size=NATIVE_SIZE, timesteps: int = TIMESTEPS):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown SMTrack variant '{variant}'; known variants: {', '.join(VARIANTS)}")
        c, nc = VARIANTS[variant]
        self.variant = variant
        self.input_size = _check_size(input_size)
        self.timesteps = timesteps
        self.num_classes = nc
        self.strides = STRIDES
        self.backbone = SpikeYOLOPAFPN(c, timesteps)
        self.head = SpikeYOLOXHead(nc, 2 * c, (2 * c, 4 * c, 8 * c))

    def example_inputs(self, source: str = "random", batch: int = 1, size=None) -> dict[str, torch.Tensor | None]:
        """'golden': golden_image(7, (256, 448)) (the fixture input; `size` overrides);
        'random': a seeded standard-normal image at the model's input size (608x1088)."""
        if source == "golden":
            from .golden import golden_image

            return {"template": None, "search": golden_image(7, _check_size(size or GOLDEN_SIZE), batch)}
        if source == "random":
            h, w = _check_size(size or self.input_size)
            g = torch.Generator().manual_seed(0)
            return {"template": None, "search": torch.randn((batch, 3, h, w), generator=g)}
        raise ValueError(f"unknown input source '{source}'; use 'golden' or 'random'")

    def forward_template(self, template: torch.Tensor | None) -> None:
        return None

    def forward_search(self, search: torch.Tensor, cache: Any = None) -> dict[str, torch.Tensor]:
        if search.dim() != 4 or search.shape[1] != 3:
            raise ValueError(f"SMTrack expects an image batch [B, 3, H, W], got shape {tuple(search.shape)}")
        _check_size(tuple(search.shape[-2:]))
        p3, p4, p5 = self.backbone(search)
        outs, per_t = self.head((p3, p4, p5))
        hw = [tuple(o.shape[-2:]) for o in outs]
        raw = torch.cat([o.flatten(start_dim=2) for o in outs], dim=2).permute(0, 2, 1)
        result: dict[str, torch.Tensor] = {
            "raw_before_decode": raw,
            "decoded": decode_outputs(raw, hw, self.strides),
        }
        result.update(per_t)
        for k, p in enumerate((p3, p4, p5)):
            result[f"fpn_out{k}"] = p
        return result

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Decoded predictions [B, A, 5 + nc] (what the official YOLOX model returns)."""
        return self.forward_search(image, None)["decoded"]

    def detect(self, image: torch.Tensor, conf_threshold: float = 0.01, nms_threshold: float = 0.7):
        """Boxes x1, y1, x2, y2, score per image after threshold and NMS."""
        return postprocess(self.forward_search(image, None)["decoded"], conf_threshold, nms_threshold)


def _check_size(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if h % 32 or w % 32 or h <= 0 or w <= 0:
        raise ValueError(f"SMTrack input size {h}x{w} must be positive multiples of 32 (e.g. 608x1088)")
    return h, w


def build_smtrack(variant: str = "s", input_size=NATIVE_SIZE) -> SMTrackDetector:
    """SMTrack's SpikeYOLOX detector; `input_size` (H, W) is only the default example-input size."""
    return SMTrackDetector(variant, input_size)
