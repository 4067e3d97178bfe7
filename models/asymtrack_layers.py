"""Building blocks of AsymTrack's backbone (EfficientMod-xxs with ETM / OPE), channels-last.

Every block reads and writes [B, H, W, C] tensors. Module and parameter names follow the
published checkpoints (specs/checkpoints/asymtrack_*_keys.txt); the arithmetic follows the
published code operation by operation (same op sequence, same shapes), so the golden fixtures
are reproduced bit for bit on the same CPU / torch build.

Blocks of a stage and what they do with the template:
- `BasicBlock`, `OPE`: the same function applied to search and template.
- `ETM`: the template only provides the prototype kernels P = einsum(Lin(z), z) (cached).
- `AttentionBlock`: the search tokens attend over [search; template] (template tokens
  cached); the template itself runs a plain self-attention pass.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Conv (k, stride, pad) + LayerNorm; [B,H,W,Cin] -> [B,H',W',Cout]."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, stride: int, pad: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride, padding=pad)
        self.norm = nn.LayerNorm(embed_dim)

    def forward_nchw(self, x: torch.Tensor) -> torch.Tensor:
        """Same as forward, for a channels-first input (the stem's image)."""
        x = self.proj(x).permute(0, 2, 3, 1).contiguous()
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_nchw(x.permute(0, 3, 1, 2).contiguous())


class ContextLayer(nn.Module):
    """ctx = g(GELU(DWConv_k(f(x)))) (EfficientMod's context modelling)."""

    def __init__(self, dim: int, conv_dim: int, context_size: int = 7):
        super().__init__()
        self.f = nn.Linear(dim, conv_dim)
        self.g = nn.Linear(conv_dim, dim)
        self.act = nn.GELU()
        self.context_list = nn.ModuleList([
            nn.Conv2d(conv_dim, conv_dim, context_size, stride=1, padding=context_size // 2, groups=conv_dim)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.f(x).permute(0, 3, 1, 2).contiguous()
        out = None
        for conv in self.context_list:
            ctx = self.act(conv(y))
            out = ctx if out is None else out + ctx
        return self.g(out.permute(0, 2, 3, 1).contiguous())


class ModulationMlp(nn.Module):
    """out = fc2(act(fc1 x) * ctx tiled r times); GELU only when the block expands (r > 1)."""

    def __init__(self, dim: int, ratio: int, context_size: int = 7):
        super().__init__()
        hidden = int(dim * ratio)
        self.ratio = int(ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.context_layer = ContextLayer(dim, hidden // self.ratio, context_size)
        self.fc2 = nn.Linear(hidden, dim)
        self.expand = not (hidden == dim and self.ratio == 1)
        self.act = nn.GELU() if self.expand else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = self.context_layer(x)
        y = self.fc1(x)
        if self.expand:
            y = self.act(y)
            y = y * ctx.repeat(1, 1, 1, self.ratio)
        else:
            y = y * ctx
        return self.fc2(y)


class BasicBlock(nn.Module):
    """x + gamma_1 * Mlp(LN x) (EfficientMod block with layer scale)."""

    def __init__(self, dim: int, ratio: int, context_size: int = 7, layerscale: float = 1e-4):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = ModulationMlp(dim, ratio, context_size)
        self.gamma_1 = nn.Parameter(layerscale * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma_1 * self.mlp(self.norm(x))


def fold_ope_weight(weights, theta: torch.Tensor) -> torch.Tensor:
    """Re-parameterise OPE's training branches into one 3x3 kernel (no bias):
    W = sum_i (W_i - ZeroPad2d(1)(sigmoid(theta) * W_i.sum over the kernel window)).
    The sums run in the published order (window sum as two single-axis sums, branches
    accumulated left to right) so the folded kernel is bitwise that of switch_to_deploy."""
    s = torch.sigmoid(theta)
    out = None
    for w in weights:
        diff = F.pad(s * w.sum(2).sum(2)[:, :, None, None], (1, 1, 1, 1))
        term = w - diff
        out = term if out is None else out + term
    return out


class OPE(nn.Module):
    """x + ibe_scale * ReLU(LN(conv3x3 x)).

    Deploy form: one 3x3 conv without bias (`rbr_reparam`). Training form: three 3x3
    branches `rbr_conv.{0,1,2}` minus sigmoid(theta) times their 1x1 window-sum kernels,
    which `switch_to_deploy` folds into `rbr_reparam`."""

    num_branches = 3

    def __init__(self, dim: int, deploy: bool = True):
        super().__init__()
        self.deploy = deploy
        if not deploy:
            self.theta = nn.Parameter(torch.zeros(1))
        self.ibe_scale = nn.Parameter(torch.zeros(dim))
        if not deploy:
            self.rbr_conv = nn.ModuleList([
                nn.Conv2d(dim, dim, 3, stride=1, padding=1, bias=False) for _ in range(self.num_branches)
            ])
        self.ln = nn.LayerNorm(dim)
        self.act = nn.ReLU()
        if deploy:
            self.rbr_reparam = nn.Conv2d(dim, dim, 3, stride=1, padding=1, bias=False)

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        x = x_in.permute(0, 3, 1, 2).contiguous()
        if self.deploy:
            y = self.rbr_reparam(x)
        else:
            normal, diff = None, None
            for conv in self.rbr_conv:
                a = conv(x)
                b = F.conv2d(x, conv.weight.sum(2).sum(2)[:, :, None, None], stride=1, padding=0)
                normal = a if normal is None else normal + a
                diff = b if diff is None else diff + b
            y = normal - torch.sigmoid(self.theta) * diff
        y = self.act(self.ln(y.permute(0, 2, 3, 1).contiguous()))
        return self.ibe_scale[None, None, None] * y + x_in

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        w = fold_ope_weight([c.weight for c in self.rbr_conv], self.theta)
        dim = w.shape[0]
        del self.rbr_conv
        del self.theta
        self.rbr_reparam = nn.Conv2d(dim, dim, 3, stride=1, padding=1, bias=False).to(w.device, w.dtype)
        self.rbr_reparam.weight.copy_(w)
        self.deploy = True


class DySepConvAtten(nn.Module):
    """Dynamic separable 1-D conv over the N prototypes (length C): depthwise (N,1,3) and
    pointwise (N,N,1) kernels predicted by a Linear C -> N+3 from the template prototypes."""

    kernel_size = 3

    def __init__(self, dim: int, num_proposals: int):
        super().__init__()
        self.num_proposals = num_proposals
        self.weight_linear = nn.Linear(dim, num_proposals + self.kernel_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        b, n, _ = query.shape
        w = self.weight_linear(query)
        w_dw = w[:, :, :self.kernel_size].view(b, self.num_proposals, 1, self.kernel_size)
        w_pw = w[:, :, self.kernel_size:].view(b, self.num_proposals, self.num_proposals, 1)
        value = value.unsqueeze(1)
        outs = []
        for i in range(b):  # kernels differ per sample
            o = F.relu(F.conv1d(value[i], w_dw[i], groups=n, padding="same"))
            outs.append(F.conv1d(o, w_pw[i], padding="same"))
        return self.norm(torch.cat(outs, dim=0))


class ETM(nn.Module):
    """Efficient template modulation with N = C/32 prototypes.

    Template: P_z = einsum(Lin_{C->N}(z), z) [B,N,C] (cached). Search: P_x likewise with
    `pre_kernels_x`; P_x' = LN(DySepConv(P_z -> kernels, P_x)); modulation
    einsum(P_x', Lin_{C->N}(x)) gated by sigmoid(sum_n Lin_{C->1}(P_x') P_x');
    x += ReLU(LN(.)). `post_kernels` and `downsample` exist in the checkpoints but are not
    used by the published forward."""

    def __init__(self, dim: int, num_proto: int):
        super().__init__()
        self.pre_kernels = nn.Linear(dim, num_proto)
        self.pre_kernels_x = nn.Linear(dim, num_proto)
        self.post_kernels = nn.Linear(num_proto, dim)          # unused (checkpoint key)
        self.downsample = PatchEmbed(dim, dim, 3, 2, 1)        # unused (checkpoint key)
        self.proj_Cto1 = nn.Linear(dim, 1)
        self.ln = nn.LayerNorm(dim)
        self.act = nn.ReLU()
        self.conv_att = DySepConvAtten(dim, num_proto)

    def template_kernels(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bhwn,bhwc->bnc", self.pre_kernels(z), z)

    def forward(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        xn = self.pre_kernels_x(x)
        kx = torch.einsum("bhwn,bhwc->bnc", xn, x)
        kx = self.conv_att(kernels, kx)
        corr = torch.einsum("bnc,bhwn->bhwc", kx, xn)
        gate = self.proj_Cto1(kx)
        gate = torch.sigmoid(torch.einsum("bnd,bnc->bdc", gate, kx)).unsqueeze(-2)
        corr = corr * gate
        return x + self.act(self.ln(corr))


class Attention(nn.Module):
    """Multi-head attention with head_dim = max(C/heads, 32) (so qkv 128 -> 768, proj 256 -> 128),
    computed with F.scaled_dot_product_attention."""

    def __init__(self, dim: int, num_heads: int = 8):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = max(dim // num_heads, 32)
        self.qkv = nn.Linear(dim, num_heads * self.head_dim * 3, bias=False)
        self.proj = nn.Linear(num_heads * self.head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        y = y.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        return self.proj(y)


class AttMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block. Search: tokens [x; z] -> block -> keep the x part.
    Template: a self-attention pass on z alone (`forward_template`)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, num_heads: int = 8):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = AttMlp(dim, int(dim * mlp_ratio))

    def _tokens(self, t: torch.Tensor) -> torch.Tensor:
        t = t + self.attn(self.norm1(t))
        return t + self.mlp(self.norm2(t))

    def forward_template(self, z: torch.Tensor) -> torch.Tensor:
        b, h, w, c = z.shape
        return self._tokens(z.reshape(b, h * w, c).contiguous()).reshape(b, h, w, c).contiguous()

    def forward(self, x: torch.Tensor, z_tokens: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c).contiguous()
        t = self._tokens(torch.cat([x, z_tokens], dim=1))
        return t[:, :h * w, :].reshape(b, h, w, c).contiguous()
