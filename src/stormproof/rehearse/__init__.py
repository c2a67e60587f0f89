"""``stormproof rehearse``: the us-east-1 story on real components.

Two moto servers on loopback stand for us-east-1 and us-west-2 behind test host names
(``stormproof.chaos.resolve``); a replicator keeps the west table in step; a billing
workload of ``threads`` users makes real boto3 calls for ``seconds`` in a process of
its own per strategy; ``stormproof.chaos.dns_outage`` empties the east name for part
of the run. Attempts are counted where they arrive (at the servers, and at the
resolver for those whose name did not resolve), and the Outage Lab's prediction for
the same parameters is shown beside the measured run.

``rehearse(RehearsalOptions(...))`` runs it; ``table``, ``results_document``,
``html_report`` and ``write_json`` report it. Needs ``pip install
'stormproof[rehearse]'`` (moto and boto3), imported only when a rehearsal runs.
"""

from importlib.util import find_spec

from ._rehearsal import Measured, Rehearsal, RehearsalOptions, lab_scenario, rehearse
from ._report import compare, html_report, results_document, table, write_json
from ._workload import STRATEGIES

__all__ = [
    "STRATEGIES",
    "Measured",
    "Rehearsal",
    "RehearsalOptions",
    "compare",
    "html_report",
    "lab_scenario",
    "missing_dependencies",
    "rehearse",
    "results_document",
    "table",
    "write_json",
]


def missing_dependencies() -> list[str]:
    """The packages a rehearsal needs that are not installed (moto, boto3, werkzeug)."""
    return [name for name in ("moto", "boto3", "werkzeug") if find_spec(name) is None]
