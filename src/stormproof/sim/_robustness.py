"""Robustness: a scenario run as written and with each of its ``[[variants]]`` (one key
assumption changed at a time), every strategy in each; per strategy the range of each
metric across them, and the ranking in each, so a reader sees which conclusions hold
whatever the assumption and which depend on one.

Every variant runs with the same seed as the scenario as written (common random
numbers): a difference between two variants is the assumption's, not the draws'.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._metrics import (
    AMPLIFICATION_DURING_TRIGGER,
    GOODPUT_RATE,
    PEAK_LOAD_RATIO,
    RECOVERY,
    STALE_RATE,
    SUCCESS_RATE,
    Metric,
)
from ._report import _grid
from ._result import RunResult
from ._run import run
from ._runner import run_in_pool
from ._scenario import Scenario
from ._strategy_spec import StrategySpec
from ._variant_spec import Variant

__all__ = [
    "RANKED_BY",
    "ROBUSTNESS_METRICS",
    "Robustness",
    "robustness_document",
    "robustness_html",
    "robustness_table",
    "run_labels",
    "run_with_variants",
]

AS_WRITTEN = "as written"
"""How tables name the scenario with no assumption changed."""

RANKED_BY = GOODPUT_RATE
"""Strategies are ranked by goodput: requests answered within the caller's deadline."""

ROBUSTNESS_METRICS: tuple[Metric, ...] = (
    GOODPUT_RATE,
    SUCCESS_RATE,
    STALE_RATE,
    AMPLIFICATION_DURING_TRIGGER,
    PEAK_LOAD_RATIO,
    RECOVERY,
)
"""The metrics whose range across the variants is shown."""


@dataclass
class Robustness:
    """A scenario's strategies as written (``base``: whole runs, series included) and in
    each variant (``variants[i]``: the summary of each strategy's run, in the order of
    ``strategies``)."""

    scenario: Scenario
    strategies: list[str]
    base: list[RunResult]
    variants: list[list[dict[str, Any]]]
    cpu_seconds: float = 0.0

    @property
    def labels(self) -> list[str]:
        """The variants' names, the scenario as written first."""
        return [AS_WRITTEN, *(v.label for v in self.scenario.variants)]

    def value(self, variant: int, strategy: int, metric: Metric) -> float | None:
        """``metric`` of ``strategy`` in ``variant`` (0: as written)."""
        summary = (
            self.base[strategy].summary if variant == 0 else self.variants[variant - 1][strategy]
        )
        value = summary.get(metric.name)
        return None if value is None else float(value)

    def ranks(self, variant: int, metric: Metric = RANKED_BY) -> list[int]:
        """Each strategy's rank by ``metric`` in ``variant`` (1 is best); strategies whose
        values look the same in a table (same shown value) share a rank, and a missing
        value ("never" recovered) ranks last."""
        shown = [metric.show(self.value(variant, s, metric)) for s in range(len(self.strategies))]
        keys = [
            _sort_key(metric, self.value(variant, s, metric)) for s in range(len(self.strategies))
        ]
        return [
            1 + sum(1 for o in range(len(keys)) if shown[o] != shown[s] and keys[o] < keys[s])
            for s in range(len(keys))
        ]


def _sort_key(metric: Metric, value: float | None) -> float:
    """Smaller is better."""
    if value is None:
        return float("inf")
    return -value if metric.higher_is_better else value


def _summary(scenario: Scenario, strategy: StrategySpec, seed: int | None) -> tuple[Any, float]:
    result = run(scenario, strategy, seed=seed)
    return result.summary, result.cpu_seconds


def _whole(scenario: Scenario, strategy: StrategySpec, seed: int | None) -> tuple[Any, float]:
    result = run(scenario, strategy, seed=seed)
    return result, result.cpu_seconds


def run_with_variants(
    scenario: Scenario,
    strategies: Sequence[StrategySpec],
    *,
    seed: int | None = None,
    workers: int | None = None,
    progress: Callable[[list[float]], None] | None = None,
) -> Robustness:
    """Run every strategy on ``scenario`` as written and on each of its variants, in
    parallel processes when there are cores for it. ``progress`` receives, per run (in
    the order of ``run_labels``), 1.0 once it is done, else 0.0."""
    variants: tuple[Variant, ...] = scenario.variants
    per_strategy = 1 + len(variants)
    tasks = [(v, s) for v in range(per_strategy) for s in range(len(strategies))]
    outcomes: dict[tuple[int, int], Any] = {}
    done = [0.0] * len(tasks)
    cpu = 0.0

    runs = [scenario, *(v.scenario for v in variants)]

    def job(task: tuple[int, int]) -> tuple[Callable[..., tuple[Any, float]], tuple[Any, ...]]:
        v, s = task  # the scenario as written is run whole: the report charts its series
        return (_whole if v == 0 else _summary), (runs[v], strategies[s], seed)

    def record(task: tuple[int, int], outcome: tuple[Any, float]) -> None:
        nonlocal cpu
        outcomes[task] = outcome[0]
        cpu += outcome[1]
        done[task[0] * len(strategies) + task[1]] = 1.0
        if progress is not None:
            progress(list(done))

    if workers is None:
        workers = min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        for task in tasks:
            function, arguments = job(task)
            record(task, function(*arguments))
    else:
        # The longest runs first, so the pool ends evenly.
        order = sorted(tasks, key=lambda t: -_cost(runs[t[0]]))
        run_in_pool(
            workers,
            [job(task) for task in order],
            lambda index, outcome: record(order[index], outcome),
        )
    names = [strategy.name for strategy in strategies]
    return Robustness(
        scenario,
        names,
        [outcomes[(0, s)] for s in range(len(strategies))],
        [[outcomes[(v, s)] for s in range(len(strategies))] for v in range(1, per_strategy)],
        cpu,
    )


def run_labels(scenario: Scenario, names: Sequence[str]) -> list[str]:
    """The runs of ``run_with_variants``, named in the order its ``progress`` gives them:
    each strategy as written, then each strategy in each variant."""
    return [*names, *(f"{name} ({v.label})" for v in scenario.variants for name in names)]


def _cost(scenario: Scenario) -> float:
    """A run's rough cost: simulated seconds times request rate."""
    return scenario.duration * scenario.clients.rate


# -- what it shows -------------------------------------------------------------------------


def _span(robustness: Robustness, strategy: int, metric: Metric) -> tuple[str, str, str]:
    """The value as written, the lowest and the highest shown across every variant."""
    variants = range(len(robustness.labels))
    values = [robustness.value(v, strategy, metric) for v in variants]
    base = metric.show(values[0])
    present = [v for v in values if v is not None]
    if not present:
        return base, base, base
    low, high = metric.show(min(present)), metric.show(max(present))
    if None in values:  # "never" recovered somewhere: the worst end of the range
        return (
            (base, low, metric.missing)
            if metric.higher_is_better is False
            else (base, metric.missing, high)
        )
    return base, low, high


def _range(base: str, low: str, high: str) -> str:
    if low == high:
        return f"{base} (all)"
    return f"{base} [{low} - {high}]"


def _rank_summary(robustness: Robustness, strategy: int) -> str:
    ranks = [robustness.ranks(v)[strategy] for v in range(len(robustness.labels))]
    firsts = sum(1 for r in ranks if r == 1)
    spread = (
        f"{ranks[0]}" if min(ranks) == max(ranks) else f"{ranks[0]} [{min(ranks)}-{max(ranks)}]"
    )
    return f"{spread}, 1st in {firsts}/{len(ranks)}"


def _shown(robustness: Robustness) -> list[Metric]:
    """The metrics that apply: those with a trigger only when the scenario has one."""
    has_trigger = bool(robustness.scenario.triggers)
    return [m for m in ROBUSTNESS_METRICS if has_trigger or not m.needs_trigger]


def robustness_rows(robustness: Robustness) -> tuple[list[str], list[list[str]]]:
    """The robustness table's header and rows: per strategy, each metric as written and
    its range across the variants, and its rank by goodput."""
    metrics = _shown(robustness)
    header = ["strategy", *(m.label for m in metrics), f"rank by {RANKED_BY.label}"]
    rows = [
        [
            name,
            *(_range(*_span(robustness, s, m)) for m in metrics),
            _rank_summary(robustness, s),
        ]
        for s, name in enumerate(robustness.strategies)
    ]
    return header, rows


def ranking_rows(robustness: Robustness) -> tuple[list[str], list[list[str]]]:
    """Goodput per variant and strategy, with the strategy's rank in that variant."""
    header = ["variant", *robustness.strategies]
    rows = []
    for v, label in enumerate(robustness.labels):
        ranks = robustness.ranks(v)
        rows.append(
            [
                label,
                *(
                    f"{RANKED_BY.show(robustness.value(v, s, RANKED_BY))} #{ranks[s]}"
                    for s in range(len(robustness.strategies))
                ),
            ]
        )
    return header, rows


def findings(robustness: Robustness) -> list[str]:
    """What holds across the variants and what depends on one, in sentences: per metric,
    which strategy is best as written and in how many variants it stays best (ties
    count), and where it does not, who is."""
    lines = []
    labels = robustness.labels
    names = robustness.strategies
    for metric in _shown(robustness):
        if metric.higher_is_better is None:
            continue
        best_as_written = [s for s, r in enumerate(robustness.ranks(0, metric)) if r == 1]
        lost = []
        for v in range(1, len(labels)):
            ranks = robustness.ranks(v, metric)
            if not any(ranks[s] == 1 for s in best_as_written):
                winners = ", ".join(names[s] for s, r in enumerate(ranks) if r == 1)
                lost.append(f"{labels[v]} ({winners})")
        who = " and ".join(names[s] for s in best_as_written)
        kept = len(labels) - len(lost)
        text = f"{metric.title}: best {who} as written"
        if not lost:
            lines.append(f"{text} and in every variant ({kept} of {len(labels)}).")
        else:
            lines.append(
                f"{text} and in {kept} of {len(labels)}; not with " + "; ".join(lost) + "."
            )
    return lines


def robustness_table(robustness: Robustness) -> str:
    """The text the CLI prints after the main table."""
    count = len(robustness.labels) - 1
    assumptions = len({v.assumption for v in robustness.scenario.variants})
    header, rows = robustness_rows(robustness)
    ranking_header, ranking = ranking_rows(robustness)
    return "\n".join(
        [
            f"Robustness: {count} variants of {assumptions} assumptions, each changing one. "
            "Values as written [lowest - highest]; (all): the same in every variant.",
            *_grid(header, rows, names=True),
            "",
            f"{RANKED_BY.label.capitalize()} and rank (#) in each variant:",
            *_grid(ranking_header, ranking, names=True),
            "",
            *findings(robustness),
        ]
    )


def robustness_document(robustness: Robustness) -> dict[str, Any]:
    """What ``results.json`` holds of the variants: each one's changes and every
    strategy's summary in it, the ranking by goodput, and the findings."""
    scenario = robustness.scenario
    return {
        "ranked_by": RANKED_BY.name,
        "variants": [
            {
                "assumption": variant.assumption,
                "name": variant.name,
                "set": dict(variant.changes),
                "strategies": {
                    name: {**summaries[s], "rank": ranks[s]}
                    for s, name in enumerate(robustness.strategies)
                },
            }
            for variant, summaries, ranks in zip(
                scenario.variants,
                robustness.variants,
                (robustness.ranks(v) for v in range(1, len(robustness.labels))),
                strict=True,
            )
        ],
        "as_written_ranks": dict(zip(robustness.strategies, robustness.ranks(0), strict=True)),
        "findings": findings(robustness),
    }


def robustness_html(robustness: Robustness) -> str:
    """The report's robustness section: both tables and the findings."""

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    changes = "".join(
        f"<li><b>{html.escape(v.label)}</b>: "
        + ", ".join(html.escape(f"{path} = {value!r}") for path, value in v.changes)
        + "</li>"
        for v in robustness.scenario.variants
    )
    return (
        "<h2>Robustness: does the conclusion hold?</h2>"
        "<p>Each variant changes one assumption of the scenario; every strategy runs in "
        "each, with the same seed. Values as written, then [lowest - highest] across the "
        "variants.</p>"
        + table(*robustness_rows(robustness))
        + f"<h3>{html.escape(RANKED_BY.label.capitalize())} and rank in each variant</h3>"
        + table(*ranking_rows(robustness))
        + "<ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in findings(robustness))
        + "</ul>"
        + f"<details><summary>The variants</summary><ul>{changes}</ul></details>"
    )
