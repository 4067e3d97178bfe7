"""Build a :class:`~snnsim.loihi.emulator.LoihiNetwork` from lava-nc processes.

``from_lava(*processes)`` starts from any process(es) of a lava network, walks the port
connections both ways (through virtual reshape / transpose ports and hierarchical port
forwarding) to the whole connected graph, reads every process's variables and returns the
emulator network. Supported: ``RingBuffer`` (lava.proc.io.source), ``Dense``, ``Sparse``,
``Conv``, ``LIF``, ``LIFReset``, ``TernaryLIF`` and subclasses of LIF that keep LIF's process
model. Monitors and sink RingBuffers only observe and are left out. A process lava-nc itself
cannot run in fixed point (no ``fixed_pt`` process model, e.g. ``LIFRefractory`` in lava 0.10)
is refused with exactly that reason; anything else raises a ``TypeError`` naming the process and
the supported types.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from .emulator import (ConvLayer, DenseLayer, LIFPopulation, LIFResetPopulation, LoihiNetwork, Node, RingBufferSource,
                       SparseLayer, TernaryLIFPopulation)

SUPPORTED = ("lava.proc.io.source.RingBuffer", "lava.proc.dense.process.Dense", "lava.proc.sparse.process.Sparse",
             "lava.proc.conv.process.Conv", "lava.proc.lif.process.LIF", "lava.proc.lif.process.LIFReset",
             "lava.proc.lif.process.TernaryLIF", "subclasses of LIF that keep its process model")

Transforms = Tuple[Tuple[str, Tuple[int, ...]], ...]


def _lava():
    try:
        from lava.magma.core.process.ports import ports as lp
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as SinkRingBuffer
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIF, LIFReset, TernaryLIF
        from lava.proc.monitor.process import Monitor
        from lava.proc.sparse.process import Sparse
    except ImportError as e:  # pragma: no cover - lava is in requirements.lock
        raise ImportError("from_lava needs lava-nc (see shared/specs/loihi.md)") from e
    return dict(ports=lp, LIF=LIF, LIFReset=LIFReset, TernaryLIF=TernaryLIF, Dense=Dense, Sparse=Sparse, Conv=Conv,
                RingBuffer=RingBuffer, observers=(Monitor, SinkRingBuffer))


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


def _fixed_pt_models(proc_class: type) -> list[type]:
    """The fixed_pt process models written for exactly `proc_class`, where lava looks for them
    first: its own module and the `models` module beside it."""
    import importlib
    import inspect
    import sys

    names = [proc_class.__module__, proc_class.__module__.rsplit(".", 1)[0] + ".models"]
    found = []
    for name in dict.fromkeys(names):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
        found += [m for m in vars(module).values() if inspect.isclass(m)
                  and getattr(m, "implements_process", None) is proc_class
                  and "fixed_pt" in (getattr(m, "tags", None) or [])]
    return list(dict.fromkeys(found))


def _emulated_models() -> Dict[str, type]:
    """The lava process model each emulated process type stands for."""
    from lava.proc.conv.models import PyConvModelFixed
    from lava.proc.dense.models import PyDenseModelBitAcc
    from lava.proc.io.source import PySendModelFixed
    from lava.proc.lif.models import PyLifModelBitAcc, PyLifResetModelBitAcc, PyTernLifModelFixed
    from lava.proc.sparse.models import PySparseModelBitAcc

    return {"LIF": PyLifModelBitAcc, "LIFReset": PyLifResetModelBitAcc, "TernaryLIF": PyTernLifModelFixed,
            "Dense": PyDenseModelBitAcc, "Sparse": PySparseModelBitAcc, "Conv": PyConvModelFixed,
            "RingBuffer": PySendModelFixed}


def _model_refusal(proc: Any, kind: str, model_map: Dict[Any, type]) -> str | None:
    """Why `proc` (emulated as lava's `kind`) cannot be: the run config maps it to a model other
    than the one the emulator follows, or (a subclass) lava has no fixed_pt model for it, or
    its own model is not that one. None when it runs with exactly the emulated model."""
    import inspect

    want = _emulated_models()[kind]
    # lava 0.10's compiler looks the process object up in the map, its run config the class
    mapped = model_map.get(proc) or model_map.get(type(proc))
    if mapped is not None:
        return None if mapped is want else (f"the run config maps it to {getattr(mapped, '__qualname__', mapped)}, "
                                            f"not {want.__qualname__}, which is what the emulator follows")
    if type(proc).__name__ == kind and type(proc).__module__.startswith("lava."):
        return None
    models = _fixed_pt_models(type(proc))
    if not models:
        return ("lava-nc has no fixed_pt process model for it, so there is no fixed-point behaviour to emulate (if "
                "your run config maps it to one, give from_lava the same exception_proc_model_map)")
    other = [m for m in models if m is not want]
    if other:
        defined = sorted(k for k, v in vars(other[0]).items() if inspect.isfunction(v) and not k.startswith("__"))
        return (f"its process model {other[0].__qualname__} is not {want.__qualname__} (it defines "
                f"{', '.join(defined) or 'its own attributes'}), which the emulator cannot follow")
    return None


def _lif_state(proc: Any) -> Dict[str, Any]:
    return dict(u=_var(proc, "u"), v=_var(proc, "v"), du=_var(proc, "du"), dv=_var(proc, "dv"),
                bias_mant=_var(proc, "bias_mant"), bias_exp=_var(proc, "bias_exp"))


def _kind(proc: Any, L: Dict[str, Any]) -> str | None:
    """The lava process type `proc` is emulated as (a subclass as its nearest supported type)."""
    for kind in ("TernaryLIF", "LIFReset", "LIF", "Sparse", "Dense", "Conv", "RingBuffer"):
        if isinstance(proc, L[kind]):
            return kind
    return None


def _to_node(proc: Any, L: Dict[str, Any], model_map: Dict[Any, type]) -> Node:
    name = proc.name
    kind = _kind(proc, L)
    if kind is not None:
        why = _model_refusal(proc, kind, model_map)
        if why is not None:
            raise TypeError(f"from_lava: process {name!r} of type {_qualname(proc)}: {why}")
    t = L[kind] if kind is not None else type(proc)
    if t is L["TernaryLIF"]:
        return TernaryLIFPopulation(name, proc.s_out.shape, vth_hi=_var(proc, "vth_hi"), vth_lo=_var(proc, "vth_lo"),
                                    **_lif_state(proc))
    if t is L["LIFReset"]:
        pp = proc.proc_params
        return LIFResetPopulation(name, proc.s_out.shape, vth=_var(proc, "vth"), reset_interval=pp["reset_interval"],
                                  reset_offset=pp["reset_offset"], **_lif_state(proc))
    if t is L["LIF"]:
        return LIFPopulation(name, proc.s_out.shape, vth=_var(proc, "vth"), **_lif_state(proc))
    if t is L["Dense"] or t is L["Sparse"]:
        pp = proc.proc_params
        sign_mode = pp.get("sign_mode")
        if sign_mode is not None and getattr(type(sign_mode), "__name__", "") != "SignMode":
            # lava: `sign_mode or determine_sign_mode(w)`, then compares with SignMode members
            sign_mode = "NULL" if sign_mode else None
        layer = SparseLayer if t is L["Sparse"] else DenseLayer
        weights = _var(proc, "weights")
        return layer(name, weights if hasattr(weights, "toarray") else np.asarray(weights),
                     weight_exp=pp.get("weight_exp", 0), num_weight_bits=pp.get("num_weight_bits", 8),
                     sign_mode=sign_mode, num_message_bits=_var(proc, "num_message_bits"))
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


def from_lava(*processes: Any, exception_proc_model_map: Dict[type, type] | None = None) -> LoihiNetwork:
    """The emulator network of the lava graph connected to ``processes``.

    ``exception_proc_model_map``: the same map the lava run config is given (process, or process
    class, -> process model), for subclasses of LIF the run maps to a model explicitly.

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
        nodes[id(proc)] = net.add(_to_node(proc, L, dict(exception_proc_model_map or {})))
    for src, dst, tr in edges:
        net.connect(nodes[id(src)], nodes[id(dst)], tr)
    return net
