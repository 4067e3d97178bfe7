"""The shipped trained twins: spiketrack-tiny (SNN) and spiketrack-tiny-ann (its ANN twin).

CI never trains; it loads the shipped checkpoints and checks them on one short held-out
sequence per style (snnsim.tracking.heldout_styles, code the training distribution never
ran). The floors are the AUCs the shipped checkpoints reach there (identical at 1, 2 and 3
threads) less a margin for closed-loop tracking on another CPU's float kernels (a flipped
spike can move a box); a retrained checkpoint that tracks clearly worse fails here (the full
evaluation, with its numbers, is docs/training_tiny.md)."""
from __future__ import annotations

import pytest
import torch

from snnsim.models import build_model, get_spec
from snnsim.models.spiketrack_tiny import ANN_WEIGHTS_PATH, WEIGHTS_PATH
from snnsim.tracking.heldout_eval import heldout_sequences, track_boxes
from snnsim.tracking.heldout_styles import HELDOUT_STYLES
from snnsim.tracking.sot_metrics import sot_metrics, static_boxes

SHORT_FRAMES = 60
# AUC floors on the first sequence (seed 0, SHORT_FRAMES frames) of each held-out style
# (measured with the shipped checkpoints: SNN 0.074 / 0.290 / 0.103, ANN 0.083 / 0.607 / 0.164,
# static box 0.064 / 0.071 / 0.094 -- neither twin meets issue 15's 0.5 target on two of
# the three styles; docs/training_tiny.md has the full evaluation)
FLOORS = {
    "spiketrack-tiny": {"checker-blocks": 0.02, "glyph-plasma": 0.20, "street-walkers": 0.05},
    "spiketrack-tiny-ann": {"checker-blocks": 0.02, "glyph-plasma": 0.45, "street-walkers": 0.08},
}
shipped = pytest.mark.skipif(not (WEIGHTS_PATH.is_file() and ANN_WEIGHTS_PATH.is_file()),
                             reason="the trained twin checkpoints are not shipped")


@shipped
@pytest.mark.parametrize("name,path", [("spiketrack-tiny", WEIGHTS_PATH), ("spiketrack-tiny-ann", ANN_WEIGHTS_PATH)])
def test_checkpoints_ship_small_and_load_by_default(name, path):
    assert path.stat().st_size < 5 * 2 ** 20
    model = build_model(name)
    assert model.weights_source.startswith(f"trained {name}")
    assert "docs/training_tiny.md" in model.weights_source and "docs/training_tiny.md" in get_spec(name).summary
    # the default is the file, loaded strictly: the same tensors as an explicit load
    again = build_model(name, weights=str(path))
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


@shipped
def test_twins_share_every_tensor_but_the_neurons():
    snn, ann = build_model("spiketrack-tiny"), build_model("spiketrack-tiny-ann")
    s, a = snn.state_dict(), ann.state_dict()
    assert set(s) - set(a) == {k for k in s if k.endswith(".decay")}   # NI-LIF's (unused at T = 1)
    assert set(a) <= set(s)


@shipped
@pytest.mark.parametrize("style", HELDOUT_STYLES)
def test_shipped_twins_track_each_held_out_style(style):
    (_, frames, gt), = heldout_sequences(style, 1, SHORT_FRAMES)
    static = sot_metrics(static_boxes(gt), gt).auc
    assert static < 0.2                     # the styles' guarantee: a still box does not track
    for name, floors in FLOORS.items():
        auc = sot_metrics(track_boxes(build_model(name), frames, gt[0]), gt).auc
        print(f"{style}: {name} AUC {auc:.3f} (static box {static:.3f})")
        assert auc >= floors[style], (name, style, auc)


def test_the_ann_twins_template_encoder_holds_no_spiking_neuron():
    """The runtime caches the template through the template encoder, which holds its own
    references to the memory modules' neurons: the twin's must be ClippedReLUs too, or tracking
    (and the template pass's energy) runs 18 NI-LIFs the trained ANN never had."""
    from snnsim.models.neurons import NILIF

    assert not any(isinstance(m, NILIF) for m in build_model("spiketrack-tiny-ann", weights=None)
                   .template_encoder.modules())
    assert any(isinstance(m, NILIF) for m in build_model("spiketrack-tiny", weights=None).template_encoder.modules())


@shipped
def test_the_ann_twins_tracking_path_runs_the_network_it_was_trained_as():
    """On the trained weights (where the stale neurons changed the maps by up to 0.06), the
    twin's tracking path -- template cached, then the search -- equals its training graph."""
    ann = build_model("spiketrack-tiny-ann").eval()
    for source in ("golden", "random"):
        ex = ann.example_inputs(source)
        with torch.no_grad():
            trained_graph = ann(ex["template"], ex["search"])
            tracking = ann.forward_search(ex["search"], ann.forward_template(ex["template"]))
        for key in ("score_map", "size_map", "offset_map"):
            assert torch.allclose(trained_graph[key], tracking[key], atol=1e-6), (source, key)
