"""The bundled example as an adaptive search: Optuna chooses the momentum window and
the weight of the 'value' signal, instead of a grid trying every pair.

Run it with ``luigi --module pipelines Search`` from the repository root (luigi.cfg
points here: 30 trials into runs/search), or ``luigi --module pipelines Search --spec
examples/search_example.py --save-dir runs/search --n-trials 30 --local-scheduler``
from anywhere; it needs the ``search`` extra (``pip install -e '.[search]'``).  The
data are the bundled sweep's synthetic market (alphadev.synthetic), so the numbers show
how the search works, not a real edge.  The sampler sees the Sharpe of the first 70 %
of the period; the last 30 % is held out and reported next to the chosen trial.
"""

from __future__ import annotations

from sweep_example import base_config

from alphadev.search import FloatRange, IntRange, SearchSpec

search = SearchSpec(
    base_config().replace(capital=1e5),  # the grid's smaller book
    {"window": IntRange(12, 336, log=True), "signal_weight": FloatRange(0.0, 0.5)},
    metric="sharpe",
    sampler="tpe",
    seed=0,
    holdout=0.3,
)
