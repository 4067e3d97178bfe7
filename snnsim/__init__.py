"""snnsim: exact synaptic-operation counts, cited energy profiles and Loihi emulation for spiking models."""
from . import energy
from .counting import Profile, Profiler, SpikeFormat, profile

__version__ = "0.1.0"

__all__ = ["SpikeFormat", "Profile", "Profiler", "profile", "energy", "profile_dataset", "track_dataset",
           "__version__"]


def profile_dataset(*args, **kwargs):
    """See :func:`snnsim.datasets.profile_dataset` (imported lazily: it pulls in the models)."""
    from .datasets import profile_dataset as run

    return run(*args, **kwargs)


def track_dataset(*args, **kwargs):
    """See :func:`snnsim.datasets.track_dataset` (imported lazily: it pulls in the models)."""
    from .datasets import track_dataset as run

    return run(*args, **kwargs)
