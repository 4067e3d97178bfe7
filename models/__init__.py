"""Tracker networks (installed as `snnsim.models`)."""
from .registry import ModelSpec, build_model, get_spec, list_models

__all__ = ["ModelSpec", "build_model", "get_spec", "list_models"]
