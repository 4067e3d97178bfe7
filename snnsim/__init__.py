"""snnsim: exact synaptic-operation counts, cited energy profiles and Loihi emulation for spiking models."""
from . import energy
from .counting import Profile, Profiler, SpikeFormat, profile

__version__ = "0.1.0"

__all__ = ["SpikeFormat", "Profile", "Profiler", "profile", "energy", "__version__"]
