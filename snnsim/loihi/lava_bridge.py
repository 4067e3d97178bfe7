"""Build a :class:`~snnsim.loihi.emulator.LoihiNetwork` from lava-nc processes.

``from_lava(*processes)`` starts from any process(es) of a lava network, walks the port
connections both ways (through virtual reshape / transpose ports and hierarchical port
forwarding) to the whole connected graph, reads every process's variables and returns the
emulator network. Supported: ``RingBuffer`` (lava.proc.io.source), ``SpikeDataloader``,
``Dense``, ``Sparse``, ``DelayDense``, ``DelaySparse``, ``Conv``, ``LIF``, ``LIFReset``,
``TernaryLIF``, ``Sigma``, ``Delta``, ``SigmaDelta`` and subclasses that keep their process's
model; hierarchical processes stand for their leaves (compiled by lava or not). A network lava
has run is read as it is now (``steps_done``). Monitors and sink RingBuffers only observe and
are left out. A process lava-nc itself cannot run in fixed point (no ``fixed_pt`` process model,
e.g. ``LIFRefractory`` in lava 0.10) is refused with exactly that reason; anything else raises a
``TypeError`` naming the process and the supported types.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from .delays import DelayDenseLayer, DelaySparseLayer
from .emulator import (ConvLayer, DenseLayer, LIFPopulation, LIFResetPopulation, LoihiNetwork, Node, RingBufferSource,
                       SparseLayer, SpikeDataloaderSource, TernaryLIFPopulation)
from .sdn import DeltaPopulation, SigmaDeltaPopulation, SigmaPopulation

SUPPORTED = ("lava.proc.io.source.RingBuffer", "lava.proc.io.dataloader.SpikeDataloader",
             "lava.proc.dense.process.Dense", "lava.proc.dense.process.DelayDense", "lava.proc.sparse.process.Sparse",
             "lava.proc.sparse.process.DelaySparse", "lava.proc.conv.process.Conv", "lava.proc.lif.process.LIF",
             "lava.proc.lif.process.LIFReset", "lava.proc.lif.process.TernaryLIF", "lava.proc.sdn.process.Sigma",
             "lava.proc.sdn.process.Delta", "lava.proc.sdn.process.SigmaDelta",
             "subclasses of these that keep their process model")

Transforms = Tuple[Tuple[str, Tuple[int, ...]], ...]


def _lava():
    try:
        from lava.magma.core.process.ports import ports as lp
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import DelayDense, Dense
        from lava.proc.io.dataloader import SpikeDataloader
        from lava.proc.io.sink import RingBuffer as SinkRingBuffer
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIF, LIFReset, TernaryLIF
        from lava.proc.monitor.process import Monitor
        from lava.proc.sdn.process import Delta, Sigma, SigmaDelta
        from lava.proc.sparse.process import DelaySparse, Sparse
    except ImportError as e:  # pragma: no cover - lava is in requirements.lock
        raise ImportError("from_lava needs lava-nc (see shared/specs/loihi.md)") from e
    return dict(ports=lp, LIF=LIF, LIFReset=LIFReset, TernaryLIF=TernaryLIF, Dense=Dense, Sparse=Sparse, Conv=Conv,
                DelayDense=DelayDense, DelaySparse=DelaySparse, Sigma=Sigma, Delta=Delta, SigmaDelta=SigmaDelta,
                RingBuffer=RingBuffer, SpikeDataloader=SpikeDataloader, observers=(Monitor, SinkRingBuffer))


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


class _Hierarchy:
    """Hierarchical processes (a process run by an ``AbstractSubProcessModel``), which the walk
    passes through to their leaves. Once lava compiled one, its ports forward to its children.
    Before that the children do not exist, so a shadow of the process is built -- the same class
    from the same parameters, expanded by the same sub-process model -- and the walk enters the
    shadow where it meets the process's ports (and leaves it back through them). The user's
    network is left as it is: lava can still compile and run it. The shadow's children are named
    ``<process name>.<attribute>``."""

    def __init__(self, model_map: Dict[Any, type]):
        self.model_map = model_map
        self.shadows: Dict[int, Any] = {}     # id(original) -> its shadow
        self.originals: Dict[int, Any] = {}   # id(shadow) -> the original

    def sub_model(self, proc: Any) -> type | None:
        from lava.magma.core.model.sub.model import AbstractSubProcessModel

        mapped = self.model_map.get(proc) or self.model_map.get(type(proc))
        if mapped is not None:
            return mapped if isinstance(mapped, type) and issubclass(mapped, AbstractSubProcessModel) else None
        found = [m for m in _process_models(type(proc)) if issubclass(m, AbstractSubProcessModel)]
        return found[0] if found else None

    def children(self, proc: Any) -> List[Any] | None:
        """The processes `proc` stands for (its own, or its shadow's); None: not hierarchical."""
        compiled = list(proc.procs) if proc.procs.member_names else []
        if compiled:
            return compiled
        if self.sub_model(proc) is None:
            return None
        return list(self.shadow(proc).procs)

    def shadow(self, proc: Any) -> Any:
        if id(proc) in self.shadows:
            return self.shadows[id(proc)]
        params = dict(proc.proc_params._parameters)
        try:
            twin = type(proc)(**params)
            sub = self.sub_model(proc)(twin)
        except Exception as exc:   # noqa: BLE001 - the user's class and model: said in one line
            raise TypeError(f"from_lava: hierarchical process {proc.name!r} ({_qualname(proc)}) has not been "
                            f"compiled, and rebuilding its children from its parameters failed "
                            f"({type(exc).__name__}: {exc}); compile it first (executable = proc.compile(run_cfg)), "
                            f"then call from_lava") from None
        different = _differences(proc, twin)
        if different:
            raise TypeError(f"from_lava: hierarchical process {proc.name!r} ({_qualname(proc)}) has not been "
                            f"compiled, and rebuilt from its parameters it differs ({different}: its __init__ keeps "
                            f"something it does not pass to AbstractProcess.__init__); compile it first "
                            f"(executable = proc.compile(run_cfg)), then call from_lava")
        found = sub.find_sub_procs()
        for attr, child in found.items():
            child.name = f"{proc.name}.{attr}"
        twin.register_sub_procs(found)
        self.shadows[id(proc)] = twin
        self.originals[id(twin)] = proc
        return twin

    def enter(self, port: Any) -> Any | None:
        """The shadow's port matching a port of a hierarchical process lava has not compiled."""
        proc = port.process
        if proc is None or id(proc) in self.originals or proc.procs.member_names or self.sub_model(proc) is None:
            return None
        return getattr(self.shadow(proc), port.name)

    def leave(self, port: Any) -> Any | None:
        """The original's port matching a port of a shadow."""
        original = self.originals.get(id(port.process))
        return getattr(original, port.name) if original is not None else None


def _differences(proc: Any, twin: Any) -> str:
    """What a rebuilt process does not share with the original: Var values, or plain attributes
    (numbers, strings, arrays) its __init__ kept; '' when none."""
    for var in proc.vars:
        other = getattr(twin, var.name, None)
        if other is None or not np.array_equal(np.asarray(var.init, dtype=object), np.asarray(other.init, dtype=object)):
            return f"Var {var.name}"
    for key, value in vars(proc).items():
        if key.startswith("_") or key in ("name", "id", "proc_params", "procs"):
            continue
        if isinstance(value, (int, float, str, bool, np.ndarray, tuple, list)):
            other = vars(twin).get(key)
            try:
                same = np.array_equal(np.asarray(value, dtype=object), np.asarray(other, dtype=object))
            except (TypeError, ValueError):
                same = value == other
            if not same:
                return f"attribute {key}"
    return ""


def _downstream(port: Any, lp: Any, h: _Hierarchy, transforms: Transforms = ()) -> Iterator[Tuple[Any, Transforms]]:
    """Leaf InPorts reached from an OutPort, with the virtual-port transforms on the way."""
    for p in port.out_connections:
        if isinstance(p, lp.ConcatPort):
            raise TypeError(f"ConcatPort after {port.process.name!r}.{port.name} is not supported")
        if isinstance(p, lp.ReshapePort):
            yield from _downstream(p, lp, h, transforms + (("reshape", tuple(int(s) for s in p.shape)),))
        elif isinstance(p, lp.TransposePort):
            yield from _downstream(p, lp, h, transforms + (("transpose", tuple(int(a) for a in p.axes)),))
        elif p.out_connections:   # hierarchical forwarding (OutPort -> parent OutPort, InPort -> child InPort)
            yield from _downstream(p, lp, h, transforms)
        elif h.enter(p) is not None:   # into a hierarchical process lava has not compiled
            yield from _downstream(h.enter(p), lp, h, transforms)
        elif h.leave(p) is not None:   # out of one, through its own port
            yield from _downstream(h.leave(p), lp, h, transforms)
        elif isinstance(p, lp.InPort):
            yield p, transforms
        # a dangling OutPort of a parent process: nothing receives


def _upstream_processes(port: Any, lp: Any, h: _Hierarchy) -> Iterator[Any]:
    """Processes whose OutPorts feed an InPort (directly, virtually or hierarchically)."""
    for p in port.in_connections:
        if isinstance(p, lp.AbstractVirtualPort) or p.in_connections:
            yield from _upstream_processes(p, lp, h)
        elif h.leave(p) is not None:    # a shadow's InPort: what feeds the original's
            yield from _upstream_processes(h.leave(p), lp, h)
        elif h.enter(p) is not None:    # an uncompiled hierarchical process's OutPort: its shadow's
            yield from _upstream_processes(h.enter(p), lp, h)
        elif isinstance(p, lp.OutPort):
            yield p.process


def _live(proc: Any) -> bool:
    """Whether lava holds this process's state now (a runtime started and not stopped)."""
    runtime = getattr(proc, "runtime", None)
    return runtime is not None and bool(getattr(runtime, "_is_started", False))


def _var(proc: Any, name: str) -> Any:
    """A Var's value as lava holds it now: its current value while the process's runtime is up
    (after a run, or a Var.set()), else its initial value."""
    var = getattr(proc, name)
    if hasattr(var.init, "toarray"):
        # a sparse matrix (Sparse weights, delays): no model changes it in a run, and lava 0.10's
        # get() of one fails once the model dropped its stored zeros
        return var.init
    return var.get() if _live(proc) else var.init


def _fixed_pt_models(proc_class: type) -> list[type]:
    """The fixed_pt process models written for exactly `proc_class`."""
    return [m for m in _process_models(proc_class) if "fixed_pt" in (getattr(m, "tags", None) or [])]


def _process_models(proc_class: type) -> list[type]:
    """The process models written for exactly `proc_class`, where lava looks for them first:
    its own module and the `models` module beside it."""
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
                  and getattr(m, "implements_process", None) is proc_class]
    return list(dict.fromkeys(found))


def _emulated_models() -> Dict[str, type]:
    """The lava process model each emulated process type stands for."""
    from lava.proc.conv.models import PyConvModelFixed
    from lava.proc.dense.models import PyDelayDenseModelBitAcc, PyDenseModelBitAcc
    from lava.proc.io.dataloader import PySpikeModelFixed
    from lava.proc.io.source import PySendModelFixed
    from lava.proc.lif.models import PyLifModelBitAcc, PyLifResetModelBitAcc, PyTernLifModelFixed
    from lava.proc.sdn.models import PyDeltaModelFixed, PySigmaDeltaModelFixed, PySigmaModelFixed
    from lava.proc.sparse.models import PyDelaySparseModelBitAcc, PySparseModelBitAcc

    return {"LIF": PyLifModelBitAcc, "LIFReset": PyLifResetModelBitAcc, "TernaryLIF": PyTernLifModelFixed,
            "Dense": PyDenseModelBitAcc, "Sparse": PySparseModelBitAcc, "Conv": PyConvModelFixed,
            "DelayDense": PyDelayDenseModelBitAcc, "DelaySparse": PyDelaySparseModelBitAcc,
            "Sigma": PySigmaModelFixed, "Delta": PyDeltaModelFixed, "SigmaDelta": PySigmaDeltaModelFixed,
            "RingBuffer": PySendModelFixed, "SpikeDataloader": PySpikeModelFixed}


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
    for kind in ("TernaryLIF", "LIFReset", "LIF", "DelaySparse", "Sparse", "DelayDense", "Dense", "Conv", "SigmaDelta",
                 "Delta", "Sigma", "RingBuffer", "SpikeDataloader"):
        if isinstance(proc, L[kind]):
            return kind
    return None


def _to_node(proc: Any, L: Dict[str, Any], model_map: Dict[Any, type], ran: bool = False) -> Node:
    """The emulator node of one lava process; `ran`: lava has run it (its Dense weights are
    already quantised)."""
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
    if t in (L["Dense"], L["Sparse"], L["DelayDense"], L["DelaySparse"]):
        pp = proc.proc_params
        sign_mode = pp.get("sign_mode")
        if sign_mode is not None and getattr(type(sign_mode), "__name__", "") != "SignMode":
            # lava: `sign_mode or determine_sign_mode(w)`, then compares with SignMode members
            sign_mode = "NULL" if sign_mode else None
        weights = _var(proc, "weights")
        weights = weights if hasattr(weights, "toarray") else np.asarray(weights)
        options = dict(weight_exp=pp.get("weight_exp", 0), num_weight_bits=pp.get("num_weight_bits", 8),
                       sign_mode=sign_mode, num_message_bits=_var(proc, "num_message_bits"),
                       # after lava's first step its model holds the clipped, truncated weights (a
                       # later Var.set() is not quantised again); sparse ones are read as made
                       quantized=ran and _live(proc) and not hasattr(weights, "toarray"))
        if t in (L["DelayDense"], L["DelaySparse"]):
            layer = DelaySparseLayer if t is L["DelaySparse"] else DelayDenseLayer
            # the buffer's depth is what lava made it (max_delay, or the largest delay)
            depth = int(proc.a_buff.shape[-1])
            return layer(name, weights, _var(proc, "delays"), depth=depth, **options)
        return (SparseLayer if t is L["Sparse"] else DenseLayer)(name, weights, **options)
    if t in (L["Sigma"], L["Delta"], L["SigmaDelta"]):
        shape = tuple(proc.s_out.shape)
        if t is L["Sigma"]:
            return SigmaPopulation(name, shape, sigma=_var(proc, "sigma"))
        delta = dict(vth=_var(proc, "vth"), cum_error=_var(proc, "cum_error"), spike_exp=_var(proc, "spike_exp"),
                     state_exp=_var(proc, "state_exp"), act=_var(proc, "act"), residue=_var(proc, "residue"),
                     error=_var(proc, "error"))
        if t is L["Delta"]:
            return DeltaPopulation(name, shape, **delta)
        return SigmaDeltaPopulation(name, shape, bias=_var(proc, "bias"), act_mode=proc.proc_params["act_mode"],
                                    sigma=_var(proc, "sigma"), **delta)
    if t is L["SpikeDataloader"]:
        return SpikeDataloaderSource(name, proc.proc_params["saved_dataset"], _var(proc, "interval"),
                                     _var(proc, "offset"))
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


def from_lava(*processes: Any, exception_proc_model_map: Dict[type, type] | None = None,
              steps_done: int | None = None) -> LoihiNetwork:
    """The emulator network of the lava graph connected to ``processes``.

    ``exception_proc_model_map``: the same map the lava run config is given (process, or process
    class, -> process model), for subclasses the run maps to a model explicitly.

    Its ``run(num_steps)`` returns ``{population: {variable: array}}`` equal to what lava's
    Monitors record (a LIF's ``u``, ``v`` and ``s_out``; a sigma-delta neuron's ``sigma``,
    ``act``, ``residue``, ``error`` and ``s_out``) on a ``Loihi2SimCfg(select_tag='fixed_pt')``
    run of ``num_steps`` steps. A fresh network starts from its Vars' initial values. A network
    whose lava runtime is up (it ran, or Vars were set) is read as it is now -- every Var's
    current value, the synapses' buffers included -- and continues where lava stopped; lava does
    not expose the step its processes are at, so ``steps_done`` (the steps run so far) must then
    be given: RingBuffers, dataloaders and LIFReset keep their phase by it. Sparse and
    DelaySparse weights and delays are read as they were made (lava 0.10 cannot read a sparse
    Var back once its model dropped stored zeros; no fixed_pt model changes them in a run).
    """
    if not processes:
        raise ValueError("from_lava needs at least one lava process")
    L = _lava()
    lp = L["ports"]
    observers = L["observers"]

    for p in processes:
        if not (hasattr(p, "procs") and hasattr(p, "out_ports") and hasattr(p, "in_ports")):
            raise TypeError(f"from_lava takes lava processes (LIF, Dense, RingBuffer ...), not {type(p).__name__}")
    if exception_proc_model_map is not None and not isinstance(exception_proc_model_map, dict):
        raise TypeError(f"from_lava: exception_proc_model_map must be a dict {{process or class: model class}}, "
                        f"not {type(exception_proc_model_map).__name__}")
    if steps_done is not None and (isinstance(steps_done, bool) or not isinstance(steps_done, (int, np.integer))
                                   or steps_done < 0):
        raise ValueError(f"from_lava: steps_done must be a whole number >= 0 (got {steps_done!r})")
    model_map = dict(exception_proc_model_map or {})
    h = _Hierarchy(model_map)
    seen: Dict[int, Any] = {}
    order: List[Any] = []
    queue = list(processes)
    edges: List[Tuple[Any, Any, Transforms]] = []
    while queue:
        proc = queue.pop(0)
        if id(proc) in seen or isinstance(proc, observers):
            continue
        seen[id(proc)] = proc
        children = h.children(proc)
        if children is not None:   # a hierarchical process: its leaves are the network
            queue.extend(children)
            continue
        order.append(proc)
        for port in proc.out_ports:
            if isinstance(proc, L["SpikeDataloader"]) and port.name == "ground_truth":
                readers = [p.process.name for p, _ in _downstream(port, lp, h) if not isinstance(p.process, observers)]
                if readers:
                    raise TypeError(f"from_lava: {proc.name!r}.ground_truth feeds {readers[0]!r}: the labels are not "
                                    f"emulated (connect them to a Monitor or sink only)")
                continue   # the labels: read by the user's code, not by the network
            for dst_port, tr in _downstream(port, lp, h):
                dst = dst_port.process
                if isinstance(dst, observers):
                    continue
                edges.append((proc, dst, tr))
                queue.append(dst)
        for port in proc.in_ports:
            queue.extend(_upstream_processes(port, lp, h))

    live = [p for p in order if _live(p)]
    if live and steps_done is None:
        raise ValueError(f"from_lava: {live[0].name!r} has a lava runtime up, so its Vars are read as they are now, "
                         f"but lava does not expose the step its processes are at; give steps_done=N (the steps run "
                         f"so far)")
    if steps_done and not live:
        raise ValueError(f"from_lava: steps_done={steps_done} but no process of the network has a lava runtime up: "
                         f"its Vars hold their initial values (a stopped runtime can no longer be read); leave "
                         f"steps_done out for a network that has not run")
    net = LoihiNetwork()
    net.first_step = int(steps_done or 0) + 1
    nodes: Dict[int, Node] = {}
    for proc in order:
        if proc.name in net.nodes:
            raise ValueError(f"two processes are named {proc.name!r}: results are keyed by name")
        node = net.add(_to_node(proc, L, model_map, ran=bool(steps_done)))
        if node.buffered and _live(proc):   # what lava computed last: sent at the next step
            node.initial_buffer = np.asarray(_var(proc, "a_buf" if hasattr(proc, "a_buf") else "a_buff"))
        nodes[id(proc)] = node
    for src, dst, tr in edges:
        net.connect(nodes[id(src)], nodes[id(dst)], tr)
    return net
