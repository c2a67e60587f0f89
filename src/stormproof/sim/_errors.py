"""What a simulated attempt can fail with. Each is shaped like the real client error,
so stormproof's classification (``stormproof.classify``) sees them as it would see
botocore's or httpx's."""

from __future__ import annotations

import socket

__all__ = [
    "AttemptTimeout",
    "NameNotResolved",
    "ServerError",
    "ServiceThrottled",
    "SimError",
]


class SimError(Exception):
    """Base of the simulated failures (never raised as such)."""


class NameNotResolved(socket.gaierror, SimError):
    """The endpoint's name did not resolve (an empty record, NXDOMAIN, SERVFAIL)."""


class AttemptTimeout(TimeoutError, SimError):
    """The client gave up waiting for an answer; the server may still be working on it."""


class ServiceThrottled(SimError):
    """The service refused the request: its queue is full (HTTP 400 throttling)."""

    throttling = True
    status_code = 400


class ServerError(SimError):
    """The service failed the request (HTTP 500)."""

    status_code = 500
