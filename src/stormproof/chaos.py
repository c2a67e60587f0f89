"""Fault injection beyond the ``stormproof.Chaos`` policy: DNS outages and overrides in
this process."""

from ._dns import dns_outage, resolve

__all__ = ["dns_outage", "resolve"]
