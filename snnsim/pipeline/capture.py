"""Where one neuron module's spikes fall, captured during the counted pass (one forward).

The counting engine keeps per-module totals only; a map of *where* the spikes are needs the
spike tensor of one module. `SpikeCapture` is handed that module's outputs by the Profiler
(`Profiler(..., observers={name: capture.feed})`) as the counted passes run, and reduces each
one to running sums on the fly (bounded memory: one [C, H, W] sum per branch and call of the
module in a pass). `finish()` gives the numpy `Capture` whose files (save) the report reads.

With no module named (`auto`), the first pass (the template pass, or the first frame of a
model without one) is captured for every spiking neuron module, the module is chosen from
that pass's counts (choose_module: the most spikes), and the others'
sums are dropped: the transient cost is one pass's neuron outputs, summed over time and
batch, in float32 (sums of small integers, exact).

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


__all__ = ["Capture", "CaptureError", "SpikeCapture", "check_module", "choose_module", "neuron_modules"]

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



def neuron_modules(model: torch.nn.Module) -> dict:
    """{name: (module, adapter)} of the model's neuron modules (the counting adapters')."""
    from snnsim.counting.adapters import default_adapters, find_neurons

    return find_neurons(model, default_adapters(model))


def check_module(model: torch.nn.Module, name: str, neurons: dict | None = None) -> None:
    """Raise CaptureError (one line, naming the fix) unless `name` is a neuron module.
    `neurons`: the model's neuron_modules, when found already."""
    neurons = neuron_modules(model) if neurons is None else neurons
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


@dataclass
class _Acc:
    shape: tuple[int, ...]          # [C, H, W]
    nonzero: torch.Tensor           # sum over samples of (x != 0), [C, H, W]
    level: torch.Tensor             # sum over samples of x / q, [C, H, W]
    samples: int = 0                # frames x T x B folded into the sums
    spikes: int = 0
    neurons: int = 0


class _ModuleSums:
    """Running sums of one neuron module's outputs, per (branch, call in the pass)."""

    def __init__(self, module: torch.nn.Module, adapter):
        self.module, self.adapter = module, adapter
        self.q = float(adapter.spike_format(module).q)
        self.time_dim = adapter.time_dim(module)
        self.acc: dict[tuple[str, int], _Acc] = {}
        self.layout = ""
        self.call = 0

    def feed(self, branch: str, output) -> None:
        x, self.layout = _to_tbcp(self.adapter.spikes_of(output), self.time_dim)
        if not x.is_floating_point():        # bool / integer spikes: their levels as numbers
            x = x.to(torch.float32)
        key = (branch, self.call)
        self.call += 1
        t, b = x.shape[0], x.shape[1]
        # float32 sums of 0/1 and of small integer levels: exact below 2^24 per element
        nz = torch.sign(x.abs()).sum((0, 1), dtype=torch.float32)
        lv = (x.abs() / self.q).sum((0, 1), dtype=torch.float32)
        a = self.acc.get(key)
        if a is None:
            a = self.acc[key] = _Acc(shape=tuple(nz.shape), nonzero=torch.zeros_like(nz), level=torch.zeros_like(lv))
        if tuple(nz.shape) != a.shape:   # a different input size on a later frame: keep the first
            return
        a.nonzero += nz
        a.level += lv
        a.samples += t * b
        a.spikes += int(nz.sum())
        a.neurons += x[0, 0].numel() * t * b


class SpikeCapture:
    """Channel x position spike maps of one neuron module (named, or chosen after the first
    pass when `module` is None), fed by the Profiler during the counted passes."""

    def __init__(self, model: torch.nn.Module, module: str | None = None):
        self.model = model
        found = neuron_modules(model)
        self.neurons = {n: (m, a) for n, (m, a) in found.items() if a.spiking(m)}
        if module is not None:
            check_module(model, module, found)
        self.module = module
        self.branch = "template"
        self._first_pass = module is None
        names = [module] if module is not None else list(self.neurons)
        self.sums = {n: _ModuleSums(*self.neurons[n]) for n in names if n in self.neurons}

    def observers(self) -> dict:
        """{module name: callable(output)} for Profiler(observers=...)."""
        return {n: (lambda out, s=s: s.feed(self.branch, out)) for n, s in self.sums.items()}

    def begin(self, branch: str) -> None:
        """A new pass starts: 'template' or 'frame' (calls are counted within a pass)."""
        self.branch = branch
        for s in self.sums.values():
            s.call = 0

    def choose(self, neurons) -> str | None:
        """After the first pass of an `auto` capture: keep the module with the most spikes in
        that pass's neuron table (choose_module), drop the other modules' sums. Returns the
        module (None without spiking neurons); a named capture keeps its module."""
        if not self._first_pass:
            return self.module
        self._first_pass = False
        pick = choose_module(neurons[neurons["module"].isin(list(self.sums))]) if len(neurons) else None
        self.module = pick
        self.sums = {pick: self.sums[pick]} if pick is not None and pick in self.sums else {}
        return pick

    @property
    def deciding(self) -> bool:
        return self._first_pass

    def finish(self) -> Capture | None:
        if self.module is None or self.module not in self.sums:
            return None
        s = self.sums[self.module]
        cap = Capture(module=self.module, module_type=type(s.module).__name__, quantum=s.q, layout=s.layout)
        for key, a in s.acc.items():
            rate = (a.nonzero.double() / max(a.samples, 1)).float()
            level = (a.level.double() / max(a.samples, 1)).float()
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
