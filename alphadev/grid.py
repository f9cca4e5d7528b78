"""Parameter grids: the cartesian product of alpha parameters and config settings.

A generated name is ``{base}__{key}={value}__...`` over every grid key, sorted by key.
It depends only on the config's own values, so adding a value to a grid never renames
the configs that already existed (a resumed sweep finds their results again).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alphadev.config import MAX_NAME_LENGTH, BacktestConfig
from alphadev.validation import plain

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+@-]")


def value_token(value: Any) -> str:
    """A short, directory-safe spelling of a grid value."""
    value = plain(value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat().replace(":", "")
    if isinstance(value, (tuple, list)):
        return ",".join(value_token(v) for v in value)
    return _UNSAFE.sub("_", str(value))


def grid_name(base: str, values: Mapping[str, Any]) -> str:
    """The config name for one grid point; long names end in a hash of the full name."""
    if not values:
        return base
    parts = [f"{key}={value_token(values[key])}" for key in sorted(values)]
    name = "__".join([base, *parts])
    if name.endswith("."):
        name = name[:-1] + "_"  # Windows drops a trailing dot
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[: MAX_NAME_LENGTH - 14].rstrip('.')}__{digest}"
    return name


def _grid_values(label: str, key: str, values: Any) -> list[Any]:
    """Any non-empty sequence or array of values (not a string or a mapping)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValueError(
            f"{label}[{key!r}]={values!r} must be a non-empty list (or array) of values"
        )
    listed = [plain(v) for v in values]
    if not listed:
        raise ValueError(f"{label}[{key!r}] is empty; give at least one value")
    return listed


def expand_grid(
    base: BacktestConfig,
    param_grid: Mapping[str, Sequence[Any]] | None,
    setting_grid: Mapping[str, Sequence[Any]] | None = None,
) -> list[BacktestConfig]:
    """One validated config per combination, in grid order."""
    param_grid = dict(param_grid or {})
    setting_grid = dict(setting_grid or {})
    fields = {f.name for f in dataclasses.fields(BacktestConfig)}
    for key in setting_grid:
        if key == "name":
            raise ValueError("setting_grid: 'name' cannot be varied; names are generated")
        if key == "alpha_kwargs":
            raise ValueError("setting_grid: vary alpha parameters through param_grid")
        if key not in fields:
            raise ValueError(
                f"setting_grid: {key!r} is not a BacktestConfig field; "
                f"choose from {sorted(fields - {'name'})}"
            )
    clash = set(param_grid) & set(setting_grid)
    if clash:
        raise ValueError(f"grid keys {sorted(clash)} appear in both param_grid and setting_grid")
    axes = {
        key: _grid_values(label, key, values)
        for label, grid in (("param_grid", param_grid), ("setting_grid", setting_grid))
        for key, values in grid.items()
    }
    keys = list(axes)
    configs = []
    for combo in itertools.product(*(axes[k] for k in keys)):
        point = dict(zip(keys, combo))
        alpha_kwargs = {**base.alpha_kwargs, **{k: point[k] for k in param_grid}}
        settings = {k: point[k] for k in setting_grid}
        configs.append(
            base.replace(name=grid_name(base.name, point), alpha_kwargs=alpha_kwargs, **settings)
        )
    names = [c.name for c in configs]
    folded = [n.casefold() for n in names]  # one folder on macOS and Windows
    seen = Counter(folded)
    dups = sorted({n for n, f in zip(names, folded) if seen[f] > 1})
    if dups:
        raise ValueError(
            f"grid produces duplicate config names {dups[:3]}; grid values must differ "
            "in their spelling (see alphadev.grid.value_token)"
        )
    return configs
