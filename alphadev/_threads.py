"""Run GIL-releasing work (compiled loops, Parquet encoding) on a second core."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def start(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """Start ``fn(*args)`` on a short-lived thread; the returned call joins it.

    A thread per call, not a pool: no idle thread survives to be lost in a fork.
    Exceptions are re-raised by the join call.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"alphadev-{fn.__name__}", daemon=True)
    thread.start()

    def join() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    return join
