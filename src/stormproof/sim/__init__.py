"""The Outage Lab: a discrete-event simulator that runs stormproof's real policy
objects on a virtual clock against outage scenarios.

``load_scenario("us-east-1")`` (or a path to a TOML file), ``strategies_for(scenario)``,
then ``run(scenario, strategy)`` for one strategy or ``run_strategies(...)`` for several
in parallel; a scenario with a ``[sweep]`` table runs with ``run_sweep``. The engine
(``Simulation``, ``Signal``, ``Within``, ``Lane``, ``Timer``) is usable on its own.
"""

from ._catalog import builtin_scenarios, load_scenario, strategies_for
from ._engine import TIMED_OUT, Lane, Signal, SimClock, Simulation, Timer, Within
from ._fields import ScenarioError
from ._report import (
    html_report,
    results_document,
    sweep_document,
    sweep_html,
    sweep_table,
    table,
)
from ._run import RunResult, run
from ._runner import run_strategies
from ._spec import Scenario, StrategySpec
from ._sweep import SweepResult, run_sweep

__all__ = [
    "TIMED_OUT",
    "Lane",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "Signal",
    "SimClock",
    "Simulation",
    "StrategySpec",
    "SweepResult",
    "Timer",
    "Within",
    "builtin_scenarios",
    "html_report",
    "load_scenario",
    "results_document",
    "run",
    "run_strategies",
    "run_sweep",
    "strategies_for",
    "sweep_document",
    "sweep_html",
    "sweep_table",
    "table",
]
