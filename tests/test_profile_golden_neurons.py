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
    diverged_at = None
    for (name, mass, rate), rec in zip(ours, ref):
        assert name == rec["name"]
        if diverged_at is None and mass != rec["spike_count_per_t"]:
            diverged_at = name
            _assert_rounding_tie_flip(name, mass, rec)
        if diverged_at is None:
            # spike_count_per_t is sum(round(out * D)): the spike mass in integer levels
            assert mass == pytest.approx(rec["spike_count_per_t"], abs=0), name
            assert rate == pytest.approx(rec["nonzero_per_t"], abs=1e-6), name
        else:
            # downstream of one flipped spike the network is a different (equally valid)
            # float run; the fixture README measured per-layer rates within 13 % after it
            assert rate == pytest.approx(rec["nonzero_per_t"], rel=0.2, abs=1e-3), (name, diverged_at)


def _assert_rounding_tie_flip(name, mass, rec):
    """The fixture README's rule for a run whose float kernels differ from the fixture's (other
    CPU, other thread count): counts are exact up to the first divergence, and that divergence
    is one spike level (+-1) at one timestep where the reference membrane sat within 1e-6 of a
    rounding boundary k + 0.5. Anything else is a miscount."""
    diffs = [int(a - b) for a, b in zip(mass, rec["spike_count_per_t"])]
    moved = [t for t, d in enumerate(diffs) if d]
    assert len(moved) == 1 and abs(diffs[moved[0]]) == 1, (name, diffs)
    ties = rec["membrane_within_1e-6_of_half_per_t"][moved[0]]
    assert ties > 0, f"{name}: spike count moved at t={moved[0]} where no membrane was near a rounding tie"
