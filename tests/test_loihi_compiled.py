"""The emulator's whole-run compiled backend (snnsim.loihi.compiled) against lava-nc 0.10.0
fixed_pt runs, every step: random networks of every node it covers (RingBuffer / SpikeDataloader
sources, LIF and LIFReset, Dense, Sparse, Conv with strides, dilations, groups and padding,
transposing and reshaping ports, recurrent edges and several inputs, graded messages, weight
exponents, int32 wraps), a network lava already ran, batches; deliberately wrong variants must
fail; what it does not cover is refused by name, and 'auto' leaves it to the other backends."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava")
pytest.importorskip("numba")

from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.dataloader import SpikeDataloader  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIF, LIFReset, TernaryLIF  # noqa: E402
from lava.proc.sparse.process import Sparse  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402

from snnsim.loihi import compiled, from_lava  # noqa: E402
from test_loihi_processes import Samples, _differs, _lava_records, _lava_run, _lif, conv_front  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.usefixtures("one_thread")]

STEPS = 30


def _synapse(rng, n_out, n_in, name, wide=False):
    """A Dense or Sparse of random signs, graded or binary, with a weight exponent; ``wide``:
    weights and exponents that overflow int32 sums (the wrap cases)."""
    hi = 255 if wide else 150
    w = rng.integers(-hi, hi, size=(n_out, n_in))
    kw = dict(num_message_bits=8 if rng.random() < 0.5 or wide else 0, name=name,
              weight_exp=int(rng.integers(2, 7)) if wide else int(rng.integers(-2, 3)))
    if rng.random() < 0.4:
        return Sparse(weights=csr_matrix(w * (rng.random(w.shape) < 0.5)), **kw)
    return Dense(weights=w, **kw)


def compiled_network(seed: int):
    """A random lava graph of the covered processes: (populations, source). Every second seed
    has a convolutional front (3-D graded RingBuffer -> Conv with random stride, dilation,
    padding and groups -> 3-D LIF -> a transposing port -> a second Conv -> 3-D LIF -> a
    reshaping port onward); every third seed is fed by a SpikeDataloader; every fourth carries
    graded values large enough for the int32 wraps (a RingBuffer of values up to 2**15 into a
    wide synapse)."""
    rng = np.random.default_rng(3000 + seed)
    n_in = int(rng.integers(6, 13))
    wide = seed % 4 == 3
    if seed % 3 == 2:
        src = SpikeDataloader(dataset=Samples(n_in, rng), interval=int(rng.integers(3, 8)),
                              offset=int(rng.integers(0, 9)))
    else:
        top = 1 << 15 if wide else 8
        src = RingBuffer(data=rng.integers(-top, top, size=(n_in, int(rng.integers(5, 20))))
                         * (rng.random((n_in, 1)) < 0.7))
    senders = [(src.s_out, n_in)]
    pops = []
    if seed % 2 == 0:
        groups = int(rng.choice([1, 2]))
        c_in, c_mid = 2 * groups, 2 * groups
        img = RingBuffer(data=rng.integers(-3, 5, size=(5, 4, c_in, 11)) * (rng.random((5, 4, c_in, 11)) < 0.6))
        stride, dilation, padding = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
        conv1 = Conv(weight=rng.integers(-90, 120, size=(c_mid, 3, 2, c_in // groups)), input_shape=(5, 4, c_in),
                     padding=(1, padding), stride=(1, stride), dilation=(dilation, 1), groups=groups,
                     num_message_bits=8, name=f"k{seed}_conv1")
        shape1 = conv1.a_out.shape
        front1 = LIF(shape=shape1, vth=int(rng.integers(10, 40)), name=f"k{seed}_front1", du=500, dv=300)
        img.s_out.connect(conv1.s_in)
        conv1.a_out.connect(front1.a_in)
        shape_t = (shape1[1], shape1[0], shape1[2])            # (Y, X, C): through a transposing port
        conv2 = Conv(weight=rng.integers(-60, 140, size=(3, 2, 2, shape1[2])), input_shape=shape_t, padding=1,
                     name=f"k{seed}_conv2")
        front1.s_out.transpose(axes=[1, 0, 2]).connect(conv2.s_in)
        front2 = LIF(shape=conv2.a_out.shape, vth=int(rng.integers(5, 30)), name=f"k{seed}_front2", du=900, dv=100)
        conv2.a_out.connect(front2.a_in)
        size2 = int(np.prod(conv2.a_out.shape))
        senders.append((front2.s_out.reshape(new_shape=(size2,)), size2))
        pops += [front1, front2]
    forced = list(range(1, len(senders)))
    for i in range(int(rng.integers(3, 6))):
        n = int(rng.integers(4, 10))
        params = dict(shape=(n,), name=f"k{seed}_{i}", **_lif(rng, n))
        if rng.random() < 0.4:
            p = LIFReset(vth=int(rng.integers(10, 60)), reset_interval=int(rng.integers(2, 9)),
                         reset_offset=int(rng.integers(0, 12)), **params)
        else:
            p = LIF(vth=int(rng.integers(10, 60)), **params)
        # the fronts feed the first populations, the source and the last front the next one (one
        # lava graph); then every population hears an earlier sender
        if i < len(forced):
            picks = [forced[i]]
        elif i == len(forced):
            picks = [0, len(senders) - 1] if forced else [0]
        else:
            picks = [int(rng.integers(0, len(senders)))]
        if rng.random() < 0.5:
            picks.append(int(rng.integers(0, len(senders))))
        if i >= 1 and rng.random() < 0.3:
            picks.append(-1)                                    # recurrent
        for j, pick in enumerate(picks):
            out, n_src = (p.s_out, n) if pick == -1 else senders[pick]
            syn = _synapse(rng, n, n_src, f"k{seed}_{i}_{j}", wide=wide and pick == 0)
            out.connect(syn.s_in)
            syn.a_out.connect(p.a_in)
        pops.append(p)
        senders.append((p.s_out, n))
    return pops, src


SEEDS = range(8)


def test_the_random_networks_are_compiled_and_mix_every_covered_kind():
    kinds, graded, wrapped, transposed = set(), False, False, False
    for seed in SEEDS:
        pops, _ = compiled_network(seed)
        net = from_lava(pops[-1])
        assert compiled.unsupported(net) is None, seed
        kinds |= {type(n).__name__ for n in net.nodes.values()}
        graded |= any(getattr(n, "graded", False) for n in net.nodes.values())
        # the int32 channel wraps: a synapse whose sums, shifted, can leave int32 (the input's bounds)
        bounds = net._bounds({n.name: n.series(1).unsqueeze(0) for n in net.nodes.values() if hasattr(n, "series")})
        wrapped |= any(type(n).__name__ in ("DenseLayer", "SparseLayer") and
                       (n.acc_bound(sum(bounds[c.src.name] for c in net.inputs_of(n))) << max(n.weight_exp, 0))
                       > 2 ** 31 for n in net.nodes.values())
        transposed |= any(op == "transpose" for n in net.nodes.values() for c in net.inputs_of(n)
                          for op, _ in c.transforms)
    assert {"LIFPopulation", "LIFResetPopulation", "DenseLayer", "SparseLayer", "ConvLayer", "RingBufferSource",
            "SpikeDataloaderSource"} <= kinds, kinds
    assert graded and wrapped and transposed


@pytest.mark.parametrize("seed", SEEDS)
def test_random_networks_compiled_bitexact_every_step(seed):
    pops, _ = compiled_network(seed)
    before = from_lava(pops[-1])
    ref = _lava_records(pops, steps=STEPS)
    after = from_lava(pops[-1])
    for net in (before, after):
        emu = net.run(STEPS, backend="compiled")
        assert net.last_backend == "compiled"
        assert _differs(emu, ref) is None, f"seed {seed}: {_differs(emu, ref)} differs from lava"
    emu = before.run(STEPS)                         # small convs: 'auto' runs it compiled too
    assert before.last_backend == "compiled" and _differs(emu, ref) is None
    assert sum(int(r["s"].sum()) for r in ref.values()) > 0


def _tampered(net, how):
    if how == "du+1":
        lif = next(n for n in net.nodes.values() if type(n).__name__ == "LIFPopulation")
        lif.du += 1
    elif how == "weight_exp+1":
        syn = next(n for n in net.nodes.values() if type(n).__name__ in ("DenseLayer", "SparseLayer"))
        syn.weight_exp += 1
    elif how == "reset phase":
        reset = next(n for n in net.nodes.values() if type(n).__name__ == "LIFResetPopulation")
        reset.reset_offset = (reset.reset_offset + 1) % reset.reset_interval
    elif how == "transpose dropped":
        conn = next(c for n in net.nodes.values() for c in net.inputs_of(n)
                    if any(op == "transpose" for op, _ in c.transforms))
        conn.transforms = tuple(t for t in conn.transforms if t[0] != "transpose")
    return net


@pytest.mark.parametrize("how", ["du+1", "weight_exp+1", "reset phase", "transpose dropped"])
def test_wrong_variants_fail(how):
    seed = 0
    pops, _ = compiled_network(seed)
    ref = _lava_records(pops, steps=STEPS)
    assert any(type(n).__name__ == "LIFResetPopulation" for n in from_lava(pops[-1]).nodes.values())
    net = _tampered(from_lava(pops[-1]), how)
    assert _differs(net.run(STEPS, backend="compiled"), ref) is not None, how


def test_a_batch_runs_each_sample_as_if_alone():
    pops, src = compiled_network(4)
    net = from_lava(pops[-1])
    rng = np.random.default_rng(9)
    data = np.asarray(src.data.init)
    batch = np.stack([data] + [rng.integers(-8, 8, size=data.shape) * (rng.random(data.shape) < p)
                               for p in (0.2, 0.6, 0.9)])
    out = net.run(STEPS, inputs={src.name: batch}, backend="compiled")
    assert net.last_backend == "compiled"
    for b in range(len(batch)):
        single = net.run(STEPS, inputs={src.name: batch[b]}, backend="torch")
        for name, rec in single.items():
            for key in ("u", "v", "s"):
                assert np.array_equal(out[name][key][b], rec[key]), (b, name, key)
    first = next(iter(out))
    assert not np.array_equal(out[first]["v"][1], out[first]["v"][2])


def test_a_network_lava_already_ran_continues_compiled():
    """lava runs 9 steps, a v is set, lava runs 12 more; from_lava in between (steps done: 9)
    carries the RingBuffer's and the LIFReset's phase and the Dense / Conv buffers lava holds:
    the compiled run's 12 steps equal lava's; one step of phase off must differ."""
    rng = np.random.default_rng(31)
    rb = RingBuffer(data=rng.integers(-4, 7, size=(7, 5)) * (rng.random((7, 5)) < 0.7))
    d1 = Dense(weights=rng.integers(-90, 140, size=(6, 7)), num_message_bits=8, name="cc_d1")
    p1 = LIFReset(shape=(6,), vth=40, reset_interval=4, reset_offset=3, name="cc_p1", **_lif(rng, 6))
    img, p2 = conv_front(rng, p1, 6, 7, "cc_", "cc_p2")
    rb.s_out.connect(d1.s_in)
    d1.a_out.connect(p1.a_in)
    first, second = 9, 12

    def between(done):
        p1.v.set(rng.integers(-300, 300, size=(6,)).astype(np.float64))
        return from_lava(rb, img, steps_done=done), from_lava(rb, img, steps_done=done + 1)

    ref, (net, off), _ = _lava_run([p1, p2], second, before=first, between=between)
    assert net.nodes["cc_d1"].initial_buffer is not None
    assert _differs(net.run(second, backend="compiled"), ref) is None
    assert all(r["s"].any() for r in ref.values())
    assert _differs(off.run(second, backend="compiled"), ref) is not None


def test_what_it_does_not_cover_is_refused_by_name_and_auto_goes_elsewhere():
    src = RingBuffer(data=np.ones((3, 4), dtype=np.int64))
    dense = Dense(weights=np.full((3, 3), 30), name="to_ternary")
    tern = TernaryLIF(shape=(3,), vth_hi=20, vth_lo=-20, name="tern")
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(tern.a_in)
    net = from_lava(src)
    with pytest.raises(RuntimeError, match="backend='compiled': TernaryLIFPopulation\\('tern'.*is not compiled"):
        net.run(4, backend="compiled")
    net.run(4)
    assert net.last_backend == "torch"


def test_auto_leaves_a_large_conv_to_the_dense_convolution_and_both_agree():
    rng = np.random.default_rng(2)
    img = RingBuffer(data=(rng.random((12, 12, 4, 6)) < 0.3).astype(np.int64))
    conv = Conv(weight=rng.integers(-40, 60, size=(8, 3, 3, 4)), input_shape=(12, 12, 4), padding=1, name="big")
    lif = LIF(shape=(12, 12, 8), vth=30, du=200, dv=100, name="big_lif")
    img.s_out.connect(conv.s_in)
    conv.a_out.connect(lif.a_in)
    net = from_lava(img)
    assert 12 * 12 * 8 > compiled.CONV_OUTPUTS_AUTO
    auto = net.run(8)
    assert net.last_backend == "fused"
    forced = net.run(8, backend="compiled")
    assert net.last_backend == "compiled"
    for key in ("u", "v", "s"):
        assert np.array_equal(auto["big_lif"][key], forced["big_lif"][key]), key
    assert auto["big_lif"]["s"].any()


# --------------------------------------------------------------------------- what a run keeps between runs
def _graded_chain(data, weights):
    from snnsim.loihi.emulator import DenseLayer, LIFPopulation, LoihiNetwork, RingBufferSource

    net = LoihiNetwork()
    net.add(RingBufferSource("in", data))
    net.add(DenseLayer("d", weights, num_message_bits=8))
    net.add(LIFPopulation("l", (np.shape(weights)[0],), vth=1))
    net.connect("in", "d")
    net.connect("d", "l")
    return net


@pytest.mark.parametrize("backend", ["torch", "fused", "compiled"])
def test_what_runs_keep_follows_the_data_and_weights_they_came_from(backend):
    """A run keeps what it derives from a source's data (extremes, time-major copy) and from
    weights (bounds, plans): changing the caller's array leaves the node's own copy alone,
    a new ``node.data`` or weights changed by a torch operation are seen, and every backend
    agrees with a network built afresh."""
    import torch

    arr = np.ones((1, 3), dtype=np.int64)
    net = _graded_chain(arr, [[3]])
    net.nodes["d"].weights = torch.tensor([[3]], dtype=torch.int32)   # (int32: a plan could be a view of it)
    first = net.run(3, backend=backend)["l"]["u"]
    arr[:] = 1000                                        # the caller's array: not the node's data
    assert int(net.nodes["in"].data.max()) == 1
    assert np.array_equal(net.run(3, backend=backend)["l"]["u"], first)
    net.nodes["in"].data = torch.full((1, 3), 1000, dtype=torch.int64)
    fresh = _graded_chain(np.full((1, 3), 1000), [[3]]).run(3, backend="torch")["l"]["u"]
    assert np.array_equal(net.run(3, backend=backend)["l"]["u"], fresh) and not np.array_equal(fresh, first)
    net.nodes["d"].weights.mul_(-1)                      # in place, through torch: its version moves
    fresh = _graded_chain(np.full((1, 3), 1000), [[-3]]).run(3, backend="torch")["l"]["u"]
    assert np.array_equal(net.run(3, backend=backend)["l"]["u"], fresh)


@pytest.mark.parametrize("backend", ["torch", "fused", "compiled"])
def test_zero_steps_record_nothing_on_every_backend(backend):
    out = _graded_chain(np.ones((2, 3), dtype=np.int64), [[3, 1]]).run(0, backend=backend)
    assert {k: v.shape for k, v in out["l"].items()} == {"u": (0, 1), "v": (0, 1), "s": (0, 1)}


def test_weights_beyond_int16_take_the_int32_rows():
    """8-bit lava weights are held as int16 rows; weights lava holds as they stand after a run
    (a Dense's set by Var.set(), a Conv's never quantised) may exceed it: those rows are int32,
    and both kinds agree with the torch backend in one network."""
    from snnsim.loihi import compiled as comp
    from snnsim.loihi.emulator import ConvLayer, DenseLayer, LIFPopulation, LoihiNetwork, RingBufferSource

    rng = np.random.default_rng(12)
    net = LoihiNetwork()
    net.add(RingBufferSource("img", (rng.random((4, 4, 2, 9)) < 0.5).astype(np.int64)))
    net.add(ConvLayer("big_conv", rng.integers(-40000, 40000, size=(3, 3, 3, 2)), (4, 4, 2), padding=1))
    net.add(LIFPopulation("p1", (4, 4, 3), vth=30000, du=400, dv=300))
    net.add(DenseLayer("big_dense", rng.integers(-50000, 50000, size=(5, 48)), quantized=True))
    net.add(DenseLayer("small_dense", rng.integers(-100, 100, size=(5, 48))))
    net.add(LIFPopulation("p2", (5,), vth=20000, du=100, dv=50))
    net.connect("img", "big_conv")
    net.connect("big_conv", "p1")
    for d in ("big_dense", "small_dense"):
        net.connect("p1", d, [("reshape", (48,))])
        net.connect(d, "p2")
    got, want = net.run(20, backend="compiled"), net.run(20, backend="torch")
    for name in want:
        for key in ("u", "v", "s"):
            assert np.array_equal(got[name][key], want[name][key]), (name, key)
    assert got["p1"]["s"].any() and got["p2"]["s"].any()
    held = {"big_conv": comp._conv_plan(net.nodes["big_conv"])["w"].dtype,
            **{n: comp._dense_plan(net.nodes[n])["w"].dtype for n in ("big_dense", "small_dense")}}
    assert held == {"big_conv": np.int32, "big_dense": np.int32, "small_dense": np.int16}, held
    assert comp.unsupported(net) is None


def test_the_speed_tables_addition_count_is_a_hand_count():
    """benchmarks/loihi_speed.py quotes additions per step to explain each row's floor: on a
    2 x 2 input, a 3 x 3 Conv (padding 1, 2 output channels) sends each active corner input to
    all 4 outputs x 2 channels (8 additions), a Dense of 3 outputs adds 3 per active input."""
    import importlib.util
    import pathlib

    from snnsim.loihi.emulator import ConvLayer, DenseLayer, LIFPopulation, LoihiNetwork, RingBufferSource, SparseLayer

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "loihi_speed.py"
    spec = importlib.util.spec_from_file_location("loihi_speed_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    net = LoihiNetwork()
    net.add(RingBufferSource("in", np.array([[[[1, 0]], [[0, 0]]], [[[0, 0]], [[0, 1]]]])))
    net.add(ConvLayer("c", np.ones((2, 3, 3, 1)), (2, 2, 1), padding=1))
    net.add(LIFPopulation("l", (2, 2, 2), vth=1, du=4095))
    net.add(DenseLayer("d", np.ones((3, 8))))
    net.add(LIFPopulation("l2", (3,), vth=1000))
    net.connect("in", "c")
    net.connect("c", "l")
    net.connect("l", "d", [("reshape", (8,))])
    net.connect("d", "l2")
    # a Sparse on the same input: column 0 (corner (0, 0), active at steps 1 and 3) holds 2
    # weights, column 3 (corner (1, 1), steps 2 and 4) 1: 2 * 2 + 2 * 1 additions over 4 steps
    net.add(SparseLayer("sp", np.array([[1, 0, 0, 1], [1, 1, 0, 0]])))
    net.add(LIFPopulation("l3", (2,), vth=1000))
    net.connect("in", "sp", [("reshape", (4,))])
    net.connect("sp", "l3")
    spikes = net.run(4, record=("s",))["l"]["s"].reshape(4, -1).sum(1)    # the LIF's spikes per step
    assert spikes.sum() > 0
    assert bench.synaptic_additions(net, 4) == (8 * 4 + 3 * spikes.sum() + 6) / 4

    # strided, dilated, grouped: brute force over every output and tap, by the convolution's definition
    rng = np.random.default_rng(5)
    data = (rng.random((7, 6, 4, 3)) < 0.4).astype(np.int64)
    conv = ConvLayer("g", np.ones((6, 3, 2, 2)), (7, 6, 4), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    net = LoihiNetwork()
    net.add(RingBufferSource("in", data))
    net.add(conv)
    net.add(LIFPopulation("l", conv.out_shape, vth=10 ** 6))
    net.connect("in", "g")
    net.connect("g", "l")
    (XO, YO, CO), hand = conv.out_shape, 0
    for t in range(3):
        for ox in range(XO):
            for oy in range(YO):
                for kx in range(3):
                    for ky in range(2):
                        x, y = ox * 2 - 1 + kx * 2, oy * 1 - 2 + ky
                        if 0 <= x < 7 and 0 <= y < 6:
                            for co in range(CO):
                                group = co // (CO // 2)
                                hand += int(data[x, y, group * 2:(group + 1) * 2, t].sum())
    assert hand > 0 and bench.synaptic_additions(net, 3) == hand / 3
