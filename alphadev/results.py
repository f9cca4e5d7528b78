"""BacktestResult, and the results directory: atomic writes, lazy Parquet reads.

Layout (docs/semantics.md#results-on-disk)::

    {save_dir}/{name}/config.json  metrics.json  metadata.json
    {save_dir}/{name}/sequences/returns.parquet  positions.parquet  trades.parquet

A results directory is built under a temporary name and renamed into place, so a
directory that exists under its final name was complete when it was written.  Files
can still be damaged later (a full disk, a copy cut short, a hand edit), so
``config.json`` carries a manifest: the size of each Parquet file, the sha256 of
``metrics.json`` and ``metadata.json``, and a digest of ``config.json``'s own content.
``check_folder`` is the one place that decides whether a folder is whole; a folder
that is not (or that older code wrote without a manifest) is never trusted.
Nothing is pickled.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from alphadev import _threads
from alphadev.metrics import json_safe

if TYPE_CHECKING:
    from alphadev.config import BacktestConfig

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


@dataclass
class Sequences:
    """Per-bar returns frame plus long-format positions and trades.

    A streaming run may leave positions and trades in Parquet files (``Path``) instead
    of frames; they are read when first used and moved, not rewritten, on save.
    """

    RETURN_COLUMNS = (
        "pnl", "gross", "fees", "turnover", "long_return", "short_return", "ic", "equity",
    )

    returns: pd.DataFrame
    positions: pd.DataFrame | Path
    trades: pd.DataFrame | Path


class BacktestResult:
    """Metrics and sequences of one config.

    ``config`` is the BacktestConfig when the result comes from a run in this process
    (or was skipped and loaded for one); ``Backtester.load_result`` leaves it None and
    the saved description is in ``config_dict``: loading never imports user code.
    """

    def __init__(
        self,
        config: BacktestConfig | None,
        metrics: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        sequences: Sequences | None = None,
        path: str | os.PathLike | None = None,
        config_dict: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.metadata = metadata or {}
        self._sequences = sequences
        self.path = Path(path) if path is not None else None
        self.config_dict = config_dict if config_dict is not None else config.to_dict()

    @property
    def name(self) -> str:
        return self.config_dict["name"]

    @property
    def fingerprint(self) -> str | None:
        """The saved fingerprint, or the config's (computed once) for an unsaved result."""
        value = self.config_dict.get("fingerprint")
        if value is None and self.config is not None:
            try:
                value = self.config.fingerprint()
            except (OSError, ValueError):
                return None
            self.config_dict = {**self.config_dict, "fingerprint": value}
        return value

    # ------------------------------------------------------------------ sequences
    @property
    def sequences(self) -> pd.DataFrame:
        return self._load().returns

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        return self.sequences.index

    @property
    def pnl(self) -> pd.Series:
        return self.sequences["pnl"]

    @property
    def gross(self) -> pd.Series:
        return self.sequences["gross"]

    @property
    def long_returns(self) -> pd.Series:
        return self.sequences["long_return"]

    @property
    def short_returns(self) -> pd.Series:
        return self.sequences["short_return"]

    @property
    def turnover(self) -> pd.Series:
        return self.sequences["turnover"]

    @property
    def fees(self) -> pd.Series:
        return self.sequences["fees"]

    @property
    def ic_sequence(self) -> pd.Series:
        return self.sequences["ic"]

    @property
    def equity(self) -> pd.Series:
        return self.sequences["equity"]

    @property
    def positions(self) -> pd.DataFrame:
        return self._table("positions")

    @property
    def trades(self) -> pd.DataFrame:
        return self._table("trades")

    def _table(self, kind: str) -> pd.DataFrame:
        value = getattr(self._load(), kind)
        return pd.read_parquet(value) if isinstance(value, Path) else value

    def drop_sequences(self) -> None:
        """Forget in-memory sequences of a saved result; they are re-read on demand."""
        if self.path is not None:
            self._sequences = None

    def _load(self) -> Sequences:
        if self._sequences is None:
            if self.path is None:
                raise RuntimeError(f"result {self.name!r} has neither sequences nor a path")
            folder = self.path / "sequences"
            self._sequences = Sequences(  # the long tables are read on each use
                returns=pd.read_parquet(folder / "returns.parquet"),
                positions=folder / "positions.parquet",
                trades=folder / "trades.parquet",
            )
        return self._sequences

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        return f"BacktestResult({self.name!r}, sharpe={self.metrics['total'].get('sharpe')})"

    def __str__(self) -> str:
        total, m, cfg = self.metrics["total"], self.metrics, self.config_dict
        rows = [
            ("cumulative return", _fmt(total["cumulative_return"], "{:+.2%}")),
            ("annualized return", _fmt(total["annualized_return"], "{:+.2%}")),
            ("sharpe", _fmt(total["sharpe"], "{:.2f}")),
            ("sortino", _fmt(total["sortino"], "{:.2f}")),
            ("max drawdown", _fmt(total["max_drawdown"], "{:.2%}")),
            ("long / short sharpe", f"{_fmt(m['long']['sharpe'], '{:.2f}')} / "
                                    f"{_fmt(m['short']['sharpe'], '{:.2f}')}"),
            ("ic mean / ir", f"{_fmt(m['ic_mean'], '{:.4f}')} / {_fmt(m['ic_ir'], '{:.3f}')}"),
            ("avg turnover", _fmt(m["avg_turnover"], "{:.4f}")),
            ("total fees", _fmt(m["total_fees"], "{:.4f}")),
        ]
        header = [
            f"Backtest {self.name}",
            f"  alpha      {cfg['alpha_class']} {cfg['alpha_kwargs']}",
            f"  period     {cfg['start_date']} .. {cfg['end_date']}, {cfg['frequency']} bars, "
            f"{total['num_periods']} periods",
            f"  portfolio  quantile={tuple(cfg['quantile'])} gross={cfg['gross_exposure']} "
            f"fee={cfg['trading_fee_rate']}",
        ]
        return "\n".join(header + [f"  {label:<20} {text}" for label, text in rows])

    # ------------------------------------------------------------------ disk
    def save(self, save_dir: str | os.PathLike) -> Path:
        """Write this result to ``{save_dir}/{name}/`` atomically; returns the folder."""
        if self.config is None:
            raise RuntimeError(f"result {self.name!r} was loaded from disk; it is saved already")
        description = self.config.describe()
        final = Path(save_dir) / self.name
        sequences = self._load()
        with building_dir(Path(save_dir), self.name) as tmp:
            (tmp / "sequences").mkdir()
            writers = []
            for kind in ("positions", "trades"):
                value = getattr(sequences, kind)
                target = tmp / "sequences" / f"{kind}.parquet"
                if isinstance(value, Path):
                    os.replace(value, target)  # spilled by a streaming run
                    setattr(sequences, kind, final / "sequences" / target.name)
                else:  # encoding releases the GIL: the two big tables in parallel
                    writers.append(_threads.start(write_long_table, value, target))
            sequences.returns.to_parquet(tmp / "sequences" / "returns.parquet")
            for join in writers:
                join()
            _write_json(tmp / "metrics.json", self.metrics)
            _write_json(tmp / "metadata.json", self.metadata)
            _write_bytes(tmp / "config.json", with_manifest(description, tmp))
            publish_dir(tmp, final, description["fingerprint"])
        self.path = final
        self.config_dict = description
        return final


def load_result(path: str | os.PathLike, config: BacktestConfig | None = None) -> BacktestResult:
    """A saved result; sequences are read from Parquet when first used.

    Raises ``DamagedResultError`` (naming the folder and what is wrong) when the folder
    is not whole; see ``alphadev.store.check_folder``.
    """
    folder = Path(path)
    check = check_folder(folder)
    if check.problem is not None:
        raise DamagedResultError(
            f"results folder {str(folder)!r} is not whole: {check.problem}. Rerun the "
            "sweep (or run_all with this save_dir) to recompute it, or delete the folder"
        )
    metrics = read_json(folder / "metrics.json")
    metadata = read_json(folder / "metadata.json")
    return BacktestResult(
        config=config, metrics=metrics, metadata=metadata, path=folder,
        config_dict=check.description,
    )


class DamagedResultError(ValueError):
    """A results folder with a missing, truncated or edited file."""


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
    and hashed.
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


def warn_damaged(folder: Path, problem: str) -> None:
    """Log a damaged folder once per process (it is checked several times per run)."""
    key = (str(folder), problem)
    if key not in _warned:
        _warned.add(key)
        log.warning("results folder %s is damaged: %s; recomputing it", folder, problem)


def saved_fingerprint(folder: str | os.PathLike) -> str | None:
    """Fingerprint of a whole results folder, None when there is none."""
    return check_folder(folder).fingerprint


def write_long_table(frame: pd.DataFrame, path: Path) -> None:
    """Write positions or trades straight through pyarrow.

    Column by column (timestamps typed, symbols dictionary-encoded) instead of
    ``DataFrame.to_parquet``, which spends most of its time on the conversion;
    ``pandas.read_parquet`` gives back the same dtypes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            arrays[name] = pa.DictionaryArray.from_arrays(
                column.cat.codes.to_numpy(), pa.array(column.cat.categories.astype(str))
            )
        elif isinstance(column.dtype, pd.DatetimeTZDtype):
            stamps = column.dt.tz_convert("UTC").dt.as_unit("ns")
            arrays[name] = pa.array(
                stamps.array.asi8 if hasattr(stamps.array, "asi8") else stamps.to_numpy(),
                type=pa.timestamp("ns", tz="UTC"),
            )
        else:
            arrays[name] = pa.array(column.to_numpy())
    # Dictionary-encoding float columns, and min/max statistics of weights, cost more
    # time than they save; statistics on timestamp and symbol let readers filter.
    keys = ["timestamp", "symbol"]
    pq.write_table(pa.table(arrays), path, use_dictionary=["symbol"], write_statistics=keys)


@dataclass(frozen=True)
class SavedState:
    """``state``: "done" (whole, current fingerprint), "stale" (whole, another
    fingerprint), "damaged" (not whole) or "missing"; ``fingerprint`` is the config's
    current one when it was computed."""

    state: str
    fingerprint: str | None = None
    problem: str | None = None


def check_saved(config: BacktestConfig, save_dir: str | os.PathLike) -> SavedState:
    """The state of ``config``'s folder in ``save_dir`` (see ``SavedState``).

    A damaged folder is logged (warning, with its path and problem).  A config whose
    fingerprint cannot be computed (e.g. a missing data file) is not done: running it
    reports the problem.
    """
    folder = Path(save_dir) / config.name
    check = check_folder(folder)
    if not check.exists:
        return SavedState("missing")
    if check.problem is not None:
        warn_damaged(folder, check.problem)
        return SavedState("damaged", problem=check.problem)
    try:
        current = config.fingerprint()
    except (OSError, ValueError):
        return SavedState("stale")
    return SavedState("done" if check.fingerprint == current else "stale", current)


def saved_state(config: BacktestConfig, save_dir: str | os.PathLike) -> str:
    """"done", "stale", "damaged" or "missing": ``check_saved(...).state``."""
    return check_saved(config, save_dir).state


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(json_safe(obj), fh, indent=2, sort_keys=False, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fmt(value: Any, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


# ---------------------------------------------------------------------- atomic publish
def owner_tag() -> str:
    """``~host~pid~random``: '~' appears in neither config names nor host names."""
    return f"~{socket.gethostname()}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def building_dir(save_dir: Path, name: str):
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
def name_lock(save_dir: Path, name: str):
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
