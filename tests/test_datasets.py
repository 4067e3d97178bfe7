"""Dataset runs (issue 14): layouts and sequence choice, exact merges against single runs of the
same sequences, the same bytes whatever the workers (in-process or Ray) and the completion
order, resuming, failures listed and never hidden, a worker killed mid-run, the CLI's bad
inputs. Small synthetic sequences and spiketrack-tiny keep it to seconds per run."""
from __future__ import annotations

import filecmp
import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import snnsim
from snnsim.cli import main
from snnsim.datasets import find_dataset
from snnsim.datasets import run as dataset_run
from snnsim.datasets.layouts import read_sequence_list, select_sequences
from snnsim.tracking.errors import SequenceError
from snnsim.tracking.synthetic import write_mot_sequence, write_sot_sequence

MODEL = "spiketrack-tiny"
HW = ["horowitz-45nm-fp32", "loihi2"]
LENGTHS = (5, 4, 6)
SAME_BYTES = ("dataset_summary.json", "sequences.csv", "frames.parquet", "failures.csv")


@pytest.fixture(scope="module")
def got(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds") / "got"
    for i, n in enumerate(LENGTHS):
        write_sot_sequence(root / f"seq{i + 1}", n_frames=n, size=(96, 128), seed=i)
    return root


@pytest.fixture()
def small_chunks(monkeypatch):
    """Chunks of 2 frames: every sequence is cut into several calls, so the merge is exercised."""
    monkeypatch.setattr(dataset_run, "CHUNK_FRAMES", 2)


@pytest.fixture(scope="module")
def ray_session():
    import builtins

    pytest.importorskip("ray")
    printer = builtins.print
    ray = dataset_run.import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    assert builtins.print is printer   # Ray must not have replaced the user's print


# ------------------------------------------------------------------------ layouts
def test_layouts_and_sequence_choice(tmp_path, got):
    assert [s.name for s in find_dataset(got)] == ["seq1", "seq2", "seq3"]
    lasot = tmp_path / "lasot"
    for cls, k in (("airplane", 2), ("bird", 1)):
        for j in range(1, k + 1):
            write_sot_sequence(lasot / cls / f"{cls}-{j}" / "img", n_frames=2, size=(64, 64), seed=j)
            (lasot / cls / f"{cls}-{j}" / "groundtruth.txt").write_text(
                (lasot / cls / f"{cls}-{j}" / "img" / "groundtruth.txt").read_text())
    found = find_dataset(lasot)
    assert [s.name for s in found] == ["airplane/airplane-1", "airplane/airplane-2", "bird/bird-1"]
    assert [s.name for s in select_sequences(found, ["bird-1", "airplane/airplane-2"])] == [
        "airplane/airplane-2", "bird/bird-1"]
    mot = tmp_path / "mot"
    write_mot_sequence(mot / "MOT-02", n_frames=2, size=(64, 96), seed=1)
    assert [s.name for s in find_dataset(mot)] == ["MOT-02"]
    names = tmp_path / "names.txt"
    names.write_text("# chosen\nseq3\n\nseq1  # and this\n")
    assert read_sequence_list(f"@{names}") == ["seq3", "seq1"]
    assert [s.name for s in select_sequences(find_dataset(got), read_sequence_list("seq3,seq1"))] == ["seq1", "seq3"]
    with pytest.raises(SequenceError, match="no sequence 'seq9'.*3 found: seq1, seq2, seq3"):
        select_sequences(find_dataset(got), ["seq9"])
    dup = tmp_path / "dup"
    for cls in ("a", "b"):
        write_sot_sequence(dup / cls / "x-1", n_frames=2, size=(64, 64), seed=0)
    with pytest.raises(SequenceError, match="'x-1' matches 2 sequences"):
        select_sequences(find_dataset(dup), ["x-1"])
    with pytest.raises(SequenceError, match="is one sequence, not a dataset"):
        find_dataset(got / "seq1")


# ------------------------------------------------------------------------ exact merge
def test_merged_totals_equal_single_runs_of_the_same_sequences(tmp_path, got, small_chunks):
    """Chunks of 2 frames merged in the driver give exactly the counts of one profile run per
    sequence, summed; the energy is priced once, on the merged counts."""
    from snnsim.energy import estimate, load_hardware
    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    s = snnsim.profile_dataset(MODEL, got, tmp_path / "out", hardware=HW)
    model = build_model(MODEL)
    sums, template, per_seq, rates, weighted = {}, None, [], {}, {}
    for i, n in enumerate(LENGTHS):
        tp = profile_tracker(model, frames=n - 1, sequence=str(got / f"seq{i + 1}"))
        per_seq.append(estimate(tp, HW[0], "ac-mac").total_j)
        for hw in HW:   # each single run priced on its own, weighted by its frames
            for est in load_hardware(hw).estimators:
                weighted[(hw, est)] = weighted.get((hw, est), 0.0) + estimate(tp, hw, est).total_j * (n - 1)
        # each neuron module's firing rate over the sequence's tracking frames, from the single
        # run's neuron table (no chunks, no merge, no JSON): spikes / neuron updates
        frame = tp.neurons().query("branch == 'frame'").groupby("module")[["spikes", "neurons"]].sum()
        for module, r in frame.iterrows():
            rates.setdefault(module, []).append(r["spikes"] / r["neurons"])
        for k, v in zip(("dense_macs", "mac_ops", "syn_events", "syn_ops", "spike_spike", "spike_mask",
                         "neuron_updates", "spikes"), tp.aggregate.totals_sum.value()):
            sums[k] = sums.get(k, 0) + int(v)
    m = s["models"][MODEL]
    assert m["frames"] == sum(LENGTHS) - len(LENGTHS) and m["sequences"] == 3 and m["template_passes"] == 3
    assert m["totals_sum"] == sums
    for hw in HW:   # priced once on the merged counts = the frame-weighted mean of the single runs'
        for est, j in m["energy"][hw].items():
            assert j == pytest.approx(weighted[(hw, est)] / m["frames"], rel=1e-12), (hw, est)
    assert s["complete"] and s["sequences_line"] == "3 of 3 sequences"
    # each sequence's energy (sequences.csv) and their spread equal single runs of those sequences
    rows = pd.read_csv(tmp_path / "out" / "sequences.csv")
    assert list(rows[f"energy_J/{HW[0]}/ac-mac"]) == pytest.approx(per_seq, rel=1e-12)
    spread = m["energy_per_sequence"][HW[0]]["ac-mac"]
    assert spread["p50"] == pytest.approx(float(np.median(per_seq)), rel=1e-12)
    assert spread["min"] == pytest.approx(min(per_seq), rel=1e-12) and spread["sequences"] == 3
    # per-module firing-rate percentiles over the sequences
    got_rates = m["firing_rate_per_sequence"]
    assert set(got_rates) == set(rates) and len(rates) > 3
    for module, values in rates.items():
        assert got_rates[module]["sequences"] == 3
        for p in (5, 50, 95):
            assert got_rates[module][f"p{p}"] == pytest.approx(float(np.percentile(values, p)), rel=1e-12), module
    assert any(max(v) > 0 for v in rates.values())
    frames = pd.read_parquet(tmp_path / "out" / "frames.parquet")
    assert len(frames) == m["frames"] and int(frames["syn_events"].sum()) == sums["syn_events"]
    assert str(frames["syn_events"].dtype) == "int64"


def test_counts_survive_the_trip_through_json(got):
    """A FrameMean's state (what workers return and sequences/*.json hold) reads back exactly."""
    from snnsim.energy import estimate
    from snnsim.energy.frames import FrameMean
    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    tp = profile_tracker(build_model(MODEL), frames=3, sequence=str(got / "seq1"))
    back = FrameMean.from_state(json.loads(json.dumps(tp.aggregate.counts.to_state())))
    for a, b in zip(tp.aggregate.counts.sum_tables(), back.sum_tables()):
        pd.testing.assert_frame_equal(a[0], b[0])
        pd.testing.assert_frame_equal(a[1], b[1])
    assert estimate(back, "loihi2", "loihi").total_j == estimate(tp.aggregate.counts, "loihi2", "loihi").total_j


# ------------------------------------------------------------------------ Ray, resume, failures
def test_ray_workers_give_the_same_files_as_one_process(tmp_path, got, small_chunks, ray_session):
    one = tmp_path / "one"
    snnsim.profile_dataset(MODEL, got, one, hardware=HW)
    two = tmp_path / "two"
    snnsim.profile_dataset(MODEL, got, two, hardware=HW, workers=2)
    for name in SAME_BYTES:
        assert filecmp.cmp(one / name, two / name, shallow=False), name


def test_a_killed_worker_is_retried_and_nothing_counts_twice(tmp_path, got, small_chunks, ray_session):
    ref = tmp_path / "ref"
    snnsim.profile_dataset(MODEL, got, ref, hardware=HW)
    killed = []

    def kill_one(progress):
        if not killed:
            pid = progress["pids"]()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    from snnsim.datasets import _job

    job = _job("profile", [MODEL], got, None, None, HW, None, 2, None)
    s = dataset_run.run_dataset(job, tmp_path / "killed", on_progress=kill_one)
    assert killed and s["complete"]
    for name in SAME_BYTES:
        assert filecmp.cmp(ref / name, tmp_path / "killed" / name, shallow=False), name


def test_resume_skips_finished_sequences(tmp_path, got, small_chunks):
    out = tmp_path / "run"
    first = snnsim.profile_dataset(MODEL, got, out, hardware=HW, sequences=["seq1", "seq2"])
    assert first["sequences_line"] == "2 of 2 sequences"
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "sequences").iterdir()}
    ran = []
    from snnsim.datasets import _job

    job = _job("profile", [MODEL], got, None, None, HW, None, 1, None)
    dataset_run.run_dataset(job, out, on_progress=lambda p: ran.append(p["sequence"]))
    assert ran == ["seq3"]
    assert all((out / "sequences" / n).stat().st_mtime_ns == t for n, t in kept.items())
    fresh = tmp_path / "fresh"
    snnsim.profile_dataset(MODEL, got, fresh, hardware=HW)
    for name in SAME_BYTES:
        assert filecmp.cmp(out / name, fresh / name, shallow=False), name
    # other settings in the same folder: refused, nothing mixed
    assert main(["profile", MODEL, "--dataset", str(got), "--out", str(out), "--hardware", "loihi2", "--quiet"]) == 2


def test_a_broken_sequence_is_listed_and_the_others_complete(tmp_path, got, capsys):
    broken = tmp_path / "broken"
    for i, n in enumerate(LENGTHS):
        write_sot_sequence(broken / f"seq{i + 1}", n_frames=n, size=(96, 128), seed=i)
    (broken / "seq2" / "00000003.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code = main(["profile", MODEL, "--dataset", str(broken), "--out", str(out), "--hardware", HW[0]])
    assert code == 1
    printed = capsys.readouterr().out
    assert "2 of 3 sequences finished, 1 failed (failures.csv)" in printed
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures["sequence"]) == ["seq2"] and "00000003.jpg" in failures["reason"][0]
    assert "\n" not in failures["reason"][0]
    s = json.loads((out / "dataset_summary.json").read_text())
    assert not s["complete"] and s["sequences"] == {"total": 3, "finished": 2, "failed": 1}
    assert s["models"][MODEL]["sequences"] == 2
    assert "NOT complete" in (out / "report.md").read_text()


def test_track_dataset_boxes_metrics_and_energy(tmp_path, got):
    s = snnsim.track_dataset(MODEL, got, tmp_path / "t", hardware=HW[:1])
    m = s["models"][MODEL]
    assert m["frames"] == sum(LENGTHS) and m["template_passes"] >= 3
    frames = pd.read_parquet(tmp_path / "t" / "frames.parquet")
    assert len(frames) == sum(LENGTHS) and frames["template_pass"].sum() == m["template_passes"]
    assert frames.loc[frames["frame"] == 0, "iou"].eq(1.0).all()     # frame 0 reports the given box
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())[MODEL]
    rows = pd.read_csv(tmp_path / "t" / "sequences.csv")
    # success curves averaged over the sequences: the dataset AUC is the mean of the sequences' AUCs
    # GOT-10k scoring leaves out frame 0 (the given box) of each sequence
    assert metrics["sequences_scored"] == 3 and metrics["sot"]["n_frames"] == int(rows["frames"].sum()) - 3
    assert metrics["sot"]["auc"] == pytest.approx(rows["auc"].mean(), rel=1e-12)
    assert metrics["sot"]["precision"] == pytest.approx(rows["precision"].mean(), rel=1e-12)
    # search pass alone (template cached) below the view that charges template passes to their frames
    for est, j in m["energy"][HW[0]].items():
        assert j < m["energy_with_template_per_frame"][HW[0]][est]
    # the same as one `snnsim track` per sequence (each its own summary.json and per_frame.csv):
    # search totals summed; energy per frame the frame-weighted mean of the runs' own figures;
    # each sequence's row its run's energy; the template pass weighted by the passes; the
    # with-template counts and frames.parquet the runs' per_frame.csv rows
    from snnsim.tracking.run import COUNT_COLUMNS, track_sequence

    singles, per_frames = [], []
    for i, n in enumerate(LENGTHS):
        singles.append(track_sequence(MODEL, got / f"seq{i + 1}", tmp_path / f"single{i}", hardware=HW[:1]))
        per_frames.append(pd.read_csv(tmp_path / f"single{i}" / "per_frame.csv"))
    n_frames = sum(r["frames"] for r in singles)
    passes = sum(r["template_passes"] for r in singles)
    assert m["template_passes"] == passes
    for k in COUNT_COLUMNS:
        assert m["totals_sum"][k] == pytest.approx(sum(r["totals"][k] * r["frames"] for r in singles),
                                                   rel=1e-12, abs=1e-6), k
        assert m["template"][k] == pytest.approx(sum(r["template"][k] * r["template_passes"] for r in singles)
                                                 / passes, rel=1e-12), k
        assert m["totals_with_template_sum"][k] == sum(int(f[k].sum()) for f in per_frames), k
    all_rows = pd.concat(per_frames, ignore_index=True)
    for est, j in m["energy"][HW[0]].items():
        col = f"energy_J/{HW[0]}/{est}"
        assert j == pytest.approx(sum(r["energy"][HW[0]][est] * r["frames"] for r in singles) / n_frames,
                                  rel=1e-12), est
        assert m["energy_template"][HW[0]][est] == pytest.approx(
            sum(r["energy_template"][HW[0]][est] * r["template_passes"] for r in singles) / passes, rel=1e-12), est
        assert list(rows[col]) == pytest.approx([r["energy"][HW[0]][est] for r in singles], rel=1e-12), est
        # per_frame.csv's view (template passes charged to their frames), frame by frame and averaged
        assert list(frames[col]) == pytest.approx(list(all_rows[col]), rel=1e-12), est
        assert m["energy_with_template_per_frame"][HW[0]][est] == pytest.approx(float(all_rows[col].mean()),
                                                                                rel=1e-12)
    assert list(frames["syn_events"]) == list(all_rows["syn_events"])


# ------------------------------------------------------------------------ the CLI's bad inputs
def test_an_interrupted_run_resumes_and_its_folder_is_never_replaced(tmp_path, got):
    """A run killed mid-write leaves temporary files: the rerun sweeps them and finishes; a
    damaged sequence file is counted again; another command may not replace the folder."""
    out = tmp_path / "run"
    snnsim.profile_dataset(MODEL, got, out, hardware=HW[:1], sequences=["seq1"])
    (out / ".snnsim-tmp-0123abcd-report.html").write_text("half")
    (out / "sequences" / ".snnsim-tmp-0123abcd-seq2.json").write_text("{")
    (out / dataset_run.sequence_file("seq1")).write_text('{"sequence": "seq1", "mod')   # cut short
    s = snnsim.profile_dataset(MODEL, got, out, hardware=HW[:1])
    assert s["sequences_line"] == "3 of 3 sequences" and s["complete"]
    assert not list(out.rglob(".snnsim-tmp-*"))
    assert main(["profile", MODEL, "--sequence", str(got / "seq1"), "--out", str(out), "--quiet"]) == 2
    assert (out / "sequences").is_dir()


def test_models_without_shipped_weights_are_the_same_network_in_every_worker(tmp_path, got):
    """Random initial weights are drawn after the seed `snnsim profile` uses: two runs (and any
    two workers) count the same network."""
    from snnsim import cli
    from snnsim.datasets import worker

    assert worker.RANDOM_SEED == cli.SEED
    runs = [snnsim.profile_dataset("spiketrack-s256-t1", got, tmp_path / f"r{i}", hardware=[], sequences=["seq2"],
                                   max_frames=1) for i in range(2)]
    assert runs[0]["models"]["spiketrack-s256-t1"]["totals_sum"] == runs[1]["models"]["spiketrack-s256-t1"]["totals_sum"]
    assert runs[0]["models"]["spiketrack-s256-t1"]["totals_sum"]["spikes"] > 0


def test_links_and_long_names(tmp_path, got):
    from snnsim.datasets.layouts import find_dataset as find

    root = tmp_path / "links"
    root.mkdir()
    for name in ("a", "b"):
        (root / name).symlink_to(got / "seq1")          # one sequence, reached twice
    (root / "loop").symlink_to(root)                    # a link back up the tree
    assert [s.name for s in find(root)] == ["a"]
    long_name = "序列" * 80 + "/x"
    rel = dataset_run.sequence_file(long_name)
    assert len(rel.encode()) < 100 and rel.isascii() and rel != dataset_run.sequence_file(long_name + "y")


@pytest.mark.parametrize("argv, message", [
    (["profile", MODEL, "asymtrack-t"], "profile takes one MODEL (got 2)"),
    (["profile", MODEL, "--dataset", "/no/such/folder"], "no such folder"),
    (["profile", MODEL, "--dataset", "{got}/seq1/groundtruth.txt"], "is a file, not a folder"),
    (["profile", MODEL, "--dataset", "{got}/seq1"], "is one sequence, not a dataset"),
    (["profile", MODEL, "--dataset", "{got}", "--sequences", "seq9"], "no sequence 'seq9'"),
    (["profile", MODEL, "--dataset", "{got}", "--sequences", "@/no/list.txt"], "cannot read"),
    (["profile", MODEL, "--dataset", "{got}", "--sequence", "{got}/seq1"], "not both"),
    (["profile", MODEL, "--max-frames", "3"], "applies to a dataset run"),
    (["profile", MODEL, "--workers", "4"], "--workers applies to a dataset run"),        # was ignored
    (["track", MODEL, "{got}/seq1", "--workers", "2"], "--workers applies to a dataset run"),
    (["profile", MODEL, MODEL, "--dataset", "{got}"], "given twice"),
    (["profile", MODEL, "--dataset", "{got}", "--ray-address", "nowhere"], "--ray-address"),
    (["track", MODEL, "{got}/seq1", "--dataset", "{got}"], "not both"),
    (["track", MODEL], "give a SEQUENCE folder"),
    (["profile", "smtrack-s", "--dataset", "{got}"], "multi-object tracker but no sequence"),
    (["profile", MODEL, "--dataset", "{got}", "--weights", "{ann_weights}"], "does not match"),
    (["profile", MODEL, "--dataset", "{got}", "--ray-address", "127.0.0.1:1"], "nothing answers there"),
])
def test_bad_dataset_arguments_are_one_line(tmp_path, got, capsys, argv, message):
    from snnsim.models.spiketrack_tiny import ANN_WEIGHTS_PATH

    argv = [a.replace("{got}", str(got)).replace("{ann_weights}", str(ANN_WEIGHTS_PATH)) for a in argv] + [
        "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_run_where_no_sequence_finishes_lists_them_all(tmp_path, capsys):
    broken = tmp_path / "broken"
    for i in range(2):
        write_sot_sequence(broken / f"seq{i + 1}", n_frames=3, size=(64, 64), seed=i)
        (broken / f"seq{i + 1}" / "00000002.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert main(["profile", MODEL, "--dataset", str(broken), "--out", str(out), "--hardware", HW[0]]) == 1
    assert "0 of 2 sequences finished, 2 failed" in capsys.readouterr().out
    # --quiet: no report, but the exit code 1 comes with its one line
    assert main(["profile", MODEL, "--dataset", str(broken), "--out", str(tmp_path / "q"), "--hardware", HW[0],
                 "--quiet"]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1 and "0 of 2 sequences finished, 2 failed" in printed.err
    s = json.loads((out / "dataset_summary.json").read_text())
    assert s["models"][MODEL]["frames"] == 0 and s["models"][MODEL]["energy"][HW[0]]["ac-mac"] is None
    assert len(pd.read_csv(out / "failures.csv")) == 2 and (out / "report.html").is_file()


def test_snn_ann_ratio_per_sequence_equals_single_runs(tmp_path, got):
    """The report's SNN / ANN ratio of each sequence is the ratio of the two models' single-run
    energies on that sequence, and its table shows their median."""
    from snnsim.analysis.dataset_report import sequence_ratios
    from snnsim.analysis.tables import fmt_ratio
    from snnsim.energy import estimate
    from snnsim.models import build_model
    from snnsim.tracking.frame_counts import profile_tracker

    ann = "spiketrack-tiny-ann"
    s = snnsim.profile_dataset([MODEL, ann], got, tmp_path / "pair", hardware=HW[:1])
    ratios = sequence_ratios(s, pd.read_csv(tmp_path / "pair" / "sequences.csv"))
    expected = {}
    snn_model, ann_model = build_model(MODEL), build_model(ann)
    for i, n in enumerate(LENGTHS):
        seq = str(got / f"seq{i + 1}")
        for est in ("ac-mac", "memory-aware"):
            e_snn = estimate(profile_tracker(snn_model, frames=n - 1, sequence=seq), HW[0], est).total_j
            e_ann = estimate(profile_tracker(ann_model, frames=n - 1, sequence=seq), HW[0], est).total_j
            expected[(f"seq{i + 1}", f"{HW[0]}/{est}")] = e_snn / e_ann
    measured = {(r["sequence"], r["profile"]): r["ratio"] for _, r in ratios.iterrows()}
    assert measured.keys() == expected.keys() and set(ratios["snn"]) == {MODEL} and set(ratios["ann"]) == {ann}
    for key, r in expected.items():
        assert measured[key] == pytest.approx(r, rel=1e-12), key
    report = " ".join((tmp_path / "pair" / "report.md").read_text().split())
    median = float(np.median([r for (_, prof), r in expected.items() if prof.endswith("ac-mac")]))
    assert fmt_ratio(median) in report


def test_a_run_cut_short_leaves_no_summary(tmp_path, got, monkeypatch):
    """dataset_summary.json goes first and comes last: a resumed run stopped while its sequences
    land, or while it assembles the outputs, leaves no summary beside files of another state;
    the rerun assembles it again."""
    from snnsim.datasets import outputs

    out = tmp_path / "run"
    snnsim.profile_dataset(MODEL, got, out, hardware=HW[:1], sequences=["seq1"])
    assert (out / "dataset_summary.json").is_file()

    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    from snnsim.datasets import _job

    job = _job("profile", [MODEL], got, None, None, HW[:1], None, 1, None)
    landed = []

    def stop_after_one(progress):   # a resumed run stopped once one more sequence has landed
        landed.append(progress["sequence"])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dataset_run.run_dataset(job, out, on_progress=stop_after_one)
    assert landed == ["seq2"] and (out / dataset_run.sequence_file("seq2")).is_file()
    assert not (out / "dataset_summary.json").exists()   # the "1 of 1 sequences" summary is gone
    with monkeypatch.context() as mp:
        mp.setattr("snnsim.analysis.dataset_report.write_dataset_report", cut)
        with pytest.raises(KeyboardInterrupt):
            snnsim.profile_dataset(MODEL, got, out, hardware=HW[:1])
    assert not (out / "dataset_summary.json").exists()
    s = snnsim.profile_dataset(MODEL, got, out, hardware=HW[:1])
    assert s["sequences_line"] == "3 of 3 sequences"
    assert json.loads((out / "dataset_summary.json").read_text())["sequences_line"] == "3 of 3 sequences"
    assert outputs.SCHEMA in (out / "dataset_summary.json").read_text()


def test_the_cli_on_an_embedded_ray_is_silent_with_quiet(tmp_path, got):
    """The issue's command shape, in a fresh process that starts its own local Ray: every file,
    exit 0, and nothing on stderr under --quiet (Ray's start-up notes included)."""
    import subprocess
    import sys

    out = tmp_path / "ray"
    done = subprocess.run([sys.executable, "-m", "snnsim.cli", "profile", MODEL, "--dataset", str(got),
                           "--workers", "2", "--hardware", ",".join(HW), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
    for name in SAME_BYTES + ("timings.csv", "report.html"):
        assert (out / name).is_file(), name


def test_a_users_yaml_profile_prices_a_dataset(tmp_path, got, measured_gpu_profile):
    """--hardware takes a user's YAML file in a dataset run as in a single one (profile and
    track): the workers, the summary and the tables all read it from the path given; a device
    measurement of the model prices its frames, never its template passes."""
    hw = str(measured_gpu_profile)
    s = snnsim.profile_dataset(MODEL, got, tmp_path / "p", hardware=[hw], sequences=["seq1", "seq2"])
    m = s["models"][MODEL]
    assert m["energy"]["h100-lab"]["gpu"] == pytest.approx(12.5e-3, rel=1e-12)
    assert m["energy_template"]["h100-lab"]["gpu"] != pytest.approx(12.5e-3)
    # every frame of frames.parquet is priced as the summary prices them: the measurement
    frames = pd.read_parquet(tmp_path / "p" / "frames.parquet")
    column = [c for c in frames.columns if c.startswith("energy_J") and "h100-lab" in c and c.endswith("gpu")]
    assert len(column) == 1 and len(frames) > 0
    assert frames[column[0]].to_numpy() == pytest.approx(12.5e-3, rel=1e-12)
    t = snnsim.track_dataset(MODEL, got, tmp_path / "t", hardware=[hw, HW[0]], sequences=["seq1"])
    assert t["sequences_line"] == "1 of 1 sequences" and t["complete"] is True
    assert t["models"][MODEL]["energy"]["h100-lab"]["gpu"] == pytest.approx(12.5e-3, rel=1e-12)
