"""Results folders: atomic publish, racing writers, recovery after kill -9."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd

from alphadev import Backtester
from alphadev.engine.runner import run_backtest
from alphadev.results import TMP_PREFIX, TRASH_PREFIX, load_result, recover, saved_fingerprint
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
