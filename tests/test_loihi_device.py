"""The emulator's torch path on a device (issue 16: ``run(..., device='cuda')``): refused in one
line where it cannot run; on a machine with CUDA, bit-exact with the CPU on every step of the
random lava networks that mix every process kind, on convolutions whose sums TF32 would round,
and on the mapped spiketrack-tiny segment. The CUDA tests skip where no GPU is present (CI has
none); the CPU ones check the option's plumbing and its refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snnsim.loihi.emulator import ConvLayer, LIFPopulation, LoihiNetwork, RingBufferSource

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")


def _conv_net(seed: int = 0) -> LoihiNetwork:
    """Graded 16x16x4 input -> Conv 5x5 with weights up to 2**14 -> LIF: TF32 keeps 11
    significant bits of each weight, and the sums reach about 2**21 (a Winograd transform would
    round them too)."""
    rng = np.random.default_rng(seed)
    net = LoihiNetwork()
    net.add(RingBufferSource("in", rng.integers(-3, 4, size=(16, 16, 4, 7))))
    net.add(ConvLayer("conv", rng.integers(-16000, 16000, size=(8, 5, 5, 4)), (16, 16, 4), padding=2,
                      num_message_bits=8))
    net.add(LIFPopulation("lif", (16, 16, 8), du=900, dv=400, vth=60000))
    net.connect("in", "conv")
    net.connect("conv", "lif")
    return net


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(a[p].keys() == b[p].keys() and
                                        all(np.array_equal(a[p][k], b[p][k]) for k in a[p]) for p in a)


def test_an_explicit_cpu_device_is_the_default_run():
    net = _conv_net()
    ref = net.run(12, backend="torch")
    out = net.run(12, backend="torch", device="cpu")
    assert _same(out, ref)
    assert all(t.device.type == "cpu" for st in net.last_state.values() for t in st.values())
    assert int(np.abs(ref["lif"]["s"]).sum()) > 0


@pytest.mark.parametrize("device, backend, message", [
    ("mps", "torch", "device must be 'cpu' or 'cuda'"),
    ("gpu", "auto", "device must be 'cpu' or 'cuda'"),
    (3.5, "auto", "device must be 'cpu' or 'cuda'"),
    ("cuda", "fused", "backend='fused' runs on the CPU; device='cuda' takes backend='torch'"),
    ("cuda:0", "compiled", "backend='compiled' runs on the CPU"),
])
def test_a_device_it_cannot_use_is_one_clear_error(device, backend, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        _conv_net().run(3, backend=backend, device=device)


def test_cuda_without_a_gpu_says_so():
    if CUDA:
        with pytest.raises(ValueError, match=r"this machine has \d+ CUDA device"):
            _conv_net().run(3, device="cuda:99")
    else:
        with pytest.raises(ValueError, match=r"no CUDA device here \(torch.cuda.is_available\(\) is False\)"):
            _conv_net().run(3, device="cuda")


@needs_cuda
@pytest.mark.parametrize("seed", range(12))
def test_random_mixed_networks_on_cuda_equal_the_cpu_every_step(seed):
    pytest.importorskip("lava")
    from snnsim.loihi import from_lava
    from test_loihi_processes import _every_var, random_network

    net = from_lava(random_network(seed)[0][0])
    keys = _every_var(net)
    ref = net.run(30, backend="torch", record=keys)
    ref_state = {k: {v: t.clone() for v, t in st.items()} for k, st in net.last_state.items()}
    out = net.run(30, device="cuda", record=keys)
    assert net.last_backend == "torch"
    assert _same(out, ref), f"seed {seed}: CUDA differs from the CPU"
    assert all(torch.equal(net.last_state[k][v], t) for k, st in ref_state.items() for v, t in st.items())


@needs_cuda
def test_sums_tf32_would_round_stay_exact_on_cuda_and_its_setting_is_restored():
    net = _conv_net(1)
    batch = np.random.default_rng(2).integers(-3, 4, size=(3, 16, 16, 4, 7))
    ref = net.run(12, inputs={"in": batch}, backend="torch")
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")   # a user who asked for TF32 elsewhere
    try:
        out = net.run(12, inputs={"in": batch}, device="cuda")
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)
    assert _same(out, ref)
    assert int(np.abs(ref["lif"]["s"]).sum()) > 0


@needs_cuda
def test_the_mapped_spiketrack_segment_on_cuda_equals_the_cpu():
    from snnsim.loihi import graded
    from snnsim.loihi.mapper import golden_segment

    s = golden_segment(frames=2)
    seg = s["seg"]
    net = graded.build_segment_network(seg, s["cur"], seg.settle_steps)
    steps = 2 * seg.settle_steps
    assert _same(net.run(steps, device="cuda"), net.run(steps, backend="torch"))


USER_PRECISION = ["pass", "torch.set_float32_matmul_precision('high')", "torch.set_float32_matmul_precision('medium')",
                  "torch.backends.cuda.matmul.allow_tf32 = True", "torch.backends.cuda.matmul.fp32_precision = 'tf32'",
                  "torch.backends.mkldnn.matmul.fp32_precision = 'bf16'",
                  "torch.backends.mkldnn.conv.fp32_precision = 'bf16'", "torch.backends.fp32_precision = 'tf32'"]
_STATE = """
import json, sys
import torch
from snnsim.loihi.fixed_point import no_tf32
def state():
    out = {"cudnn": torch.backends.cudnn.enabled}
    for key, read in (("cuda", lambda: torch.backends.cuda.matmul.fp32_precision),
                      ("mkldnn", lambda: torch.backends.mkldnn.matmul.fp32_precision),
                      ("mkldnn_conv", lambda: torch.backends.mkldnn.conv.fp32_precision),
                      ("global", lambda: torch.backends.fp32_precision),
                      ("legacy", torch.get_float32_matmul_precision)):
        try:
            out[key] = read()
        except (AttributeError, RuntimeError) as e:
            out[key] = type(e).__name__
    return out
exec(sys.argv[1])
before = state()
with no_tf32():
    inside = state()
print(json.dumps({"before": before, "inside": inside, "after": state()}))
"""


@pytest.mark.parametrize("setting", USER_PRECISION)
def test_a_run_turns_reduced_precision_and_cudnn_off_and_puts_back_what_the_user_set(setting):
    """The switch every run goes through (a user's 'medium' or bf16 would round CPU products too):
    whichever precision API the caller used (reading the legacy setting raises once a per-backend
    one is set), the products run at full precision and cuDNN is off inside, and every setting is
    as it was after."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _STATE, setting], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    st = json.loads(out.stdout.strip().splitlines()[-1])
    assert st["after"] == st["before"], st
    assert st["inside"]["legacy"] == "highest" and st["inside"]["cudnn"] is False, st
    for key in ("cuda", "mkldnn", "mkldnn_conv"):   # (torch >= 2.9's per-backend settings)
        assert st["inside"][key] in ("ieee", "AttributeError"), (key, st)


def test_the_integer_product_cuda_takes_equals_torchs():
    """CUDA has no int64 matrix product; the emulator sums broadcast products in chunks there.
    Run here (chunked=True), with values whose int64 sums wrap, it equals torch's CPU product."""
    from snnsim.loihi import fixed_point as fp

    g = torch.Generator().manual_seed(0)
    w = torch.randint(-2 ** 40, 2 ** 40, (600, 7), generator=g)
    wide = torch.randint(-2 ** 31, 2 ** 31, (3, 600), generator=g)
    for a in (wide, torch.randint(-5, 5, (600,), generator=g)):
        assert torch.equal(fp.int_matmul(a, w, chunked=True), a @ w)
    exact = [[sum(int(x) * int(y) for x, y in zip(row, col)) for col in w.T.tolist()] for row in wide.tolist()]
    assert any(abs(v) >= 2 ** 63 for r in exact for v in r)   # the sums do wrap: int64 keeps them mod 2**64
    assert fp.int_matmul(wide, w, chunked=True).tolist() == [[(v + 2 ** 63) % 2 ** 64 - 2 ** 63 for v in r]
                                                             for r in exact]


@needs_cuda
def test_a_dense_layer_past_float64_exactness_runs_on_cuda():
    """A graded Dense whose sums can pass 2**53 takes the integer product (no exact float
    dtype): on CUDA that is int_matmul's chunked sum, equal to the CPU's."""
    from snnsim.loihi.emulator import DenseLayer
    from snnsim.loihi.sdn import SigmaPopulation

    rng = np.random.default_rng(3)
    net = LoihiNetwork()
    net.add(RingBufferSource("in", rng.integers(-2 ** 30, 2 ** 30, size=(40, 6))))
    net.add(SigmaPopulation("sum", 40))
    net.add(DenseLayer("dense", rng.integers(-2 ** 24, 2 ** 24, size=(9, 40)), num_message_bits=24, quantized=True))
    net.add(SigmaPopulation("out", 9))
    for a, b in (("in", "sum"), ("sum", "dense"), ("dense", "out")):
        net.connect(a, b)
    assert _same(net.run(8, device="cuda"), net.run(8, backend="torch"))
