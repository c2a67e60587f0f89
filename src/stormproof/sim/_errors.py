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
    "timed_out",
]


class SimError(Exception):
    """Base of the simulated failures (never raised as such)."""


class NameNotResolved(socket.gaierror, SimError):
    """The endpoint's name did not resolve (an empty record, NXDOMAIN, SERVFAIL)."""


class AttemptTimeout(TimeoutError, SimError):
    """The client gave up waiting for an answer; the server may still be working on it.

    Made by ``timed_out``; its message is written only when someone reads it."""

    hostname = ""
    timeout = 0.0

    def __str__(self) -> str:
        return f"{self.hostname}: no answer in {self.timeout:.3g}s"


def timed_out(hostname: str, timeout: float) -> AttemptTimeout:
    """The error of an attempt at ``hostname`` that got no answer in ``timeout``."""
    error = AttemptTimeout()
    error.hostname = hostname
    error.timeout = timeout
    return error


class ServiceThrottled(SimError):
    """The service refused the request: its queue is full (HTTP 400 throttling)."""

    throttling = True
    status_code = 400


class ServerError(SimError):
    """The service failed the request (HTTP 500)."""

    status_code = 500
