"""SpikeYOLO building blocks used by SMTrack's SpikeYOLOX-S detector.

Every block works on multi-step tensors [T, B, C, H, W]: neurons (I-LIF, integer levels
0..4) run over the time axis and synaptic layers run on the flattened T*B axis. Module and
attribute names follow the official checkpoint, so its state dict loads strictly; the
operator sequence (conv / BN order, explicit BN-value padding) follows the published code
so the golden fixture is reproduced bit for bit.

BatchNorm eps is 1e-3 everywhere (the official `Exp.get_model` sets it after building).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .neurons import ILIF

BN_EPS = 1e-3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[T, B, C, H, W] -> [T*B, C, H, W]."""
    return x.flatten(0, 1)


def _unflat(y: torch.Tensor, t: int, b: int) -> torch.Tensor:
    """[T*B, C, H, W] -> [T, B, C, H, W]."""
    return y.reshape(t, b, *y.shape[1:])


class BNAndPadLayer(nn.Module):
    """BatchNorm followed by a border of `pad` pixels whose value is what the BN gives a
    zero input (bias - mean * weight / sqrt(var + eps)), so a following unpadded conv sees
    the padding a conv-before-BN would have seen. Keys: `bn.*`."""

    def __init__(self, pad: int, channels: int):
        super().__init__()
        self.bn = _bn(channels)
        self.pad = pad

    def border_value(self) -> torch.Tensor:
        bn = self.bn
        return bn.bias.detach() - bn.running_mean * bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(x)
        p = self.pad
        if p <= 0:
            return y
        y = F.pad(y, [p, p, p, p])
        v = self.border_value().view(1, -1, 1, 1)
        y[:, :, :p, :] = v
        y[:, :, -p:, :] = v
        y[:, :, :, :p] = v
        y[:, :, :, -p:] = v
        return y


class RepConv(nn.Module):
    """1x1 a->a, BN with value padding, depthwise 3x3 (unpadded), 1x1 a->b, BN(b).
    Keys: body.0 (1x1), body.1.bn, body.2.{0 dw, 1 pw, 2 BN}. Works on 4-D tensors."""

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_in, 1, 1, 0, bias=False),
            BNAndPadLayer((k - 1) // 2, c_in),
            nn.Sequential(
                nn.Conv2d(c_in, c_in, k, 1, 0, groups=c_in, bias=False),
                nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
                _bn(c_out),
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SepRepConv(nn.Module):
    """BN with value padding, 1x1 a->b, depthwise 3x3 (unpadded). Keys: body.0.bn,
    body.1.{0 pw, 1 dw}. Works on 4-D tensors."""

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            BNAndPadLayer((k - 1) // 2, c_in),
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
                nn.Conv2d(c_out, c_out, k, 1, 0, groups=c_out, bias=False),
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SepConv(nn.Module):
    """LIF -> 1x1 C->2C -> BN -> LIF -> depthwise kxk -> BN -> LIF -> SepRepConv(2C->C) -> BN."""

    def __init__(self, dim: int, kernel_size: int = 7, expansion: int = 2):
        super().__init__()
        med = dim * expansion
        self.pwconv1 = nn.Conv2d(dim, med, 1, 1, bias=False)
        self.dwconv2 = nn.Conv2d(med, med, kernel_size, 1, (kernel_size - 1) // 2, groups=med, bias=False)
        self.pwconv3 = SepRepConv(med, dim)
        self.bn1 = _bn(med)
        self.bn2 = _bn(med)
        self.bn3 = _bn(dim)
        self.lif1 = ILIF()
        self.lif2 = ILIF()
        self.lif3 = ILIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        x = _unflat(self.bn1(self.pwconv1(_flat(self.lif1(x)))), t, b)
        x = _unflat(self.bn2(self.dwconv2(_flat(self.lif2(x)))), t, b)
        x = _unflat(self.bn3(self.pwconv3(_flat(self.lif3(x)))), t, b)
        return x


class MSStandardConv(nn.Module):
    """LIF -> conv k (pad k//2, stride s, no bias) -> BN. Keys: conv, bn. (SpikeYOLO's
    `MS_StandardConv` and `SpikeConv` are the same computation.)"""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = _bn(c_out)
        self.lif = ILIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        return _unflat(self.bn(self.conv(_flat(self.lif(x)))), t, b)


SpikeConv = MSStandardConv


class SpikeConvWithoutBN(nn.Module):
    """LIF -> conv k with bias (the head's prediction layers). Keys: conv."""

    def __init__(self, c_in: int, c_out: int, k: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=True)
        self.lif = ILIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        return _unflat(self.conv(_flat(self.lif(x))), t, b)


class MSDownSampling(nn.Module):
    """[LIF unless first] -> conv with bias -> BN. Keys: encode_conv, encode_bn."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 2, p: int = 1, first: bool = False):
        super().__init__()
        self.encode_conv = nn.Conv2d(c_in, c_out, k, s, p)
        self.encode_bn = _bn(c_out)
        if not first:
            self.encode_lif = ILIF()
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        if not self.first:
            x = self.encode_lif(x)
        return _unflat(self.encode_bn(self.encode_conv(_flat(x))), t, b)


class MSAllConvBlock(nn.Module):
    """x += SepConv(x); x += Std3x3(rC->C)(Std3x3(C->rC)(x))."""

    def __init__(self, dim: int, ratio: float = 4.0, sep_kernel: int = 7):
        super().__init__()
        hidden = int(dim * ratio)
        self.Conv = SepConv(dim, sep_kernel)
        self.conv1 = MSStandardConv(dim, hidden, 3)
        self.conv2 = MSStandardConv(hidden, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv(x) + x
        return x + self.conv2(self.conv1(x))


class MSConvBlock(nn.Module):
    """x += SepConv(x); x += BN(RepConv(rC->C)(LIF(BN(RepConv(C->rC)(LIF x)))))."""

    def __init__(self, dim: int, ratio: float = 4.0, sep_kernel: int = 7):
        super().__init__()
        hidden = int(dim * ratio)
        self.Conv = SepConv(dim, sep_kernel)
        self.lif1 = ILIF()
        self.lif2 = ILIF()
        self.conv1 = RepConv(dim, hidden)
        self.bn1 = _bn(hidden)
        self.conv2 = RepConv(hidden, dim)
        self.bn2 = _bn(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        x = self.Conv(x) + x
        y = _unflat(self.bn1(self.conv1(_flat(self.lif1(x)))), t, b)
        y = _unflat(self.bn2(self.conv2(_flat(self.lif2(y)))), t, b)
        return x + y


class SpikeSPPF(nn.Module):
    """SpikeConv 1x1 -> c/2, three chained MaxPool(5, 1, 2), concat of the four, SpikeConv
    1x1 -> out."""

    def __init__(self, c_in: int, c_out: int, k: int = 5):
        super().__init__()
        hidden = c_in // 2
        self.cv1 = SpikeConv(c_in, hidden, 1)
        self.cv2 = SpikeConv(hidden * 4, c_out, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        t, b = x.shape[:2]
        y1 = _unflat(self.m(_flat(x)), t, b)
        y2 = _unflat(self.m(_flat(y1)), t, b)
        y3 = _unflat(self.m(_flat(y2)), t, b)
        return self.cv2(torch.cat((x, y1, y2, y3), 2))
