"""What a rehearsal reports: the table, ``results.json`` (measured beside the Lab's
prediction, with the difference per metric) and a self-contained HTML page with plots
(Plotly charts, plotly.js embedded once)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from stormproof.sim import (
    METRICS,
    REPORT_CSS,
    Axis,
    Band,
    Metric,
    Style,
    html_page,
    line_chart,
    styles_for,
    swatch,
)

from ._rehearsal import Measured, Rehearsal
from ._servers import REGIONS
from ._workload import STRATEGIES

__all__ = ["AGREEMENT", "COMPARED", "compare", "html_report", "results_document", "table"]

COMPARED = (
    "amplification",
    "amplification_during_trigger",
    "success_rate",
    "stale_rate",
    "goodput_rate",
    "p50_latency_s",
    "p99_latency_s",
    "recovery_s",
)
"""The metrics shown measured beside predicted."""

AGREEMENT = {"amplification": 0.2, "amplification_during_trigger": 0.2, "success_rate": 0.2}
"""The metrics on which the Lab's prediction should agree with the rehearsal, and how
closely (a relative difference)."""

_LEGACY_DEADLINE = (
    "the Lab cuts every attempt's timeout at the caller's deadline, even for strategies "
    "whose retry does not honour it: its legacy requests caught by the outage time out "
    "at once after 2 s and fail after their 10th attempt (25.6 s), where the SDK's "
    "succeed at the first attempt after the name resolves again; their users come back "
    "later, so the Lab's legacy run makes fewer requests"
)


def _why(rehearsal: Rehearsal, run: Measured, name: str) -> str:
    """Why the Lab and the rehearsal differ on ``name`` for ``run``, as far as can be
    told from the two runs."""
    predicted = rehearsal.predicted[run.strategy]
    reasons = []
    if run.strategy == "aws-legacy" and name != "amplification":
        reasons.append(_LEGACY_DEADLINE)
    o = rehearsal.options
    start, end = int(o.outage_start), math.ceil(o.outage_end)
    in_outage = sum(run.series["requests"][start:end])
    if name == "amplification_during_trigger" and in_outage < 100:
        reasons.append(
            f"only {in_outage:.0f} requests arrived during the outage (a closed loop of "
            f"{o.threads} users): one request or a retry's second more or less moves the "
            "ratio; run longer or with more threads (--seconds, --threads)"
        )
    requests, lab_requests = run.summary["requests"], predicted.summary["requests"]
    if requests and abs(lab_requests - requests) > 0.2 * requests:
        reasons.append(
            f"the users made {requests} requests here and {lab_requests} in the Lab: the "
            "real calls' latency (signing, HTTP, two servers and the workload sharing the "
            "cores) paces a closed loop differently from the Lab's service time"
        )
    if not reasons:
        reasons.append(
            "not explained by the known differences: compare the attempts per second, "
            "measured and predicted, in the first chart"
        )
    return "; ".join(reasons)


def _relative(measured: float | None, predicted: float | None) -> float | None:
    if measured is None or predicted is None:
        return None
    if measured == 0:
        return 0.0 if predicted == 0 else None
    return (predicted - measured) / abs(measured)


def compare(rehearsal: Rehearsal) -> dict[str, dict[str, dict[str, Any]]]:
    """Per strategy and metric: ``measured``, ``predicted``, ``difference`` (predicted -
    measured), ``relative`` (that over measured), and for the metrics of ``AGREEMENT``
    ``agrees`` and, where they do not, ``why``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for run in rehearsal.measured:
        predicted = rehearsal.predicted[run.strategy].summary
        rows: dict[str, dict[str, Any]] = {}
        for name in COMPARED:
            m, p = run.summary.get(name), predicted.get(name)
            row: dict[str, Any] = {
                "measured": m,
                "predicted": p,
                "difference": None if m is None or p is None else p - m,
                "relative": _relative(m, p),
            }
            if name in AGREEMENT:
                relative = row["relative"]
                agrees = relative is not None and abs(relative) <= AGREEMENT[name]
                row["agrees"] = agrees
                if not agrees:
                    row["why"] = _why(rehearsal, run, name)
            rows[name] = row
        out[run.strategy] = rows
    return out


def _show(name: str, value: float | None) -> str:
    metric = METRICS.get(name)
    if metric is None:
        return "-" if value is None else f"{value:,.0f}"
    return metric.show(value)


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


_TABLE = (
    ("requests", "requests"),
    ("success_rate", "success"),
    ("errors", "errors"),
    ("stale_rate", "stale"),
    ("amplification", "amplif."),
    ("amplification_during_trigger", "in outage"),
    ("p50_latency_s", "p50"),
    ("p99_latency_s", "p99"),
    ("recovery_s", "recovery"),
)


def table(rehearsal: Rehearsal) -> str:
    """The measured table, then measured vs predicted for the compared metrics."""
    header = ["strategy", *(label for _, label in _TABLE)]
    rows = [
        [run.strategy, *(_show(name, run.summary.get(name)) for name, _ in _TABLE)]
        for run in rehearsal.measured
    ]
    lines = ["measured (attempts counted at the servers and the resolver):", *_grid(header, rows)]
    comparison = compare(rehearsal)
    names = ("amplification", "amplification_during_trigger", "success_rate")
    header = ["strategy"]
    for name in names:
        label = dict(_TABLE)[name]
        header += [label, "Lab", "diff"]
    rows = []
    for strategy, metrics in comparison.items():
        row = [strategy]
        for name in names:
            cell = metrics[name]
            relative = cell["relative"]
            mark = "" if cell.get("agrees", True) else " !"
            row += [
                _show(name, cell["measured"]),
                _show(name, cell["predicted"]),
                ("-" if relative is None else f"{100 * relative:+.0f}%") + mark,
            ]
        rows.append(row)
    lines += ["", "measured vs the Outage Lab's prediction (! : more than 20% apart):"]
    lines += _grid(header, rows)
    return "\n".join(lines)


def results_document(rehearsal: Rehearsal) -> dict[str, Any]:
    """What ``results.json`` holds."""
    comparison = compare(rehearsal)
    options = asdict(rehearsal.options)
    options["strategies"] = list(rehearsal.options.strategies)
    return {
        "rehearsal": options,
        "outage": {
            "start_s": rehearsal.options.outage_start,
            "end_s": rehearsal.options.outage_end,
            "hostname": "dynamodb.us-east-1.rehearsal.test",
            "mode": "empty",
        },
        "wall_s": round(rehearsal.wall_s, 3),
        "service_time_s": round(rehearsal.service_time, 6),
        "replicated_items": rehearsal.replicated,
        "strategies": {
            run.strategy: {
                "summary": STRATEGIES[run.strategy],
                "measured": run.summary,
                "predicted": {
                    name: rehearsal.predicted[run.strategy].summary.get(name)
                    for name in (*COMPARED, "requests", "attempts")
                },
                "comparison": comparison[run.strategy],
                "wall_s": run.wall_s,
            }
            for run in rehearsal.measured
        },
    }


def write_json(document: dict[str, Any], path: str) -> None:
    """Write ``document`` to ``path``, indented."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, allow_nan=False)
        handle.write("\n")


# -- the page ------------------------------------------------------------------------------


def _styles() -> dict[str, Style]:
    """Each strategy's look as in the Lab's reports; its Lab prediction the same colour,
    thin and dotted."""
    names = list(STRATEGIES)
    looks = styles_for(names)
    for name in names:
        look = looks[name]
        looks[f"{name} (Lab)"] = Style(look.color, "dot", 1.5, look.symbol)
    return looks


_LOOKS = _styles()


def _chart(
    title: str,
    lines: dict[str, Sequence[float | None]],
    y_label: str,
    shade: tuple[float, float],
    seconds: float,
    *,
    note: str = "per second",
    percent: bool = False,
) -> str:
    """A chart of per-second series (the Lab's ``line_chart``) over the rehearsal's
    ``seconds``, x in seconds, the outage shaded."""
    points = math.ceil(seconds)
    axis = Axis([t + 0.5 for t in range(points)], "time (s)", 0.0, float(points))
    return line_chart(
        title,
        {name: values[:points] for name, values in lines.items()},
        axis,
        y_label,
        styles=_LOOKS,
        note=note,
        bands=[Band(shade[0], shade[1], "the outage: the east name resolves to nothing", "outage")],
        y_max=1.0 if percent else None,
        percent=percent,
    )


def _share(part: Sequence[float], whole: Sequence[float]) -> list[float | None]:
    return [p / w if w else None for p, w in zip(part, whole, strict=False)]


_STYLE = REPORT_CSS + ".off { background: #fbe3e3; }\n"


def _html_rows(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _swatch(strategy: str) -> str:
    look = _LOOKS.get(strategy)
    return (swatch(look) if look else "") + html.escape(strategy)


def html_report(rehearsal: Rehearsal) -> str:
    """A self-contained page: the measured table, measured vs predicted per metric (with
    why, where they differ by more than 20%), and plots over time."""
    o = rehearsal.options
    shade = (o.outage_start, o.outage_end)
    measured_rows = [
        [_swatch(r.strategy), *(html.escape(_show(n, r.summary.get(n))) for n, _ in _TABLE)]
        for r in rehearsal.measured
    ]
    comparison = compare(rehearsal)
    compare_rows = []
    whys = []
    for strategy, metrics in comparison.items():
        for name, cell in metrics.items():
            relative = cell["relative"]
            off = not cell.get("agrees", True)
            shown = "-" if relative is None else f"{100 * relative:+.0f}%"
            if off:
                shown = f'<span class="off">{shown}</span>'
            compare_rows.append(
                [
                    _swatch(strategy),
                    html.escape(_metric(name).title),
                    html.escape(_show(name, cell["measured"])),
                    html.escape(_show(name, cell["predicted"])),
                    shown,
                ]
            )
            if off:
                whys.append(
                    f"<li><b>{html.escape(strategy)}, {html.escape(_metric(name).title)}</b>: "
                    f"{html.escape(cell['why'])}</li>"
                )
    charts = []
    runs: list[Measured] = rehearsal.measured
    charts.append(
        _chart(
            "Attempts per second, counted at the servers and the resolver (dotted: the Lab)",
            {
                **{r.strategy: r.series["attempts"] for r in runs},
                **{
                    f"{r.strategy} (Lab)": rehearsal.predicted[r.strategy].series["attempts"][
                        : len(r.series["attempts"])
                    ]
                    for r in runs
                },
            },
            "attempts/s",
            shade,
            o.seconds,
            note="per second; dotted: the Lab's prediction for the same strategy",
        )
    )
    charts.extend(
        _chart(
            f"Requests per second received by the {region} server",
            {r.strategy: r.series[f"attempts:{region}"] for r in runs},
            "requests/s",
            shade,
            o.seconds,
        )
        for region in REGIONS
    )
    charts.append(
        _chart(
            "Success share (by the second requests arrived)",
            {r.strategy: _share(r.series["successes"], r.series["requests"]) for r in runs},
            "success",
            shade,
            o.seconds,
            note="per second, by the second requests arrived",
            percent=True,
        )
    )
    charts.append(
        _chart(
            "User-visible errors per second",
            {r.strategy: r.series["errors"] for r in runs},
            "errors/s",
            shade,
            o.seconds,
        )
    )
    charts.append(
        _chart(
            "Requests per second (a closed loop: users wait for their answer)",
            {r.strategy: r.series["requests"] for r in runs},
            "requests/s",
            shade,
            o.seconds,
        )
    )
    legend = "".join(
        f"<li>{_swatch(r.strategy)}: {html.escape(STRATEGIES[r.strategy])}</li>" for r in runs
    )
    why = f"<ul>{''.join(whys)}</ul>" if whys else "<p>Every compared metric agrees.</p>"
    body = f"""<h1>The us-east-1 DNS outage, rehearsed on real components</h1>
<p>Two moto servers on loopback stand for us-east-1 and us-west-2 behind test host names; a
replicator keeps the west table in step; {o.threads} users (threads, a closed loop, think time
{o.think_time:g} s on average) read accounts ({100 * o.read_share:g}% of requests, {o.keys} keys)
and write invoices with real boto3 calls for {o.seconds:g} s; the east name resolves to nothing
from {o.outage_start:g} s to {o.outage_end:g} s (shaded). Attempts are counted where they
arrive: at the servers, and (for attempts whose name did not resolve) at the resolver.</p>
<p class="note">Wall time {rehearsal.wall_s:.0f} s; a GetItem took
{1000 * rehearsal.service_time:.1f} ms (median, the Lab's service time);
{rehearsal.replicated} invoices replicated.</p>
<h2>Measured</h2>
{_html_rows(measured_rows, ["strategy", *(label for _, label in _TABLE)])}
<ul class="strategies">{legend}</ul>
<h2>Measured vs the Outage Lab's prediction</h2>
<p class="note">The Lab ran the same parameters (<code>stormproof.rehearse.lab_scenario</code>).
Difference: (predicted - measured) / measured; amplification and success rate should agree
within 20%.</p>
{_html_rows(compare_rows, ["strategy", "metric", "measured", "Lab", "difference"])}
<h3>Where they differ by more than 20%, and why</h3>
{why}
<h2>Over time</h2>
<p class="note">Each point is one second; shaded: the outage. Click a name in a chart's
legend to hide its line; hover to read every line's value.</p>
{"".join(charts)}"""
    return html_page("stormproof: the us-east-1 outage, rehearsed", body, css=_STYLE)


def _metric(name: str) -> Metric:
    return METRICS[name]
