"""alphadev.comparison on its own: rows, the one sweep table, and reading it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.comparison import (
    IDENTITY_COLUMNS,
    comparison_table,
    deflation,
    read_comparison_table,
    read_identities,
    result_row,
    write_comparison,
)
from alphadev.stats import expected_max_sharpe
from tests.conftest import make_config


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list:
    from tests.conftest import write_market

    market = write_market(tmp_path_factory.mktemp("cmp") / "data")
    bt = Backtester()
    bt.add_multiple_configs(make_config(market), param_grid={"scale": [1.0, -1.0]},
                            setting_grid={"trading_fee_rate": [0.0, 1e-3]})
    return bt.run_all(verbose=False)


def test_a_row_is_flat(results) -> None:
    row = result_row(results[0])
    config = results[0].config
    assert row["name"] == config.name and row["fingerprint"] == config.fingerprint()
    assert row["alpha.scale"] == config.alpha_kwargs["scale"]
    assert row["open_quantile"] == config.quantile[0]
    assert row["sharpe"] == results[0].metrics["total"]["sharpe"]
    assert row["long_sharpe"] == results[0].metrics["long"]["sharpe"]
    assert row["ic_mean"] == results[0].metrics["ic_mean"]
    assert row["frequency"] == config.frequency and "total" not in row


def test_the_table_deflates_over_n_trials(results) -> None:
    table = comparison_table(results, n_trials=10)
    assert len(table) == 4 and set(table["n_trials"]) == {10}
    facts = deflation(table)
    # The two fee variants of each scale are one trial; 6 configs without results count
    # one each, so N_eff = 2 + 6 and V is taken across the two clusters' mean Sharpes.
    scales = table["alpha.scale"].to_numpy()
    assert [len(set(table["trial_cluster"][scales == s])) for s in (1.0, -1.0)] == [1, 1]
    assert table["trial_cluster"].nunique() == 2
    assert set(table["n_effective_trials"]) == {8} and facts["n_effective_trials"] == 8
    means = table.groupby("trial_cluster")["sharpe_per_period"].mean().to_numpy()
    variance = float(np.var(means, ddof=1))
    assert facts["n_trials"] == 10
    assert facts["sharpe_variance"] == pytest.approx(variance, rel=1e-12)
    assert facts["expected_max_sharpe"] == pytest.approx(expected_max_sharpe(8, variance))
    fewer = comparison_table(results)  # default: deflated over the results given
    assert set(fewer["n_trials"]) == {4}
    assert not np.allclose(fewer["dsr"], table["dsr"])


def test_metrics_and_sorting(results) -> None:
    table = comparison_table(results, metrics=["sharpe"], sort_by="sharpe", ascending=True)
    assert list(table["sharpe"]) == sorted(table["sharpe"])
    assert "ic_mean" not in table.columns and set(IDENTITY_COLUMNS) <= set(table.columns)
    with pytest.raises(ValueError, match="unknown metrics \\['nope'\\]"):
        comparison_table(results, metrics=["nope"])
    with pytest.raises(ValueError, match="sort_by='nope' is not a column"):
        comparison_table(results, sort_by="nope")


def test_written_and_read_back(results, tmp_path: Path) -> None:
    table = comparison_table(results, sort_by="sharpe")
    path = tmp_path / "comparison.csv"
    write_comparison(table, path)
    back = read_comparison_table(path)
    assert back is not None
    numeric = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
    pd.testing.assert_frame_equal(back[numeric], table[numeric], rtol=1e-12)
    assert list(back["name"]) == list(table["name"])
    assert list(back["fingerprint"]) == list(table["fingerprint"])
    assert read_identities(path) == set(zip(table["name"], table["fingerprint"]))
    assert deflation(back) == pytest.approx(deflation(table))
    assert not [p for p in tmp_path.iterdir() if p.name != "comparison.csv"]


def test_empty_and_old_tables(tmp_path: Path) -> None:
    empty = comparison_table([])
    assert list(empty.columns) == list(IDENTITY_COLUMNS) and empty.empty
    write_comparison(empty, tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text().strip() == ",".join(IDENTITY_COLUMNS)
    assert read_identities(tmp_path / "empty.csv") == set()
    (tmp_path / "old.csv").write_text("name,sharpe\na,1.0\n")  # written before fingerprints
    assert read_identities(tmp_path / "old.csv") is None
    assert read_comparison_table(tmp_path / "old.csv") is None
    assert read_identities(tmp_path / "missing.csv") is None
