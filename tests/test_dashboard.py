"""The Grafana dashboard and the alert rules in docs/grafana query only the metrics
stormproof exports, under the Prometheus names its instrument names give them
(``stormproof._metric_names``: dots as underscores, ``_total`` on counters, ``_seconds``
on durations) and with their labels: a renamed metric or label fails here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stormproof import _metric_names as names

DOCS = Path(__file__).parent.parent / "docs"
DASHBOARD = DOCS / "grafana" / "stormproof.json"
ALERTS = DOCS / "grafana" / "alerts.yml"
PAGE = DOCS / "dashboards.md"

# -- what is exported --------------------------------------------------------------------


def label(attribute: str) -> str:
    return attribute.replace(".", "_")


def base(instrument: str) -> str:
    return instrument.replace(".", "_")


ERROR_TYPES = {
    "transient",
    "timeout",
    "throttling",
    "breaker_open",
    "budget",
    "throttled",
    "bulkhead_full",
    "deadline",
}
REJECTION_REASONS = {"breaker_open", "budget", "throttled", "bulkhead_full", "deadline"}

VALUES = {
    label(names.OUTCOME): {"success", "failure"},
    label(names.ERROR_TYPE): ERROR_TYPES,
    label(names.ATTEMPT): {"1", "2", "3", "4+"},
    label(names.STATE): {"closed", "open", "half_open", "forced_open", "disabled", "metrics_only"},
    label(names.RESULT): {"hit", "stale", "miss", "negative"},
}
"""Label values a query may name, where they are a fixed set (``reason`` depends on the
metric, see ``REASONS``)."""

REASONS = {
    base(names.RETRIES) + "_total": ERROR_TYPES,
    base(names.REJECTIONS) + "_total": REJECTION_REASONS,
}

COUNTERS = {
    names.CALLS: (names.POLICY, names.POLICY_KIND, names.OUTCOME, names.ERROR_TYPE),
    names.ATTEMPTS: (
        names.POLICY,
        names.POLICY_KIND,
        names.OUTCOME,
        names.ATTEMPT,
        names.ERROR_TYPE,
    ),
    names.RETRIES: (names.POLICY, names.POLICY_KIND, names.REASON),
    names.REJECTIONS: (names.POLICY, names.POLICY_KIND, names.REASON),
    names.BREAKER_TRANSITIONS: (names.POLICY, names.STATE),
    names.CACHE_LOOKUPS: (names.POLICY, names.RESULT),
    names.FAILOVER_SWITCHES: (names.POLICY,),
}
GAUGES = {
    names.BREAKER_STATE: (names.POLICY, names.STATE),
    names.BUDGET_AVAILABLE: (names.POLICY, names.POLICY_KIND),
    names.BULKHEAD_IN_FLIGHT: (names.POLICY,),
    names.FLEET_DEGRADED: (names.POLICY,),
}
HISTOGRAMS = {
    names.CALL_DURATION: (names.POLICY, names.POLICY_KIND, names.OUTCOME),
    names.ATTEMPT_DURATION: (names.POLICY, names.POLICY_KIND, names.OUTCOME, names.ATTEMPT),
}


def exported() -> dict[str, frozenset[str]]:
    """Every Prometheus series name stormproof exports, with its label names."""
    series: dict[str, frozenset[str]] = {}
    for instrument, attributes in COUNTERS.items():
        series[base(instrument) + "_total"] = frozenset(map(label, attributes))
    for instrument, attributes in GAUGES.items():
        series[base(instrument)] = frozenset(map(label, attributes))
    for instrument, attributes in HISTOGRAMS.items():
        labels = frozenset(map(label, attributes))
        series[base(instrument) + "_seconds_bucket"] = labels | {"le"}
        series[base(instrument) + "_seconds_sum"] = labels
        series[base(instrument) + "_seconds_count"] = labels
    return series


SERIES = exported()
CUMULATIVE = {name for name in SERIES if name.endswith(("_total", "_bucket", "_sum", "_count"))}
"""Series that only grow: the only ones a range (``rate``, ``increase``) may be taken of."""


def test_every_instrument_is_exported_under_one_name() -> None:
    instruments = {
        value
        for value in vars(names).values()
        if isinstance(value, str) and value.startswith("stormproof.") and value != names.__name__
    }
    assert instruments == set(COUNTERS) | set(GAUGES) | set(HISTOGRAMS) == set(names.KINDS)
    for kinds, kind in ((COUNTERS, "counter"), (GAUGES, "gauge"), (HISTOGRAMS, "histogram")):
        assert {instrument for instrument in kinds if names.KINDS[instrument] == kind} == set(kinds)
    for instrument in HISTOGRAMS:
        assert names.prometheus_name(instrument) == base(instrument) + "_seconds"
    assert "stormproof_calls_total" in SERIES
    assert "stormproof_call_duration_seconds_bucket" in SERIES
    assert "error_type" in SERIES["stormproof_calls_total"]


# -- a small PromQL reader ---------------------------------------------------------------

TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
    |(?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]])
    )""",
    re.VERBOSE,
)
AGGREGATIONS = {"sum", "min", "max", "avg", "count", "group", "topk", "bottomk", "quantile"}
FUNCTIONS = {
    "rate",
    "increase",
    "irate",
    "histogram_quantile",
    "clamp_min",
    "clamp_max",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "absent",
    "vector",
    "scalar",
}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]]
    range: str | None


@dataclass
class Query:
    selectors: list[Selector]
    grouping: set[str]
    functions: set[str]


def tokens(expr: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    expr = expr.rstrip()
    while position < len(expr):
        match = TOKEN.match(expr, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read {expr[position:]!r} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def balanced(found: list[tuple[str, str]]) -> bool:
    stack: list[str] = []
    for kind, text in found:
        if kind != "op":
            continue
        if text in "([{":
            stack.append(text)
        elif text in PAIRS and (not stack or stack.pop() != PAIRS[text]):
            return False
    return not stack


def read(expr: str, variables: dict[str, str] | None = None) -> Query:
    """The selectors, grouping labels and functions of ``expr``. Grafana variables in a
    range (``[$__rate_interval]``) are read as a duration; elsewhere they must sit in a
    string (a label's value)."""
    for variable, duration in (variables or {}).items():
        expr = expr.replace(f"[{variable}]", f"[{duration}]")
    found = tokens(expr)
    if not balanced(found):
        raise ValueError(f"unbalanced brackets in {expr!r}")
    query = Query([], set(), set())
    i = 0
    while i < len(found):
        kind, text = found[i]
        following = found[i + 1][1] if i + 1 < len(found) else None
        if kind == "op" and text == "{":
            raise ValueError(f"a selector without a metric name in {expr!r}")
        if kind != "ident":
            i += 1
            continue
        if text in GROUPING:
            i += 1
            if following == "(":
                i += 1
                while found[i][1] != ")":
                    if found[i][0] == "ident":
                        query.grouping.add(found[i][1])
                    i += 1
            continue
        if text in KEYWORDS:
            i += 1
            continue
        if following == "(" or (text in AGGREGATIONS and following in GROUPING):
            if text not in FUNCTIONS | AGGREGATIONS:
                raise ValueError(f"unknown function {text!r} in {expr!r}")
            query.functions.add(text)
            i += 1
            continue
        selector = Selector(text, [], None)
        i += 1
        if i < len(found) and found[i][1] == "{":
            i += 1
            while found[i][1] != "}":
                name, op, value = found[i][1], found[i + 1][1], found[i + 2]
                if found[i][0] != "ident" or value[0] != "string":
                    raise ValueError(f"cannot read the matcher at {name!r} in {expr!r}")
                selector.matchers.append((name, op, value[1][1:-1]))
                i += 3
                if found[i][1] == ",":
                    i += 1
            i += 1
        if i < len(found) and found[i][1] == "[":
            selector.range = found[i + 1][1]
            i += 3
        query.selectors.append(selector)
    return query


def problems(query: Query) -> list[str]:
    """What in ``query`` is not exported: unknown metrics, labels a metric does not have,
    values outside a label's set, ranges over gauges."""
    found: list[str] = []
    labels: set[str] = set()
    for selector in query.selectors:
        allowed = SERIES.get(selector.metric)
        if allowed is None:
            found.append(f"unknown metric {selector.metric}")
            continue
        labels |= allowed
        if selector.range is not None and selector.metric not in CUMULATIVE:
            found.append(f"a range over the gauge {selector.metric}")
        for name, op, value in selector.matchers:
            if name not in allowed:
                found.append(f"{selector.metric} has no label {name}")
                continue
            known = REASONS.get(selector.metric) if name == "reason" else VALUES.get(name)
            if known is None or "$" in value:
                continue
            named = value.split("|") if op in ("=~", "!~") else [value]
            found.extend(
                f"{selector.metric}: {name}={v!r} is never exported"
                for v in named
                if v not in known
            )
    if not query.selectors:
        found.append("no metric")
    found.extend(
        f"grouping by {n}, a label of none of its metrics" for n in query.grouping - labels
    )
    return found


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(stormproof_call_total[5m]))", "unknown metric"),
        ("rate(stormproof_calls{policy='a'}[5m])", "unknown metric"),
        ('rate(stormproof_calls_total{error.type="timeout"}[5m])', "cannot read"),
        ('rate(stormproof_calls_total{policy_kind="retry", reason="x"}[5m])', "no label reason"),
        ('stormproof_breaker_state{state="half-open"}', "never exported"),
        ('stormproof_breaker_state{state=~"open|halfopen"}', "never exported"),
        ('rate(stormproof_rejections_total{reason="transient"}[5m])', "never exported"),
        ("rate(stormproof_budget_available[5m])", "a range over the gauge"),
        ("sum by (region) (rate(stormproof_calls_total[5m]))", "grouping by region"),
        ("sum(rate(stormproof_calls_total[5m])", "unbalanced"),
        ("sum(rate(stormproof_calls_total[5m]))) / 2", "unbalanced"),
        ("{__name__='stormproof_calls_total'}", "without a metric name"),
        ("rates(stormproof_calls_total[5m])", "unknown function"),
    ],
)
def test_the_reader_catches(expr: str, problem: str) -> None:
    try:
        found = problems(read(expr))
    except ValueError as error:
        found = [str(error)]
    assert any(problem in p for p in found), found


# -- the dashboard -------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return list(dashboard()["panels"])


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel["targets"]]


GRAFANA = {"$__rate_interval": "5m"}


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] == "stormproof"
    assert board["title"]
    assert board["id"] is None
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    policy = variables["policy"]
    assert policy["type"] == "query"
    assert policy["multi"] is True
    assert policy["definition"] == "label_values(stormproof_calls_total, policy)"
    assert policy["query"]["query"] == policy["definition"]
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_every_panel_has_a_title_a_description_and_a_query() -> None:
    assert len(panels()) >= 12
    for panel in panels():
        assert panel.get("title", "").strip(), panel
        assert len(panel.get("description", "")) >= 40, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.parametrize(("title", "expr"), dashboard_exprs())
def test_dashboard_queries_name_only_exported_metrics_and_labels(title: str, expr: str) -> None:
    query = read(expr, GRAFANA)
    assert problems(query) == [], title
    # every query follows the policy picker, and every range the rate interval
    for selector in query.selectors:
        assert ("policy", "=~", "$policy") in selector.matchers, (title, selector)
    ranges = re.findall(r"\[([^\]]*)\]", expr)
    assert set(ranges) <= {"$__rate_interval"}, (title, ranges)


def test_dashboard_variables_name_exported_metrics_and_labels() -> None:
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
        assert match, variable["definition"]
        metric, name = match.groups()
        assert name in SERIES[metric], variable["name"]


def test_dashboard_shows_what_an_outage_needs() -> None:
    used = {
        selector.metric
        for _, expr in dashboard_exprs()
        for selector in read(expr, GRAFANA).selectors
    }
    # every exported instrument has a panel (histograms through their buckets)
    assert {name for name in SERIES if not name.endswith(("_sum", "_count"))} <= used
    types = {panel["type"] for panel in panels()}
    assert "state-timeline" in types
    functions = set().union(*(read(e, GRAFANA).functions for _, e in dashboard_exprs()))
    assert "histogram_quantile" in functions


# -- the alert rules ---------------------------------------------------------------------

EXPECTED_ALERTS = {
    "StormproofRetryAmplificationHigh",
    "StormproofBreakerOpen",
    "StormproofBudgetExhausted",
    "StormproofCacheMostlyStale",
}


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_alert_rules_are_complete() -> None:
    loaded = yaml.safe_load(ALERTS.read_text())
    assert all(group["name"] and group["rules"] for group in loaded["groups"])
    assert {rule["alert"] for rule in rules()} >= EXPECTED_ALERTS
    for rule in rules():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["description"]) >= 80, rule["alert"]


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_alert_queries_name_only_exported_metrics_and_labels(rule: dict[str, Any]) -> None:
    query = read(rule["expr"])
    assert problems(query) == []
    assert all("$" not in value for s in query.selectors for _, _, value in s.matchers)


def test_the_alerts_hold_their_documented_thresholds() -> None:
    found = {rule["alert"]: rule for rule in rules()}
    amplification = found["StormproofRetryAmplificationHigh"]
    assert amplification["expr"].rstrip().endswith("> 1.5")
    assert amplification["for"] == "5m"
    assert found["StormproofBreakerOpen"]["for"] == "1m"
    assert found["StormproofBudgetExhausted"]["for"] == "1m"
    assert "<= 0" in found["StormproofBudgetExhausted"]["expr"]
    assert found["StormproofCacheMostlyStale"]["expr"].rstrip().endswith("> 0.5")


def ratio(expr: str) -> tuple[Query, Query]:
    """The two sides of ``expr``'s division (outside any brackets), comparison dropped."""
    depth = 0
    for position, char in enumerate(expr):
        depth += (char in "([{") - (char in ")]}")
        if char == "/" and depth == 0:
            denominator = re.split(r"\s[<>]=?\s|\s==\s", expr[position + 1 :])[0]
            return read(expr[:position], GRAFANA), read(denominator, GRAFANA)
    raise AssertionError(f"no division in {expr!r}")


def test_amplification_is_attempts_over_requests_per_policy() -> None:
    """Amplification: attempts / requests. Grouped by the policy and its kind, so a
    breaker named like the retry around it does not add its calls to the requests."""
    (panel,) = [p for p in panels() if p["title"] == "Retry amplification"]
    (alert,) = [r for r in rules() if r["alert"] == "StormproofRetryAmplificationHigh"]
    for expr in (panel["targets"][0]["expr"], alert["expr"]):
        attempts, requests = ratio(expr)
        assert [s.metric for s in attempts.selectors] == [base(names.ATTEMPTS) + "_total"]
        assert [s.metric for s in requests.selectors] == [base(names.CALLS) + "_total"]
        policy = {label(names.POLICY), label(names.POLICY_KIND)}
        assert attempts.grouping == requests.grouping == policy


# -- the page that explains them ---------------------------------------------------------


def test_the_docs_page_explains_every_panel_and_alert() -> None:
    page = PAGE.read_text()
    for panel in panels():
        assert panel["title"] in page, panel["title"]
    for rule in rules():
        assert rule["alert"] in page, rule["alert"]
    assert "(dashboards.md)" in (DOCS / "index.md").read_text()
