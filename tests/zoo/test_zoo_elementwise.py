"""Element-wise spike operations (`spike_mask`): the Spike-driven Transformer's K (.) V mask,
its token sum and the Q (.) kv gate, Hadamard products of spikes with reals; never the
neurons' own reset / threshold arithmetic. And every estimator prices the new count with its
stated rule (hand-built count tables, as in tests/test_energy_estimators.py).

The reference captures the neurons' spikes with forward hooks on a second run and counts the
nonzero products directly: ((k != 0) & (v != 0)).sum() and the like.
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

import snnsim
from snnsim.energy import estimate

pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, neuron  # noqa: E402
from spikingjelly.activation_based.layer.attention import SpikeDrivenSelfAttention  # noqa: E402

pJ = 1e-12


def split_heads(s, heads):
    """[T, N, C, H, W] -> [T, N, heads, H*W, C/heads] (the attention's token layout)."""
    T, N, C, H, W = s.shape
    return s.flatten(3).transpose(-1, -2).reshape(T, N, H * W, heads, C // heads).permute(0, 1, 3, 2, 4)


def sdsa():
    torch.manual_seed(0)
    attn = SpikeDrivenSelfAttention(8, num_heads=2).eval()
    functional.set_step_mode(attn, "m")
    with torch.no_grad():   # untrained 1x1 convs are too weak to make Q, K, V fire
        for conv in (attn.q_conv, attn.k_conv, attn.v_conv):
            conv.weight.mul_(8)
    return attn, torch.randn(2, 1, 8, 4, 4) * 3     # [T, N, C, H, W]


def test_spike_driven_self_attention_masks_and_token_sums():
    attn, x = sdsa()
    spikes = {}
    hooks = [getattr(attn, n).register_forward_hook(
        lambda m, a, out, n=n: spikes.__setitem__(n, out.detach().clone()))
        for n in ("q_lif", "k_lif", "v_lif", "attn_lif")]
    with torch.no_grad():
        attn(x)
    for h in hooks:
        h.remove()
    functional.reset_net(attn)
    q, k, v = (split_heads(spikes[n], 2) for n in ("q_lif", "k_lif", "v_lif"))
    kv = spikes["attn_lif"]                                   # [T, N, heads, 1, head_dim]
    kv_mask = int(((k != 0) & (v != 0)).sum())                # K (.) V: nonzero products
    token_sum = int((k * v != 0).sum())                       # the sum over tokens adds each of them
    q_gate = int(((q != 0) & (kv != 0)).sum())                # Q (.) kv, kv broadcast over tokens
    assert kv_mask > 0 and q_gate > 0

    p = snnsim.profile(attn, x, batch_size=1)
    L = p.layers
    mul = L[(L.op == "mul") & (L.kind == "spike_mask")]
    total = L[L.op == "sum"]
    assert len(mul) == 1 and mul.iloc[0].calls == 2 and mul.iloc[0].operands == "spike*spike"
    assert mul.iloc[0].spike_mask == kv_mask + q_gate
    assert mul.iloc[0].elementwise_ops == k.numel() + q.numel()          # nominal: every element
    assert len(total) == 1 and total.iloc[0].kind == "token_sum" and total.iloc[0].spike_mask == token_sum
    assert p.totals["spike_mask"] == kv_mask + q_gate + token_sum
    # the neurons' own arithmetic (hard reset v * (1 - s), ...) is no spike mask
    assert set(L.loc[L.spike_mask > 0, "module"]) == {""}
    # no MACs, no dense_macs for element-wise rows; thop leaves them out
    assert (L.loc[L.spike_mask > 0, ["dense_macs", "mac_ops"]] == 0).all().all()
    assert not L.loc[L.spike_mask > 0, "thop"].any()


def test_spikes_times_reals_and_reals_times_reals():
    """A spike gate on a real tensor counts the nonzero spikes (times their broadcast); a product
    of two real tensors and a product with a scalar are not spike operations."""
    torch.manual_seed(1)

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = neuron.IFNode(v_threshold=0.5, step_mode="m")

        def forward(self, x, r):
            s = self.lif(x)                         # [T, B, 4, 1]
            return s * r, r * r, s * 0.5            # gate [T, B, 4, 6]; real x real; scaling

    x, r = torch.randn(3, 2, 4, 1) * 2, torch.randn(3, 2, 4, 6)
    p = snnsim.profile(Gate(), x, r, batch_size=2)
    rows = p.layers[p.layers.kind == "spike_mask"]
    assert list(rows.operands) == ["spike*real"]
    s = neuron.IFNode(v_threshold=0.5, step_mode="m")(x)      # the same spikes, unprofiled
    assert rows.iloc[0].spike_mask * 2 == int((s != 0).sum()) * 6     # per sample, 6-wide broadcast


def test_a_real_activation_times_a_weight_counts_one_multiply_per_element():
    """LayerScale (x * gamma) and a dot product written element-wise, (x * W).sum(-1), used to
    count nothing with the profile complete. Hand counts: one multiply per output element,
    counted as a MAC; with weight_sparsity only where the weight is nonzero; outside the thop
    view (conv / linear modules only)."""

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.tensor([1.0, 0.0, 2.0, 0.0, 3.0, 4.0]))   # 4 of 6 nonzero
            self.w = nn.Parameter(torch.randn(4, 6))

        def forward(self, x):                          # x [B, 5, 6]
            y = x * self.gamma                          # 5 x 6 = 30 products per sample
            return (y[:, :, None, :] * self.w).sum(-1)  # 5 x 4 x 6 = 120 products per sample

    x = torch.randn(3, 5, 6)
    with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
        p = snnsim.profile(Scaled(), x)
    assert p.batch_size == 3 and p.complete and p.uncounted.empty
    row = p.layers[p.layers.kind == "scale"].iloc[0]          # both products: one row (module, op, operands)
    assert (row.op, row.operands, row.calls, row.thop) == ("mul", "real*weight", 2, False)
    assert row.dense_macs == row.mac_ops == 150.0 and p.totals["dense_macs"] == 150.0
    with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
        sparse = snnsim.profile(Scaled(), x, weight_sparsity=True)
    assert sparse.totals["mac_ops"] == 5 * 4 + 120.0                 # gamma: 4 nonzero x 5 rows
    # the linalg spelling is the same work
    w = nn.Parameter(torch.randn(4, 6))

    class VecDot(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = w

        def forward(self, x):
            return torch.linalg.vecdot(x[:, None, :], self.w[None])

    with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
        p = snnsim.profile(VecDot(), torch.randn(3, 6))
    assert p.totals["dense_macs"] == 4 * 6 and p.complete

    class Divided(nn.Module):                           # x / gain: a product with 1 / gain, routed around mul
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.rand(6) + 1)

        def forward(self, x):                          # x [B, 5, 6]
            return x / self.gain, x / 2.0              # 30 divisions per sample; by a scalar: none

    with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
        p = snnsim.profile(Divided(), torch.randn(3, 5, 6))
    row = p.layers[p.layers.kind == "scale"].iloc[0]
    assert (row.op, row.operands, row.dense_macs, row.calls) == ("div", "real*weight", 30.0, 1)


def test_relu_of_spike_sums_keeps_them_spikes():
    """relu(a + b) of two spike maps (a SEW ADD residual under an activation) is still spike
    levels 0..2: the conv that reads it counts events weighted by level, not MACs."""
    torch.manual_seed(2)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = neuron.IFNode(v_threshold=0.5), neuron.IFNode(v_threshold=0.5)
            self.conv = nn.Conv2d(2, 3, 1, bias=False)

        def forward(self, x):
            return self.conv(torch.relu(self.a(x) + self.b(x * 0.7)))

    x = torch.randn(2, 2, 4, 4) * 2
    functional.reset_net(block := Block())
    p = snnsim.profile(block, x)
    functional.reset_net(block)
    with torch.no_grad():
        level = torch.relu(block.a(x) + block.b(x * 0.7))   # the same spikes, unprofiled
    row = p.layers[p.layers.module == "conv"].iloc[0]
    assert row.operands == "spike*weight" and row.mac_ops == 0
    assert row.syn_events * 2 == int((level != 0).sum()) * 3        # 1x1 conv: each event meets 3 kernels
    assert row.syn_ops * 2 == int(level.sum()) * 3 and row.max_level == 2


# ----------------------------------------------------------------------- estimators
LAYER = dict(module_type="SpikeDrivenSelfAttention", op="aten.mul", kind="spike_mask", calls=1,
             dense_macs=0.0, mac_ops=0.0, syn_events=0.0, syn_ops=0.0, spike_spike=0.0,
             weight_numel=0, in_numel=0, out_numel=0, spiking_input=True, thop=False)


class Counts:
    def __init__(self, layers, neurons=None, timesteps=1):
        self.layers = pd.DataFrame(layers)
        self.neurons = pd.DataFrame(neurons or [], columns=["module", "module_type", "t", "neurons", "spikes",
                                                              "spike_mass", "levels"])
        self.timesteps, self.is_spiking, self.model = timesteps, True, None
        self.totals = {}


def mask_counts():
    """One element-wise spike row: 500 nonzero products of 1,000 elements; inputs 2,000
    elements (two binary spike maps), output 1,000; one neuron module (100 updates, 10 spikes).
    Its activations take (2,000 x 1 bit + 1,000 x 32 bits) / 8 = 4,250 bytes < 8 KiB."""
    return Counts([{**LAYER, "module": "attn", "spike_mask": 500.0, "elementwise_ops": 1000.0,
                    "in_numel": 2000, "out_numel": 1000}],
                  [{"module": "lif", "module_type": "LIFNode", "t": 0, "neurons": 100, "spikes": 10,
                    "spike_mass": 10, "levels": 1}])


def test_ac_mac_prices_spike_masks_as_accumulates():
    e = estimate(mask_counts(), "horowitz-45nm-fp32", "ac-mac")
    t = e.layers.set_index("module")
    assert t.loc["attn", "spike_mask_J"] == pytest.approx(500 * 0.9 * pJ, rel=1e-12)   # E_AC = 0.9 pJ
    assert e.total_j == pytest.approx(500 * 0.9 * pJ, rel=1e-12)
    assert any("element-wise spike operation" in a for a in e.assumptions)
    assert estimate(mask_counts(), "horowitz-45nm-fp32", "ac-mac", view="thop").total_j == 0


def test_memory_aware_charges_the_value_each_spike_operation_reads():
    e = estimate(mask_counts(), "horowitz-45nm-fp32", "memory-aware")
    t = e.layers.set_index("module")
    word = 5 * pJ                      # < 8 KiB: 10 pJ per 64-bit access, 32-bit words
    bit = 10 * pJ / 64
    attn = (500 * 0.9 * pJ             # the accumulates
            + 500 * word               # one word read per element-wise spike operation
            + 2000 * bit               # the two binary input maps, 1 bit each
            + 1000 * word)             # the output written
    assert t.loc["attn", "total_J"] == pytest.approx(attn, rel=1e-12)
    assert t.loc["attn", "spike_read_J"] == pytest.approx(500 * word, rel=1e-12)


@pytest.mark.parametrize("hw", ["loihi", "loihi2"])
def test_loihi_runs_spike_masks_on_the_host(hw):
    e = estimate(mask_counts(), hw, "loihi")
    t = e.layers.set_index("module")
    assert t.loc["attn", "host_spike_mask"] == 500 and t.loc["attn", "total_J"] == 0
    assert any("500 element-wise spike operations" in o for o in e.omitted)
    assert any("spike_mask" in a for a in e.assumptions)
    assert "attn" in e.details["mapping"]["host_modules"]


def test_gpu_runs_spike_masks_dense():
    e = estimate(mask_counts(), "gpu-a100", "gpu")
    t = e.layers.set_index("module")
    assert t.loc["attn", "ops"] == 1000                  # every element, zeros included
    assert t.loc["attn", "bytes"] > 0
    assert any("element-wise spike operations" in a for a in e.assumptions)


def test_tables_without_the_new_columns_still_read():
    c = mask_counts()
    c.layers = c.layers.drop(columns=["spike_mask", "elementwise_ops"])
    assert estimate(c, "horowitz-45nm-fp32", "ac-mac").total_j == 0


def test_norm_gains_are_not_scale_products_and_side_vectors_do_not_set_the_batch():
    """RMSNorm's gain runs quietly like LayerNorm's (it alone used to add a 'scale' row); a
    Linear fed a 1-D parameter (a FiLM conditioning vector) in a batch of 8 is no unbatched
    sample (it used to refuse the batch); a module called both ways says nothing either."""
    norms = [nn.LayerNorm(32)] + ([nn.RMSNorm(32)] if hasattr(nn, "RMSNorm") else [])
    for norm in norms:
        with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
            p = snnsim.profile(nn.Sequential(norm, nn.Linear(32, 4)), torch.randn(8, 32))
        assert p.totals["dense_macs"] == 32 * 4 and (p.layers.kind != "scale").all(), type(norm).__name__

    class FiLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.cond, self.film, self.fc = nn.Parameter(torch.randn(4)), nn.Linear(4, 6), nn.Linear(6, 6)

        def forward(self, x):                       # x [B, 6]
            return self.fc(x) * self.film(self.cond)

    with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
        p = snnsim.profile(FiLM(), torch.randn(8, 6))
    # per sample: fc 36, film 24 / 8 (one call for the batch), no scale row (real x real)
    assert p.batch_size == 8 and p.totals["dense_macs"] == 36 + 24 / 8

    shared = nn.Linear(4, 4)

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = shared

        def forward(self, x):
            return self.shared(x) + self.shared(x[0])   # [B, 4] and one row [4]

    with pytest.warns(snnsim.counting.profiler.NoNeuronsWarning):
        assert snnsim.profile(Both(), torch.randn(8, 4)).batch_size == 8
