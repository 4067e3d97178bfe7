"""Capture where one neuron module's spikes are: channel x position firing maps.

The counting engine keeps per-module totals only; a map of *where* the spikes fall needs the
spike tensor of one module. This helper puts a forward hook on that module, runs the
template pass and the tracking frames again (outside the profiler, so the counts are not
touched), and reduces each output to rates on the fly:

    cap = capture_spikes(model, "encoder.ConvBlock1_1.0.spike2", template, searches)
    cap.save(out_dir)      # capture.npz + capture_channels.csv + capture_positions.csv + capture.json

The report reads those files (numpy only); this is the one module of `snnsim.analysis` that
imports torch.

Layout: the neuron adapter's time axis is moved first, the next axis is the batch, the one
after it the channel; what follows are positions -- [H, W] as is, a token axis N as a
sqrt(N) x sqrt(N) grid when N is a square number (else 1 x N), anything longer flattened to
[prod(leading), last]. Channel x position maps pool the positions to at most 32 on a side.
"""
from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

MAX_GRID = 32          # channel x position maps pool the positions to at most 32 on a side
FILES = ("capture.npz", "capture.json", "capture_channels.csv", "capture_positions.csv")


class CaptureError(ValueError):
    """A module that cannot be captured (unknown, or not a spiking neuron)."""


@dataclass
class _Acc:
    shape: tuple[int, ...]          # [C, H, W]
    nonzero: torch.Tensor           # sum over samples of (x != 0), [C, H, W]
    level: torch.Tensor             # sum over samples of x / q, [C, H, W]
    samples: int = 0                # frames x T x B folded into the sums
    spikes: int = 0
    neurons: int = 0


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


def _neuron_modules(model: torch.nn.Module) -> dict:
    from snnsim.counting.adapters import default_adapters, find_neurons

    return find_neurons(model, default_adapters())


def check_module(model: torch.nn.Module, name: str) -> None:
    """Raise CaptureError (one line, naming the fix) unless `name` is a neuron module."""
    neurons = _neuron_modules(model)
    if name in neurons:
        return
    label = getattr(model, "registry_name", type(model).__name__)
    if not neurons:
        raise CaptureError(f"--capture: model '{label}' has no spiking neuron modules to map; "
                           f"drop --capture (an ANN has no spikes)")
    listed = list(neurons)
    shown = ", ".join(listed[:8]) + (f", ... ({len(listed)} in all; see neurons.csv)" if len(listed) > 8 else "")
    what = "is not a neuron module" if name in dict(model.named_modules()) else "is no module"
    raise CaptureError(f"--capture: '{name}' {what} of model '{label}'; give a neuron module, e.g. {shown}")


# ------------------------------------------------------------------------ capturing
def _to_tbcp(x: torch.Tensor, time_dim: int | None) -> tuple[torch.Tensor, str]:
    """[T, B, C, H, W] view of a neuron output and the layout it was read as."""
    x = x.detach()
    if time_dim is None:
        x = x.unsqueeze(0)
        layout = "B, C"
    else:
        x = x.movedim(time_dim, 0)
        layout = "T, B, C"
    if x.dim() == 2:                                  # [T, B]
        x = x[:, :, None, None, None]
        return x, layout.replace(", C", "") + " (one value per sample)"
    if x.dim() == 3:                                  # [T, B, C]
        return x[:, :, :, None, None], layout + " (no positions)"
    if x.dim() == 4:                                  # [T, B, C, N]
        n = x.shape[-1]
        side = math.isqrt(n)
        if side * side == n:
            return x.reshape(*x.shape[:3], side, side), layout + f", N={n} as {side} x {side}"
        return x[:, :, :, None, :], layout + f", N={n} as 1 x {n}"
    if x.dim() == 5:
        return x, layout + ", H, W"
    lead = int(np.prod(x.shape[3:-1]))
    return x.reshape(*x.shape[:3], lead, x.shape[-1]), layout + ", positions flattened"


def capture_spikes(model: torch.nn.Module, module: str, template, searches, progress=None) -> Capture:
    """Run the template pass (when there is a template) and each search frame with a hook on
    `module`; return the per-(branch, call) channel / position rates."""
    check_module(model, module)
    mod, adapter = _neuron_modules(model)[module]
    q = float(adapter.spike_format(mod).q)
    time_dim = adapter.time_dim(mod)
    acc: dict[tuple[str, int], _Acc] = {}
    state = {"branch": "template", "call": 0, "layout": ""}

    def hook(_module, _inputs, output):
        x, layout = _to_tbcp(adapter.spikes_of(output), time_dim)
        state["layout"] = layout
        key = (state["branch"], state["call"])
        state["call"] += 1
        t, b = x.shape[0], x.shape[1]
        nz = (x != 0).to(torch.float64).sum((0, 1))
        lv = (x.to(torch.float64) / q).sum((0, 1))
        a = acc.get(key)
        if a is None:
            a = acc[key] = _Acc(shape=tuple(nz.shape), nonzero=torch.zeros_like(nz), level=torch.zeros_like(lv))
        if tuple(nz.shape) != a.shape:   # a different input size on a later frame: keep the first
            return
        a.nonzero += nz
        a.level += lv
        a.samples += t * b
        a.spikes += int(nz.sum())
        a.neurons += x[0, 0].numel() * t * b

    handle = mod.register_forward_hook(hook)
    try:
        with torch.no_grad():
            cache = None
            if template is not None:
                state.update(branch="template", call=0)
                cache = model.forward_template(template)
            for search in searches:
                state.update(branch="frame", call=0)
                model.forward_search(search, cache)
                if progress is not None:
                    progress()
    finally:
        handle.remove()

    cap = Capture(module=module, module_type=type(mod).__name__, quantum=q, layout=state["layout"])
    for key, a in acc.items():
        rate = (a.nonzero / max(a.samples, 1)).float()
        level = (a.level / max(a.samples, 1)).float()
        c, h, w = rate.shape
        shrink = min(1.0, MAX_GRID / max(h, w))                  # keep the aspect ratio
        grid = (max(1, round(h * shrink)), max(1, round(w * shrink)))
        pooled = F.adaptive_avg_pool2d(rate[None], grid)[0].reshape(c, -1)
        cap.maps[key] = {
            "spatial_rate": rate.mean(0).numpy(), "spatial_level": level.mean(0).numpy(),
            "channel_rate": rate.mean((1, 2)).numpy(), "channel_level": level.mean((1, 2)).numpy(),
            "channel_position": pooled.numpy(), "grid": np.array(grid), "shape": np.array([c, h, w]),
        }
        cap.totals[key] = {"spikes": a.spikes, "neurons": a.neurons,
                           "firing_rate": a.spikes / a.neurons if a.neurons else None,
                           "samples": a.samples}
    return cap
