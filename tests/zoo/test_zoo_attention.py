"""Attention counted from its definition whatever kernel torch takes: 5-D spiking
scaled_dot_product_attention (the MATH path scales Q and K before its matmuls), grouped-query
attention, nn.MultiheadAttention with padding / causal masks (-inf scores by design) and its
fused fast path. References: brute-force nonzero products of the binary tensors, and MACs
counted by hand from the shapes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snnsim
from snnsim import SpikeFormat
from snnsim.counting import NonFiniteActivationError

BIN = [SpikeFormat(1.0, 1)]


class SDPA(nn.Module):
    def forward(self, q, k, v, **kw):
        return F.scaled_dot_product_attention(q, k, v, **kw)


def binary(*shape, p=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) > p).float()


def nonzero_products(a, b):
    """Exact count of nonzero a[..., m, k] * b[..., k, n] products, element by element."""
    return int(((a != 0).unsqueeze(-1) & (b != 0).unsqueeze(-3)).sum())


def only_row(p):
    assert len(p.layers) == 1, p.layers
    return p.layers.iloc[0]


@pytest.mark.parametrize("mask", [None, "causal", "bool"])
def test_5d_spiking_sdpa_counts_spike_pairs(mask):
    T, B, H, N, d = 2, 1, 2, 16, 8                       # [T, B, heads, tokens, dim]
    q, k, v = binary(T, B, H, N, d, seed=1), binary(T, B, H, N, d, seed=2), binary(T, B, H, N, d, seed=3)
    kw = {}
    if mask == "causal":
        kw["is_causal"] = True
    elif mask == "bool":
        kw["attn_mask"] = torch.rand(N, N, generator=torch.Generator().manual_seed(4)) > 0.3
        kw["attn_mask"].fill_diagonal_(True)
    row = only_row(snnsim.profile(SDPA(), q, k, v, spike_formats=BIN, batch_size=1, **kw))
    assert row.operands == "spike*spike*spike"
    assert row.spike_spike == nonzero_products(q, k.transpose(-2, -1))      # Q Kᵀ: exact
    assert row.syn_events == N * int((v != 0).sum())     # P (real, dense) x V: each V spike meets N rows
    assert row.mac_ops == 0
    assert row.dense_macs == T * B * H * (N * N * d + N * N * d)


def test_spiking_sdpa_with_neurons_in_the_model():
    """The same, default formats: Q, K, V come from SpikingJelly neurons."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import neuron

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (neuron.IFNode(v_threshold=0.5, step_mode="m") for _ in range(3))

        def forward(self, x):
            q, k, v = self.q(x), self.k(x * 1.5), self.v(x * 0.8)
            return F.scaled_dot_product_attention(q, k, v), (q, k, v)

    torch.manual_seed(5)
    x = torch.randn(2, 1, 2, 8, 4)                         # 5-D: [T, B, heads, tokens, dim]
    p = snnsim.profile(Attn(), x, batch_size=1)
    _, (q, k, v) = Attn()(x)
    row = p.layers[p.layers.op == "scaled_dot_product_attention"].iloc[0]
    assert row.spike_spike == nonzero_products(q, k.transpose(-2, -1)) > 0
    assert row.syn_events == 8 * int((v != 0).sum()) and row.mac_ops == 0


@pytest.mark.parametrize("spiking", [False, True])
def test_grouped_query_attention(spiking):
    """4 query heads share 2 key / value heads (enable_gqa): each K, V head serves 2 query heads."""
    B, Hq, Hk, L, S, d = 1, 4, 2, 3, 5, 8
    if spiking:
        q, k, v = binary(B, Hq, L, d, seed=6), binary(B, Hk, S, d, seed=7), binary(B, Hk, S, d, seed=8)
        fmts = BIN
    else:
        q, k, v = torch.randn(B, Hq, L, d), torch.randn(B, Hk, S, d), torch.randn(B, Hk, S, d)
        fmts = BIN
    row = only_row(snnsim.profile(SDPA(), q, k, v, enable_gqa=True, spike_formats=fmts))
    assert row.dense_macs == B * Hq * (L * S * d + L * S * d)
    if spiking:
        kr, vr = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
        assert row.spike_spike == nonzero_products(q, kr.transpose(-2, -1))
        assert row.syn_events == L * int((vr != 0).sum())
    else:
        assert row.mac_ops == row.dense_macs


def mha_macs(L, S, E, heads, batch):
    """nn.MultiheadAttention by hand: Q, K, V projections (E x E each), Q Kᵀ, P V, out proj."""
    proj = batch * (L * E * E + 2 * S * E * E) + batch * L * E * E
    attn = batch * heads * (L * S * (E // heads)) * 2
    return proj + attn


@pytest.mark.parametrize("kind", ["key_padding", "causal"])
def test_masked_multihead_attention_is_counted_not_aborted(kind):
    """need_weights=True (the default) runs baddbmm(mask, Q, Kᵀ): -inf at masked scores by
    design, accepted; the counts are the unmasked ones (dense, as every real operand)."""
    torch.manual_seed(9)
    L, E, heads = 5, 8, 2
    mha = nn.MultiheadAttention(E, heads).eval()
    x = torch.randn(L, 1, E)
    if kind == "key_padding":
        kw = {"key_padding_mask": torch.tensor([[False, False, False, True, True]])}
    else:
        kw = {"attn_mask": torch.triu(torch.full((L, L), float("-inf")), 1)}

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, **kw)[0]

    p = snnsim.profile(M(), x, spike_formats=BIN, batch_size=1)
    assert p.totals["dense_macs"] == mha_macs(L, L, E, heads, 1)
    assert "baddbmm" in set(p.layers.op)


def test_multihead_attention_fast_path_is_counted():
    """batch_first, eval, no_grad, need_weights=False: torch would run one fused
    _native_multi_head_attention kernel; profiling takes the regular path and counts it all,
    then restores the fast-path setting."""
    torch.manual_seed(10)
    L, E, heads = 6, 8, 2
    mha = nn.MultiheadAttention(E, heads, batch_first=True).eval()

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    before = torch.backends.mha.get_fastpath_enabled()
    p = snnsim.profile(M(), torch.randn(2, L, E), spike_formats=BIN)
    assert torch.backends.mha.get_fastpath_enabled() == before
    assert len(p.uncounted) == 0
    assert p.totals["dense_macs"] == mha_macs(L, L, E, heads, 2) / 2       # per sample
    assert p.totals["mac_ops"] == p.totals["dense_macs"]


def test_non_finite_rule():
    """NaN and +inf stop profiling; -inf only where an operator adds a -inf mask."""
    class Mm(nn.Module):
        def forward(self, mask, a, b):
            return torch.baddbmm(mask, a, b)

    a, b = torch.randn(1, 2, 3), torch.randn(1, 3, 2)
    masked = torch.tensor([[[0.0, float("-inf")], [0.0, 0.0]]])
    snnsim.profile(Mm(), masked, a, b, spike_formats=BIN)                   # accepted
    for bad in (float("nan"), float("inf")):
        with pytest.raises(NonFiniteActivationError):
            snnsim.profile(Mm(), torch.tensor([[[0.0, bad], [0.0, 0.0]]]), a, b, spike_formats=BIN)
    # -inf produced by a product (no -inf mask to explain it) is an error
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    with pytest.raises(NonFiniteActivationError):
        snnsim.profile(lin, torch.tensor([[float("-inf"), 1.0]]), spike_formats=BIN)
    # attention: a -inf mask is fine (torch 2.13 gives fully masked rows 0), a NaN query is not
    q = torch.randn(1, 1, 2, 4)
    snnsim.profile(SDPA(), q, q, q, attn_mask=torch.zeros(2, 2, dtype=torch.bool), spike_formats=BIN)
    q[0, 0, 1, 2] = float("nan")
    with pytest.raises(NonFiniteActivationError, match="scaled_dot_product_attention"):
        snnsim.profile(SDPA(), q, q, q, spike_formats=BIN)
