"""SpikeTrack (faicaiwawa/SpikeTrack): a spiking single-object tracker, checkpoint-compatible.

Structure (state_dict prefixes `encoder.` and `decoder.`, exactly the official key set):

* `SpikeTrackEncoder` - the Spike-Driven-Transformer-V3 backbone with six memory-retrieval
  modules (`mrm.0..5`). Its `forward(templates, search)` is the *training graph* (templates
  and search run through every shared stage, templates first); `forward_cached(search,
  cache)` is the search half of the split inference.
* `TemplateEncoder` - the template half of the split inference. It is built *on top of* the
  encoder's own modules (every tensor shared), is not registered as a submodule of the
  tracker, and its own `state_dict()` has the official template-encoder keys (the encoder
  keys without prefix; its MRMs keep only `head_spike`, `k_conv/k_spike`, `v_conv/v_spike`
  and `t_pos_embeds`). It caches the six memories M_t = K_t^T V_t.
* `CenterPredictor` - the spiking centre/offset/size head.

Numerics follow the published op sequence (same reshapes, same matmul order
`(q @ (k^T v)) * scale * 2`, half-to-even rounding in the neuron) so that, on the same torch
build and thread count, outputs are bit-identical to the official code (verified against the
golden fixtures s256_t1, s256_t3 and b256_t1: every output and every neuron call).

Neuron: snnsim's `NILIF` (models/neurons.py), the published `mem_update`: step t >= 1 leaks
by sigmoid(decay[t - 1]) (the T = 3 fixture needs this indexing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import TrackerNet
from .neurons import NILIF

__all__ = [
    "CONFIGS", "SpikeTrackConfig", "SpikeTrack", "SpikeTrackEncoder", "TemplateEncoder",
    "CenterPredictor", "FrozenBatchNorm", "build_spiketrack", "hann2d",
]

# Pooled token grid of the attention / memory stages per crop size.
PATCHES = {256: 16, 384: 24}
NUM_POS_EMBEDS = 4  # template position embeddings t_pos_embeds.0..3 (step t uses min(t, 3))


@dataclass(frozen=True)
class SpikeTrackConfig:
    name: str
    dims: tuple[int, int, int, int]  # C0..C3
    head_channels: int               # CenterPredictor start channels
    timesteps: int                   # number of templates T
    size: int                        # template = search crop size
    heads: int = 8
    mlp_ratio: int = 4
    stride: int = 16

    @property
    def feat_size(self) -> int:
        return self.size // self.stride

    @property
    def patches(self) -> int:
        return PATCHES[self.size]


_S = (32, 64, 128, 192)
_B = (64, 128, 256, 360)
CONFIGS: dict[str, SpikeTrackConfig] = {c.name: c for c in [
    SpikeTrackConfig("s256_t1", _S, 192, 1, 256),
    SpikeTrackConfig("s256_t3", _S, 192, 3, 256),
    SpikeTrackConfig("b256_t1", _B, 256, 1, 256),
    SpikeTrackConfig("b256_t3", _B, 256, 3, 256),
    SpikeTrackConfig("b384_t1", _B, 256, 1, 384),
    SpikeTrackConfig("b384_t3", _B, 256, 3, 384),
]}

# Backbone data flow: ('stage', attribute, index) or ('mrm', k). Shared by the training graph,
# the template encoder and the search encoder so the three cannot drift apart.
_FLOW: tuple[tuple[str, ...], ...] = (
    ("stage", "downsample1_1"), ("stage", "ConvBlock1_1", 0), ("stage", "downsample1_2"),
    ("mrm", 0), ("stage", "ConvBlock1_2", 0), ("stage", "downsample2"), ("mrm", 1),
    ("stage", "ConvBlock2_1", 0), ("stage", "ConvBlock2_2", 0), ("stage", "downsample3"),
    ("mrm", 2), ("stage", "block3", 0), ("stage", "block3", 1), ("stage", "block3", 2),
    ("mrm", 3), ("stage", "block3", 3), ("stage", "block3", 4), ("stage", "block3", 5),
    ("stage", "downsample4"), ("mrm", 4), ("stage", "block4", 0), ("stage", "block4", 1),
    ("mrm", 5),
)
_MRM_DIM_INDEX = (0, 1, 2, 2, 3, 3)  # which of C0..C3 each MRM works on


class FrozenBatchNorm(nn.Module):
    """BatchNorm with fixed statistics and affine parameters, all four as buffers (no
    num_batches_tracked), eps 1e-5: y = x * (w / sqrt(rv + eps)) + (b - rm * scale).
    Works on [N, C, ...] of any rank (the official FrozenBatchNorm1d / 2d)."""

    no_synaptic_ops = True   # the profiler runs it outside its counting modes (a per-channel affine map)

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        w = self.weight.reshape(shape)
        b = self.bias.reshape(shape)
        rv = self.running_var.reshape(shape)
        rm = self.running_mean.reshape(shape)
        scale = w * (rv + self.eps).rsqrt()
        return x * scale + (b - rm * scale)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _conv_norm(c_in: int, c_out: int, norm: type[nn.Module], kernel_size: int = 1, padding: int = 0,
               groups: int = 1, bias: bool = False) -> nn.Sequential:
    """Conv2d followed by a norm: keys `.0.weight` (`.0.bias`), `.1.*`."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size, 1, padding=padding, groups=groups, bias=bias),
        norm(c_out),
    )


def _per_step(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a [B, C, H, W] function to every step of [T, B, C, H, W]."""
    return torch.stack([fn(x[t]) for t in range(x.shape[0])], 0)


def _pool_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average pooling of [T, B, C, H, W] to size x size (no-op at that size)."""
    if x.shape[-2] == size:
        return x
    return _per_step(lambda xt: F.adaptive_avg_pool2d(xt, (size, size)), x)


def _upsample_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return _per_step(lambda xt: F.interpolate(xt, size=(h, w), mode="bilinear", align_corners=False), x)


def _add_position(x: torch.Tensor, branch: str, s_pos: torch.Tensor, t_pos: nn.ParameterList) -> torch.Tensor:
    """Search: + s_pos_embed. Template step t: + t_pos_embeds[min(t, 3)]. x: [T, B, C, H, W]."""
    T, B, C, H, W = x.shape
    x = x.reshape(T, B, C, H * W)
    if branch == "search":
        x = x + s_pos
    elif branch == "template":
        last = len(t_pos) - 1
        x = torch.stack([x[t] + t_pos[min(t, last)] for t in range(T)], 0)
    else:
        raise ValueError(f"unknown branch '{branch}' (expected 'search' or 'template')")
    return x.reshape(T, B, C, H, W)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[T, B, C, N] -> [T, B, heads, N, C / heads] (contiguous)."""
    T, B, C, N = x.shape
    return x.transpose(-1, -2).reshape(T, B, N, heads, C // heads).permute(0, 1, 3, 2, 4).contiguous()


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[T, B, heads, N, c] -> [T, B, heads * c, N] (contiguous)."""
    T, B, h, N, c = x.shape
    return x.permute(0, 1, 3, 2, 4).reshape(T, B, N, h * c).permute(0, 1, 3, 2).contiguous()


def _memory(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-head memory K^T V: [T, B, h, N, c] x [T, B, h, N, cv] -> [T, B, h, c, cv]."""
    return k.transpose(-2, -1) @ v


def _read_memory(q: torch.Tensor, kv: torch.Tensor, scale: float) -> torch.Tensor:
    """Linear attention Q (K^T V) * scale * 2 (op order as published)."""
    return (q @ kv) * scale * 2


class SepConv(nn.Module):
    """spike -> 1x1 C->2C + BN -> spike -> depthwise kxk + BN -> spike -> 1x1 2C->C + BN."""

    def __init__(self, dim: int, kernel_size: int = 7, expansion: int = 2):
        super().__init__()
        med = dim * expansion
        self.spike1 = NILIF()
        self.pwconv1 = _conv_norm(dim, med, FrozenBatchNorm)
        self.spike2 = NILIF()
        self.dwconv = _conv_norm(med, med, FrozenBatchNorm, kernel_size, kernel_size // 2, groups=med)
        self.spike3 = NILIF()
        self.pwconv2 = _conv_norm(med, dim, FrozenBatchNorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, _, H, W = x.shape
        x = self.pwconv1(self.spike1(x).flatten(0, 1)).reshape(T, B, -1, H, W)
        x = self.dwconv(self.spike2(x).flatten(0, 1)).reshape(T, B, -1, H, W)
        return self.pwconv2(self.spike3(x).flatten(0, 1)).reshape(T, B, -1, H, W)


class ConvBlock(nn.Module):
    """x += SepConv(x); x += BN(conv3x3(spike(BN(conv3x3(spike x)))))  (C -> rC -> C)."""

    def __init__(self, dim: int, mlp_ratio: int = 4):
        super().__init__()
        self.Conv = SepConv(dim, kernel_size=7)
        self.spike1 = NILIF()
        self.conv1 = nn.Conv2d(dim, dim * mlp_ratio, 3, padding=1, bias=False)
        self.bn1 = FrozenBatchNorm(dim * mlp_ratio)
        self.spike2 = NILIF()
        self.conv2 = nn.Conv2d(dim * mlp_ratio, dim, 3, padding=1, bias=False)
        self.bn2 = FrozenBatchNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.Conv(x) + x
        y = self.bn1(self.conv1(self.spike1(x).flatten(0, 1))).reshape(T, B, -1, H, W)
        y = self.bn2(self.conv2(self.spike2(y).flatten(0, 1))).reshape(T, B, C, H, W)
        return x + y


class SpikeMLP(nn.Module):
    """Token MLP: spike -> Conv1d C->hidden + BN1d -> spike -> Conv1d hidden->C + BN1d.
    Frozen BN in the backbone blocks, ordinary nn.BatchNorm1d in the MRMs."""

    def __init__(self, dim: int, hidden: int, frozen: bool = True):
        super().__init__()
        self.fc1_conv = nn.Conv1d(dim, hidden, 1)
        self.fc1_spike = NILIF()
        self.fc2_conv = nn.Conv1d(hidden, dim, 1)
        self.fc2_spike = NILIF()
        norm = FrozenBatchNorm if frozen else nn.BatchNorm1d
        self.fc1_bn = norm(hidden)
        self.fc2_bn = norm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.fc1_spike(x.flatten(3))
        x = self.fc1_bn(self.fc1_conv(x.flatten(0, 1))).reshape(T, B, -1, H * W).contiguous()
        x = self.fc2_spike(x)
        return self.fc2_bn(self.fc2_conv(x.flatten(0, 1))).reshape(T, B, C, H, W).contiguous()


class SpikeAttention(nn.Module):
    """Spiking linear attention with 8 heads, V expanded 4x:
    pos-embed -> head_spike -> q/k (C->C), v (C->4C) conv+BN -> spikes ->
    Q (K^T V) * (C/8)^-1/2 * 2 -> attn_spike -> proj 4C->C."""

    def __init__(self, dim: int, heads: int, patches: int, ratio: int = 4):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.s_pos_embed = nn.Parameter(torch.zeros(1, dim, patches * patches))
        self.head_spike = NILIF()
        self.q_spike = NILIF()
        self.k_spike = NILIF()
        self.v_spike = NILIF()
        self.attn_spike = NILIF()
        self.q_conv = _conv_norm(dim, dim, FrozenBatchNorm)
        self.k_conv = _conv_norm(dim, dim, FrozenBatchNorm)
        self.v_conv = _conv_norm(dim, dim * ratio, FrozenBatchNorm)
        self.proj_conv = _conv_norm(dim * ratio, dim, FrozenBatchNorm)
        self.t_pos_embeds = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, dim, patches * patches)) for _ in range(NUM_POS_EMBEDS)])

    def forward(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        T, B, C, H, W = x.shape
        N = H * W
        x = self.head_spike(_add_position(x, branch, self.s_pos_embed, self.t_pos_embeds))
        x = x.reshape(T * B, C, H, W)
        q = self.q_conv(x).reshape(T, B, C, N)
        k = self.k_conv(x).reshape(T, B, C, N)
        v = self.v_conv(x).reshape(T, B, -1, N)
        q = _split_heads(self.q_spike(q), self.heads)
        k = _split_heads(self.k_spike(k), self.heads)
        v = _split_heads(self.v_spike(v), self.heads)
        x = _merge_heads(_read_memory(q, _memory(k, v), self.scale)).reshape(T, B, -1, H, W)
        x = self.attn_spike(x)
        return self.proj_conv(x.flatten(0, 1)).reshape(T, B, C, H, W)


class SpikeBlock(nn.Module):
    """Transformer block of stages 3/4: x += SepConv3x3(x); x += Attn(x); x += MLP(x)."""

    def __init__(self, dim: int, heads: int, patches: int, mlp_ratio: int = 4):
        super().__init__()
        self.conv = SepConv(dim, kernel_size=3)
        self.attn = SpikeAttention(dim, heads, patches)
        self.mlp = SpikeMLP(dim, dim * mlp_ratio, frozen=True)

    def forward(self, x: torch.Tensor, branch: str = "search") -> torch.Tensor:
        x = x + self.conv(x)
        x = x + self.attn(x, branch)
        return x + self.mlp(x)


class Downsample(nn.Module):
    """[spike] -> conv (with bias) -> frozen BN. The first one sees the real-valued image."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, first: bool = False):
        super().__init__()
        self.encode_conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding)
        self.encode_bn = FrozenBatchNorm(c_out)
        self.encode_spike = None if first else NILIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        if self.encode_spike is not None:
            x = self.encode_spike(x)
        x = self.encode_conv(x.flatten(0, 1))
        _, _, H, W = x.shape
        return self.encode_bn(x).reshape(T, B, -1, H, W).contiguous()


class ChannelGate(nn.Module):
    """Fuses the T retrieved maps per channel: the P^2-vector of each (channel, t) goes through
    Conv1d P^2 -> P^2/2 -> NI-LIF (time last) -> Conv1d -> 1; softmax over T; weighted sum."""

    def __init__(self, patches: int):
        super().__init__()
        L = patches * patches
        self.mlp = nn.Sequential(nn.Conv1d(L, L // 2, 1), NILIF(time_dim=-1), nn.Conv1d(L // 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [B, C, H, W]
        T, B, C, H, W = x.shape
        flat = x.reshape(T, B, C, H * W).permute(1, 2, 3, 0).reshape(B * C, H * W, T)
        logits = self.mlp(flat).squeeze(1).reshape(B, C, T)
        weights = F.softmax(logits, dim=-1)
        return (x.permute(1, 2, 0, 3, 4) * weights.unsqueeze(-1).unsqueeze(-1)).sum(dim=2)


class Retriever(nn.Module):
    """Memory retrieval: search queries read the template memories M_t = K_t^T V_t, one
    refinement pass, channel gate over T (T > 1), projection 4C -> C. Works at P x P tokens
    (larger maps are average-pooled there and the result bilinearly upsampled back)."""

    def __init__(self, dim: int, heads: int, patches: int, temp_num: int, ratio: int = 4):
        super().__init__()
        exp = dim * ratio
        self.heads = heads
        self.patches = patches
        self.scale = (dim // heads) ** -0.5
        self.s_pos_embed = nn.Parameter(torch.zeros(1, dim, patches * patches))
        self.head_spike = NILIF()
        self.q_conv = _conv_norm(dim, dim, nn.BatchNorm2d)
        self.k_conv = _conv_norm(dim, dim, nn.BatchNorm2d)
        self.v_conv = _conv_norm(dim, exp, nn.BatchNorm2d)
        self.q_spike = NILIF()
        self.k_spike = NILIF()
        self.v_spike = NILIF()
        self.attn_spike = NILIF()
        self.proj_conv = _conv_norm(exp, dim, nn.BatchNorm2d)
        self.gate = ChannelGate(patches)
        self.gate_spike = NILIF()
        self.seg_responder_dw = nn.ModuleList(
            [_conv_norm(exp, exp, nn.BatchNorm2d, 3, 1, groups=exp) for _ in range(temp_num)])
        self.seg_responder_pw = nn.ModuleList([_conv_norm(exp, dim, nn.BatchNorm2d) for _ in range(temp_num)])
        self.fuser = _conv_norm(dim, dim, nn.BatchNorm2d)
        self.seg_pw_spike = NILIF()
        self.seg_dw_spike = NILIF()
        self.fuser_spike = NILIF()
        self.t_pos_embeds = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, dim, patches * patches)) for _ in range(NUM_POS_EMBEDS)])

    # training graph: templates and search together
    def forward(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        H, W = search.shape[-2:]
        search = _pool_to(search, self.patches)
        template = _pool_to(template, self.patches)
        T = template.shape[0]
        Ts, B, C, h, w = search.shape
        search = _add_position(search, "search", self.s_pos_embed, self.t_pos_embeds)
        template = _add_position(template, "template", self.s_pos_embed, self.t_pos_embeds)
        template = self.head_spike(template)
        search = self.head_spike(search)
        k = self.k_conv(template.flatten(0, 1)).reshape(T, B, C, h, w)
        v = self.v_conv(template.flatten(0, 1)).reshape(T, B, -1, h, w)
        q = self.q_conv(search.flatten(0, 1)).reshape(Ts, B, C, h, w)
        shortcut = q
        q = self.q_spike(q.flatten(3).squeeze(0).repeat(T, 1, 1, 1))
        v = self.v_spike(v).flatten(3)
        k = self.k_spike(k).flatten(3)
        q, k, v = (_split_heads(t, self.heads) for t in (q, k, v))
        return self._retrieve(q, _memory(k, v), shortcut, H, W)

    # split inference: search with the cached memories
    def forward_cached(self, search: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        H, W = search.shape[-2:]
        search = _pool_to(search, self.patches)
        Ts, B, C, h, w = search.shape
        search = self.head_spike(_add_position(search, "search", self.s_pos_embed, self.t_pos_embeds))
        q = self.q_conv(search.flatten(0, 1)).reshape(Ts, B, C, h, w)
        shortcut = q
        q = self.q_spike(q.flatten(3).squeeze(0).repeat(memory.shape[0], 1, 1, 1))
        return self._retrieve(_split_heads(q, self.heads), memory, shortcut, H, W)

    def _retrieve(self, q: torch.Tensor, kv: torch.Tensor, shortcut: torch.Tensor, H: int, W: int) -> torch.Tensor:
        T, B = q.shape[:2]
        C, h, w = shortcut.shape[2:]
        x = _merge_heads(_read_memory(q, kv, self.scale))          # [T, B, Cv, N]
        # one refinement pass
        q = self.q_spike(x.reshape(T, B, -1, h, w))
        q = torch.stack([self.seg_responder_dw[t](q[t]) for t in range(T) if t < len(self.seg_responder_dw)], 0)
        q = self.seg_dw_spike(q)
        q = torch.stack([self.seg_responder_pw[t](q[t]) for t in range(T) if t < len(self.seg_responder_pw)], 0)
        q = self.seg_pw_spike(shortcut + q)
        q = self.fuser(q.flatten(0, 1)).reshape(T, B, -1, h, w).flatten(3)
        q = self.fuser_spike(q)
        x = _merge_heads(_read_memory(_split_heads(q, self.heads), kv, self.scale))
        # output
        x = self.attn_spike(x.reshape(T, B, -1, h, w))
        if T > 1:
            x = self.gate_spike(self.gate(x).unsqueeze(0))
        x = self.proj_conv(x.flatten(0, 1)).reshape(shortcut.shape[0], B, C, h, w)
        if H != h:
            x = _upsample_to(x, H, W)
        return x


class MemoryRetrieval(nn.Module):
    """MRM: search += Retriever(templates, search); search += MLP(search) (nn.BatchNorm1d)."""

    def __init__(self, dim: int, heads: int, patches: int, temp_num: int, mlp_ratio: int = 4):
        super().__init__()
        self.retriever = Retriever(dim, heads, patches, temp_num)
        self.mlp = SpikeMLP(dim, dim * mlp_ratio, frozen=False)

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        search = search + self.retriever(template, search)
        return search + self.mlp(search)

    def forward_cached(self, search: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        search = search + self.retriever.forward_cached(search, memory)
        return search + self.mlp(search)


def _run_stage(stage: nn.Module, x: torch.Tensor, branch: str) -> torch.Tensor:
    return stage(x, branch) if isinstance(stage, SpikeBlock) else stage(x)


class SpikeTrackEncoder(nn.Module):
    """The backbone with its six MRMs. `forward(templates, search)` is the training graph."""

    def __init__(self, cfg: SpikeTrackConfig):
        super().__init__()
        d, P, h, r = cfg.dims, cfg.patches, cfg.heads, cfg.mlp_ratio
        self.timesteps = cfg.timesteps
        self.downsample1_1 = Downsample(3, d[0] // 2, 7, 2, 3, first=True)
        self.ConvBlock1_1 = nn.ModuleList([ConvBlock(d[0] // 2, r)])
        self.downsample1_2 = Downsample(d[0] // 2, d[0], 3, 2, 1)
        self.ConvBlock1_2 = nn.ModuleList([ConvBlock(d[0], r)])
        self.downsample2 = Downsample(d[0], d[1], 3, 2, 1)
        self.ConvBlock2_1 = nn.ModuleList([ConvBlock(d[1], r)])
        self.ConvBlock2_2 = nn.ModuleList([ConvBlock(d[1], r)])
        self.downsample3 = Downsample(d[1], d[2], 3, 2, 1)
        self.block3 = nn.ModuleList([SpikeBlock(d[2], h, P, r) for _ in range(6)])
        self.downsample4 = Downsample(d[2], d[3], 3, 1, 1)
        self.block4 = nn.ModuleList([SpikeBlock(d[3], h, P, r) for _ in range(2)])
        self.mrm = nn.ModuleList([MemoryRetrieval(d[i], h, P, cfg.timesteps, r) for i in _MRM_DIM_INDEX])

    def stage(self, step: tuple[str, ...]) -> nn.Module:
        mod = getattr(self, step[1])
        return mod[step[2]] if len(step) > 2 else mod

    def forward(self, templates: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """Training graph. templates [T, B, 3, Z, Z], search [1, B, 3, X, X] -> [1, B, C3, F, F]."""
        for step in _FLOW:
            if step[0] == "mrm":
                search = self.mrm[step[1]](templates, search)
            else:
                stage = self.stage(step)
                templates = _run_stage(stage, templates, "template")
                search = _run_stage(stage, search, "search")
        return search

    def forward_cached(self, search: torch.Tensor, cache: dict[str, torch.Tensor]) -> torch.Tensor:
        """Search half of the split inference. search [1, B, 3, X, X] -> [1, B, C3, F, F]."""
        for step in _FLOW:
            if step[0] == "mrm":
                search = self.mrm[step[1]].forward_cached(search, cache[f"cross_block_{step[1]}"])
            else:
                search = _run_stage(self.stage(step), search, "search")
        return search


# ----------------------------------------------------------------------------- template encoder
class TemplateRetriever(nn.Module):
    """The template side of a Retriever, sharing its modules: K_t, V_t -> M_t = K_t^T V_t."""

    def __init__(self, retriever: Retriever):
        super().__init__()
        self.heads = retriever.heads
        self.patches = retriever.patches
        self.head_spike = retriever.head_spike
        self.k_conv = retriever.k_conv
        self.k_spike = retriever.k_spike
        self.v_conv = retriever.v_conv
        self.v_spike = retriever.v_spike
        self.t_pos_embeds = retriever.t_pos_embeds

    def forward(self, template: torch.Tensor) -> torch.Tensor:
        template = _pool_to(template, self.patches)
        T, B, C, h, w = template.shape
        template = self.head_spike(_add_position(template, "template", None, self.t_pos_embeds))
        k = self.k_conv(template.flatten(0, 1)).reshape(T, B, C, h, w)
        v = self.v_conv(template.flatten(0, 1)).reshape(T, B, -1, h, w)
        v = self.v_spike(v).flatten(3)
        k = self.k_spike(k).flatten(3)
        return _memory(_split_heads(k, self.heads), _split_heads(v, self.heads))


class TemplateMRM(nn.Module):
    def __init__(self, mrm: MemoryRetrieval):
        super().__init__()
        self.retriever = TemplateRetriever(mrm.retriever)

    def forward(self, template: torch.Tensor) -> torch.Tensor:
        return self.retriever(template)


class TemplateEncoder(nn.Module):
    """Template branch of the split inference, built on (and sharing every tensor of) a
    SpikeTrackEncoder. state_dict keys = the official template-encoder keys."""

    def __init__(self, encoder: SpikeTrackEncoder):
        super().__init__()
        for name in ("downsample1_1", "ConvBlock1_1", "downsample1_2", "ConvBlock1_2", "downsample2",
                     "ConvBlock2_1", "ConvBlock2_2", "downsample3", "block3", "downsample4", "block4"):
            setattr(self, name, getattr(encoder, name))
        self.mrm = nn.ModuleList([TemplateMRM(m) for m in encoder.mrm])

    def stage(self, step: tuple[str, ...]) -> nn.Module:
        mod = getattr(self, step[1])
        return mod[step[2]] if len(step) > 2 else mod

    def forward(self, templates: torch.Tensor) -> dict[str, torch.Tensor]:
        """templates [T, B, 3, Z, Z] -> {'cross_block_k': M_t [T, B, 8, C/8, 4C/8]}."""
        cache: dict[str, torch.Tensor] = {}
        for step in _FLOW:
            if step[0] == "mrm":
                cache[f"cross_block_{step[1]}"] = self.mrm[step[1]](templates)
            else:
                templates = _run_stage(self.stage(step), templates, "template")
        return cache


# ----------------------------------------------------------------------------- head
class CenterPredictor(nn.Module):
    """Spiking centre head: input spike; centre / offset / size branches of four
    [3x3 conv (bias) + BN -> spike] (c -> c/2 -> c/4 -> c/8) and a 1x1 conv to 1 / 2 / 2."""

    BRANCHES = (("ctr", 1), ("offset", 2), ("size", 2))

    def __init__(self, inplanes: int, channel: int, feat_size: int):
        super().__init__()
        self.feat_sz = feat_size
        widths = [inplanes, channel, channel // 2, channel // 4, channel // 8]
        for branch, out in self.BRANCHES:
            for i in range(4):
                setattr(self, f"conv{i + 1}_{branch}", nn.Sequential(
                    nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=True), nn.BatchNorm2d(widths[i + 1])))
            setattr(self, f"conv5_{branch}", nn.Conv2d(widths[4], out, 1))
        for branch in ("ctr", "size", "offset"):
            for i in range(4):
                setattr(self, f"{branch}{i + 1}_spike", NILIF())
        self.spike = NILIF()

    def _branch(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        T, B, _, H, W = x.shape
        for i in range(1, 5):
            x = getattr(self, f"conv{i}_{branch}")(x.flatten(0, 1)).reshape(T, B, -1, H, W)
            x = getattr(self, f"{branch}{i}_spike")(x)
        return getattr(self, f"conv5_{branch}")(x.flatten(0, 1)).reshape(T, B, -1, H, W)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [T, B, C, F, F] -> score / size maps (clamped sigmoid), raw offset map (means
        over T), the box at the argmax (cx, cy, w, h normalised) and the score there."""
        B = x.shape[1]
        x = self.spike(x)
        score = self._branch(x, "ctr")
        offset = self._branch(x, "offset")
        size = self._branch(x, "size")
        score = torch.clamp(score.sigmoid(), min=1e-4, max=1 - 1e-4).mean(0)
        size = torch.clamp(size.sigmoid(), min=1e-4, max=1 - 1e-4).mean(0)
        offset = offset.mean(0)
        box, max_score = self.cal_bbox(score, size, offset)
        return {"pred_boxes": box.view(B, 1, 4), "score_map": score, "size_map": size,
                "offset_map": offset, "max_score": max_score}

    def cal_bbox(self, score_map: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor):
        """Box (cx, cy, w, h), normalised to the crop, at the argmax of `score_map`; and that score."""
        max_score, idx = torch.max(score_map.flatten(1), dim=1, keepdim=True)
        idx_y = torch.div(idx, self.feat_sz, rounding_mode="floor")
        idx_x = idx % self.feat_sz
        gather_idx = idx.unsqueeze(1).expand(idx.shape[0], 2, 1)
        size = size_map.flatten(2).gather(dim=2, index=gather_idx)
        offset = offset_map.flatten(2).gather(dim=2, index=gather_idx).squeeze(-1)
        box = torch.cat([(idx_x.to(torch.float) + offset[:, :1]) / self.feat_sz,
                         (idx_y.to(torch.float) + offset[:, 1:]) / self.feat_sz,
                         size.squeeze(-1)], dim=1)
        return box, max_score


def hann2d(size: int) -> torch.Tensor:
    """The tracker's centred 2-D cosine window [1, 1, size, size]."""
    n = torch.arange(1, size + 1).float()
    w = 0.5 * (1 - torch.cos((2 * math.pi / (size + 1)) * n))
    return w.reshape(1, 1, -1, 1) * w.reshape(1, 1, 1, -1)


# ----------------------------------------------------------------------------- tracker network
class SpikeTrack(TrackerNet):
    """SpikeTrack network: `encoder.*` + `decoder.*` (the official checkpoint keys).

    Tracking: `cache = forward_template(templates)` (template encoder, shares the encoder's
    tensors), then `forward_search(search, cache)` every frame. Training graph:
    `forward(templates, search)` (or `forward(images_list)` with the search last)."""

    family = "spiketrack"
    kind = "spiking"
    golden_gain = 3.0

    def __init__(self, config: str | SpikeTrackConfig = "s256_t1"):
        super().__init__()
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ValueError(f"unknown SpikeTrack config '{config}'; known: {', '.join(CONFIGS)}")
            config = CONFIGS[config]
        self.cfg = config
        self.config_name = config.name
        self.timesteps = config.timesteps
        self.template_size = self.search_size = config.size
        self.encoder = SpikeTrackEncoder(config)
        self.decoder = CenterPredictor(config.dims[3], config.head_channels, config.feat_size)
        # Not a registered submodule: its tensors are the encoder's, so state_dict() keeps
        # only encoder.* / decoder.* keys.
        self.__dict__["_template_encoder"] = TemplateEncoder(self.encoder)

    @property
    def template_encoder(self) -> TemplateEncoder:
        """The template encoder (shares every tensor with `encoder`); its state_dict has the
        official template-encoder keys."""
        return self.__dict__["_template_encoder"]

    # -- inputs
    def example_inputs(self, source: str = "random", batch: int = 1) -> dict[str, torch.Tensor]:
        T, Z, X = self.timesteps, self.template_size, self.search_size
        if source == "golden":
            from .golden import golden_image

            template = torch.stack([golden_image(s, Z, batch) for s in range(1, T + 1)], 0)
            search = golden_image(7, X, batch)
        elif source == "random":
            template = torch.randn(T, batch, 3, Z, Z)
            search = torch.randn(batch, 3, X, X)
        else:
            raise ValueError(f"unknown input source '{source}' (expected 'golden' or 'random')")
        return {"template": template, "search": search}

    def _template_stack(self, template: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(template, (list, tuple)):
            template = torch.stack(list(template), 0)
        if template.dim() == 4:  # one crop: the tracker's initialisation repeats it T times
            template = template.unsqueeze(0).expand(self.timesteps, *template.shape)
        if template.dim() != 5 or template.shape[0] != self.timesteps:
            raise ValueError(f"SpikeTrack {self.config_name} expects {self.timesteps} template(s) as "
                             f"[T, B, 3, Z, Z] with T={self.timesteps}; got {tuple(template.shape)}")
        return template

    # -- tracking path
    def forward_template(self, template: torch.Tensor | Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """template [T, B, 3, Z, Z] (or a list of T [B, 3, Z, Z], or one [B, 3, Z, Z] crop,
        repeated T times) -> cache {'cross_block_0..5': M_t [T, B, 8, C/8, 4C/8]}."""
        enc = self.template_encoder
        enc.training = self.training
        return enc(self._template_stack(template))

    def forward_search(self, search: torch.Tensor, cache: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """search [B, 3, X, X] + cache -> head outputs and `encoder_out_xz` [1, B, C3, F, F]."""
        for k, m in cache.items():
            if m.shape[0] != self.timesteps:
                raise ValueError(f"cache '{k}' holds {m.shape[0]} template memories; "
                                 f"SpikeTrack {self.config_name} needs {self.timesteps}")
        xz = self.encoder.forward_cached(search.unsqueeze(0), cache)
        out = self.decoder(xz)
        out["encoder_out_xz"] = xz
        return out

    # -- training graph
    def forward(self, templates: torch.Tensor | Sequence[torch.Tensor], search: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """Training graph: `forward(templates, search)` or `forward(images_list)` with the
        templates first and the search last (like `net(images_list=...)` + decoder)."""
        if search is None:
            if not isinstance(templates, (list, tuple)) or len(templates) < 2:
                raise ValueError("forward(images_list) needs a list of template crops followed by the search crop")
            templates, search = list(templates[:-1]), templates[-1]
        xz = self.encoder(self._template_stack(templates), search.unsqueeze(0))
        out = self.decoder(xz)
        out["encoder_out_xz"] = xz
        return out

    # -- tracker post-processing
    def hann_window(self) -> torch.Tensor:
        return hann2d(self.cfg.feat_size)

    def windowed_box(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tracker's box: Hann window x score map, then the box at its argmax."""
        window = self.hann_window().to(out["score_map"].device)
        box, conf = self.decoder.cal_bbox(window * out["score_map"], out["size_map"], out["offset_map"])
        return {"tracker_pred_box_windowed": box, "tracker_conf_windowed": conf}

    def input_description(self) -> dict[str, Any]:
        T, Z, X = self.timesteps, self.template_size, self.search_size
        return {"template": [T, 1, 3, Z, Z], "search": [1, 3, X, X]}


def build_spiketrack(config: str = "s256_t1") -> SpikeTrack:
    """Build one of the six published configs: s256_t1, s256_t3, b256_t1, b256_t3, b384_t1, b384_t3."""
    return SpikeTrack(config)
