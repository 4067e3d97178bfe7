"""A NaN/inf check for the model passes the loihi job runs outside the counting profiler (the
mapper's trace, the float model's template pass, the closed-loop runs).

The profiler checks every operator it counts; these passes are not counted, so without a check
weights that overflow (finite, but too large for float32) would turn into garbage spike
agreement and energy instead of an error. ``finite_outputs(model)`` hooks every module and
raises :class:`snnsim.counting.NonFiniteActivationError` (a user error: one line, exit code 2)
naming the innermost module whose output holds NaN or inf.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from snnsim.counting.profiler import has_non_finite

__all__ = ["finite_outputs"]


def _first_bad(output) -> str | None:
    for t in tree_flatten(output)[0]:
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.numel() \
                and has_non_finite(t):
            return "NaN" if bool(torch.isnan(t).any()) else "inf"
    return None


@contextlib.contextmanager
def finite_outputs(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, a forward of any module of ``model`` whose output holds NaN or inf
    raises NonFiniteActivationError naming that module (innermost first: a module's hook runs
    before its parent's)."""
    from snnsim.counting import NonFiniteActivationError

    def hook_for(name: str):
        def hook(module, args, output):
            # the check's reductions are not the model's: keep them out of any dispatch mode
            # (the mapper's tracer, the counting profiler)
            with torch._C._DisableTorchDispatch():
                kind = _first_bad(output)
            if kind is not None:
                raise NonFiniteActivationError(
                    f"module '{name or '<model>'}' ({type(module).__name__}) produced {kind} values; the weights "
                    f"make the activations overflow float32 (check the checkpoint given to --weights)")
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in model.named_modules()]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
