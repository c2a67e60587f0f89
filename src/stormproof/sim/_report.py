"""What a run produces: the comparison table (with a legend of its columns),
``results.json`` (the summaries and every charted series, per second), ``series.csv``,
and a self-contained HTML report whose charts Plotly draws (``_charts``)."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._charts import (
    REPORT_CSS,
    Axis,
    Band,
    Reference,
    Style,
    bar_chart,
    html_page,
    line_chart,
    styles_for,
    swatch,
)
from ._fields import options_of
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
from ._series import CAPACITY_NAME, LONG_RUN, Exported, Names, chart_step, exported
from ._strategy_spec import StrategySpec
from ._sweep import SweepResult
from ._triggers import Trigger

__all__ = [
    "REPORT_CSS",
    "html_report",
    "results_document",
    "sweep_document",
    "sweep_html",
    "sweep_table",
    "table",
    "write_csv",
    "write_json",
]


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
    _Column(P50_LATENCY),
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


def _unit(metric: Metric) -> str:
    if metric.share:
        return "% of requests"
    return {"x": "a ratio", "s": "seconds", "": "a count"}[metric.unit]


def _meaning(metric: Metric) -> str:
    """A metric's meaning as prose (the registry writes names as Markdown code)."""
    return metric.meaning.replace("`", "")


def _definitions(columns: Sequence[_Column]) -> list[tuple[str, str]]:
    """What each column means, from the metrics registry: (heading, definition)."""
    out = []
    for column in columns:
        metric = column.metric
        named = "" if column.heading == metric.label else f"{metric.label}: "
        out.append((column.heading, f"{named}{_meaning(metric)} ({_unit(metric)})"))
    return out


def _text_legend(columns: Sequence[_Column], width: int = 88) -> list[str]:
    lines = ["", "Columns:"]
    for heading, meaning in _definitions(columns):
        lines.extend(
            textwrap.wrap(
                f"{heading}: {meaning}.",
                width,
                initial_indent="  ",
                subsequent_indent="    ",
            )
        )
    return lines


def table(scenario: Scenario, results: Sequence[RunResult]) -> str:
    """The comparison table printed by the CLI, with a legend of its columns."""
    columns = OCC_TABLE if scenario.occ is not None else TABLE
    header = ["strategy", *(column.heading for column in columns)]
    lines = _grid(header, _rows(scenario, results, columns), names=True)
    return "\n".join(lines + _text_legend(columns))


# -- results.json and series.csv ------------------------------------------------------------

_ORDER = (
    Names.REQUESTS,
    Names.SUCCESSES,
    Names.ERRORS,
    Names.GOODPUT,
    Names.STALE,
    Names.ATTEMPTS,
    Names.BREAKER_OPEN,
    *(Names.latency(q) for q in Names.LATENCY_QUANTILES),
)


def _series_keys(result: RunResult) -> list[str]:
    """The per-second series of a run that the documents give, in a reading order."""
    keys = [k for k in result.series if "/" not in k]  # "/": a report's bucketed copy

    def rank(key: str) -> tuple[int, str]:
        return (_ORDER.index(key) if key in _ORDER else len(_ORDER), key)

    return sorted(keys, key=rank)


def _number(value: float) -> float | int | None:
    if not math.isfinite(value):
        return None
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return float(f"{value:.6g}")


def _time_series(scenario: Scenario, results: Sequence[RunResult]) -> dict[str, Any]:
    seconds = math.ceil(scenario.duration)
    dns_capacity = [scenario.dns.capacity] * seconds
    strategies: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        entries = []
        for key in _series_keys(result):
            found = exported(key)
            values = [_number(v) for v in result.series[key][:seconds]]
            values += [None] * (seconds - len(values))  # a series that ends early
            entries.append(_entry(found, values))
        dns = Exported(CAPACITY_NAME, {"dependency": Names.DNS}, "1/s")
        entries.append(_entry(dns, [_number(v) for v in dns_capacity]))
        strategies[result.strategy] = entries
    return {
        "step_s": 1,
        "seconds": seconds,
        "note": (
            "value i covers second i of the run (from i to i+1 s); requests and their "
            "outcomes count in the second the request arrived; null: no value that second"
        ),
        "strategies": strategies,
    }


def _entry(found: Exported, values: list[float | int | None]) -> dict[str, Any]:
    return {
        "name": found.name,
        "attributes": found.attributes,
        "unit": found.unit,
        "values": values,
    }


def results_document(
    scenario: Scenario, strategies: dict[str, StrategySpec], results: Sequence[RunResult]
) -> dict[str, Any]:
    """What ``results.json`` holds: the scenario, per strategy its summary, and (for a
    run against regions) ``series``: every charted series per second, named as the
    library's instrumentation names them (``stormproof._metric_names``)."""
    window = scenario.trigger_window
    document: dict[str, Any] = {
        "scenario": scenario.name,
        "title": scenario.title,
        "duration_s": scenario.duration,
        "seed": results[0].seed if results else scenario.seed,
        "trigger": None if window is None else {"start_s": window[0], "end_s": window[1]},
        "triggers": [
            {"kind": t.kind, **_trigger_fields(t), "start_s": t.start, "end_s": t.end}
            for t in scenario.triggers
        ],
        "strategies": {
            result.strategy: {
                "summary": strategies[result.strategy].summary,
                **result.summary,
                "cpu_seconds": round(result.cpu_seconds, 3),
            }
            for result in results
        },
    }
    if scenario.occ is None:
        document["series"] = _time_series(scenario, results)
    return document


def _trigger_fields(trigger: Trigger) -> dict[str, Any]:
    return {
        name: getattr(trigger, name)
        for name in options_of(type(trigger))
        if name not in ("start", "end")
    }


def write_json(document: dict[str, Any], path: str) -> None:
    """Write a results document (``results_document``, ``sweep_document``) to ``path``
    as JSON, indented, with numbers that JSON can hold (each series' values on one
    line)."""
    lists: list[str] = []

    def compact(node: Any) -> Any:
        if isinstance(node, dict):
            if "values" in node and "name" in node and isinstance(node["values"], list):
                lists.append(json.dumps(node["values"], separators=(",", ":"), allow_nan=False))
                return {**node, "values": f"\0{len(lists) - 1}"}
            return {key: compact(value) for key, value in node.items()}
        if isinstance(node, list):
            return [compact(value) for value in node]
        return node

    text = json.dumps(compact(document), indent=2, allow_nan=False, default=_finite)
    text = re.sub(r'"\\u0000(\d+)"', lambda m: lists[int(m.group(1))], text)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.write("\n")


def _finite(value: object) -> object:  # pragma: no cover - json calls it for odd types
    return str(value)


def _column_name(strategy: str, entry: dict[str, Any]) -> str:
    attributes = ",".join(f"{k}={v}" for k, v in entry["attributes"].items())
    return f"{strategy}/{entry['name']}" + (f"{{{attributes}}}" if attributes else "")


def write_csv(document: dict[str, Any], path: str) -> None:
    """Write a results document's data as CSV to ``path`` (``series.csv``). A run's: a
    row per second (``time_s``, its start) and a column per series, headed
    ``strategy/name{attribute=value,...}`` (the names of ``results.json``'s
    ``series``). A sweep's: a row per strategy and value, a column per metric. A
    contention run's: a row per strategy, a column per metric. Empty cell: no value."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if "series" in document:
            series = document["series"]
            columns = [
                (_column_name(strategy, entry), entry["values"])
                for strategy, entries in series["strategies"].items()
                for entry in entries
            ]
            writer.writerow(["time_s", *(name for name, _ in columns)])
            for second in range(series["seconds"]):
                writer.writerow([second, *(_cell(values[second]) for _, values in columns)])
            return
        strategies = document["strategies"]
        if "sweep" in document:
            names = _scalar_keys(p for s in strategies.values() for p in s["points"])
            writer.writerow(["strategy", document["sweep"]["parameter"], *names])
            for strategy, found in strategies.items():
                for point in found["points"]:
                    writer.writerow(
                        [strategy, point["value"], *(_cell(point.get(n)) for n in names)]
                    )
            return
        names = _scalar_keys(strategies.values())
        writer.writerow(["strategy", *names])
        for strategy, found in strategies.items():
            writer.writerow([strategy, *(_cell(found.get(n)) for n in names)])


def _scalar_keys(rows: Any) -> list[str]:
    names: list[str] = []
    for row in rows:
        for key, value in row.items():
            wanted = value is None or isinstance(value, (int, float))
            if wanted and key not in names and key not in ("value", "summary"):
                names.append(key)
    return names


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


# -- the HTML report -----------------------------------------------------------------------


def _when(seconds: float) -> str:
    """A time into the run, in words: "10 min", "1 min 10 s", "45 s"."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min" + (f" {rest:.3g} s" if rest else "")


def _trigger_text(trigger: Trigger) -> str:
    fields = ", ".join(f"{k} {v}" for k, v in _trigger_fields(trigger).items())
    return f"{trigger.kind}" + (f" ({fields})" if fields else "")


@dataclass(frozen=True)
class _Time:
    """The x axis of a run's charts: per ``step`` seconds, in minutes for long runs."""

    seconds: int
    step: int

    @property
    def minutes(self) -> bool:
        return self.step > 1

    def x(self, seconds: float) -> float:
        return seconds / 60 if self.minutes else seconds

    def axis(self) -> Axis:
        points = math.ceil(self.seconds / self.step)
        positions = [self.x(min(self.seconds, (i + 0.5) * self.step)) for i in range(points)]
        title = "time into the run (minutes)" if self.minutes else "time into the run (s)"
        return Axis(positions, title, 0.0, self.x(self.seconds), markers=False)

    def buckets(self, values: Sequence[float], how: Callable[[list[float]], float]) -> list[float]:
        cut = list(values[: self.seconds])
        return [how(cut[i : i + self.step]) for i in range(0, len(cut), self.step)]

    def mean(self, values: Sequence[float]) -> list[float]:
        return self.buckets(values, lambda b: sum(b) / len(b))

    def share(self, part: Sequence[float], whole: Sequence[float]) -> list[float | None]:
        out: list[float | None] = []
        for i in range(0, self.seconds, self.step):
            total = sum(whole[i : min(i + self.step, self.seconds)])
            out.append(sum(part[i : min(i + self.step, self.seconds)]) / total if total else None)
        return out

    @property
    def per(self) -> str:
        return "per second" if self.step == 1 else f"per {self.step} s"


def html_report(
    scenario: Scenario,
    strategies: dict[str, StrategySpec],
    results: Sequence[RunResult],
    *,
    sections: Sequence[str] = (),
) -> str:
    """A self-contained HTML report: the table and its legend, the strategies, the
    triggers, and charts over time (Plotly, embedded): offered load against capacity
    at each region, goodput, latency (p50, p99), errors, stale answers, attempts,
    open breakers and DNS queries. ``sections``: HTML put after the
    table (the robustness tables, ``robustness_html``). Raises ``PlottingUnavailable``
    without Plotly."""
    if scenario.occ is not None:
        return _occ_html(scenario, strategies, results)
    names = [r.strategy for r in results]
    styles = styles_for(names)
    time = _Time(math.ceil(scenario.duration), chart_step(scenario.duration))
    axis = time.axis()
    bands = [
        Band(
            time.x(t.start),
            time.x(t.end),
            f"T{i} {t.kind}",
            f"T{i}",
        )
        for i, t in enumerate(scenario.triggers, 1)
    ]
    charts: list[str] = []
    left_out: list[str] = []
    per = time.per

    def chart(
        title: str, note: str, lines: Mapping[str, Sequence[float | None]], y: str, **o: Any
    ) -> None:
        charts.append(line_chart(title, lines, axis, y, styles=styles, note=note, bands=bands, **o))

    first = results[0]

    def load(title: str, name: str, capacity: Sequence[float], unit: str) -> None:
        """Offered load at a dependency against its capacity: per second, or the busiest
        second of each bucket (as the table's peak load), and the lowest capacity."""
        if time.step == 1:
            note = f"{unit} arriving there per second"
            lines = {r.strategy: time.mean(r.series[name]) for r in results}
        else:
            note = (
                f"the busiest second in each {time.step} s, as the table's peak load counts "
                "one-second buckets"
            )
            lines = {r.strategy: time.buckets(r.series[name], max) for r in results}
        lowest = time.buckets(capacity, min)
        peak = max((v for line in lines.values() for v in line), default=0.0)
        references = []
        if peak >= 0.2 * min(lowest, default=0.0):
            references.append(Reference("capacity", lowest))
            note += "; the capacity in force" + ("" if time.step == 1 else " (its lowest)")
        else:
            note += f"; its capacity, {max(capacity):,.0f}/s, is far above (not drawn)"
        chart(title, note, lines, f"{unit}/s", references=references)

    for region in scenario.regions:
        capacity = first.series.get(Names.capacity(region.name))
        if capacity is None:  # pragma: no cover - every run records it
            capacity = [region.capacity_rps] * time.seconds
        load(
            f"Offered load at {region.name} vs its capacity",
            Names.offered(region.name),
            capacity,
            "requests",
        )
    requests = Names.REQUESTS
    chart(
        "Goodput: the share of requests answered within the deadline",
        f"{per}, by the second requests arrived",
        {r.strategy: time.share(r.series[Names.GOODPUT], r.series[requests]) for r in results},
        "goodput",
        percent=True,
        y_max=1.0,
    )
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        key = Names.latency(q, time.step)
        chart(
            f"Latency {label} of answered requests",
            f"the {label} of the time to an answer (fresh or stale; errors left out) of the "
            f"requests arriving in each {'second' if time.step == 1 else f'{time.step} s'}; "
            "log scale",
            {r.strategy: r.series.get(key, []) for r in results},
            "seconds",
            log=True,
        )
    chart(
        "User-visible errors",
        f"requests that ended in an error, mean {per}, by the second they arrived",
        {r.strategy: time.mean(r.series[Names.ERRORS]) for r in results},
        "errors/s",
    )
    if any(sum(r.series[Names.STALE]) for r in results):
        chart(
            "Stale share: requests answered from a stale cache entry",
            f"{per}, by the second requests arrived",
            {r.strategy: time.share(r.series[Names.STALE], r.series[requests]) for r in results},
            "stale",
            percent=True,
            y_max=1.0,
        )
    else:
        left_out.append("stale answers (no strategy answered from a stale cache entry)")
    chart(
        "Attempts (all regions; attempts whose name did not resolve included)",
        f"mean {per}",
        {r.strategy: time.mean(r.series[Names.ATTEMPTS]) for r in results},
        "attempts/s",
    )
    if any(sum(r.series[Names.BREAKER_OPEN]) for r in results):
        chart(
            "Open breakers: the share of app instances whose primary-region breaker is open",
            f"sampled in the middle of each second, mean {per}",
            {r.strategy: time.mean(r.series[Names.BREAKER_OPEN]) for r in results},
            "open",
            percent=True,
            y_max=1.0,
        )
    else:
        left_out.append("open breakers (no strategy's breaker opened)")
    load(
        "DNS queries at the resolver vs its capacity",
        Names.offered(Names.DNS),
        [scenario.dns.capacity] * time.seconds,
        "queries",
    )
    body = f"""{_head(scenario)}
<p class="note">Scenario <code>{html.escape(scenario.name)}</code>, seed {results[0].seed},
{_when(scenario.duration)} simulated, {html.escape(scenario.clients.describe())}, caller's
deadline {scenario.clients.deadline:g} s.</p>
{_html_table(scenario, results, REPORT_TABLE, styles)}
{_html_legend(REPORT_TABLE)}
{"".join(sections)}
<h2>Strategies</h2>
{_strategy_list(names, styles, strategies)}
{_triggers_html(scenario)}
<h2>Over time</h2>
<p class="note">{_over_time(time, left_out)}</p>
{"".join(charts)}"""
    return html_page(f"stormproof: {scenario.title or scenario.name}", body)


def _triggers_html(scenario: Scenario) -> str:
    triggers = "".join(
        f"<li><b>T{i}</b>: {html.escape(_trigger_text(t))}, from {_when(t.start)} to "
        f"{_when(t.end)} ({t.start:g} s to {t.end:g} s)</li>"
        for i, t in enumerate(scenario.triggers, 1)
    )
    return f"<h2>Triggers</h2><ul>{triggers}</ul>" if triggers else "<p>No triggers.</p>"


def _over_time(time: _Time, left_out: Sequence[str]) -> str:
    """The note above a run's charts: what a point is, how to read them, what is left
    out and why."""
    bucket = (
        "Each point is one second."
        if time.step == 1
        else f"Each point is a {time.step}-second bucket (the run lasts over "
        f"{_when(LONG_RUN)}): rates are the bucket's mean unless the chart says otherwise."
    )
    omitted = f" Left out: {'; '.join(html.escape(x) for x in left_out)}." if left_out else ""
    return (
        f"{bucket} Shaded bands: the triggers. Click a name in a chart's legend to hide its "
        "line; hover to read every line's value; drag to zoom, double-click to zoom out. "
        "<code>results.json</code> and <code>series.csv</code> hold every charted series "
        f"per second.{omitted}"
    )


def _head(scenario: Scenario) -> str:
    name = html.escape(scenario.title or scenario.name)
    return f"<h1>{name}</h1>\n<p>{html.escape(scenario.description.strip())}</p>"


def _html_table(
    scenario: Scenario,
    results: Sequence[RunResult],
    columns: Sequence[_Column],
    styles: dict[str, Style],
) -> str:
    headings = ("strategy", *(column.heading for column in columns))
    head = "".join(f'<th scope="col">{html.escape(heading)}</th>' for heading in headings)
    body = "".join(
        f"<tr><td>{swatch(styles[row[0]])}{html.escape(row[0])}</td>"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[1:])
        + "</tr>"
        for row in _rows(scenario, results, columns)
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _html_legend(columns: Sequence[_Column]) -> str:
    """What each column means (the metrics registry's words), under a table."""
    items = "".join(
        f"<dt>{html.escape(heading)}</dt><dd>{html.escape(meaning)}.</dd>"
        for heading, meaning in _definitions(columns)
    )
    return f'<dl class="legend">{items}</dl>'


def _strategy_list(
    names: Sequence[str], styles: dict[str, Style], strategies: dict[str, StrategySpec]
) -> str:
    items = "".join(
        f"<li>{swatch(styles[name])}<b>{html.escape(name)}</b>: "
        f"{html.escape(strategies[name].summary)}</li>"
        for name in names
    )
    return f'<ul class="strategies">{items}</ul>'


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


def _tick(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value / 1000:.3g}k"


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
    """A self-contained HTML report of a sweep: a chart and a table per metric (Plotly,
    embedded). Raises ``PlottingUnavailable`` without Plotly."""
    sweep = scenario.sweep
    assert sweep is not None
    names = [r.strategy for r in results]
    styles = styles_for(names)
    values = list(sweep.values)
    positive_x = all(v > 0 for v in values)
    log_x = positive_x and max(values) / min(values) > 100
    axis = Axis(values, sweep.parameter, log=log_x, markers=True)
    runs = "1 run" if sweep.repeat == 1 else f"the mean of {sweep.repeat} runs"
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
            f"{title} by {sweep.parameter}",
            lines,
            axis,
            _y_label(metric),
            styles=styles,
            note=f"each point {runs}" + ("; log scale" if log else ""),
            y_max=1.0 if share else None,
            percent=share,
            log=log,
        )
        head = "".join(
            f'<th scope="col">{swatch(styles[r.strategy])}{html.escape(r.strategy)}</th>'
            for r in results
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in _sweep_rows(scenario, results, metric)
        )
        sections.append(
            f"<h2>{html.escape(title)}</h2>\n<p class='note'>{html.escape(_meaning(metric))} "
            f"({_unit(metric)}).</p>\n{chart}\n<div class='scroll'><table><tr><th scope='col'>"
            f"{html.escape(sweep.parameter)}</th>{head}</tr>{body}</table></div>"
        )
    body = f"""{_head(scenario)}
<p class="note">Scenario <code>{html.escape(scenario.name)}</code>:
{len(sweep.values)} values of <code>{html.escape(sweep.parameter)}</code>, each
{"one run" if sweep.repeat == 1 else f"the mean of {sweep.repeat} runs"} (seeds
{results[0].seed if results else scenario.seed} onward, the same for every strategy).</p>
<h2>Strategies</h2>
{_strategy_list(names, styles, strategies)}
{"".join(sections)}"""
    return html_page(f"stormproof: {scenario.title or scenario.name}", body)


def _y_label(metric: Metric) -> str:
    return f"{metric.label} ({metric.unit})" if metric.unit and not metric.share else metric.label


def _occ_html(
    scenario: Scenario, strategies: dict[str, StrategySpec], results: Sequence[RunResult]
) -> str:
    """A contention run has no time series: its table, and a bar chart of the work and
    of the time until the last client is done."""
    assert scenario.occ is not None
    names = [r.strategy for r in results]
    styles = styles_for(names)
    charts = "".join(
        bar_chart(
            metric.title,
            {r.strategy: r.summary.get(metric.name) for r in results},
            _y_label(metric),
            styles=styles,
            note=f"{_meaning(metric)}; lower is better",
        )
        for metric in (CALLS, COMPLETION)
    )
    body = f"""{_head(scenario)}
<p class="note">Scenario <code>{html.escape(scenario.name)}</code>,
seed {results[0].seed}: {scenario.occ.clients} clients contending for one row. Add a
<code>[sweep]</code> table to plot the metrics against the number of clients.</p>
{_html_table(scenario, results, OCC_TABLE, styles)}
{_html_legend(OCC_TABLE)}
<h2>Strategies</h2>
{_strategy_list(names, styles, strategies)}
{charts}"""
    return html_page(f"stormproof: {scenario.title or scenario.name}", body)
