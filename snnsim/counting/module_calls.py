"""Which module is running: the module half of snnsim's operator tracer, shared by the
Profiler (:mod:`snnsim.counting.profiler`) and the Loihi mapper (:mod:`snnsim.loihi.mapper`).

Each of them pairs a torch dispatch mode, which sees every operator, with a :class:`ModuleCalls`,
which keeps the stack of the model's modules being called and tells them when one is entered,
left, or left by an exception. The operator's module is the top of the stack.

The stack is kept by wrapping ``nn.Module.__call__`` while installed (modules told apart by
identity; modules of other models pass straight through). Forward hooks would do the same,
but any hook, global or per module, sends every module call down torch's slow path with hooks
(about 25 us a call: 16 ms of a tracker's 640 module calls); the wrapper costs one Python call
and keeps torch's fast path. A class that overrides ``__call__`` never reaches the wrapper: its
modules get a forward hook pair of their own instead.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

from torch import nn

Enter = Callable[[str, tuple, dict], None]
Exit = Callable[[str, tuple, Any], None]
Abort = Callable[[str], None]


def _ignore(*_args) -> None:
    return None


class ModuleCalls:
    """The module stack of one model while installed (``stack``: names, innermost last) and
    the callbacks ``enter(name, args, kwargs)`` (after the push), ``leave(name, args, output)``
    (after the pop) and ``abort(name)`` (the module raised; after the pop)."""

    def __init__(self, named_modules: Iterable[tuple[str, nn.Module]], enter: Enter = _ignore,
                 leave: Exit = _ignore, abort: Abort = _ignore):
        self.named = list(named_modules)
        self.enter, self.leave, self.abort = enter, leave, abort
        self.stack: list[str] = []
        self._names: dict[int, str] = {}          # id(module) -> name, while installed
        self._hooked: dict[int, str] = {}         # the same for modules with their own __call__
        self._hooks: list = []
        self._before = self._wrapper = None       # nn.Module.__call__ before / while installed

    def install(self) -> None:
        # fresh tables on every install: a wrapper of an earlier install that a later tracer
        # kept in place (removed out of order) holds the old, emptied ones and passes through
        self._names, self._hooked = {}, {}
        for name, m in self.named:
            if type(m).__call__ is nn.Module.__call__:
                self._names[id(m)] = name
            else:
                self._hooked[id(m)] = name
                self._hooks.append(m.register_forward_pre_hook(self._hooked_pre))
                self._hooks.append(m.register_forward_hook(self._hooked_post, always_call=True))
        self._before = nn.Module.__call__
        self._wrapper = self._make_wrapper()
        nn.Module.__call__ = self._wrapper

    def _make_wrapper(self):
        names, stack, call = self._names, self.stack, self._before
        enter, leave, abort = self.enter, self.leave, self.abort

        def __call__(module, *args, **kwargs):
            name = names.get(id(module))
            if name is None:
                return call(module, *args, **kwargs)
            depth = len(stack)
            stack.append(name)
            try:
                enter(name, args, kwargs)
                out = call(module, *args, **kwargs)
            except BaseException:
                del stack[depth:]     # this module and anything a failure left above it
                abort(name)
                raise
            if stack and stack[-1] == name:
                stack.pop()
            leave(name, args, out)
            return out

        return __call__

    def _hooked_pre(self, module, args) -> None:
        name = self._hooked.get(id(module))
        if name is not None:
            self.stack.append(name)
            self.enter(name, args, {})

    def _hooked_post(self, module, args, output) -> None:
        name = self._hooked.get(id(module))
        if name is not None:
            if self.stack and self.stack[-1] == name:
                self.stack.pop()
            if sys.exc_info()[0] is not None:   # torch runs always-call hooks while the forward raises
                self.abort(name)
            else:
                self.leave(name, args, output)

    def remove(self) -> None:
        # restored only while ours is outermost; under a later wrapper (a tracer installed
        # inside this one and not removed yet) ours stays and passes every module through,
        # since the name table is emptied (not replaced: the wrapper left installed reads it)
        if self._wrapper is not None and nn.Module.__call__ is self._wrapper:
            nn.Module.__call__ = self._before
        self._before = self._wrapper = None
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._names.clear()
        self._hooked.clear()
        self.stack.clear()
