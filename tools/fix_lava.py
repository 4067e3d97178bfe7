"""Make lava-nc 0.10.0 importable on Python 3.11 (idempotent).

lava-nc 0.10.0 declares Python < 3.11. Its only incompatibility is in
lava/magma/compiler/var_model.py, where dataclass fields are written
`x: ByteEncoder = ByteEncoder()`: Python 3.11 rejects mutable (unhashable)
dataclass defaults, so importing the compiler fails. The fix replaces each
such default with `field(default_factory=ByteEncoder)`, as ../shared/specs/loihi.md
describes. Running it twice changes nothing.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import sys


def var_model_path() -> pathlib.Path:
    spec = importlib.util.find_spec("lava.magma")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("fix_lava: lava-nc is not installed in this environment")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "compiler" / "var_model.py"


def patch(text: str) -> str:
    text = re.sub(r"(\w+): ByteEncoder = ByteEncoder\(\)",
                  r"\1: ByteEncoder = field(default_factory=ByteEncoder)", text)
    if "from dataclasses import dataclass, InitVar\n" in text:
        text = text.replace("from dataclasses import dataclass, InitVar\n",
                            "from dataclasses import dataclass, InitVar, field\n", 1)
    return text


def main() -> None:
    path = var_model_path()
    old = path.read_text()
    new = patch(old)
    if new != old:
        path.write_text(new)
        print(f"fix_lava: patched {path}")


if __name__ == "__main__":
    main()
