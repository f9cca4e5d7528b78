"""BacktestConfig: every setting of one backtest, validated when it is built."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import inspect
import json
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pandas.tseries.frequencies import to_offset

from alphadev._display import html_table
from alphadev._jsonable import jsonable, qualified_name
from alphadev.alpha import Alpha
from alphadev.data.files import stat_file
from alphadev.data.loaders import DataLoader, day_bounds
from alphadev.identity import code_digest, identity_names
from alphadev.validation import check_scalar
from alphadev.version import RESULTS_VERSION, __version__

_NAME_CHARS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.,=+@-]*$")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}
MAX_NAME_LENGTH = 200
# Above it one bar's move of 1 % ruins the book; numbers like 1e308 overflow.
MAX_GROSS_EXPOSURE = 100.0
DAY_NS = 86_400 * 10**9


_EXCHANGE_SPELLING = re.compile(r"^\s*(\d+)\s*(m|T|H)\s*$")
_PANDAS_UNIT = {"m": "min", "T": "min", "H": "h"}


def pandas_frequency(frequency: str) -> str:
    """The pandas spelling of an exchange-style bar length: '15m' -> '15min', '4H' -> '4h'.

    Only spellings pandas rejects are translated, so a frequency that worked before
    keeps its description (and the fingerprints of its saved results).
    """
    match = _EXCHANGE_SPELLING.match(frequency)
    if match is None:
        return frequency
    return f"{match.group(1)}{_PANDAS_UNIT[match.group(2)]}"


def frequency_nanos(frequency: str) -> int:
    """Bar length in nanoseconds; only fixed frequencies ('1h', '15min', '1D') qualify."""
    return _frequency_nanos(frequency) if isinstance(frequency, str) else _offset_nanos(frequency)


@functools.lru_cache(maxsize=256)
def _frequency_nanos(frequency: str) -> int:
    """Cached: every config of a grid validates the same few spellings."""
    return _offset_nanos(frequency)


def _offset_nanos(frequency: Any) -> int:
    try:
        nanos = to_offset(frequency).nanos
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"frequency={frequency!r} is not a fixed bar length ({exc}); write a bar "
            "length such as '15min', '1h', '4h' or '1D' (the exchange spellings '15m', "
            "'1H' and '4H' are read as '15min', '1h' and '4h')"
        ) from None
    if nanos <= 0:
        raise ValueError(f"frequency={frequency!r} must be a positive bar length such as '1h'")
    return int(nanos)


@functools.lru_cache(maxsize=256)
def _signature(alpha_class: type) -> inspect.Signature:
    """Cached per class: building a signature costs more than the rest of a config's
    validation, and a grid has thousands of configs of one class."""
    return inspect.signature(alpha_class)


@functools.lru_cache(maxsize=256)
def _bars_since_earliest(start: dt.date, bar_ns: int) -> int:
    since = pd.Timestamp(start) - pd.Timestamp(EARLIEST_DELAYED)
    return max(since.value // bar_ns, 0)


@functools.lru_cache(maxsize=256)
def _label_bounds(start: dt.date, end: dt.date, bar_ns: int) -> tuple[pd.Timestamp, pd.Timestamp,
                                                                      pd.Timestamp]:
    """The period's UTC day bounds and its first bar label (cached per grid period)."""
    first, stop = day_bounds(start, end)
    return first, stop, pd.Timestamp(-(-first.value // bar_ns) * bar_ns, tz="UTC")


def lag_text(lag: Any) -> str:
    """An ``execution_lag`` as the short text of tables and names: '5min', '90s', '0s'."""
    parsed = pd.Timedelta(lag)
    if parsed == pd.Timedelta(0):
        return "0s"
    text = str(to_offset(parsed).freqstr)
    return text if text[0].isdigit() else f"1{text}"


def check_name(name: Any) -> None:
    """A name is used as one directory name on Linux, macOS and Windows."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name={name!r} is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME_CHARS.match(name) or name.endswith("."):
        raise ValueError(
            f"name={name!r} is not a safe directory name: use letters, digits and _ . , = + @ -, "
            "starting with a letter, digit or underscore and not ending with '.'"
        )
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        raise ValueError(f"name={name!r} is a reserved file name on Windows; choose another")


def _to_date(field: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return pd.Timestamp(value).tz_convert("UTC").date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise TypeError(f"{field}={value!r} must be a date (datetime.date or 'YYYY-MM-DD')")


EARLIEST_DELAYED = "1900-01-01"  # no execution_delay reaches before it
# docs/semantics.md#market-impact: the book's size and the square-root impact law.
DEFAULT_CAPITAL = 1_000_000.0
DEFAULT_IMPACT_WINDOW = pd.Timedelta(days=20)
DEFAULT_MAX_PARTICIPATION = 0.1
NO_LAG = pd.Timedelta(0)  # docs/semantics.md#execution-lag: trade at the deciding close


@dataclasses.dataclass(frozen=True, eq=True)
class BacktestConfig:
    """One backtest: the alpha, its data, the period and the portfolio settings."""

    name: str
    alpha_class: type
    alpha_kwargs: dict
    start_date: dt.date
    end_date: dt.date
    symbols: Sequence[str]
    price_loader: DataLoader
    alpha_loaders: Sequence[DataLoader]
    beta_csv_path: str | None = None  # no betas: every symbol has beta 1.0
    universe_loader: DataLoader | None = None
    quantile: tuple[float, float] = (0.2, 0.2)
    gross_exposure: float = 1.0
    frequency: str = "1h"
    trading_fee_rate: float = 4.5e-4
    mode: str = "batch"
    chunk_days: int | None = None
    max_fill_bars: int = 3
    execution_delay: int = 0
    execution_lag: Any = NO_LAG
    slippage_rate: float | Mapping[str, float] = 0.0
    funding_loader: DataLoader | None = None
    beta_loader: DataLoader | None = None
    volume_loader: DataLoader | None = None
    capital: float = DEFAULT_CAPITAL
    impact_coefficient: float = 0.0
    impact_window: Any = DEFAULT_IMPACT_WINDOW
    max_participation: float = DEFAULT_MAX_PARTICIPATION

    def __hash__(self) -> int:
        return hash(self.name)

    def __post_init__(self) -> None:
        try:
            self._validate()
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"BacktestConfig {self.name!r}: {exc}") from None

    def _set(self, field: str, value: Any) -> None:
        object.__setattr__(self, field, value)

    def _validate(self) -> None:
        check_name(self.name)
        if not (isinstance(self.alpha_class, type) and issubclass(self.alpha_class, Alpha)):
            raise TypeError(
                f"alpha_class={self.alpha_class!r} must be a subclass of alphadev.alpha.Alpha"
            )
        if inspect.isabstract(self.alpha_class):
            raise TypeError(
                f"alpha_class={self.alpha_class.__name__} is abstract; implement "
                f"{sorted(self.alpha_class.__abstractmethods__)}"
            )
        if self.alpha_kwargs is None:
            self._set("alpha_kwargs", {})
        if not isinstance(self.alpha_kwargs, dict):
            raise TypeError(f"alpha_kwargs={self.alpha_kwargs!r} must be a dict")
        try:
            _signature(self.alpha_class).bind(**self.alpha_kwargs)
        except TypeError as exc:
            raise TypeError(
                f"alpha_kwargs={self.alpha_kwargs!r} are not accepted by "
                f"{self.alpha_class.__name__}: {exc}"
            ) from None
        self._set("alpha_kwargs", dict(self.alpha_kwargs))

        self._set("start_date", _to_date("start_date", self.start_date))
        self._set("end_date", _to_date("end_date", self.end_date))
        if self.start_date > self.end_date:
            raise ValueError(
                f"start_date={self.start_date} is after end_date={self.end_date}; swap them"
            )

        if isinstance(self.symbols, str) or not isinstance(self.symbols, Sequence):
            raise TypeError(f"symbols={self.symbols!r} must be a list of symbol names")
        if not self.symbols:
            raise ValueError("symbols=[] is empty; list at least one symbol")
        bad = [s for s in self.symbols if not isinstance(s, str) or not s]
        if bad:
            raise TypeError(f"symbols contains {bad[0]!r}; every symbol must be a non-empty str")
        padded = [s for s in self.symbols if s != s.strip()]
        if padded:
            raise ValueError(
                f"symbols contains {padded[0]!r} with surrounding whitespace; write "
                f"{padded[0].strip()!r} (symbols in data files are read without it)"
            )
        dups = sorted({s for s in self.symbols if list(self.symbols).count(s) > 1})
        if dups:
            raise ValueError(f"symbols has duplicates {dups}; list each symbol once")
        self._set("symbols", list(self.symbols))

        if not isinstance(self.price_loader, DataLoader):
            raise TypeError(
                f"price_loader={self.price_loader!r} must be a DataLoader (e.g. CSVDataLoader)"
            )
        if "close" not in self.price_loader.get_columns():
            raise ValueError(
                f"price_loader={self.price_loader!r} must provide a 'close' column "
                "(CSVDataLoader(..., column_name='close'))"
            )
        if isinstance(self.alpha_loaders, DataLoader):
            self._set("alpha_loaders", [self.alpha_loaders])
        if self.alpha_loaders is None:
            self._set("alpha_loaders", [])
        if not isinstance(self.alpha_loaders, Sequence) or not all(
            isinstance(x, DataLoader) for x in self.alpha_loaders
        ):
            raise TypeError(f"alpha_loaders={self.alpha_loaders!r} must be a list of DataLoaders")
        self._set("alpha_loaders", list(self.alpha_loaders))
        if self.universe_loader is not None:
            if not isinstance(self.universe_loader, DataLoader):
                raise TypeError(f"universe_loader={self.universe_loader!r} must be a DataLoader")
            if "in_universe" not in self.universe_loader.get_columns():
                raise ValueError(
                    f"universe_loader={self.universe_loader!r} must provide an 'in_universe' "
                    "column (CSVDataLoader(..., column_name='in_universe'))"
                )
        if self.beta_csv_path is not None:
            if not isinstance(self.beta_csv_path, (str, bytes)) and not hasattr(
                self.beta_csv_path, "__fspath__"
            ):
                raise TypeError(f"beta_csv_path={self.beta_csv_path!r} must be a path or None")
            self._set("beta_csv_path", str(self.beta_csv_path))

        self._validate_portfolio()
        self._validate_mode()
        self._validate_costs()
        self._validate_impact()

    def _validate_portfolio(self) -> None:
        q = self.quantile
        if isinstance(q, (str, bytes)) or not isinstance(q, Sequence) or len(q) != 2:
            raise ValueError(
                f"quantile={q!r} must be a pair (open_quantile, close_quantile), e.g. (0.2, 0.2)"
            )
        open_q, close_q = (
            check_scalar(
                f"quantile={q!r}: {label}", value, low=0.0, high=0.5, low_open=True,
                hint="a pair (open_quantile, close_quantile) such as (0.2, 0.2)",
            )
            for label, value in zip(("open_quantile", "close_quantile"), q)
        )
        if open_q > close_q:
            raise ValueError(
                f"quantile={q!r}: open_quantile {open_q} must be <= close_quantile {close_q} "
                "(positions would be closed as soon as they are opened)"
            )
        self._set("quantile", (open_q, close_q))
        self._set(
            "gross_exposure",
            check_scalar(
                "gross_exposure", self.gross_exposure, low=0.0, high=MAX_GROSS_EXPOSURE,
                low_open=True,
                hint="the book's long plus short notional as a multiple of equity, e.g. 1.0",
            ),
        )
        self._set(
            "trading_fee_rate",
            check_scalar("trading_fee_rate", self.trading_fee_rate, low=0.0, high=1.0,
                         hint="a fraction of traded notional: 4.5e-4 is 4.5 bps"),
        )

    def _validate_mode(self) -> None:
        if not isinstance(self.frequency, str):
            raise TypeError(f"frequency={self.frequency!r} must be a string such as '1h'")
        self._set("frequency", pandas_frequency(self.frequency))
        bar_ns = frequency_nanos(self.frequency)
        start, end, first_label = _label_bounds(self.start_date, self.end_date, bar_ns)
        if first_label >= end:
            raise ValueError(
                f"frequency={self.frequency!r}: no bar label lies between start_date "
                f"{self.start_date} and end_date {self.end_date} (labels are multiples of "
                f"{self.frequency!r} from 1970-01-01 UTC; the first one from start_date is "
                f"{first_label:%Y-%m-%d %H:%M}); use a longer period or a shorter frequency"
            )
        if self.mode not in ("batch", "streaming"):
            raise ValueError(f"mode={self.mode!r} must be 'batch' or 'streaming'")
        if self.chunk_days is not None:
            if self.mode == "batch":
                raise ValueError(
                    f"chunk_days={self.chunk_days!r} with mode='batch': a batch run takes the "
                    "whole period at once and would ignore it; set chunk_days=None, or "
                    "mode='streaming' to run chunk_days at a time"
                )
            chunk_days = check_scalar("chunk_days", self.chunk_days, integer=True, low=1)
            self._set("chunk_days", chunk_days)
            if (self.chunk_days * DAY_NS) % bar_ns:
                raise ValueError(
                    f"chunk_days={self.chunk_days} is not a whole number of "
                    f"{self.frequency!r} bars; choose a multiple of the bar length"
                )
        elif self.mode == "streaming":
            raise ValueError("mode='streaming' needs chunk_days (e.g. chunk_days=30)")
        self._set(
            "max_fill_bars",
            check_scalar("max_fill_bars", self.max_fill_bars, integer=True, low=0,
                         high=self._bars_since_earliest(),
                         hint="0 = no filling; the filled history cannot reach before "
                              f"{EARLIEST_DELAYED}"),
        )

    def _bars_since_earliest(self) -> int:
        """Bars from EARLIEST_DELAYED to start_date: the bound of the history loaded before
        start_date, which grows with the fill and the delay (a huge one would otherwise
        overflow pandas' timestamps deep inside the panel)."""
        return _bars_since_earliest(self.start_date, self.bar_nanos)

    def _validate_costs(self) -> None:
        """The execution and cost fields (docs/semantics.md#execution-and-costs)."""
        self._set(
            "execution_delay",
            check_scalar("execution_delay", self.execution_delay, integer=True, low=0,
                         high=self._bars_since_earliest(),
                         hint="bars between the signal and the trade; 0 trades at the "
                              "close that defines the signal; the delayed alpha cannot "
                              f"lie before {EARLIEST_DELAYED}"),
        )
        self._set("execution_lag", self._checked_lag())
        slip = self.slippage_rate
        hint = "a fraction of traded notional: 2e-4 is 2 bps"
        if isinstance(slip, Mapping):
            rates = {}
            for symbol, rate in slip.items():
                if not isinstance(symbol, str):
                    raise TypeError(
                        f"slippage_rate has key {symbol!r}; the keys must be symbol names"
                    )
                rates[symbol] = check_scalar(
                    f"slippage_rate[{symbol!r}]", rate, low=0.0, high=1.0, hint=hint
                )
            missing = [s for s in self.symbols if s not in rates]
            if missing:
                raise ValueError(
                    f"slippage_rate has no rate for symbol {missing[0]!r} ({len(missing)} "
                    f"symbol(s) missing: {missing[:5]}); give a rate for every symbol, or "
                    "one number for all"
                )
            # The whole table is kept (in name order), so a copy with more symbols
            # (``replace``, a grid over ``symbols``) still finds their rates; only the
            # configured symbols enter the description (``_cost_fields``).
            self._set("slippage_rate", dict(sorted(rates.items())))
        else:
            self._set("slippage_rate", check_scalar(
                "slippage_rate", slip, low=0.0, high=1.0,
                hint=f"{hint}, or a mapping symbol -> rate",
            ))
        for field, what in (("funding_loader", "funding rate"), ("beta_loader", "beta")):
            loader = getattr(self, field)
            if loader is not None and not isinstance(loader, DataLoader):
                raise TypeError(
                    f"{field}={loader!r} must be a DataLoader (e.g. CSVDataLoader(path, "
                    f"column_name=...)) or None"
                )
            if loader is not None and len(loader.get_columns()) != 1:
                raise ValueError(
                    f"{field}={loader!r} must provide exactly one column (the {what}), "
                    f"it provides {loader.get_columns()}"
                )
        if self.beta_loader is not None and self.beta_csv_path is not None:
            raise ValueError(
                f"both beta_loader={self.beta_loader!r} and beta_csv_path="
                f"{self.beta_csv_path!r} are given; keep one (beta_loader for betas that "
                "change over time, beta_csv_path for one beta per symbol)"
            )

    def _checked_lag(self) -> pd.Timedelta:
        """``execution_lag`` as a Timedelta in [0, one bar) (docs/semantics.md#execution-lag)."""
        lag = self.execution_lag
        hint = (f"a duration shorter than one {self.frequency!r} bar, such as '5min' or "
                "pandas.Timedelta(minutes=5); 0 trades at the close that decides the book")
        if isinstance(lag, bool):
            raise ValueError(f"execution_lag={lag!r} must be {hint}")
        if isinstance(lag, numbers.Real) and lag == 0:  # bool is refused above
            return NO_LAG
        try:
            if not isinstance(lag, (str, dt.timedelta, pd.Timedelta)):
                raise ValueError
            parsed = pd.Timedelta(lag)
        except (ValueError, TypeError):
            raise ValueError(f"execution_lag={lag!r} must be {hint}") from None
        if pd.isna(parsed) or parsed < NO_LAG or parsed.value >= self.bar_nanos:
            raise ValueError(
                f"execution_lag={lag!r} must be {hint}; whole bars of delay are "
                "execution_delay"
            )
        return parsed

    def _validate_impact(self) -> None:
        """The size of the book and its market impact (docs/semantics.md#market-impact)."""
        loader = self.volume_loader
        if loader is not None and not isinstance(loader, DataLoader):
            raise TypeError(
                f"volume_loader={loader!r} must be a DataLoader of one column (the traded "
                "volume in quote currency), e.g. CSVDataLoader(path, column_name='quote_volume')"
            )
        if loader is not None and len(loader.get_columns()) != 1:
            raise ValueError(
                f"volume_loader={loader!r} must provide exactly one column (the traded volume "
                f"in quote currency), it provides {loader.get_columns()}"
            )
        self._set("capital", check_scalar(
            "capital", self.capital, low=0.0, low_open=True,
            hint="the book's notional at gross exposure 1, in quote currency, e.g. 1e6"))
        self._set("impact_coefficient", check_scalar(
            "impact_coefficient", self.impact_coefficient, low=0.0, high=100.0,
            hint="Y of the square-root law; 0 = no impact, about 0.5-1 for crypto futures"))
        if self.impact_coefficient > 0 and loader is None:
            raise ValueError(
                f"impact_coefficient={self.impact_coefficient} needs volume_loader (the "
                "traded volume the impact is measured against); give volume_loader, or set "
                "impact_coefficient=0"
            )
        self._set("max_participation", check_scalar(
            "max_participation", self.max_participation, low=0.0, low_open=True,
            hint="the share of a bar's volume above which a trade is warned about, e.g. 0.1"))
        window = self.impact_window
        hint = ("a duration of at least one day and a whole number of bars, such as '20D' "
                "or pandas.Timedelta(days=20)")
        try:
            if isinstance(window, bool) or not isinstance(
                window, (str, dt.timedelta, pd.Timedelta)
            ):
                raise ValueError
            parsed = pd.Timedelta(window)
        except (ValueError, TypeError):
            raise ValueError(f"impact_window={window!r} must be {hint}") from None
        # Only a config that reads volumes uses the window: the default need not fit
        # every bar length ('7h' bars do not divide 20 days).
        if loader is not None and (parsed < pd.Timedelta(days=1)
                                   or parsed.value % self.bar_nanos):
            raise ValueError(f"impact_window={window!r} must be {hint}")
        if loader is not None and parsed.value // self.bar_nanos < 2:
            raise ValueError(
                f"impact_window={window!r} holds one {self.frequency!r} bar: a volatility "
                "needs at least two returns; use a longer window"
            )
        self._set("impact_window", parsed)

    @property
    def impact_window_bars(self) -> int:
        """Bars in ``impact_window``: the trailing window of the ADV and volatility."""
        return int(pd.Timedelta(self.impact_window).value // self.bar_nanos)

    def slippage_rates(self, symbols: Sequence[str]) -> list[float]:
        """The slippage rate of each of ``symbols``."""
        if isinstance(self.slippage_rate, Mapping):
            return [float(self.slippage_rate[s]) for s in symbols]
        return [float(self.slippage_rate)] * len(symbols)

    # ------------------------------------------------------------------ derived values
    @property
    def bar_nanos(self) -> int:
        return frequency_nanos(self.frequency)

    @property
    def open_quantile(self) -> float:
        return self.quantile[0]

    @property
    def close_quantile(self) -> float:
        return self.quantile[1]

    @property
    def sorted_symbols(self) -> list[str]:
        return sorted(self.symbols)

    def replace(self, **changes: Any) -> BacktestConfig:
        """A validated copy with ``changes`` applied."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"BacktestConfig {self.name!r}: unknown field(s) {sorted(unknown)}; "
                f"fields are {[f.name for f in dataclasses.fields(self)]}"
            )
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description of everything in the config."""
        return {
            "name": self.name,
            "alpha_class": qualified_name(self.alpha_class),
            "alpha_kwargs": jsonable(self.alpha_kwargs, "alpha_kwargs"),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "symbols": list(self.symbols),
            "price_loader": self.price_loader.to_dict(),
            "alpha_loaders": [loader.to_dict() for loader in self.alpha_loaders],
            "beta_csv_path": self.beta_csv_path,
            "universe_loader": (
                self.universe_loader.to_dict() if self.universe_loader is not None else None
            ),
            "quantile": list(self.quantile),
            "gross_exposure": self.gross_exposure,
            "frequency": self.frequency,
            "trading_fee_rate": self.trading_fee_rate,
            "mode": self.mode,
            "chunk_days": self.chunk_days,
            "max_fill_bars": self.max_fill_bars,
            **self._cost_fields(),
        }

    def _cost_fields(self) -> dict[str, Any]:
        """The execution and cost fields that differ from their defaults.

        A field at its default is left out of the description, so the fingerprints of
        results saved before these fields existed stay valid (their numbers are the
        same: every default reproduces the accounting of that time).
        """
        fields: dict[str, Any] = {}
        if self.execution_delay != 0:
            fields["execution_delay"] = self.execution_delay
        if self.execution_lag != NO_LAG:
            fields["execution_lag"] = pd.Timedelta(self.execution_lag).isoformat()
        if isinstance(self.slippage_rate, Mapping) or self.slippage_rate != 0.0:
            # Per symbol: only the configured ones, so a shared table of rates for a
            # wider universe does not tie the identity to symbols the config does not trade.
            fields["slippage_rate"] = (
                {s: self.slippage_rate[s] for s in sorted(self.symbols)}
                if isinstance(self.slippage_rate, Mapping) else self.slippage_rate
            )
        for field in ("funding_loader", "beta_loader", "volume_loader"):
            loader = getattr(self, field)
            if loader is not None:
                fields[field] = loader.to_dict()
        if self.volume_loader is None:  # the book has no size: these change nothing
            return fields
        if self.capital != DEFAULT_CAPITAL:
            fields["capital"] = self.capital
        if self.impact_coefficient != 0.0:
            fields["impact_coefficient"] = self.impact_coefficient
        if self.impact_window != DEFAULT_IMPACT_WINDOW:
            fields["impact_window"] = pd.Timedelta(self.impact_window).isoformat()
        if self.max_participation != DEFAULT_MAX_PARTICIPATION:
            fields["max_participation"] = self.max_participation
        return fields

    def data_files(self) -> list[tuple[str, int, int]]:
        """(path as configured, size, mtime_ns) of every file the config reads."""
        loaders = [self.price_loader, *self.alpha_loaders]
        for extra in (self.universe_loader, self.funding_loader, self.beta_loader,
                      self.volume_loader):
            if extra is not None:
                loaders.append(extra)
        owner = f"BacktestConfig {self.name!r}"
        paths = [(p, owner) for loader in loaders for p in loader.files(self.symbols)]
        if self.beta_csv_path is not None:
            paths.append((self.beta_csv_path, f"{owner}: beta_csv_path"))
        stats = []
        for path, who in paths:
            st = stat_file(path, who)
            stats.append((path, st.size, st.mtime_ns))
        return sorted(set(stats))

    def identity_dict(self) -> dict[str, Any]:
        """``to_dict()`` without the name, with user code named by its code identity.

        Classes and functions of user modules (the alpha class, user loader classes,
        callables in ``alpha_kwargs``) appear as ``QualName@digest`` of the code they
        reach (``alphadev.identity``), not as ``module:QualName``: the same file
        imported under another module name has the same identity, and an edit to the
        code it reaches gives another one.
        """
        with identity_names():
            description = self.to_dict()
        description.pop("name")
        return description

    def fingerprint(self) -> str:
        """Stable hash of what decides the numbers (the name is not part of it)."""
        payload = {
            "config": self.identity_dict(),
            "alpha_version": jsonable(getattr(self.alpha_class, "version", 0), "version"),
            "alpha_code": code_digest(self.alpha_class),
            "results_version": RESULTS_VERSION,
            "files": self.data_files(),
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self) -> dict[str, Any]:
        """to_dict plus fingerprint and library version, as written to config.json."""
        return {
            **self.to_dict(),
            "fingerprint": self.fingerprint(),
            "alphadev_version": __version__,
            "results_version": RESULTS_VERSION,
        }

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        """One line: name, alpha and parameters, period, symbols and portfolio settings."""
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.alpha_kwargs.items())
        symbols = (", ".join(self.symbols) if len(self.symbols) <= 3
                   else f"{len(self.symbols)} symbols")
        mode = self.mode if self.chunk_days is None else f"{self.mode}/{self.chunk_days}d"
        return (
            f"BacktestConfig({self.name!r}, {self.alpha_class.__name__}({kwargs}), "
            f"{self.start_date}..{self.end_date} {self.frequency}, [{symbols}], "
            f"quantile={self.quantile}, gross={self.gross_exposure}, "
            f"fee={self.trading_fee_rate}{self._costs_text()}, {mode})"
        )

    def _costs_text(self) -> str:
        """The execution and cost fields that are set (configs differing only in costs
        must not print alike)."""
        parts = []
        if self.execution_delay:
            parts.append(f"delay={self.execution_delay}")
        if self.execution_lag != NO_LAG:
            parts.append(f"lag={lag_text(self.execution_lag)}")
        if isinstance(self.slippage_rate, Mapping) or self.slippage_rate:
            parts.append(f"slippage={self.slippage_rate!r}")
        if self.funding_loader is not None:
            parts.append("funding")
        if self.beta_loader is not None:
            parts.append("betas by bar")
        if self.volume_loader is not None:
            parts.append(f"capital={self.capital:g}")
            if self.max_participation != DEFAULT_MAX_PARTICIPATION:
                parts.append(f"max_participation={self.max_participation:g}")
        if self.impact_coefficient:
            parts.append(f"impact={self.impact_coefficient:g}")
        if self.volume_loader is not None and self.impact_window != DEFAULT_IMPACT_WINDOW:
            parts.append(f"impact_window={pd.Timedelta(self.impact_window)}")
        return "".join(f", {part}" for part in parts)

    def _repr_html_(self) -> str:
        """A small field/value table for notebooks (names and values escaped)."""
        loaders = [self.price_loader, *self.alpha_loaders]
        loaders += [x for x in (self.universe_loader, self.funding_loader, self.beta_loader,
                                self.volume_loader) if x is not None]
        rows = [
            ("alpha", f"{self.alpha_class.__name__}"
                      f"({', '.join(f'{k}={v!r}' for k, v in self.alpha_kwargs.items())})"),
            ("period", f"{self.start_date} .. {self.end_date} ({self.frequency} bars)"),
            ("symbols", ", ".join(self.symbols)),
            ("quantile", str(self.quantile)),
            ("gross exposure", str(self.gross_exposure)),
            ("fee rate", str(self.trading_fee_rate)),
            ("execution delay (bars)", str(self.execution_delay)),
            ("execution lag", lag_text(self.execution_lag)),
            ("slippage rate", str(self.slippage_rate)),
            ("capital", f"{self.capital:g}"),
            ("impact coefficient", str(self.impact_coefficient)),
            ("mode", self.mode if self.chunk_days is None
             else f"{self.mode} (chunk_days={self.chunk_days})"),
            ("loaders", "; ".join(repr(x) for x in loaders)),
            ("beta file", str(self.beta_csv_path)),
        ]
        return html_table(f"BacktestConfig {self.name}", rows)
