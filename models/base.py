"""The interface every registered tracker network offers to the rest of snnsim.

A tracker network splits into a template branch (run at initialisation and template
updates; its result is cached) and a per-frame branch (search + head, or the detector for
multi-object trackers). Profiling, tracking and Loihi mapping only use this interface.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TrackerNet(nn.Module):
    """Base class. Subclasses set the class attributes and implement the three methods."""

    family: str = ""          # spiketrack | smtrack | asymtrack | transt
    kind: str = "ann"         # "spiking" or "ann"
    timesteps: int = 1        # T of the spiking template branch (1 for ANNs)
    golden_gain: float = 1.0  # gain the golden fixtures use for this family
    # where the weights came from, {source, path, sha256, trained, note}: set once, by
    # build_model or the builder that loads shipped weights (registry.weights_record)
    weights_info: dict | None = None

    @property
    def weights_source(self) -> str:
        """One line on where the weights came from: the provenance record's note."""
        return self.weights_info["note"] if self.weights_info else "unknown"

    def example_inputs(self, source: str = "random", batch: int = 1) -> dict[str, torch.Tensor | None]:
        """{'template': tensor or None, 'search': tensor} at the model's native sizes.
        source='golden' gives the fixtures' golden_image inputs (template seeds 1..T,
        search / detection seed 7)."""
        raise NotImplementedError

    def forward_template(self, template: torch.Tensor | None) -> Any:
        """Run the template branch once and return what the per-frame branch caches
        (None for a detector with no template)."""
        raise NotImplementedError

    def forward_search(self, search: torch.Tensor, cache: Any) -> dict[str, torch.Tensor]:
        """One tracking frame: search branch + head, using the cached template result."""
        raise NotImplementedError

    def input_description(self) -> dict[str, Any]:
        """Sizes of the inputs, for `snnsim models` and summary.json."""
        inputs = self.example_inputs("random")
        return {k: list(v.shape) for k, v in inputs.items() if v is not None}

    def load_golden(self) -> None:
        """Load the golden weights of the fixtures (deterministic, keyed by state_dict name)."""
        from .golden import golden_state_dict

        self.load_state_dict(golden_state_dict(self, self.golden_gain), strict=True)
