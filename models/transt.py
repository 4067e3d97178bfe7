"""TransT N4 (Chen et al., CVPR 2021): ResNet-50 to layer3 + feature-fusion transformer.

Written from the facts in specs/models.md and the published code's structure; module names
follow the official checkpoint (specs/checkpoints/transt_n4_keys.txt), so the released
`transt.pth` loads strictly, and the golden fixture `transt_n4.pt` is reproduced.

Layout of the state dict (and of the module tree, so per-layer reports use official names):

    featurefusion_network.encoder.layers.{0-3}   FeatureFusionLayer (ECA + CFA, post-norm)
    featurefusion_network.decoder.layers.0       CFA: search queries attend to the template
    featurefusion_network.decoder.norm           final LayerNorm
    class_embed / bbox_embed                     3-layer MLPs (width 256) -> 2 logits / 4 box
    input_proj                                   1x1 conv 1024 -> 256
    backbone.0.body                              ResNet-50 conv1 .. layer3 (frozen BN)
    backbone.1                                   sine position encoding (no state)

Numerical facts that matter for matching the reference bit for bit:
- The backbone BatchNorms are evaluated with `F.batch_norm(training=False)`, i.e. the
  arithmetic of an eval-mode `nn.BatchNorm2d` (what the official ResNet uses), not the
  `x * scale + shift` form of DETR's FrozenBatchNorm2d. They are frozen here: affine terms
  and statistics are buffers, and the checkpoint's `num_batches_tracked` is kept as a buffer.
- Only the *first* block of layer3 is dilated (3x3 conv, dilation 2, padding 2, stride 1);
  the other five layer3 blocks are plain 3x3 convs, exactly as the official `_make_layer`.
- Attention runs through `nn.MultiheadAttention` (sequence-first) with the all-False key
  padding mask the official code passes and `need_weights=True` (its default), so the
  same attention kernels (baddbmm + softmax) run; `need_weights=False` would switch to SDPA.
- Dropout is omitted (inference only; the reference fixtures run in eval mode).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import TrackerNet

TEMPLATE_SIZE = 128
SEARCH_SIZE = 256
FEATURE_STRIDE = 8
WINDOW_INFLUENCE = 0.49  # pytracking/tracker/transt/config.py: TRACK.WINDOW_INFLUENCE


# --------------------------------------------------------------------------- backbone
class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics: the published backbone is an eval-mode
    nn.BatchNorm2d, so weight and bias are (frozen) Parameters — the parameter count then
    equals the published 23.0 M — and the statistics are buffers.

    Evaluates like an eval-mode nn.BatchNorm2d (same kernel), whatever the module mode.
    `num_batches_tracked` is kept because the official checkpoint stores it; a state dict
    without it (DETR-style) also loads."""

    no_synaptic_ops = True   # the profiler runs it outside its counting modes (a per-channel affine map)

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_features), requires_grad=False)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # load_state_dict works on its own copy of the dict, so filling in is safe.
        state_dict.setdefault(prefix + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, momentum=0.0, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (carries stride and dilation) -> 1x1 (x4)."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = FrozenBatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


def _stage(in_ch: int, width: int, blocks: int, stride: int, first_dilation: int) -> nn.Sequential:
    """One ResNet stage. As in the TransT code, only the first block gets the dilation."""
    out_ch = width * Bottleneck.expansion
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                   FrozenBatchNorm2d(out_ch))
    layers = [Bottleneck(in_ch, width, stride, first_dilation, downsample)]
    layers += [Bottleneck(out_ch, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50Layer3(nn.Module):
    """ResNet-50 stem + layer1..layer3; layer3 at stride 1 (first block dilated by 2).
    Output: 1024 channels at stride 8."""

    out_channels = 1024

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, 3, stride=1, first_dilation=1)
        self.layer2 = _stage(256, 128, 4, stride=2, first_dilation=1)
        self.layer3 = _stage(512, 256, 6, stride=1, first_dilation=2)
        for m in self.modules():  # the official init (He normal, fan-out)
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


class BackboneBody(nn.Module):
    """Holds the ResNet as `.body` (the checkpoint's `backbone.0.body.` prefix)."""

    def __init__(self):
        super().__init__()
        self.body = ResNet50Layer3()
        self.num_channels = ResNet50Layer3.out_channels

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [B,1024,h,w] and the padding mask [B,h,w] (all False: crops are never
        padded, as nested_tensor_from_tensor_2 gives for equal-sized images)."""
        feat = self.body(images)
        mask = torch.zeros((feat.shape[0], *feat.shape[-2:]), dtype=torch.bool, device=feat.device)
        return feat, mask


class SinePositionEncoding(nn.Module):
    """DETR-style 2-D sine encoding, normalised to [0, 2*pi] per axis; `num_feats` channels
    per axis (y first, then x), sin on even and cos on odd channels."""

    def __init__(self, num_feats: int = 128, temperature: float = 10000.0, eps: float = 1e-6):
        super().__init__()
        self.num_feats = num_feats
        self.temperature = temperature
        self.eps = eps
        self.scale = 2 * math.pi

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """mask [B,h,w] (True = padding) -> encoding [B, 2*num_feats, h, w]."""
        valid = ~mask
        ys = valid.cumsum(1, dtype=torch.float32)
        xs = valid.cumsum(2, dtype=torch.float32)
        ys = ys / (ys[:, -1:, :] + self.eps) * self.scale
        xs = xs / (xs[:, :, -1:] + self.eps) * self.scale
        i = torch.arange(self.num_feats, dtype=torch.float32, device=mask.device)
        freq = self.temperature ** (2 * (i // 2) / self.num_feats)

        def interleave(coord: torch.Tensor) -> torch.Tensor:
            ang = coord[..., None] / freq
            return torch.stack((ang[..., 0::2].sin(), ang[..., 1::2].cos()), dim=4).flatten(3)

        return torch.cat((interleave(ys), interleave(xs)), dim=3).permute(0, 3, 1, 2)


class Joiner(nn.ModuleList):
    """backbone.0 = ResNet body, backbone.1 = position encoding."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat, mask = self[0](images)
        pos = self[1](mask).to(feat.dtype)
        return feat, mask, pos


# --------------------------------------------------------------------------- fusion
def _with_pos(x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
    return x if pos is None else x + pos


def _attend(attn: nn.MultiheadAttention, query, key, value, key_padding_mask) -> torch.Tensor:
    # need_weights=True is nn.MultiheadAttention's default and what the reference calls;
    # it keeps the explicit baddbmm/softmax path (False would take SDPA).
    return attn(query, key, value, key_padding_mask=key_padding_mask, need_weights=True)[0]


class FeatureFusionLayer(nn.Module):
    """One encoder layer. Stream 1 = template, stream 2 = search; [L, B, d] tensors.

    ECA: self-attention + residual + LN on each stream. CFA: cross-attention both ways
    (computed from the post-ECA streams), each followed by residual + LN, FFN, residual + LN."""

    def __init__(self, d_model: int = 256, nhead: int = 8, dim_ff: int = 2048):
        super().__init__()
        self.self_attn1 = nn.MultiheadAttention(d_model, nhead)
        self.self_attn2 = nn.MultiheadAttention(d_model, nhead)
        self.multihead_attn1 = nn.MultiheadAttention(d_model, nhead)
        self.multihead_attn2 = nn.MultiheadAttention(d_model, nhead)
        self.linear11 = nn.Linear(d_model, dim_ff)
        self.linear12 = nn.Linear(dim_ff, d_model)
        self.linear21 = nn.Linear(d_model, dim_ff)
        self.linear22 = nn.Linear(dim_ff, d_model)
        for name in ("norm11", "norm12", "norm13", "norm21", "norm22", "norm23"):
            setattr(self, name, nn.LayerNorm(d_model))

    def forward(self, src1, src2, mask1=None, mask2=None, pos1=None, pos2=None):
        q = _with_pos(src1, pos1)
        src1 = self.norm11(src1 + _attend(self.self_attn1, q, q, src1, mask1))
        q = _with_pos(src2, pos2)
        src2 = self.norm21(src2 + _attend(self.self_attn2, q, q, src2, mask2))

        a1 = _attend(self.multihead_attn1, _with_pos(src1, pos1), _with_pos(src2, pos2), src2, mask2)
        a2 = _attend(self.multihead_attn2, _with_pos(src2, pos2), _with_pos(src1, pos1), src1, mask1)

        src1 = self.norm12(src1 + a1)
        src1 = self.norm13(src1 + self.linear12(F.relu(self.linear11(src1))))
        src2 = self.norm22(src2 + a2)
        src2 = self.norm23(src2 + self.linear22(F.relu(self.linear21(src2))))
        return src1, src2


class DecoderCFALayer(nn.Module):
    """Search queries attend to the template memory; residual + LN, FFN, residual + LN."""

    def __init__(self, d_model: int = 256, nhead: int = 8, dim_ff: int = 2048):
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_ff)
        self.linear2 = nn.Linear(dim_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, tgt, memory, memory_mask=None, pos_memory=None, pos_tgt=None):
        a = _attend(self.multihead_attn, _with_pos(tgt, pos_tgt), _with_pos(memory, pos_memory),
                    memory, memory_mask)
        tgt = self.norm1(tgt + a)
        return self.norm2(tgt + self.linear2(F.relu(self.linear1(tgt))))


class Encoder(nn.Module):
    def __init__(self, num_layers: int, **kw):
        super().__init__()
        self.layers = nn.ModuleList(FeatureFusionLayer(**kw) for _ in range(num_layers))

    def forward(self, src1, src2, mask1=None, mask2=None, pos1=None, pos2=None):
        for layer in self.layers:
            src1, src2 = layer(src1, src2, mask1, mask2, pos1, pos2)
        return src1, src2


class Decoder(nn.Module):
    def __init__(self, d_model: int = 256, **kw):
        super().__init__()
        self.layers = nn.ModuleList([DecoderCFALayer(d_model, **kw)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt, memory, memory_mask=None, pos_memory=None, pos_tgt=None):
        for layer in self.layers:
            tgt = layer(tgt, memory, memory_mask, pos_memory, pos_tgt)
        return self.norm(tgt)


class FeatureFusionNetwork(nn.Module):
    def __init__(self, d_model: int = 256, nhead: int = 8, num_layers: int = 4, dim_ff: int = 2048):
        super().__init__()
        self.encoder = Encoder(num_layers, d_model=d_model, nhead=nhead, dim_ff=dim_ff)
        self.decoder = Decoder(d_model, nhead=nhead, dim_ff=dim_ff)
        self.d_model = d_model
        self.nhead = nhead
        for p in self.parameters():  # the official init
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src_t, mask_t, src_s, mask_s, pos_t, pos_s) -> torch.Tensor:
        """[B,d,h,w] maps and [B,h,w] masks -> hs [1, B, HW_search, d]."""
        def seq(x):  # [B,C,h,w] -> [hw, B, C]
            return x.flatten(2).permute(2, 0, 1)

        src_t, pos_t, src_s, pos_s = seq(src_t), seq(pos_t), seq(src_s), seq(pos_s)
        mask_t, mask_s = mask_t.flatten(1), mask_s.flatten(1)
        mem_t, mem_s = self.encoder(src_t, src_s, mask_t, mask_s, pos_t, pos_s)
        hs = self.decoder(mem_s, mem_t, mask_t, pos_t, pos_s)
        return hs.unsqueeze(0).transpose(1, 2)


class MLP(nn.Module):
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == last else F.relu(layer(x))
        return x


# --------------------------------------------------------------------------- tracker net
class TransT(TrackerNet):
    """TransT N4. `forward_template` runs the backbone on the template crop and caches its
    layer3 features (with mask and position encoding), as the official tracker's
    `template()`; `forward_search` is the official `track()`: search backbone, input_proj
    of both streams, feature fusion and heads."""

    family = "transt"
    kind = "ann"
    timesteps = 1
    golden_gain = 1.0

    def __init__(self, hidden_dim: int = 256, nheads: int = 8, dim_feedforward: int = 2048,
                 featurefusion_layers: int = 4, num_classes: int = 1):
        super().__init__()
        # Registration order = the checkpoint's key order.
        self.featurefusion_network = FeatureFusionNetwork(hidden_dim, nheads, featurefusion_layers,
                                                          dim_feedforward)
        self.class_embed = MLP(hidden_dim, hidden_dim, num_classes + 1, 3)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.input_proj = nn.Conv2d(ResNet50Layer3.out_channels, hidden_dim, kernel_size=1)
        self.backbone = Joiner([BackboneBody(), SinePositionEncoding(hidden_dim // 2)])

    # -- TrackerNet interface
    def example_inputs(self, source: str = "random", batch: int = 1) -> dict[str, torch.Tensor]:
        if source == "golden":
            from .golden import golden_image

            return {"template": golden_image(1, TEMPLATE_SIZE, batch),
                    "search": golden_image(7, SEARCH_SIZE, batch)}
        if source == "random":
            gen = torch.Generator().manual_seed(0)
            return {"template": torch.randn((batch, 3, TEMPLATE_SIZE, TEMPLATE_SIZE), generator=gen),
                    "search": torch.randn((batch, 3, SEARCH_SIZE, SEARCH_SIZE), generator=gen)}
        raise ValueError(f"unknown input source '{source}'; use 'random' or 'golden'")

    def forward_template(self, template: torch.Tensor) -> dict[str, torch.Tensor]:
        feat, mask, pos = self.backbone(template)
        return {"feature": feat, "mask": mask, "pos": pos}

    def forward_search(self, search: torch.Tensor, cache: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feat, mask, pos = self.backbone(search)
        return self._fuse_and_predict(cache["feature"], cache["mask"], cache["pos"], feat, mask, pos)

    def forward(self, search: torch.Tensor, template: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training-style forward `model(search, template)`: both backbones, then the
        same fusion and heads (identical to template() + track())."""
        feat_s, mask_s, pos_s = self.backbone(search)
        feat_t, mask_t, pos_t = self.backbone(template)
        return self._fuse_and_predict(feat_t, mask_t, pos_t, feat_s, mask_s, pos_s)

    def _fuse_and_predict(self, feat_t, mask_t, pos_t, feat_s, mask_s, pos_s) -> dict[str, torch.Tensor]:
        proj_t = self.input_proj(feat_t)
        proj_s = self.input_proj(feat_s)
        hs = self.featurefusion_network(proj_t, mask_t, proj_s, mask_s, pos_t, pos_s)
        logits = self.class_embed(hs)
        boxes = self.bbox_embed(hs).sigmoid()
        return {"pred_logits": logits[-1], "pred_boxes": boxes[-1],
                "input_proj_template": proj_t, "input_proj_search": proj_s, "fusion_out_hs": hs}


def build_transt() -> TransT:
    """TransT N4 (ResNet-50, 4 fusion layers, d 256, 8 heads, FFN 2048), untrained init."""
    return TransT()


# --------------------------------------------------------------------------- test-time rule
def transt_hann_window(side: int = 32, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """outer(hanning(side), hanning(side)) flattened row-major: the tracker's cosine window.
    Computed as numpy.hanning does (0.5 + 0.5 cos(pi n / (M-1)), n = 1-M, 3-M, .., M-1) so the
    values, and hence argmax ties between the central cells, are numpy's to the bit."""
    n = torch.arange(1 - side, side, 2, dtype=torch.float64)
    h = 0.5 + 0.5 * torch.cos(math.pi * n / (side - 1)) if side > 1 else torch.ones(1, dtype=torch.float64)
    return torch.outer(h, h).flatten().to(dtype)


def transt_select_box(pred_logits: torch.Tensor, pred_boxes: torch.Tensor,
                      window_influence: float = WINDOW_INFLUENCE) -> tuple[torch.Tensor, torch.Tensor]:
    """TransT's test-time choice among the HW candidate boxes.

    score = softmax(logits)[..., 0] (index 0 = foreground); pscore = score * (1 - wi) +
    hann * wi with the 2-D Hann window over the (square) feature map; the chosen candidate
    is argmax(pscore) (first on ties). Arithmetic follows the tracker: score and its
    weighting in float32, window term and sum in float64.

    pred_logits [B, N, 2] or [N, 2]; pred_boxes [B, N, 4] or [N, 4] (normalised cx,cy,w,h).
    Returns (box [B, 4] or [4] in pred_boxes' dtype, score [B] or [] = foreground
    probability of the chosen candidate, un-windowed)."""
    single = pred_logits.dim() == 2
    if single:
        pred_logits, pred_boxes = pred_logits[None], pred_boxes[None]
    if pred_logits.shape[-1] != 2 or pred_boxes.shape[-1] != 4 or pred_logits.shape[:2] != pred_boxes.shape[:2]:
        raise ValueError(f"transt_select_box: expected logits [B,N,2] and boxes [B,N,4], got "
                         f"{tuple(pred_logits.shape)} and {tuple(pred_boxes.shape)}")
    n = pred_logits.shape[1]
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"transt_select_box: {n} candidates do not form a square feature map")
    score = F.softmax(pred_logits.float(), dim=-1)[..., 0]
    window = transt_hann_window(side).to(score.device)
    pscore = (score * (1 - window_influence)).double() + window * window_influence
    idx = pscore.argmax(dim=1)
    rows = torch.arange(pred_logits.shape[0], device=idx.device)
    box, best = pred_boxes[rows, idx], score[rows, idx]
    return (box[0], best[0]) if single else (box, best)
