"""Every ```python block in docs/ runs, as written, and its assertions hold."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import stormproof.events
from stormproof.events import Event

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

blocks = [
    pytest.param(code, id=f"{page.name}:{n}")
    for page in sorted(DOCS.glob("*.md"))
    for n, code in enumerate(BLOCK.findall(page.read_text()), start=1)
]


def test_docs_have_examples() -> None:
    assert len(blocks) >= 6


@pytest.mark.parametrize("code", blocks)
def test_doc_example_runs(code: str) -> None:
    exec(compile(code, "<docs>", "exec"), {"__name__": "docs_example"})


# -- docs/events.md lists every event with every field ----------------------------------------

EVENTS_TABLE_HEADER = "| Event | `kind` | Fields (besides `policy`, `time`) | Emitted when |"
FIELD = re.compile(r"^`(\w+)` \(([^)]+)\): \S")


def events_table() -> dict[str, tuple[str, list[str], str]]:
    """The table in docs/events.md: event class name -> (kind, fields, when)."""
    lines = (DOCS / "events.md").read_text().splitlines()
    start = lines.index(EVENTS_TABLE_HEADER)
    assert lines[start + 1] == "| --- | --- | --- | --- |"
    rows: dict[str, tuple[str, list[str], str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        name, kind, fields, when = cells
        for code in (name, kind):
            assert re.fullmatch(r"`[^`]+`", code), f"{code}: in backticks"
        names = []
        for described in fields.split("<br>"):
            match = FIELD.match(described)
            assert match, f"{name}: a field is described as `name` (type): meaning: {described}"
            names.append(match.group(1))
        assert name.strip("`") not in rows, f"{name} listed twice"
        rows[name.strip("`")] = (kind.strip("`"), names, when)
    return rows


def test_the_events_table_lists_every_event_and_field() -> None:
    exported = {
        name: obj
        for name in stormproof.events.__all__
        if isinstance(obj := getattr(stormproof.events, name), type)
        and issubclass(obj, Event)
        and obj is not Event
    }
    rows = events_table()
    missing, unknown = sorted(set(exported) - set(rows)), sorted(set(rows) - set(exported))
    assert not missing, f"docs/events.md's table lacks {missing}"
    assert not unknown, f"docs/events.md's table lists {unknown}, not in stormproof.events"
    for name, event_type in exported.items():
        kind, fields, when = rows[name]
        assert kind == event_type.kind, name
        expected = [
            f.name for f in dataclasses.fields(event_type) if f.name not in ("policy", "time")
        ]
        assert fields == expected, f"{name}: the table lists {fields}, the event has {expected}"
        assert len(when) > 20, f"{name}: say when it is emitted"
