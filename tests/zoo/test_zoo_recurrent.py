"""Recurrent layers and other operators that used to run uncounted (issue 12, "no silent zero").

nn.LSTM runs on CPU as one aten.mkldnn_rnn_layer per layer and direction, which had no
formula: 0 MACs and nothing listed. Every count here is a hand count (gates x (input + hidden)
x hidden per step, per direction, per layer) or torch.utils.flop_counter.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import snnsim
from snnsim import SpikeFormat

BIN = [SpikeFormat(1.0, 1)]


def _lstm_dense(T, I, H, layers=1, dirs=1):
    """Per sample: T x 4H x (input + H) per layer and direction."""
    total, inp = 0, I
    for _ in range(layers):
        total += dirs * T * 4 * H * (inp + H)
        inp = H * dirs
    return total


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_lstm_dense_macs_hand_count(layers, bidirectional):
    torch.manual_seed(0)
    T, B, I, H = 5, 2, 3, 4
    lstm = nn.LSTM(I, H, num_layers=layers, bidirectional=bidirectional)
    p = snnsim.profile(lstm, torch.randn(T, B, I), spike_formats=BIN, batch_size=B)
    assert p.totals["dense_macs"] == _lstm_dense(T, I, H, layers, 2 if bidirectional else 1)
    assert p.totals["mac_ops"] == p.totals["dense_macs"]          # real input, real hidden states
    assert len(p.uncounted) == 0 and p.complete


def test_lstm_batch_first_and_unbatched():
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 4, batch_first=True)
    p = snnsim.profile(lstm, torch.randn(2, 6, 3), spike_formats=BIN, batch_size=2)   # [B, T, I]
    assert p.totals["dense_macs"] == 6 * 16 * 7
    p = snnsim.profile(nn.LSTM(3, 4), torch.randn(6, 3), spike_formats=BIN, batch_size=1)  # unbatched [T, I]
    assert p.totals["dense_macs"] == 6 * 16 * 7


def test_lstm_on_spikes_counts_input_events_exactly():
    """Binary spikes into an LSTM: the input-to-hidden part is synaptic events -- each nonzero
    input meets the 4H gate rows of W_ih -- and the hidden-to-hidden part stays MACs."""
    torch.manual_seed(2)
    T, B, I, H = 6, 3, 5, 4
    x = (torch.rand(T, B, I) > 0.6).float()
    p = snnsim.profile(nn.LSTM(I, H), x, spike_formats=BIN, batch_size=B)
    nnz = int((x != 0).sum())
    assert p.totals["syn_events"] * B == nnz * 4 * H
    assert p.totals["syn_ops"] == p.totals["syn_events"]
    assert p.totals["mac_ops"] * B == T * B * 4 * H * H
    assert p.totals["dense_macs"] == T * 4 * H * (I + H)
    row = p.layers.iloc[0]
    assert row.kind == "rnn" and row.spiking_input


def test_lstm_weight_sparsity_prunes_zero_weights():
    torch.manual_seed(3)
    T, B, I, H = 4, 2, 3, 2
    lstm = nn.LSTM(I, H)
    with torch.no_grad():
        lstm.weight_ih_l0[:, 0] = 0           # input channel 0 reaches no gate
        lstm.weight_hh_l0[::2] = 0            # half the hidden rows are zero
    x = (torch.rand(T, B, I) > 0.3).float()
    p = snnsim.profile(lstm, x, spike_formats=BIN, weight_sparsity=True, batch_size=B)
    w_ih = (lstm.weight_ih_l0 != 0).float()
    events = float((x.reshape(-1, I) @ w_ih.t()).sum())
    assert p.totals["syn_events"] * B == events
    assert p.totals["mac_ops"] * B == T * B * int((lstm.weight_hh_l0 != 0).sum())


@pytest.mark.parametrize("cls,gates", [(nn.GRU, 3), (nn.RNN, 1)])
def test_gru_rnn_layers_hand_count_and_flop_counter(cls, gates):
    torch.manual_seed(4)
    T, B, I, H = 5, 2, 3, 4
    layer, x = cls(I, H), torch.randn(T, B, I)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        layer(x)
    p = snnsim.profile(layer, x, spike_formats=BIN, batch_size=B)
    assert p.totals["dense_macs"] == T * gates * H * (I + H)
    assert p.totals["dense_macs"] * B * 2 == fc.get_total_flops()
    assert p.complete


@pytest.mark.parametrize("cls,gates", [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)])
def test_recurrent_cells_hand_count(cls, gates):
    torch.manual_seed(5)
    cell = cls(3, 4)
    p = snnsim.profile(cell, torch.randn(2, 3), spike_formats=BIN)
    assert p.batch_size == 2
    assert p.totals["dense_macs"] == gates * 4 * (3 + 4)
    assert p.complete


def test_snntorch_slstm_spiking_lstm_cell():
    """snnTorch's SLSTM (an LSTM cell whose output is thresholded) over T steps on spikes."""
    import snntorch as snn

    torch.manual_seed(6)
    T, B, I, H = 4, 2, 6, 5
    net = snn.SLSTM(I, H)
    x = (torch.rand(T, B, I) > 0.5).float()

    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.slstm = net

        def forward(self, seq):
            syn, mem = self.slstm.reset_mem()
            out = []
            for xt in seq:
                spk, syn, mem = self.slstm(xt, syn, mem)
                out.append(spk)
            return torch.stack(out)

    p = snnsim.profile(Loop(), x)
    assert p.batch_size == B                                      # from the neuron's [B, H] outputs
    assert p.totals["dense_macs"] == T * 4 * H * (I + H)
    assert p.totals["syn_events"] * B == int((x != 0).sum()) * 4 * H
    assert p.timesteps == T


def test_conv_tbc_counts_like_conv1d():
    torch.manual_seed(7)
    T, B, C_in, C_out, K, pad = 9, 2, 3, 4, 3, 1

    class TBC(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(K, C_in, C_out))
            self.bias = nn.Parameter(torch.randn(C_out))

        def forward(self, x):
            return torch.conv_tbc(x, self.weight, self.bias, pad)

    x = (torch.rand(T, B, C_in) > 0.5).float()
    p = snnsim.profile(TBC(), x, spike_formats=BIN, batch_size=B)
    T_out = T + 2 * pad - K + 1
    assert p.totals["dense_macs"] * B == T_out * B * C_out * C_in * K
    # brute force: the conv applied to the nonzero mask and all-ones kernels
    ref = F.conv1d((x != 0).float().permute(1, 2, 0), torch.ones(C_out, C_in, K), padding=pad).sum()
    assert p.totals["syn_events"] * B == float(ref)
    assert p.complete


def test_embedding_is_a_listed_lookup_not_a_silent_zero():
    emb = nn.Embedding(10, 4)
    p = snnsim.profile(emb, torch.tensor([[1, 2, 3], [4, 5, 6]]), spike_formats=BIN)
    row = p.layers.iloc[0]
    assert (row.op, row.kind) == ("embedding", "lookup")
    assert row.dense_macs == 0 and row.weight_numel == 40 and row.out_numel * 2 == 2 * 3 * 4
    assert p.complete


def test_operator_with_a_weight_and_no_formula_is_listed_with_shapes():
    """torch.cdist against learnt centres reads a weight and has no formula: it must be
    listed in `uncounted` (calls and shapes), the profile partial, the energy partial."""
    class Centres(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.centres = nn.Parameter(torch.randn(5, 3))

        def forward(self, x):
            return torch.cdist(self.fc(x), self.centres)

    p = snnsim.profile(Centres(), torch.randn(4, 3), spike_formats=BIN)
    unc = p.uncounted
    assert list(unc.op) == ["_cdist_forward"]
    assert unc.calls[0] == 1 and "4x3, 5x3" in unc.shapes[0]
    assert not p.complete and "_cdist_forward" in p.partial_note
    assert p.summary()["complete"] is False

    e = snnsim.energy.estimate(p, "horowitz-45nm-fp32", "ac-mac")
    assert e.complete is False and "_cdist_forward" in e.partial
    assert e.omitted[0].startswith("partial:") and "_cdist_forward" in e.omitted[0]
    d = e.to_dict()
    assert d["complete"] is False and d["not_counted"] == ["_cdist_forward"]
    assert "partial" in repr(e)

    # the report says so next to its headline total
    import pandas as pd

    from analysis import report, tables
    summary = {"model": "centres", "kind": "ann", **p.summary()}
    note = tables.partial_note(summary)
    assert note.startswith("partial: 1 operator(s) not counted (_cdist_forward")
    doc = report.Doc("t")
    report.headline_block(doc, summary, pd.DataFrame(columns=["hardware", "estimator", "applicable"]), [])
    assert "> **Warning:** partial: 1 operator(s) not counted (_cdist_forward" in doc.render_md()


def test_nn_bilinear_is_listed_not_a_silent_zero():
    """nn.Bilinear runs as aten._trilinear (no formula; its name did not look synaptic)."""
    p = snnsim.profile(nn.Bilinear(3, 4, 2), torch.randn(5, 3), torch.randn(5, 4), spike_formats=BIN)
    assert list(p.uncounted.op) == ["_trilinear"] and p.uncounted.shapes[0] == "5x3, 2x3x4, 5x4"
    assert not p.complete


def test_common_layers_do_not_raise_false_partials():
    """Norms, PReLU, a learnt token concatenated to the input, a positional parameter added,
    a table lookup: none of them is synaptic, so nothing is listed and the energy is complete."""
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls = nn.Parameter(torch.randn(1, 1, 8))
            self.pos = nn.Parameter(torch.randn(1, 5, 8))
            self.table = nn.Parameter(torch.randn(9, 8))
            self.ln = nn.LayerNorm(8)
            self.bn = nn.BatchNorm1d(5)
            self.act = nn.PReLU()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            t = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
            t = t + self.table[torch.arange(5) % 9]
            return self.fc(self.act(self.bn(self.ln(t))))

    net = Tokens().eval()
    p = snnsim.profile(net, torch.randn(3, 4, 8), spike_formats=BIN)
    assert len(p.uncounted) == 0 and p.complete
    assert p.totals["dense_macs"] == 5 * 8 * 2
    e = snnsim.energy.estimate(p, "horowitz-45nm-fp32", "ac-mac")
    assert e.complete and e.partial is None



def test_a_zero_input_inside_a_recurrent_neuron_is_real_work():
    """Inside a neuron's forward an all-zero operand cannot be told apart: a silent spike vector
    fed back, or a zero input / membrane state. It counts dense (an overcount for the first,
    exact for the others), never zero. Norse's LIFRecurrent on real features padded with zero
    steps: its input synapses cost what Linear + LIFCell cost (hand count T x I x H per
    sample for the input weights)."""
    import norse.torch as norse

    torch.manual_seed(0)
    T, B, I, H = 6, 2, 8, 16
    rec = norse.LIFRecurrent(I, H, p=norse.LIFParameters(v_th=torch.tensor(100.0)))   # never fires
    x = torch.randn(T, B, I)
    x[3:] = 0                                                   # zero padding steps
    p = snnsim.profile(rec, x)
    assert p.totals["mac_ops"] == T * I * H + T * H * H       # input and recurrent weights, every step
