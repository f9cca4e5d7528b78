"""``run_sweep`` as run_all and the Luigi tasks see it: failure records, stale markers,
what a run that stops early leaves, and the checks that come before any alpha runs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from alphadev import Backtester, CSVDataLoader, DataError, load_sweep
from alphadev.layout import ResultState, SweepDir
from alphadev.orchestrator import run_config, run_sweep
from alphadev.research import signal_analysis
from alphadev.store import write_json
from alphadev.validation import ParameterError
from tests.alphas import CountingAlpha, FailingAlpha
from tests.conftest import make_config


def test_run_all_records_a_failure_as_the_sweep_does(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="ok"))
    bt.add_config(make_config(market, name="broken", alpha_class=FailingAlpha))
    err = tmp_path / "err.log"
    bt.run_all(verbose=False, save_dir=tmp_path / "runs", err_path=err)
    sweep_dir = SweepDir.of(tmp_path / "runs")
    assert sweep_dir.state(bt.configs[1]) is ResultState.FAILED
    assert sweep_dir.state(bt.configs[0]) is ResultState.DONE
    assert "planted failure" in load_sweep(sweep_dir).failures["broken"]
    assert " attempt " in err.read_text() and "planted failure" in err.read_text()


def test_a_stale_marker_of_a_done_config_is_cleared_by_the_next_run(
    market: Path, tmp_path: Path
) -> None:
    """A task process killed after publishing its result leaves a marker; the next run
    loads the result as done, and the marker must not hide it from load_sweep."""
    config = make_config(market, name="c")
    sweep_dir = SweepDir.of(tmp_path)
    run_sweep([config], sweep_dir)
    sweep_dir.failures.mkdir()
    write_json(sweep_dir.failure("c"), {"name": "c", "report": "the process died"})
    assert list(load_sweep(tmp_path).failures) == ["c"]
    run = run_sweep([config], sweep_dir)
    assert run.loaded == 1 and run.results[0] is not None
    assert not sweep_dir.failure("c").exists()
    assert [r.name for r in load_sweep(tmp_path).results] == ["c"]


def test_a_preflight_error_keeps_the_previous_results(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="first"))
    previous = bt.run_all(verbose=False)
    typo = CSVDataLoader(str(market / "values.csv"), "vale")
    bt.add_config(make_config(market, name="typo", alpha_loaders=[typo]))
    with pytest.raises(DataError):
        bt.run_all(verbose=False)
    assert bt.results == previous and bt.results[0] is not None


def test_run_config_records_a_bad_data_file_as_that_configs_failure(
    market: Path, tmp_path: Path
) -> None:
    """A Luigi task: no preflight, so the config fails on its own and is recorded."""
    typo = CSVDataLoader(str(market / "values.csv"), "vale")
    run = run_config(make_config(market, name="typo", alpha_loaders=[typo]), tmp_path)
    assert "vale" in run.failures["typo"]
    assert SweepDir.of(tmp_path).failure("typo").exists()
    assert "vale" in SweepDir.of(tmp_path).errors_log.read_text()


def test_an_unreadable_failures_folder_does_not_break_loading(
    market: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_sweep([make_config(market, name="c")], SweepDir.of(tmp_path))
    (tmp_path / ".failed").write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        loaded = load_sweep(tmp_path)
    assert [r.name for r in loaded.results] == ["c"] and loaded.failures == {}
    assert not SweepDir.of(tmp_path).has_failures()


@pytest.mark.parametrize("bad", [{"horizons": [0]}, {"quantiles": 0}])
def test_signal_analysis_checks_its_arguments_before_the_alpha_runs(
    bad: dict, market: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.log"
    config = make_config(market, name="c", alpha_class=CountingAlpha,
                         alpha_kwargs={"log_path": str(calls)})
    with pytest.raises((ParameterError, ValueError)):
        signal_analysis(config, **bad)
    assert not calls.exists()
