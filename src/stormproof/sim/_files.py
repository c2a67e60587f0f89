"""Reading scenario files: TOML, and YAML read as people write it, with the line of
every field (for errors that name it)."""

from __future__ import annotations

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

__all__ = ["parse_toml", "parse_yaml", "read_toml", "read_yaml"]


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


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """A YAML scenario file: its data, and the line of every field."""
    return parse_yaml(path.read_text(encoding="utf-8"), str(path), path.name)


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
