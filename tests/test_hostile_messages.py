"""One-line errors that name the real problem, through the real CLI (a subprocess, as a user
runs it): the messages table of the hostile-input suite (see test_hostile_inputs.py).

Every refusal is checked the same way: exit code 2, exactly one line on stderr, no traceback,
the words that name the problem (and not the words of the wrong diagnosis it used to give),
and the case's folder exactly as it was before (no --out folder, no staging left behind).
Non-finite checkpoints (NaN / +inf / -inf in one element of one tensor) go through profile,
track and loihi; weights that overflow at run time likewise. An exception that is not the
user's bad input (a plain ValueError) keeps its traceback and exit code 1.
"""
from __future__ import annotations

import math
import pathlib
import pickle
import random
import subprocess
import sys
import tempfile
import zipfile
from argparse import Namespace

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from hostile_cli import assert_refused, run_cli, run_many, snapshot
from snnsim.tracking.synthetic import write_mot_sequence, write_sot_sequence

TINY = "spiketrack-tiny"
VALUES = {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf}


# ------------------------------------------------------------------ inputs
class _Payload:
    """An exploit-shaped pickle that would only print (never anything harmful) if unpickled."""

    def __reduce__(self):
        return (print, ("pwned",))


_TINY_SD: dict = {}


def tiny_state_dict() -> dict[str, torch.Tensor]:
    """spiketrack-tiny's state dict (random initialisation, seed 0), built once per process."""
    if not _TINY_SD:
        from snnsim.models import build_model

        torch.manual_seed(0)
        _TINY_SD.update(build_model(TINY, weights="random").state_dict())
    return {k: v.clone() for k, v in _TINY_SD.items()}


def float_keys() -> list[str]:
    tiny_state_dict()
    return [k for k, v in _TINY_SD.items() if v.is_floating_point() and v.numel()]


def poisoned(seed: int, value: float) -> tuple[dict[str, torch.Tensor], str, int]:
    """The state dict with one element (drawn with `seed`) of one tensor set to `value`."""
    rng = random.Random(seed)
    sd = tiny_state_dict()
    key = rng.choice(float_keys())
    pos = rng.randrange(sd[key].numel())
    sd[key].view(-1)[pos] = value
    return sd, key, pos


def _seq(work):
    return write_sot_sequence(work / "seq", n_frames=3, size=(64, 64), seed=1)


def _seq1(work):
    return write_sot_sequence(work / "seq1", n_frames=1, size=(64, 64), seed=1)


def _box_seq(name: str, line2: str):
    def make(work):
        seq = write_sot_sequence(work / name, n_frames=3, size=(64, 64), seed=1)
        lines = (seq / "groundtruth.txt").read_text().splitlines()
        lines[1] = line2
        (seq / "groundtruth.txt").write_text("\n".join(lines) + "\n")
        return seq
    return make


def _size_seq(work):
    from PIL import Image

    seq = write_sot_sequence(work / "sizes", n_frames=3, size=(64, 64), seed=1)
    Image.new("RGB", (80, 64), (90, 90, 90)).save(seq / "00000002.jpg")   # 80 wide: not the first frame's 64
    return seq


def _mot_dup(work):
    seq = write_mot_sequence(work / "motdup", n_frames=2, size=(64, 96), n_targets=2, seed=1)
    gt = seq / "gt" / "gt.txt"
    first = gt.read_text().splitlines()[0]
    gt.write_text(gt.read_text() + first + "\n")   # the same (frame, id) twice
    return seq


def _plain_zip(work):
    with zipfile.ZipFile(work / "weights.zip", "w") as z:
        z.writestr("hello.txt", "not weights")
    return work / "weights.zip"


def _exploit(work):
    path = work / "exploit.pth"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    return path


def _exploit_torch(work):
    path = work / "exploit_torch.pth"
    torch.save({"net": {"w": torch.zeros(2)}, "hook": _Payload()}, path)
    return path


def _empty(work):
    (work / "empty.pth").write_bytes(b"")
    return work / "empty.pth"


def _text(work):
    (work / "notes.pth").write_text("these are my notes, not weights\n")
    return work / "notes.pth"


def _overflow(work):
    """Finite weights whose first convolution overflows float32 to inf at run time."""
    sd = tiny_state_dict()
    sd["encoder.downsample1_1.encode_conv.weight"].fill_(1e38)
    sd["encoder.downsample1_1.encode_conv.bias"].fill_(3e38)
    torch.save(sd, work / "overflow.pth")
    return work / "overflow.pth"


INPUTS = {
    "seq": _seq, "seq1": _seq1, "negseq": _box_seq("negseq", "10,10,-5,12"),
    "negh": _box_seq("negh", "10,10,5,-12"), "zeroseq": _box_seq("zeroseq", "10,10,0,12"),
    "sizeseq": _size_seq, "motdup": _mot_dup, "zip": _plain_zip, "exploit": _exploit,
    "exploit_torch": _exploit_torch, "empty": _empty, "text": _text, "overflow": _overflow,
}


def _poison_input(seed: int, value: str):
    def make(work):
        sd, key, _ = poisoned(seed, VALUES[value])
        path = work / f"{value.strip('+-')}.pth"
        torch.save(sd, path)
        return path
    return make


# ------------------------------------------------------------------ the table
PROFILE = ["profile", TINY, "--hardware", "horowitz-45nm-fp32", "--capture", "none", "--quiet", "--out", "{out}"]
PROFILE_ANN = ["profile", "asymtrack-t", "--weights", "golden", "--hardware", "horowitz-45nm-fp32", "--quiet",
               "--out", "{out}"]
TRACK = ["track", TINY, "{seq}", "--hardware", "horowitz-45nm-fp32", "--quiet", "--out", "{out}"]
LOIHI = ["loihi", TINY, "--quiet", "--out", "{out}"]
WITH_WEIGHTS = {"profile": PROFILE, "track": TRACK, "loihi": LOIHI}

CASES: list[dict] = [
    # --weights "" used to be called "'' is a folder" (pathlib reads "" as ".")
    *[{"id": f"weights-empty-{cmd}", "argv": [*argv, "--weights", ""], "words": ["--weights is empty"],
       "not_words": ["folder"]} for cmd, argv in WITH_WEIGHTS.items()],
    {"id": "weights-blank-profile", "argv": [*PROFILE, "--weights", "  "], "words": ["--weights is empty"]},
    # a folder given as --weights used to be "no checkpoint file" in track and loihi
    *[{"id": f"weights-folder-{cmd}", "argv": [*argv, "--weights", "{seq}"], "words": ["seq' is a folder"],
       "not_words": ["no checkpoint file"]} for cmd, argv in WITH_WEIGHTS.items() if cmd != "profile"],
    # --sequence FILE used to "not exist"
    {"id": "sequence-file-profile", "argv": [*PROFILE_ANN, "--sequence", "{seq}/groundtruth.txt"],
     "words": ["groundtruth.txt is a file, not a sequence folder"], "not_words": ["does not exist"]},
    {"id": "sequence-file-track", "argv": ["track", "asymtrack-t", "{seq}/00000001.jpg", "--quiet", "--out", "{out}"],
     "words": ["00000001.jpg is a file, not a sequence folder"], "not_words": ["does not exist"]},
    {"id": "sequence-empty-track", "argv": ["track", "asymtrack-t", "", "--quiet", "--out", "{out}"],
     "words": ["sequence folder path is empty"], "not_words": ["not a sequence folder"]},
    # a one-frame sequence used to be told to "give --frames 0"
    {"id": "one-frame-profile", "argv": [*PROFILE_ANN, "--sequence", "{seq1}"],
     "words": ["seq1 has only 1 frame", "at least 2 frames"], "not_words": ["--frames 0"]},
    {"id": "one-frame-track", "argv": ["track", "asymtrack-t", "{seq1}", "--weights", "golden", "--quiet",
                                       "--out", "{out}"],
     "words": ["seq1 has only 1 frame", "at least 2 frames"], "not_words": ["sot_metrics"]},
    # a negative box used to be "zero-size"
    {"id": "negative-width", "argv": ["track", "asymtrack-t", "{negseq}", "--quiet", "--out", "{out}"],
     "words": ["groundtruth.txt:2", "negative width (w=-5"], "not_words": ["zero-size"]},
    {"id": "negative-height", "argv": [*PROFILE_ANN, "--sequence", "{negh}"],
     "words": ["groundtruth.txt:2", "negative height (w=5, h=-12)"], "not_words": ["zero-size"]},
    {"id": "zero-width", "argv": ["track", "asymtrack-t", "{zeroseq}", "--quiet", "--out", "{out}"],
     "words": ["groundtruth.txt:2", "zero-size box (w=0"], "not_words": ["negative"]},
    # a sequence whose frames change size (found mid-run, by the runtime)
    {"id": "frame-size-changes", "argv": ["track", "asymtrack-t", "{sizeseq}", "--weights", "golden", "--quiet",
                                          "--out", "{out}"],
     "words": ["00000002.jpg is 80x64", "64x64"]},
    # a MOT ground truth with an id twice in one frame (used to fail inside the metrics)
    {"id": "mot-id-twice", "argv": ["track", "smtrack-s", "{motdup}", "--quiet", "--out", "{out}"],
     "words": ["gt.txt:", "twice", "unique within a frame"]},
    {"id": "input-size-not-32", "argv": ["track", "smtrack-s", "{seq}", "--input-size", "100x100", "--quiet",
                                         "--out", "{out}"],
     "words": ["multiples of 32"]},
    # measure: the model name first, then the weights, then the GPU
    {"id": "measure-unknown-model", "argv": ["measure", "nosuch", "--out", "{out}"],
     "words": ["unknown model 'nosuch'", "known models", "asymtrack-t"], "not_words": ["GPU", "CUDA"]},
    {"id": "measure-missing-weights", "argv": ["measure", "asymtrack-t", "--weights", "nope.pth", "--out", "{out}"],
     "words": ["no checkpoint file at 'nope.pth'"], "not_words": ["GPU", "CUDA"]},
    {"id": "measure-unknown-base", "argv": ["measure", "asymtrack-t", "--base", "nosuch", "--out", "{out}"],
     "words": ["unknown hardware 'nosuch'"], "not_words": ["GPU", "CUDA"]},
    {"id": "measure-zip-weights", "argv": ["measure", "asymtrack-t", "--weights", "{zip}", "--out", "{out}"],
     "words": ["not a PyTorch checkpoint"], "not_words": ["GPU", "CUDA"]},
    # files that are not checkpoints, said from their bytes
    {"id": "zip-not-torch", "argv": [*PROFILE, "--weights", "{zip}"],
     "words": ["weights.zip: not a PyTorch checkpoint", "zip archive without torch's data.pkl", "hello.txt"],
     "not_words": ["enforce fail", "inline_container"]},
    {"id": "empty-file", "argv": [*PROFILE, "--weights", "{empty}"], "words": ["empty.pth: the file is empty"]},
    {"id": "text-file", "argv": [*LOIHI, "--weights", "{text}"],
     "words": ["notes.pth: not a PyTorch checkpoint", "'these ar'"], "not_words": ["KeyError"]},
    # torch's protocol warning used to leak onto stderr (3 lines)
    *[{"id": f"exploit-pickle-{cmd}", "argv": [*argv, "--weights", "{exploit}"],
       "words": ["exploit.pth: the file holds pickled Python objects (builtins.print)", "will not unpickle"],
       "not_words": ["pwned", "Unsupported operand"]} for cmd, argv in WITH_WEIGHTS.items() if cmd != "track"],
    {"id": "exploit-torch-zip", "argv": [*TRACK, "--weights", "{exploit_torch}"],
     "words": ["pickled Python objects", "print", "will not unpickle"], "not_words": ["pwned"]},
    # finite weights that overflow float32 at run time: one line naming the module
    *[{"id": f"overflow-{cmd}", "argv": [*argv, "--weights", "{overflow}"],
       "words": ["module 'encoder.downsample1_1.encode_conv'", "inf"]} for cmd, argv in WITH_WEIGHTS.items()],
]
# NaN / +inf / -inf in one element (drawn per case) of one tensor of the checkpoint, for every
# command that takes --weights: the exact key is named, with the count of bad values.
NONFINITE_CASES = [{"id": f"nonfinite-{value}-{cmd}", "argv": [*argv, "--weights", "{poison}"],
                    "poison": (1000 + 10 * i + j, value)}
                   for i, (cmd, argv) in enumerate(WITH_WEIGHTS.items()) for j, value in enumerate(VALUES)]
ALL_CASES = CASES + NONFINITE_CASES


def _prepare(work: pathlib.Path, case: dict) -> list[str]:
    fill = {"out": str(work / "out")}
    for name, make in INPUTS.items():
        if any("{" + name + "}" in a for a in case["argv"]):
            fill[name] = str(make(work))
    if "poison" in case:
        fill["poison"] = str(_poison_input(*case["poison"])(work))
    return [a.format(**fill) for a in case["argv"]]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case in its own folder, run as a subprocess two or three at a time (each is mostly
    interpreter start-up and imports): id -> (proc, before, after)."""
    prepared = []
    for case in ALL_CASES:   # inputs are written here, one at a time (torch in this process)
        work = tmp_path_factory.mktemp(case["id"])
        prepared.append((case["id"], work, _prepare(work, case), snapshot(work)))

    def one(item):
        case_id, work, argv, before = item
        proc = run_cli(argv, cwd=work)
        return case_id, (proc, before, snapshot(work))

    return run_many(prepared, one)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_refused_in_one_line_naming_the_problem(results, case):
    proc, before, after = results[case["id"]]
    assert_refused(proc, case.get("words", ()), case.get("not_words", ()))
    assert "pwned" not in proc.stdout + proc.stderr   # nothing from the file ever runs
    assert after == before                             # no --out folder, no staging, nothing else


@pytest.mark.parametrize("case", NONFINITE_CASES, ids=[c["id"] for c in NONFINITE_CASES])
def test_nonfinite_checkpoint_named_by_key(results, case):
    seed, value = case["poison"]
    _, key, _ = poisoned(seed, VALUES[value])
    proc, before, after = results[case["id"]]
    line = assert_refused(proc, [f"tensor '{key}' holds 1 NaN/inf value of ", "must be finite"],
                          ["Traceback", "produced"])
    assert ("1 NaN" if value == "nan" else "1 inf") in line
    assert after == before


def test_nonfinite_cases_cover_every_command_and_value():
    seen = {(c["argv"][0], c["poison"][1]) for c in NONFINITE_CASES}
    assert seen == {(cmd, v) for cmd in WITH_WEIGHTS for v in VALUES}


# ------------------------------------------------------------------ the same, as a property of loading
@pytest.fixture(scope="module")
def tiny_model():
    from snnsim.models import build_model

    return build_model(TINY, weights="random")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=st.sampled_from(sorted(VALUES)), count=st.integers(1, 5))
def test_loading_refuses_any_nonfinite_element(tiny_model, data, value, count):
    """NaN / +inf / -inf in `count` elements of one tensor: refused before loading, naming the
    key and the count, in one line; the model keeps its weights."""
    from snnsim.models.checkpoint import CheckpointNonFiniteError, load_checkpoint

    sd = tiny_state_dict()
    key = data.draw(st.sampled_from(float_keys()), label="key")
    n = sd[key].numel()
    positions = data.draw(st.sets(st.integers(0, n - 1), min_size=min(count, n), max_size=min(count, n)),
                          label="positions")
    for p in positions:
        sd[key].view(-1)[p] = VALUES[value]
    before = tiny_model.state_dict()[key].clone()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "bad.pth"
        torch.save({"net": sd}, path)   # nested as SpikeTrack's own checkpoints are
        with pytest.raises(CheckpointNonFiniteError) as info:
            load_checkpoint(tiny_model, path)
    msg = str(info.value)
    k = len(positions)
    assert "\n" not in msg and str(path) in msg
    assert f"tensor '{key}' holds {k} NaN/inf value{'s' if k > 1 else ''} of {n}" in msg
    assert info.value.key == key and info.value.count == k
    assert torch.equal(tiny_model.state_dict()[key], before)   # refused before anything was loaded


def test_first_nonfinite_key_in_file_order(tiny_model, tmp_path):
    from snnsim.models.checkpoint import CheckpointNonFiniteError, load_checkpoint

    sd = tiny_state_dict()
    keys = float_keys()
    sd[keys[-1]].view(-1)[0] = math.inf
    sd[keys[5]].view(-1)[:3] = math.nan
    torch.save(sd, tmp_path / "two.pth")
    with pytest.raises(CheckpointNonFiniteError, match=rf"tensor '{keys[5]}' holds 3 NaN/inf values .*\(3 NaN\)"):
        load_checkpoint(tiny_model, tmp_path / "two.pth")


def test_a_checkpoint_of_another_model_is_said_before_its_nan(tmp_path):
    """The wrong model is the real problem; its NaN would be beside the point."""
    from snnsim.models import build_model
    from snnsim.models.checkpoint import CheckpointMismatchError

    sd, _, _ = poisoned(3, math.nan)
    torch.save(sd, tmp_path / "tiny.pth")
    with pytest.raises(CheckpointMismatchError, match="does not match model 'asymtrack-t'"):
        build_model("asymtrack-t", weights=str(tmp_path / "tiny.pth"))


def test_random_and_golden_weights_are_finite():
    from snnsim.models import build_model
    from snnsim.models.checkpoint import check_finite

    for weights in ("random", "golden"):
        check_finite(build_model(TINY, weights=weights).state_dict(), weights)


# ------------------------------------------------------------------ overflow outside the profiler (loihi)
def _overflowing(model):
    with torch.no_grad():
        conv = dict(model.named_modules())["encoder.downsample1_1.encode_conv"]
        conv.weight.fill_(1e38)
        conv.bias.fill_(3e38)
    return model


def test_loihi_mapping_trace_refuses_overflow():
    """The mapper runs the float model outside the counting profiler: an overflow there stops
    the mapping with the profiler's error, naming the module, instead of quantising inf."""
    from snnsim.counting import NonFiniteActivationError
    from snnsim.loihi.mapper import map_model
    from snnsim.models import build_model

    net = _overflowing(build_model(TINY, weights="random"))
    with pytest.raises(NonFiniteActivationError, match=r"module 'encoder\.downsample1_1\.encode_conv'.* inf"):
        map_model(net, "random", name=TINY)


def test_loihi_uncounted_fidelity_passes_refuse_overflow():
    """count=False runs every pass outside the profiler: the float model's overflow (weights
    changed after mapping) still stops the run."""
    from snnsim.counting import NonFiniteActivationError
    from snnsim.loihi.fidelity import run_fidelity
    from snnsim.loihi.mapper import fixed_point_model, map_model
    from snnsim.models import build_model

    net = build_model(TINY, weights="random")
    mapping = map_model(net, "random", name=TINY)
    fixed = fixed_point_model(net, mapping)
    _overflowing(net)
    with pytest.raises(NonFiniteActivationError, match=r"encode_conv"):
        run_fidelity(net, fixed, mapping, 1, count=False, closed_loop=False)


def test_finite_outputs_names_innermost_module_and_stays_out_of_dispatch_modes():
    from torch import nn

    from snnsim.counting import NonFiniteActivationError, Profiler
    from snnsim.loihi.finite import finite_outputs

    net = nn.Sequential(nn.Sequential(nn.Linear(4, 4)), nn.ReLU())
    x = torch.ones(1, 4)
    with Profiler(net, spike_formats=[]) as prof:
        net(x)
        plain = prof.result(1).totals
    with finite_outputs(net), Profiler(net, spike_formats=[]) as prof:
        net(x)
        guarded = prof.result(1).totals
    assert dict(plain) == dict(guarded)   # the check's reductions are not counted
    with torch.no_grad():
        net[0][0].weight.fill_(3e38)
    with pytest.raises(NonFiniteActivationError, match=r"module '0\.0' \(Linear\) produced inf"):
        with finite_outputs(net):
            net(x)
    assert not any(m._forward_hooks for m in net.modules())   # the check's hooks are gone again
    net(x)   # and nothing checks outside the block


# ------------------------------------------------------------------ what a user error is
def test_user_errors_are_the_named_types_only():
    from snnsim.counting import NonFiniteActivationError
    from snnsim.errors import user_errors
    from snnsim.models.checkpoint import CheckpointNonFiniteError
    from snnsim.tracking.errors import SequenceError
    from snnsim.tracking.run import TrackError

    errors = user_errors()
    for t in (NonFiniteActivationError, TrackError, SequenceError, CheckpointNonFiniteError):
        assert issubclass(t, errors), t
    assert ValueError not in errors and not isinstance(ValueError("bug"), errors)
    assert not isinstance(RuntimeError("bug"), errors)


def _track_args(tmp_path, **kw) -> Namespace:
    base = dict(model="asymtrack-t", sequence=str(tmp_path / "seq"), out=str(tmp_path / "out"), hardware="",
                weights=None, frames=None, input_size=None, quiet=True)
    base.update(kw)
    return Namespace(**base)


def test_cmd_track_lets_a_plain_value_error_through(monkeypatch, tmp_path, capsys):
    import snnsim.tracking.run as run
    from snnsim.tracking.cli_track import cmd_track

    def bug(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(run, "track_sequence", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        cmd_track(_track_args(tmp_path))
    assert capsys.readouterr().err == ""

    def bad_input(*args, **kwargs):
        raise run.TrackError("--frames must be at least 1 (got 0)")

    monkeypatch.setattr(run, "track_sequence", bad_input)
    assert cmd_track(_track_args(tmp_path)) == 2
    assert capsys.readouterr().err == "snnsim track: error: --frames must be at least 1 (got 0)\n"


def test_cmd_loihi_lets_a_plain_value_error_through(monkeypatch, tmp_path, capsys):
    import snnsim.loihi.job as job
    from snnsim.loihi.cli_loihi import cmd_loihi

    def bug(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(job, "run_loihi_job", bug)
    args = Namespace(model=TINY, backend="emulator", frames=1, weights=None, out=str(tmp_path / "out"), quiet=True)
    with pytest.raises(ValueError, match="an internal bug"):
        cmd_loihi(args)
    assert capsys.readouterr().err == ""


# A plain ValueError raised by snnsim's own code (patched in, as a bug would be) through the
# real `snnsim` entry point: exit code 1 and the traceback, never "error: <bug>" as bad input.
_BUG = """
import sys, {module} as target
def bug(*args, **kwargs):
    raise ValueError("an internal bug")
target.{name} = bug
from snnsim.cli import main
sys.exit(main({argv!r}))
"""
INTERNAL = [
    ("track", "snnsim.tracking.run", "track_sequence", ["track", "asymtrack-t", "{seq}", "--out", "{out}"]),
    ("loihi", "snnsim.loihi.job", "run_loihi_job", ["loihi", TINY, "--out", "{out}"]),
    ("profile", "snnsim.cli", "_run_model", ["profile", "asymtrack-t", "--out", "{out}", "--quiet"]),
]


@pytest.mark.parametrize("command, module, name, argv", INTERNAL, ids=[c[0] for c in INTERNAL])
def test_internal_error_keeps_traceback_and_exit_1(tmp_path, command, module, name, argv):
    seq = _seq(tmp_path)
    argv = [a.format(seq=seq, out=tmp_path / "out") for a in argv]
    proc = subprocess.run([sys.executable, "-c", _BUG.format(module=module, name=name, argv=argv)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" in proc.stderr and "ValueError: an internal bug" in proc.stderr
    assert f"snnsim {command}: error" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_runtime_frame_size_change_is_a_sequence_error():
    """The SOT runtime's own check (frames handed to it directly, not through a sequence
    reader) is a user error too, saying which frame and both sizes."""
    import numpy as np

    from snnsim.errors import user_errors
    from snnsim.models import build_model
    from snnsim.tracking.errors import SequenceError
    from snnsim.tracking.sot import make_sot_runtime

    runtime = make_sot_runtime(build_model("asymtrack-t", weights="golden"))
    runtime.initialize(np.zeros((64, 64, 3), np.uint8), [20, 20, 10, 10])
    with pytest.raises(SequenceError, match="frame 1 is 80x64 but the first frame is 64x64") as info:
        runtime.track(np.zeros((64, 80, 3), np.uint8))
    assert isinstance(info.value, user_errors())


def test_negative_and_zero_boxes_are_told_apart():
    from snnsim.tracking.boxes import box_size_problem
    from snnsim.tracking.sot import context_side

    assert box_size_problem(3, 4) is None
    assert box_size_problem(-3, 4).startswith("negative width (w=-3, h=4)")
    assert box_size_problem(3, -4).startswith("negative height")
    assert box_size_problem(-3, -4).startswith("negative width and height")
    assert box_size_problem(0, 4).startswith("zero-size box (w=0, h=4)")
    assert box_size_problem(-3, 0).startswith("negative width")   # the sign is the first thing to fix
    with pytest.raises(ValueError, match="negative width"):
        context_side([0, 0, -2, 10], 4.0)


# ------------------------------------------------------------------ not refused
def test_track_of_one_frame_writes_no_metrics_rather_than_failing(tmp_path):
    """--frames 1 on a GOT-10k sequence: only the given first box, nothing to score; a note
    says so (it used to end in 'sot_metrics: no frame has a valid ground-truth box')."""
    from snnsim.tracking.run import track_sequence

    seq = _seq(tmp_path)
    s = track_sequence("asymtrack-t", seq, tmp_path / "out", hardware=[], weights="golden", frames=1)
    assert s["frames"] == 1 and s["metrics"] is None
    assert any("No metrics" in n and "frame 0" in n for n in s["notes"])
    assert not (tmp_path / "out" / "metrics.json").exists()
