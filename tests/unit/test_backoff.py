from __future__ import annotations

import itertools
import math

import pytest

from stormproof import Backoff, ConfigError
from stormproof._backoff import Jitter


def fixed(value: float):  # type: ignore[no-untyped-def]
    return lambda: value


def test_defaults() -> None:
    backoff = Backoff()
    assert (backoff.base, backoff.cap, backoff.multiplier, backoff.jitter) == (
        0.05,
        20.0,
        2.0,
        "full",
    )


def test_no_jitter_is_the_capped_exponential() -> None:
    backoff = Backoff(base=0.05, cap=1.0, jitter="none")
    assert [backoff.delay(n) for n in range(1, 8)] == pytest.approx(
        [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )


def test_full_jitter_is_uniform_below_the_ceiling() -> None:
    assert Backoff(base=1, cap=20, random=fixed(0.5)).delay(3) == 2.0
    assert Backoff(base=1, cap=20, random=fixed(0.0)).delay(3) == 0.0
    # random == 1 reproduces the ceiling, as the AWS conformance vectors assume.
    assert Backoff(base=1, cap=20, random=fixed(1.0)).delay(5) == 16.0


def test_equal_jitter_keeps_half() -> None:
    backoff = Backoff(base=1, cap=20, jitter="equal", random=fixed(0.0))
    assert backoff.delay(3) == 2.0
    backoff = Backoff(base=1, cap=20, jitter="equal", random=fixed(1.0))
    assert backoff.delay(3) == 4.0


def test_decorrelated_jitter_grows_from_previous() -> None:
    backoff = Backoff(base=1, cap=20, jitter="decorrelated", random=fixed(1.0))
    assert backoff.delay(1) == 3.0  # uniform(base, 3 * base) at its top
    assert backoff.delay(2, previous=3.0) == 9.0
    assert backoff.delay(3, previous=9.0) == 20.0  # capped
    low = Backoff(base=1, cap=20, jitter="decorrelated", random=fixed(0.0))
    assert low.delay(5, previous=9.0) == 1.0  # never below base
    middle = Backoff(base=1, cap=20, jitter="decorrelated", random=fixed(0.5))
    assert middle.delay(4, previous=20.0) == 10.5  # uniform(base, cap) once 3 * previous > cap


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jitter_survives_the_cap(jitter: str) -> None:
    """Past the cap, clients still spread out: the cap applies before jitter."""
    randoms = itertools.cycle([0.1, 0.35, 0.6, 0.85])
    backoff = Backoff(base=0.05, cap=1.0, jitter=jitter, random=lambda: next(randoms))  # type: ignore[arg-type]
    delays = [backoff.delay(40, previous=1.0) for _ in range(4)]
    assert len(set(delays)) == 4
    assert all(0.0 <= d <= 1.0 for d in delays)


def test_huge_retry_numbers_do_not_overflow() -> None:
    backoff = Backoff(base=0.001, cap=5.0, multiplier=10.0, jitter="none")
    assert backoff.delay(10**9) == 5.0
    assert Backoff(base=0.0, cap=0.0, jitter="none").delay(10**6) == 0.0


def test_multiplier_one_is_constant() -> None:
    backoff = Backoff(base=0.3, cap=10, multiplier=1, jitter="none")
    assert {backoff.delay(n) for n in (1, 2, 50, 10**6)} == {0.3}


def test_ceiling_is_exposed() -> None:
    assert Backoff(base=0.5, cap=10).ceiling(4) == 4.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": -1}, "base must be >= 0, got -1"),
        ({"base": math.nan}, "base must be a finite number >= 0, got nan"),
        ({"base": "1"}, "base must be a finite number >= 0, got '1'"),
        ({"base": True}, "base must be a finite number >= 0, got True"),
        ({"cap": math.inf}, "cap must be a finite number >= 0, got inf"),
        ({"base": 2, "cap": 1}, "cap must be >= base (2), got 1"),
        ({"multiplier": 0.5}, "multiplier must be >= 1, got 0.5"),
        ({"jitter": "fuzzy"}, "jitter must be one of 'none', 'full', 'equal', 'decorrelated'"),
        ({"random": 0.5}, "random must be a zero-argument callable"),
    ],
)
def test_bad_options_name_the_parameter_and_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Backoff(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


def test_bad_retry_number() -> None:
    with pytest.raises(ConfigError, match="retry_number must be an integer >= 1, got 0"):
        Backoff().delay(0)


def test_value_semantics() -> None:
    assert Backoff(base=1) == Backoff(base=1)
    assert Backoff(base=1) != Backoff(base=2)
    assert len({Backoff(), Backoff()}) == 1
    assert repr(Backoff()) == "Backoff(base=0.05, cap=20.0, multiplier=2.0, jitter='full')"


@pytest.mark.parametrize("jitter", ["none", "full", "equal", "decorrelated"])
def test_a_zero_base_means_no_wait_at_any_retry(jitter: Jitter) -> None:
    backoff = Backoff(base=0, cap=20.0, jitter=jitter, random=lambda: 0.999)
    assert [backoff.delay(n) for n in (1, 2, 3, 32, 33, 10**6)] == [0.0] * 6
    assert backoff.ceiling(1) == backoff.ceiling(10**6) == 0.0
