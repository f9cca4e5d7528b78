"""Results folders: atomic publish, racing writers, recovery after kill -9."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.layout import TMP_PREFIX, TRASH_PREFIX, check_folder, saved_fingerprint
from alphadev.results import DamagedResultError, load_result
from alphadev.runner import run_backtest
from alphadev.store import recover
from tests.conftest import make_config


def _save_after_barrier(market: str, save_dir: str, barrier) -> None:
    result = run_backtest(make_config(Path(market)))
    barrier.wait()
    result.save(save_dir)


def test_racing_writers_leave_one_whole_folder(market: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "out"
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_save_after_barrier, args=(str(market), str(save_dir), barrier))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sorted(p.name for p in save_dir.iterdir() if not p.name.startswith(".")) == ["base"]
    assert not [p for p in save_dir.iterdir() if p.name.startswith((TMP_PREFIX, TRASH_PREFIX))]
    loaded = load_result(save_dir / "base")
    assert len(loaded.sequences) == 8 * 24
    assert saved_fingerprint(save_dir / "base") == make_config(market).fingerprint()


def test_recover_removes_dead_temporaries_and_restores_trash(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    leftover = tmp_path / f"{TMP_PREFIX}cfg~{host}~{dead}~abcd1234"
    (leftover / "sequences").mkdir(parents=True)
    alive = tmp_path / f"{TMP_PREFIX}other~{host}~{os.getpid()}~abcd1234"
    alive.mkdir()
    trash = tmp_path / f"{TRASH_PREFIX}kept~{host}~{dead}~abcd1234"
    (trash / "sequences").mkdir(parents=True)
    (trash / "config.json").write_text(json.dumps({"fingerprint": "x"}))
    recover(tmp_path)
    assert not leftover.exists()
    assert alive.exists()  # a live writer's folder is left alone
    assert (tmp_path / "kept" / "config.json").exists()  # the renamed-aside folder is back
    assert not trash.exists()


def test_replacing_a_stale_folder(market: Path, tmp_path: Path) -> None:
    save_dir = tmp_path / "out"
    bt = Backtester()
    bt.add_config(make_config(market, name="cfg"))
    bt.run_all(verbose=False, save_dir=save_dir)
    old = pd.read_parquet(save_dir / "cfg" / "sequences" / "returns.parquet")
    bt = Backtester()
    bt.add_config(make_config(market, name="cfg", trading_fee_rate=0.0))
    bt.run_all(verbose=False, save_dir=save_dir)
    new = pd.read_parquet(save_dir / "cfg" / "sequences" / "returns.parquet")
    assert new["fees"].sum() == 0.0 and old["fees"].sum() > 0.0
    assert not [p for p in save_dir.iterdir() if p.name.startswith((TMP_PREFIX, TRASH_PREFIX))]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_config(path: Path) -> None:
    saved = json.loads(path.read_text())
    saved["trading_fee_rate"] = 0.0  # a hand edit: the fingerprint is left as it was
    path.write_text(json.dumps(saved, indent=2))


CORRUPTIONS = {
    "truncated_returns": lambda f: _truncate(f / "sequences" / "returns.parquet"),
    "deleted_positions": lambda f: (f / "sequences" / "positions.parquet").unlink(),
    "missing_metrics": lambda f: (f / "metrics.json").unlink(),
    "invalid_metrics": lambda f: (f / "metrics.json").write_text('{"total": {"sharpe": 1.'),
    "empty_metrics": lambda f: (f / "metrics.json").write_text(""),
    "edited_config": lambda f: _edit_config(f / "config.json"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_run_all_recomputes_a_damaged_folder(
    market: Path, tmp_path: Path, corruption: str, caplog: pytest.LogCaptureFixture
) -> None:
    save_dir = tmp_path / "out"
    configs = [make_config(market, name=f"cfg{k}", quantile=(0.2 + 0.1 * k, 0.2 + 0.1 * k))
               for k in range(2)]

    def run() -> list:
        bt = Backtester()
        for config in configs:
            bt.add_config(config)
        return bt.run_all(verbose=False, save_dir=save_dir)

    clean = run()
    expected = pd.read_parquet(save_dir / "cfg1" / "sequences" / "returns.parquet")
    untouched = (save_dir / "cfg0" / "config.json").stat().st_mtime_ns
    CORRUPTIONS[corruption](save_dir / "cfg1")
    with caplog.at_level(logging.WARNING):
        again = run()
    assert f"results folder {save_dir / 'cfg1'} is damaged" in caplog.text
    assert "recomputing it" in caplog.text
    assert [r.metrics for r in again] == [r.metrics for r in clean]
    pd.testing.assert_frame_equal(
        pd.read_parquet(save_dir / "cfg1" / "sequences" / "returns.parquet"), expected
    )
    loaded = load_result(save_dir / "cfg1")
    assert loaded.config_dict["trading_fee_rate"] == configs[1].trading_fee_rate
    assert len(loaded.positions) > 0
    assert (save_dir / "cfg0" / "config.json").stat().st_mtime_ns == untouched


def test_publish_replaces_a_damaged_folder_with_the_same_fingerprint(
    market: Path, tmp_path: Path
) -> None:
    save_dir = tmp_path / "out"
    result = run_backtest(make_config(market))
    result.save(save_dir)
    (save_dir / "base" / "metrics.json").write_text("")
    assert saved_fingerprint(save_dir / "base") is None
    run_backtest(make_config(market)).save(save_dir)  # same fingerprint, whole this time
    assert json.loads((save_dir / "base" / "metrics.json").read_text())["total"]
    assert saved_fingerprint(save_dir / "base") == make_config(market).fingerprint()


def test_loading_a_sweep_skips_a_damaged_folder_and_says_so(
    market: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Loading recomputes nothing: the log must say the folder is skipped."""
    for k in range(2):
        run_backtest(make_config(market, name=f"cfg{k}")).save(tmp_path)
    _truncate(tmp_path / "cfg1" / "sequences" / "returns.parquet")
    with caplog.at_level(logging.WARNING):
        loaded = Backtester.load(tmp_path)
    assert [r.name for r in loaded.results] == ["cfg0"]
    message = next(r.getMessage() for r in caplog.records if "cfg1" in r.getMessage())
    assert "skipped" in message and "recomputing" not in message


def test_load_result_names_the_damage(market: Path, tmp_path: Path) -> None:
    run_backtest(make_config(market)).save(tmp_path)
    _truncate(tmp_path / "base" / "sequences" / "returns.parquet")
    with pytest.raises(DamagedResultError, match=r"base.*sequences/returns.parquet has \d+ bytes"):
        load_result(tmp_path / "base")


def test_comparison_table_carries_fingerprints(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="a"))
    bt.add_config(make_config(market, name="b", trading_fee_rate=0.0))
    bt.run_all(verbose=False)
    table = bt.get_comparison_table(metrics=["sharpe"])
    assert list(table.columns[:3]) == ["name", "alpha_class", "fingerprint"]
    assert list(table["fingerprint"]) == [c.fingerprint() for c in bt.configs]
    bt.save_results(tmp_path / "out")
    saved = pd.read_csv(tmp_path / "out" / "comparison.csv", dtype={"fingerprint": str})
    assert list(saved["fingerprint"]) == [c.fingerprint() for c in bt.configs]
    empty = Backtester()
    empty.save_results(tmp_path / "none")
    header = pd.read_csv(tmp_path / "none" / "comparison.csv")
    assert list(header.columns) == ["name", "alpha_class", "fingerprint"] and header.empty


def test_saving_a_saved_result_elsewhere_keeps_the_first_folder(
    market: Path, tmp_path: Path
) -> None:
    bt = Backtester()
    bt.add_config(make_config(market))
    bt.run_all(verbose=False, save_dir=tmp_path / "a")
    bt.save_results(tmp_path / "b")
    for root in ("a", "b"):
        assert check_folder(tmp_path / root / "base").problem is None
        assert len(load_result(tmp_path / root / "base").positions) > 0
