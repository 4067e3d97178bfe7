"""The import directions of docs/architecture.md, held by reading every module's imports
(issue 13). Data flows one way: counting knows no hardware, energy no torch, models no
counting beyond the neuron protocol, analysis renders what it is given."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {"counting": "snnsim/counting", "energy": "snnsim/energy", "io": "snnsim/io", "pipeline": "snnsim/pipeline",
         "tracking": "snnsim/tracking", "loihi": "snnsim/loihi", "models": "models", "analysis": "analysis",
         "datasets": "snnsim/datasets"}
PACKAGES = {"snnsim.counting": "counting", "snnsim.energy": "energy", "snnsim.io": "io",
            "snnsim.pipeline": "pipeline", "snnsim.tracking": "tracking", "snnsim.loihi": "loihi",
            "snnsim.models": "models", "snnsim.analysis": "analysis", "snnsim.datasets": "datasets",
            "snnsim.cli": "cli", "torch": "torch"}
# what each room may import besides itself (and the standard / data libraries)
ALLOWED = {
    "counting": {"torch"},
    "energy": set(),
    "io": set(),
    "pipeline": {"energy", "counting", "torch"},
    "models": {"torch", "counting"},            # counting: the neuron protocol (SpikeFormat)
    # a job renders its report through analysis (the one report writer) and writes through io
    "tracking": {"torch", "models", "counting", "energy", "pipeline", "io", "analysis"},
    "loihi": {"torch", "models", "counting", "energy", "pipeline", "io", "tracking", "analysis"},
    "analysis": {"io", "pipeline", "energy"},
    # a dataset run drives the single-run code (tracking, pipeline) on workers and renders through analysis
    "datasets": {"torch", "models", "counting", "energy", "pipeline", "io", "tracking", "analysis"},
}
# known breaks, each with its reason; the test fails when one is fixed (so the list shrinks)
KNOWN: dict[tuple[str, str], str] = {}


def imports_of(path: Path, room: str) -> set[str]:
    """The rooms (and torch) a module imports, absolute or relative."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names = [f"snnsim.{room}" + (f".{node.module}" if node.module else "")]
            elif node.level >= 2:
                names = ["snnsim" + (f".{node.module}" if node.module else "")]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            for pkg, target in PACKAGES.items():
                if (name == pkg or name.startswith(pkg + ".")) and target != room:
                    found.add(target)
    return found


def _modules():
    for room, folder in ROOMS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield room, path


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_imports_only_downstream(room):
    bad = []
    for r, path in _modules():
        if r != room:
            continue
        rel = str(path.relative_to(ROOT))
        for target in sorted(imports_of(path, room) - ALLOWED[room]):
            if (rel, target) not in KNOWN:
                bad.append(f"{rel} imports {target}")
    assert not bad, "; ".join(bad)


def test_known_breaks_are_still_there():
    """A known break that was fixed must leave the list (it would hide a new one)."""
    for (rel, target), why in KNOWN.items():
        room = next(r for r, folder in ROOMS.items() if rel.startswith(folder + "/"))
        assert target in imports_of(ROOT / rel, room), f"{rel} no longer imports {target}: drop it from KNOWN"


def test_the_checker_sees_a_wrong_direction(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from snnsim.tracking.boxes import iou_matrix\nimport torch\nfrom ..energy import estimate\n")
    assert imports_of(bad, "counting") == {"tracking", "torch", "energy"}


def test_no_two_rooms_import_each_other():
    """A loop between rooms (a -> b and b -> a) breaks the one-way flow even when each
    direction alone is allowed."""
    edges = set()
    for room, path in _modules():
        edges |= {(room, target) for target in imports_of(path, room) if target in ROOMS}
    loops = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not loops, "; ".join(loops)


# one copy of each job (issue 13): the module stack of the operator tracer and the emulator's
# run loop each live in one place; a second copy would be a second place for them to disagree
ONE_PLACE = {
    "nn.Module.__call__ =": "snnsim/counting/module_calls.py",
    "register_forward_pre_hook(": "snnsim/counting/module_calls.py",
    "for t in range(1, num_steps + 1):": "snnsim/loihi/emulator.py",
}


@pytest.mark.parametrize("needle", sorted(ONE_PLACE))
def test_one_place_for_each_job(needle):
    where = sorted(str(p.relative_to(ROOT)) for _, p in _modules() if needle in p.read_text())
    assert where == [ONE_PLACE[needle]], f"{needle!r} appears in {where}"
