"""The Outage Lab: a discrete-event simulator that runs stormproof's real policy
objects on a virtual clock against outage scenarios.

``load_scenario("us-east-1")`` (or a path to a TOML or YAML file, or
``parse_scenario(text)``), ``strategies_for(scenario)`` (the built-in strategies,
``builtin_strategies``, are files: ``strategy_file(name)``), then ``run(scenario,
strategy)`` for one strategy or ``run_strategies(...)`` for several in parallel; a
scenario with a ``[sweep]`` table runs with ``run_sweep``. ``table``,
``results_document``, ``html_report`` (and their ``sweep_`` twins), ``write_json`` and
``write_csv`` report the results (``line_chart``, ``bar_chart`` and ``html_page`` draw
their Plotly charts and pages, for reports of one's own; ``require_plotting`` checks
that Plotly is there); a
scenario with ``[[variants]]`` runs with ``run_with_variants``, which the
``robustness_`` functions report;
``METRICS`` says what each metric is. A scenario's ``Trigger``
kinds are classes: a subclass (its fields declared with ``option``, acting on the
run's ``World``) adds one. The engine (``Simulation``, ``Signal``, ``Process``,
``Within``, ``Waitable``, ``Lane``, ``Timer``) is usable on its own.
"""

from ._catalog import (
    builtin_scenarios,
    builtin_strategies,
    load_scenario,
    parse_scenario,
    strategies_for,
    strategy_file,
)
from ._charts import (
    REPORT_CSS,
    Axis,
    Band,
    PlottingUnavailable,
    Reference,
    Style,
    bar_chart,
    html_page,
    line_chart,
    require_plotting,
    styles_for,
    swatch,
)
from ._engine import (
    TIMED_OUT,
    Lane,
    Process,
    Signal,
    SimClock,
    Simulation,
    Timer,
    Waitable,
    Within,
)
from ._fields import ScenarioError, option
from ._metrics import METRICS, Metric
from ._report import (
    html_report,
    results_document,
    sweep_document,
    sweep_html,
    sweep_table,
    table,
    write_csv,
    write_json,
)
from ._result import RunResult
from ._robustness import (
    Robustness,
    robustness_document,
    robustness_html,
    robustness_table,
    run_labels,
    run_with_variants,
)
from ._run import run
from ._runner import run_strategies
from ._scenario import Scenario
from ._strategy_spec import StrategySpec
from ._sweep import SweepResult, run_sweep
from ._triggers import Trigger
from ._world import World

__all__ = [
    "METRICS",
    "REPORT_CSS",
    "TIMED_OUT",
    "Axis",
    "Band",
    "Lane",
    "Metric",
    "PlottingUnavailable",
    "Process",
    "Reference",
    "Robustness",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Signal",
    "SimClock",
    "Simulation",
    "StrategySpec",
    "Style",
    "SweepResult",
    "Timer",
    "Trigger",
    "Waitable",
    "Within",
    "World",
    "bar_chart",
    "builtin_scenarios",
    "builtin_strategies",
    "html_page",
    "html_report",
    "line_chart",
    "load_scenario",
    "option",
    "parse_scenario",
    "require_plotting",
    "results_document",
    "robustness_document",
    "robustness_html",
    "robustness_table",
    "run",
    "run_labels",
    "run_strategies",
    "run_sweep",
    "run_with_variants",
    "strategies_for",
    "strategy_file",
    "styles_for",
    "swatch",
    "sweep_document",
    "sweep_html",
    "sweep_table",
    "table",
    "write_csv",
    "write_json",
]
