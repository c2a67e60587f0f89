"""The metrics a run reports, in one registry: each metric's name (its key in a run's
summary, in ``results.json`` and in a sweep's ``metrics`` list), how it is titled and
shown, and which way is better. Every table, chart and document takes its metrics from
here; the words are the project's glossary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "AMPLIFICATION",
    "AMPLIFICATION_DURING_TRIGGER",
    "ATTEMPTS",
    "CALLS",
    "COMPLETION",
    "CONFLICTS",
    "DNS_QUERIES",
    "FALLBACK_RATE",
    "GOODPUT",
    "GOODPUT_RATE",
    "MAX_QUEUE_LENGTH",
    "MAX_QUEUE_LENGTHS",
    "MEAN_LATENCY",
    "MEAN_QUEUE_LENGTH",
    "MEAN_QUEUE_LENGTHS",
    "METRICS",
    "P50_LATENCY",
    "P99_LATENCY",
    "PEAK_LOAD_RATIO",
    "PEAK_LOAD_RATIOS",
    "RECOVERY",
    "REQUESTS",
    "STALE_RATE",
    "SUCCESS_RATE",
    "UNFINISHED",
    "UTILISATION",
    "UTILISATIONS",
    "WASTED_SECONDS",
    "WASTED_WORK",
    "Metric",
    "reference",
]


@dataclass(frozen=True)
class Metric:
    """One metric of a run.

    ``name`` is its key in a run's summary; ``label`` heads its column in tables,
    ``title`` names it in charts and sweep tables, ``meaning`` says what it counts
    (the docs' glossary). A value is shown with ``format`` (a format spec) followed by
    its ``unit`` (``"x"``: a ratio, ``"s"``: seconds, ``""``: a count); a ``share`` (a
    part of a whole, 0 to 1) is shown as a percentage. ``higher_is_better``: True,
    False, or None when neither is. ``missing`` is shown for a run without a value
    (None); ``needs_trigger``: it has a value only in scenarios with triggers.
    ``scalar`` is False for a breakdown (a mapping of values), which sweeps leave out.
    """

    name: str
    label: str
    title: str
    meaning: str
    unit: str = ""
    format: str = ",.0f"
    share: bool = False
    higher_is_better: bool | None = None
    missing: str = "-"
    needs_trigger: bool = False
    scalar: bool = True

    def show(self, value: float | None) -> str:
        """``value`` as tables show it."""
        if value is None:
            return self.missing
        if self.share:
            return f"{100 * value:{self.format}}%"
        unit = self.unit
        return f"{value:{self.format}}{'' if unit in ('', 'x') else ' '}{unit}"

    @property
    def runs_name(self) -> str:
        """The key under which a sweep's point says how many runs had a value, when some
        had none."""
        return f"{self.name}_runs"


REQUESTS = Metric("requests", "requests", "Requests", "logical operations callers asked for")
ATTEMPTS = Metric(
    "attempts",
    "attempts",
    "Attempts",
    "tries sent toward a dependency (a try that fails to resolve the name counts)",
)
CALLS = Metric(
    "calls",
    "calls",
    "Calls the dependency received",
    "calls the contended row received (the work)",
    higher_is_better=False,
)
AMPLIFICATION = Metric(
    "amplification",
    "amplification",
    "Amplification: attempts per request",
    "attempts / requests",
    unit="x",
    format=".2f",
    higher_is_better=False,
)
AMPLIFICATION_DURING_TRIGGER = Metric(
    "amplification_during_trigger",
    "during trigger",
    "Amplification during the trigger",
    "attempts / requests, counting only the trigger's window",
    unit="x",
    format=".2f",
    higher_is_better=False,
)
SUCCESS_RATE = Metric(
    "success_rate",
    "success",
    "Success rate",
    "requests answered, fresh or stale",
    format=".2f",
    share=True,
    higher_is_better=True,
)
STALE_RATE = Metric(
    "stale_rate",
    "stale",
    "Stale rate: answered from a stale cache entry",
    "requests answered from a stale cache entry",
    format=".1f",
    share=True,
)
FALLBACK_RATE = Metric(
    "fallback_rate",
    "fallback",
    "Fallback rate: answered with a fallback's degraded answer",
    "requests answered with a fallback's degraded answer (a default value): counted in "
    "`success_rate`, not in `goodput`",
    format=".1f",
    share=True,
)
GOODPUT = Metric(
    "goodput",
    "goodput",
    "Goodput: requests answered within the deadline",
    "requests answered within the caller's deadline",
    higher_is_better=True,
)
GOODPUT_RATE = Metric(
    "goodput_rate",
    "goodput",
    "Goodput: answered within the deadline",
    "the share of requests answered within the caller's deadline",
    format=".2f",
    share=True,
    higher_is_better=True,
)
P50_LATENCY = Metric(
    "p50_latency_s",
    "p50",
    "p50 latency (s)",
    "the median time to an answer or an error, over all requests",
    unit="s",
    format=".3g",
    higher_is_better=False,
)
P99_LATENCY = Metric(
    "p99_latency_s",
    "p99",
    "p99 latency (s)",
    "the 99th percentile of the time to an answer or an error, over all requests",
    unit="s",
    format=".3g",
    higher_is_better=False,
)
MEAN_LATENCY = Metric(
    "mean_latency_s",
    "mean",
    "Mean latency (s)",
    "the mean time to an answer or an error, over all requests",
    unit="s",
    format=".3g",
    higher_is_better=False,
)
RECOVERY = Metric(
    "recovery_s",
    "recovery",
    "Recovery time (s)",
    "from the end of the trigger until goodput is back to 95% of its pre-trigger level "
    'for 10 s; `null` ("never") if not within the run',
    unit="s",
    format=".0f",
    higher_is_better=False,
    missing="never",
    needs_trigger=True,
)
PEAK_LOAD_RATIO = Metric(
    "peak_load_ratio",
    "peak load",
    "Peak load over capacity",
    "the highest offered load at a dependency (one-second buckets) over its capacity "
    "(capacity / mean service time; for a server that slows down with load, the highest "
    "rate it sustains, slowed or not)",
    unit="x",
    format=".2f",
    higher_is_better=False,
)
PEAK_LOAD_RATIOS = Metric(
    "peak_load_ratios",
    "peak loads",
    "Peak load over capacity, per dependency",
    "`peak_load_ratio` per dependency (each region, and `dns` for the resolver)",
    unit="x",
    format=".2f",
    higher_is_better=False,
    scalar=False,
)
DNS_QUERIES = Metric("dns_queries", "DNS queries", "DNS queries", "queries the resolver answered")
WASTED_WORK = Metric(
    "wasted_work",
    "wasted work",
    "Wasted work: requests served after their client gave up",
    "requests the dependency served after their client had given up",
    higher_is_better=False,
)
WASTED_SECONDS = Metric(
    "wasted_seconds",
    "wasted s",
    "Wasted work: server time after the client gave up (s)",
    "server-seconds the dependencies spent on requests after their client had given up "
    "(the part of each service time past the instant its answer could still be used)",
    unit="s",
    format=",.1f",
    higher_is_better=False,
)
UTILISATION = Metric(
    "utilisation",
    "utilisation",
    "Utilisation of the busiest region",
    "a region's busy time over its capacity's time: server-seconds of work started "
    "during the traffic over `capacity` x `duration`; the highest of the regions'",
    format=".1f",
    share=True,
)
UTILISATIONS = Metric(
    "utilisations",
    "utilisations",
    "Utilisation, per region",
    "`utilisation` per region",
    format=".1f",
    share=True,
    scalar=False,
)
MEAN_QUEUE_LENGTH = Metric(
    "mean_queue_length",
    "mean queue",
    "Mean queue length (longest region's)",
    "requests waiting in a region's queue, sampled in the middle of each second of traffic "
    "and averaged; the highest of the regions'",
    format=",.1f",
    higher_is_better=False,
)
MEAN_QUEUE_LENGTHS = Metric(
    "mean_queue_lengths",
    "mean queues",
    "Mean queue length, per region",
    "`mean_queue_length` per region",
    format=",.1f",
    higher_is_better=False,
    scalar=False,
)
MAX_QUEUE_LENGTH = Metric(
    "max_queue_length",
    "max queue",
    "Longest queue",
    "the most requests waiting in a region's queue at once during the traffic; the highest "
    "of the regions'",
    higher_is_better=False,
)
MAX_QUEUE_LENGTHS = Metric(
    "max_queue_lengths",
    "max queues",
    "Longest queue, per region",
    "`max_queue_length` per region",
    higher_is_better=False,
    scalar=False,
)
COMPLETION = Metric(
    "completion_s",
    "last done",
    "Time until the last client is done (s)",
    "when the last contending client finished (`null` if some had not by the end)",
    unit="s",
    format=".3g",
    higher_is_better=False,
)
UNFINISHED = Metric(
    "unfinished",
    "unfinished",
    "Clients not done by the end",
    "contending clients still retrying at the end of the run",
    higher_is_better=False,
)
CONFLICTS = Metric(
    "conflicts",
    "conflicts",
    "Conflicting writes",
    "writes refused because the row changed since it was read",
    higher_is_better=False,
)

METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        metric.name: metric
        for metric in (
            REQUESTS,
            ATTEMPTS,
            AMPLIFICATION,
            AMPLIFICATION_DURING_TRIGGER,
            SUCCESS_RATE,
            STALE_RATE,
            FALLBACK_RATE,
            GOODPUT,
            GOODPUT_RATE,
            P50_LATENCY,
            P99_LATENCY,
            MEAN_LATENCY,
            RECOVERY,
            PEAK_LOAD_RATIO,
            PEAK_LOAD_RATIOS,
            DNS_QUERIES,
            WASTED_WORK,
            WASTED_SECONDS,
            UTILISATION,
            UTILISATIONS,
            MEAN_QUEUE_LENGTH,
            MEAN_QUEUE_LENGTHS,
            MAX_QUEUE_LENGTH,
            MAX_QUEUE_LENGTHS,
            CALLS,
            COMPLETION,
            UNFINISHED,
            CONFLICTS,
        )
    }
)
"""Every metric, by name."""


def reference() -> str:
    """The metrics' reference (a Markdown table), as the docs show it."""
    lines = ["| Metric | Meaning | Unit | Better |", "| --- | --- | --- | --- |"]
    for metric in METRICS.values():
        unit = "share" if metric.share else {"x": "ratio", "s": "seconds", "": "count"}[metric.unit]
        better = {True: "higher", False: "lower", None: "-"}[metric.higher_is_better]
        lines.append(f"| `{metric.name}` | {metric.meaning} | {unit} | {better} |")
    return "\n".join(lines) + "\n"
