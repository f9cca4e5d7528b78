"""Append failure reports to an error log without ever aborting the run that failed.

A log that cannot be written (a folder that cannot be created, read-only, disk full)
is reported once through ``logging``; the run goes on and keeps its results.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

_UNWRITABLE: set[str] = set()  # logs already reported as unwritable in this process


def append_error_log(path: str | os.PathLike, report: str, header: str = "") -> bool:
    """Append ``report`` under a timestamped ``===`` line; False when it could not be written."""
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
