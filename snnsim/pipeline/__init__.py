"""The one path from counts to priced results (DESIGN "Layout"): the pricing loop every
command uses (pricing.py), the spike maps read during the counted passes (capture.py) and
the one run summary every command writes (summary.py); see docs/architecture.md.

The names load lazily: the summary model is read by the renderers (snnsim.analysis), which
must not pull the pricing loop's imports in with it."""
from __future__ import annotations

import importlib

_WHERE = {"price_each": "pricing", "price_tracker": "pricing", "tracker_energy": "pricing",
          "RunSummary": "summary", "core_summary": "summary", "validate_summary": "summary",
          "weights_label": "summary"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'snnsim.pipeline' has no attribute '{name}'")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
