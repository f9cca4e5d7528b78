"""Stable, JSON-safe descriptions of parameter values (for to_dict and fingerprints)."""

from __future__ import annotations

import datetime as dt
import enum
import math
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from alphadev.identity import identity_name, naming_identity


def qualified_name(obj: Any) -> str:
    """``module:QualName`` of a class or function.

    Inside ``identity.identity_names()`` (fingerprints, panel keys) user code is named
    ``QualName@code-digest`` instead, which does not depend on the module name the
    user's file was imported under.
    """
    if naming_identity():
        return identity_name(obj)
    return f"{obj.__module__}:{obj.__qualname__}"


def jsonable(value: Any, field: str) -> Any:
    """Convert ``value`` to plain JSON types, identically in every process.

    Raises TypeError naming ``field`` for values with no stable description (such as
    objects whose repr contains a memory address).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta)):
        return str(pd.Timedelta(value))
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return f"{qualified_name(type(value))}.{value.name}"
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{field}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v, field) for v in value), key=repr)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), field)
    if isinstance(value, type) or callable(value):
        if "<locals>" in getattr(value, "__qualname__", "<locals>") or getattr(
            value, "__name__", ""
        ) == "<lambda>":
            raise TypeError(
                f"{field}={value!r} is a lambda or local function; "
                "define it at module level so it can be described and pickled"
            )
        return qualified_name(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, (pd.DataFrame, pd.Series)):
        return jsonable(to_dict(), field)
    text = repr(value)
    if " at 0x" in text:
        raise TypeError(
            f"{field}={text} has no stable description; use plain values "
            "(numbers, strings, lists, dicts, dates) or give the object a to_dict() method"
        )
    return text
