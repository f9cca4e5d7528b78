"""The headline of docs/semantics.md#next-bar: an edge that dies one bar later is said
to be fragile wherever the tool gives a verdict, and a persistent one is not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.comparison import leaderboard, read_comparison_table
from alphadev.report import build_report
from alphadev.runner import run_backtest
from tests.conftest import SYMBOLS, make_config


def _write(folder: Path, returns: np.ndarray, value: np.ndarray) -> Path:
    """Hourly closes from per-bar returns and a 'value' column, both (bars, symbols)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamps = pd.date_range("2024-01-01", periods=len(returns), freq="1h", tz="UTC")
    iso = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
    close = 100.0 * np.exp(np.cumsum(returns, axis=0))
    prices = [pd.DataFrame({"timestamp": iso, "symbol": s, "close": close[:, k]})
              for k, s in enumerate(SYMBOLS)]
    values = [pd.DataFrame({"timestamp": iso, "symbol": s, "value": value[:, k]})
              for k, s in enumerate(SYMBOLS)]
    pd.concat(prices).to_csv(folder / "prices.csv", index=False)
    pd.concat(values).to_csv(folder / "values.csv", index=False)
    pd.DataFrame({"symbol": SYMBOLS, "beta": 1.0, "status": "ok"}).to_csv(
        folder / "beta.csv", index=False)
    return folder


def reversal_market(folder: Path, bars: int = 240, seed: int = 1) -> Path:
    """Returns revert within one bar (r_t = -0.6 r_{t-1} + e); 'value' is minus the bar's
    own return: a strong edge at execution_delay 0 that turns negative one bar later."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.01, (bars, len(SYMBOLS)))
    returns = np.zeros_like(noise)
    for t in range(bars):
        returns[t] = noise[t] - (0.6 * returns[t - 1] if t else 0.0)
    return _write(folder, returns, -returns)


def persistent_market(folder: Path, bars: int = 240, seed: int = 2) -> Path:
    """Each symbol drifts by a slowly changing mean that 'value' reveals: the edge
    lasts for many bars."""
    rng = np.random.default_rng(seed)
    drift = np.zeros((bars, len(SYMBOLS)))
    for t in range(1, bars):
        drift[t] = 0.98 * drift[t - 1] + rng.normal(0.0, 0.001, len(SYMBOLS))
    returns = drift + rng.normal(0.0, 0.02, drift.shape)
    return _write(folder, returns, drift)


@pytest.fixture
def reversal(tmp_path: Path) -> Path:
    return reversal_market(tmp_path / "reversal")


def test_an_in_bar_edge_is_fragile_and_its_next_bar_is_the_delayed_config(reversal):
    now = run_backtest(make_config(reversal, name="now"))
    later = run_backtest(make_config(reversal, name="later", execution_delay=1))
    sharpe = now.metrics["total"]["sharpe"]
    assert sharpe > 5 and now.metrics["sharpe_next_bar"] < 0
    # The next-bar pass is the delayed config itself, over the same bars.
    assert now.metrics["sharpe_next_bar"] == pytest.approx(later.metrics["total"]["sharpe"],
                                                           rel=1e-9)
    assert now.metrics["total_return_next_bar"] == pytest.approx(
        later.metrics["total"]["cumulative_return"], rel=1e-9)
    (warning,) = [w for w in now.metadata["warnings"] if "fragile" in w]
    assert "'now'" in warning and f"{sharpe:.2f}" in warning and "execution_delay=1" in warning
    assert now.stats(numeric_only=False)["fragile"] is True and now.stats()["fragile"] == 1.0
    assert later.stats()["sharpe"] == pytest.approx(later.metrics["total"]["sharpe"])


def test_a_persistent_edge_is_not_fragile(tmp_path: Path):
    result = run_backtest(make_config(persistent_market(tmp_path / "p"), name="steady"))
    assert result.metrics["total"]["sharpe"] > 2
    assert result.metrics["sharpe_next_bar"] > 0.5 * result.metrics["total"]["sharpe"]
    assert not [w for w in result.metadata["warnings"] if "fragile" in w]
    assert result.stats(numeric_only=False)["fragile"] is False


def test_leaderboards_and_report_say_the_best_config_is_fragile(
    reversal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steady = persistent_market(tmp_path / "p")
    bt = Backtester()
    bt.add_config(make_config(reversal, name="in_bar"))
    bt.add_config(make_config(steady, name="steady"))
    out = tmp_path / "out"
    bt.run_all(save_dir=out, verbose=True)
    board = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in board.splitlines()
            if line.split() and line.split()[0] in ("in_bar", "steady")}
    assert "!" in rows["in_bar"] and "!" not in rows["steady"]
    assert "! 1 of the top 2 configs lose more than 50% of their Sharpe one bar later" in board

    bt.save_results(out)
    table = read_comparison_table(out / "comparison.csv")
    assert table is not None
    assert dict(zip(table["name"], table["fragile"].astype(str))) == {
        "in_bar": "True", "steady": "False"}
    assert "! 1 of the top 2" in leaderboard(table)  # the same verdict read back from CSV

    page = build_report(out).read_text()
    verdict = page[page.index("class='verdict'"):]
    verdict = verdict[:verdict.index("</p>")]
    assert "The best config is fragile" in verdict


def test_a_result_saved_before_the_next_bar_existed_is_unknown(reversal, tmp_path):
    result = run_backtest(make_config(reversal, name="old"))
    del result.metrics["sharpe_next_bar"], result.metrics["total_return_next_bar"]
    result.save(tmp_path)  # as an older alphadev saved it: no next-bar keys
    assert "sharpe_next_bar" not in json.loads((tmp_path / "old" / "metrics.json").read_text())
    loaded = Backtester.load(tmp_path)
    row = loaded.results[0].stats(numeric_only=False)
    assert row["fragile"] is None and row["sharpe_next_bar"] is None
    assert np.isnan(loaded.results[0].stats()["sharpe_next_bar"])
    text = leaderboard(loaded.get_comparison_table())
    assert "? 1 of the top 1 configs were saved by an older alphadev" in text


def test_validate_never_says_a_fragile_selection_holds_up(reversal, tmp_path):
    """A sweep of in-bar configs whose ranks persist out of sample: PBO alone would say
    "holds up"; the verdict must name the fragility instead."""
    bt = Backtester()
    for k, quantile in enumerate([(0.2, 0.2), (0.4, 0.4), (0.5, 0.5), (0.3, 0.3)]):
        bt.add_config(make_config(reversal, name=f"q{k}", quantile=quantile))
    out = tmp_path / "out"
    bt.run_all(save_dir=out, verbose=False)
    bt.save_results(out)
    run = subprocess.run(
        [sys.executable, "-m", "alphadev", "validate", str(out), "--train", "2D", "--test",
         "1D", "--blocks", "4"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("verdict:")]
    assert "holds up" not in line.replace("does not hold up", "")
    assert "FRAGILE: the in-sample best" in line and "one bar later" in line
    saved = json.loads((out / "validation" / "pbo.json").read_text())
    assert saved["in_sample_best_next_bar"]["fragile"] is True


def test_validate_judges_at_the_most_pessimistic_market_setting(reversal, tmp_path):
    """execution_delay and fees describe the market: the sweep's delay-0 configs are not
    selected over; the selection is judged among the delay-1, highest-fee configs."""
    from alphadev.out_of_sample.files import (
        ValidationParameters,
        sweep_identities,
        validation_is_current,
    )

    bt = Backtester()
    bt.add_multiple_configs(make_config(reversal), {}, {
        "quantile": [(0.2, 0.2), (0.4, 0.4)], "execution_delay": [0, 1],
        "trading_fee_rate": [0.0, 4.5e-4]})
    out = tmp_path / "out"
    bt.run_all(save_dir=out, verbose=False)
    run = subprocess.run(
        [sys.executable, "-m", "alphadev", "validate", str(out), "--train", "2D", "--test",
         "1D", "--blocks", "4"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert ("judged at the most pessimistic of the sweep's 4 market settings: "
            "execution_delay=1, trading_fee_rate=0.00045") in run.stdout
    saved = json.loads((out / "validation" / "pbo.json").read_text())
    judged = {r.name for r in bt.results if r is not None
              and r.config_dict.get("execution_delay") == 1
              and r.config_dict["trading_fee_rate"] == 4.5e-4}
    assert len(judged) == 2
    assert set(saved["realism"]["configs_at_other_settings"]) == {
        r.name for r in bt.results if r is not None} - judged
    assert saved["in_sample_best_config"] in judged
    (verdict,) = [x for x in run.stdout.splitlines() if x.startswith("verdict:")]
    assert "holds up" not in verdict.replace("does not hold up", "")
    # The build counts as current for the whole sweep (a Validate rerun runs nothing).
    params = ValidationParameters(train="2D", test="1D", blocks=4)
    assert validation_is_current(out, params, sweep_identities(out))
