"""Fidelity of the fixed-point (Loihi) run against the float model, and Loihi energy from the
emulated spikes.

On a synthetic single-object sequence (``snnsim.tracking.synthetic``, in memory):

* **open loop** - the template is cropped at frame 0's ground-truth box; for every later frame
  both models see the same search crop (around the previous frame's ground truth, the usual
  oracle crop). Per neuron module: the fraction of equal spike levels (0..4) and both firing
  rates; per head output: max / mean absolute error and the relative L2 error; the IoU of the
  decoded boxes (Hann-windowed, crop coordinates) float vs fixed point.
* **closed loop** - each model tracks the sequence on its own (SpikeTrack runtime of
  ``snnsim.tracking.sot``): IoU of the two trajectories per frame, and each one's IoU with the
  ground truth.

The fixed-point search passes are counted with snnsim's profiler and turned into a count table
the energy package reads: synaptic events of neurocore layers (times the number of neuron
populations each one is stored at, the fanout residual mapping the lava backend uses), host
layers and host operations as host MACs / spike x spike products (reported, not priced),
neuron updates / spikes / spike mass of every neuron module. ``snnsim.energy.estimate(...,
'loihi2', 'loihi')`` prices them; the float model's counts are priced the same way beside them.

Memory is bounded whatever the number of frames: the sequence is rendered one frame at a time,
open and closed loop advance together frame by frame, each frame's counts are folded into
running sums (:class:`snnsim.energy.frames.FrameMean`, whose energy is the mean of the
per-frame energies), the per-frame rows are spooled to an anonymous temporary file
(:class:`FrameRows`, read back when fidelity.json is written) and the spike levels / entry
currents the neurocore-segment check replays are kept for the first ``keep_frames`` frames
only (:data:`SEGMENT_FRAMES`).
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from snnsim.counting.result import UncountedTally
from snnsim.energy.frames import FrameMean
from snnsim.tracking.boxes import iou_xywh

from .mapper import LoihiMapping

__all__ = ["LoihiCounts", "FidelityResult", "FrameRows", "SEGMENT_FRAMES", "loihi_counts",
           "loihi_energy", "run_fidelity", "synthetic_sequence"]

SEGMENT_FRAMES = 16     # frames whose levels / entry currents are kept for the neurocore-segment check

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class LoihiCounts:
    """A count table in the energy package's contract (snnsim.energy.counts.read_counts)."""

    layers: pd.DataFrame
    neurons: pd.DataFrame
    timesteps: int = 1
    is_spiking: bool = True
    model: Optional[str] = None


@dataclass
class _Frames:
    frames: List[LoihiCounts]
    model: Optional[str] = None


class FrameRows:
    """Per-frame rows (dicts of JSON values) spooled to an anonymous temporary file, one JSON
    line each: memory stays flat whatever the number of frames; iterating reads them back one
    at a time (the file is unlinked at creation, so nothing is left behind)."""

    def __init__(self):
        self._fh = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._n = 0

    def append(self, row: Dict[str, Any]) -> None:
        self._fh.seek(0, 2)
        self._fh.write(json.dumps(row, allow_nan=True) + "\n")
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        self._fh.flush()
        self._fh.seek(0)
        for _ in range(self._n):
            line = self._fh.readline()
            pos = self._fh.tell()
            yield json.loads(line)
            self._fh.seek(pos)

    def to_frame(self) -> pd.DataFrame:
        """All rows as a DataFrame (memory grows with the frames: for small runs and tests)."""
        return pd.DataFrame(list(self))

    def close(self) -> None:
        self._fh.close()


class _Stat:
    """Running mean / min of a metric (None values skipped, as pandas' mean does)."""

    __slots__ = ("n", "total", "low")

    def __init__(self):
        self.n, self.total, self.low = 0, 0.0, math.inf

    def add(self, v) -> None:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return
        self.n += 1
        self.total += float(v)
        self.low = min(self.low, float(v))

    @property
    def mean(self) -> Optional[float]:
        return self.total / self.n if self.n else None

    @property
    def min(self) -> Optional[float]:
        return self.low if self.n else None


@dataclass
class FidelityResult:
    summary: Dict[str, Any]
    sites: pd.DataFrame
    frames: FrameRows                      # per-frame rows, spooled (iterate; len = frames)
    fixed_counts: FrameMean                # fixed-point counts, fanout mapping, summed over the frames
    float_counts: FrameMean                # the float model's counts
    template_counts: Optional[LoihiCounts] = None
    residual_counts: Dict[str, FrameMean] = field(default_factory=dict)   # further residual mappings
    saturated: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)
    # operators of the counted fixed-point passes with no counting formula: {module, op, calls, shapes}
    uncounted: List[Dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- boxes, crops
def _cxcywh_to_xywh(b) -> np.ndarray:
    cx, cy, w, h = (float(v) for v in b)
    return np.array([cx - w / 2, cy - h / 2, w, h])


def _crop(image: np.ndarray, box_xywh, out: int, factor: float = 4.0) -> torch.Tensor:
    """SpikeTrack's crop (sqrt(w h) x factor around the box centre, zero padding, bilinear
    resize, ImageNet normalisation) via snnsim.tracking.sot when it is there."""
    try:
        from snnsim.tracking.sot import context_side, crop_window, extract_crop, normalise_crop
    except ImportError:   # pragma: no cover - the SOT runtime ships with snnsim
        x, y, w, h = (float(v) for v in box_xywh)
        side = math.ceil(math.sqrt(w * h) * factor)
        x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
        H, W = image.shape[:2]
        patch = torch.zeros(3, side, side)
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + side, W), min(y0 + side, H)
        if ix1 > ix0 and iy1 > iy0:
            patch[:, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = torch.from_numpy(
                np.ascontiguousarray(image[iy0:iy1, ix0:ix1])).permute(2, 0, 1).float()
        patch = F.interpolate(patch[None], size=(out, out), mode="bilinear", align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
        return (patch / 255.0 - mean) / std
    b = np.asarray(box_xywh, dtype=np.float64)
    window = crop_window(b[:2] + b[2:] / 2, context_side(b, factor), out)
    return normalise_crop(extract_crop(image, window))


def synthetic_sequence(frames: int, size: Tuple[int, int] = (256, 256), seed: int = 0
                       ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """frames + 1 frames (frame 0 initialises) of a synthetic single-object scene, rendered one
    at a time: an iterator of (image, box xywh)."""
    from snnsim.tracking.synthetic import sot_frames

    return sot_frames(n_frames=frames + 1, size=size, seed=seed, n_distractors=1)


# --------------------------------------------------------------------------- counts
def loihi_counts(profile, mapping: LoihiMapping, residual: str = "fanout", model: Optional[str] = None
                 ) -> LoihiCounts:
    """The energy package's count table from a profiler Profile of the fixed-point model:
    neurocore layers keep their synaptic events, times the number of populations that store
    them under the ``residual`` mapping ('fanout' | 'relay' | 'one-copy', see
    :func:`snnsim.loihi.resources.layer_copies`); with 'relay' each relay population adds its
    neuron updates, one graded message per neuron and step (the running sum is taken as never
    zero: an upper bound) and the identity synaptic events into the next stream point. Host
    layers and host operations become host MACs (spike x spike products stay spike_spike);
    neuron rows are the profiler's."""
    from .resources import layer_copies, stream_layout

    if residual not in ("fanout", "relay", "one-copy"):
        raise ValueError(f"residual must be 'fanout', 'relay' or 'one-copy', not {residual!r}")
    L = profile.layers.copy()
    nc = {s.name for s in mapping.neurocore_layers()}
    copies = layer_copies(mapping, residual)
    if len(L):
        is_nc = L["module"].isin(list(nc)) & (L["syn_events"] > 0)
        mult = L["module"].map(lambda m: copies.get(m, 1)).astype(float)
        host = ~is_nc
        moved = host & (L["syn_events"] > 0) & (L["spike_spike"] <= 0)   # spikes x a host result: host MACs
        L.loc[moved, "mac_ops"] = L.loc[moved, "mac_ops"] + L.loc[moved, "dense_macs"]
        L.loc[host, "syn_events"] = 0.0
        L.loc[host, "syn_ops"] = 0.0
        L.loc[is_nc, "syn_events"] = L.loc[is_nc, "syn_events"] * mult[is_nc]
        L.loc[is_nc, "syn_ops"] = L.loc[is_nc, "syn_ops"] * mult[is_nc]
        L["spiking_input"] = is_nc | L["spiking_input"].astype(bool)
    N = profile.neurons.copy()
    if residual == "relay" and len(N):
        ran = set(N["module"])
        layout = stream_layout(mapping)
        lrows, nrows = [], []
        for n, lay in layout.items():
            if not lay["relayed"] or n not in ran:
                continue
            S = mapping.sites[n]
            C = int(S.shape[0]) if S.shape else 1
            if lay["index"] > 0:      # identity synapses from the previous relay population
                ev = float(S.neurons * (2 if lay["has_relay"] else 1))
                lrows.append({"module": f"{n}.relay_in", "module_type": "RelayIdentity", "op": "identity",
                              "kind": "relay", "calls": 1, "dense_macs": ev, "mac_ops": 0.0, "syn_events": ev,
                              "syn_ops": ev, "spike_spike": 0.0, "weight_numel": C, "in_numel": ev, "out_numel": ev,
                              "spiking_input": True, "thop": False})
            if lay["has_relay"]:
                nrows.append({"module": f"{n}.relay", "module_type": "RelayNeuron", "t": 0,
                              "neurons": float(S.neurons), "spikes": float(S.neurons),
                              "spike_mass": float(S.neurons)})
        if lrows:
            L = pd.concat([L, pd.DataFrame(lrows)], ignore_index=True)
        if nrows:
            N = pd.concat([N, pd.DataFrame(nrows)], ignore_index=True)
    return LoihiCounts(layers=L, neurons=N, timesteps=max(1, int(N["t"].max()) + 1) if len(N) else 1,
                       is_spiking=True, model=model or mapping.model)


def float_counts(profile, model: Optional[str] = None) -> LoihiCounts:
    N = profile.neurons.copy()
    return LoihiCounts(layers=profile.layers.copy(), neurons=N,
                       timesteps=max(1, int(N["t"].max()) + 1) if len(N) else 1, is_spiking=True, model=model)


def loihi_energy(variants: Dict[str, Sequence[LoihiCounts]], hardware: Sequence[str] = ("loihi2", "loihi")
                 ) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """Per-layer energy per tracking frame (mean over the frames) of each labelled FrameMean
    (frames summed as they streamed) or list of per-frame count tables on each hardware under
    the 'loihi' estimator; and a summary dict
    {hardware: {label: {...}}}."""
    from snnsim.energy import load_hardware
    from snnsim.pipeline import price_each
    from snnsim.pipeline.pricing import number_format

    tables, summary = [], {}
    for hw in hardware:
        for label, counts in variants.items():
            if not len(counts):
                continue
            # a FrameMean (frames summed as they streamed) or a list of per-frame tables
            src = counts if hasattr(counts, "frame_groups") else _Frames(list(counts), counts[0].model)
            priced = list(price_each(src, [hw], estimators=("loihi",)))
            if not priced:
                raise ValueError(f"hardware profile '{load_hardware(hw).name}' has no 'loihi' estimator; Loihi energy needs "
                                 "one of the Loihi profiles (loihi, loihi2) or a profile declaring it")
            e = priced[0][2]
            t = e.layers.copy()
            t.insert(0, "counts", label)
            t.insert(0, "hardware", e.hardware)
            tables.append(t)
            summary.setdefault(e.hardware, {})[label] = {
                "joules_per_frame": e.total_j, "precision": number_format(priced[0][0], e),
                "mapping_verdict": e.details.get("mapping", {}).get("verdict"),
                "estimator_cores": e.details.get("mapping", {}).get("cores_needed"),
                "assumptions": e.assumptions, "omitted": e.omitted}
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return table, summary


# --------------------------------------------------------------------------- comparison
class _Recorder:
    """Forward hooks on the neuron modules: integer levels of every call, per pass."""

    def __init__(self, model, mapping: LoihiMapping):
        self.calls: Dict[str, List[torch.Tensor]] = {}
        self.active = False
        mods = dict(model.named_modules())
        self.handles = []
        for name, s in mapping.sites.items():
            q = s.q_out
            self.handles.append(mods[name].register_forward_hook(self._hook(name, q)))

    def _hook(self, name: str, q: float):
        def h(module, args, out):
            if self.active:
                self.calls.setdefault(name, []).append(torch.round(out.detach() / q).to(torch.int8))
        return h

    def take(self) -> Dict[str, List[torch.Tensor]]:
        c, self.calls = self.calls, {}
        return c

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _profile_pass(model, fn: Callable[[], Any], count: bool):
    if not count:
        return fn(), None
    from snnsim.counting import Profiler

    with Profiler(model) as prof:
        out = fn()
        res = prof.result(1)
    return out, res


def _out_errors(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, float]]:
    res = {}
    for k in ("score_map", "size_map", "offset_map", "encoder_out_xz"):
        if k in a and k in b:
            x, y = a[k].double(), b[k].double()
            d = (x - y).abs()
            nrm = float(x.norm())
            res[k] = {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
                      "rel_l2": float((x - y).norm()) / nrm if nrm > 0 else 0.0}
    return res


class _ClosedLoop:
    """Each model tracks the sequence on its own (SpikeTrack runtime of snnsim.tracking.sot),
    one frame at a time; running IoU statistics, one row per frame."""

    def __init__(self, model, fixed_model, img0, box0):
        from snnsim.tracking.sot import make_sot_runtime

        self.rf, self.rq = make_sot_runtime(model), make_sot_runtime(fixed_model)
        self.rf.initialize(img0, box0, search=False)
        self.rq.initialize(img0, box0, search=False)
        self.vs, self.f_gt, self.q_gt = _Stat(), _Stat(), _Stat()

    def step(self, img, gt) -> Dict[str, Any]:
        bf = self.rf.track(img).box
        bq = self.rq.track(img).box
        row = {"closed_loop_iou_float_vs_fixed": iou_xywh(bf, bq), "iou_float_vs_gt": iou_xywh(bf, gt),
               "iou_fixed_vs_gt": iou_xywh(bq, gt),
               "box_float": [round(float(v), 2) for v in bf], "box_fixed": [round(float(v), 2) for v in bq],
               "box_gt": [float(v) for v in gt]}
        self.vs.add(row["closed_loop_iou_float_vs_fixed"])
        self.f_gt.add(row["iou_float_vs_gt"])
        self.q_gt.add(row["iou_fixed_vs_gt"])
        return row

    def summary(self) -> Dict[str, Any]:
        return {"mean_iou_float_vs_fixed": self.vs.mean, "min_iou_float_vs_fixed": self.vs.min,
                "mean_iou_float_vs_gt": self.f_gt.mean, "mean_iou_fixed_vs_gt": self.q_gt.mean,
                "runtime": "snnsim.tracking.sot SpikeTrack runtime (crop sqrt(wh) x 4, Hann window), each model on "
                           "its own"}


def _start_closed_loop(model, fixed_model, img0, box0) -> Optional[_ClosedLoop]:
    try:
        return _ClosedLoop(model, fixed_model, img0, box0)
    except ImportError:   # pragma: no cover - the SOT runtime ships with snnsim
        return None


_ERROR_KEYS = ("score_max_abs_err", "score_rel_l2", "size_rel_l2", "offset_rel_l2", "encoder_rel_l2")


def run_fidelity(model, fixed_model, *args, **kwargs) -> FidelityResult:
    """See :func:`_run_fidelity` (same arguments). Passes that are not counted (the float
    template pass, the closed loop, ``count=False``) get the profiler's NaN/inf check too:
    an overflow stops the run with NonFiniteActivationError naming the module."""
    from .finite import finite_outputs

    with finite_outputs(model), finite_outputs(fixed_model):
        return _run_fidelity(model, fixed_model, *args, **kwargs)


def _run_fidelity(model, fixed_model, mapping: LoihiMapping, frames: int, seed: int = 0,
                 size: Tuple[int, int] = (256, 256), closed_loop: bool = True, count: bool = True,
                 progress: Optional[Callable[[], None]] = None, keep_levels: Sequence[str] = (),
                 entry: Optional[str] = None, residuals: Sequence[str] = (),
                 keep_frames: int = SEGMENT_FRAMES) -> FidelityResult:
    """Float vs fixed point over ``frames`` tracking frames of a synthetic sequence, one frame
    at a time (open and closed loop side by side; memory does not grow with ``frames``).
    ``keep_levels``: neuron modules whose fixed-point levels of the first ``keep_frames`` search
    passes are kept (``extra['levels']``); ``entry``: a host layer whose integer output (bias
    excluded) is captured for those passes (``extra['entry_currents']``, (F, C, H, W));
    ``residuals``: further residual mappings ('relay', 'one-copy') whose counts are summed
    beside the fanout ones (``residual_counts``)."""
    for r in residuals:
        if r not in ("fanout", "relay", "one-copy"):
            raise ValueError(f"residual must be 'fanout', 'relay' or 'one-copy', not {r!r}")
    keep_frames = max(0, int(keep_frames))
    seq = iter(synthetic_sequence(frames, size, seed))
    Z, X = int(model.template_size), int(model.search_size)
    T = int(getattr(model, "timesteps", 1))
    img0, box0 = next(seq)
    tpl = _crop(img0, box0, Z)
    template = tpl.unsqueeze(0).expand(T, *tpl.shape).contiguous()
    rec_f = _Recorder(model, mapping)
    rec_q = _Recorder(fixed_model, mapping)
    with torch.no_grad():
        cache_f = model.forward_template(template)
        tq, tpl_prof = _profile_pass(fixed_model, lambda: fixed_model.forward_template(template), count)
        cache_q = tq
    site_eq: Dict[str, List[int]] = {n: [0, 0, 0, 0] for n in mapping.sites}   # equal, total, mass_f, mass_q
    rows = FrameRows()
    iou, errors = _Stat(), {k: _Stat() for k in _ERROR_KEYS}
    fixed_counts, float_counts_ = FrameMean(mapping.model), FrameMean(mapping.model)
    uncounted = UncountedTally()       # the template pass and every frame, as in every command
    if tpl_prof is not None:
        uncounted.add(tpl_prof.uncounted)
    residual_counts = {r: FrameMean(mapping.model) for r in residuals}
    searches = []
    kept: Dict[str, List[torch.Tensor]] = {n: [] for n in keep_levels}
    captured: List[torch.Tensor] = []
    entry_mod = dict(fixed_model.named_modules()).get(entry) if entry else None
    closed = _start_closed_loop(model, fixed_model, img0, box0) if closed_loop else None
    prev = box0
    try:
        for i, (img, gt) in enumerate(seq, start=1):
            search = _crop(img, prev, X)
            keep = i <= keep_frames
            if keep:
                searches.append(search)
            if entry_mod is not None:
                entry_mod.loihi_capture = captured if keep else None
            rec_f.active = rec_q.active = True
            with torch.no_grad():
                out_f, prof_f = _profile_pass(model, lambda: model.forward_search(search, cache_f), count)
                out_q, prof_q = _profile_pass(fixed_model, lambda: fixed_model.forward_search(search, cache_q), count)
            rec_f.active = rec_q.active = False
            if entry_mod is not None:
                entry_mod.loihi_capture = None
            cf, cq = rec_f.take(), rec_q.take()
            if keep:
                for n in kept:
                    kept[n].append(cq[n][0])
            for n in mapping.sites:
                for a, b in zip(cf.get(n, []), cq.get(n, [])):
                    s = site_eq[n]
                    s[0] += int((a == b).sum())
                    s[1] += a.numel()
                    s[2] += int(a.sum())
                    s[3] += int(b.sum())
            del cf, cq
            if count:
                uncounted.add(prof_q.uncounted)
                fixed_counts.add(loihi_counts(prof_q, mapping, model=mapping.model))
                float_counts_.add(float_counts(prof_f, model=mapping.model))
                for r, acc in residual_counts.items():
                    acc.add(loihi_counts(prof_q, mapping, residual=r, model=mapping.model))
            wf = model.windowed_box(out_f)["tracker_pred_box_windowed"].reshape(-1, 4)[0]
            wq = model.windowed_box(out_q)["tracker_pred_box_windowed"].reshape(-1, 4)[0]
            errs = _out_errors(out_f, out_q)
            row = {"frame": i, "open_loop_box_iou": iou_xywh(_cxcywh_to_xywh(wf), _cxcywh_to_xywh(wq)),
                   "score_max_abs_err": errs.get("score_map", {}).get("max_abs"),
                   "score_rel_l2": errs.get("score_map", {}).get("rel_l2"),
                   "size_rel_l2": errs.get("size_map", {}).get("rel_l2"),
                   "offset_rel_l2": errs.get("offset_map", {}).get("rel_l2"),
                   "encoder_rel_l2": errs.get("encoder_out_xz", {}).get("rel_l2"),
                   "peak_float": float(out_f["score_map"].max()), "peak_fixed": float(out_q["score_map"].max())}
            del out_f, out_q, prof_f, prof_q
            if closed is not None:
                row.update(closed.step(img, gt))
            iou.add(row["open_loop_box_iou"])
            for k in _ERROR_KEYS:
                errors[k].add(row[k])
            rows.append(row)
            prev = gt
            if progress is not None:
                progress()
    finally:
        rec_f.remove()
        rec_q.remove()
        if entry_mod is not None:
            entry_mod.loihi_capture = None

    sites = []
    for n, (eq, tot, mf, mq) in site_eq.items():
        s = mapping.sites[n]
        if tot == 0:
            continue
        sites.append({"module": n, "neuron": s.neuron, "agreement": eq / tot, "neurons": tot,
                      "mean_level_float": mf / tot, "mean_level_fixed": mq / tot,
                      "scale_bits": s.scale_bits, "host_inputs": len(s.host_inputs)})
    sites_df = pd.DataFrame(sites)
    sat = sum(int(getattr(m, "loihi_saturated", 0)) for m in fixed_model.modules())
    tot_eq = sum(v[0] for v in site_eq.values())
    tot_n = sum(v[1] for v in site_eq.values())
    first = sites_df.iloc[0]["agreement"] if len(sites_df) else None
    summary = {
        "frames": frames, "sequence": {"kind": "synthetic single-object", "seed": seed, "size": list(size),
                                       "crop": "template at frame 0's ground truth; open-loop search crops around "
                                               "the previous frame's ground truth"},
        "spike_agreement": {"overall": tot_eq / tot_n if tot_n else None,
                            "mean_over_modules": float(sites_df["agreement"].mean()) if len(sites_df) else None,
                            "min_module": (sites_df.loc[sites_df["agreement"].idxmin(), "module"]
                                           if len(sites_df) else None),
                            "min": float(sites_df["agreement"].min()) if len(sites_df) else None,
                            "first_module": first,
                            "last_module": float(sites_df.iloc[-1]["agreement"]) if len(sites_df) else None},
        "open_loop_box_iou": {"mean": iou.mean, "min": iou.min},
        "output_error": {k: errors[k].mean for k in _ERROR_KEYS if errors[k].n},
        "saturated_state_values": sat,
    }
    if closed is not None:
        summary["closed_loop"] = closed.summary()
    return FidelityResult(summary=summary, sites=sites_df, frames=rows, fixed_counts=fixed_counts,
                          uncounted=uncounted.rows(),
                          float_counts=float_counts_, residual_counts=residual_counts, saturated=sat,
                          template_counts=loihi_counts(tpl_prof, mapping) if tpl_prof is not None else None,
                          extra={"searches": searches, "cache_fixed": cache_q, "levels": kept,
                                 "kept_frames": min(frames, keep_frames),
                                 "entry_currents": torch.stack([c[0] for c in captured]) if captured else None})
