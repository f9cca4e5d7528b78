"""Luigi tasks for alphadev sweeps (``luigi --module pipelines Sweep``).

The tasks live in ``pipelines.tasks`` (a config, the sweep, its waves, the report),
``pipelines.validate`` and ``pipelines.search``; this package only names them, so
``--module pipelines`` finds every task and neither module imports the package back.
Importing it applies ``pipelines.setup.configure_luigi`` (exit codes, logging), before
Luigi reads them.
"""

from pipelines.search import Search, SearchTrial
from pipelines.setup import configure_luigi
from pipelines.tasks import BacktestTask, ConfigFailed, Report, ResultTarget, Sweep, SweepWave
from pipelines.validate import Validate

configure_luigi()  # this package is the entry point of luigi --module pipelines

__all__ = ["BacktestTask", "ConfigFailed", "Report", "ResultTarget", "Search", "SearchTrial",
           "Sweep", "SweepWave", "Validate"]
