"""What a client strategy is: the policies each app instance runs, as the library's own
options types, read and checked from a ``[[strategy]]`` table.

A strategy's ``breaker`` table is ``CircuitBreaker``'s options (``BreakerOptions``), its
``cache`` table ``Cache``'s, and so on: the same names, the same defaults (read from the
options types, never restated here), the same checks. Only what a file cannot hold is
the Lab's own: ``on`` names an error filter (``"regional"``: connection errors, timeouts,
5xx and throttling, ``stormproof.classify.is_regional_failure``; ``"all"``: every
``Exception``), ``deadline = true`` is the caller's deadline, and ``budget`` may name a
preset. Options the Lab does not model are refused with the reason. A ``fallback``
answers the Lab's degraded answer (``FALLBACK``), the one value a file need not give.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from stormproof import Backoff, ConfigError
from stormproof.classify import is_regional_failure
from stormproof.options import (
    AdaptiveThrottleOptions,
    BreakerOptions,
    BulkheadOptions,
    CacheOptions,
    FailoverOptions,
    FallbackOptions,
    HedgeOptions,
    Options,
    RetryOptions,
    TokenBucketOptions,
)

from ._fields import Section
from ._fleet_scope import FLUSH_INTERVAL, LEASE, FleetScoped, read_scope

__all__ = [
    "BUDGETS",
    "FALLBACK",
    "ON",
    "HedgeSpec",
    "RetrySpec",
    "StrategySpec",
    "ThrottleSpec",
    "on_name",
    "parse_strategy",
    "reference",
    "unused_region",
]

ON: Mapping[str, type[Exception] | Callable[[BaseException], bool]] = {
    "regional": is_regional_failure,
    "all": Exception,
}
"""What a strategy's ``on`` names: the errors a retry retries, a breaker counts."""

BUDGETS = ("aws-standard", "aws-2026", "ratio", "grpc")
"""The budget presets: ``TokenBucketBudget.aws_standard()`` and ``aws_2026()``,
``RatioBudget()`` and ``RetryThrottle()`` (gRPC's), with their defaults."""


FALLBACK: Any = "fallback"
"""What a strategy's ``Fallback`` answers a read with: a degraded answer (a default
value), which the run's recorder counts apart (``fallback_rate``)."""


def on_name(on: object) -> str:
    """The name (in ``ON``) of an error filter."""
    for name, value in ON.items():
        if value is on:
            return name
    raise ConfigError("on", "one of " + ", ".join(repr(name) for name in ON), on)


def unused_region(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
    """A Lab ``Failover``'s region callables: the simulator makes the attempts itself."""
    raise RuntimeError("the simulator calls regions itself")


_REGIONS = (("scenario's first region", unused_region), ("scenario's other regions", unused_region))
"""Where a strategy's ``FailoverOptions`` has its regions: a strategy is read before it
meets a scenario, whose regions replace these when an instance's client is built."""


@dataclass(frozen=True)
class RetrySpec:
    """A strategy's ``retry`` table: ``Retry``'s options (``options``: without budgets,
    on the real clock; each instance's ``Retry`` gets the simulation's clock and random
    stream, and budgets of its own) and the options of its budgets."""

    options: RetryOptions
    caller_deadline: bool = False
    """``deadline = true``: the call ends at the caller's deadline (the scenario's
    ``clients.deadline``)."""
    budget: str | TokenBucketOptions | FleetScoped | None = None
    """A preset's name (``BUDGETS``), a token bucket's options (``FleetScoped``: one
    bucket shared by the fleet), or none."""
    throttle: AdaptiveThrottleOptions | None = None
    breaker: BreakerOptions | None = None
    """A circuit breaker that only stops retries (first attempts always go)."""


@dataclass(frozen=True)
class HedgeSpec:
    """A strategy's ``hedge`` table: ``Hedge``'s options (``options``: without a budget,
    on the real clock; each instance's ``Hedge`` gets the simulation's clock and a
    budget of its own) and the options of its budget."""

    options: HedgeOptions
    budget: str | TokenBucketOptions | FleetScoped | None = None
    """A preset's name (``BUDGETS``), a token bucket's options (``FleetScoped``: one
    bucket shared by the fleet), or none."""


@dataclass(frozen=True)
class ThrottleSpec:
    """A strategy's ``throttle`` table: an ``AdaptiveThrottle`` of its own, in front of
    the retries (each request is admitted or refused once; its outcome, after its
    retries, is what the throttle learns), taking the decisions ``Retry(on=on,
    attempts=1, budget=AdaptiveThrottle(...))`` takes."""

    options: AdaptiveThrottleOptions
    on: type[Exception] | Callable[..., bool]
    """The failures that count as not accepted (the others: the dependency answered)."""


@dataclass(frozen=True)
class StrategySpec:
    """A client configuration: which policies each app instance runs, with which
    options (the library's options types; each instance builds its own policies from
    them, on the simulation's clock)."""

    name: str
    summary: str = ""
    kind: str = "composed"  # or "seed-patterns": the post-mortem snippets, flaws included
    retry: RetrySpec | None = None
    cache: CacheOptions | None = None
    breaker: BreakerOptions | None = None
    """A breaker per region (the failover's, with ``failover``), else the primary's."""
    failover: FailoverOptions | None = None
    bulkhead: BulkheadOptions | None = None
    hedge: HedgeSpec | None = None
    """Hedged attempts, inside the retries: a hedge takes the same way as the attempt
    it hedges (the failover's plan, the region's breaker and bulkhead)."""
    fallback: FallbackOptions | None = None
    """A degraded answer (``FALLBACK``) for reads that fail, outermost."""
    throttle: ThrottleSpec | None = None

    @property
    def honours_deadline(self) -> bool:
        """Whether its attempts end at the caller's deadline (``deadline = true`` in
        its retry table): each attempt's timeout is shortened to the time left, and no
        attempt is sent once none is left."""
        return self.retry is not None and self.retry.caller_deadline


# -- reading an options type from a table ----------------------------------------------------

OptionsT = TypeVar("OptionsT", bound=Options)

_KINDS = {"float": "number", "int": "integer", "bool": "boolean"}


def settable(options_type: type[Options], leave_out: Iterable[str] = ()) -> dict[str, str]:
    """The options of ``options_type`` a file can set, with their kind (``"number"``,
    ``"integer"`` or ``"boolean"``; ``" or none"`` added where None is allowed): the
    numbers and flags. Callables, clocks, stores and names are the Lab's to give."""
    found = {}
    for field in dataclasses.fields(options_type):  # type: ignore[arg-type]
        annotation = str(field.type)
        optional = annotation.endswith(" | None")
        kind = _KINDS.get(annotation.removesuffix(" | None"))
        if kind is None or field.name == "name" or field.name in leave_out:
            continue
        found[field.name] = kind + (" or none" if optional else "")
    return found


def _typed(section: Section, name: str, kind: str) -> Any:
    value = section.raw(name)
    if value is None and kind.endswith(" or none"):
        return None
    kind = kind.removesuffix(" or none")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise section.fail(name, "true or false", value)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise section.fail(name, "an integer" if kind == "integer" else "a number", value)
    if kind == "integer":
        if not isinstance(value, int):
            raise section.fail(name, "an integer", value)
        return value
    if not math.isfinite(value):
        raise section.fail(name, "a finite number", value)
    return value  # as written: the options type normalizes it, and quotes it if it refuses


def read_options(
    section: Section,
    options_type: type[OptionsT],
    given: Mapping[str, Any] | None = None,
    *,
    own: Iterable[str] = (),
    leave_out: Mapping[str, str] | None = None,
) -> OptionsT:
    """``options_type`` built from ``section``: each settable option (``settable``) it
    has, checked by the options type itself (its errors name the file, the line and the
    field), the others at their defaults. ``given``: values from elsewhere (the callables,
    and the fields in ``own``, which the caller read itself); ``leave_out``: options the
    Lab does not model, with the reason, refused when present. Refuses unknown fields."""
    values = dict(given or {})
    leave_out = leave_out or {}
    for name, kind in settable(options_type, (*own, *leave_out)).items():
        if section.has(name):
            values[name] = _typed(section, name, kind)
        else:
            section.raw(name)  # known: offered by "did you mean"
    for name, why in leave_out.items():
        if section.has(name):
            raise section.fail(name, f"left out ({why})", section.raw(name))
    for field in dataclasses.fields(options_type):  # type: ignore[arg-type]
        if field.default is dataclasses.MISSING and field.name not in values:
            raise section.fail(field.name, "given", None)
    try:
        made = options_type(**values)
    except ConfigError as error:
        raise section.fail(error.parameter, error.requirement, error.value) from None
    section.done()
    return made


# -- the parts of a strategy ------------------------------------------------------------------

_BACKOFF = Backoff()
BACKOFF_FIELDS = {"base": "number", "cap": "number", "multiplier": "number", "jitter": "string"}


def backoff_defaults() -> dict[str, Any]:
    """``Backoff``'s defaults, as a strategy's ``backoff`` table takes them."""
    return {name: getattr(_BACKOFF, name) for name in BACKOFF_FIELDS}


def _backoff(section: Section) -> Backoff:
    values: dict[str, Any] = {}
    for name, kind in BACKOFF_FIELDS.items():
        if not section.has(name):
            section.raw(name)
        elif kind == "string":
            values[name] = section.string(name)
        else:
            values[name] = _typed(section, name, kind)
    try:
        backoff = Backoff(**values)
    except ConfigError as error:
        raise section.fail(error.parameter, error.requirement, error.value) from None
    section.done()
    return backoff


def _on(section: Section, default: str | None) -> type[Exception] | Callable[..., bool]:
    if default is None and not section.has("on"):
        named = " or ".join(repr(name) for name in ON)
        raise section.fail("on", f"given, {named} (Retry's on has no default)", None)
    return ON[section.string("on", default, choices=tuple(ON))]


def _breaker(section: Section, name: str, *, with_on: bool = True) -> BreakerOptions:
    given: dict[str, Any] = {"name": name}
    if with_on:  # the library's default: every Exception counts
        given["on"] = _on(section, on_name(BreakerOptions.defaults()["on"]))
    return read_options(section, BreakerOptions, given, own=("on",) if with_on else ())


def _budget(part: Section) -> str | TokenBucketOptions | FleetScoped | None:
    value = part.data.get("budget")
    if isinstance(value, dict):
        section = part.section("budget")
        scope, lease, flush_interval = read_scope(section)
        options = read_options(section, TokenBucketOptions)
        if scope == "fleet":
            return FleetScoped(options, lease=lease, flush_interval=flush_interval)
        return options
    budget = part.raw("budget")
    if budget is not None and budget not in BUDGETS:
        raise part.fail(
            "budget",
            "one of " + ", ".join(repr(b) for b in BUDGETS) + " or a table of token-bucket options",
            budget,
        )
    return budget  # type: ignore[no-any-return]


_NOT_NESTED = "the Outage Lab's clients never call one Retry through another"


def _retry(part: Section) -> RetrySpec:
    on = _on(part, None)
    backoff = part.optional_section("backoff")
    throttling = part.optional_section("throttling_backoff")
    throttle = part.optional_section("throttle")
    breaker = part.optional_section("breaker")
    budget = _budget(part)
    deadline = part.raw("deadline", False)
    if isinstance(deadline, bool):
        seconds = None
    elif isinstance(deadline, (int, float)):
        seconds = float(deadline)
    else:
        raise part.fail("deadline", "true (the caller's), false or a number of seconds", deadline)
    given: dict[str, Any] = {
        "on": on,
        "deadline": seconds,
        "throttling_backoff": None if throttling is None else _backoff(throttling),
    }
    if backoff is not None:
        given["backoff"] = _backoff(backoff)
    options = read_options(
        part,
        RetryOptions,
        given,
        own=("on", "deadline"),
        leave_out={"retry_when_nested": _NOT_NESTED},
    )
    return RetrySpec(
        options=options,
        caller_deadline=deadline is True,
        budget=budget,
        throttle=None if throttle is None else read_options(throttle, AdaptiveThrottleOptions),
        breaker=None if breaker is None else _breaker(breaker, "retries", with_on=False),
    )


def _hedge(part: Section) -> HedgeSpec:
    budget = _budget(part)
    on = _on(part, on_name(HedgeOptions.defaults()["on"]))
    options = read_options(part, HedgeOptions, {"on": on}, own=("on",))
    return HedgeSpec(options=options, budget=budget)


def _fallback(part: Section) -> FallbackOptions:
    on = _on(part, on_name(FallbackOptions.defaults()["on"]))
    return read_options(part, FallbackOptions, {"value": FALLBACK, "on": on}, own=("on",))


def _throttle(part: Section) -> ThrottleSpec:
    if not part.has("on"):
        named = " or ".join(repr(name) for name in ON)
        raise part.fail("on", f"given, {named} (the failures that count as not accepted)", None)
    on = _on(part, None)
    return ThrottleSpec(options=read_options(part, AdaptiveThrottleOptions), on=on)


def _bulkhead(section: Section) -> BulkheadOptions:
    value = section.raw("bulkhead")
    if not isinstance(value, dict):
        given = _typed(section, "bulkhead", "integer")
        try:
            return BulkheadOptions(max_concurrent=given)
        except ConfigError as error:
            raise section.fail("bulkhead", error.requirement, error.value) from None
    queueing = "the Outage Lab's bulkheads refuse at once, they never queue"
    return read_options(
        section.section("bulkhead"),
        BulkheadOptions,
        leave_out={"max_queue": queueing, "max_wait": queueing},
    )


def parse_strategy(section: Section) -> StrategySpec:
    """A ``[[strategy]]`` table (or a built-in strategy's file) read and checked."""
    name = section.string("name")
    kind = section.string("kind", "composed", choices=("composed", "seed-patterns"))
    retry = cache = breaker = failover = bulkhead = hedge = fallback = throttle = None
    if (part := section.optional_section("retry")) is not None:
        retry = _retry(part)
    if (part := section.optional_section("hedge")) is not None:
        hedge = _hedge(part)
    if (part := section.optional_section("fallback")) is not None:
        fallback = _fallback(part)
    if (part := section.optional_section("throttle")) is not None:
        throttle = _throttle(part)
    if (part := section.optional_section("cache")) is not None:
        cache = read_options(
            part,
            CacheOptions,
            leave_out={
                "stale_while_revalidate": "the Outage Lab does not model background refreshes",
                "negative_ttl": "the Outage Lab's requests have no 'not found' answers",
            },
        )
    if (part := section.optional_section("breaker")) is not None:
        breaker = _breaker(part, "dependency")
    if (part := section.optional_section("failover")) is not None:
        failover = read_options(part, FailoverOptions, {"regions": _REGIONS})
    if section.has("bulkhead"):
        bulkhead = _bulkhead(section)
    spec = StrategySpec(
        name=name,
        summary=str(section.raw("summary", "")),
        kind=kind,
        retry=retry,
        cache=cache,
        breaker=breaker,
        failover=failover,
        bulkhead=bulkhead,
        hedge=hedge,
        fallback=fallback,
        throttle=throttle,
    )
    section.done()
    return spec


# -- the docs' reference --------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"{value:g}"


def _fields(options_type: type[Options], leave_out: Iterable[str] = ()) -> str:
    defaults = options_type.defaults()
    shown = []
    for name in settable(options_type, leave_out):
        if name in defaults:
            shown.append(f"`{name}` {_shown(defaults[name])}")
        else:
            shown.append(f"`{name}` (required)")
    return ", ".join(shown)


def reference() -> str:
    """The strategy tables' reference (a Markdown table), as the docs show it: made from
    the options types, so it shows the library's names and defaults."""
    backoff = ", ".join(f"`{k}` {_shown(v)}" for k, v in backoff_defaults().items())
    on = '`on` (`"regional"` or `"all"`'
    breaker = _fields(BreakerOptions)
    presets = ", ".join(_shown(name) for name in BUDGETS)
    regional: BreakerOptions = FailoverOptions.defaults()["breaker"]
    own = ", ".join(
        f"`{name}` {_shown(getattr(regional, name))}"
        for name, default in BreakerOptions.defaults().items()
        if name in settable(BreakerOptions) and getattr(regional, name) != default
    )
    rows = [
        (
            "`retry`",
            f"{on}; required), {_fields(RetryOptions, ('deadline', 'retry_when_nested'))}, "
            f"`deadline` (false; true: the caller's; or seconds), "
            f"`backoff` {{{backoff}}}, `throttling_backoff` (none; a `backoff` table), "
            f"`budget` (none; {presets}, or a token bucket "
            f'{{{_fields(TokenBucketOptions)}, `scope` "instance" (a bucket per app '
            f'instance; "fleet": one `FleetBudget` bucket for all of them, each '
            f"leasing `lease` {LEASE} retries' worth, exchanged at most every "
            f"`flush_interval` {FLUSH_INTERVAL:g} s)}}), "
            f"`throttle` {{{_fields(AdaptiveThrottleOptions)}}}, "
            f"`breaker` (a breaker that only stops retries: {{{breaker}}})",
            "`Retry` (`RetryOptions`), `TokenBucketBudget` (or `FleetBudget`), "
            "`AdaptiveThrottle`, `CircuitBreaker`",
        ),
        (
            "`cache`",
            _fields(CacheOptions, ("stale_while_revalidate", "negative_ttl")),
            "`Cache` for reads (`CacheOptions`)",
        ),
        (
            "`breaker`",
            f'{on}; default `"all"`), {breaker}',
            "a `CircuitBreaker` per region (`BreakerOptions`)",
        ),
        (
            "`failover`",
            _fields(FailoverOptions),
            "`Failover` over the regions (`FailoverOptions`), with the `breaker` table's "
            f"breaker per region if there is one, else Failover's own ({own})",
        ),
        (
            "`bulkhead`",
            "`max_concurrent` (required), as a number or a table",
            "a `Bulkhead` per region (`BulkheadOptions`), refusing at once",
        ),
        (
            "`hedge`",
            f'{_fields(HedgeOptions)}, {on}; default `"all"`), '
            f"`budget` (none; {presets}, or a token bucket)",
            "`Hedge` (`HedgeOptions`) around each attempt, inside the retries: a hedge "
            "takes the same way as the attempt it hedges (the failover's plan, the "
            "region's breaker and bulkhead), on another connection",
        ),
        (
            "`fallback`",
            f'{on}; default `"all"`)',
            "`Fallback` (`FallbackOptions`) for reads, outermost: a read that fails "
            "anyway gets a degraded answer (`fallback_rate`; a success, not goodput)",
        ),
        (
            "`throttle`",
            f"{on}; required: the failures that count as not accepted), "
            f"{_fields(AdaptiveThrottleOptions)}",
            "an `AdaptiveThrottle` of its own in front of the retries: each request is "
            "admitted or refused once, as by `Retry(on=..., attempts=1, budget=throttle)`",
        ),
    ]
    lines = ["| Table | Options (defaults) | Builds |", "| --- | --- | --- |"]
    lines += [f"| {part} | {fields} | {builds} |" for part, fields, builds in rows]
    return "\n".join(lines) + "\n"
