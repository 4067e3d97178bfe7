"""lava processes beyond LIF / Dense / Conv in the one emulator scheduler (issue 16): LIFReset,
TernaryLIF, Sparse and a LIF subclass that keeps LIF's process model, each run in lava-nc 0.10.0
(fixed_pt) and in the emulator from `from_lava`, compared at every step (u, v and s of every
population); a deliberately wrong variant of each must fail; a process lava itself cannot run in
fixed point is refused with that reason."""
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
from lava.proc.dense.process import Dense  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed, PyLifModelBitAcc  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIF, LIFRefractory, LIFReset, TernaryLIF  # noqa: E402
from lava.proc.monitor.process import Monitor  # noqa: E402
from lava.proc.sparse.process import Sparse  # noqa: E402
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


def _lava_records(pops, steps=T, model_map=None):
    mons = []
    for p in pops:
        for var in (p.u, p.v, p.s_out):
            m = Monitor()
            m.probe(var, steps)
            mons.append((p.name, "s" if var is p.s_out else var.name, var.name, m))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pops[0].run(condition=RunSteps(num_steps=steps),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=model_map or {}))
        try:
            return {n: {k: np.asarray(m.get_data()[n][v]).astype(np.int64) for n2, k, v, m in mons if n2 == n}
                    for n in [p.name for p in pops]}
        finally:
            pops[0].stop()


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


def build(kind: str, seed: int = 0):
    """(processes to monitor, their source) of one case."""
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


@pytest.fixture(scope="module", params=["reset", "ternary", "sparse", "subclass"])
def case(request):
    pops, src = build(request.param)
    # lava 0.10's compiler reads the map by process object, its run config by class: both given
    mapped = {**MODEL_MAP, pops[0]: PyLifModelBitAcc} if request.param == "subclass" else None
    net = from_lava(src, exception_proc_model_map=mapped)
    return request.param, net, _lava_records(pops, model_map=mapped)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_new_processes_bitexact_every_step(case, backend):
    kind, net, ref = case
    emu = net.run(T, backend=backend)
    assert _differs(emu, ref) is None, f"{kind} ({backend}): {_differs(emu, ref)} differs from lava"
    assert ref["p1"]["s"].any() and ref["p2"]["s"].any()
    if kind == "ternary":
        assert (ref["p1"]["s"] == -1).any() and (ref["p1"]["s"] == 1).any()
    if kind == "reset":   # (a reset one step off must fail: test_wrong_variants_fail)
        assert type(net.nodes["p1"]).__name__ == "LIFResetPopulation"


def _tamper(kind, net):
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
    assert _differs(net.run(T, backend="torch"), ref) is not None, kind


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
    """A random graph of LIF / LIFReset / TernaryLIF populations joined by Dense and Sparse
    synapses (binary and graded messages, mixed signs, weight exponents, recurrent edges), fed
    by a RingBuffer of graded values: (populations, source)."""
    rng = np.random.default_rng(1000 + seed)
    n_in = int(rng.integers(6, 12))
    data = rng.integers(-5, 8, size=(n_in, int(rng.integers(5, 20)))) * (rng.random((n_in, 1)) < 0.7)
    src = RingBuffer(data=data)
    pops, sizes = [], []
    for i in range(int(rng.integers(3, 6))):
        n = int(rng.integers(4, 10))
        kind = rng.choice(["lif", "reset", "ternary"])
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
    for i, p in enumerate(pops):
        # every population hears one earlier sender, sometimes a second one (or a later one: recurrence)
        picks = [int(rng.integers(0, len(senders)))]
        if rng.random() < 0.5:
            picks.append(int(rng.integers(0, len(senders))))
        if i >= 1 and rng.random() < 0.3:
            picks.append(-1)   # recurrent: from this population itself
        for j, pick in enumerate(picks):
            out, n_out = (p.s_out, sizes[i]) if pick == -1 else senders[pick]
            w = rng.integers(-150, 150, size=(sizes[i], n_out))
            graded = 8 if rng.random() < 0.5 else 0
            kw = dict(num_message_bits=graded, weight_exp=int(rng.integers(-1, 2)), name=f"s{seed}_{i}_{j}")
            syn = Sparse(weights=csr_matrix(w * (rng.random(w.shape) < 0.5)), **kw) if rng.random() < 0.5 else \
                Dense(weights=w, **kw)
            out.connect(syn.s_in)
            syn.a_out.connect(p.a_in)
        senders.append((p.s_out, sizes[i]))
    return pops, src


SEEDS = range(12)


def test_the_random_networks_mix_every_kind():
    kinds = set()
    for seed in SEEDS:
        net = from_lava(random_network(seed)[1])
        kinds |= {type(n).__name__ for n in net.nodes.values()}
        kinds |= {"graded" for n in net.nodes.values() if getattr(n, "graded", False)}
    assert {"LIFPopulation", "LIFResetPopulation", "TernaryLIFPopulation", "DenseLayer", "SparseLayer",
            "graded"} <= kinds, kinds


@pytest.mark.parametrize("seed", SEEDS)
def test_random_mixed_networks_bitexact_every_step(seed):
    pops, src = random_network(seed)
    ref = _lava_records(pops, steps=30)
    for backend in ("torch", "auto"):
        emu = from_lava(src).run(30, backend=backend)
        assert _differs(emu, ref) is None, f"seed {seed} ({backend}): {_differs(emu, ref)} differs from lava"
    assert sum(int(np.abs(r["s"]).sum()) for r in ref.values()) > 0   # something fired
