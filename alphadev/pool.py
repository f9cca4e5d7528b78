"""A small process pool that survives its workers dying.

``multiprocessing.Pool`` hangs when a worker is killed, and ``ProcessPoolExecutor``
fails every pending job.  Here each worker has its own pipe; the parent waits on the
pipes and the process sentinels together, so a killed worker fails only the config it
was running, and a fresh worker takes its place.

Start method: ``fork`` where it is safe (Linux), so scripts without an
``if __name__ == "__main__":`` guard still work; ``spawn`` elsewhere.  The environment
variable ``ALPHADEV_START_METHOD`` overrides the choice.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from tqdm.auto import tqdm

from alphadev import job


def start_method() -> str:
    chosen = os.environ.get("ALPHADEV_START_METHOD")
    if chosen:
        return chosen
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return "fork"
    return "spawn"


def _worker_main(
    conn: Connection, position: int | None, save_dir: Any, lock: Any, spec_files: dict
) -> None:
    from alphadev.spec_files import import_spec_files

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    import_spec_files(spec_files)  # spawn: configs may reference classes in spec files
    if lock is not None:
        tqdm.set_lock(lock)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        index, config = message
        conn.send((index, job.run_with_bar(config, position, save_dir)))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    position: int
    current: int | None = None  # index of the config it runs
    started: float = 0.0
    warned: bool = False


def run_in_pool(
    configs: list,
    todo: list[int],
    n_workers: int,
    save_dir: Any,
    verbose: bool,
    slow_after: float,
    tracker: Any,
) -> None:
    """Run ``configs[i]`` for i in ``todo`` on ``n_workers`` processes, reporting to ``tracker``."""
    from alphadev.spec_files import SPEC_FILES

    ctx: Any = mp.get_context(start_method())  # a start method's context has .Process
    if ctx.get_start_method() == "fork":
        from alphadev.engine.simulate import warm_up

        warm_up()  # forked workers inherit the loaded kernels instead of each loading them
    lock = ctx.RLock() if verbose else None
    if lock is not None:
        tqdm.set_lock(lock)

    def spawn(position: int) -> _Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main,
            args=(child, position if verbose else None, save_dir, lock, dict(SPEC_FILES)),
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent, position)

    workers = [spawn(k + 1) for k in range(n_workers)]
    pending = deque(todo)
    try:
        while True:
            for w in workers:
                if w.current is None and pending:
                    w.current = pending.popleft()
                    w.started, w.warned = time.monotonic(), False
                    w.conn.send((w.current, configs[w.current]))
            busy = [w for w in workers if w.current is not None]
            if not busy:
                break
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], 1.0)
            for i, w in enumerate(workers):
                if w.current is None:
                    continue
                if w.conn in ready or w.conn.poll():
                    try:
                        index, outcome = w.conn.recv()
                    except (EOFError, OSError):
                        outcome = None
                    if outcome is not None:
                        w.current = None
                        tracker.record(index, outcome)
                        continue
                if w.process.sentinel in ready or not w.process.is_alive():
                    w.process.join(1.0)
                    index, w.current = w.current, None
                    death = _death_report(configs[index], w.process)
                    tracker.record(index, job.Outcome(None, death))
                    w.conn.close()
                    workers[i] = spawn(w.position)
            now = time.monotonic()
            for w in workers:
                if w.current is not None and not w.warned and now - w.started > slow_after:
                    w.warned = True
                    job.warn_slow(configs[w.current].name, slow_after)
    finally:
        _shutdown(workers)


def _death_report(config: Any, process: Any) -> str:
    code = process.exitcode
    how = f"exit code {code}"
    if code is not None and code < 0:
        try:
            how = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    return (
        f"config {config.name!r} failed\n"
        f"  error: the worker process running it died ({how}); "
        "its result is lost. Common causes: out of memory (the OOM killer), a crash in "
        "native code, or an external kill. Rerun to retry it.\n"
    )


def _shutdown(workers: list[_Worker]) -> None:
    for w in workers:
        if w.process.is_alive():
            if w.current is None:
                try:
                    w.conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
            else:
                w.process.terminate()
    deadline = time.monotonic() + 5.0
    for w in workers:
        w.process.join(max(0.0, deadline - time.monotonic()))
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()
