"""Peer tools as references inside the zoo tests, where they are right.

SpikingJelly's SynOpCounter (spikingjelly.activation_based.op_counter) counts, per module, the
nonzero inputs of a synaptic op times their fan-out -- but only when every input value is 0 or 1:
a tensor of spike sums (SEW "ADD", Spikformer's residual stream) or integer levels is not a
spike to it and gets 0 synaptic operations (it prices them as MACs). So the zoo tests compare
with it on layers whose inputs are binary, and assert its miscount elsewhere.
"""
from __future__ import annotations

import torch


def sj_synops(model, *inputs) -> dict[str, int]:
    """{module path: SynOpCounter's count for the whole batch} over one forward of `model`
    (SpikingJelly scopes are 'ClassName.path'; the root class name is dropped)."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter

    counter = SynOpCounter()
    functional.reset_net(model)
    with torch.no_grad(), DispatchCounterMode([counter]):
        model(*inputs)
    functional.reset_net(model)
    root = type(model).__name__ + "."
    return {scope[len(root):]: int(sum(v.values())) for scope, v in counter.get_counts().items()
            if scope.startswith(root)}
