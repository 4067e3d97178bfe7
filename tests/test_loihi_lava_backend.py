"""The lava backend of the Loihi mapping: the custom graded-neuron process and the mapped stem
segment of spiketrack-tiny, run in lava-nc 0.10.0 (Loihi2SimCfg, fixed_pt), must agree with
snnsim's lava-timed emulator bit for bit - u and the spike payload of every population at
every step - and the emulator's settled spikes must equal the model-level fixed-point run.

* a small network exercising the neuron's dynamics (period > 1 with 12-bit decays and the soft
  reset, period 0, graded Dense and Conv inputs, two inputs summed in one a_in);
* the segment downsample1_1 (host, injected) -> ConvBlock1_1 -> spikes of downsample1_2 of
  spiketrack-tiny (golden weights: deterministic and spiking), with its residual adds, on a
  16 x 16 window of the real entry currents (lava's Monitors are slow at 64 x 64), 3 frames
  held 6 steps each;
* deliberately wrong emulator variants (a residual input dropped, a bias off by one, rounding
  half up instead of half to even) must differ from lava.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402

from snnsim.loihi import graded  # noqa: E402
from snnsim.loihi.emulator import ConvLayer, DenseLayer, RingBufferSource  # noqa: E402
from snnsim.loihi.graded import GradedNetwork, GradedPopulation, build_segment_network  # noqa: E402
from snnsim.loihi.lava_graded import GradedNeuron, run_segment_lava  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.usefixtures("one_thread")]

BACKENDS = ["torch", "fused"]
WINDOW = 16
FRAMES = 3


def _equal(emu, ref, what):
    assert set(emu) == set(ref), (set(emu), set(ref))
    for name in ref:
        for key in ("u", "s"):
            a, b = np.asarray(emu[name][key]).astype(np.int64), np.asarray(ref[name][key]).astype(np.int64)
            assert a.shape == b.shape, (what, name, key, a.shape, b.shape)
            if not np.array_equal(a, b):
                t = int(np.argwhere(a != b)[0][0])
                raise AssertionError(f"{what}: {name}.{key} differs first at step {t + 1}")


def _differs(emu, ref) -> bool:
    try:
        _equal(emu, ref, "")
    except AssertionError:
        return True
    return False


# --------------------------------------------------------------------------- neuron dynamics
def _dynamics_case():
    rng = np.random.default_rng(3)
    n_in, n1, T = 12, 10, 24
    data = rng.integers(-3, 6, size=(n_in, T)) * (rng.random((n_in, T)) < 0.6)
    w1 = rng.integers(-200, 200, size=(n1, n_in))
    pop1 = dict(unit=64, levels=4, bias=rng.integers(-20, 40, size=(n1,)), period=3, decay12=(1024, 3000),
                reset_unit=16)
    shape2 = (3, 3, 2)
    w2 = rng.integers(-120, 120, size=(2, 2, 2, 1))     # (C_out, KX, KY, C_in) with 10 -> reshaped input
    pop2 = dict(unit=32, levels=4, bias=rng.integers(-10, 10, size=shape2), period=0, decay12=(2048,),
                reset_unit=32)
    w_side = rng.integers(-60, 60, size=(int(np.prod(shape2)), n_in))
    return data, w1, pop1, w2, pop2, shape2, w_side, T


def _run_dynamics_lava():
    data, w1, pop1, w2, pop2, shape2, w_side, T = _dynamics_case()
    src = RingBuffer(data=data)
    d1 = Dense(weights=w1, num_message_bits=8, name="d1")
    g1 = GradedNeuron(shape=(10,), name="g1", **pop1)
    conv = Conv(weight=w2, input_shape=(4, 4, 1), padding=0, num_message_bits=8, name="c2")
    side = Dense(weights=w_side, num_message_bits=8, name="side")
    g2 = GradedNeuron(shape=shape2, name="g2", **pop2)
    pad = Dense(weights=np.eye(16, 10, dtype=np.int64) * 2, num_message_bits=8, name="pad")
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(g1.a_in)
    g1.s_out.connect(pad.s_in)
    pad.a_out.reshape((4, 4, 1)).connect(conv.s_in)
    conv.a_out.connect(g2.a_in)
    src.s_out.connect(side.s_in)
    side.a_out.reshape(shape2).connect(g2.a_in)
    mons = []
    for p in (g1, g2):
        for var in (p.u, p.s_out):
            m = Monitor()
            m.probe(var, T)
            mons.append((p.name, "u" if var is p.u else "s", var.name, m))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g1.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        try:
            out = {}
            for name, key, var, m in mons:
                out.setdefault(name, {})[key] = np.asarray(m.get_data()[name][var]).astype(np.int64)
        finally:
            g1.stop()
    return out


def _dynamics_emulator():
    data, w1, pop1, w2, pop2, shape2, w_side, T = _dynamics_case()
    net = GradedNetwork()
    net.add(RingBufferSource("src", data))
    net.add(DenseLayer("d1", w1, num_message_bits=8))
    net.add(GradedPopulation("g1", (10,), **pop1))
    net.add(DenseLayer("pad", np.eye(16, 10, dtype=np.int64) * 2, num_message_bits=8))
    net.add(ConvLayer("c2", w2, (4, 4, 1), num_message_bits=8))
    net.add(DenseLayer("side", w_side, num_message_bits=8))
    net.add(GradedPopulation("g2", shape2, **pop2))
    net.connect("src", "d1")
    net.connect("d1", "g1")
    net.connect("g1", "pad")
    net.connect("pad", "c2", [("reshape", (4, 4, 1))])
    net.connect("c2", "g2")
    net.connect("src", "side")
    net.connect("side", "g2", [("reshape", shape2)])
    return net, T


@pytest.fixture(scope="module")
def dynamics_ref():
    return _run_dynamics_lava()


@pytest.mark.parametrize("backend", BACKENDS)
def test_graded_neuron_dynamics_bitexact(dynamics_ref, backend):
    net, T = _dynamics_emulator()
    if backend == "fused" and graded.graded_fused_kernel() is None:
        pytest.skip("numba missing")
    emu = net.run(T, backend=backend)
    _equal(emu, dynamics_ref, f"dynamics ({backend})")
    # the case exercises what it claims: spikes of several levels, negative u, a restart
    s1 = dynamics_ref["g1"]["s"]
    assert len(np.unique(s1)) >= 3 and (dynamics_ref["g1"]["u"] < 0).any()
    assert dynamics_ref["g2"]["s"].sum() > 0


def test_wrong_neuron_rounding_fails(dynamics_ref, monkeypatch):
    def half_up(u, unit, levels):
        c = u.clamp(0, levels * unit)
        return torch.div(2 * c + unit, 2 * unit, rounding_mode="floor")
    monkeypatch.setattr(graded, "graded_level", half_up)
    net, T = _dynamics_emulator()
    assert _differs(net.run(T, backend="torch"), dynamics_ref)


# --------------------------------------------------------------------------- the mapped segment
@pytest.fixture(scope="module")
def tiny_segment():
    from snnsim.loihi.mapper import golden_segment

    torch.set_num_threads(1)
    return golden_segment(FRAMES)


def _window(seg, cur, x0: int, y0: int, w: int):
    """The same segment on a w x w window of the entry currents (fully convolutional)."""
    s = copy.deepcopy(seg)
    s.entry_shape = (w, w, seg.entry_shape[2])
    for site in s.sites.values():
        site["shape"] = (w, w, site["shape"][2])
        site["bias"] = site["bias"][x0:x0 + w, y0:y0 + w].contiguous()
    for L in s.layers.values():
        L["in_shape"] = (w, w, L["in_shape"][2])
    return s, cur[:, x0:x0 + w, y0:y0 + w].contiguous()


@pytest.fixture(scope="module")
def lava_segment(tiny_segment):
    seg, cur = _window(tiny_segment["seg"], tiny_segment["cur"], 20, 24, WINDOW)
    hold = seg.settle_steps
    ref = run_segment_lava(seg, cur.numpy(), hold)
    return seg, cur, hold, ref


def test_segment_structure(tiny_segment):
    seg = tiny_segment["seg"]
    names = list(seg.sites)
    assert names[0].endswith("ConvBlock1_1.0.Conv.spike1") and names[-1].endswith("downsample1_2.encode_spike")
    assert seg.entry == "encoder.downsample1_1.encode_conv" and seg.depth == 5
    assert len(seg.layers) == 5
    # the residual adds: the last population sums the entry, pwconv2 and conv2
    last = seg.sites[names[-1]]
    assert last["entry"] and sorted(last["inputs"]) == ["encoder.ConvBlock1_1.0.Conv.pwconv2.0",
                                                         "encoder.ConvBlock1_1.0.conv2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_segment_lava_bitexact(lava_segment, backend):
    seg, cur, hold, ref = lava_segment
    if backend == "fused" and graded.graded_fused_kernel() is None:
        pytest.skip("numba missing")
    net = build_segment_network(seg, cur, hold)
    emu = net.run(FRAMES * hold, backend=backend)
    _equal(emu, ref, f"segment ({backend})")
    assert net.last_backend == backend
    for name, rec in ref.items():          # active populations, graded levels above 1 somewhere
        assert rec["s"].sum() > 0, name
    assert max(int(r["s"].max()) for r in ref.values()) >= 2


@pytest.mark.parametrize("tamper", ["drop-residual", "bias+1"])
def test_segment_wrong_variants_fail(lava_segment, tamper):
    seg, cur, hold, ref = lava_segment
    emu = build_segment_network(seg, cur, hold, tamper=tamper).run(FRAMES * hold, backend="torch")
    assert _differs(emu, ref), tamper


def test_segment_settled_equals_model_level(tiny_segment):
    """Full 64 x 64 segment in the lava-timed emulator: the last step of each held frame equals
    the levels the model-level fixed-point run produces for the same search crops."""
    t = tiny_segment
    seg, fixed = t["seg"], t["fixed"]
    hold = seg.settle_steps
    emu = build_segment_network(seg, t["cur"], hold).run(FRAMES * hold)
    mods = dict(fixed.named_modules())
    rec = {}
    hooks = [mods[n].register_forward_hook(lambda m, a, o, n=n: rec.setdefault(n, []).append(o.detach()))
             for n in seg.sites]
    try:
        with torch.no_grad():
            for s in t["searches"]:
                fixed.forward_search(s, t["cache"])
    finally:
        for h in hooks:
            h.remove()
    for n in seg.sites:
        for f in range(FRAMES):
            lvl = torch.round(rec[n][f][0, 0] * 4).to(torch.int64).permute(2, 1, 0).numpy()
            assert np.array_equal(lvl, emu[n]["s"][(f + 1) * hold - 1]), (n, f)
            if f:   # the frames differ
                assert not np.array_equal(emu[n]["u"][hold - 1], emu[n]["u"][(f + 1) * hold - 1])


# --------------------------------------------------------------------------- LIF and graded in one network
def _mixed_case():
    rng = np.random.default_rng(11)
    n_in, n1, n2, n3, T = 8, 10, 12, 6, 20
    data = rng.integers(-4, 7, size=(n_in, T)) * (rng.random((n_in, T)) < 0.7)
    return dict(
        data=data, T=T,
        w_in=rng.integers(-150, 220, size=(n1, n_in)),
        g1=dict(unit=64, levels=4, bias=rng.integers(-10, 30, size=(n1,)), period=4, decay12=(900, 2048, 3500),
                reset_unit=16),
        w_gl=rng.integers(-40, 90, size=(n2, n1)),     # graded payloads into a LIF
        lif=dict(du=1500, dv=700, vth=40, bias_mant=rng.integers(-3, 8, size=(n2,)), bias_exp=2),
        w_lg=rng.integers(-90, 120, size=(n3, n2)),    # binary spikes into a graded population
        w_side=rng.integers(-30, 30, size=(n3, n_in)),
        g2=dict(unit=32, levels=4, bias=rng.integers(-5, 5, size=(n3,)), period=0, decay12=(3000,), reset_unit=32))


def _mixed_lava(c):
    from lava.proc.lif.process import LIF

    src = RingBuffer(data=c["data"])
    d_in = Dense(weights=c["w_in"], num_message_bits=8, name="d_in")
    g1 = GradedNeuron(shape=(c["w_in"].shape[0],), name="g1", **c["g1"])
    d_gl = Dense(weights=c["w_gl"], num_message_bits=8, name="d_gl")
    lif = LIF(shape=(c["w_gl"].shape[0],), name="lif", **c["lif"])
    d_lg = Dense(weights=c["w_lg"], name="d_lg")
    side = Dense(weights=c["w_side"], num_message_bits=8, name="side")
    g2 = GradedNeuron(shape=(c["w_lg"].shape[0],), name="g2", **c["g2"])
    src.s_out.connect(d_in.s_in)
    d_in.a_out.connect(g1.a_in)
    g1.s_out.connect(d_gl.s_in)
    d_gl.a_out.connect(lif.a_in)
    lif.s_out.connect(d_lg.s_in)
    d_lg.a_out.connect(g2.a_in)
    src.s_out.connect(side.s_in)
    side.a_out.connect(g2.a_in)
    T = c["T"]
    probes = [(g1, "u", g1.u), (g1, "s", g1.s_out), (lif, "u", lif.u), (lif, "v", lif.v), (lif, "s", lif.s_out),
              (g2, "u", g2.u), (g2, "s", g2.s_out)]
    mons = []
    for p, key, var in probes:
        m = Monitor()
        m.probe(var, T)
        mons.append((p.name, key, var.name, m))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        try:
            return {name: {key: np.asarray(m.get_data()[name][var]).astype(np.int64)
                           for n2_, key, var, m in mons if n2_ == name} for name in ("g1", "lif", "g2")}
        finally:
            src.stop()


def _mixed_emulator(c, tamper=None):
    from snnsim.loihi.emulator import LIFPopulation

    net = GradedNetwork()
    net.add(RingBufferSource("src", c["data"]))
    net.add(DenseLayer("d_in", c["w_in"], num_message_bits=8))
    net.add(GradedPopulation("g1", (c["w_in"].shape[0],), **c["g1"]))
    net.add(DenseLayer("d_gl", c["w_gl"], num_message_bits=8))
    lif = dict(c["lif"], du=c["lif"]["du"] + (1 if tamper == "du+1" else 0))
    net.add(LIFPopulation("lif", (c["w_gl"].shape[0],), **lif))
    net.add(DenseLayer("d_lg", c["w_lg"]))
    net.add(DenseLayer("side", c["w_side"], num_message_bits=8))
    net.add(GradedPopulation("g2", (c["w_lg"].shape[0],), **c["g2"]))
    for a, b in [("src", "d_in"), ("d_in", "g1"), ("g1", "d_gl"), ("d_gl", "lif"), ("lif", "d_lg"),
                 ("d_lg", "g2"), ("src", "side")] + ([] if tamper == "drop-side" else [("side", "g2")]):
        net.connect(a, b)
    return net


@pytest.fixture(scope="module")
def mixed_ref():
    return _mixed_lava(_mixed_case())


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_and_graded_populations_share_one_scheduler(mixed_ref, backend):
    """One scheduler steps LIF and graded populations alike: graded payloads into a LIF, its
    binary spikes into a graded population, every step of u (v) and s as lava records them."""
    c = _mixed_case()
    net = _mixed_emulator(c)
    emu = net.run(c["T"], backend=backend)
    assert net.last_backend == backend
    for name, rec in mixed_ref.items():
        for key, ref in rec.items():
            got = np.asarray(emu[name][key]).astype(np.int64)
            assert got.shape == ref.shape and np.array_equal(got, ref), f"{name}.{key} ({backend})"
    assert mixed_ref["lif"]["s"].sum() > 0 and mixed_ref["g2"]["s"].max() >= 2 and mixed_ref["g1"]["s"].max() >= 2


@pytest.mark.parametrize("tamper", ["du+1", "drop-side"])
def test_mixed_network_wrong_variants_fail(mixed_ref, tamper):
    c = _mixed_case()
    emu = _mixed_emulator(c, tamper).run(c["T"], backend="torch")
    assert any(not np.array_equal(np.asarray(emu[n][k]).astype(np.int64), mixed_ref[n][k])
               for n in mixed_ref for k in mixed_ref[n])
