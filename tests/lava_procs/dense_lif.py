"""A hierarchical lava process for the tests: Dense then LIF, run by a sub-process model (as
lava's tutorials write them). In a folder of its own: lava looks for a process's models by
running every .py file in the folder of the process's module."""
import numpy as np
from lava.magma.core.decorator import implements
from lava.magma.core.model.sub.model import AbstractSubProcessModel
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import Dense
from lava.proc.lif.process import LIF


class DenseLIF(AbstractProcess):
    def __init__(self, *, weights, vth=10, du=0, dv=0, name=None):
        super().__init__(weights=weights, vth=vth, du=du, dv=dv, name=name)
        n_out, n_in = np.shape(weights)
        self.s_in = InPort(shape=(n_in,))
        self.s_out = OutPort(shape=(n_out,))
        self.v = Var(shape=(n_out,), init=0)      # the LIF's v (aliased)


@implements(proc=DenseLIF, protocol=LoihiProtocol)
class DenseLIFModel(AbstractSubProcessModel):
    def __init__(self, proc):
        w = np.asarray(proc.proc_params["weights"])
        self.dense = Dense(weights=w)
        self.lif = LIF(shape=(w.shape[0],), vth=proc.proc_params["vth"], du=proc.proc_params["du"],
                       dv=proc.proc_params["dv"])
        proc.in_ports.s_in.connect(self.dense.in_ports.s_in)
        self.dense.out_ports.a_out.connect(self.lif.in_ports.a_in)
        self.lif.out_ports.s_out.connect(proc.out_ports.s_out)
        proc.vars.v.alias(self.lif.vars.v)


class TwoStage(AbstractProcess):
    """Two DenseLIF stages inside one process: a hierarchy two levels deep."""

    def __init__(self, *, w1, w2, name=None):
        super().__init__(w1=w1, w2=w2, name=name)
        self.s_in = InPort(shape=(np.shape(w1)[1],))
        self.s_out = OutPort(shape=(np.shape(w2)[0],))


@implements(proc=TwoStage, protocol=LoihiProtocol)
class TwoStageModel(AbstractSubProcessModel):
    def __init__(self, proc):
        self.first = DenseLIF(weights=proc.proc_params["w1"], vth=12, du=300, dv=200)
        self.second = DenseLIF(weights=proc.proc_params["w2"], vth=20, du=100, dv=400)
        proc.in_ports.s_in.connect(self.first.in_ports.s_in)
        self.first.out_ports.s_out.connect(self.second.in_ports.s_in)
        self.second.out_ports.s_out.connect(proc.out_ports.s_out)


class Gained(AbstractProcess):
    """A hierarchical process whose __init__ keeps `gain` without passing it to AbstractProcess:
    its parameters alone do not rebuild it."""

    def __init__(self, *, weights, gain=1, name=None):
        super().__init__(weights=weights, name=name)
        self.gain = gain
        self.s_in = InPort(shape=(np.shape(weights)[1],))
        self.s_out = OutPort(shape=(np.shape(weights)[0],))


@implements(proc=Gained, protocol=LoihiProtocol)
class GainedModel(AbstractSubProcessModel):
    def __init__(self, proc):
        w = np.asarray(proc.proc_params["weights"]) * proc.gain
        self.dense = Dense(weights=w)
        self.lif = LIF(shape=(w.shape[0],), vth=10)
        proc.in_ports.s_in.connect(self.dense.in_ports.s_in)
        self.dense.out_ports.a_out.connect(self.lif.in_ports.a_in)
        self.lif.out_ports.s_out.connect(proc.out_ports.s_out)
