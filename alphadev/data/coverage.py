"""Which configured symbols a cost or beta file serves (docs/semantics.md#side-data).

Prices report the symbols they lack; funding, beta (and later volume) files must too,
or a file spelled ``BTC-USDT`` for a config's ``BTCUSDT`` silently costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from alphadev.data.beta import read_beta_file
from alphadev.data.loaders import DataLoader, load_range
from alphadev.errors import DataError

_SHOWN = 10  # symbols quoted in a message before "..."


class Contents(NamedTuple):
    """The symbols a side file holds at any time, and the span of its rows."""

    symbols: list[str]
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def file_contents(loader: DataLoader, symbols: Sequence[str]) -> Contents | None:
    """What a built-in loader's files hold, whatever the period; None for other loaders."""
    tables_of = getattr(loader, "file_tables", None)
    if tables_of is None:
        return None
    held: set[str] = set()
    first: int | None = None
    last: int | None = None
    for table in tables_of(symbols):
        names = np.asarray(table.symbols.categories, dtype=object)
        codes = np.unique(table.symbols.codes)
        held.update(str(s) for s in names[codes[codes >= 0]])
        if table.timestamps.size:
            lo, hi = int(table.timestamps[0]), int(table.timestamps[-1])
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
    return Contents(
        sorted(held),
        None if first is None else pd.Timestamp(first, tz="UTC"),
        None if last is None else pd.Timestamp(last, tz="UTC"),
    )


def check_matches(
    field: str, source: str, held: Sequence[str], configured: Sequence[str],
    row: str = "timestamp, symbol and value",
) -> None:
    """A DataError when the file holds no rows, or rows for none of the configured symbols."""
    if not held:
        raise DataError(
            f"{field} {source} holds no rows (only a header?); give it rows of {row}, or "
            f"leave {field} unset"
        )
    if not set(held) & set(configured):
        raise DataError(
            f"{field} {source} holds symbols {_quote(held)} but none of the configured "
            f"symbols {_quote(configured)}; symbols are matched exactly"
            + spelling_hint(held, configured)
        )


def spelling_hint(held: Sequence[str], configured: Sequence[str]) -> str:
    """Pairs that differ only in case or separators (``btc-usdt`` for ``BTCUSDT``)."""
    by_key: dict[str, str] = {}
    for symbol in held:
        by_key.setdefault(_key(symbol), symbol)
    pairs = [(by_key[_key(c)], c) for c in configured
             if _key(c) in by_key and by_key[_key(c)] != c]
    if not pairs:
        return ""
    shown = ", ".join(f"{h!r} for {c!r}" for h, c in pairs[:3])
    return (f" (the file spells {shown}: write its symbols as the config does, case and "
            "separators included)")


def without_rows(configured: Sequence[str], present: Sequence[str]) -> list[str]:
    """The configured symbols that have no row in ``present``, in configured order."""
    seen = set(present)
    return [s for s in configured if s not in seen]


def _key(symbol: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(symbol).lower())


def _quote(symbols: Sequence[str]) -> str:
    shown = list(symbols)[:_SHOWN]
    more = f" and {len(symbols) - _SHOWN} more" if len(symbols) > _SHOWN else ""
    return f"{shown}{more}"


class Uncovered(NamedTuple):
    """Configured symbols a side file has no data for, and the sentence that says so."""

    symbols: list[str]
    message: str  # empty when every symbol is covered


def funding_coverage(
    loader: DataLoader, symbols: Sequence[str], start: pd.Timestamp, end: pd.Timestamp
) -> Uncovered:
    """Symbols without a funding event in [start, end): they pay and earn no funding."""
    contents = file_contents(loader, symbols)
    if contents is not None:
        check_matches("funding_loader", repr(loader), contents.symbols, symbols)
    rows = load_range(loader, start, end, symbols)
    missing = without_rows(symbols, rows.index.get_level_values(1).unique())
    if not missing:
        return Uncovered([], "")
    if len(missing) == len(symbols) and contents is not None and contents.first is not None:
        where = (f"its events span {contents.first} to {contents.last}, all outside "
                 f"{start} to {end}")
    else:
        where = f"no event between {start} and {end}"
    return Uncovered(missing, (
        f"funding_loader {loader!r} has no funding for {_quote(missing)} ({where}): they "
        "pay and earn no funding" + spelling_hint(contents.symbols if contents else [], missing)
    ))


def volume_coverage(
    loader: DataLoader, symbols: Sequence[str], start: pd.Timestamp, end: pd.Timestamp
) -> Uncovered:
    """Symbols without any volume row (in [start, end) for a loader whose files cannot
    be listed): with impact on, never tradable.  A built-in loader's files are listed,
    not loaded: a year of 5-minute volumes is not read again for every config."""
    contents = file_contents(loader, symbols)
    if contents is not None:
        check_matches("volume_loader", repr(loader), contents.symbols, symbols)
        held = contents.symbols
    else:
        held = list(load_range(loader, start, end, symbols).index.get_level_values(1).unique())
    missing = without_rows(symbols, held)
    if not missing:
        return Uncovered([], "")
    return Uncovered(missing, (
        f"volume_loader {loader!r} has no volume for {_quote(missing)}: they have no size, "
        "so with impact on they are never traded and their "
        "trades count as without volume" + spelling_hint(
            contents.symbols if contents else [], missing)
    ))


def beta_loader_coverage(
    loader: DataLoader, symbols: Sequence[str], end: pd.Timestamp
) -> Uncovered:
    """Symbols without any beta row before ``end``: their beta is 1.0 throughout."""
    contents = file_contents(loader, symbols)
    if contents is not None:
        check_matches("beta_loader", repr(loader), contents.symbols, symbols)
    rows = load_range(loader, pd.Timestamp(0, tz="UTC"), end, symbols)
    present = rows[rows.iloc[:, 0].notna()].index.get_level_values(1).unique()
    missing = without_rows(symbols, present)
    if not missing:
        return Uncovered([], "")
    return Uncovered(missing, (
        f"beta_loader {loader!r} has no beta for {_quote(missing)} before {end}: their "
        "beta is 1.0" + spelling_hint(contents.symbols if contents else [], missing)
    ))


def beta_file_coverage(path: str, symbols: Sequence[str]) -> Uncovered:
    """Symbols without a usable (``ok``, finite) row in the beta file: beta 1.0."""
    parsed = read_beta_file(path)
    check_matches("beta_csv_path", repr(path), parsed.symbols, symbols,
                  row="symbol, beta and status")
    missing = without_rows(symbols, list(parsed.betas))
    if not missing:
        return Uncovered([], "")
    return Uncovered(missing, (
        f"beta_csv_path {path!r} has no usable beta (status ok, a finite number) for "
        f"{_quote(missing)}: their beta is 1.0" + spelling_hint(parsed.symbols, missing)
    ))
