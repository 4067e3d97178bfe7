"""The module stack shared by the Profiler and the Loihi mapper (counting/module_calls.py):
enter / leave / abort in the right order, also for a class with its own __call__ that raises,
and tracers removed out of order never fire twice when installed again."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from snnsim.counting.module_calls import ModuleCalls


class OwnCall(nn.Module):
    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)

    def forward(self, x):
        raise RuntimeError("boom")


def _logged(model, log, tag=""):
    return ModuleCalls(model.named_modules(), lambda n, a, k: log.append((tag + "enter", n)),
                       lambda n, a, o: log.append((tag + "leave", n)), lambda n: log.append((tag + "abort", n)))


def test_a_raising_module_aborts_and_the_stack_unwinds():
    model = nn.Sequential(nn.Linear(2, 2), OwnCall())
    log: list = []
    calls = _logged(model, log)
    calls.install()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            model(torch.zeros(1, 2))
        assert calls.stack == []
    finally:
        calls.remove()
    assert log == [("enter", ""), ("enter", "0"), ("leave", "0"), ("enter", "1"), ("abort", "1"), ("abort", "")]


def test_tracers_removed_out_of_order_fire_once_when_installed_again():
    model = nn.Sequential(nn.Linear(2, 2))
    log: list = []
    a, b = _logged(model, log, "a-"), _logged(model, log, "b-")
    a.install()
    b.install()
    a.remove()          # out of order: b's wrapper still wraps a's
    b.remove()
    a.install()
    try:
        model(torch.zeros(1, 2))
    finally:
        a.remove()
    assert log == [("a-enter", ""), ("a-enter", "0"), ("a-leave", "0"), ("a-leave", "")]
