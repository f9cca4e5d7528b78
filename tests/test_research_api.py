"""Getting back to results: Backtester.load, stats(), returns(), failures, reprs,
the loader check before a sweep, and signal_analysis from a factor."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import alphadev
from alphadev import (
    Backtester,
    CSVDataLoader,
    DataError,
    SpecError,
    load_sweep,
    preflight,
    signal_analysis,
    sweep,
)
from alphadev.analysis import ic_by_lag_from_arrays, quantile_returns_from_arrays
from alphadev.comparison import read_comparison_table, write_comparison
from alphadev.data import files as parsed_files
from alphadev.orchestrator import run_config
from alphadev.research import config_panel
from alphadev.spec import load_spec
from alphadev.stats import SWEEP_STATISTICS_COLUMNS
from tests.alphas import CountingAlpha, EchoAlpha, FailingAlpha, RollingMeanAlpha
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[1]


def _sweep(market: Path, save_dir: Path) -> list:
    """A small Luigi-style sweep (run_config + summarize): 4 done, 1 failed, 1 not run."""
    base = make_config(market, name="g")
    bt = Backtester()
    bt.add_multiple_configs(base, {"scale": [1.0, -1.0]},
                            {"quantile": [(0.2, 0.2), (0.4, 0.4)]})
    bt.add_config(make_config(market, name="broken", alpha_class=FailingAlpha))
    sweep.prepare(save_dir)
    for config in bt.configs:
        run_config(config, save_dir)
    never_run = make_config(market, name="later")
    sweep.summarize([*bt.configs, never_run], save_dir)
    return [*bt.configs, never_run]


# ---------------------------------------------------------------------- load
def test_load_equals_the_sweeps_comparison_csv(market: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "sweep"
    configs = _sweep(market, save_dir)
    loaded = Backtester.load(save_dir)
    assert isinstance(loaded, Backtester) and loaded.configs == []
    # same rows, same order, same numbers: written back it is the same file
    write_comparison(loaded.get_comparison_table(), tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == (save_dir / "comparison.csv").read_bytes()
    assert loaded.get_comparison_table()["n_trials"].unique().tolist() == [len(configs)]
    best = loaded.get_best_config("sharpe")
    table = read_comparison_table(save_dir / "comparison.csv")
    assert best.name == table.loc[table["sharpe"].idxmax(), "name"]
    assert len(loaded.results) == 4 and all(r.config is None for r in loaded.results)
    assert list(loaded.failures) == ["broken"]
    assert "planted failure" in loaded.failures["broken"]
    assert load_sweep(save_dir).get_comparison_table().equals(loaded.get_comparison_table())


def test_load_without_comparison_csv_and_a_failed_rerun(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="m"), {"scale": [1.0, 2.0, 3.0]})
    bt.run_all(verbose=False, save_dir=tmp_path / "out")
    expected = bt.get_comparison_table().sort_values("name").reset_index(drop=True)
    # a later attempt of m__scale=2.0 failed: its older folder is not a result any more
    sweep.record_failure(tmp_path / "out", bt.configs[1], "boom report", None)
    (tmp_path / "out" / "not_a_result").mkdir()
    loaded = Backtester.load(tmp_path / "out")
    assert [r.name for r in loaded.results] == ["m__scale=1.0", "m__scale=3.0"]
    assert loaded.failures == {"m__scale=2.0": "boom report"}
    got = loaded.get_comparison_table().set_index("name")
    for name in ("m__scale=1.0", "m__scale=3.0"):
        row = expected.set_index("name").loc[name]
        assert got.loc[name, "sharpe"] == row["sharpe"]
        assert got.loc[name, "fingerprint"] == row["fingerprint"]
    assert int(got["n_trials"].iloc[0]) == 3  # the failed config is a trial too
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Backtester.load(tmp_path / "nowhere")


SECRET_ALPHA = '''
import pathlib
from alphadev.alpha import Alpha
pathlib.Path(__file__).with_name("IMPORTED").write_text("imported")

class SecretAlpha(Alpha):
    lookback = 60
    def __init__(self, scale=1.0):
        self.scale = scale
    def reset(self):
        pass
    def compute(self, data):
        return (data[["value"]] * self.scale).rename(columns={"value": "alpha"})
'''


def test_load_never_imports_user_code(market: Path, tmp_path: Path) -> None:
    code = tmp_path / "usercode"
    code.mkdir()
    (code / "secret_sweep_alpha.py").write_text(SECRET_ALPHA)
    sys.path.insert(0, str(code))
    try:
        from secret_sweep_alpha import SecretAlpha  # type: ignore[import-not-found]

        _ = [run_config(c, tmp_path / "out") for c in Backtester().add_multiple_configs(
            make_config(market, name="s", alpha_class=SecretAlpha), {"scale": [1.0, 2.0]})]
        sweep.summarize([], tmp_path / "out")
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("secret_sweep_alpha", None)
    (code / "IMPORTED").unlink()
    # Importing the module now would raise, and would leave IMPORTED behind.
    (code / "secret_sweep_alpha.py").write_text(
        SECRET_ALPHA + "\nraise RuntimeError('user code was imported')\n")
    script = textwrap.dedent(f"""
        import sys
        from alphadev import Backtester
        bt = Backtester.load({str(tmp_path / "out")!r})
        best = bt.get_best_config("sharpe")
        print(repr(bt)); print(repr(best)); print(best)
        print(best.stats(numeric_only=False)["alpha_class"]); print(bt.returns().shape)
        print(bt._repr_html_()); print(best._repr_html_())
        assert "secret_sweep_alpha" not in sys.modules
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=code, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": f"{code}:{ROOT}"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (code / "IMPORTED").exists()
    assert "SecretAlpha" in done.stdout and "secret_sweep_alpha:SecretAlpha" in done.stdout


# ---------------------------------------------------------------------- stats, returns
def test_stats_is_the_comparison_row(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="st"), {"scale": [1.0, 2.0]})
    results = bt.run_all(verbose=False)
    assert f"({bt.get_best_config().name})" in repr(bt)  # a tie: the same first best
    table = bt.get_comparison_table().set_index("name", drop=False)
    for result in results:
        numbers = result.stats()
        assert numbers.dtype == np.float64 and numbers.name == result.name
        assert numbers[["sharpe", "ic_mean"]].round(2).dtype == np.float64
        assert numbers["alpha.scale"] == result.config.alpha_kwargs["scale"]
        assert "alpha_class" not in numbers and "frequency" not in numbers
        assert numbers["fragile"] in (0.0, 1.0) and numbers["trading_fee_rate"] == 4.5e-4
        stats = result.stats(numeric_only=False)
        assert isinstance(stats, pd.Series) and stats.name == result.name
        assert set(numbers.index) < set(stats.index)
        for key in numbers.index:
            expected = stats[key]
            assert (np.isnan(numbers[key]) if expected is None
                    else numbers[key] == float(expected)), key
        sweep_only = [c for c in table.columns if c not in stats.index]
        expected = [*SWEEP_STATISTICS_COLUMNS[1:], "n_trials", "n_effective_trials"]
        assert sorted(sweep_only) == sorted(expected)
        assert list(stats.index) == [c for c in table.columns if c in stats.index]
        row = table.loc[result.name, list(stats.index)]
        pd.testing.assert_series_equal(stats, row.astype(object), check_names=False)
        assert stats["sharpe"] == result.metrics["total"]["sharpe"]
        assert stats["long_sharpe"] == result.metrics["long"]["sharpe"]
        assert stats["ic_mean"] == result.metrics["ic_mean"]
        assert stats["alpha.scale"] == result.config.alpha_kwargs["scale"]


def test_returns_one_column_per_config_on_the_union_of_grids(market: Path) -> None:
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="r"), None,
                            {"frequency": ["1h", "2h"], "start_date": ["2024-01-02",
                                                                       "2024-01-05"]})
    results = bt.run_all(verbose=False)
    pnl = bt.returns("pnl", parameters=False)
    assert list(pnl.columns) == [r.name for r in results] and pnl.index.name == "timestamp"
    union = results[0].timestamps
    for result in results[1:]:
        union = union.union(result.timestamps)
    assert pnl.index.equals(union)
    for result in results:
        column = pnl[result.name]
        pd.testing.assert_series_equal(column.dropna(), result.pnl.dropna(),
                                       check_names=False, check_freq=False)
        assert column.reindex(result.timestamps).notna().sum() == result.pnl.notna().sum()
    two_hourly = [r.name for r in results if r.config.frequency == "2h"][0]
    assert pnl[two_hourly].isna().sum() >= len(pnl) // 2  # no bar at odd hours
    last = bt.returns("equity", False).apply(lambda column: column.dropna().iloc[-1])
    assert last.tolist() == [r.equity.iloc[-1] for r in results]
    with pytest.raises(ValueError, match="'pnl'"):
        bt.returns("sharpe")


def test_returns_columns_name_the_parameters(market: Path) -> None:
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="p"), {"scale": [1.0, -1.0]},
                            {"execution_delay": [0, 1], "trading_fee_rate": [0.0, 4.5e-4]})
    bt.add_config(make_config(market, name="mean", alpha_class=RollingMeanAlpha,
                              alpha_kwargs={"window": 3}))
    results = bt.run_all(verbose=False)
    pnl = bt.returns()
    names = list(pnl.columns.names)
    assert names[:4] == ["config", "alpha_class", "alpha.scale", "alpha.window"]
    assert {"execution_delay", "trading_fee_rate", "open_quantile", "frequency"} <= set(names)
    assert list(pnl.columns.get_level_values("config")) == [r.name for r in results]
    by_delay = pnl.T.groupby(level="execution_delay").mean().T
    assert list(by_delay.columns) == [0, 1]
    delayed = [r.name for r in results if r.config.execution_delay == 1]
    pd.testing.assert_series_equal(
        by_delay[1], bt.returns(parameters=False)[delayed].mean(axis=1), check_names=False)
    mean = pnl.xs("mean", axis=1, level="config")
    assert mean.columns.get_level_values("alpha.window").tolist() == [3]
    assert pd.isna(mean.columns.get_level_values("alpha.scale")[0])
    assert pnl.columns.get_level_values("alpha_class")[-1].endswith(":RollingMeanAlpha")


def test_failures_after_run_all(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="ok"))
    bt.add_config(make_config(market, name="bad", alpha_class=FailingAlpha))
    bt.run_all(verbose=False)
    assert list(bt.failures) == ["bad"]
    assert "config 'bad' failed" in bt.failures["bad"] and "Traceback" in bt.failures["bad"]
    assert "1 failed" in repr(bt)
    bt.clear()
    assert bt.failures == {}


# ---------------------------------------------------------------------- reprs
def test_reprs_are_readable_escaped_and_read_no_sequences(market: Path, tmp_path: Path) -> None:
    config = make_config(market, name="rp", alpha_kwargs={"scale": "<b>&"})
    assert repr(config).startswith("BacktestConfig('rp', EchoAlpha(scale='<b>&'), 2024-01-02..")
    assert "\n" not in repr(config) and "delay" not in repr(config)
    costly = config.replace(execution_delay=2, slippage_rate=1e-4)
    assert repr(costly) != repr(config) and "delay=2, slippage=0.0001" in repr(costly)
    assert re.search(r"execution delay \(bars\)</th><td[^>]*>2<", costly._repr_html_())
    html_text = config._repr_html_()
    assert "&lt;b&gt;&amp;" in html_text and "<b>" not in html_text
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="rp"), {"scale": [1.0, -1.0]})
    bt.run_all(verbose=False, save_dir=tmp_path / "out")
    loaded = Backtester.load(tmp_path / "out")
    for result in loaded.results:  # repr never reads sequences from disk
        (result.path / "sequences" / "returns.parquet").rename(tmp_path / f"{result.name}.pq")
    text = repr(loaded)
    assert text.startswith("Backtester(2 results, loaded from") and "best sharpe" in text
    best = max(loaded.results, key=lambda r: r.metrics["total"]["sharpe"])
    assert best.name in text
    assert repr(best).startswith(f"BacktestResult({best.name!r}, EchoAlpha(scale=")
    assert "<table>" in loaded._repr_html_() and best.name in loaded._repr_html_()
    assert "sharpe" in best._repr_html_()
    assert repr(bt).startswith("Backtester(2 configs, 2 results, best sharpe")


def test_package_exports() -> None:
    for name in ("DataError", "AlphaError", "load_sweep", "signal_analysis", "SignalAnalysis"):
        assert name in alphadev.__all__ and hasattr(alphadev, name)
    assert alphadev.load_sweep is load_sweep


# ---------------------------------------------------------------------- loader check
def test_column_typo_is_one_error_before_anything_runs(
    market: Path, tmp_path: Path, monkeypatch
) -> None:
    calls = tmp_path / "calls.log"
    headers: list[str] = []
    real = preflight._header
    monkeypatch.setattr(preflight, "_header", lambda *a: headers.append(a[0]) or real(*a))
    parsed_before = dict(parsed_files.PARSE_COUNT)
    typo = CSVDataLoader(str(market / "values.csv"), "vale")
    bt = Backtester()
    base = make_config(market, name="t", alpha_class=CountingAlpha,
                       alpha_kwargs={"log_path": str(calls)}, alpha_loaders=[typo])
    bt.add_multiple_configs(base, {"scale": [float(k) for k in range(1, 201)]})
    with pytest.raises(DataError) as info:
        bt.run_all(verbose=False, num_processes=2)
    message = str(info.value)
    assert message.count("'vale'") == 2 and "200 config(s): 't__scale=1.0'" in message
    assert "values.csv" in message
    assert "set column_name (or source_column) to one of ['value']" in message
    assert "alpha_loaders[0]" in message and "and 195 more" in message
    # each file's header once for 200 configs, no file parsed, no config run
    assert sorted(headers) == sorted([str(market / "prices.csv"), str(market / "values.csv")])
    assert parsed_files.PARSE_COUNT == parsed_before
    assert not calls.exists() and bt.results == []


def test_missing_file_and_good_loaders_pass(market: Path, tmp_path: Path) -> None:
    moved = make_config(market, name="mv",
                        price_loader=CSVDataLoader(str(market / "prizes.csv"), "close"))
    with pytest.raises(DataError, match=r"prizes\.csv.*does not exist") as info:
        preflight.check_loaders([moved, make_config(market, name="fine")])
    assert "price_loader of 1 config(s): 'mv'" in str(info.value)
    assert "'fine'" not in str(info.value)
    parquet = tmp_path / "p.parquet"
    pd.read_csv(market / "values.csv").to_parquet(parquet)
    preflight.check_loaders([make_config(market, alpha_loaders=[
        alphadev.ParquetDataLoader(str(parquet), "value")])])
    with pytest.raises(DataError, match="has no column 'sym'.*pass symbol_col="):
        preflight.check_loaders([make_config(market, alpha_loaders=[
            alphadev.ParquetDataLoader(str(parquet), "value", symbol_col="sym")])])


class DerivedValueLoader(CSVDataLoader):
    """A user's file loader serving a column derived from the file's ``close``."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "value")

    def load_range(self, start, end, symbols):
        close = CSVDataLoader(self.file_pattern, "close").load_range(start, end, symbols)
        return np.log(close).rename(columns={"close": "value"})


def test_own_reading_subclasses_and_a_missing_symbol_file_pass(market: Path) -> None:
    """The check never stops a config the run itself would run: a subclass that reads
    its own way (its column is not in the file), and a {symbol} pattern where one
    symbol has no file (that symbol only has no data)."""
    values = pd.read_csv(market / "values.csv")
    symbols = sorted(values["symbol"].unique())
    for symbol in symbols[:-1]:
        part = values[values["symbol"] == symbol].drop(columns="symbol")
        part.to_csv(market / f"v_{symbol}.csv", index=False)
    bt = Backtester()
    bt.add_config(make_config(market, name="derived", alpha_loaders=[
        DerivedValueLoader(str(market / "prices.csv"))]))
    bt.add_config(make_config(market, name="per_symbol", alpha_loaders=[
        CSVDataLoader(str(market / "v_{symbol}.csv"), "value")]))
    results = bt.run_all(verbose=False)
    assert all(r is not None for r in results) and bt.failures == {}


def test_spec_checks_loaders_once_and_explains_import_paths(market: Path, tmp_path) -> None:
    spec = tmp_path / "typo_spec.py"
    spec.write_text(textwrap.dedent(f"""
        from alphadev import Backtester, CSVDataLoader
        from tests.alphas import EchoAlpha
        from tests.conftest import make_config
        from pathlib import Path
        def sweep():
            bt = Backtester()
            base = make_config(Path({str(market)!r}), name="k", alpha_loaders=[
                CSVDataLoader({str(market / "values.csv")!r}, "valeu")])
            bt.add_multiple_configs(base, {{"scale": [1.0, 2.0, 3.0]}})
            return bt
    """))
    with pytest.raises(SpecError) as info:
        load_spec(f"{spec}:sweep")
    assert "3 config(s)" in str(info.value) and "'valeu'" in str(info.value)
    with pytest.raises(SpecError) as missing:
        load_spec("no_such_research_pkg.sweeps:grid")
    assert "PYTHONPATH=." in str(missing.value) and "pip install -e ." in str(missing.value)
    assert EchoAlpha  # the spec imports it from the tests package


# ---------------------------------------------------------------------- signal analysis
def _prices_and_factor(market: Path) -> tuple[pd.DataFrame, pd.Series]:
    prices = pd.read_csv(market / "prices.csv")
    prices["timestamp"] = pd.to_datetime(prices["timestamp"], utc=True)
    wide = prices.pivot(index="timestamp", columns="symbol", values="close")
    values = pd.read_csv(market / "values.csv")
    values["timestamp"] = pd.to_datetime(values["timestamp"], utc=True)
    factor = values.set_index(["timestamp", "symbol"])["value"]
    return wide, factor


def test_signal_analysis_of_a_factor_equals_the_configs(market: Path) -> None:
    config = make_config(market, name="sa")
    from_config = signal_analysis(config, horizons=(1, 2, 6), quantiles=3)
    wide, factor = _prices_and_factor(market)
    panel = config_panel(config)
    bars = pd.to_datetime(panel.bars, utc=True)
    factor_result = signal_analysis(factor, wide.loc[bars], horizons=[6, 1, 2], quantiles=3)
    for name in ("ic", "ic_summary", "quantile_returns"):
        pd.testing.assert_frame_equal(getattr(factor_result, name), getattr(from_config, name))
    pd.testing.assert_series_equal(factor_result.rank_autocorrelation,
                                   from_config.rank_autocorrelation)
    # long prices give the same
    long = wide.loc[bars].stack().rename("close").to_frame()
    again = signal_analysis(factor, long, horizons=(1, 2, 6), quantiles=3)
    pd.testing.assert_frame_equal(again.ic, factor_result.ic)
    # the numbers, from their definitions
    by_lag = ic_by_lag_from_arrays(panel.alpha, panel.prices, panel.universe, 6)
    summary = factor_result.ic_summary
    assert list(summary.index) == [1, 2, 6]
    x = by_lag[5][np.isfinite(by_lag[5])]
    assert summary.loc[6, "ic_mean"] == pytest.approx(x.mean())
    assert summary.loc[6, "ic_count"] == x.size
    assert summary.loc[6, "t_stat"] == pytest.approx(x.mean() / x.std(ddof=1) * np.sqrt(x.size))
    assert factor_result.quantile_returns[2].to_numpy() == pytest.approx(
        quantile_returns_from_arrays(panel.alpha, panel.prices, None, 3, 2).to_numpy())
    assert summary.loc[1, "ic_mean"] > 0.1  # the market's value column predicts bar t+1
    t = bars[10]
    wanted = factor.xs(t, level="timestamp").rank().corr(
        factor.xs(bars[9], level="timestamp").rank())  # Spearman: Pearson of ranks
    assert factor_result.rank_autocorrelation[t] == pytest.approx(wanted)


def test_signal_analysis_bad_input(market: Path) -> None:
    wide, factor = _prices_and_factor(market)
    with pytest.raises(TypeError, match="MultiIndex"):
        signal_analysis(factor.reset_index(drop=True), wide)
    with pytest.raises(DataError, match="no value at any"):
        signal_analysis(factor, wide.set_axis(wide.index + pd.Timedelta("30min")))
    with pytest.raises(ValueError, match="horizons"):
        signal_analysis(factor, wide, horizons=(0, 1))
    with pytest.raises(TypeError, match="prices"):
        signal_analysis(make_config(market), wide)
    result = signal_analysis(factor.to_frame("alpha"), wide, horizons=1)
    assert list(result.ic.columns) == [1] and json.dumps(result.ic_summary.shape)


def test_a_loaded_sweep_and_its_validation_say_what_the_notice_says(
    market: Path, tmp_path: Path
) -> None:
    from alphadev.out_of_sample.files import ValidationParameters, validate_sweep
    from alphadev.out_of_sample.summary import summary_text

    save_dir = tmp_path / "noted"
    bt = Backtester(notice="Synthetic data: nothing here is real.")
    bt.add_multiple_configs(make_config(market, name="n"), {"scale": [1.0, -1.0, 0.5]})
    bt.run_all(verbose=False, save_dir=save_dir)
    assert Backtester.load(save_dir).notice == "Synthetic data: nothing here is real."
    validation = validate_sweep(save_dir, ValidationParameters(train="2D", test="1D", blocks=4))
    assert summary_text(validation, save_dir).splitlines()[0] == (
        "NOTE: Synthetic data: nothing here is real.")


def test_a_failure_fixed_by_run_all_no_longer_hides_the_result(
    market: Path, tmp_path: Path
) -> None:
    """The failure marker of a Luigi attempt is obsolete once a later run saves the config."""
    save_dir = tmp_path / "sweep"
    configs = _sweep(market, save_dir)
    assert list(Backtester.load(save_dir).failures) == ["broken"]
    fixed = Backtester()
    fixed.add_config(make_config(market, name="broken"))  # the same name, now working
    fixed.run_all(verbose=False, save_dir=save_dir)
    loaded = Backtester.load(save_dir)
    assert loaded.failures == {}
    assert "broken" in {r.name for r in loaded.results}
    summary = sweep.summarize([*configs[:4], fixed.configs[0]], save_dir)
    assert summary.failed == [] and "broken" in set(summary.table["name"])


@pytest.mark.parametrize("field", ["funding_loader", "beta_loader"])
def test_preflight_checks_the_cost_loaders(market: Path, field: str) -> None:
    """A typo in the funding or beta column fails once before a sweep, not in every config."""
    typo = CSVDataLoader(str(market / "values.csv"), "rat")
    extra = {field: typo, "beta_csv_path": None}
    with pytest.raises(DataError, match=rf"{field} of 2 config\(s\).*has no column 'rat'"):
        preflight.check_loaders([make_config(market, name=n, **extra) for n in ("a", "b")])
