"""Sequence readers, result writers and the synthetic generator."""
from __future__ import annotations

import hashlib
import types

import numpy as np
import pytest
from PIL import Image

from snnsim.tracking import synthetic
from snnsim.tracking.errors import SequenceError
from snnsim.tracking.sequences import (
    MOTSequence, SOTSequence, find_sequences, image_to_tensor, open_sequence, read_mot_file,
    read_mot_sequence, read_sot_result, read_sot_sequence, write_mot_result, write_sot_result,
)


def _frames(folder, n, size=(40, 60), ext=".jpg", digits=8):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size[0], size[1], 3), 20 * i, dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i + 1:0{digits}d}{ext}")


def _sot(tmp_path, gt_text, n=3, name="seq", sub=None, gt_name="groundtruth.txt"):
    root = tmp_path / name
    _frames(root / sub if sub else root, n)
    (root / gt_name).write_text(gt_text)
    return root


# ----------------------------------------------------------------------------------- SOT
def test_got10k_layout_reads_and_streams(tmp_path):
    root = _sot(tmp_path, "1,2,10,20\n3,4,10,20\n5,6,10,20\n")
    seq = open_sequence(root)
    assert isinstance(seq, SOTSequence) and seq.kind == "sot" and seq.layout == "got10k"
    assert len(seq) == 3 and seq.name == "seq" and seq.image_size == (40, 60)
    assert seq.has_full_gt and seq.valid.all()
    np.testing.assert_array_equal(seq.init_box, [1, 2, 10, 20])
    it = iter(seq)
    assert isinstance(it, types.GeneratorType)  # frames are decoded one at a time
    i, img = next(it)
    assert i == 0 and img.dtype == np.uint8 and img.shape == (40, 60, 3)
    assert [j for j, _ in it] == [1, 2]
    t = image_to_tensor(seq.read_frame(2))
    assert tuple(t.shape) == (3, 40, 60) and str(t.dtype) == "torch.float32"
    assert [tuple(x.shape) for _, x in seq.frames(as_tensor=True, start=1)] == [(3, 40, 60)] * 2


def test_lasot_and_otb_layouts_and_separators(tmp_path):
    lasot = _sot(tmp_path, "1 2 10 20\n3\t4\t10\t20\n5, 6, 10, 20\n\n", name="cat-1", sub="img")
    seq = read_sot_sequence(lasot)
    assert seq.layout == "lasot" and len(seq) == 3
    np.testing.assert_array_equal(seq.ground_truth[1], [3, 4, 10, 20])
    otb = _sot(tmp_path, "1\t2\t10\t20\n" * 3, name="Basketball", sub="img", gt_name="groundtruth_rect.txt")
    assert open_sequence(otb).layout == "otb"
    assert find_sequences(tmp_path) == [otb, lasot]  # natural, case-insensitive order


def test_absent_markers_and_flags(tmp_path):
    root = _sot(tmp_path, "1,2,10,20\n0,0,0,0\nnan,nan,nan,nan\n")
    seq = read_sot_sequence(root)
    assert seq.valid.tolist() == [True, False, False]
    assert np.isnan(seq.ground_truth[1]).all()
    root2 = _sot(tmp_path, "1,2,10,20\n1,2,10,20\n1,2,10,20\n", name="s2")
    (root2 / "absence.label").write_text("0\n1\n0\n")
    assert read_sot_sequence(root2).valid.tolist() == [True, False, True]


def test_got10k_test_sequence_has_only_the_first_box(tmp_path):
    root = _sot(tmp_path, "1,2,10,20\n")
    seq = read_sot_sequence(root)
    assert not seq.has_full_gt and seq.ground_truth.shape == (1, 4)
    with pytest.raises(SequenceError, match="only the first-frame box"):
        read_sot_sequence(root, require_full_gt=True)


def test_sot_errors(tmp_path):
    with pytest.raises(SequenceError, match="does not exist"):
        open_sequence(tmp_path / "nope")
    with pytest.raises(ValueError):  # SequenceError is a ValueError
        open_sequence(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SequenceError, match="not a sequence folder"):
        open_sequence(tmp_path / "empty")
    (tmp_path / "noimg" / "img").mkdir(parents=True)
    (tmp_path / "noimg" / "groundtruth.txt").write_text("1,2,3,4\n")
    with pytest.raises(SequenceError, match=r"no images .*img"):
        open_sequence(tmp_path / "noimg")
    _frames(tmp_path / "nogt", 2)
    with pytest.raises(SequenceError, match="no ground truth .*groundtruth.txt"):
        open_sequence(tmp_path / "nogt")

    bad = _sot(tmp_path, "1,2,10,20\n1,2,10\n1,2,10,20\n", name="short")
    with pytest.raises(SequenceError, match=r"groundtruth.txt:2: malformed line"):
        read_sot_sequence(bad)
    bad = _sot(tmp_path, "1,2,10,20\n1,2,x,20\n1,2,10,20\n", name="text")
    with pytest.raises(SequenceError, match=r"groundtruth.txt:2: malformed"):
        read_sot_sequence(bad)
    bad = _sot(tmp_path, "1,2,10,20\n1,2,10,20\n1,2,0,20\n", name="zero")
    with pytest.raises(SequenceError, match=r"groundtruth.txt:3: zero-size box"):
        read_sot_sequence(bad)
    bad = _sot(tmp_path, "1,2,10,20\n70,2,10,20\n1,2,10,20\n", name="outside")  # frames are 60 wide
    with pytest.raises(SequenceError, match=r"groundtruth.txt:2: .*entirely outside the 60x40 frame"):
        read_sot_sequence(bad)
    bad = _sot(tmp_path, "1,2,10,20\n1,2,10,20\n", name="count")
    with pytest.raises(SequenceError, match="2 boxes for 3 images"):
        read_sot_sequence(bad)
    bad = _sot(tmp_path, "0,0,0,0\n1,2,10,20\n1,2,10,20\n", name="first")
    with pytest.raises(SequenceError, match="first-frame box"):
        read_sot_sequence(bad)


def test_corrupt_frame_raises_when_read(tmp_path):
    root = _sot(tmp_path, "1,2,10,20\n" * 3)
    corrupt = root / "00000002.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    seq = read_sot_sequence(root)  # opening decodes nothing but the first header
    assert seq.read_frame(0).shape == (40, 60, 3)
    with pytest.raises(SequenceError, match=f"cannot read frame {corrupt}"):
        seq.read_frame(1)
    with pytest.raises(SequenceError, match="00000002.jpg"):
        list(seq)


# ----------------------------------------------------------------------------------- MOT
def test_synthetic_mot_sequence_reads_back(tmp_path):
    root = synthetic.write_mot_sequence(tmp_path / "SYN-01", n_frames=12, size=(96, 128), n_targets=3,
                                        seed=1, n_distractors=1)
    seq = open_sequence(root, require_gt=True)
    assert isinstance(seq, MOTSequence) and seq.kind == "mot"
    assert len(seq) == 12 and seq.frame_rate == 30 and seq.image_size == (96, 128) and seq.name == "SYN-01"
    gt = seq.ground_truth
    assert gt.shape == (12 * 4, 9)
    rows = seq.gt_frame(5)
    assert rows[:, 0].tolist() == [5] * 4 and rows[:, 1].tolist() == [1, 2, 3, 4]
    assert rows[:3, 6].tolist() == [1, 1, 1] and rows[:3, 7].tolist() == [1, 1, 1]  # targets: class 1
    assert rows[3, 6] == 0 and rows[3, 7] == 8  # distractor: conf 0, class 8
    assert ((gt[:, 8] >= 0) & (gt[:, 8] <= 1)).all()
    i, img = next(iter(seq))
    assert i == 0 and img.shape == (96, 128, 3)


def _mot(tmp_path, ini=None, gt="1,1,10,10,20,30,1,1,1\n", n=2):
    root = tmp_path / "MOT-X"
    _frames(root / "img1", n, size=(50, 80), digits=6)
    if ini is None:
        ini = f"[Sequence]\nname=MOT-X\nimDir=img1\nframeRate=25\nseqLength={n}\nimWidth=80\nimHeight=50\nimExt=.jpg\n"
    (root / "seqinfo.ini").write_text(ini)
    if gt is not None:
        (root / "gt").mkdir()
        (root / "gt" / "gt.txt").write_text(gt)
    return root


def test_mot_reader_and_errors(tmp_path):
    seq = read_mot_sequence(_mot(tmp_path))
    assert seq.frame_rate == 25 and seq.ground_truth.shape == (1, 9)

    def err(match, **kw):
        import shutil
        shutil.rmtree(tmp_path / "MOT-X", ignore_errors=True)
        with pytest.raises(SequenceError, match=match):
            read_mot_sequence(_mot(tmp_path, **kw), require_gt=True)

    err("lacks frameRate", ini="[Sequence]\nseqLength=2\nimWidth=80\nimHeight=50\n")
    err("no \\[Sequence\\] section", ini="[Other]\nx=1\n")
    err("has 2 .jpg images but .* seqLength=5", ini="[Sequence]\nframeRate=25\nseqLength=5\nimWidth=80\nimHeight=50\n")
    err(r"gt.txt:2: malformed", gt="1,1,10,10,20,30,1,1,1\n2,1,10\n")
    err(r"gt.txt:1: zero-size box", gt="1,1,10,10,0,30,1,1,1\n")
    err(r"gt.txt:1: .*entirely outside the 80x50", gt="1,1,100,10,20,30,1,1,1\n")
    err(r"gt.txt:1: frame 3 is not an integer in 1..2", gt="3,1,10,10,20,30,1,1,1\n")
    # NaN / inf crashed (int(nan)) or passed the reader and failed after the whole run
    for line in ("nan,1,10,10,20,30,1,1,1", "1,inf,10,10,20,30,1,1,1", "1,1,nan,10,20,30,1,1,1",
                 "1,1,10,10,20,30,1,1,nan"):
        err(r"gt.txt:2: NaN or inf in frame,id,x,y,w,h,conf,class,visibility .*; fix the line",
            gt=f"1,1,10,10,20,30,1,1,1\n{line}\n")
    err("gt.txt is missing", gt=None)
    assert read_mot_sequence(tmp_path / "MOT-X").ground_truth is None  # fine when not required


# ------------------------------------------------------------------------------- writers
def test_result_writers_round_trip(tmp_path):
    boxes = np.array([[1.5, 2, 30, 40.25], [0, 0, 10, 10]])
    p = write_sot_result(tmp_path / "res" / "seq.txt", boxes)
    assert p.read_text() == "1.5,2,30,40.25\n0,0,10,10\n"
    np.testing.assert_array_equal(read_sot_result(p), boxes)
    with pytest.raises(ValueError, match="not finite"):
        write_sot_result(tmp_path / "bad.txt", [[np.nan, 0, 1, 1]])

    rows = np.array([[2, 1, 5, 6, 7, 8, 0.5], [1, 3, 10.5, 20, 30, 40, 0.9], [1, 2, 0, 0, 1, 1, 1]])
    p = write_mot_result(tmp_path / "MOT-X.txt", rows)
    assert p.read_text().splitlines() == ["1,2,0,0,1,1,1,-1,-1,-1", "1,3,10.5,20,30,40,0.9,-1,-1,-1",
                                          "2,1,5,6,7,8,0.5,-1,-1,-1"]
    back = read_mot_file(p)
    np.testing.assert_array_equal(back[:, :7], rows[[2, 1, 0]])
    assert not (tmp_path / "MOT-X.txt.partial").exists()
    write_mot_result(tmp_path / "six.txt", [[1, 1, 0, 0, 5, 5]])
    assert (tmp_path / "six.txt").read_text() == "1,1,0,0,5,5,1,-1,-1,-1\n"


# ----------------------------------------------------------------------------- synthetic
def _digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_synthetic_sot_is_deterministic_and_readable(tmp_path):
    a = synthetic.write_sot_sequence(tmp_path / "a", n_frames=16, size=(64, 96), seed=3)
    b = synthetic.write_sot_sequence(tmp_path / "b", n_frames=16, size=(64, 96), seed=3)
    c = synthetic.write_sot_sequence(tmp_path / "c", n_frames=16, size=(64, 96), seed=4)
    assert _digest(a) == _digest(b) != _digest(c)
    seq = open_sequence(a, require_gt=True)
    assert seq.layout == "got10k" and len(seq) == 16 and seq.image_size == (64, 96)
    assert sorted(p.name for p in seq.frame_paths)[:2] == ["00000001.jpg", "00000002.jpg"]
    gt = seq.ground_truth
    assert (gt[:, 0] >= 0).all() and (gt[:, 0] + gt[:, 2] <= 96).all() and (gt[:, 1] + gt[:, 3] <= 64).all()


def test_synthetic_scene_has_motion_scale_occlusion_and_distractors():
    frames = list(synthetic.generate_frames(64, (128, 128), n_targets=1, seed=0, n_distractors=2))
    boxes = np.stack([f.boxes[0] for f in frames])
    assert np.ptp(boxes[:, 0]) > 10 or np.ptp(boxes[:, 1]) > 10          # it moves
    assert np.ptp(boxes[:, 2]) >= 4                                       # it changes scale
    vis = np.array([f.visibility[0] for f in frames])
    assert vis.min() < 0.9 and vis[0] == 1.0                              # the occluder passes over it
    assert all(f.distractor_boxes.shape == (2, 4) for f in frames)
    # the distractors look like the target: same pattern, colours a little off
    f = frames[0]
    x, y, w, h = f.boxes[0].astype(int)
    dx, dy, dw, dh = f.distractor_boxes[0].astype(int)
    t_mean = f.image[y:y + h, x:x + w].reshape(-1, 3).mean(0)
    d_mean = f.image[dy:dy + dh, dx:dx + dw].reshape(-1, 3).mean(0)
    assert np.abs(t_mean - d_mean).max() < 40
    # the in-memory training stream gives (image, box) pairs, identical for the same seed
    pairs = list(synthetic.sot_frames(4, (64, 64), seed=5))
    again = list(synthetic.sot_frames(4, (64, 64), seed=5))
    assert pairs[0][0].shape == (64, 64, 3) and pairs[0][0].dtype == np.uint8 and pairs[0][1].shape == (4,)
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(pairs, again))
    endless = synthetic.sot_frames(None, (48, 48), seed=1)
    assert len([next(endless) for _ in range(100)]) == 100
