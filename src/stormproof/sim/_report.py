"""What a run produces: the comparison table, ``results.json``, and a self-contained
HTML report with the plots (inline SVG, no external files or scripts)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ._metrics import (
    AMPLIFICATION,
    AMPLIFICATION_DURING_TRIGGER,
    CALLS,
    COMPLETION,
    CONFLICTS,
    GOODPUT_RATE,
    METRICS,
    P50_LATENCY,
    P99_LATENCY,
    PEAK_LOAD_RATIO,
    RECOVERY,
    STALE_RATE,
    SUCCESS_RATE,
    Metric,
)
from ._result import RunResult
from ._scenario import Scenario
from ._series import Names
from ._strategy_spec import StrategySpec
from ._sweep import SweepResult

__all__ = [
    "REPORT_CSS",
    "Axis",
    "html_report",
    "line_chart",
    "results_document",
    "sweep_document",
    "sweep_html",
    "sweep_table",
    "table",
    "write_json",
]

PALETTE = (
    "#d62728",
    "#ff7f0e",
    "#8c564b",
    "#9467bd",
    "#1f77b4",
    "#2ca02c",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
# The built-in strategies keep their colour from one report to the next.
FIXED = {
    "naive": 0,
    "seed-patterns": 1,
    "aws-legacy": 2,
    "aws-standard": 3,
    "aws-2026": 4,
    "stormproof": 5,
}


def _colors(names: Sequence[str]) -> dict[str, str]:
    colors: dict[str, str] = {}
    spare = iter(PALETTE[len(FIXED) :] + PALETTE[: len(FIXED)])
    for name in names:
        colors[name] = PALETTE[FIXED[name]] if name in FIXED else next(spare, "#444444")
    return colors


@dataclass(frozen=True)
class _Column:
    """A table's column: a metric, headed by its label or by ``label``."""

    metric: Metric
    label: str = ""

    @property
    def heading(self) -> str:
        return self.label or self.metric.label

    def cell(self, scenario: Scenario, summary: dict[str, Any]) -> str:
        metric = self.metric
        if metric.needs_trigger and not scenario.triggers:
            return "-"
        return metric.show(summary.get(metric.name))


TABLE = (
    _Column(SUCCESS_RATE),
    _Column(STALE_RATE),
    _Column(GOODPUT_RATE),
    _Column(AMPLIFICATION, "amplif."),  # short: the terminal is narrow
    _Column(AMPLIFICATION_DURING_TRIGGER, "in trigger"),
    _Column(PEAK_LOAD_RATIO),
    _Column(P99_LATENCY),
    _Column(RECOVERY),
)
"""The terminal table's columns."""

REPORT_TABLE = (
    _Column(SUCCESS_RATE),
    _Column(STALE_RATE),
    _Column(GOODPUT_RATE),
    _Column(AMPLIFICATION),
    _Column(AMPLIFICATION_DURING_TRIGGER),
    _Column(PEAK_LOAD_RATIO),
    _Column(P50_LATENCY),
    _Column(P99_LATENCY),
    _Column(RECOVERY),
)
"""The HTML report's table."""

OCC_TABLE = (
    _Column(SUCCESS_RATE),
    _Column(CALLS, "writes"),  # a contention run's work
    _Column(AMPLIFICATION, "per client"),
    _Column(CONFLICTS),
    _Column(COMPLETION),  # the last client's end: its time
)
"""The columns of a contention run (``[occ]``), in the terminal and the report."""


def _rows(
    scenario: Scenario, results: Sequence[RunResult], columns: Sequence[_Column]
) -> list[list[str]]:
    return [
        [result.strategy, *(column.cell(scenario, result.summary) for column in columns)]
        for result in results
    ]


def table(scenario: Scenario, results: Sequence[RunResult]) -> str:
    """The comparison table printed by the CLI."""
    columns = OCC_TABLE if scenario.occ is not None else TABLE
    header = ["strategy", *(column.heading for column in columns)]
    return "\n".join(_grid(header, _rows(scenario, results, columns), names=True))


def results_document(
    scenario: Scenario, strategies: dict[str, StrategySpec], results: Sequence[RunResult]
) -> dict[str, Any]:
    """What ``results.json`` holds: the scenario, and per strategy its summary."""
    window = scenario.trigger_window
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "duration_s": scenario.duration,
        "seed": results[0].seed if results else scenario.seed,
        "trigger": None if window is None else {"start_s": window[0], "end_s": window[1]},
        "strategies": {
            result.strategy: {
                "summary": strategies[result.strategy].summary,
                **result.summary,
                "cpu_seconds": round(result.cpu_seconds, 3),
            }
            for result in results
        },
    }


def write_json(document: dict[str, Any], path: str) -> None:
    """Write a results document (``results_document``, ``sweep_document``) to ``path``
    as JSON, indented, with numbers that JSON can hold."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, allow_nan=False, default=_finite)
        handle.write("\n")


def _finite(value: object) -> object:  # pragma: no cover - json calls it for odd types
    return str(value)


# -- plots ------------------------------------------------------------------------------------


def _buckets(values: Sequence[float], size: int) -> list[float]:
    return [
        sum(values[i : i + size]) / len(values[i : i + size]) for i in range(0, len(values), size)
    ]


def _share(part: Sequence[float], whole: Sequence[float], size: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(0, len(whole), size):
        total = sum(whole[i : i + size])
        out.append(sum(part[i : i + size]) / total if total else None)
    return out


@dataclass(frozen=True)
class Axis:
    """A chart's x axis (``line_chart``): where its points sit along x, the range
    shown, the labelled ticks, and whether points get markers."""

    positions: Sequence[float]
    low: float
    high: float
    ticks: Sequence[tuple[float, str]]
    markers: bool = False


def _time_axis(points: int, step: float) -> Axis:
    end = points * step
    return Axis(
        [(i + 0.5) * step for i in range(points)],
        0.0,
        end,
        [(end * i / 6, f"{end * i / 6 / 60:.0f} min") for i in range(7)],
    )


def _value_axis(values: Sequence[float]) -> Axis:
    stride = max(1, math.ceil(len(values) / 12))
    return Axis(
        list(values),
        min(values),
        max(values),
        [(v, _tick(v)) for v in values[::stride]],
        markers=len(values) <= 40,
    )


_DASHED = ' stroke-dasharray="5 4"'


def line_chart(
    title: str,
    lines: dict[str, Sequence[float | None]],
    axis: Axis,
    y_label: str,
    *,
    colors: dict[str, str],
    shade: tuple[float, float] | None = None,
    y_max: float | None = None,
    reference: tuple[float, str] | None = None,
    percent: bool = False,
    log: bool = False,
    dashed: Collection[str] = (),
) -> str:
    """An SVG line chart, as the Lab's reports draw them: a line per name in ``lines``
    (its values at ``axis.positions``; None leaves a gap) in ``colors[name]``, dashed
    for the names in ``dashed``; ``shade`` (an x range) drawn behind, ``reference`` (a
    value and its label) as a horizontal line; the y axis from 0 to ``y_max`` (default:
    a round number above the data), in percent or on a log scale."""
    width, height = 860, 260
    left, right, top, bottom = 60, 20, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    span = axis.high - axis.low
    values = [v for series in lines.values() for v in series if v is not None]
    top_value = max([*values, reference[0] if reference else 0.0, 1e-9])
    if y_max is None:
        y_max = _nice(top_value * 1.05)
    y_min = 0.0
    if log:
        positive = [v for v in values if v > 0]
        y_min = 10.0 ** math.floor(math.log10(min(positive))) if positive else 1.0
        y_max = max(10.0 ** math.ceil(math.log10(top_value)), y_min * 10)
        low_log, high_log = math.log10(y_min), math.log10(y_max)

    def x(t: float) -> float:
        return left + plot_w * (t - axis.low) / span if span else left + plot_w / 2

    def y(v: float) -> float:
        if log:
            share = (math.log10(min(max(v, y_min), y_max)) - low_log) / (high_log - low_log)
        else:
            share = min(v, y_max) / y_max
        return top + plot_h * (1 - share)

    out = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" class="title">{html.escape(title)}</text>',
    ]
    if shade is not None:
        out.append(
            f'<rect x="{x(shade[0]):.1f}" y="{top}" width="{x(shade[1]) - x(shade[0]):.1f}"'
            f' height="{plot_h}" class="trigger"/>'
        )
    if log:
        grid = [y_min * 10**i for i in range(round(high_log - low_log) + 1)]
    else:
        grid = [y_max * i / 4 for i in range(5)]
    for value in grid:
        label = f"{100 * value:.0f}%" if percent else _tick(value)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" class="grid"/>\n'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" class="tick" '
            f'text-anchor="end">{label}</text>'
        )
    for t, label in axis.ticks:
        out.append(
            f'<text x="{x(t):.1f}" y="{height - bottom + 16}" class="tick" '
            f'text-anchor="middle">{html.escape(label)}</text>'
        )
    out.append(
        f'<text x="14" y="{top + plot_h / 2}" class="tick" transform="rotate(-90 14 '
        f'{top + plot_h / 2})" text-anchor="middle">{html.escape(y_label)}</text>'
    )
    if reference is not None:
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(reference[0]):.1f}" '
            f'y2="{y(reference[0]):.1f}" class="reference"/>'
        )
        out.append(
            f'<text x="{width - right - 4}" y="{y(reference[0]) - 4:.1f}" class="tick" '
            f'text-anchor="end">{html.escape(reference[1])}</text>'
        )
    for name, series in lines.items():
        path: list[str] = []
        dots: list[str] = []
        pen_up = True
        for t, v in zip(axis.positions, series, strict=False):
            if v is None:
                pen_up = True
                continue
            path.append(f"{'M' if pen_up else 'L'}{x(t):.1f},{y(v):.1f}")
            if axis.markers:
                dots.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5"/>')
            pen_up = False
        if path:
            out.append(
                f'<path d="{" ".join(path)}" stroke="{colors[name]}"'
                f'{_DASHED if name in dashed else ""} class="line">'
                f"<title>{html.escape(name)}</title></path>"
            )
        if dots:
            out.append(f'<g fill="{colors[name]}">{"".join(dots)}</g>')
    out.append("</svg>")
    return "\n".join(out)


def _nice(value: float) -> float:
    exponent = math.floor(math.log10(value)) if value > 0 else 0
    base = 10.0**exponent
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= multiple * base:
            return multiple * base
    return 10.0 * base  # pragma: no cover


def _tick(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value / 1000:.3g}k"


REPORT_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 920px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
svg { display: block; margin: 0.5em 0 1.5em; }
svg .title { font-weight: 600; font-size: 13px; }
svg .tick { font-size: 11px; fill: #555; }
svg .grid { stroke: #eee; } svg .reference { stroke: #333; stroke-dasharray: 5 4; }
svg .trigger { fill: #fbe3e3; } svg .line { fill: none; stroke-width: 1.6; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i, td i { display: inline-block; width: 14px; height: 3px; vertical-align: middle;
            margin-right: 5px; }
.note { color: #555; }
"""
"""The style sheet of the Lab's HTML pages and of ``line_chart``'s SVG classes."""


def html_report(
    scenario: Scenario,
    strategies: dict[str, StrategySpec],
    results: Sequence[RunResult],
    *,
    sections: Sequence[str] = (),
) -> str:
    """A self-contained HTML report: the table, ``sections`` (HTML: the robustness
    tables, ``robustness_html``), and one plot per metric over time."""
    if scenario.occ is not None:
        return _occ_html(scenario, strategies, results)
    colors = _colors([r.strategy for r in results])
    size = 10 if scenario.duration > 600 else 1
    seconds = math.ceil(scenario.duration)
    results = [
        RunResult(
            r.scenario,
            r.strategy,
            r.seed,
            r.summary,
            {name: values[:seconds] for name, values in r.series.items()},
            r.cpu_seconds,
        )
        for r in results
    ]
    shade = scenario.trigger_window
    charts: list[str] = []
    requests = Names.REQUESTS

    def chart(
        title: str, lines: dict[str, Sequence[float | None]], y_label: str, **options: Any
    ) -> None:
        points = max((len(v) for v in lines.values()), default=1)
        axis = _time_axis(points, size)
        charts.append(
            line_chart(title, lines, axis, y_label, colors=colors, shade=shade, **options)
        )

    def per_second(title: str, name: str, y_label: str, **options: Any) -> None:
        chart(
            title, {r.strategy: _buckets(r.series[name], size) for r in results}, y_label, **options
        )

    def share(title: str, name: str, y_label: str) -> None:
        lines: dict[str, Sequence[float | None]] = {
            r.strategy: _share(r.series[name], r.series[requests], size) for r in results
        }
        chart(title, lines, y_label, y_max=1.0, percent=True)

    for region in scenario.regions:
        capacity = region.capacity_rps
        per_second(
            f"Offered load at {region.name} (requests/s) vs capacity",
            Names.offered(region.name),
            "requests/s",
            reference=(capacity, f"capacity {capacity:.0f}/s"),
        )
    share("Goodput: share of requests answered within the deadline", Names.GOODPUT, "goodput")
    per_second("User-visible errors (per second)", Names.ERRORS, "errors/s")
    share("Stale share: requests answered from stale cache", Names.STALE, "stale")
    per_second(
        "Attempts per second (all regions, DNS failures included)", Names.ATTEMPTS, "attempts/s"
    )
    per_second(
        "Breaker state: share of app instances whose primary-region breaker is open",
        Names.BREAKER_OPEN,
        "open",
        y_max=1.0,
        percent=True,
    )
    per_second("DNS queries per second", Names.offered(Names.DNS), "queries/s")

    trigger = ""
    if shade is not None:
        trigger = (
            f"<p class='note'>Shaded: the trigger, from {shade[0] / 60:g} to "
            f"{shade[1] / 60:g} minutes.</p>"
        )
    names = [r.strategy for r in results]
    return _page(
        scenario,
        f"""<p class="note">Scenario <code>{html.escape(scenario.name)}</code>,
seed {results[0].seed}, {scenario.duration / 60:g} simulated minutes, {scenario.clients.describe()},
caller's deadline {scenario.clients.deadline:g} s.</p>
{_html_table(scenario, results, REPORT_TABLE, colors)}
<p class="note">{_glossary(REPORT_TABLE)}</p>
{"".join(sections)}
{_legend(names, colors, strategies)}
{trigger}
{"".join(charts)}""",
    )


def _html_table(
    scenario: Scenario,
    results: Sequence[RunResult],
    columns: Sequence[_Column],
    colors: dict[str, str],
) -> str:
    headings = ("strategy", *(column.heading for column in columns))
    head = "".join(f"<th>{html.escape(heading)}</th>" for heading in headings)
    body = "".join(
        f'<tr><td><i style="background:{colors[row[0]]}"></i> {html.escape(row[0])}</td>'
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[1:])
        + "</tr>"
        for row in _rows(scenario, results, columns)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _glossary(columns: Sequence[_Column]) -> str:
    """What each column's metric means, for the note under a table."""
    return " ".join(
        html.escape(f"{c.heading[0].upper()}{c.heading[1:]}: {c.metric.meaning}.") for c in columns
    )


# -- sweeps -------------------------------------------------------------------------------


def _grid(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, names: bool = False
) -> list[str]:
    """A text table, numbers right-aligned (and the first column left, for ``names``)."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [c.rjust(w) for c, w in zip(row, widths, strict=True)]
        if names:
            cells[0] = row[0].ljust(widths[0])
        return "  ".join(cells)

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def _sweep_rows(
    scenario: Scenario, results: Sequence[SweepResult], metric: Metric
) -> list[list[str]]:
    assert scenario.sweep is not None
    return [
        [_tick(value), *(metric.show(r.points[i].get(metric.name)) for r in results)]
        for i, value in enumerate(scenario.sweep.values)
    ]


def sweep_table(scenario: Scenario, results: Sequence[SweepResult]) -> str:
    """One text table per metric: a row per value, a column per strategy."""
    sweep = scenario.sweep
    assert sweep is not None
    header = [sweep.parameter, *(r.strategy for r in results)]
    blocks = []
    for name in sweep.metrics:
        metric = METRICS[name]
        runs = "1 run" if sweep.repeat == 1 else f"mean of {sweep.repeat} runs"
        lines = [f"{metric.title} ({runs} per point)"]
        lines.extend(_grid(header, _sweep_rows(scenario, results, metric)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def sweep_document(
    scenario: Scenario, strategies: dict[str, StrategySpec], results: Sequence[SweepResult]
) -> dict[str, Any]:
    """What ``results.json`` holds for a sweep: per strategy, the mean metrics at each
    value of the parameter."""
    sweep = scenario.sweep
    assert sweep is not None
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "seed": results[0].seed if results else scenario.seed,
        "sweep": {
            "parameter": sweep.parameter,
            "values": list(sweep.values),
            "repeat": sweep.repeat,
            "metrics": list(sweep.metrics),
        },
        "strategies": {
            r.strategy: {
                "summary": strategies[r.strategy].summary,
                "cpu_seconds": round(r.cpu_seconds, 3),
                "points": [
                    {"value": value, **point}
                    for value, point in zip(r.values, r.points, strict=True)
                ],
            }
            for r in results
        },
    }


def sweep_html(
    scenario: Scenario, strategies: dict[str, StrategySpec], results: Sequence[SweepResult]
) -> str:
    """A self-contained HTML report of a sweep: a chart and a table per metric."""
    sweep = scenario.sweep
    assert sweep is not None
    colors = _colors([r.strategy for r in results])
    axis = _value_axis(sweep.values)
    sections = []
    for name in sweep.metrics:
        metric = METRICS[name]
        title, share = metric.title, metric.share
        lines: dict[str, Sequence[float | None]] = {
            r.strategy: [p.get(name) for p in r.points] for r in results
        }
        positive = [v for series in lines.values() for v in series if v is not None and v > 0]
        log = not share and bool(positive) and max(positive) / min(positive) > 50
        chart = line_chart(
            f"{title} by {sweep.parameter}" + (" (log scale)" if log else ""),
            lines,
            axis,
            name,
            colors=colors,
            y_max=1.0 if share else None,
            percent=share,
            log=log,
        )
        head = "".join(
            f'<th><i style="background:{colors[r.strategy]}"></i> {html.escape(r.strategy)}</th>'
            for r in results
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in _sweep_rows(scenario, results, metric)
        )
        sections.append(
            f"<h2>{html.escape(title)}</h2>\n{chart}\n<table><tr><th>"
            f"{html.escape(sweep.parameter)}</th>{head}</tr>{body}</table>"
        )
    names = [r.strategy for r in results]
    return _page(
        scenario,
        f"""<p class="note">Scenario <code>{html.escape(scenario.name)}</code>:
{len(sweep.values)} values of <code>{html.escape(sweep.parameter)}</code>, each the mean
of {sweep.repeat} runs (seeds {results[0].seed if results else scenario.seed} onward, the
same for every strategy).</p>
{_legend(names, colors, strategies)}
{"".join(sections)}""",
    )


def _occ_html(
    scenario: Scenario, strategies: dict[str, StrategySpec], results: Sequence[RunResult]
) -> str:
    """A contention run has no time series: the report is its table."""
    assert scenario.occ is not None
    colors = _colors([r.strategy for r in results])
    names = [r.strategy for r in results]
    return _page(
        scenario,
        f"""<p class="note">Scenario <code>{html.escape(scenario.name)}</code>,
seed {results[0].seed}: {scenario.occ.clients} clients contending for one row. Add a
<code>[sweep]</code> table to plot the metrics against the number of clients.</p>
{_html_table(scenario, results, OCC_TABLE, colors)}
<p class="note">{_glossary(OCC_TABLE)}</p>
{_legend(names, colors, strategies)}""",
    )


def _legend(
    names: Sequence[str], colors: dict[str, str], strategies: dict[str, StrategySpec]
) -> str:
    spans = " ".join(
        f'<span><i style="background:{colors[name]}"></i>{html.escape(name)}: '
        f"{html.escape(strategies[name].summary)}</span><br>"
        for name in names
    )
    return f'<div class="legend">{spans}</div>'


def _page(scenario: Scenario, body: str) -> str:
    """A self-contained HTML page: the scenario's title and description, then ``body``."""
    name = html.escape(scenario.title or scenario.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>stormproof: {name}</title>
<style>{REPORT_CSS}</style></head><body>
<h1>{name}</h1>
<p>{html.escape(scenario.description.strip())}</p>
{body}
</body></html>
"""
