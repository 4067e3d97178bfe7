"""lava processes beyond LIF / Dense / Conv in the one emulator scheduler (issue 16): LIFReset,
TernaryLIF, Sparse, DelayDense, DelaySparse, Sigma, Delta, SigmaDelta (UNIT and RELU, with and
without cumulative error), SpikeDataloader and a LIF subclass that keeps LIF's process model,
each run in lava-nc 0.10.0 (fixed_pt) and in the emulator from `from_lava`, compared at every
step (every state variable lava records: u, v and s of a LIF, sigma / act / residue / error and
s of a sigma-delta neuron); a deliberately wrong variant of each must fail; a process lava itself
cannot run in fixed point is refused with that reason."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("lava")

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.dense.process import DelayDense, Dense  # noqa: E402
from lava.proc.io.dataloader import SpikeDataloader  # noqa: E402
from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed, PyLifModelBitAcc  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIF, LIFRefractory, LIFReset, TernaryLIF  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402
from lava.proc.sparse.process import DelaySparse, Sparse  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402

from snnsim.loihi import from_lava  # noqa: E402

pytestmark = [pytest.mark.lava, pytest.mark.usefixtures("one_thread")]

T = 40


class PlainSubLIF(LIF):
    """A user's LIF subclass run with LIF's fixed-point model, which the run config maps it to
    (lava's exception_proc_model_map; from_lava takes the same map)."""


MODEL_MAP = {PlainSubLIF: PyLifModelBitAcc}


class ChangedSubLIF(LIF):
    """A LIF subclass whose model changes the spiking rule: not LIF's behaviour."""


@implements(proc=ChangedSubLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyChangedSubLIFModel(AbstractPyLifModelFixed):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        return self.v >= self.effective_vth


def _named(proc, name: str):
    """lava's sigma-delta processes take no name argument: named afterwards (results are keyed
    by name)."""
    proc.name = name
    return proc


def _every_var(net):
    """Every state variable the network's populations can record."""
    return tuple(sorted({k for n in net.nodes.values() for k in n.state_keys} | {"u", "v", "s"}))


def _probed(p):
    """The state lava records of a population: a LIF's u and v, a sigma-delta neuron's
    sigma / act / residue / error (those it has), and what it sends."""
    if isinstance(p, (Sigma, Delta, SigmaDelta)):
        names = {Sigma: ("sigma",), Delta: ("act", "residue", "error")}.get(type(p), ("sigma", "act", "residue", "error"))
    else:
        names = ("u", "v")
    return [getattr(p, n) for n in names] + [p.s_out]


def _lava_run(pops, steps, *, before=0, between=None, read=None, model_map=None):
    """Run the lava network of ``pops`` (the first one runs it) with Monitors on every state
    `_probed` lists: ``before`` steps, then ``between(before)`` (it may set Vars or build the
    emulator), then ``steps`` more; ``read()`` runs before the runtime stops. Returns (records of
    the last ``steps`` steps, int64, {name: {key: array}}; between's result; read's result)."""
    mons = []
    for p in pops:
        for var in _probed(p):
            m = Monitor()
            m.probe(var, before + steps)
            mons.append((p.name, "s" if var is p.s_out else var.name, var.name, m))
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=model_map or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if before:
            pops[0].run(condition=RunSteps(num_steps=before), run_cfg=cfg)
        try:
            made = between(before) if between is not None else None
            pops[0].run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            ref: dict = {}
            for name, key, vname, m in mons:
                ref.setdefault(name, {})[key] = np.asarray(m.get_data()[name][vname]).astype(np.int64)[before:]
            return ref, made, (read() if read is not None else None)
        finally:
            pops[0].stop()


def _lava_records(pops, steps=T, model_map=None):
    return _lava_run(pops, steps, model_map=model_map)[0]


def _differs(emu, ref) -> str | None:
    for name, rec in ref.items():
        for key, want in rec.items():
            got = np.asarray(emu[name][key]).astype(np.int64)
            if got.shape != want.shape or not np.array_equal(got, want):
                return f"{name}.{key}"
    return None


def _lif(rng, n):
    return dict(du=int(rng.choice([0, 410, 1500])), dv=int(rng.choice([0, 120, 900])),
                bias_mant=rng.integers(-8, 20, size=(n,)), bias_exp=rng.integers(0, 3, size=(n,)),
                u=rng.integers(-500, 500, size=(n,)), v=rng.integers(-500, 500, size=(n,)))


class Samples:
    """A SpikeDataloader dataset: (data[..., time], label) items of several lengths (one shorter
    than the interval, one longer, one of floats lava truncates)."""

    def __init__(self, n: int, rng):
        self.items = [(rng.integers(-3, 5, size=(n, 3)), 0), ((rng.random((n, 9)) < 0.5).astype(np.int64), 1),
                      (rng.integers(-2, 3, size=(n, 5)) * 1.7, 2)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def build_new(kind: str, seed: int = 0):
    """(processes to monitor, their source) of a case of the delay, sigma-delta and dataloader
    processes."""
    rng = np.random.default_rng(seed + {"delay_dense": 40, "delay_sparse": 50, "sigma_delta": 60,
                                        "dataloader": 70}[kind])
    n_in, n1, n2 = 10, 8, 6
    if kind == "dataloader":   # interval 6, offset 8 (read as 8 % 6): every sample once, padded or cut
        src = SpikeDataloader(dataset=Samples(n_in, rng), interval=6, offset=8)
    else:
        src = RingBuffer(data=rng.integers(-6, 9, size=(n_in, 13)) * (rng.random((n_in, 13)) < 0.6))
    if kind in ("delay_dense", "delay_sparse"):
        # binary and graded, delays 0..4 with a buffer of depth 3 (delays 4 never arrive: lava
        # drops them), a negative weight exponent; then a delay-only synapse read by a LIF
        w1 = rng.integers(-120, 160, size=(n1, n_in))
        d1 = rng.integers(0, 5, size=(n1, n_in))
        w2 = rng.integers(-90, 130, size=(n2, n1))
        d2 = rng.integers(0, 4, size=(n2, n1))
        if kind == "delay_sparse":
            mask = rng.random(w1.shape) < 0.6
            s1 = DelaySparse(weights=csr_matrix(w1 * mask), delays=csr_matrix(d1 * mask), max_delay=3,
                             num_message_bits=8, weight_exp=-1, name="s1")
            s2 = DelaySparse(weights=csr_matrix(w2 * (rng.random(w2.shape) < 0.7)), delays=d2, name="s2")
        else:
            s1 = DelayDense(weights=w1, delays=d1, max_delay=3, num_message_bits=8, weight_exp=-1, name="s1")
            s2 = DelayDense(weights=w2, delays=d2, weight_exp=1, name="s2")
        p1 = LIF(shape=(n1,), vth=30, name="p1", **_lif(rng, n1))
        p2 = LIF(shape=(n2,), vth=45, name="p2", **_lif(rng, n2))
        src.s_out.connect(s1.s_in)
        s1.a_out.connect(p1.a_in)
        p1.s_out.connect(s2.s_in)
        s2.a_out.connect(p2.a_in)
        return [p1, p2], src
    if kind == "sigma_delta":
        # Sigma -> graded Dense -> SigmaDelta (RELU, cumulative error, scaled) -> graded Dense ->
        # Delta (plain) and SigmaDelta (UNIT) -> a LIF through a binary Dense
        sig = _named(Sigma(shape=(n_in,)), "sig")
        g1 = Dense(weights=rng.integers(-60, 90, size=(n1, n_in)), num_message_bits=16, name="g1")
        sd = _named(SigmaDelta(shape=(n1,), vth=3.3, bias=1.6, act_mode=ActivationMode.RELU, cum_error=True,
                               spike_exp=2, state_exp=3), "sd")
        g2 = Dense(weights=rng.integers(-40, 60, size=(n2, n1)), num_message_bits=16, weight_exp=-2, name="g2")
        dl = _named(Delta(shape=(n2,), vth=5, spike_exp=1), "dl")
        g3 = Dense(weights=rng.integers(-40, 60, size=(n2, n1)), num_message_bits=16, weight_exp=-3, name="g3")
        su = _named(SigmaDelta(shape=(n2,), vth=7, bias=-2, act_mode=ActivationMode.UNIT), "su")
        b4 = Dense(weights=rng.integers(-50, 120, size=(n2, n2)), name="b4")
        p4 = LIF(shape=(n2,), vth=40, name="p4", **_lif(rng, n2))
        src.s_out.connect(sig.a_in)
        sig.s_out.connect(g1.s_in)
        g1.a_out.connect(sd.a_in)
        sd.s_out.connect(g2.s_in)
        g2.a_out.connect(dl.a_in)
        sd.s_out.connect(g3.s_in)
        g3.a_out.connect(su.a_in)
        su.s_out.connect(b4.s_in)
        dl.s_out.connect(b4.s_in)
        b4.a_out.connect(p4.a_in)
        return [sig, sd, dl, su, p4], src
    d1 = Dense(weights=rng.integers(-120, 160, size=(n1, n_in)), num_message_bits=8, name="d1")
    p1 = LIF(shape=(n1,), vth=30, name="p1", **_lif(rng, n1))
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(p1.a_in)
    return [p1], src


def build(kind: str, seed: int = 0):
    """(processes to monitor, their source) of one case."""
    if kind in NEW_KINDS:
        return build_new(kind, seed)
    rng = np.random.default_rng(seed + {"reset": 0, "ternary": 10, "sparse": 20, "subclass": 30}[kind])
    n_in, n1, n2 = 12, 9, 7
    if kind == "ternary":
        data = rng.integers(-6, 9, size=(n_in, 17)) * (rng.random((n_in, 17)) < 0.6)
    else:
        data = (rng.random((n_in, 17)) < 0.4).astype(np.int64)
    src = RingBuffer(data=data)
    graded = kind == "ternary"
    d1 = Dense(weights=rng.integers(-120, 160, size=(n1, n_in)), num_message_bits=8 if graded else 0, name="d1")
    if kind == "reset":
        p1 = LIFReset(shape=(n1,), vth=30, reset_interval=6, reset_offset=8, name="p1", **_lif(rng, n1))
    elif kind == "ternary":
        p1 = TernaryLIF(shape=(n1,), vth_hi=40, vth_lo=-35, name="p1", **_lif(rng, n1))
    elif kind == "subclass":
        p1 = PlainSubLIF(shape=(n1,), vth=25, name="p1", **_lif(rng, n1))
    else:
        p1 = LIF(shape=(n1,), vth=25, name="p1", **_lif(rng, n1))
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(p1.a_in)
    pops = [p1]
    if kind == "sparse":   # binary and graded Sparse, with zeros stored and implicit, and weight_exp
        w = rng.integers(-200, 200, size=(n2, n1)) * (rng.random((n2, n1)) < 0.4)
        s2 = Sparse(weights=csr_matrix(w), weight_exp=1, name="s2")
        w3 = rng.integers(-90, 90, size=(n2, n_in)) * (rng.random((n2, n_in)) < 0.5)
        s3 = Sparse(weights=csr_matrix(w3), num_message_bits=8, num_weight_bits=6, name="s3")
        p2 = LIF(shape=(n2,), vth=60, name="p2", **_lif(rng, n2))
        p1.s_out.connect(s2.s_in)
        s2.a_out.connect(p2.a_in)
        src.s_out.connect(s3.s_in)
        s3.a_out.connect(p2.a_in)
    else:              # what the new population sends, read by a binary and a graded Dense
        p2 = LIF(shape=(n2,), vth=40, name="p2", **_lif(rng, n2))
        b2 = Dense(weights=rng.integers(-80, 120, size=(n2, n1)), name="b2")
        g2 = Dense(weights=rng.integers(-60, 90, size=(n2, n1)), num_message_bits=8, name="g2")
        p1.s_out.connect(b2.s_in)
        p1.s_out.connect(g2.s_in)
        b2.a_out.connect(p2.a_in)
        g2.a_out.connect(p2.a_in)
    pops.append(p2)
    return pops, src


NEW_KINDS = ("delay_dense", "delay_sparse", "sigma_delta", "dataloader")


@pytest.fixture(scope="module", params=["reset", "ternary", "sparse", "subclass", *NEW_KINDS])
def case(request):
    pops, src = build(request.param)
    # lava 0.10's compiler reads the map by process object, its run config by class: both given
    mapped = {**MODEL_MAP, pops[0]: PyLifModelBitAcc} if request.param == "subclass" else None
    net = from_lava(src, exception_proc_model_map=mapped)
    return request.param, net, _lava_records(pops, model_map=mapped)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_new_processes_bitexact_every_step(case, backend):
    kind, net, ref = case
    emu = net.run(T, backend=backend, record=_every_var(net))
    assert _differs(emu, ref) is None, f"{kind} ({backend}): {_differs(emu, ref)} differs from lava"
    assert all(r["s"].any() for r in ref.values()), kind
    if kind == "sigma_delta":   # graded messages of both signs, and the error carried
        assert (ref["sd"]["s"] > 0).any() and (ref["su"]["s"] < 0).any() and ref["sd"]["error"].any()
    if kind == "ternary":
        assert (ref["p1"]["s"] == -1).any() and (ref["p1"]["s"] == 1).any()
    if kind == "reset":   # (a reset one step off must fail: test_wrong_variants_fail)
        assert type(net.nodes["p1"]).__name__ == "LIFResetPopulation"


def _tamper(kind, net):
    if kind in ("delay_dense", "delay_sparse"):   # every synapse one step late
        n = net.nodes["s1"]
        n.delays = n.delays + 1
        return
    if kind == "sigma_delta":   # UNIT read as RELU: its negative messages lost
        net.nodes["su"].act_mode = "relu"
        return
    if kind == "dataloader":
        net.nodes[next(iter(net.nodes))].offset += 1
        return
    p1 = net.nodes["p1"]
    if kind == "reset":
        p1.reset_offset = (p1.reset_offset + 1) % p1.reset_interval
    elif kind == "ternary":
        p1.vth_lo_eff = p1.vth_lo_eff.neg()       # lower threshold mirrored
    elif kind == "sparse":
        n = net.nodes["s2"]
        n.weights = n.weights.clone()
        n.weights[n.weights != 0] += 1           # every stored weight off by one
    else:
        p1.du = p1.du + 1


def test_wrong_variants_fail(case):
    kind, net, ref = case
    _tamper(kind, net)
    assert _differs(net.run(T, backend="torch", record=_every_var(net)), ref) is not None, kind


def _fed(population):
    """RingBuffer -> Dense -> `population`: a graph for from_lava (its source returned)."""
    src = RingBuffer(data=np.ones((3, 4), dtype=np.int64))
    d = Dense(weights=np.ones((2, 3), dtype=np.int64))
    src.s_out.connect(d.s_in)
    d.a_out.connect(population.a_in)
    return src


@pytest.mark.parametrize("population, message", [
    (lambda: LIFRefractory(shape=(2,), refractory_period=2, name="refr"),
     "'refr'.*LIFRefractory: lava-nc has no fixed_pt process model"),
    (lambda: PlainSubLIF(shape=(2,), vth=3, name="plain"),
     "'plain'.*no fixed_pt process model.*exception_proc_model_map"),
    (lambda: ChangedSubLIF(shape=(2,), vth=3, name="changed"),
     r"'changed'.*PyChangedSubLIFModel is not PyLifModelBitAcc \(it defines scale_threshold, spiking_activation\)"),
], ids=["no-fixed-pt-model", "unmapped-subclass", "changed-behaviour"])
def test_processes_the_emulator_cannot_follow_are_refused_with_the_reason(population, message):
    with pytest.raises(TypeError, match=message):
        from_lava(_fed(population()))


def test_a_lif_subclass_mapped_to_lifs_model_is_a_lif():
    src = _fed(PlainSubLIF(shape=(2,), vth=3, name="plain"))
    assert type(from_lava(src, exception_proc_model_map=MODEL_MAP).nodes["plain"]).__name__ == "LIFPopulation"


def test_a_run_config_mapping_a_process_to_another_model_is_refused():
    from lava.proc.lif.models import PyLifModelFloat

    lif = LIF(shape=(2,), vth=3, name="floaty")
    src = _fed(lif)
    with pytest.raises(TypeError, match="'floaty'.*maps it to PyLifModelFloat, not PyLifModelBitAcc"):
        from_lava(src, exception_proc_model_map={lif: PyLifModelFloat})
    assert type(from_lava(src, exception_proc_model_map={LIF: PyLifModelBitAcc}).nodes["floaty"]).__name__ == \
        "LIFPopulation"


def test_sparse_decides_its_sign_mode_on_the_weights_as_given():
    """lava's Sparse reads the sign mode off the raw matrix (a -0.5 makes it MIXED) and casts to
    int32 afterwards; Dense casts first. Both checked against lava, one step of a recorded LIF."""
    w = np.array([[-0.5, 3.0], [5.0, 7.0]])
    src = RingBuffer(data=np.ones((2, 3), dtype=np.int64))
    sp = Sparse(weights=csr_matrix(w), name="sp")
    lif = LIF(shape=(2,), vth=1000, du=4095, name="probe")
    src.s_out.connect(sp.s_in)
    sp.a_out.connect(lif.a_in)
    ref = _lava_records([lif], steps=3)
    emu = from_lava(src).run(3)
    assert _differs(emu, ref) is None
    assert ref["probe"]["u"][1].tolist() == [(0 + 2) << 6, (4 + 6) << 6]   # MIXED: 3 -> 2, 5 -> 4, 7 -> 6


# --------------------------------------------------------------------------- random mixed networks
def random_network(seed: int):
    """A random graph of LIF / LIFReset / TernaryLIF / Sigma / SigmaDelta / Delta populations
    joined by Dense, Sparse, DelayDense and DelaySparse synapses (binary and graded messages,
    mixed signs, weight exponents, delays, recurrent edges), fed by a RingBuffer of graded values
    or a SpikeDataloader, and in every fourth seed also by a convolutional front (a 3-D graded
    RingBuffer, a Conv, a 3-D LIF flattened through a reshape port) or, in another fourth, by a
    hierarchical process (Dense + LIF in a sub-process model): (populations, source)."""
    rng = np.random.default_rng(1000 + seed)
    n_in = int(rng.integers(6, 12))
    data = rng.integers(-5, 8, size=(n_in, int(rng.integers(5, 20)))) * (rng.random((n_in, 1)) < 0.7)
    if seed % 3 == 2:   # a dataloader feeding the network instead of a RingBuffer
        src = SpikeDataloader(dataset=Samples(n_in, rng), interval=int(rng.integers(3, 8)),
                              offset=int(rng.integers(0, 9)))
    else:
        src = RingBuffer(data=data)
    pops, sizes = [], []
    for i in range(int(rng.integers(3, 6))):
        n = int(rng.integers(4, 10))
        kind = rng.choice(["lif", "reset", "ternary", "sigma_delta", "delta", "sigma"])
        if kind == "sigma":   # a running int32 sum: wraps
            pops.append(_named(Sigma(shape=(n,)), f"r{seed}_{i}"))
            sizes.append(n)
            continue
        if kind in ("sigma_delta", "delta"):
            exps = dict(spike_exp=int(rng.integers(0, 3)), state_exp=int(rng.integers(0, 3)),
                        cum_error=bool(rng.random() < 0.5), vth=float(rng.integers(1, 12)), shape=(n,))
            pops.append(_named(Delta(**exps) if kind == "delta" else
                               SigmaDelta(bias=float(rng.integers(-3, 4)),
                                          act_mode=ActivationMode(int(rng.integers(0, 2))), **exps), f"r{seed}_{i}"))
            sizes.append(n)
            continue
        params = dict(shape=(n,), name=f"r{seed}_{i}", **_lif(rng, n))
        if kind == "lif":
            pops.append(LIF(vth=int(rng.integers(10, 60)), **params))
        elif kind == "reset":
            pops.append(LIFReset(vth=int(rng.integers(10, 60)), reset_interval=int(rng.integers(2, 9)),
                                 reset_offset=int(rng.integers(0, 12)), **params))
        else:
            pops.append(TernaryLIF(vth_hi=int(rng.integers(10, 50)), vth_lo=-int(rng.integers(10, 50)), **params))
        sizes.append(n)
    senders = [(src.s_out, n_in)]
    if seed % 4 == 1:   # a convolutional front: 3-D graded input -> Conv -> 3-D LIF, flattened onward
        from lava.proc.conv.process import Conv

        c_out = int(rng.integers(2, 4))
        img = RingBuffer(data=rng.integers(-3, 5, size=(4, 4, 2, 9)) * (rng.random((4, 4, 2, 9)) < 0.6))
        conv = Conv(weight=rng.integers(-90, 120, size=(c_out, 3, 3, 2)), input_shape=(4, 4, 2), padding=1,
                    num_message_bits=8, name=f"c{seed}")
        front = LIF(shape=(4, 4, c_out), vth=int(rng.integers(10, 40)), name=f"r{seed}_conv", du=500, dv=300)
        img.s_out.connect(conv.s_in)
        conv.a_out.connect(front.a_in)
        senders.append((front.s_out.reshape(new_shape=(16 * c_out,)), 16 * c_out))
    front_sender = len(senders) - 1 if seed % 4 == 1 else None
    forced = [front_sender] if front_sender is not None else []
    if seed % 4 == 3:   # a hierarchical process (Dense + LIF inside, compiled by lava's run) between
        from lava_procs.dense_lif import DenseLIF

        m = int(rng.integers(4, 9))
        unit = DenseLIF(weights=rng.integers(-100, 160, size=(m, n_in)), vth=int(rng.integers(10, 40)),
                        du=int(rng.integers(0, 1500)), dv=int(rng.integers(0, 900)), name=f"h{seed}")
        src.s_out.connect(unit.s_in)
        senders.append((unit.s_out, m))
        forced.append(len(senders) - 1)
    for i, p in enumerate(pops):
        # every population hears one earlier sender, sometimes a second one (or a later one: recurrence)
        # the conv front and the hierarchical unit feed the first populations: one lava graph
        picks = [forced[i]] if i < len(forced) else [int(rng.integers(0, len(senders)))]
        if rng.random() < 0.5:
            picks.append(int(rng.integers(0, len(senders))))
        if i >= 1 and rng.random() < 0.3:
            picks.append(-1)   # recurrent: from this population itself
        for j, pick in enumerate(picks):
            out, n_out = (p.s_out, sizes[i]) if pick == -1 else senders[pick]
            w = rng.integers(-150, 150, size=(sizes[i], n_out))
            graded = 8 if rng.random() < 0.5 else 0
            kw = dict(num_message_bits=graded, weight_exp=int(rng.integers(-1, 2)), name=f"s{seed}_{i}_{j}")
            synapse = rng.choice(["dense", "sparse", "delay_dense", "delay_sparse"])
            mask = rng.random(w.shape) < 0.5
            delays = rng.integers(0, 4, size=w.shape)
            if synapse == "sparse":
                syn = Sparse(weights=csr_matrix(w * mask), **kw)
            elif synapse == "delay_sparse":
                syn = DelaySparse(weights=csr_matrix(w * mask), delays=csr_matrix(delays * mask), **kw)
            elif synapse == "delay_dense":
                syn = DelayDense(weights=w, delays=delays, **kw)
            else:
                syn = Dense(weights=w, **kw)
            out.connect(syn.s_in)
            syn.a_out.connect(p.a_in)
        senders.append((p.s_out, sizes[i]))
    if front_sender is not None:
        pops.append(front)   # recorded too (it feeds the first population: one lava graph)
    return pops, src


SEEDS = range(12)


def test_the_random_networks_mix_every_kind():
    kinds = set()
    for seed in SEEDS:
        net = from_lava(random_network(seed)[0][0])
        kinds |= {type(n).__name__ for n in net.nodes.values()}
        kinds |= {"graded" for n in net.nodes.values() if getattr(n, "graded", False)}
        kinds |= {"hierarchical" for name in net.nodes if name.startswith(f"h{seed}.")}   # its leaves
    assert {"LIFPopulation", "LIFResetPopulation", "TernaryLIFPopulation", "DeltaPopulation", "SigmaDeltaPopulation",
            "SigmaPopulation", "DenseLayer", "SparseLayer", "DelayDenseLayer", "DelaySparseLayer", "ConvLayer",
            "RingBufferSource", "SpikeDataloaderSource", "graded", "hierarchical"} <= kinds, kinds


@pytest.mark.parametrize("seed", SEEDS)
def test_random_mixed_networks_bitexact_every_step(seed):
    pops, src = random_network(seed)
    before = from_lava(pops[0])   # the graph lava runs (the first population's), not compiled yet
    ref = _lava_records(pops, steps=30)
    after = from_lava(pops[0])    # the same graph, compiled by lava's run
    for backend, net in (("torch", before), ("auto", after), ("auto", before)):
        emu = net.run(30, backend=backend, record=_every_var(net))
        assert _differs(emu, ref) is None, f"seed {seed} ({backend}): {_differs(emu, ref)} differs from lava"
    assert sum(int(np.abs(r["s"]).sum()) for r in ref.values()) > 0   # something fired


# --------------------------------------------------------------------------- hierarchical processes
def _hierarchical_network(seed: int = 0):
    """RingBuffer -> TwoStage (two DenseLIF, each Dense + LIF: two levels of sub-process
    models) -> Dense -> LIF 'after': (after, the TwoStage process, its source)."""
    from lava_procs.dense_lif import TwoStage

    rng = np.random.default_rng(500 + seed)
    src = RingBuffer(data=(rng.random((8, 11)) < 0.5).astype(np.int64))
    two = TwoStage(w1=rng.integers(-60, 120, size=(7, 8)), w2=rng.integers(-50, 110, size=(6, 7)), name="two")
    d = Dense(weights=rng.integers(-40, 90, size=(5, 6)), name="d_after")
    after = LIF(shape=(5,), vth=250, name="after", **_lif(rng, 5))
    src.s_out.connect(two.s_in)
    two.s_out.connect(d.s_in)
    d.a_out.connect(after.a_in)
    return after, two, src


def test_a_hierarchical_process_lava_has_not_compiled_is_emulated_through_its_model():
    """Before lava compiles it a hierarchical process has no children: from_lava expands a
    shadow of it through the same sub-process model (two levels deep here), leaves the user's
    network untouched, and lava then compiles and runs it as usual; every step of the LIF
    behind it and the inner LIFs' final v equal lava's."""
    after, two, src = _hierarchical_network()
    net = from_lava(src)
    assert not two.procs.member_names                        # the user's process: still not compiled
    inner = ["two.first.lif", "two.second.lif"]
    assert set(inner) | {"after"} <= set(net.nodes) and "two" not in net.nodes
    emu = net.run(T, backend="torch")
    ref, _, finals = _lava_run([after], T, read=lambda: [two.procs.first.v.get(), two.procs.second.v.get()])
    assert _differs(emu, ref) is None, _differs(emu, ref)
    assert ref["after"]["s"].any() and any(emu[n]["s"].any() for n in inner)
    for name, final in zip(inner, finals):
        assert np.array_equal(emu[name]["v"][-1], np.asarray(final).astype(np.int64)), name
    # a wrong variant of an inner LIF must fail
    net.nodes["two.second.lif"].du += 1
    wrong = net.run(T, backend="torch")
    assert _differs(wrong, ref) is not None or not np.array_equal(wrong["two.second.lif"]["v"][-1], finals[1])


def test_a_compiled_hierarchical_process_and_one_given_as_the_start():
    """After lava compiled the network, its children are walked through the ports; the
    hierarchical process itself may be what from_lava is given."""
    after, two, src = _hierarchical_network(seed=1)
    ref = _lava_records([after])
    assert two.procs.member_names                             # lava built the children
    for start in (src, two):
        emu = from_lava(start).run(T, backend="auto")
        assert _differs(emu, ref) is None, (start.name, _differs(emu, ref))


# --------------------------------------------------------------------------- a network lava already ran
def conv_front(rng, into, n_into: int, steps: int, prefix: str, lif_name: str):
    """Binary 4x4x2 frames (a RingBuffer of ``steps``) -> Conv 3x3 pad 1 -> LIF 4x4x3, flattened
    through a reshape port into a Dense onto ``into``'s input (one lava graph with it):
    (the RingBuffer, the LIF)."""
    from lava.proc.conv.process import Conv

    rb = RingBuffer(data=(rng.random((4, 4, 2, steps)) < 0.5).astype(np.int64))
    conv = Conv(weight=rng.integers(-60, 90, size=(3, 3, 3, 2)), input_shape=(4, 4, 2), padding=1,
                name=f"{prefix}conv")
    lif = LIF(shape=(4, 4, 3), vth=50, name=lif_name, du=300, dv=200)
    joint = Dense(weights=rng.integers(-30, 50, size=(n_into, 48)), name=f"{prefix}joint")
    rb.s_out.connect(conv.s_in)
    conv.a_out.connect(lif.a_in)
    lif.s_out.reshape(new_shape=(48,)).connect(joint.s_in)
    joint.a_out.connect(into.a_in)
    return rb, lif


def test_a_network_lava_already_ran_continues_where_lava_stopped():
    """lava runs a network 11 steps, a Var is set, then lava runs 14 more. from_lava between the
    two reads every Var as lava holds it (states, the Dense / Delay / Conv buffers) and, told the
    steps done, keeps the RingBuffers' and LIFReset's phase: its 14 steps equal lava's, every
    variable; one step of phase off must fail, and a running network without steps_done is
    refused in one line."""
    rng = np.random.default_rng(77)
    n_in, n1, n2 = 9, 8, 6
    rb1 = RingBuffer(data=rng.integers(-4, 7, size=(n_in, 7)) * (rng.random((n_in, 7)) < 0.7))
    d1 = Dense(weights=rng.integers(-90, 140, size=(n1, n_in)), num_message_bits=8, name="c_d1")
    p1 = LIFReset(shape=(n1,), vth=40, reset_interval=5, reset_offset=3, name="c_p1", **_lif(rng, n1))
    dd = DelayDense(weights=rng.integers(-80, 120, size=(n2, n1)), delays=rng.integers(0, 4, size=(n2, n1)),
                    name="c_dd")
    g = Sparse(weights=csr_matrix(rng.integers(-50, 80, size=(n2, n_in)) * (rng.random((n2, n_in)) < 0.6)),
               num_message_bits=8, name="c_g")
    sd = _named(SigmaDelta(shape=(n2,), vth=6, bias=2, cum_error=True, spike_exp=1, state_exp=1), "c_sd")
    b = Dense(weights=rng.integers(-40, 70, size=(n2, n2)), num_message_bits=8, weight_exp=-2, name="c_b")
    p2 = LIF(shape=(n2,), vth=60, name="c_p2", **_lif(rng, n2))
    rb2, p3 = conv_front(rng, p2, n2, 9, "c_", "c_p3")   # one graph: one lava run
    rb1.s_out.connect(d1.s_in)
    d1.a_out.connect(p1.a_in)
    p1.s_out.connect(dd.s_in)
    dd.a_out.connect(p2.a_in)
    rb1.s_out.connect(g.s_in)
    g.a_out.connect(sd.a_in)
    sd.s_out.connect(b.s_in)
    b.a_out.connect(p2.a_in)
    first, second = 11, 14

    def between(done):
        p2.v.set(rng.integers(-300, 300, size=(n2,)).astype(np.float64))
        with pytest.raises(ValueError, match="give steps_done=N"):
            from_lava(rb1, rb2)
        return from_lava(rb1, rb2, steps_done=done), from_lava(rb1, rb2, steps_done=done + 1)

    ref, (net, off), _ = _lava_run([p1, p2, p3, sd], second, before=first, between=between)
    assert net.nodes["c_dd"].initial_buffer is not None and net.first_step == first + 1
    for backend in ("torch", "auto"):
        emu = net.run(second, backend=backend, record=_every_var(net))
        assert _differs(emu, ref) is None, (backend, _differs(emu, ref))
    assert all(r["s"].any() for r in ref.values())
    assert _differs(off.run(second, backend="torch", record=_every_var(off)), ref) is not None


@pytest.mark.parametrize("weights, set_to", [([[-300, 1]], None), ([[3, 5]], [[301, -2]])],
                         ids=["quantised-at-step-1", "set-after-a-run"])
def test_dense_weights_lava_already_holds_are_used_as_they_stand(weights, set_to):
    """After its first step lava's Dense holds clipped, truncated weights (MIXED -300 -> -256,
    1 -> 0) and never quantises again, not even weights set later (301 stays 301): from_lava on
    the ran network uses them as they stand."""
    src = RingBuffer(data=np.ones((2, 9), dtype=np.int64))
    d = Dense(weights=np.array(weights), name="w_d")
    q = LIF(shape=(1,), vth=1 << 20, du=4095, dv=4095, name="w_q")
    src.s_out.connect(d.s_in)
    d.a_out.connect(q.a_in)

    def between(done):
        if set_to is not None:
            d.weights.set(np.array(set_to, dtype=np.float64))
        return from_lava(src, steps_done=done)

    ref, net, _ = _lava_run([q], 4, before=3, between=between)
    assert _differs(net.run(4, backend="torch"), ref) is None


def test_a_buffer_lava_left_counts_in_the_value_bounds():
    """A Dense buffer left large by an earlier sample: the fused backend must not pick float32
    messages for it (the bound includes what lava left in the buffer)."""
    class Two:
        items = [(np.array([[100001, 100001]]), 0), (np.array([[1, 1]]), 1)]

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return self.items[i]

    src = SpikeDataloader(dataset=Two(), interval=2, offset=0)
    d = Dense(weights=np.array([[255]]), num_message_bits=24, name="b_d")
    d2 = Dense(weights=np.array([[2]]), num_message_bits=24, name="b_d2")
    p = LIF(shape=(1,), vth=1 << 20, du=4095, dv=4095, name="b_p")
    for syn in (d, d2):
        src.s_out.connect(syn.s_in)
        syn.a_out.connect(p.a_in)
    ref, net, _ = _lava_run([p], 2, before=3, between=lambda done: from_lava(src, steps_done=done))
    for backend in ("torch", "auto"):
        assert _differs(net.run(2, backend=backend), ref) is None, backend


def test_cumulative_error_kept_where_the_spike_is_minus_two_to_the_31():
    """lava clears the error where |s| > 0 in int32, so an s of -2**31 keeps it."""
    src = RingBuffer(data=np.array([[5, 2**31 - 5, 0, 1, 0, 0]]))
    d = Dense(weights=np.array([[1]]), num_message_bits=24, name="e_d")
    sd = _named(SigmaDelta(shape=(1,), vth=10, bias=0, act_mode=ActivationMode.UNIT, cum_error=True), "e_sd")
    src.s_out.connect(d.s_in)
    d.a_out.connect(sd.a_in)
    net = from_lava(src)
    ref = _lava_records([sd], 6)
    assert (ref["e_sd"]["error"] < -(1 << 30)).any()
    assert _differs(net.run(6, backend="torch", record=_every_var(net)), ref) is None


def test_delay_rules_lava_states():
    """max_delay 0 means the largest delay, as in lava; a delay above 63 is refused as lava's
    bit-accurate model refuses it; a dataloader's labels feeding the network are refused."""
    from snnsim.loihi import DelayDenseLayer

    assert DelayDenseLayer("dd", np.ones((2, 2)), np.array([[0, 2], [1, 0]]), max_delay=0).max_delay == 2
    with pytest.raises(ValueError, match="at most 63"):
        DelayDenseLayer("dd", np.ones((1, 1)), np.array([[70]]))
    src = SpikeDataloader(dataset=Samples(3, np.random.default_rng(0)), interval=4)
    d = Dense(weights=np.ones((2, 3)), name="g_d")
    labels = Dense(weights=np.ones((2, 1)), name="g_labels")
    p = LIF(shape=(2,), vth=10, name="g_p")
    src.s_out.connect(d.s_in)
    src.ground_truth.connect(labels.s_in)
    d.a_out.connect(p.a_in)
    labels.a_out.connect(p.a_in)
    with pytest.raises(TypeError, match="ground_truth feeds 'g_labels'"):
        from_lava(src)


def test_an_uncompiled_hierarchical_process_that_cannot_be_rebuilt_is_refused():
    """A process whose __init__ keeps an argument it does not pass on to AbstractProcess cannot
    be rebuilt from its parameters: refused in one line, asking to compile it first."""
    from lava_procs.dense_lif import Gained

    src = RingBuffer(data=np.ones((2, 4), dtype=np.int64))
    g = Gained(weights=np.ones((2, 2), dtype=np.int64), gain=3, name="gained")
    src.s_out.connect(g.s_in)
    with pytest.raises(TypeError, match="'gained'.*attribute gain.*compile it first"):
        from_lava(src)


@pytest.mark.parametrize("make, message", [
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).SigmaDeltaPopulation("s", (2,), vth=1, act_mode=5),
     "act_mode 5 is not one of UNIT, RELU"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).SigmaDeltaPopulation("s", (2,), vth=1, act_mode=-1),
     "act_mode -1 is not one of UNIT, RELU"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).DeltaPopulation("s", (2,), vth=float("nan")),
     "vth must be one finite number"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).DeltaPopulation("s", (2,), vth=[1, 2]),
     "vth must be one finite number"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).DelayDenseLayer("d", np.ones((2, 2)), "a"),
     "'d': delays must be whole numbers"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).DelayDenseLayer("d", np.ones((2, 2)), 1, max_delay=1000),
     "'d': max_delay must be 0..63"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).SpikeDataloaderSource("x", iter([]), 2),
     "'x': the dataset must support len"),
    (lambda: __import__("snnsim.loihi", fromlist=["x"]).SpikeDataloaderSource("x", [np.ones((2, 3))], 2),
     r"'x': dataset\[0\] must be \(data, label\)"),
], ids=["act-mode-5", "act-mode-negative", "vth-nan", "vth-several", "delays-text", "max-delay-big",
        "dataset-no-len", "sample-not-a-pair"])
def test_bad_process_parameters_are_one_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------- review of the change
def test_a_delay_buffer_lava_left_adds_to_the_value_bounds():
    """What lava left in a DelayDense buffer is added to what lands in the same column (a Dense's
    is only sent once): the bound is their sum, so the fused backend does not pick float32
    messages that round the LIF's input (8000001 + 255 << 15 twice exceeds 2**24)."""
    from snnsim.loihi import DelayDenseLayer, LIFPopulation, LoihiNetwork, RingBufferSource

    net = LoihiNetwork()
    net.add(RingBufferSource("src", np.ones((1, 4), dtype=np.int64)))
    for name, left in (("d1", 8000001), ("d2", 8000000)):
        d = net.add(DelayDenseLayer(name, [[255]], 0, max_delay=1, num_message_bits=24, weight_exp=15))
        d.initial_buffer = np.array([[0, left]])
        net.connect("src", name)
    net.add(LIFPopulation("p", 1, vth=1 << 20, du=0, dv=4095))
    net.connect("d1", "p")
    net.connect("d2", "p")
    torch_u = net.run(4, backend="torch")["p"]["u"]
    # step 2's input, exactly: 2 * (255 << 15) + 16000001; u = input << 6 (within int32), then
    # lava's one conditional 24-bit wrap (u > 2**23: u - 2**24)
    assert int(torch_u[1, 0]) == ((2 * (255 << 15) + 16000001) << 6) - (1 << 24)
    assert np.array_equal(net.run(4, backend="fused")["p"]["u"], torch_u)


def test_a_delay_buffer_keeps_the_depth_lava_made_it():
    """lava sizes a DelayDense buffer when the process is made; delays changed afterwards that
    exceed it are never delivered. from_lava takes the depth lava holds (1 here), not the one
    the current delays would give: every step equal to lava's."""
    src = RingBuffer(data=np.ones((2, 5), dtype=np.int64))
    dd = DelayDense(weights=np.ones((2, 2)) * 50, delays=0, name="deep_dd")
    p = LIF(shape=(2,), vth=10, name="deep_p", du=100, dv=100)
    src.s_out.connect(dd.s_in)
    dd.a_out.connect(p.a_in)
    dd.delays.init = np.array([[1, 0], [1, 1]])          # changed after lava sized the buffer
    net = from_lava(src)
    assert net.nodes["deep_dd"].max_delay + 1 == dd.a_buff.shape[-1] == 1
    ref = _lava_records([p], steps=6)
    assert _differs(net.run(6, backend="torch"), ref) is None
    assert ref["deep_p"]["u"].any()                        # the delay-0 synapse delivers


@pytest.mark.parametrize("call, message", [
    (lambda: from_lava(3), "from_lava takes lava processes .*not int"),
    (lambda: from_lava(LIF(shape=(2,), name="x1"), steps_done="a"), "steps_done must be a whole number"),
    (lambda: from_lava(LIF(shape=(2,), name="x2"), steps_done=3), "no process of the network has a lava runtime up"),
    (lambda: from_lava(LIF(shape=(2,), name="x3"), exception_proc_model_map=[1]), "must be a dict"),
], ids=["not-a-process", "steps-not-a-number", "steps-but-never-ran", "map-not-a-dict"])
def test_from_lava_refuses_bad_arguments_in_one_line(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_emulator_nodes_refuse_bad_parameters_by_name():
    from snnsim.loihi import ConvLayer, DelayDenseLayer, DenseLayer, LIFPopulation, RingBufferSource
    from snnsim.loihi.sdn import DeltaPopulation, SigmaPopulation

    cases = [(lambda: DeltaPopulation("d", 3, vth=1, spike_exp=[1, 2]), "'d' spike_exp must be a single value"),
             (lambda: DeltaPopulation("d", 3, vth=1, cum_error=[]), "'d' cum_error must be a single value"),
             (lambda: SigmaPopulation("s", -3), "'s' shape must be positive whole numbers"),
             (lambda: SigmaPopulation("s", "abc"), "'s' shape must be positive whole numbers"),
             (lambda: LIFPopulation("l", (0, 2)), "'l' shape must be positive whole numbers"),
             (lambda: DelayDenseLayer("dd", np.ones((2, 2)), 1, max_delay=np.array([1, 2])),
              "'dd' max_delay must be a single value"),
             # a Conv dilation of 0 used to run on the compiled backend (and fail on the others)
             (lambda: ConvLayer("c", np.ones((2, 3, 3, 1)), (4, 4, 1), dilation=0), "'c': stride, dilation and groups "
              "must be >= 1 and padding >= 0"),
             (lambda: ConvLayer("c", np.ones((2, 3, 3, 1)), (4, 4, 1), stride=(1, 0)), "must be >= 1"),
             (lambda: ConvLayer("c", np.ones((2, 3, 3, 1)), (4, 4, 1), padding=-1), "padding >= 0"),
             (lambda: ConvLayer("c", np.ones((2, 3, 3, 1)), (4, 4, 1), stride="x"), "an int or a pair of ints"),
             (lambda: ConvLayer("c", np.ones((2, 3, 3, 1)), (4, 0, 1)), "'c' input_shape must be positive"),
             (lambda: ConvLayer("c", "w", (4, 4, 1)), "'c' weight must be numbers"),
             (lambda: RingBufferSource("r", np.ones((3, 0))), "'r': data must be .* with T >= 1 steps"),
             (lambda: RingBufferSource("r", None), "'r' data must be numbers"),
             (lambda: LIFPopulation("l", 2, u=[1, 2, 3]), r"'l' u: shape \(3,\) does not fit the population's \(2,\)"),
             (lambda: DenseLayer("d", [["a"]]), "'d': weights must be numbers")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    # lava's Vars hold these as shape-(1,) arrays: taken as one value
    assert DeltaPopulation("d", 3, vth=1, spike_exp=np.array([2]), cum_error=np.array([1])).spike_exp == 2


def test_bad_run_and_connect_arguments_are_one_clear_error():
    from snnsim.loihi import LIFPopulation, LoihiNetwork, RingBufferSource

    net = LoihiNetwork()
    net.add(RingBufferSource("in", np.ones((2, 3), dtype=np.int32)))
    net.add(LIFPopulation("lif", (2,), vth=1))
    stray = RingBufferSource("in", np.ones((2, 3), dtype=np.int32))   # same name, never added
    cases = [(lambda: net.connect("in", "nope"), r"no node named 'nope' in the network \(it has: in, lif\)"),
             (lambda: net.connect(stray, "lif"), r"connect takes nodes added to this network \(net.add\)"),
             (lambda: net.connect(1, "lif"), "connect takes nodes added to this network"),
             (lambda: net.run(-1), "num_steps must be a whole number from 0 to 2147483647, got -1"),
             (lambda: net.run(2.5), "num_steps must be a whole number from 0 to 2147483647, got 2.5"),
             (lambda: net.run("ten"), "num_steps must be a whole number from 0 to 2147483647, got 'ten'"),
             (lambda: net.run(None), "num_steps must be a whole number from 0 to 2147483647, got None"),
             (lambda: net.run(True), "num_steps must be a whole number from 0 to 2147483647, got True"),
             (lambda: net.run(2 ** 70), "num_steps must be a whole number from 0 to 2147483647"),
             (lambda: net.run(2, record=[["u"]]), "record must be a sequence of variable names"),
             (lambda: net.run(2, record=None), "record must be a sequence of variable names"),
             (lambda: net.run(2, record="uv"), "record must be a sequence of variable names"),
             (lambda: net.run(2, populations="lif"), "populations must be a sequence of population names"),
             (lambda: net.run(2, populations=["li"]), r"no population named 'li' to record \(the network's: lif\)"),
             (lambda: net.run(2, inputs=[np.ones((2, 3))]), "inputs must map RingBuffer names to data, got list"),
             (lambda: net.run(2, inputs={"src": np.ones((2, 3))}),
              r"inputs for unknown RingBuffer\(s\) \['src'\] \(the network's: in\)")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            call()
        assert "\n" not in str(err.value)
    net.connect("in", "lif")
    out = net.run(3.0, populations=["lif"], record=("s",))   # a whole float is a step count
    # by hand (du = dv = 0, vth << 6 = 64, a_in = 1): u = 64, 127, 190; v = 64 (not > 64), 191, 190
    assert out["lif"]["s"].tolist() == [[0, 0], [1, 1], [1, 1]]


def test_a_one_column_delay_sparse_buffer_delivers_every_synapse_as_lava_does():
    """lava's DelaySparse with a buffer one column deep (max_delay 0: every delay was 0 when it
    was made) multiplies by the whole weight matrix, whatever the delays are now; DelayDense
    (test above) and deeper DelaySparse buffers drop a synapse whose delay exceeds the depth."""
    from lava.proc.sparse.process import DelaySparse

    src = RingBuffer(data=np.ones((2, 5), dtype=np.int64))
    ds = DelaySparse(weights=csr_matrix(np.array([[50, 30], [20, 40]])), delays=0, name="flat_ds")
    p = LIF(shape=(2,), vth=1000, name="flat_p", du=100, dv=100)
    src.s_out.connect(ds.s_in)
    ds.a_out.connect(p.a_in)
    ds.delays.init = csr_matrix(np.array([[1, 0], [1, 1]]))   # changed after lava sized the buffer
    net = from_lava(src)
    assert net.nodes["flat_ds"].max_delay + 1 == ds.a_buff.shape[-1] == 1
    ref = _lava_records([p], steps=4)
    # by hand: every synapse delivers the step after a spike, so a_in = 80 and 60 from step 2 on
    assert (ref["flat_p"]["u"][1] == np.array([80, 60]) << 6).all()
    for backend in ("torch", "auto"):
        assert _differs(net.run(4, backend=backend), ref) is None, backend
