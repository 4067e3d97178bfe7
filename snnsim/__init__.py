"""snnsim: exact synaptic-operation counts, cited energy profiles and Loihi emulation for spiking models."""
from .counting.formats import SpikeFormat

__version__ = "0.1.0"

__all__ = ["SpikeFormat", "__version__"]
