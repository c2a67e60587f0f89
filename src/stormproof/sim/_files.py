"""Reading scenario files: TOML, JSON, and YAML read as people write it, with the line
of every field (for errors that name it)."""

from __future__ import annotations

import bisect
import json
import re
import sys
from pathlib import Path
from typing import Any

from ._fields import ScenarioError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        tomllib = None
try:
    import yaml
except ImportError:  # pragma: no cover - without the cli extra
    yaml = None  # type: ignore[assignment]

__all__ = ["parse_json", "parse_toml", "parse_yaml", "read_toml"]


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """A TOML scenario file: its data, and its text (for the lines of its fields)."""
    text = path.read_text(encoding="utf-8")
    return parse_toml(text, str(path), path.name), text


def parse_toml(text: str, where: str, name: str | None = None) -> dict[str, Any]:
    """The data of a TOML scenario (``where``: the file, for errors; ``name``: how the
    file is named in them)."""
    if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        raise ScenarioError(
            where,
            "reading scenario files",
            "possible: on Python 3.10 install stormproof[cli] (it brings tomli)",
            None,
        )
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(where, "the file", f"valid TOML ({error})", name or where) from None
    return data


if yaml is not None:

    class _YAMLLoader(yaml.SafeLoader):
        """YAML as people write scenario files: only ``true`` and ``false`` are booleans
        (YAML 1.1 also reads ``on``, ``off``, ``yes`` and ``no`` so, and ``on`` is a field
        here), and ``1e-3`` is a number, as in YAML 1.2."""

    _YAMLLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":bool", ":float"))]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _YAMLLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    _YAMLLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
            r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )


def parse_yaml(text: str, where: str, name: str | None = None) -> tuple[Any, dict[str, int]]:
    """The data of a YAML scenario, and the line of every field (``where``: the file,
    for errors; ``name``: how the file is named in them)."""
    if yaml is None:  # pragma: no cover - without the cli extra
        raise ScenarioError(
            where, "reading YAML scenario files", "possible: install stormproof[cli]", None
        )
    loader = _YAMLLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise ScenarioError(where, "the file", f"valid YAML ({reason})", name or where) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _node_lines(node, "", lines)
    return data, lines


def _node_lines(node: Any, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{path}.{key.value}" if path else str(key.value)
            lines.setdefault(name, key.start_mark.line + 1)
            _node_lines(value, name, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            name = f"{path}[{index}]"
            lines.setdefault(name, item.start_mark.line + 1)
            _node_lines(item, name, lines)


def parse_json(text: str, where: str, name: str | None = None) -> tuple[Any, dict[str, int]]:
    """The data of a JSON scenario, and the line of every field (``where``: the file,
    for errors; ``name``: how the file is named in them)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"{error.msg} at line {error.lineno}, column {error.colno}"
        raise ScenarioError(where, "the file", f"valid JSON ({reason})", name or where) from None
    return data, _json_lines(text)


_BLANK = re.compile(r"[ \t\n\r]*")


def _json_lines(text: str) -> dict[str, int]:
    """The line of every key (``a.b``) and array item (``a[0]``) of valid JSON
    ``text``, named as the YAML reader names them."""
    starts = [0] + [match.end() for match in re.finditer("\n", text)]
    decoder = json.JSONDecoder()
    lines: dict[str, int] = {}

    def line(index: int) -> int:
        return bisect.bisect_right(starts, index)

    def skip(index: int) -> int:
        match = _BLANK.match(text, index)
        return index if match is None else match.end()

    def value(index: int, path: str) -> int:
        """Walk the value at ``index``; the index just after it."""
        index = skip(index)
        opening = text[index]
        if opening not in "{[":
            return decoder.raw_decode(text, index)[1]
        closing = "}" if opening == "{" else "]"
        index = skip(index + 1)
        count = 0
        while text[index] != closing:
            if opening == "{":
                key, after = decoder.raw_decode(text, index)
                name = f"{path}.{key}" if path else key
                lines.setdefault(name, line(index))
                index = skip(after) + 1  # past the ':'
            else:
                name = f"{path}[{count}]"
                lines.setdefault(name, line(skip(index)))
                count += 1
            index = skip(value(index, name))
            if text[index] == ",":
                index = skip(index + 1)
        return index + 1

    value(0, "")
    return lines
