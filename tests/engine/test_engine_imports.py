"""alphadev.engine is arrays and scalars only: it imports nothing above it.

Read from the source (importing ``alphadev.engine`` runs ``alphadev/__init__.py``,
which loads pandas and the rest of the package anyway).
"""

from __future__ import annotations

import ast
from pathlib import Path

import alphadev

ENGINE = Path(alphadev.__file__).parent / "engine"
ALLOWED_ALPHADEV = ("alphadev.engine", "alphadev._threads")
ALLOWED_OTHERS = {"__future__", "typing", "numpy", "numba"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            module = node.module or ""
            if module == "alphadev":
                names += [f"alphadev.{alias.name}" for alias in node.names]
            else:
                names.append(module)
    return names


def test_engine_modules_import_only_the_engine_threads_numpy_and_numba():
    modules = sorted(ENGINE.glob("*.py"))
    assert {p.name for p in modules} >= {"kernel.py", "ic.py", "simulate.py"}
    for path in modules:
        for name in _imports(path):
            if name == "alphadev" or name.startswith("alphadev."):
                ok = any(name == a or name.startswith(a + ".") for a in ALLOWED_ALPHADEV)
            else:
                ok = name.split(".")[0] in ALLOWED_OTHERS
            assert ok, f"alphadev/engine/{path.name} imports {name}"
