"""Check the data loaders of many configs once, before any of them runs.

A sweep usually shares its loaders: a typo in a column name would otherwise fail every
config the same way, one traceback each, after the pool has started.  ``check_loaders``
looks at each distinct loader once (configs are grouped by the loader's description),
and at each file once (its header or Parquet schema only; no rows are parsed), and
raises one ``DataError`` naming every loader that cannot be read, its file, the
configs that use it and the fix.

Only the built-in file loaders (CSV, Parquet, and composites of them) are checked: a
user's own loader, also a subclass of a file loader that overrides how it reads, is
read by its own code when the config runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from alphadev.data.files import FileStat, stat_file
from alphadev.data.loaders import CompositeDataLoader, DataLoader, _FileLoader
from alphadev.errors import DataError

if TYPE_CHECKING:
    from alphadev.config import BacktestConfig

SHOWN_NAMES = 5


@dataclass
class _Use:
    loader: _FileLoader
    symbols: list[str]
    fields: set[str] = field(default_factory=set)
    configs: list[str] = field(default_factory=list)


def check_loaders(configs: Sequence[BacktestConfig]) -> None:
    """Raise one ``DataError`` when a loader's file is missing or lacks a column it reads.

    Cost: one header read per distinct file, however many configs share it.
    """
    uses: dict[str, _Use] = {}
    described: dict[int, str] = {}  # configs of a grid share their loader objects
    for config in configs:
        for role, loader in _loaders(config):
            key = described.get(id(loader)) or described.setdefault(
                id(loader), json.dumps(loader.to_dict(), sort_keys=True, default=str)
            )
            if loader._per_symbol():  # which files it reads depends on the symbols
                key += "|" + ",".join(sorted(config.symbols))
            use = uses.setdefault(key, _Use(loader, list(config.symbols)))
            use.fields.add(role)
            if not use.configs or use.configs[-1] != config.name:
                use.configs.append(config.name)
    headers: dict[FileStat, list[str] | str] = {}
    problems = [
        f"- {use.loader!r} ({' / '.join(sorted(use.fields))} of {_names(use.configs)}): "
        f"{problem}"
        for use in uses.values()
        if (problem := _problem(use, headers)) is not None
    ]
    if problems:
        raise DataError(
            f"checked the data before running: {len(problems)} loader(s) cannot be read, "
            "so no config using them would run (nothing was run):\n" + "\n".join(problems)
            + "\nFix the path or column name in the sweep's configs (or the file) and run "
            "again."
        )


def _loaders(config: BacktestConfig) -> Iterator[tuple[str, _FileLoader]]:
    roles: list[tuple[str, DataLoader]] = [("price_loader", config.price_loader)]
    roles += [(f"alpha_loaders[{k}]", x) for k, x in enumerate(config.alpha_loaders)]
    for role in ("universe_loader", "funding_loader", "beta_loader"):
        extra = getattr(config, role)
        if extra is not None:
            roles.append((role, extra))
    for role, loader in roles:
        yield from _file_loaders(role, loader)


READ_METHODS = ("load_range", "_tables", "files")
"""A file loader subclass that overrides one of these reads its own way (a derived
column, another file): only its own code can say what it needs."""


def _file_loaders(role: str, loader: DataLoader) -> Iterator[tuple[str, _FileLoader]]:
    if isinstance(loader, _FileLoader):
        if all(getattr(type(loader), m) is getattr(_FileLoader, m) for m in READ_METHODS):
            yield role, loader
    elif isinstance(loader, CompositeDataLoader):
        for k, inner in enumerate(loader.loaders):
            yield from _file_loaders(f"{role}.loaders[{k}]", inner)


def _problem(use: _Use, headers: dict[FileStat, list[str] | str]) -> str | None:
    loader = use.loader
    try:
        paths = loader.files(use.symbols)
        stats = [stat_file(path, repr(loader)) for path in paths]
    except DataError as exc:
        return str(exc).removeprefix(f"{loader._owner}: ").removeprefix(f"{loader!r}: ")
    required = [loader.timestamp_col, loader.file_column]
    if not loader._per_symbol():  # per-symbol files may leave the symbol column out
        required.insert(1, loader.symbol_col)
    for stat in stats:
        if loader.column_names is not None:
            columns: list[str] | str = list(loader.column_names)
        else:
            if stat not in headers:
                headers[stat] = _header(stat.path, loader._format)
            columns = headers[stat]
        if isinstance(columns, str):
            return f"cannot read {stat.path!r}: {columns}"
        missing = [c for c in required if c not in columns]
        if missing:
            values = [c for c in columns if c not in (loader.timestamp_col, loader.symbol_col)]
            fix = (f"set column_name (or source_column) to one of {values}"
                   if missing[0] == loader.file_column
                   else "rename the column in the file or pass "
                   f"{'timestamp_col' if missing[0] == loader.timestamp_col else 'symbol_col'}=")
            return (f"file {stat.path!r} has no column {missing[0]!r} (its columns are "
                    f"{columns}); {fix}")
    return None


def _header(path: str, fmt: str) -> list[str] | str:
    """Column names of a file (surrounding spaces removed), or why it cannot be read."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            names = list(pq.read_schema(path).names)
        else:
            import pandas as pd

            names = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    return [name.strip() for name in names if not name.startswith("__index_level_")]


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN_NAMES])
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return f"{len(names)} config(s): {shown}{more}"

