from __future__ import annotations

import pickle

import pytest

from stormproof import BudgetExhausted, ConfigError, Rejected, Throttled


def test_config_error_names_parameter_and_value() -> None:
    error = ConfigError("failure_rate", "in (0, 1]", 1.5)
    assert str(error) == "failure_rate must be in (0, 1], got 1.5"
    assert error.parameter == "failure_rate"
    assert error.value == 1.5
    with pytest.raises(ValueError, match="failure_rate"):
        raise error


@pytest.mark.parametrize("kind", [Rejected, BudgetExhausted, Throttled])
def test_rejections_carry_policy_and_hint(kind: type[Rejected]) -> None:
    error = kind("dynamodb", 1.5)
    assert error.policy == "dynamodb"
    assert error.retry_after == 1.5
    assert "dynamodb" in str(error)
    assert "1.5" in str(error)
    assert kind("dynamodb").retry_after is None


def test_rejections_pickle() -> None:
    error = pickle.loads(pickle.dumps(Throttled("db", 2.0)))
    assert isinstance(error, Throttled)
    assert (error.policy, error.retry_after) == ("db", 2.0)
