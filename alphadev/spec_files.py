"""The spec files imported in this process, so a spawned worker can import them again.

A spec file is imported as a module of its own (``alphadev_spec_<stem>``).  Configs
whose alpha class lives in one can only be unpickled where that module exists, so the
pool hands this registry to workers started with ``spawn`` before any config.  A leaf
module: the pool reads it without importing the spec loader (which imports the
Backtester, which imports the pool).
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from alphadev.errors import SpecError

SPEC_FILES: dict[str, str] = {}  # module name -> resolved file path


def register(module_name: str, path: Path, spec: str) -> None:
    """Remember ``path`` as ``module_name``; two files under one name are an error."""
    resolved = str(path.resolve())
    known = SPEC_FILES.get(module_name)
    if known is not None and known != resolved:
        raise SpecError(
            f"spec {spec!r}: another spec file with the same name ({known}) is already "
            "loaded in this process; rename one of them"
        )
    SPEC_FILES[module_name] = resolved


def exec_spec_file(module_name: str, path: Path, spec: str) -> ModuleType:
    """Import ``path`` as ``module_name``, its folder importable as for a script."""
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # kept afterwards: compute() and workers import from it too
        sys.path.insert(0, folder)
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"spec {spec!r}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        SPEC_FILES.pop(module_name, None)  # a spawned worker must not import it again
        raise SpecError(
            f"spec {spec!r} failed while importing {path}:\n{traceback.format_exc()}"
        ) from exc
    return module


def import_spec_files(files: dict[str, str]) -> None:
    """Import spec files by their module names (in a freshly spawned process)."""
    for module_name, path in files.items():
        if module_name not in sys.modules:
            exec_spec_file(module_name, Path(path), path)
