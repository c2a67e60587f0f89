"""Fault injection: ``Chaos`` policies, and DNS outages and overrides in this process."""

from ._chaos import Chaos
from ._dns import dns_outage, resolve

__all__ = ["Chaos", "dns_outage", "resolve"]
