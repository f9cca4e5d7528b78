"""The store's single-file writes and the error log (folders: tests/test_results.py)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import re
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev.store import append_error_log, atomic_write, read_json, write_json


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        pd.DataFrame({"a": [1, 2]}).to_csv(tmp, index=False)
        assert target.read_text() == "old\n"  # readers see the old file until the end
    assert pd.read_csv(target)["a"].tolist() == [1, 2]
    assert _leftovers(tmp_path) == []


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError, match="writer died"), atomic_write(target) as tmp:
        tmp.write_text('{"v": 2, "half')
        raise RuntimeError("writer died")
    assert read_json(target) == {"v": 1}
    assert _leftovers(tmp_path) == []


def test_temporary_names_carry_host_and_pid(tmp_path: Path) -> None:
    target = tmp_path / "panel.npz"
    with atomic_write(target) as tmp, open(tmp, "wb") as fh:
        name = tmp.name
        np.savez(fh, x=np.arange(3))
    assert re.fullmatch(
        rf"\.panel\.npz~{re.escape(socket.gethostname())}~{os.getpid()}~[0-9a-f]{{8}}\.tmp", name
    )
    with np.load(target) as data:
        assert data["x"].tolist() == [0, 1, 2]


def test_first_wins_keeps_the_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "prices.csv"
    with atomic_write(target, first_wins=True) as tmp:
        tmp.write_text("first\n")
    with atomic_write(target, first_wins=True) as tmp:
        tmp.write_text("second\n")
    assert target.read_text() == "first\n"
    assert _leftovers(tmp_path) == []


def _write_many(target: str, k: int, barrier, first_wins: bool) -> None:
    barrier.wait()
    body = f"{k}\n" * 200_000  # large enough for the writes to overlap
    for _ in range(5):
        with atomic_write(target, first_wins=first_wins) as tmp:
            tmp.write_text(body)


@pytest.mark.parametrize("first_wins", [False, True])
def test_concurrent_writers_leave_one_complete_file(tmp_path: Path, first_wins: bool) -> None:
    target = tmp_path / "comparison.csv"
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_write_many, args=(str(target), k, barrier, first_wins))
             for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = target.read_text().splitlines()
    assert len(lines) == 200_000 and len(set(lines)) == 1  # one writer's whole file
    assert _leftovers(tmp_path) == []


def test_append_error_log_creates_the_folder_and_appends(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "new" / "errors.log"
    assert append_error_log(log, "first report")
    assert append_error_log(log, "second report", header=" attempt abc")
    text = log.read_text()
    assert text.index("first report") < text.index("second report")
    headers = [line for line in text.splitlines() if line.startswith("=== ")]
    assert len(headers) == 2 and headers[1].endswith(" attempt abc")


def test_unwritable_error_log_is_reported_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    caplog.set_level(logging.WARNING)
    assert append_error_log(blocker / "errors.log", "report 1") is False
    assert append_error_log(blocker / "errors.log", "report 2") is False
    said = [r for r in caplog.records if "cannot write the error log" in r.getMessage()]
    assert len(said) == 1
