"""Load a sweep spec: the configs of one sweep, named by a file path or an import path.

``sweeps/momentum.py`` (object ``sweep``, ``configs`` or ``backtester`` in that file,
or ``sweeps/momentum.py:name``) or ``mypkg.sweeps:grid`` (an import path: ``mypkg`` must
be importable, e.g. ``PYTHONPATH=.`` in the folder holding it, or installed).  The
object is a Backtester, a list of BacktestConfig, or a zero-argument callable returning
one of them.

A spec file is imported as module ``alphadev_spec_<stem>`` and remembered in
``alphadev.spec_files.SPEC_FILES``, so worker processes started with ``spawn`` can
import it again before they unpickle configs whose alpha class lives in it.

The spec file's folder is put at the front of ``sys.path`` (as Python does for a
script), so the spec can import modules next to it (``from helpers import signal``).
It stays there for the rest of the process: code that imports such a module later
(inside ``compute``, or when a spawned worker unpickles a config whose alpha class
lives in it) must find it too.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import traceback
from pathlib import Path

from alphadev.backtester import Backtester
from alphadev.config import BacktestConfig
from alphadev.errors import DataError, SpecError
from alphadev.identity import code_digest
from alphadev.preflight import check_loaders
from alphadev.search import SearchSpec
from alphadev.spec_files import exec_spec_file, register
from alphadev.synthetic import data_are_synthetic

DEFAULT_ATTRIBUTES = ("sweep", "configs", "backtester")
_LOADED: dict[tuple, list[BacktestConfig]] = {}
_NOTICES: dict[tuple, tuple[str | None, bool]] = {}


def load_spec(spec: str) -> list[BacktestConfig]:
    """The configs a spec defines (cached per process until the file changes).

    Their data loaders are checked once here (``alphadev.preflight``): a missing file
    or column is one ``SpecError`` naming the loader and its configs.
    """
    return _load(spec)[0]


def spec_notice(spec: str) -> str | None:
    """The notice of a spec whose object is a Backtester (``Backtester(notice=...)``)."""
    return _NOTICES[_load(spec)[1]][0]


def spec_is_synthetic(spec: str) -> bool:
    """Whether a spec's data are synthetic (``Backtester(synthetic=True)`` or prices
    written by ``alphadev.synthetic``)."""
    configs, key = _load(spec)
    return _NOTICES[key][1] or data_are_synthetic(configs)


def _load(spec: str) -> tuple[list[BacktestConfig], tuple]:
    target, attribute = _split(spec)
    is_file = target.endswith(".py") or os.sep in target or "/" in target
    key: tuple = (spec, os.getcwd())
    if is_file:
        path = Path(target)
        if not path.is_file():
            raise SpecError(
                f"spec file {target!r} does not exist (working directory {os.getcwd()!r}); "
                "pass a path to a .py file or an import path such as mypkg.sweeps:grid"
            )
        st = path.stat()
        key += (st.st_size, st.st_mtime_ns)
    if key in _LOADED:
        return _LOADED[key], key
    module = _import_file(Path(target), spec) if is_file else _import_module(target, spec)
    configs, notice = _configs_from(module, attribute, spec)
    try:
        check_loaders(configs)  # once per sweep, not one traceback per config
    except DataError as exc:
        raise SpecError(f"spec {spec!r}: {exc}") from None
    # Read the alphas' code now, while it is the code just imported (alphadev.identity).
    for alpha_class in {id(c.alpha_class): c.alpha_class for c in configs}.values():
        code_digest(alpha_class)
    _LOADED[key], _NOTICES[key] = configs, notice
    return configs, key


SEARCH_ATTRIBUTE = "search"
_SEARCHES: dict[tuple, SearchSpec] = {}


def load_search(spec: str) -> SearchSpec:
    """The SearchSpec a spec file defines (object ``search``, or ``file.py:name``),
    cached per process until the file changes; its data loaders are checked once."""
    target, attribute = _split(spec)
    is_file = target.endswith(".py") or os.sep in target or "/" in target
    key: tuple = ("search", spec, os.getcwd())
    if is_file:
        path = Path(target)
        if not path.is_file():
            raise SpecError(
                f"search spec file {target!r} does not exist (working directory "
                f"{os.getcwd()!r}); pass a path to a .py file that defines "
                f"{SEARCH_ATTRIBUTE} = SearchSpec(...)"
            )
        st = path.stat()
        key += (st.st_size, st.st_mtime_ns)
    if key in _SEARCHES:
        return _SEARCHES[key]
    module = _import_file(Path(target), spec) if is_file else _import_module(target, spec)
    name = attribute or SEARCH_ATTRIBUTE
    found = getattr(module, name, None)
    if callable(found) and not isinstance(found, SearchSpec):
        try:
            found = found()
        except Exception as exc:
            raise SpecError(f"spec {spec!r}: calling {name!r} failed:\n"
                            f"{traceback.format_exc()}") from exc
    if not isinstance(found, SearchSpec):
        raise SpecError(
            f"spec {spec!r} defines no search: define {name} = SearchSpec(base, space, ...) "
            f"(alphadev.search), got {type(found).__name__}"
        )
    try:
        check_loaders([found.base])
    except DataError as exc:
        raise SpecError(f"spec {spec!r}: {exc}") from None
    code_digest(found.base.alpha_class)
    _SEARCHES[key] = found
    return found


def find_config(spec: str, name: str) -> BacktestConfig:
    return _indexed(spec, name)[1]


def config_position(spec: str, name: str) -> int:
    """Where config ``name`` is in the spec's list (a batch runs its configs in order)."""
    return _indexed(spec, name)[0]


_INDEXES: dict[str, tuple[list[BacktestConfig], dict[str, tuple[int, BacktestConfig]]]] = {}


def _indexed(spec: str, name: str) -> tuple[int, BacktestConfig]:
    """A config's position and the config, found by name through an index rebuilt when
    the spec's configs change: a Luigi task looks its config up in every completeness
    check, and a scan would cost O(configs) each time."""
    configs = load_spec(spec)
    cached = _INDEXES.get(spec)
    if cached is None or cached[0] is not configs:
        cached = (configs, {c.name: (k, c) for k, c in enumerate(configs)})
        _INDEXES[spec] = cached
    try:
        return cached[1][name]
    except KeyError:
        raise SpecError(f"spec {spec!r} defines no config named {name!r}") from None


def _split(spec: str) -> tuple[str, str | None]:
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"spec={spec!r} must name a .py file or an import path module:attr")
    head, sep, tail = spec.rpartition(":")
    # "C:\\path\\file.py" has a drive colon; an attribute is a Python identifier.
    if sep and tail.isidentifier() and head and not head.endswith(("\\", "/")):
        return head, tail
    return spec, None


def _module_name(path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem)
    return f"alphadev_spec_{stem}"


def _import_file(path: Path, spec: str):
    module_name = _module_name(path)
    register(module_name, path, spec)
    return exec_spec_file(module_name, path, spec)


def _import_module(target: str, spec: str):
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise SpecError(
                f"spec {spec!r}: no module named {exc.name!r} (not a file either). An import "
                "path needs its package importable from where luigi or python runs: start "
                "it from the folder that holds the package with PYTHONPATH=. (e.g. "
                f"PYTHONPATH=. luigi --module pipelines Sweep --spec {spec}), or install the "
                "package (pip install -e .); or pass a path to a .py file instead"
            ) from exc
        raise SpecError(f"spec {spec!r} failed to import:\n{traceback.format_exc()}") from exc
    except Exception as exc:
        raise SpecError(f"spec {spec!r} failed to import:\n{traceback.format_exc()}") from exc


def _configs_from(
    module, attribute: str | None, spec: str
) -> tuple[list[BacktestConfig], tuple[str | None, bool]]:
    """The spec object's configs, notice and synthetic flag (None and False unless it is
    a Backtester)."""
    names = (attribute,) if attribute else DEFAULT_ATTRIBUTES
    obj = next((getattr(module, n) for n in names if hasattr(module, n)), None)
    if obj is None:
        raise SpecError(
            f"spec {spec!r} defines no configs: define {' or '.join(names)} "
            "(a Backtester, a list of BacktestConfig, or a function returning one)"
        )
    if callable(obj) and not isinstance(obj, (Backtester, list, tuple)):
        try:
            obj = obj()
        except Exception as exc:
            raise SpecError(
                f"spec {spec!r}: calling {getattr(obj, '__name__', obj)!r} failed:\n"
                f"{traceback.format_exc()}"
            ) from exc
    configs = obj.configs if isinstance(obj, Backtester) else obj
    notice = (obj.notice, obj.synthetic) if isinstance(obj, Backtester) else (None, False)
    if not isinstance(configs, (list, tuple)) or not all(
        isinstance(c, BacktestConfig) for c in configs
    ):
        raise SpecError(
            f"spec {spec!r}: expected a Backtester or a list of BacktestConfig, "
            f"got {type(configs).__name__}"
        )
    if not configs:
        raise SpecError(f"spec {spec!r} defines no configs (the list is empty)")
    by_folder: dict[str, list[str]] = {}
    for config in configs:
        by_folder.setdefault(config.name.casefold(), []).append(config.name)
    clashes = [names for names in by_folder.values() if len(names) > 1]
    if clashes:
        shown = "; ".join(" and ".join(repr(n) for n in names) for names in clashes[:3])
        raise SpecError(
            f"spec {spec!r} has config names that are equal ignoring case: {shown}. "
            "Each name is a results folder, and macOS and Windows treat names that differ "
            "only in case as one folder; rename the configs so no two names match "
            "case-insensitively"
        )
    return list(configs), notice
