"""The docs' references are made from the code: the metrics from the registry, the
triggers from their classes, and every public name of ``stormproof.sim`` is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import stormproof.sim
from stormproof.sim import _metrics, _strategy_spec, _triggers

DOCS = Path(__file__).parents[2] / "docs"


def _block(page: Path, name: str) -> str:
    text = page.read_text()
    start = re.search(rf"<!-- {name}: .*? -->\n", text)
    assert start is not None, name
    end = text.index(f"<!-- end of {name} -->", start.end())
    return text[start.end() : end]


def test_the_metrics_table_is_the_registry() -> None:
    assert _block(DOCS / "outage-lab.md", "metrics") == _metrics.reference()


def test_the_triggers_reference_is_made_from_their_classes() -> None:
    guide = DOCS / "scenarios" / "writing.md"
    assert _block(guide, "triggers") == _triggers.reference()
    example = guide.read_text().split("```toml\n", 1)[1]
    listed = re.search(r'kind = "dns_empty" +# or: (.*)\n', example)
    assert listed is not None
    builtin = {
        kind
        for kind, cls in _triggers.trigger_kinds().items()
        if cls.__module__ == _triggers.__name__
    }
    assert {"dns_empty", *listed.group(1).split(", ")} == builtin


def test_every_public_name_is_documented() -> None:
    page = (DOCS / "outage-lab.md").read_text()
    api = page.split("## Python API", 1)[1]
    for name in stormproof.sim.__all__:
        assert f"`{name}`" in api, name
        value = getattr(stormproof.sim, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


def test_the_strategy_reference_is_made_from_the_options_types() -> None:
    assert _block(DOCS / "scenarios" / "writing.md", "strategies") == _strategy_spec.reference()
