"""The first profile() call cost 1.2-1.7 s (issue 12). Measured: importing every neuron
framework to look for its neurons (Norse alone ~0.5 s) and torch._dynamo, which torch's
wrapper around a TorchDispatchMode handler imports on the first operator (~1 s). Neither is
needed for a model that holds no such neurons and runs uncompiled. Not a timing test: it
checks what a first call imports, in a fresh interpreter."""
from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
import torch, snnsim
from torch import nn
before = set(sys.modules)
net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
p = snnsim.profile(net, torch.randn(2, 1, 6, 6), spike_formats=[snnsim.SpikeFormat(1, 1)])
from spikingjelly.activation_based import neuron, layer, functional
sj = nn.Sequential(layer.Linear(3, 4), neuron.LIFNode())
q = snnsim.profile(sj, torch.rand(2, 3))
new = sorted(m.split(".")[0] if not m.startswith("torch.") else ".".join(m.split(".")[:2])
             for m in set(sys.modules) - before)
print(json.dumps({"new": sorted(set(new)), "dense": p.totals["dense_macs"], "updates": q.totals["neuron_updates"]}))
"""


def test_first_profile_imports_no_unneeded_framework_nor_dynamo():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["dense"] == 2 * 4 * 4 * 9 + 32 * 3 and res["updates"] == 4
    assert "norse" not in res["new"] and "snntorch" not in res["new"]
    assert "torch._dynamo" not in res["new"]
