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
* The manifest written into ``config.json`` (``with_manifest``) and ``check_folder``,
  the one place that decides whether a folder is whole: files can be damaged after
  publication (a full disk, a copy cut short, a hand edit).
* ``append_error_log``: failure reports, which must never abort the run that failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphadev.metrics import json_safe

fcntl: Any
try:
    import fcntl
except ImportError:  # Windows: renames are still atomic, writers are not serialised
    fcntl = None

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LOCK_DIR = ".locks"
MANIFEST = "manifest"
PARQUET_FILES = tuple(f"sequences/{kind}.parquet" for kind in ("returns", "positions", "trades"))
HASHED_FILES = ("metrics.json", "metadata.json")


def owner_tag() -> str:
    """``~host~pid~random``: '~' appears in neither config names nor host names."""
    return f"~{socket.gethostname()}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


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
    tmp = save_dir / f"{TMP_PREFIX}{name}{owner_tag()}"
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
    lock_dir = save_dir / LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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
            trash = final.parent / f"{TRASH_PREFIX}{final.name}{owner_tag()}"
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
                alive = owner[2].isdigit() and _pid_alive(int(owner[2]))
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------- wholeness
@dataclass(frozen=True)
class FolderCheck:
    """What ``check_folder`` found: ``problem`` is None when the folder is whole."""

    exists: bool
    problem: str | None = None
    description: dict[str, Any] | None = None  # config.json without its manifest

    @property
    def fingerprint(self) -> str | None:
        if self.problem is not None or self.description is None:
            return None
        return self.description.get("fingerprint")


def check_folder(folder: str | os.PathLike) -> FolderCheck:
    """Whether ``folder`` holds a whole result: every file present and readable and
    matching the manifest in ``config.json``.

    Cheap enough to run for every config of every rerun (about 60 µs): the Parquet
    files are only stat'ed (their sizes are compared), the small JSON files are read
    and hashed.  A folder without a manifest (older code, or edited) is never trusted.
    """
    base = os.fspath(folder)
    try:
        with open(os.path.join(base, "config.json"), "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        if not os.path.exists(base):
            return FolderCheck(exists=False)
        return FolderCheck(True, "config.json is missing")
    except OSError as exc:
        return FolderCheck(True, f"config.json cannot be read ({exc})")
    try:
        saved = json.loads(raw)
    except ValueError as exc:
        return FolderCheck(True, f"config.json is not valid JSON ({exc})")
    manifest = saved.pop(MANIFEST, None) if isinstance(saved, dict) else None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("digest"), str):
        return FolderCheck(
            True, "config.json has no manifest (written by an older alphadev, or edited)"
        )
    if _raw_digest(raw, manifest["digest"]) != manifest["digest"]:
        return FolderCheck(True, "config.json was edited after it was written (digest mismatch)")
    if saved.get("name") != os.path.basename(os.path.normpath(base)):
        return FolderCheck(
            True, f"config.json names config {saved.get('name')!r}, not the folder's name"
        )
    sizes = manifest.get("sizes") or {}
    for rel in PARQUET_FILES:
        try:
            size = os.stat(os.path.join(base, rel)).st_size
        except OSError:
            return FolderCheck(True, f"{rel} is missing")
        if size != sizes.get(rel):
            return FolderCheck(
                True, f"{rel} has {size} bytes, the manifest says {sizes.get(rel)} (truncated "
                "or rewritten)",
            )
    hashes = manifest.get("sha256") or {}
    for rel in HASHED_FILES:
        try:
            with open(os.path.join(base, rel), "rb") as fh:
                data = fh.read()
        except OSError:
            return FolderCheck(True, f"{rel} is missing")
        if hashlib.sha256(data).hexdigest() != hashes.get(rel):
            what = "empty" if not data else "not the file that was written (sha256 mismatch)"
            return FolderCheck(True, f"{rel} is {what}")
    return FolderCheck(True, None, saved)


def with_manifest(description: dict[str, Any], folder: Path) -> bytes:
    """The bytes of ``config.json``: ``description`` plus the manifest of the files
    already written in ``folder``, whose digest covers the file's own bytes."""
    manifest: dict[str, Any] = {
        "sizes": {rel: os.stat(folder / rel).st_size for rel in PARQUET_FILES},
        "sha256": {
            rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest() for rel in HASHED_FILES
        },
        "digest": _PLACEHOLDER,
    }
    text = json.dumps({**json_safe(description), MANIFEST: manifest}, indent=2,
                      allow_nan=False) + "\n"
    raw = text.encode()
    at = raw.rindex(_PLACEHOLDER.encode())  # the manifest, hence the digest, comes last
    return raw[:at] + _raw_digest(raw, _PLACEHOLDER).encode() + raw[at + len(_PLACEHOLDER):]


_PLACEHOLDER = "0" * 64


def _raw_digest(raw: bytes, digest: str) -> str:
    """sha256 of config.json's bytes with its own digest (the last occurrence of
    ``digest``) written as zeros; "" when the digest is not in the bytes."""
    at = raw.rfind(digest.encode())
    if at < 0 or len(digest) != len(_PLACEHOLDER):
        return ""
    return hashlib.sha256(raw[:at] + _PLACEHOLDER.encode() + raw[at + len(digest):]).hexdigest()


_warned: set[tuple[str, str]] = set()


def warn_damaged(folder: Path, problem: str, action: str = "recomputing it") -> None:
    """Log a damaged folder once per process (it is checked several times per run).

    ``action`` says what the caller does with it: a run recomputes it, a reader skips it.
    """
    key = (str(folder), problem)
    if key not in _warned:
        _warned.add(key)
        log.warning("results folder %s is damaged: %s; %s", folder, problem, action)


def saved_fingerprint(folder: str | os.PathLike) -> str | None:
    """Fingerprint of a whole results folder, None when there is none."""
    return check_folder(folder).fingerprint


# ---------------------------------------------------------------------- the sweep's notice
NOTICE_FILE = "notice.txt"


SYNTHETIC_FILE = "synthetic.txt"
SYNTHETIC_NOTE = "the data are synthetic: these results say nothing about a real market"


def write_notice(save_dir: str | os.PathLike, notice: str | None,
                 synthetic: bool = False) -> None:
    """Save a sweep's notice as ``{save_dir}/notice.txt`` and, when its data are
    synthetic, the marker ``synthetic.txt``; remove what the sweep no longer has (the
    report must not show a notice the sweep dropped, nor call real data synthetic)."""
    root = Path(save_dir)
    for name, text in ((NOTICE_FILE, notice), (SYNTHETIC_FILE, SYNTHETIC_NOTE if synthetic
                                               else None)):
        if text is None:
            (root / name).unlink(missing_ok=True)
            continue
        root.mkdir(parents=True, exist_ok=True)
        with atomic_write(root / name) as tmp:
            tmp.write_text(f"{text}\n", encoding="utf-8")


def read_notice(save_dir: str | os.PathLike) -> str | None:
    """The notice a sweep saved in ``save_dir``, or None."""
    path = Path(save_dir) / NOTICE_FILE
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
    return (Path(save_dir) / SYNTHETIC_FILE).is_file()


# ---------------------------------------------------------------------- failure markers
FAILED_DIR = ".failed"  # {save_dir}/.failed/{name}.json: that config's latest attempt failed


def failure_marker(save_dir: str | os.PathLike, name: str) -> Path:
    """Where the marker of ``name``'s failed latest attempt lives (alphadev.sweep)."""
    return Path(save_dir) / FAILED_DIR / f"{name}.json"
