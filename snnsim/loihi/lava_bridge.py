"""Build a :class:`~snnsim.loihi.emulator.LoihiNetwork` from lava-nc processes.

``from_lava(*processes)`` starts from any process(es) of a lava network, walks the port
connections both ways (through virtual reshape / transpose ports and hierarchical port
forwarding) to the whole connected graph, reads every process's variables and returns the
emulator network. Supported: ``RingBuffer`` (lava.proc.io.source), ``Dense``, ``Conv`` and
``LIF``. Monitors and sink RingBuffers only observe and are left out. Anything else raises a
``TypeError`` naming the process and the supported types.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from .emulator import ConvLayer, DenseLayer, LIFPopulation, LoihiNetwork, Node, RingBufferSource

SUPPORTED = ("lava.proc.io.source.RingBuffer", "lava.proc.dense.process.Dense",
             "lava.proc.conv.process.Conv", "lava.proc.lif.process.LIF")

Transforms = Tuple[Tuple[str, Tuple[int, ...]], ...]


def _lava():
    try:
        from lava.magma.core.process.ports import ports as lp
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as SinkRingBuffer
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIF
        from lava.proc.monitor.process import Monitor
    except ImportError as e:  # pragma: no cover - lava is in requirements.lock
        raise ImportError("from_lava needs lava-nc (see shared/specs/loihi.md)") from e
    return dict(ports=lp, LIF=LIF, Dense=Dense, Conv=Conv, RingBuffer=RingBuffer,
                observers=(Monitor, SinkRingBuffer))


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _downstream(port: Any, lp: Any, transforms: Transforms = ()) -> Iterator[Tuple[Any, Transforms]]:
    """Leaf InPorts reached from an OutPort, with the virtual-port transforms on the way."""
    for p in port.out_connections:
        if isinstance(p, lp.ConcatPort):
            raise TypeError(f"ConcatPort after {port.process.name!r}.{port.name} is not supported")
        if isinstance(p, lp.ReshapePort):
            yield from _downstream(p, lp, transforms + (("reshape", tuple(int(s) for s in p.shape)),))
        elif isinstance(p, lp.TransposePort):
            yield from _downstream(p, lp, transforms + (("transpose", tuple(int(a) for a in p.axes)),))
        elif p.out_connections:   # hierarchical forwarding (OutPort -> parent OutPort, InPort -> child InPort)
            yield from _downstream(p, lp, transforms)
        elif isinstance(p, lp.InPort):
            yield p, transforms
        # a dangling OutPort of a parent process: nothing receives


def _upstream_processes(port: Any, lp: Any) -> Iterator[Any]:
    """Processes whose OutPorts feed an InPort (directly, virtually or hierarchically)."""
    for p in port.in_connections:
        if isinstance(p, lp.AbstractVirtualPort) or p.in_connections:
            yield from _upstream_processes(p, lp)
        elif isinstance(p, lp.OutPort):
            yield p.process


def _var(proc: Any, name: str) -> Any:
    return getattr(proc, name).init


def _to_node(proc: Any, L: Dict[str, Any]) -> Node:
    name = proc.name
    t = type(proc)
    if t is L["LIF"]:
        return LIFPopulation(name, proc.s_out.shape, u=_var(proc, "u"), v=_var(proc, "v"),
                             du=_var(proc, "du"), dv=_var(proc, "dv"), bias_mant=_var(proc, "bias_mant"),
                             bias_exp=_var(proc, "bias_exp"), vth=_var(proc, "vth"))
    if t is L["Dense"]:
        pp = proc.proc_params
        sign_mode = pp.get("sign_mode")
        if sign_mode is not None and getattr(type(sign_mode), "__name__", "") != "SignMode":
            # lava: `sign_mode or determine_sign_mode(w)`, then compares with SignMode members
            sign_mode = "NULL" if sign_mode else None
        return DenseLayer(name, np.asarray(_var(proc, "weights")), weight_exp=pp.get("weight_exp", 0),
                          num_weight_bits=pp.get("num_weight_bits", 8), sign_mode=sign_mode,
                          num_message_bits=_var(proc, "num_message_bits"))
    if t is L["Conv"]:
        return ConvLayer(name, np.asarray(_var(proc, "weight")), tuple(proc.s_in.shape),
                         stride=_var(proc, "stride"), padding=_var(proc, "padding"),
                         dilation=_var(proc, "dilation"), groups=_var(proc, "groups"),
                         num_message_bits=_var(proc, "num_message_bits"),
                         weight_exp=_var(proc, "weight_exp"), num_weight_bits=_var(proc, "num_weight_bits"))
    if t is L["RingBuffer"]:
        return RingBufferSource(name, np.asarray(_var(proc, "data")))
    raise TypeError(f"from_lava: process {name!r} of type {_qualname(proc)} is not supported; "
                    f"supported types: {', '.join(SUPPORTED)} (Monitor and sink RingBuffer are ignored)")


def from_lava(*processes: Any) -> LoihiNetwork:
    """The emulator network of the lava graph connected to ``processes``.

    Its ``run(num_steps)`` returns ``{lif.name: {'u', 'v', 's'}}`` equal to what lava's
    Monitors record for ``u``, ``v`` and ``s_out`` on a ``Loihi2SimCfg(select_tag='fixed_pt')``
    run of ``num_steps`` steps. Initial values are the Vars' ``init`` values.
    """
    if not processes:
        raise ValueError("from_lava needs at least one lava process")
    L = _lava()
    lp = L["ports"]
    observers = L["observers"]

    seen: Dict[int, Any] = {}
    order: List[Any] = []
    queue = list(processes)
    edges: List[Tuple[Any, Any, Transforms]] = []
    while queue:
        proc = queue.pop(0)
        if id(proc) in seen or isinstance(proc, observers):
            continue
        seen[id(proc)] = proc
        order.append(proc)
        for port in proc.out_ports:
            for dst_port, tr in _downstream(port, lp):
                dst = dst_port.process
                if isinstance(dst, observers):
                    continue
                edges.append((proc, dst, tr))
                queue.append(dst)
        for port in proc.in_ports:
            queue.extend(_upstream_processes(port, lp))

    net = LoihiNetwork()
    nodes: Dict[int, Node] = {}
    for proc in order:
        if proc.name in net.nodes:
            raise ValueError(f"two processes are named {proc.name!r}: results are keyed by name")
        nodes[id(proc)] = net.add(_to_node(proc, L))
    for src, dst, tr in edges:
        net.connect(nodes[id(src)], nodes[id(dst)], tr)
    return net
