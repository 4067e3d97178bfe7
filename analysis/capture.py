"""Spike maps of one neuron module: channel x position firing rates, as the report reads them.

They are captured during the counted passes (snnsim.pipeline.capture.SpikeCapture: the
Profiler hands it the module's outputs, one forward per frame) and arrive here as numpy
arrays; this module holds them (`Capture`), writes and reads their files, and picks the
module to map from a neuron table (`choose_module`). No torch, no models.

    cap.save(out_dir)      # capture.npz + capture_channels.csv + capture_positions.csv + capture.json
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_GRID = 32          # channel x position maps pool the positions to at most 32 on a side
FILES = ("capture.npz", "capture.json", "capture_channels.csv", "capture_positions.csv")


class CaptureError(ValueError):
    """A module that cannot be captured (unknown, or not a spiking neuron)."""


@dataclass
class Capture:
    """Per (branch, call): rates of one module, reduced over frames, timesteps and batch."""

    module: str
    module_type: str
    quantum: float
    layout: str
    maps: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    totals: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(per-channel rates, per-position rates) as tidy tables."""
        chans, poss = [], []
        for (branch, call), m in self.maps.items():
            for c, (r, lv) in enumerate(zip(m["channel_rate"], m["channel_level"])):
                chans.append({"branch": branch, "call": call, "channel": c, "firing_rate": float(r),
                              "mean_level": float(lv)})
            h, w = m["spatial_rate"].shape
            for y in range(h):
                for x in range(w):
                    poss.append({"branch": branch, "call": call, "row": y, "col": x,
                                 "firing_rate": float(m["spatial_rate"][y, x]),
                                 "mean_level": float(m["spatial_level"][y, x])})
        return (pd.DataFrame(chans, columns=["branch", "call", "channel", "firing_rate", "mean_level"]),
                pd.DataFrame(poss, columns=["branch", "call", "row", "col", "firing_rate", "mean_level"]))

    def meta(self) -> dict:
        return {"module": self.module, "module_type": self.module_type, "quantum": self.quantum,
                "layout": self.layout,
                "passes": [{"branch": b, "call": c, **self.totals[(b, c)],
                            "shape_chw": list(self.maps[(b, c)]["shape"].tolist())}
                           for b, c in self.maps]}

    def save(self, out: str | pathlib.Path) -> list[pathlib.Path]:
        out = pathlib.Path(out)
        arrays = {f"{b}.call{c}.{k}": v for (b, c), m in self.maps.items() for k, v in m.items()}
        arrays["meta"] = np.array(json.dumps(self.meta()))
        np.savez_compressed(out / "capture.npz", **arrays)
        (out / "capture.json").write_text(json.dumps(self.meta(), indent=2) + "\n")
        chans, poss = self.tables()
        chans.to_csv(out / "capture_channels.csv", index=False)
        poss.to_csv(out / "capture_positions.csv", index=False)
        return [out / f for f in FILES]


def load_capture(path: str | pathlib.Path) -> dict | None:
    """capture.npz -> {'meta': dict, 'maps': {(branch, call): {name: array}}}; None if absent."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "capture.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        maps: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        for key in z.files:
            if key == "meta":
                continue
            branch, call, name = key.split(".", 2)
            maps.setdefault((branch, int(call[4:])), {})[name] = z[key]
    return {"meta": meta, "maps": maps}


# ------------------------------------------------------------------------ choosing a module
def choose_module(neurons: pd.DataFrame) -> str | None:
    """The neuron module to map by default: one that runs in every branch, with the most
    spikes per tracking frame (where most of the spike traffic is). None without neurons."""
    if neurons is None or len(neurons) == 0:
        return None
    branches = neurons["branch"].unique() if "branch" in neurons.columns else ["frame"]
    in_all = set.intersection(*(set(neurons.loc[neurons["branch"] == b, "module"]) for b in branches)) \
        if "branch" in neurons.columns else set(neurons["module"])
    frame = neurons[neurons["branch"] == "frame"] if "branch" in neurons.columns else neurons
    if len(frame) == 0:
        frame = neurons
    spikes = frame.groupby("module", sort=False)["spikes"].sum()
    preferred = spikes[spikes.index.isin(in_all)]
    pick = preferred if len(preferred) else spikes
    return str(pick.idxmax())
