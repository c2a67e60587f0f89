"""RedisCacheStore's pure parts: the stable string form of cache keys."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from stormproof._redis_cache import key_text


class Color(enum.Enum):
    RED = 1


def price(sku: str) -> float:
    return 9.99


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("A-1", '"A-1"'),
        ("é\n", '"é\\n"'),
        (1, "1"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        (b"\xff", 'b"\\u00ff"'),
        (("A-1", 2), '["A-1",2]'),
        (frozenset({"b", "a"}), '{"a","b"}'),
        (Color.RED, f"<{__name__}.Color.RED>"),
        ((price, ("A-1",)), f'[<{__name__}.price>,["A-1"]]'),
        ((price, (), frozenset({("n", 1)})), f'[<{__name__}.price>,[],{{["n",1]}}]'),
    ],
)
def test_keys_have_a_stable_string_form(key: Any, text: str) -> None:
    assert key_text(key) == text


def test_different_keys_have_different_forms() -> None:
    keys = ["1", 1, 1.5, True, None, "null", b"1", ("1",), (1,), frozenset({1}), "[1]"]
    assert len({key_text(key) for key in keys}) == len(keys)


@pytest.mark.parametrize("key", [object(), ("A-1", object()), (lambda: 0,)])
def test_keys_without_one_are_refused(key: Any) -> None:
    with pytest.raises(TypeError, match="no stable string form"):
        key_text(key)


def test_the_docs_list_every_option_with_its_default() -> None:
    import inspect
    import json
    from pathlib import Path

    from stormproof.cache import RedisCacheStore

    page = (Path(__file__).parents[2] / "docs" / "cache.md").read_text()
    start = page.index("| `RedisCacheStore` option | Default | Meaning |")
    rows = {}
    for line in page[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        name, default, _ = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("`")] = default.strip("`")
    parameters = inspect.signature(RedisCacheStore).parameters
    assert set(rows) == set(parameters)
    for name, parameter in parameters.items():
        default = parameter.default
        if name == "serializer":  # None: the store makes a JSONSerializer
            shown = "JSONSerializer()"
        elif callable(default):
            shown = f"{default.__module__}.{default.__name__}"
        else:
            shown = json.dumps(default) if isinstance(default, str) else repr(default)
        assert shown == rows[name], name
