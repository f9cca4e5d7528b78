"""The results store: every write under ``save_dir`` is atomic and safe to share.

A ``save_dir`` may be shared by several processes and machines (over NFS), so
temporary names carry host, pid and a random part (``owner_tag``) and no two writers
ever touch the same temporary file.

* ``atomic_write``: one file, written under a temporary name next to it, fsynced and
  renamed into place (or, for data that must not change once read, linked so the first
  writer wins).  Readers see the old file or the new one, never half of one.
* ``building_dir`` / ``publish_dir`` / ``recover``: one results folder, built under
  ``.tmp-{name}~host~pid~random``, renamed into place under a per-name lock
  (``name_lock``), with a renamed-aside old folder put back after a kill
  (docs/semantics.md#results-on-disk).
* Where each file goes, and whether a folder is whole (the manifest in
  ``config.json``), is ``alphadev.layout``'s.
* ``append_error_log``: failure reports, which must never abort the run that failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alphadev.layout import TMP_PREFIX, TRASH_PREFIX, SweepDir, check_folder, owner_tag
from alphadev.metrics import json_safe

fcntl: Any
try:
    import fcntl
except ImportError:  # Windows: renames are still atomic, writers are not serialised
    fcntl = None

log = logging.getLogger(__name__)

RUN_LOCK_SUFFIX = "~run"  # '~' is in no config name: never another name's lock

# ---------------------------------------------------------------------- single files
@contextlib.contextmanager
def atomic_write(target: str | os.PathLike, first_wins: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target`` for any writer (``open``, ``np.savez``
    on a file object, ``to_csv``, ``to_parquet``); when the block succeeds the file is
    fsynced and renamed onto ``target``.

    With ``first_wins`` an existing ``target`` is kept (the new file is linked, not
    renamed): for data that others may already have read.  The temporary file is
    removed in every case, also when the writer raises.
    """
    final = Path(target)
    tmp = final.with_name(f".{final.name}{owner_tag()}.tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if first_wins:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, final)
        else:
            os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """``data`` to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """``obj`` as indented JSON, atomically; NaN and inf become ``null``."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n"
    write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ---------------------------------------------------------------------- error log
_UNWRITABLE: set[str] = set()  # logs already reported as unwritable in this process


def append_error_log(path: str | os.PathLike, report: str, header: str = "") -> bool:
    """Append ``report`` under a timestamped ``===`` line (followed by ``header``),
    creating the folder; False when it could not be written.

    A log that cannot be written (a folder that cannot be created, read-only, disk
    full) is reported once through ``logging``: the run goes on and keeps its results.
    """
    target = Path(path)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(f"=== {stamp}{header}\n{report}\n")
    except OSError as exc:
        key = str(target.resolve(strict=False))
        if key not in _UNWRITABLE:
            _UNWRITABLE.add(key)
            log.warning(
                "cannot write the error log %s (%s); failures are reported here instead",
                target, exc,
            )
        return False
    return True


# ---------------------------------------------------------------------- results folders
@contextlib.contextmanager
def building_dir(save_dir: Path, name: str) -> Iterator[Path]:
    """A temporary folder next to the final one; removed if the block fails."""
    save_dir.mkdir(parents=True, exist_ok=True)
    tmp = SweepDir(save_dir).building(name)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def name_lock(save_dir: Path, name: str) -> Iterator[None]:
    """Serialise publishers of one name (across processes sharing the filesystem)."""
    if fcntl is None:
        yield
        return
    path = SweepDir(Path(save_dir)).lock(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def run_lock(save_dir: Path, name: str) -> Iterator[None]:
    """Held while a process computes ``name``: a second process waits, then finds the
    result done instead of computing it again.  The kernel drops the lock when the
    holder dies, even by ``kill -9``."""
    with name_lock(save_dir, f"{name}{RUN_LOCK_SUFFIX}"):
        yield


def is_running(save_dir: Path, name: str) -> bool:
    """Whether some live process holds ``name``'s run lock right now."""
    if fcntl is None:
        return False
    path = SweepDir(Path(save_dir)).lock(f"{name}{RUN_LOCK_SUFFIX}")
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


def publish_dir(tmp: Path, final: Path, fingerprint: str) -> bool:
    """Move ``tmp`` to ``final`` in one rename; False if a whole result with the same
    fingerprint was already there (a damaged one is replaced).

    A stale ``final`` is first renamed aside; ``recover`` puts it back should the
    process die between the two renames, so a reader always sees a whole folder.
    """
    _fsync_dir(tmp)
    with name_lock(final.parent, final.name):
        if check_folder(final).fingerprint == fingerprint:
            return False
        trash = None
        if final.exists():
            trash = SweepDir(final.parent).trash(final.name)
            os.rename(final, trash)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return True


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(save_dir: str | os.PathLike) -> None:
    """Clean up after killed writers: drop their temporary folders, restore renamed ones.

    Temporary folders of live processes on this host are left alone; those of other
    hosts are removed only when older than a day (their writer may still be running).
    """
    root = Path(save_dir)
    if not root.is_dir():
        return
    host = socket.gethostname()
    for entry in root.iterdir():
        if entry.name.startswith(TMP_PREFIX):
            owner = entry.name.split("~")
            if len(owner) == 4 and owner[1] == host:
                alive = owner[2].isdigit() and pid_alive(int(owner[2]))
            else:
                alive = time.time() - entry.stat().st_mtime < 86_400
            if not alive:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(TRASH_PREFIX):
            name = entry.name[len(TRASH_PREFIX):].split("~")[0]
            with name_lock(root, name):
                if not (root / name).exists() and entry.exists():
                    os.rename(entry, root / name)
                else:
                    shutil.rmtree(entry, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that pid exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------- the sweep's notice
SYNTHETIC_NOTE = "the data are synthetic: these results say nothing about a real market"


def write_notice(save_dir: str | os.PathLike, notice: str | None,
                 synthetic: bool = False) -> None:
    """Save a sweep's notice as ``notice.txt`` and, when its data are synthetic, the
    marker ``synthetic.txt``; remove what the sweep no longer has (the report must not
    show a notice the sweep dropped, nor call real data synthetic)."""
    sweep_dir = SweepDir.of(save_dir)
    for path, text in ((sweep_dir.notice, notice),
                       (sweep_dir.synthetic, SYNTHETIC_NOTE if synthetic else None)):
        if text is None:
            path.unlink(missing_ok=True)
            continue
        sweep_dir.root.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            tmp.write_text(f"{text}\n", encoding="utf-8")


def read_notice(save_dir: str | os.PathLike) -> str | None:
    """The notice a sweep saved in ``save_dir``, or None."""
    path = SweepDir.of(save_dir).notice
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def notice_banner(notice: str | None, synthetic: bool = False) -> str:
    """The notice (and whether the data are synthetic) as the lines printed above a
    summary ("" when neither)."""
    lines = notice.splitlines() if notice is not None else []
    if synthetic:
        lines.append(f"{SYNTHETIC_NOTE[0].upper()}{SYNTHETIC_NOTE[1:]}.")
    return "".join(f"NOTE: {line}\n" for line in lines)


def read_synthetic(save_dir: str | os.PathLike) -> bool:
    """Whether the sweep in ``save_dir`` ran on synthetic data (its ``synthetic.txt``)."""
    return SweepDir.of(save_dir).synthetic.is_file()
