"""Bit-exactness of the Loihi emulator against real lava-nc 0.10.0 fixed-point runs.

Each network case is built as lava processes, run in lava (``Loihi2SimCfg(select_tag=
'fixed_pt')``) with a Monitor on ``u``, ``v`` and ``s_out`` of every LIF, and converted with
``from_lava``; the emulator must reproduce every recorded value bit for bit. Cases: Dense
chains (3 LIF layers), Conv chains (Conv -> LIF -> Conv -> LIF -> flatten -> Dense -> LIF, with
stride / padding / dilation / groups / transpose ports / several inputs into one LIF), binary
and graded messages, a case built to hit the u wrap and the v clip, and one that overflows
lava's int32 arithmetic. Wrong variants of the neuron (du instead of du + 1, >= instead of >,
no wrap, no clip) must fail the comparison, and a batched run must equal separate runs.
Unit tests compare the pure functions with lava's own numpy code on random values.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.conv import utils as lava_conv_utils  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.models import PyLifModelBitAcc  # noqa: E402
from lava.proc.lif.process import LIF, LIFReset  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402
from lava.utils import weightutils as wu  # noqa: E402

from snnsim.loihi import fixed_point as fp  # noqa: E402
from snnsim.loihi import from_lava  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.usefixtures("one_thread")]

T = 60          # steps per lava run
M = 1 << 23
BACKENDS = ["torch", "fused", "compiled"]   # torch ops; a numba pass per LIF; the whole run in numba


# --------------------------------------------------------------------------- lava harness
def run_lava(lifs, num_steps=T):
    """Run the network of ``lifs`` in lava with Monitors on u, v, s_out of each LIF."""
    mons = []
    for lif in lifs:
        for target in (lif.u, lif.v, lif.s_out):
            m = Monitor()
            m.probe(target, num_steps)
            mons.append((lif.name, target.name, m))
    runner = lifs[0]
    runner.run(condition=RunSteps(num_steps=num_steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        out = {}
        for lname, vname, m in mons:
            data = np.asarray(m.get_data()[lname][vname])
            out.setdefault(lname, {})["s" if vname == "s_out" else vname] = data
    finally:
        runner.stop()
    return out


def compare(emu, ref, what=""):
    """Assert the emulator's records equal lava's bit for bit (with a useful message)."""
    assert set(emu) == set(ref), (set(emu), set(ref))
    for name in ref:
        for key in ("u", "v", "s"):
            a, b = np.asarray(emu[name][key]), np.asarray(ref[name][key])
            assert a.shape == b.shape, (what, name, key, a.shape, b.shape)
            assert np.all(b == np.round(b)), "lava records integers"
            if not np.array_equal(a.astype(np.int64), b.astype(np.int64)):
                bad = np.argwhere(a.astype(np.int64) != b.astype(np.int64))
                t = int(bad[0][0])
                raise AssertionError(f"{what}: {name}.{key} differs first at step {t + 1} "
                                     f"({len(bad)} values): emulator {a[t].ravel()[:8]} lava {b[t].ravel()[:8]}")


def mismatch(emu, ref) -> bool:
    try:
        compare(emu, ref)
    except AssertionError:
        return True
    return False


def lif_params(rng, shape):
    return dict(du=int(rng.choice([0, 1, 37, 410, 1500, 4095])),
                dv=int(rng.choice([0, 3, 120, 900, 4095])),
                vth=int(rng.integers(2, 90)),
                bias_mant=rng.integers(-60, 60, size=shape),
                bias_exp=rng.integers(0, 4, size=shape),
                u=rng.integers(-3000, 3000, size=shape),
                v=rng.integers(-3000, 3000, size=shape))


# --------------------------------------------------------------------------- network cases
def build_dense_chain(seed):
    """RingBuffer -> (Dense -> LIF) x 3, random sizes, sign modes, weight_exp, weight bits."""
    rng = np.random.default_rng(seed)
    graded = seed % 3 == 1
    sizes = [int(rng.integers(8, 14))] + [int(rng.integers(5, 11)) for _ in range(3)]
    period = int(rng.integers(7, 40))  # shorter than T: the ring wraps around
    if graded:
        data = rng.integers(-20, 60, size=(sizes[0], period)) * (rng.random((sizes[0], period)) < 0.5)
    else:
        data = (rng.random((sizes[0], period)) < 0.35).astype(np.int64)
    src = RingBuffer(data=data)
    prev, lifs = src.s_out, []
    for i in range(3):
        n_in, n_out = sizes[i], sizes[i + 1]
        kw = dict(weight_exp=int(rng.integers(-2, 3)), num_weight_bits=int(rng.choice([5, 6, 7, 8])))
        if i == 0 and seed % 3 == 2:   # float weights are truncated to int32 by lava
            w = rng.uniform(-300, 300, size=(n_out, n_in))
        elif i == 1 and seed % 3 == 0:
            w = -rng.integers(0, 280, size=(n_out, n_in))
            kw["sign_mode"] = wu.SignMode.INHIBITORY
        elif i == 2 and seed % 3 == 0:
            w = rng.integers(0, 300, size=(n_out, n_in))   # excitatory, auto-detected
        else:
            w = rng.integers(-300, 300, size=(n_out, n_in))  # mixed, partly beyond [-256, 255]
        dense = Dense(weights=w, num_message_bits=8 if graded else 0, name=f"dense{seed}_{i}", **kw)
        lif = LIF(shape=(n_out,), name=f"lif{seed}_{i}", **lif_params(rng, (n_out,)))
        prev.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        prev, lifs = lif.s_out, lifs + [lif]
    if seed % 3 == 2:   # zero-delay paths: RingBuffer -> LIF and LIF -> LIF, no synapse between
        direct_src = LIF(shape=(sizes[0],), name=f"rb_lif{seed}", **lif_params(rng, (sizes[0],)))
        direct_lif = LIF(shape=(sizes[1],), name=f"lif_lif{seed}", du=100, dv=100, vth=0, bias_mant=-2)
        src.s_out.connect(direct_src.a_in)
        lifs[0].s_out.connect(direct_lif.a_in)
        lifs += [direct_src, direct_lif]
    return lifs, src


def build_conv_chain(seed):
    """RingBuffer (X, Y, C) -> Conv -> LIF -> Conv -> LIF -> flatten -> Dense -> LIF."""
    rng = np.random.default_rng(100 + seed)
    variants = [
        dict(shape=(7, 6, 2), k1=(3, 2), c1=4, s1=(1, 2), p1=(1, 0), d1=(1, 1), g1=2,
             k2=(2, 3), c2=3, s2=1, p2=(0, 1), d2=(2, 1), g2=1, transpose=False, graded=False, side=True),
        dict(shape=(6, 8, 3), k1=(2, 2), c1=3, s1=1, p1=1, d1=(1, 2), g1=3,
             k2=(3, 3), c2=2, s2=(2, 1), p2=1, d2=1, g2=1, transpose=True, graded=True, side=False),
        dict(shape=(8, 5, 2), k1=(3, 3), c1=4, s1=(2, 1), p1=(2, 1), d1=1, g1=1,
             k2=(1, 2), c2=4, s2=1, p2=0, d2=1, g2=2, transpose=False, graded=False, side=False),
    ]
    cfg = variants[seed % len(variants)]
    X, Y, C = cfg["shape"]
    period = int(rng.integers(9, 45))
    if cfg["graded"]:
        data = rng.integers(0, 6, size=(X, Y, C, period)) * (rng.random((X, Y, C, period)) < 0.4)
    else:
        data = (rng.random((X, Y, C, period)) < 0.3).astype(np.int64)
    src = RingBuffer(data=data)
    w1 = rng.integers(-300, 300, size=(cfg["c1"],) + cfg["k1"] + (C // cfg["g1"],))
    conv1 = Conv(weight=w1, input_shape=(X, Y, C), stride=cfg["s1"], padding=cfg["p1"],
                 dilation=cfg["d1"], groups=cfg["g1"], num_message_bits=8 if cfg["graded"] else 0,
                 name=f"conv{seed}_1")
    lif1 = LIF(shape=conv1.output_shape, name=f"clif{seed}_1", **lif_params(rng, conv1.output_shape))
    src.s_out.connect(conv1.s_in)
    conv1.a_out.connect(lif1.a_in)
    if cfg["side"]:   # a second input into lif1: flattened source -> Dense -> reshape
        n_out = int(np.prod(conv1.output_shape))
        side = Dense(weights=rng.integers(-120, 120, size=(n_out, X * Y * C)), name=f"side{seed}")
        src.s_out.flatten().connect(side.s_in)
        side.a_out.reshape(conv1.output_shape).connect(lif1.a_in)
    shape1 = conv1.output_shape
    if cfg["transpose"]:
        in2 = (shape1[1], shape1[0], shape1[2])
        out1 = lif1.s_out.transpose([1, 0, 2])
    else:
        in2, out1 = shape1, lif1.s_out
    w2 = rng.integers(-300, 300, size=(cfg["c2"],) + cfg["k2"] + (in2[2] // cfg["g2"],))
    conv2 = Conv(weight=w2, input_shape=in2, stride=cfg["s2"], padding=cfg["p2"], dilation=cfg["d2"],
                 groups=cfg["g2"], name=f"conv{seed}_2")
    lif2 = LIF(shape=conv2.output_shape, name=f"clif{seed}_2", **lif_params(rng, conv2.output_shape))
    out1.connect(conv2.s_in)
    conv2.a_out.connect(lif2.a_in)
    n2 = int(np.prod(conv2.output_shape))
    dense = Dense(weights=rng.integers(-200, 256, size=(5, n2)), weight_exp=1, name=f"cdense{seed}")
    lif3 = LIF(shape=(5,), name=f"clif{seed}_3", **lif_params(rng, (5,)))
    lif2.s_out.flatten().connect(dense.s_in)
    dense.a_out.connect(lif3.a_in)
    return [lif1, lif2, lif3], src


def build_wrap_clip():
    """Drives u past +-2**23 (wrap), v onto +-(2**23 - 1) (clip), and v exactly onto the
    threshold (strict >), then feeds a normal spiking layer."""
    rng = np.random.default_rng(7)
    n_in = 16
    src = RingBuffer(data=(rng.random((n_in, 23)) < 0.8).astype(np.int64))
    # 6 neurons: rows 0-2 strongly excitatory, rows 3-5 strongly inhibitory
    w = np.concatenate([rng.integers(200, 256, size=(3, n_in)), -rng.integers(200, 256, size=(3, n_in))])
    d1 = Dense(weights=w, weight_exp=2, name="wc_dense1")
    # vth << 6 = 2**23: these never spike. Slow current decay: u ramps past +-2**23 and wraps.
    wrap = LIF(shape=(6,), du=12, dv=5, vth=1 << 17, name="wc_wrap")
    # Current decays at once (du = 4095): u = a_in << 6 stays in range, v runs into the clip.
    clip = LIF(shape=(6,), du=4095, dv=5, vth=1 << 17, name="wc_clip")
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(wrap.a_in)        # one OutPort feeding two LIFs
    d1.a_out.connect(clip.a_in)
    # no input, no voltage decay: v = 32, 64, 96, 128 = vth << 6 -> spikes one step later with >
    tick = LIF(shape=(4,), du=0, dv=0, vth=2, bias_mant=np.array([32, 16, 64, 8]), bias_exp=0, name="wc_tick")
    d2 = Dense(weights=rng.integers(-100, 256, size=(5, 4)), weight_exp=3, name="wc_dense2")
    d3 = Dense(weights=rng.integers(-100, 256, size=(5, n_in)), name="wc_dense3")
    out = LIF(shape=(5,), du=700, dv=300, vth=40, bias_mant=3, name="wc_out")
    tick.s_out.connect(d2.s_in)
    src.s_out.connect(d3.s_in)
    d2.a_out.connect(out.a_in)
    d3.a_out.connect(out.a_in)
    return [wrap, clip, tick, out], src


def build_extreme():
    """Graded payloads large enough to overflow lava's int32 arithmetic: the Dense sum and its
    left shift, a_in << 6 in the LIF, the conv's 24-bit wrap and its float -> int32 cast."""
    rng = np.random.default_rng(11)
    n_in = 8
    src = RingBuffer(data=rng.integers(-20000, 20000, size=(n_in, 13)))
    d1 = Dense(weights=rng.integers(-256, 256, size=(6, n_in)), weight_exp=7, num_message_bits=16,
               name="x_dense1")
    l1 = LIF(shape=(6,), du=100, dv=50, vth=500, name="x_lif1")
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(l1.a_in)
    d2 = Dense(weights=rng.integers(-256, 256, size=(4, 6)), weight_exp=5, name="x_dense2")
    l2 = LIF(shape=(4,), du=3000, dv=10, vth=100, name="x_lif2")
    l1.s_out.connect(d2.s_in)
    d2.a_out.connect(l2.a_in)
    csrc = RingBuffer(data=rng.integers(-(1 << 20), 1 << 20, size=(5, 5, 2, 11)))
    conv = Conv(weight=rng.integers(-(1 << 12), 1 << 12, size=(3, 3, 3, 2)), input_shape=(5, 5, 2),
                padding=1, num_message_bits=24, name="x_conv")
    l3 = LIF(shape=(5, 5, 3), du=200, dv=200, vth=1000, name="x_lif3")
    csrc.s_out.connect(conv.s_in)
    conv.a_out.connect(l3.a_in)
    link = Dense(weights=rng.integers(-256, 256, size=(75, 4)), name="x_link")  # one connected graph
    l2.s_out.connect(link.s_in)
    link.a_out.reshape((5, 5, 3)).connect(l3.a_in)
    return [l1, l2, l3], src


@functools.lru_cache(maxsize=None)
def case(name):
    """(emulator network, lava records, LIF names) for a named case, built and run once."""
    kind, _, arg = name.partition(":")
    if kind == "dense":
        lifs, src = build_dense_chain(int(arg))
    elif kind == "conv":
        lifs, src = build_conv_chain(int(arg))
    elif kind == "wrapclip":
        lifs, src = build_wrap_clip()
    elif kind == "extreme":
        lifs, src = build_extreme()
    else:
        raise KeyError(name)
    net = from_lava(lifs[-1])          # any process of the graph will do
    assert set(from_lava(src, *lifs).nodes) == set(net.nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # numpy's cast warning in lava's conv
        ref = run_lava(lifs)
    return net, ref, src


# --------------------------------------------------------------------------- lava runs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_chain_bitexact(seed, backend):
    net, ref, _ = case(f"dense:{seed}")
    emu = net.run(T, backend=backend)
    compare(emu, ref, f"dense chain seed {seed}")
    assert len(ref) == (5 if seed % 3 == 2 else 3)
    for name, rec in ref.items():      # the layers are active, not silent
        assert rec["s"].sum() > 0, name
        assert np.abs(rec["u"]).max() > 0, name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_chain_bitexact(seed, backend):
    net, ref, _ = case(f"conv:{seed}")
    emu = net.run(T, backend=backend)
    compare(emu, ref, f"conv chain seed {seed}")
    assert len(ref) == 3
    for name, rec in ref.items():
        assert rec["s"].sum() > 0, name
    kinds = sorted(type(n).__name__ for n in net.nodes.values())
    assert kinds.count("ConvLayer") == 2 and kinds.count("LIFPopulation") == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrap_and_clip_bitexact(backend):
    net, ref, _ = case("wrapclip")
    compare(emu := net.run(T, backend=backend), ref, "wrap/clip")
    u = ref["wc_wrap"]["u"].astype(np.int64)
    v = ref["wc_clip"]["v"].astype(np.int64)
    # the clip happened, both ways
    assert (v == M - 1).any() and (v == -(M - 1)).any()
    # the u wrap happened: a jump of about 2**24 between consecutive steps, both ways
    du = np.diff(u, axis=0)
    assert (du < -(M + (M >> 1))).any() and (du > M + (M >> 1)).any()
    # v landed exactly on vth << 6 = 128 without spiking (strict >)
    tick = ref["wc_tick"]
    hit = tick["v"] == 128
    assert hit.any() and not tick["s"][hit].any()
    assert emu["wc_out"]["s"].sum() > 0


def test_int32_overflow_bitexact(monkeypatch):
    net, ref, _ = case("extreme")
    for backend in BACKENDS:
        compare(net.run(T, backend=backend), ref, f"int32 overflow ({backend})")
    for name in ref:
        assert ref[name]["s"].sum() > 0, name
    # the int32 wrapping really mattered: without it the run differs
    monkeypatch.setattr(fp, "wrap32", lambda x: x)
    assert mismatch(net.run(T, backend="torch"), ref)


# --------------------------------------------------------------------------- wrong variants
def ref_lif_step(u, v, a_in, du, dv, bias, vth_eff, exact_int32=True, *, du_offset=1, strict=True,
                 wrap=True, clip=True):
    """An independent re-statement of specs/loihi.md (int64, no int32 effects), with knobs."""
    u, v = u.to(torch.int64), v.to(torch.int64)

    def rtz(x):
        return torch.sign(x) * (x.abs() >> 12)
    u = rtz(u * (4096 - (du + du_offset)))
    if a_in is not None:
        u = u + (a_in.to(torch.int64) << 6)
    if wrap:
        u = torch.where(u > M, u - 2 * M, torch.where(u <= -M, u + 2 * M, u))
    v = rtz(v * (4096 - dv)) + u + bias
    if clip:
        v = v.clamp(-(M - 1), M - 1)
    s = v > vth_eff if strict else v >= vth_eff
    v = torch.where(s, torch.zeros_like(v), v)
    return u, v, s


WRONG = {
    "du instead of du+1": dict(du_offset=0),
    ">= instead of >": dict(strict=False),
    "no u wrap": dict(wrap=False),
    "no v clip": dict(clip=False),
}


def test_reference_restatement_matches_lava(monkeypatch):
    """The test's own knob-able restatement, with the right knobs, agrees with lava."""
    net, ref, _ = case("wrapclip")
    monkeypatch.setattr(fp, "lif_fixed_step", ref_lif_step)
    compare(net.run(T, backend="torch"), ref, "restatement")


@pytest.mark.parametrize("variant", sorted(WRONG))
def test_wrong_variant_fails(monkeypatch, variant):
    net, ref, _ = case("wrapclip")
    knobs = WRONG[variant]
    monkeypatch.setattr(fp, "lif_fixed_step", functools.partial(ref_lif_step, **knobs))
    assert mismatch(net.run(T, backend="torch"), ref), f"the variant '{variant}' should not match lava"


# --------------------------------------------------------------------------- batching
@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_run_equals_separate_runs(backend):
    net, ref, src = case("conv:0")
    rng = np.random.default_rng(5)
    data0 = np.asarray(src.data.init)
    batch = [data0] + [(rng.random(data0.shape) < p).astype(np.int64) for p in (0.1, 0.3, 0.6)]
    name = src.name
    out = net.run(T, inputs={name: np.stack(batch)}, backend=backend)
    for key in ("u", "v", "s"):
        for lif in ref:
            assert out[lif][key].shape == (len(batch), T) + ref[lif][key].shape[1:]
    # sample 0 is the lava run's own input
    compare({k: {kk: vv[0] for kk, vv in r.items()} for k, r in out.items()}, ref, "batch sample 0")
    for b, data in enumerate(batch):
        single = net.run(T, inputs={name: data}, backend="torch")
        for lif, rec in single.items():
            for key in ("u", "v", "s"):
                assert np.array_equal(out[lif][key][b], rec[key]), (b, lif, key)
    assert not np.array_equal(out[next(iter(ref))]["v"][1], out[next(iter(ref))]["v"][3])


# --------------------------------------------------------------------------- bridge errors
def test_from_lava_rejects_unknown_process():
    from lava.proc.rf.process import RF

    src = RingBuffer(data=np.ones((3, 4), dtype=np.int64))
    dense = Dense(weights=np.ones((2, 3), dtype=np.int64))
    odd = RF(shape=(2,), period=10, alpha=0.1, name="odd_one")
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(odd.a_real_in)
    with pytest.raises(TypeError, match="odd_one") as exc:
        from_lava(src)
    assert "lava.proc.rf.process.RF" in str(exc.value) and "lava.proc.sdn.process.SigmaDelta" in str(exc.value)
    # (a subclass of a supported process with a model of its own: test_loihi_processes)


# --------------------------------------------------------------------------- pure functions
def test_lif_step_matches_lava_model_on_random_values():
    """fixed_point.lif_fixed_step against lava's own PyLifModelBitAcc methods, including
    values that overflow lava's int32 arithmetic, over many random draws."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = 200
        m = PyLifModelBitAcc({})
        scale = [1 << 10, 1 << 17, 1 << 24, 1 << 30][trial % 4]
        m.u = rng.integers(-(M), M + 1, size=n).astype(np.int32)
        m.v = rng.integers(-(M), M, size=n).astype(np.int32)
        m.du = int(rng.integers(0, 4096))
        m.dv = int(rng.integers(0, 4097))
        m.bias_mant = rng.integers(-4096, 4096, size=n).astype(np.int16)
        m.bias_exp = rng.integers(-3, 8, size=n).astype(np.int16)
        m.vth = int(rng.integers(0, 1 << 17))
        a_in = rng.integers(-scale, scale, size=n).astype(np.int32)
        u0, v0 = torch.from_numpy(m.u.astype(np.int64)), torch.from_numpy(m.v.astype(np.int64))
        m.scale_bias()
        m.scale_threshold()
        m.subthr_dynamics(activation_in=a_in)
        s = m.spiking_activation()
        m.reset_voltage(s)
        bias = fp.effective_bias(torch.from_numpy(m.bias_mant.astype(np.int64)),
                                 torch.from_numpy(m.bias_exp.astype(np.int64)))
        fast = scale < (1 << 18)
        a_t = torch.from_numpy(a_in.astype(np.int64))
        for exact in ([True, False] if fast else [True]):
            u, v, sp = fp.lif_fixed_step(u0, v0, a_t, m.du, m.dv, bias, m.vth << 6, exact_int32=exact)
            assert np.array_equal(u.numpy(), m.u), (trial, exact)
            assert np.array_equal(v.numpy(), m.v), (trial, exact)
            assert np.array_equal(sp.numpy(), s), (trial, exact)
            if fp.lif_fused_kernel() is not None:
                uf, vf = u0.to(torch.int32), v0.to(torch.int32)
                sf = fp.lif_fused_step(uf, vf, a_t, m.du, m.dv, bias, m.vth << 6, exact_int32=exact)
                assert np.array_equal(uf.numpy(), m.u) and np.array_equal(vf.numpy(), m.v), (trial, exact)
                assert np.array_equal(sf.numpy(), s), (trial, exact)


@pytest.mark.parametrize("mode", [None, "MIXED", "EXCITATORY", "INHIBITORY", "NULL"])
def test_weight_quantisation_matches_lava(mode):
    rng = np.random.default_rng(1)
    for nwb in range(1, 9):
        for lo, hi in [(-400, 400), (0, 300), (-300, 1), (-3, 4)]:
            w = rng.integers(lo, hi, size=(7, 9))
            sm = getattr(wu.SignMode, mode) if mode else wu.determine_sign_mode(w)
            lava_w = wu.truncate_weights(wu.clip_weights(w, sm, num_bits=8), sm, nwb)
            ours = fp.quantize_dense_weights(w, sm if mode else None, nwb)
            assert np.array_equal(ours.numpy(), lava_w), (mode, nwb, lo, hi)
    # the spec's examples: mixed-sign 8-bit weights are floored to even values
    assert fp.quantize_dense_weights(np.array([[3, -3, 255, -300]])).tolist() == [[2, -4, 254, -256]]


def test_dense_shift_floor_and_graded():
    w = torch.tensor([[3, -5, 7], [-8, 2, 1]])
    s = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.bool)
    assert fp.dense_fixed(w, s, weight_exp=-1).tolist() == [[5, -4], [2, -3]]  # floor: -7 >> 1 = -4
    assert fp.dense_fixed(w, s, weight_exp=2).tolist() == [[40, -28], [20, -20]]
    g = torch.tensor([[2, -1, 3]])
    assert fp.dense_fixed(w, g, graded=True).tolist() == [[32, -15]]
    assert fp.dense_fixed(w, g, graded=False).tolist() == [[5, -5]]


def test_conv_matches_lava_utils():
    """fixed_point.conv_lava against lava's own scipy convolution + 24-bit clamp."""
    rng = np.random.default_rng(2)
    cases = [((6, 5, 2), 4, (3, 2), (1, 2), (1, 0), (1, 1), 2, 0),
             ((7, 7, 3), 3, (2, 3), (2, 1), (0, 2), (2, 1), 3, 1),
             ((5, 8, 4), 2, (1, 1), 1, 0, 1, 1, 1),
             ((6, 6, 2), 2, (3, 3), 1, 1, 1, 1, 2)]
    for shape, c_out, k, stride, pad, dil, groups, mag in cases:
        hi = [2, 40, 1 << 22][mag]
        x = rng.integers(-hi if mag else 0, hi, size=shape)
        w = rng.integers(-(1 << 12) if mag == 2 else -300, (1 << 12) if mag == 2 else 300,
                         size=(c_out,) + k + (shape[2] // groups,)).astype(np.int32)
        ks, st, pd, dl = (np.array(lava_conv_utils.make_tuple(a)) for a in (k, stride, pad, dil))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lava_out = lava_conv_utils.signed_clamp(
                lava_conv_utils.conv(x.astype(np.int32) if mag else x.astype(bool), w, ks, st, pd, dl, groups), 24)
        ours = fp.conv_lava(torch.from_numpy(x)[None], torch.from_numpy(w.astype(np.int64)), stride, pad, dil,
                            groups, graded=bool(mag))[0]
        assert np.array_equal(ours.numpy(), lava_out), (shape, k, stride, pad, dil, groups, mag)


def test_rtz_and_wraps():
    x = torch.tensor([-8193, -4097, -4096, -4095, -1, 0, 1, 4095, 4096, 8191])
    assert fp.rtz(x).tolist() == [-2, -1, -1, 0, 0, 0, 0, 0, 1, 1]
    y = torch.tensor([M - 1, M, -M - 1, -M, 1 << 31, -(1 << 31) - 1])
    assert fp.wrap24(y).tolist() == [M - 1, -M, M - 1, -M, 0, -1]
    assert fp.wrap32(torch.tensor([1 << 31, -(1 << 31) - 1, 5])).tolist() == [-(1 << 31), (1 << 31) - 1, 5]


def test_dense_from_few_events_equals_the_full_product():
    """Samples with few nonzero inputs sum only those inputs' weight rows (as an event-driven
    chip does): the same buffer as lava's full product (numpy int32 dot, the shift, the int32
    channel), one sample or several, binary and graded, exact-float and int64 plans, every
    weight exponent sign."""
    rng = np.random.default_rng(5)
    for trial in range(36):
        n_in, n_out = int(rng.integers(40, 300)), int(rng.integers(5, 60))
        w = rng.integers(-256, 256, size=(n_out, n_in))
        graded = bool(trial % 2)
        big = trial % 3 == 0
        batch = 1 if trial % 4 < 2 else 3
        s = np.zeros((batch, n_in), dtype=np.int64)
        idx = rng.choice(n_in, size=int(rng.integers(0, n_in // fp.EVENT_SHARE // batch + 1)), replace=False)
        for b in range(batch):
            s[b, idx] = rng.integers(-(1 << 28) if big else -90, (1 << 28) if big else 90, size=len(idx)) \
                if graded else rng.integers(0, 2, size=len(idx))
        we = int(rng.integers(-3, 4))
        plan = fp.prepare_dense(torch.as_tensor(w), int(np.abs(s).max()) if graded else 1)
        got = fp.dense_apply(torch.as_tensor(s), plan, we, graded).numpy()
        acc = (s.astype(np.int32) if graded else (s != 0).astype(np.int32)) @ w.T.astype(np.int32)  # numpy int32 dot
        acc = acc.astype(np.int64)
        acc = (acc << we) if we > 0 else (acc >> -we)
        want = acc.astype(np.int32) if graded else acc                                    # int32 shift / channel
        want = want.astype(np.int32).astype(np.int64)
        assert np.array_equal(got, want), (trial, graded, we, batch)
    assert fp._event_sums(torch.ones(1, 16), fp.prepare_dense(torch.ones(3, 16, dtype=torch.int64), 1)) is None


def test_sparse_product_equals_the_full_product():
    """Weights with few nonzeros (lava's Sparse) also get a CSR product for several samples at
    once: the same buffer as the full int32 product, binary and graded, negative inputs too."""
    rng = np.random.default_rng(9)
    for trial in range(16):
        n_in, n_out = int(rng.integers(30, 200)), int(rng.integers(5, 80))
        w = rng.integers(-256, 256, size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.1)
        graded = bool(trial % 2)
        s = rng.integers(-500, 500, size=(3, n_in)) if graded else (rng.random((3, n_in)) < 0.5).astype(np.int64)
        we = int(rng.integers(-2, 3))
        plan = fp.prepare_dense(torch.as_tensor(w), int(np.abs(s).max()) if graded else 1, sparse=True)
        assert "csr" in plan
        got = fp.dense_apply(torch.as_tensor(s), plan, we, graded).numpy()
        acc = (s.astype(np.int32) if graded else (s != 0).astype(np.int32)) @ w.T.astype(np.int32)
        acc = acc.astype(np.int64)
        want = ((acc << we) if we > 0 else (acc >> -we)).astype(np.int32).astype(np.int64)
        assert np.array_equal(got, want), (trial, graded, we)
    assert "csr" not in fp.prepare_dense(torch.ones(4, 4, dtype=torch.int64), 1, sparse=True)
