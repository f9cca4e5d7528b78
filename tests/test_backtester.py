"""Backtester.run_all: pool vs sequential, failures, killed workers, resume, tables."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.errors import BacktestError
from tests.alphas import (
    CountingAlpha,
    FailingAlpha,
    SelfKillingAlpha,
    WaitForFileAlpha,
)
from tests.conftest import make_config

REPO = Path(__file__).resolve().parents[1]


def _grid(market: Path, **base_overrides) -> Backtester:
    bt = Backtester()
    bt.add_multiple_configs(
        make_config(market, **base_overrides),
        param_grid={"scale": [1.0, -1.0]},
        setting_grid={"quantile": [(0.2, 0.2), (0.2, 0.4)], "trading_fee_rate": [0.0, 5e-4]},
    )
    return bt


def _assert_same(a, b) -> None:
    assert a.name == b.name
    assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)
    pd.testing.assert_frame_equal(a.sequences, b.sequences)
    pd.testing.assert_frame_equal(a.positions, b.positions)
    pd.testing.assert_frame_equal(a.trades, b.trades)


def test_seed_example_runs_unchanged(tmp_path: Path) -> None:
    """The user's design note, verbatim, with its three CSV files."""
    seed_note = (REPO.parent / "shared" / "seed" / "multiprocessing-in-backtester.md")
    example = (REPO / "examples" / "seed_example.py").read_text()
    if seed_note.exists():  # the example file is the note's code block, to the letter
        assert example in seed_note.read_text()
    shutil.copy(REPO / "examples" / "seed_example.py", tmp_path / "example.py")
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_seed_data.py"), str(tmp_path)], check=True
    )
    proc = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("base__quantile=0.1,0.1", "base__quantile=0.2,0.25"):
        folder = tmp_path / "runs" / "mp" / name / "sequences"
        assert (folder / "returns.parquet").is_file()
        returns = pd.read_parquet(folder / "returns.parquet")
        assert len(returns) == 31 * 24
    assert not (tmp_path / "errors.log").exists()


def test_pool_equals_sequential(market: Path, tmp_path: Path) -> None:
    sequential = _grid(market).run_all(verbose=False)
    pooled = _grid(market).run_all(verbose=False, num_processes=2, save_dir=tmp_path / "out")
    assert len(sequential) == len(pooled) == 8
    assert all(r is not None for r in sequential + pooled)
    for a, b in zip(sequential, pooled):
        _assert_same(a, b)


def test_sequential_save_overlap_keeps_every_result(market: Path, tmp_path: Path) -> None:
    """Each result is saved while the next config runs: all are saved, none is lost,
    and the results read back from disk equal an in-memory run."""
    in_memory = _grid(market).run_all(verbose=False)
    saved = _grid(market).run_all(verbose=False, save_dir=tmp_path / "out")
    for a, b in zip(in_memory, saved):
        assert b.path == tmp_path / "out" / a.name
        assert b._sequences is None  # dropped after saving: memory stays flat
        _assert_same(a, b)
        assert isinstance(b._sequences.trades, Path)  # long tables are read per use


def test_num_processes_validation(market: Path) -> None:
    bt = _grid(market)
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match="num_processes"):
            bt.run_all(verbose=False, num_processes=bad)


def _with_failure(market: Path, tmp_path: Path, marker: Path) -> Backtester:
    bt = Backtester()
    bt.add_config(make_config(market, name="fails", alpha_class=FailingAlpha))
    for k in range(4):
        bt.add_config(
            make_config(
                market, name=f"waits{k}", alpha_class=WaitForFileAlpha,
                alpha_kwargs={"marker": str(marker), "timeout": 120.0},
            )
        )
    return bt


@pytest.mark.parametrize("num_processes", [1, 2])
def test_stop_on_error_stops_early_and_raises(
    market: Path, tmp_path: Path, num_processes: int
) -> None:
    marker = tmp_path / "never-created"
    bt = _with_failure(market, tmp_path, marker)
    with pytest.raises(BacktestError, match="fails"):
        bt.run_all(
            verbose=False, stop_on_error=True, num_processes=num_processes,
            save_dir=tmp_path / "out",
        )
    # Nothing after the failure completed: the waiting configs were never released.
    assert not any((tmp_path / "out" / f"waits{k}").exists() for k in range(4))


def test_failures_are_none_and_logged(market: Path, tmp_path: Path, capsys) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="good"))
    bt.add_config(make_config(market, name="bad", alpha_class=FailingAlpha))
    err = tmp_path / "errors.log"
    results = bt.run_all(verbose=True, err_path=err, num_processes=2)
    assert results[0] is not None and results[1] is None
    log = err.read_text()
    assert "config 'bad' failed" in log
    assert "Traceback (most recent call last)" in log
    assert "planted failure in FailingAlpha.compute" in log
    assert "'good'" not in log
    assert "planted failure" in capsys.readouterr().err


def test_killed_worker_is_a_failed_config(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="first"))
    bt.add_config(make_config(market, name="killed", alpha_class=SelfKillingAlpha))
    bt.add_config(make_config(market, name="after"))
    bt.add_config(make_config(market, name="last"))
    err = tmp_path / "errors.log"
    results = bt.run_all(verbose=False, num_processes=2, err_path=err)
    assert [r is None for r in results] == [False, True, False, False]
    assert "config 'killed' failed" in err.read_text()
    assert "SIGKILL" in err.read_text()


def test_rerun_skips_done_and_recomputes_changed(market: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.log"
    save_dir = tmp_path / "out"

    def build(fee_for_b: float, scale_for_b: float = 2.0) -> Backtester:
        bt = Backtester()
        bt.add_config(
            make_config(market, name="a", alpha_class=CountingAlpha,
                        alpha_kwargs={"log_path": str(calls)})
        )
        bt.add_config(
            make_config(
                market, name="b", alpha_class=CountingAlpha,
                alpha_kwargs={"log_path": str(calls), "scale": scale_for_b},
                trading_fee_rate=fee_for_b,
            )
        )
        return bt

    first = build(1e-4).run_all(verbose=False, save_dir=save_dir)
    assert len(calls.read_text().splitlines()) == 2
    mtime_a = (save_dir / "a" / "config.json").stat().st_mtime_ns

    again = build(1e-4).run_all(verbose=False, save_dir=save_dir)
    assert len(calls.read_text().splitlines()) == 2  # nothing recomputed
    for a, b in zip(first, again):
        _assert_same(a, b)

    changed = build(2e-4).run_all(verbose=False, save_dir=save_dir, num_processes=2)
    # "b" is recomputed from its cached panel: a fee is not an alpha input.
    assert len(calls.read_text().splitlines()) == 2
    assert (save_dir / "a" / "config.json").stat().st_mtime_ns == mtime_a
    saved = json.loads((save_dir / "b" / "config.json").read_text())
    assert saved["trading_fee_rate"] == 2e-4
    assert changed[1].metrics["total_fees"] != first[1].metrics["total_fees"]

    build(2e-4, scale_for_b=3.0).run_all(verbose=False, save_dir=save_dir)
    assert len(calls.read_text().splitlines()) == 3  # a new alpha parameter: computed


def test_slow_job_warning_once(market: Path, tmp_path: Path, caplog) -> None:
    """The warning itself releases the job, so no sleep or timing is involved."""
    marker = tmp_path / "released"

    class Release(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "running for more than" in record.getMessage():
                marker.touch()

    handler = Release()
    logging.getLogger("alphadev").addHandler(handler)
    try:
        for processes in (1, 2):
            marker.unlink(missing_ok=True)
            caplog.clear()
            bt = Backtester(slow_job_seconds=0.01)
            bt.add_config(
                make_config(
                    market, name="slow", alpha_class=WaitForFileAlpha,
                    # a distinct parameter per round, so no cached panel skips the wait
                    alpha_kwargs={"marker": str(marker), "timeout": 60.0 + processes},
                )
            )
            bt.add_config(make_config(market, name="fast"))
            with caplog.at_level(logging.WARNING, logger="alphadev"):
                results = bt.run_all(verbose=False, num_processes=processes)
            assert results[0] is not None
            warnings = [r for r in caplog.records if "'slow'" in r.getMessage()]
            assert len(warnings) == 1
    finally:
        logging.getLogger("alphadev").removeHandler(handler)


def test_comparison_best_save_and_load(market: Path, tmp_path: Path) -> None:
    bt = _grid(market)
    results = bt.run_all(verbose=False)
    table = bt.get_comparison_table(sort_by="sharpe")
    assert len(table) == 8
    assert list(table["sharpe"]) == sorted(table["sharpe"], reverse=True)
    assert {"name", "alpha_class", "alpha.scale", "open_quantile", "trading_fee_rate",
            "sharpe", "long_sharpe", "short_sharpe", "ic_mean", "avg_turnover"} <= set(table)
    best = bt.get_best_config("sharpe")
    assert best.metrics["total"]["sharpe"] == table["sharpe"].max()
    worst = bt.get_best_config("max_drawdown", maximize=False)
    assert worst.metrics["total"]["max_drawdown"] == table["max_drawdown"].min()
    subset = bt.get_comparison_table(metrics=["sharpe", "ic_mean"])
    assert "sortino" not in subset and "sharpe" in subset

    out = bt.save_results(tmp_path / "saved")
    comparison = pd.read_csv(out / "comparison.csv")
    assert sorted(comparison["name"]) == sorted(r.name for r in results)
    loaded = Backtester.load_result(out / results[0].name)
    assert loaded.config is None and loaded.name == results[0].name
    pd.testing.assert_frame_equal(loaded.sequences, results[0].sequences)
    pd.testing.assert_frame_equal(loaded.trades, results[0].trades)
    assert results[0].name in str(loaded)
    metrics_text = (out / results[0].name / "metrics.json").read_text()
    assert "NaN" not in metrics_text and "Infinity" not in metrics_text


def test_equity_and_pnl_are_consistent(market: Path) -> None:
    result = Backtester()
    result.add_config(make_config(market))
    (res,) = result.run_all(verbose=False)
    seq = res.sequences
    np.testing.assert_allclose(seq["pnl"], seq["gross"] - seq["fees"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(seq["equity"], np.cumprod(1 + seq["pnl"]), rtol=1e-12)
    # every symbol has a price and an alpha at every bar: nothing is ever closed by force
    assert res.metadata["forced_closes"] == 0


def test_run_all_save_dir_writes_comparison_for_validate(market, tmp_path) -> None:
    """A script's sweep is validated as a Luigi one: comparison.csv with fingerprints,
    written by run_all itself (no save_results call)."""
    from alphadev.comparison import read_comparison_table

    bt = Backtester()
    bt.add_multiple_configs(make_config(market), {}, {"quantile": [(0.2, 0.2), (0.4, 0.4)]})
    out = tmp_path / "out"
    results = bt.run_all(verbose=False, save_dir=out)
    table = read_comparison_table(out / "comparison.csv")
    assert table is not None
    assert set(zip(table["name"], table["fingerprint"])) == {
        (r.name, r.fingerprint) for r in results if r is not None}
    assert int(table["n_trials"].iloc[0]) == 2
    run = subprocess.run(
        [sys.executable, "-m", "alphadev", "validate", str(out), "--train", "2D", "--test",
         "1D", "--blocks", "4"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "alphadev validate: 2 configs" in run.stdout
