"""Reads the spike-map files a run wrote (capture.npz, written by
snnsim.pipeline.capture.Capture.save during the counted passes) for the report. No torch, no
models."""
from __future__ import annotations

import json
import pathlib

import numpy as np


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
