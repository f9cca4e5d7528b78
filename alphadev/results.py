"""BacktestResult: one config's metrics and sequences, in memory or in its folder.

Where each file goes, and what makes a folder whole, is ``alphadev.layout``'s; how a
folder is written and published is ``alphadev.store``'s; this module decides what goes
into it (docs/semantics.md#results-on-disk).  Nothing is pickled.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd

from alphadev import _threads
from alphadev._display import html_table
from alphadev.config import DEFAULT_CAPITAL, lag_text
from alphadev.layout import ResultDir, SweepDir, check_folder, with_manifest
from alphadev.metrics import CostBreakdown, Metrics, is_fragile
from alphadev.store import building_dir, publish_dir, read_json, write_bytes, write_json

if TYPE_CHECKING:
    from alphadev.config import BacktestConfig
    from alphadev.signal_series import SignalSeries


class Metadata(TypedDict, total=False):
    """``metadata.json``: how the run went (docs/semantics.md#results-on-disk); every
    key may be absent from results saved before it existed."""

    forced_closes: int
    symbols_without_data: list[str]
    symbols_without_funding: list[str]
    symbols_without_beta: list[str]
    symbols_without_volume: list[str]
    num_bars: int
    ruined_at: str | None
    runtime_seconds: float
    warnings: list[str]


@dataclass
class Sequences:
    """Per-bar returns frame plus long-format positions and trades.

    A streaming run may leave positions and trades in Parquet files (``Path``) instead
    of frames; they are read when first used and moved, not rewritten, on save.
    """

    RETURN_COLUMNS = (
        "pnl", "gross", "fees", "slippage", "impact", "funding", "turnover", "long_return",
        "short_return", "ic", "equity",
    )

    returns: pd.DataFrame
    positions: pd.DataFrame | Path
    trades: pd.DataFrame | Path
    # Recorded by the run for the report's signal panels (docs/semantics.md#signal-series);
    # saved as their own files, not read back into a loaded result.
    signal: SignalSeries | None = None


SETTING_COLUMNS = (
    "start_date", "end_date", "open_quantile", "close_quantile", "gross_exposure",
    "frequency", "trading_fee_rate", "mode", "chunk_days", "max_fill_bars",
    "execution_delay", "execution_lag", "slippage_rate", "capital", "impact_coefficient",
)
# Settings a config description leaves out at their default (alphadev.config).
_SETTING_DEFAULTS = {"execution_delay": 0, "execution_lag": "0s", "slippage_rate": 0.0,
                     "capital": DEFAULT_CAPITAL, "impact_coefficient": 0.0}
IDENTITY_COLUMNS = ("name", "alpha_class", "fingerprint")


def result_row(result: BacktestResult) -> dict[str, Any]:
    """Flat row: alpha parameters as ``alpha.<name>``, leg metrics as ``long_<metric>``."""
    cfg = result.config_dict
    row: dict[str, Any] = {
        "name": cfg["name"], "alpha_class": cfg["alpha_class"], "fingerprint": result.fingerprint,
    }
    for key, value in cfg["alpha_kwargs"].items():
        row[f"alpha.{key}"] = value if not isinstance(value, (list, dict)) else repr(value)
    settings = {
        **_SETTING_DEFAULTS, **cfg,
        "open_quantile": cfg["quantile"][0], "close_quantile": cfg["quantile"][1],
    }
    if isinstance(settings["slippage_rate"], dict):  # per symbol: one readable cell
        settings["slippage_rate"] = ", ".join(
            f"{symbol}:{rate:g}" for symbol, rate in settings["slippage_rate"].items()
        )
    settings["execution_lag"] = lag_text(settings["execution_lag"])  # '5min', not ISO 8601
    row.update({key: settings[key] for key in SETTING_COLUMNS})
    metrics = result.metrics
    row.update(metrics["total"])
    for leg in ("long", "short"):
        row.update({f"{leg}_{k}": v for k, v in metrics[leg].items()})
    skip = ("total", "long", "short", "frequency", "cost_breakdown", "participation",
            "capacity_curve")
    row.update({k: v for k, v in metrics.items() if k not in skip})
    # Results saved before slippage, funding and impact existed paid none of them.
    row.setdefault("total_slippage", 0.0)
    row.setdefault("total_funding", 0.0)
    row.setdefault("total_impact", 0.0)
    # Without volume_loader a book has no size: no capacity, no participation.
    row.setdefault("capacity", None)
    participation = metrics.get("participation")
    row["participation_max"] = participation["max"] if participation else None
    row["cost_share"] = cost_share(metrics.get("cost_breakdown"))
    # Results saved before the next-bar pass existed: unknown, neither True nor False.
    row.setdefault("sharpe_next_bar", None)
    row.setdefault("total_return_next_bar", None)
    row["fragile"] = (
        None if "sharpe_next_bar" not in metrics
        else is_fragile(metrics["total"].get("sharpe"), metrics["sharpe_next_bar"])
    )
    return row


def cost_share(breakdown: CostBreakdown | None) -> float | None:
    """The share of the gross return eaten by costs:
    (fees + slippage + impact - funding) / gross.

    None when the gross return is not positive (there is nothing to share), unknown
    (results saved before the breakdown existed), or so small that the share overflows.
    Above 1: costs ate more than the gross; negative: funding received exceeded fees and slippage.
    """
    if not breakdown:
        return None
    values = (breakdown.get("gross"), breakdown.get("fees"), breakdown.get("slippage"),
              breakdown.get("funding"))
    if any(v is None for v in values):
        return None
    gross, fees, slippage, funding = (float(v) for v in values if v is not None)
    impact = float(breakdown.get("impact") or 0.0)
    share = (fees + slippage + impact - funding) / gross if gross > 0 else math.inf
    return share if math.isfinite(share) else None


class BacktestResult:
    """Metrics and sequences of one config.

    ``config`` is the BacktestConfig when the result comes from a run in this process
    (or was skipped and loaded for one); ``Backtester.load_result`` leaves it None and
    the saved description is in ``config_dict``: loading never imports user code.
    """

    def __init__(
        self,
        config: BacktestConfig | None,
        metrics: Metrics,
        metadata: Metadata | None = None,
        sequences: Sequences | None = None,
        path: str | os.PathLike | None = None,
        config_dict: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.metadata = metadata if metadata is not None else Metadata()
        self._sequences = sequences
        self.path = Path(path) if path is not None else None
        if config_dict is None:
            if config is None:
                raise ValueError("a BacktestResult needs its config or its saved description")
            config_dict = config.to_dict()
        self.config_dict = config_dict

    @property
    def name(self) -> str:
        return self.config_dict["name"]

    @property
    def fingerprint(self) -> str | None:
        """The saved fingerprint, or the config's (computed once) for an unsaved result."""
        value = self.config_dict.get("fingerprint")
        if value is None and self.config is not None:
            try:
                value = self.config.fingerprint()
            except (OSError, ValueError):
                return None
            self.config_dict = {**self.config_dict, "fingerprint": value}
        return value

    # ------------------------------------------------------------------ sequences
    @property
    def sequences(self) -> pd.DataFrame:
        return self._load().returns

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        return self.sequences.index

    @property
    def pnl(self) -> pd.Series:
        return self.sequences["pnl"]

    @property
    def gross(self) -> pd.Series:
        return self.sequences["gross"]

    @property
    def long_returns(self) -> pd.Series:
        return self.sequences["long_return"]

    @property
    def short_returns(self) -> pd.Series:
        return self.sequences["short_return"]

    @property
    def turnover(self) -> pd.Series:
        return self.sequences["turnover"]

    @property
    def fees(self) -> pd.Series:
        return self.sequences["fees"]

    @property
    def slippage(self) -> pd.Series:
        return self.sequences["slippage"]

    @property
    def impact(self) -> pd.Series:
        """Market impact paid per bar (docs/semantics.md#market-impact), a return on equity."""
        return self.sequences["impact"]

    @property
    def funding(self) -> pd.Series:
        """Funding received (+) or paid (-) per bar, as a return on equity."""
        return self.sequences["funding"]

    @property
    def ic_sequence(self) -> pd.Series:
        return self.sequences["ic"]

    @property
    def equity(self) -> pd.Series:
        return self.sequences["equity"]

    @property
    def positions(self) -> pd.DataFrame:
        return self._table("positions")

    @property
    def trades(self) -> pd.DataFrame:
        return self._table("trades")

    def _table(self, kind: str) -> pd.DataFrame:
        value = getattr(self._load(), kind)
        return pd.read_parquet(value) if isinstance(value, Path) else value

    def drop_sequences(self) -> None:
        """Forget in-memory sequences of a saved result; they are re-read on demand."""
        if self.path is not None:
            self._sequences = None

    def _load(self) -> Sequences:
        if self._sequences is None:
            if self.path is None:
                raise RuntimeError(f"result {self.name!r} has neither sequences nor a path")
            folder = ResultDir(self.path)
            self._sequences = Sequences(  # the long tables are read on each use
                returns=_with_cost_columns(pd.read_parquet(folder.returns)),
                positions=folder.sequence("positions"),
                trades=folder.sequence("trades"),
            )
        return self._sequences

    # ------------------------------------------------------------------ display
    def stats(self, numeric_only: bool = True) -> pd.Series:
        """The metrics as one flat Series named by the config: the columns (and values)
        of this result's row of ``comparison.csv``, without the sweep statistics (PSR,
        DSR, break-even fee), which ``Backtester.get_comparison_table`` adds.

        By default only the numbers, as float64 (an undefined metric is NaN, a flag such
        as ``fragile`` 1.0 / 0.0), so ``stats()[["sharpe", "ic_mean"]].round(2)`` works;
        ``numeric_only=False`` gives every field (name, alpha class, dates, ...) as
        objects, values as saved.
        """
        row = result_row(self)
        if not numeric_only:
            return pd.Series(row, index=list(row), name=self.name, dtype=object)
        numbers = {key: np.nan if value is None else float(value)
                   for key, value in row.items() if _is_number_field(key, value)}
        return pd.Series(numbers, index=list(numbers), name=self.name, dtype=np.float64)

    def __repr__(self) -> str:
        total, cfg = self.metrics["total"], self.config_dict
        where = f", saved in {str(self.path)!r}" if self.path is not None else ""
        return (
            f"BacktestResult({self.name!r}, {class_name(cfg['alpha_class'])}"
            f"{_kwargs_text(cfg['alpha_kwargs'])}, {cfg['start_date']}..{cfg['end_date']} "
            f"{cfg['frequency']}, sharpe={_fmt(total.get('sharpe'), '{:.3f}')}, "
            f"ic_mean={_fmt(self.metrics.get('ic_mean'), '{:.4f}')}{where})"
        )

    def _repr_html_(self) -> str:
        """A small table for notebooks: the headline numbers (metrics only, no sequences)."""
        total, m, cfg = self.metrics["total"], self.metrics, self.config_dict
        rows = [
            ("alpha", f"{class_name(cfg['alpha_class'])}{_kwargs_text(cfg['alpha_kwargs'])}"),
            ("period", f"{cfg['start_date']} .. {cfg['end_date']} ({cfg['frequency']})"),
            ("sharpe", _fmt(total.get("sharpe"), "{:.3f}")),
            ("annualized return", _fmt(total.get("annualized_return"), "{:+.2%}")),
            ("max drawdown", _fmt(total.get("max_drawdown"), "{:.2%}")),
            ("ic mean", _fmt(m.get("ic_mean"), "{:.4f}")),
            ("avg turnover", _fmt(m.get("avg_turnover"), "{:.4f}")),
        ]
        return html_table(f"BacktestResult {self.name}", rows)

    def __str__(self) -> str:
        total, m, cfg = self.metrics["total"], self.metrics, self.config_dict
        rows = [
            ("cumulative return", _fmt(total["cumulative_return"], "{:+.2%}")),
            ("annualized return", _fmt(total["annualized_return"], "{:+.2%}")),
            ("sharpe", _fmt(total["sharpe"], "{:.2f}")),
            ("sortino", _fmt(total["sortino"], "{:.2f}")),
            ("max drawdown", _fmt(total["max_drawdown"], "{:.2%}")),
            ("long / short sharpe", f"{_fmt(m['long']['sharpe'], '{:.2f}')} / "
                                    f"{_fmt(m['short']['sharpe'], '{:.2f}')}"),
            ("ic mean / ir", f"{_fmt(m['ic_mean'], '{:.4f}')} / {_fmt(m['ic_ir'], '{:.3f}')}"),
            ("avg turnover", _fmt(m["avg_turnover"], "{:.4f}")),
            ("total fees", _fmt(m["total_fees"], "{:.4f}")),
            ("total slippage", _fmt(m.get("total_slippage", 0.0), "{:.4f}")),
            ("total funding", _fmt(m.get("total_funding", 0.0), "{:+.4f}")),
        ]
        if "capacity" in m:
            rows += [("total impact", _fmt(m.get("total_impact", 0.0), "{:.4f}")),
                     ("capacity", _fmt(m["capacity"], "{:.3g}"))]
        header = [
            f"Backtest {self.name}",
            f"  alpha      {cfg['alpha_class']} {cfg['alpha_kwargs']}",
            f"  period     {cfg['start_date']} .. {cfg['end_date']}, {cfg['frequency']} bars, "
            f"{total['num_periods']} periods",
            f"  portfolio  quantile={tuple(cfg['quantile'])} gross={cfg['gross_exposure']} "
            f"fee={cfg['trading_fee_rate']}",
        ]
        return "\n".join(header + [f"  {label:<20} {text}" for label, text in rows])

    # ------------------------------------------------------------------ disk
    def save(self, save_dir: str | os.PathLike) -> Path:
        """Write this result to ``{save_dir}/{name}/`` atomically; returns the folder."""
        if self.config is None:
            raise RuntimeError(f"result {self.name!r} was loaded from disk; it is saved already")
        description = self.config.describe()
        final = SweepDir.of(save_dir).result(self.name)
        sequences = self._load()
        with building_dir(Path(save_dir), self.name) as building:
            tmp = ResultDir(building)
            tmp.sequences.mkdir()
            writers = []
            for kind in ("positions", "trades"):
                value = getattr(sequences, kind)
                target = tmp.sequence(kind)
                if isinstance(value, Path) and self.path is not None and (
                    value.parent == ResultDir(self.path).sequences
                ):  # a saved folder's own file: copied, that folder must stay whole
                    shutil.copyfile(value, target)
                elif isinstance(value, Path):
                    os.rename(value, target)  # spilled by a streaming run: moved, not copied
                    setattr(sequences, kind, final.sequence(kind))
                else:  # encoding releases the GIL: the two big tables in parallel
                    writers.append(_threads.start(write_long_table, value, target))
            sequences.returns.to_parquet(tmp.returns)
            if sequences.signal is not None:
                _write_signal(sequences.signal, sequences.returns.index, tmp)
            for join in writers:
                join()
            write_json(tmp.metrics, self.metrics)
            write_json(tmp.metadata, self.metadata)
            write_bytes(tmp.config, with_manifest(description, tmp.path))
            publish_dir(tmp.path, final.path, description["fingerprint"])
        self.path = final.path
        self.config_dict = description
        return final.path


_TEXT_FIELDS = {"name", "alpha_class", "fingerprint", *SETTING_COLUMNS}


def _is_number_field(key: str, value: Any) -> bool:
    """A number (bools count, as 0 / 1), or a metric left undefined (None)."""
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return True
    return value is None and key not in _TEXT_FIELDS and not key.startswith("alpha.")


def _write_signal(signal: SignalSeries, index: pd.Index, folder: ResultDir) -> None:
    """The signal panels' files, outside the manifest: ``alphadev.analysis`` may
    rewrite them in a published folder (``write_ic_decay`` with more lags)."""
    signal.ic_decay().to_parquet(folder.ic_decay, index=False)
    signal.quantile_means().to_parquet(folder.quantile_returns, index=False)
    signal.factor_frame(pd.DatetimeIndex(index)).to_parquet(folder.factor_sequences)
    signal.benchmark_frame(pd.DatetimeIndex(index)).to_parquet(folder.benchmark)


def _with_cost_columns(returns: pd.DataFrame) -> pd.DataFrame:
    """Results saved before slippage, impact and funding existed had none: zero columns."""
    for column, after in (("slippage", "fees"), ("impact", "slippage"), ("funding", "impact")):
        if column not in returns.columns:
            returns.insert(returns.columns.get_loc(after) + 1, column, 0.0)
    return returns


def load_result(path: str | os.PathLike, config: BacktestConfig | None = None) -> BacktestResult:
    """A saved result; sequences are read from Parquet when first used.

    Raises ``DamagedResultError`` (naming the folder and what is wrong) when the folder
    is not whole; see ``alphadev.layout.check_folder``.
    """
    folder = Path(path)
    check = check_folder(folder)
    if check.problem is not None:
        raise DamagedResultError(
            f"results folder {str(folder)!r} is not whole: {check.problem}. Rerun the "
            "sweep (or run_all with this save_dir) to recompute it, or delete the folder"
        )
    metrics = read_json(ResultDir(folder).metrics)
    metadata = read_json(ResultDir(folder).metadata)
    return BacktestResult(
        config=config, metrics=metrics, metadata=metadata, path=folder,
        config_dict=check.description,
    )


class DamagedResultError(ValueError):
    """A results folder with a missing, truncated or edited file."""


def write_long_table(frame: pd.DataFrame, path: Path) -> None:
    """Write positions or trades straight through pyarrow.

    Column by column (timestamps typed, symbols dictionary-encoded) instead of
    ``DataFrame.to_parquet``, which spends most of its time on the conversion;
    ``pandas.read_parquet`` gives back the same dtypes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            arrays[name] = pa.DictionaryArray.from_arrays(
                column.cat.codes.to_numpy(), pa.array(column.cat.categories.astype(str))
            )
        elif isinstance(column.dtype, pd.DatetimeTZDtype):
            stamps = column.dt.tz_convert("UTC").dt.as_unit("ns")
            arrays[name] = pa.array(
                stamps.array.asi8 if hasattr(stamps.array, "asi8") else stamps.to_numpy(),
                type=pa.timestamp("ns", tz="UTC"),
            )
        else:
            arrays[name] = pa.array(column.to_numpy())
    # Dictionary-encoding float columns, and min/max statistics of weights, cost more
    # time than they save; statistics on timestamp and symbol let readers filter.
    keys = ["timestamp", "symbol"]
    pq.write_table(pa.table(arrays), path, use_dictionary=["symbol"], write_statistics=keys)


def _fmt(value: Any, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def class_name(qualified: str) -> str:
    """``EchoAlpha`` for ``tests.alphas:EchoAlpha``: the class by name, never imported."""
    return str(qualified).rpartition(":")[2]


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"

