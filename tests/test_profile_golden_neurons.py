"""`snnsim profile MODEL --weights golden` reproduces the fixtures' per-neuron statistics:
the profiler's neuron table, call by call, against the official code's records."""
from __future__ import annotations

import pytest

from snnsim.models import build_model
from snnsim.tracking.frame_counts import profile_tracker


def per_call(neurons, strip_prefix=""):
    """(name, [spike count per t], [nonzero fraction per t]) per call, in call order."""
    out = []
    for (_, name), rows in neurons.groupby(["order", "module"], sort=True):
        rows = rows.sort_values("t")
        name = name[len(strip_prefix):] if strip_prefix and name.startswith(strip_prefix) else name
        out.append((name, list(rows.spike_mass),
                    list(rows.firing_rate)))
    return out


@pytest.mark.parametrize("fixture,model", [("spiketrack_s256_t1", "spiketrack-s256-t1"),
                                           ("smtrack_spikeyolox_s", "smtrack-s")])
def test_neuron_table_matches_fixture(load_fixture, fixture, model):
    fx = load_fixture(fixture)
    tp = profile_tracker(build_model(model, "golden"), "golden")
    ours = []
    if tp.template is not None:
        ours += per_call(tp.template.neurons, strip_prefix="encoder.")   # the template encoder has no prefix
    ours += per_call(tp.frame.neurons)
    ref = fx["neurons"]
    assert len(ours) == len(ref)
    for (name, mass, rate), rec in zip(ours, ref):
        assert name == rec["name"]
        # spike_count_per_t is sum(round(out * D)): the spike mass in integer levels
        assert mass == pytest.approx(rec["spike_count_per_t"], abs=0), name
        assert rate == pytest.approx(rec["nonzero_per_t"], abs=1e-6), name
