"""Luigi's configuration for alphadev sweeps, applied by ``configure_luigi``.

Called by the entry points (importing ``pipelines``, which is what ``luigi --module
pipelines`` does, and the tests), never as a side effect of importing a task module:
the defaults must be in place before Luigi reads ``[retcode]``, which it does right
after importing ``--module``.
"""

from __future__ import annotations

import logging

import luigi

# Luigi exits 0 even when tasks fail.  These defaults apply wherever the sweep runs
# (not only beside this repository's luigi.cfg); a user's own [retcode] settings win.
# already_running: the same command is running already (luigi's lock), or, with a
# central scheduler, another worker ran some of the tasks (central.cfg sets it to 0).
# not_run: the sweep did not finish for another reason (central.cfg: 0 as well).
RETCODE_DEFAULTS = {
    "already_running": "10",
    "missing_data": "20",
    "not_run": "25",
    "task_failed": "30",
    "scheduling_error": "35",
    "unhandled_exception": "40",
}


def _set_retcode_defaults() -> None:
    config = luigi.configuration.get_config()
    if not config.has_section("retcode"):
        config.add_section("retcode")
    for key, value in RETCODE_DEFAULTS.items():
        if not config.has_option("retcode", key):
            config.set("retcode", key, value)


# Luigi's per-task INFO lines, demoted to DEBUG (about four per config otherwise).
PER_TASK_LINES = (
    "Informed scheduler that task",
    "[pid %s] Worker %s running",
    "[pid %s] Worker %s done",
    "[pid %s] Worker %s new requirements",
    "Did not schedule %s",
)


class PerTaskLinesToDebug(logging.Filter):
    """Luigi's per-task chatter becomes DEBUG, so handlers at INFO drop it and an
    overnight sweep logs about one line per config (ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.levelno == logging.INFO and isinstance(record.msg, str)
                and record.msg.startswith(PER_TASK_LINES)):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _set_logging_defaults() -> None:
    """INFO (not Luigi's DEBUG) where no config chooses the logging, plus the filter."""
    config = luigi.configuration.get_config()
    chosen = any(config.has_option("core", key) for key in ("log_level", "logging_conf_file"))
    if not chosen and not config.has_section("logging"):
        if not config.has_section("core"):
            config.add_section("core")
        config.set("core", "log_level", "INFO")
    chatty = logging.getLogger("luigi-interface")
    if not any(isinstance(f, PerTaskLinesToDebug) for f in chatty.filters):
        chatty.addFilter(PerTaskLinesToDebug())



def configure_luigi() -> None:
    """Exit codes that say a sweep failed, INFO logging by default, and Luigi's
    per-task lines demoted to DEBUG; a user's own luigi.cfg settings win.  Idempotent."""
    _set_retcode_defaults()
    _set_logging_defaults()
