"""AsymTrack T / S / B (jiawen-zhu/AsymTrack, AAAI 2025): an asymmetric two-stream ANN tracker.

Backbone EfficientMod-xxs cut after stage 3 (channels-last), ETM template modulation in
stages 2-3, OPE in every stage, one attention block over [search; template] tokens in stage 3;
Linear neck 256 -> 256; STARK-style corner head (two conv towers, soft-argmax).

The model is built in **deploy form** (OPE as one 3x3 conv `rbr_reparam`), whose state_dict
equals the published deploy key list. Training-form checkpoints (`rbr_conv.{0,1,2}.weight`,
`theta`) are re-parameterised on load by `convert_checkpoint` / `train_to_deploy`.

Tracking split: `forward_template` runs the template branch once and returns the cache
(template tokens entering each attention block, ETM prototype kernels); `forward_search`
runs search + neck + head with that cache. `forward(template, search)` is the published
first call (template and search together, cache kept on the module) and
`forward(None, search)` the later calls; both give identical outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .asymtrack_layers import (
    ETM,
    OPE,
    AttentionBlock,
    BasicBlock,
    PatchEmbed,
    fold_ope_weight,
)
from .base import TrackerNet


@dataclass(frozen=True)
class AsymTrackConfig:
    name: str
    depths: tuple[int, int, int]        # BasicBlocks per stage
    template_size: int
    search_size: int
    embed_dim: tuple[int, int, int, int] = (32, 64, 128, 256)
    attention_depth: tuple[int, int, int] = (0, 0, 1)
    att_ratio: float = 4.0
    num_heads: int = 8
    context_size: int = 7
    head_channels: int = 256
    head_stride: int = 32

    @property
    def feat_sz(self) -> int:
        return self.search_size // self.head_stride

    def mlp_ratios(self, stage: int) -> list[int]:
        return ([1, 6] * 3)[: self.depths[stage]]


VARIANTS: dict[str, AsymTrackConfig] = {
    "tiny": AsymTrackConfig("tiny", (2, 2, 1), 128, 256),
    "small": AsymTrackConfig("small", (2, 2, 3), 128, 256),
    "base": AsymTrackConfig("base", (2, 2, 3), 192, 384),
}
_ALIASES = {"t": "tiny", "s": "small", "b": "base"}


# ----------------------------------------------------------------------------- backbone

class Stage(nn.Module):
    """BasicBlocks -> [ETM] -> OPE -> [AttentionBlock] ; downsample (3x3 s2 conv + LN)."""

    def __init__(self, index: int, cfg: AsymTrackConfig, deploy: bool):
        super().__init__()
        dim, out_dim = cfg.embed_dim[index], cfg.embed_dim[index + 1]
        blocks: list[nn.Module] = [BasicBlock(dim, r, cfg.context_size) for r in cfg.mlp_ratios(index)]
        if index in (1, 2):
            blocks.append(ETM(dim, dim // 32))
        blocks.append(OPE(dim, deploy=deploy))
        for _ in range(cfg.attention_depth[index]):
            blocks.append(AttentionBlock(dim, cfg.att_ratio, cfg.num_heads))
        self.blocks = nn.ModuleList(blocks)
        self.downsample = PatchEmbed(dim, out_dim, 3, 2, 1)

    def forward_template(self, z: torch.Tensor, prefix: str, cache: dict) -> torch.Tensor:
        for j, blk in enumerate(self.blocks):
            name = f"{prefix}.blocks.{j}"
            if isinstance(blk, ETM):
                cache["etm_kernels"][name] = blk.template_kernels(z)
            elif isinstance(blk, AttentionBlock):
                b, h, w, c = z.shape
                cache["template_tokens"][name] = z.reshape(b, h * w, c).contiguous()
                z = blk.forward_template(z)
            else:
                z = blk(z)
        return self.downsample(z)

    def forward_search(self, x: torch.Tensor, prefix: str, cache: dict) -> torch.Tensor:
        for j, blk in enumerate(self.blocks):
            name = f"{prefix}.blocks.{j}"
            if isinstance(blk, ETM):
                x = blk(x, cache["etm_kernels"][name])
            elif isinstance(blk, AttentionBlock):
                x = blk(x, cache["template_tokens"][name])
            else:
                x = blk(x)
        return self.downsample(x)


class Backbone(nn.Module):
    def __init__(self, cfg: AsymTrackConfig, deploy: bool):
        super().__init__()
        self.patch_embed = PatchEmbed(3, cfg.embed_dim[0], 7, 4, 3)
        self.layers = nn.ModuleList([Stage(i, cfg, deploy) for i in range(3)])

    def forward_template(self, z: torch.Tensor) -> dict[str, Any]:
        """The template branch exactly as the published first call runs it (every stage,
        the template's own attention pass and the last downsample included)."""
        cache: dict[str, Any] = {"etm_kernels": {}, "template_tokens": {}}
        z = self.patch_embed.forward_nchw(z)
        for i, layer in enumerate(self.layers):
            z = layer.forward_template(z, f"backbone.layers.{i}", cache)
        return cache

    def forward_search(self, x: torch.Tensor, cache: dict) -> list[torch.Tensor]:
        """Search branch; returns [stage-2 output, stage-3 output] (after their downsamples)."""
        x = self.patch_embed.forward_nchw(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer.forward_search(x, f"backbone.layers.{i}", cache)
            if i in (1, 2):
                outs.append(x)
        return outs


# ----------------------------------------------------------------------------- head

def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=True),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CornerPredictor(nn.Module):
    """Two conv towers C -> C -> C/2 -> C/4 -> C/8 -> 1 (top-left, bottom-right corner logits),
    soft-argmax over the F x F map; corners normalised by F * stride."""

    def __init__(self, inplanes: int, channel: int, feat_sz: int, stride: int):
        super().__init__()
        self.feat_sz, self.stride = feat_sz, stride
        self.img_sz = feat_sz * stride
        chans = [inplanes, channel, channel // 2, channel // 4, channel // 8]
        for side in ("tl", "br"):
            for k in range(4):
                setattr(self, f"conv{k + 1}_{side}", _conv_bn_relu(chans[k], chans[k + 1]))
            setattr(self, f"conv5_{side}", nn.Conv2d(chans[4], 1, kernel_size=1))
        idx = torch.arange(0, feat_sz).view(-1, 1) * stride
        self.register_buffer("coord_x", idx.repeat((feat_sz, 1)).view(feat_sz * feat_sz).float(), persistent=False)
        self.register_buffer("coord_y", idx.repeat((1, feat_sz)).view(feat_sz * feat_sz).float(), persistent=False)

    def score_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = []
        for side in ("tl", "br"):
            y = x
            for k in range(1, 6):
                y = getattr(self, f"conv{k}_{side}")(y)
            maps.append(y)
        return maps[0], maps[1]

    def soft_argmax(self, score_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prob = torch.softmax(score_map.view((-1, self.feat_sz * self.feat_sz)), dim=1)
        return torch.sum(self.coord_x * prob, dim=1), torch.sum(self.coord_y * prob, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        tl, br = self.score_maps(x)
        x0, y0 = self.soft_argmax(tl)
        x1, y1 = self.soft_argmax(br)
        corners = torch.stack((x0, y0, x1, y1), dim=1) / self.img_sz
        return {"score_map_tl": tl, "score_map_br": br, "corners_xyxy_norm": corners}


def box_xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    x0, y0, x1, y1 = b.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)], dim=-1)


# ----------------------------------------------------------------------------- checkpoint forms

def _ope_prefixes(sd: dict[str, torch.Tensor]) -> list[str]:
    return [k[: -len(".theta")] for k in sd if k.endswith(".theta")
            and f"{k[: -len('.theta')]}.rbr_conv.0.weight" in sd]


def is_train_form(sd: dict[str, torch.Tensor]) -> bool:
    """True when the state dict holds training-form OPE branches (`rbr_conv.i.weight`, `theta`)."""
    return any(k.endswith(".theta") or ".rbr_conv." in k for k in sd)


def train_to_deploy(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Re-parameterise every training-form OPE into its deploy conv:
    `P.rbr_reparam.weight = sum_i (W_i - ZeroPad2d(1)(sigmoid(theta) * W_i.sum((2,3))))` with
    W_i = `P.rbr_conv.i.weight`, no bias; `P.theta` and `P.rbr_conv.*` are dropped. Other
    entries pass through unchanged; keys come out in the deploy state_dict order."""
    folded: dict[str, torch.Tensor] = {}
    for p in _ope_prefixes(sd):
        n = 0
        while f"{p}.rbr_conv.{n}.weight" in sd:
            n += 1
        folded[p] = fold_ope_weight([sd[f"{p}.rbr_conv.{i}.weight"] for i in range(n)], sd[f"{p}.theta"]).detach()
    dropped = {f"{p}.theta" for p in folded} | {k for k in sd if any(k.startswith(f"{p}.rbr_conv.") for p in folded)}
    leftover = [k for k in sd if (k.endswith(".theta") or ".rbr_conv." in k) and k not in dropped]
    if leftover:
        raise ValueError(f"incomplete training-form OPE entries in checkpoint: {leftover[:4]}; "
                         "each OPE needs `theta` and `rbr_conv.0..2.weight`")
    out: dict[str, torch.Tensor] = {}
    emitted: set[str] = set()
    for k, v in sd.items():
        if k in dropped:
            continue
        out[k] = v
        for p, w in folded.items():  # deploy order: ibe_scale, ln.weight, ln.bias, rbr_reparam.weight
            if k == f"{p}.ln.bias":
                out[f"{p}.rbr_reparam.weight"] = w
                emitted.add(p)
    for p, w in folded.items():
        if p not in emitted:
            out[f"{p}.rbr_reparam.weight"] = w
    return out


# ----------------------------------------------------------------------------- model

class AsymTrack(TrackerNet):
    family = "asymtrack"
    kind = "ann"
    timesteps = 1
    golden_gain = 1.0

    def __init__(self, cfg: AsymTrackConfig, deploy: bool = True):
        super().__init__()
        self.cfg = cfg
        self.deploy = deploy
        self.backbone = Backbone(cfg, deploy)
        self.box_head = CornerPredictor(cfg.embed_dim[3], cfg.head_channels, cfg.feat_sz, cfg.head_stride)
        self.bottleneck = nn.Linear(cfg.embed_dim[3], cfg.embed_dim[3])
        self._cache: dict[str, Any] | None = None
        self._init_weights()

    # -- weights ---------------------------------------------------------------
    def _init_weights(self) -> None:
        """Untrained initialisation in the published style (trunc-normal 0.02 linears, zero
        biases, unit LayerNorms; layer scale 1e-4, OPE scale 0)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def train_form_state_shapes(self) -> dict[str, tuple[torch.Size, torch.dtype]]:
        """{key: (shape, dtype)} of the training-form state dict of this configuration, in
        the published order, derived from the model's own structure: each deploy OPE
        `P.{ibe_scale, ln.*, rbr_reparam.weight}` becomes `P.{theta, ibe_scale,
        rbr_conv.0..2.weight, ln.*}`."""
        opes = {name for name, m in self.named_modules() if isinstance(m, OPE) and m.deploy}
        out: dict[str, tuple[torch.Size, torch.dtype]] = {}
        for k, v in self.state_dict().items():
            p, _, leaf = k.rpartition(".")
            if p in opes and leaf == "ibe_scale":
                out[f"{p}.theta"] = (torch.Size([1]), v.dtype)
                out[k] = (v.shape, v.dtype)
                w = getattr(self.get_submodule(p), "rbr_reparam").weight
                for i in range(OPE.num_branches):
                    out[f"{p}.rbr_conv.{i}.weight"] = (w.shape, w.dtype)
            elif k.endswith(".rbr_reparam.weight") and k[: -len(".rbr_reparam.weight")] in opes:
                continue
            else:
                out[k] = (v.shape, v.dtype)
        return out

    def convert_checkpoint(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Hook of load_checkpoint: training-form checkpoints are folded to deploy form."""
        if self.deploy and is_train_form(sd):
            return train_to_deploy(sd)
        return sd

    def load_golden(self) -> None:
        """The fixtures' weights: golden tensors on the TRAINING-form keys, then folded to
        deploy form (as the reference ran switch_to_deploy after loading them)."""
        from .golden import golden_tensor

        sd = {k: golden_tensor(k, shape, dtype, self.golden_gain)
              for k, (shape, dtype) in self.train_form_state_shapes().items()}
        self.load_state_dict(self.convert_checkpoint(sd) if self.deploy else sd, strict=True)

    @torch.no_grad()
    def switch_to_deploy(self) -> "AsymTrack":
        for m in self.modules():
            if isinstance(m, OPE):
                m.switch_to_deploy()
        self.deploy = True
        return self

    # -- TrackerNet interface ----------------------------------------------------
    def example_inputs(self, source: str = "random", batch: int = 1) -> dict[str, torch.Tensor | None]:
        z, x = self.cfg.template_size, self.cfg.search_size
        if source == "golden":
            from .golden import golden_image

            return {"template": golden_image(1, z, batch), "search": golden_image(7, x, batch)}
        if source != "random":
            raise ValueError(f"unknown input source '{source}'; use 'random' or 'golden'")
        g = torch.Generator().manual_seed(0)
        return {"template": torch.randn((batch, 3, z, z), generator=g),
                "search": torch.randn((batch, 3, x, x), generator=g)}

    def forward_template(self, template: torch.Tensor) -> dict[str, Any]:
        """Template branch: {'template_tokens': {block: [B, Hz*Wz, C]}, 'etm_kernels':
        {block: [B, N, C]}}, keyed by the block's state_dict path."""
        return self.backbone.forward_template(template)

    def forward_search(self, search: torch.Tensor, cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        stage2, stage3 = self.backbone.forward_search(search, cache)
        b, h, w, c = stage3.shape
        neck = self.bottleneck(stage3.view(b, h * w, c))
        # (B, HW, C) -> (B, 1, C, HW) -> (B, C, F, F), as the published forward_box_head
        feat = neck.unsqueeze(-1).permute((0, 3, 2, 1)).contiguous()
        bs, nq, ch, _ = feat.shape
        head = self.box_head(feat.view(-1, ch, self.cfg.feat_sz, self.cfg.feat_sz))
        boxes = box_xyxy_to_cxcywh(head["corners_xyxy_norm"]).view(bs, nq, 4)
        return {"pred_boxes": boxes, **head, "backbone_out": stage3,
                "backbone_out_stage2": stage2, "neck_out": neck}

    def forward(self, template: torch.Tensor | None, search: torch.Tensor) -> dict[str, torch.Tensor]:
        """Published tracking call: with a template, run template + search and keep the
        cache (call 1); with template=None, search only against the kept cache (call 2...)."""
        if template is not None:
            self._cache = self.forward_template(template)
        elif self._cache is None:
            raise RuntimeError("AsymTrack: no cached template; call forward(template, search) first")
        return self.forward_search(search, self._cache)

    def reset_cache(self) -> None:
        self._cache = None


def build_asymtrack(variant: str = "tiny", deploy: bool = True) -> AsymTrack:
    """AsymTrack-T / S / B ('tiny' | 'small' | 'base'; 't' | 's' | 'b' also accepted).
    deploy=False builds the training form (three OPE branches + theta)."""
    key = _ALIASES.get(str(variant).lower(), str(variant).lower())
    if key not in VARIANTS:
        raise ValueError(f"unknown AsymTrack variant '{variant}'; known: {', '.join(VARIANTS)}")
    return AsymTrack(VARIANTS[key], deploy=deploy)
