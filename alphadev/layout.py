"""The results layout: where every file under a sweep folder lives, what makes a
config's folder whole, and what state a config's result is in.

No other module spells a file name under a ``save_dir``; they ask ``SweepDir`` (the
sweep folder) or ``ResultDir`` (one config's folder) for the path, so a new result
file is one property here (docs/architecture.md).

    {save_dir}/
        {name}/                 one config (ResultDir): config.json (with the manifest),
            sequences/          metrics.json, metadata.json, tear_sheet.html and the
                                returns/positions/trades Parquet files + signal series
        comparison.csv          the sweep's table, one row per done config
        errors.log              every failure report, appended
        .failed/{name}.json     that config's latest attempt failed
        .progress.json          a Luigi sweep's progress counters
        .summary.json           what the last failure summary was written for
        notice.txt              the sweep's notice; synthetic.txt: its data are synthetic
        validation/             walk_forward.parquet, folds.csv, pbo.json
        search/                 an adaptive search: search.json (its definition), the
                                Optuna journal, trials.csv and summary.json
        report.html             the sweep's report
        .cache/panels/          the panel cache shared by processes and machines
        .locks/{name}.lock      per-name publisher locks
        .tmp-{name}~host~pid~random, .trash-{name}~...   writers at work (store)

A config's *state* (``SweepDir.state``) is DONE (whole, current fingerprint), STALE
(whole, another fingerprint), DAMAGED (not whole), FAILED (not done, latest attempt
failed) or MISSING (docs/semantics.md#sweeps-and-luigi).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphadev.metrics import json_safe

if TYPE_CHECKING:  # annotations only: the config module does not import this one
    from alphadev.config import BacktestConfig

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
MANIFEST = "manifest"
SEQUENCE_KINDS = ("returns", "positions", "trades")
PARQUET_FILES = tuple(f"sequences/{kind}.parquet" for kind in SEQUENCE_KINDS)
HASHED_FILES = ("metrics.json", "metadata.json")
VALIDATION_NAME = "validation"  # a config must not be called this (validation's folder)
SEARCH_NAME = "search"  # an adaptive search's records (a trial's name always has '__')


def owner_tag() -> str:
    """``~host~pid~random``: '~' appears in neither config names nor host names."""
    return f"~{socket.gethostname()}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


def sequence_file(folder: Path, kind: str) -> Path:
    """``{folder}/{kind}.parquet``: a sequence in a result's ``sequences/`` or in a
    streaming run's spill folder."""
    return folder / f"{kind}.parquet"


def panel_file(cache_dir: Path, key: str) -> Path:
    """A cached panel (``alphadev.cache``) in a cache folder such as ``panel_cache``."""
    return cache_dir / f"{key}.npz"


# ---------------------------------------------------------------------- one config
@dataclass(frozen=True)
class ResultDir:
    """One config's results folder, ``{save_dir}/{name}``."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def metadata(self) -> Path:
        return self.path / "metadata.json"

    @property
    def sequences(self) -> Path:
        return self.path / "sequences"

    def sequence(self, kind: str) -> Path:
        """``returns``, ``positions`` or ``trades`` (``SEQUENCE_KINDS``)."""
        return sequence_file(self.sequences, kind)

    @property
    def returns(self) -> Path:
        return self.sequence("returns")

    @property
    def ic_decay(self) -> Path:
        return self.sequences / "ic_decay.parquet"

    @property
    def quantile_returns(self) -> Path:
        return self.sequences / "quantile_returns.parquet"

    @property
    def factor_sequences(self) -> Path:
        return self.sequences / "factor_sequences.parquet"

    @property
    def benchmark(self) -> Path:
        return self.sequences / "benchmark.parquet"

    @property
    def tear_sheet(self) -> Path:
        return self.path / "tear_sheet.html"

    def looks_like_result(self) -> bool:
        """Whether the folder is meant as a result (``config.json`` or ``sequences/``),
        whole or not: a user's own folder beside the results is neither."""
        return self.config.exists() or self.sequences.is_dir()

    def is_result(self) -> bool:
        """``config.json`` and ``sequences/`` both there (a folder given as one config)."""
        return self.config.is_file() and self.sequences.is_dir()

    def check(self) -> FolderCheck:
        return check_folder(self.path)


# ---------------------------------------------------------------------- the sweep
@dataclass(frozen=True)
class SearchDir:
    """``{save_dir}/search``: an adaptive search's study and its records."""

    path: Path

    @property
    def definition(self) -> Path:
        """What was searched (space, metric, held-out share, base config's fingerprint)."""
        return self.path / "search.json"

    @property
    def journal(self) -> Path:
        """Optuna's journal storage: the study, shared by every process of the search."""
        return self.path / "journal.log"

    @property
    def trials(self) -> Path:
        return self.path / "trials.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"


@dataclass(frozen=True)
class ValidationDir:
    """``{save_dir}/validation``: walk-forward selection and PBO of the sweep."""

    path: Path

    @property
    def walk_forward(self) -> Path:
        return self.path / "walk_forward.parquet"

    @property
    def folds(self) -> Path:
        return self.path / "folds.csv"

    @property
    def pbo(self) -> Path:
        return self.path / "pbo.json"


@dataclass(frozen=True)
class SweepDir:
    """A sweep folder: every path under it, its result folders, a config's state."""

    root: Path

    @classmethod
    def of(cls, save_dir: str | os.PathLike[str] | SweepDir) -> SweepDir:
        """The public edges take a ``str`` or a path; past them it is a ``SweepDir``."""
        return save_dir if isinstance(save_dir, SweepDir) else cls(Path(save_dir))

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    def __str__(self) -> str:
        return str(self.root)

    def result(self, name: str) -> ResultDir:
        return ResultDir(self.root / name)

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.csv"

    @property
    def errors_log(self) -> Path:
        return self.root / "errors.log"

    @property
    def failures(self) -> Path:
        return self.root / ".failed"

    def failure(self, name: str) -> Path:
        """The marker of ``name``'s failed latest attempt."""
        return self.failures / f"{name}.json"

    @property
    def progress(self) -> Path:
        return self.root / ".progress.json"

    @property
    def summary_stamp(self) -> Path:
        return self.root / ".summary.json"

    @property
    def notice(self) -> Path:
        return self.root / "notice.txt"

    @property
    def synthetic(self) -> Path:
        return self.root / "synthetic.txt"

    @property
    def validation(self) -> ValidationDir:
        return ValidationDir(self.root / VALIDATION_NAME)

    @property
    def search(self) -> SearchDir:
        return SearchDir(self.root / SEARCH_NAME)

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def panel_cache(self) -> Path:
        return self.root / ".cache" / "panels"

    def lock(self, name: str) -> Path:
        """The lock file serialising writers of ``name`` (a config or a sweep record)."""
        return self.root / ".locks" / f"{name}.lock"

    def building(self, name: str) -> Path:
        """A new, writer-unique temporary folder for ``name``'s result."""
        return self.root / f"{TMP_PREFIX}{name}{owner_tag()}"

    def trash(self, name: str) -> Path:
        """Where ``name``'s replaced folder waits while the new one is renamed in."""
        return self.root / f"{TRASH_PREFIX}{name}{owner_tag()}"

    def spill(self, name: str) -> Path:
        """A streaming run's writer-unique folder for positions and trades."""
        return self.root / f"{TMP_PREFIX}spill-{name}{owner_tag()}"

    def result_folders(self) -> list[ResultDir]:
        """The folders meant as results (``ResultDir.looks_like_result``), by name;
        hidden folders (temporaries, records), ``validation/`` and ``search/`` are not."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        folders = (ResultDir(Path(e.path)) for e in entries
                   if e.is_dir() and not e.name.startswith(".")
                   and e.name not in (VALIDATION_NAME, SEARCH_NAME))
        return [folder for folder in folders if folder.looks_like_result()]

    def failed_names(self) -> Iterator[str]:
        """Names of the configs whose latest attempt failed (their markers)."""
        try:
            entries = sorted(os.listdir(self.failures))
        except OSError:  # none yet, or unreadable: no marker can be read either
            return
        for entry in entries:
            if entry.endswith(".json"):
                yield entry[: -len(".json")]

    def has_failures(self) -> bool:
        """Whether some config's latest attempt failed (stops at the first marker)."""
        try:
            with os.scandir(self.failures) as entries:
                return any(entry.name.endswith(".json") for entry in entries)
        except OSError:
            return False

    def saved(self, config: BacktestConfig) -> SavedState:
        """The state of ``config``'s folder alone (see ``SavedState``), FAILED aside.

        A damaged folder is logged (warning, with its path and problem).  A config whose
        fingerprint cannot be computed (e.g. a missing data file) is not done: running
        it reports the problem.
        """
        folder = self.result(config.name)
        check = folder.check()
        if not check.exists:
            return SavedState(ResultState.MISSING)
        if check.problem is not None:
            warn_damaged(folder.path, check.problem)
            return SavedState(ResultState.DAMAGED, problem=check.problem)
        try:
            current = config.fingerprint()
        except (OSError, ValueError):
            return SavedState(ResultState.STALE)
        done = check.fingerprint == current
        return SavedState(ResultState.DONE if done else ResultState.STALE, current)

    def state(self, config: BacktestConfig) -> ResultState:
        """The config's state: its folder's, or FAILED when it is not done and its
        latest attempt failed."""
        state = self.saved(config).state
        if state is not ResultState.DONE and self.failure(config.name).exists():
            return ResultState.FAILED
        return state


class ResultState(Enum):
    """What a config's results folder (and, for a sweep, its latest attempt) means."""

    DONE = "done"
    STALE = "stale"
    DAMAGED = "damaged"
    MISSING = "missing"
    FAILED = "failed"


@dataclass(frozen=True)
class SavedState:
    """``state`` of the folder; ``fingerprint`` is the config's current one when it was
    computed, ``problem`` what makes a DAMAGED folder not whole."""

    state: ResultState
    fingerprint: str | None = None
    problem: str | None = None


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


def check_folder(folder: str | os.PathLike[str]) -> FolderCheck:
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


def saved_fingerprint(folder: str | os.PathLike[str]) -> str | None:
    """Fingerprint of a whole results folder, None when there is none."""
    return check_folder(folder).fingerprint


def log_stale(name: str, logger: logging.Logger = log) -> None:
    """The one line for a config whose saved result has another fingerprint (a Luigi
    task logs it through Luigi's logger, which its command line shows)."""
    logger.info("config %s: saved results have another fingerprint (config, data or alpha "
             "code changed); recomputing", name)


_warned: set[tuple[str, str]] = set()


def warn_damaged(folder: Path, problem: str, action: str = "recomputing it") -> None:
    """Log a damaged folder once per process (it is checked several times per run).

    ``action`` says what the caller does with it: a run recomputes it, a reader skips it.
    """
    key = (str(folder), problem)
    if key not in _warned:
        _warned.add(key)
        log.warning("results folder %s is damaged: %s; %s", folder, problem, action)
