"""DNS outages and overrides for tests, in this process.

``dns_outage("dynamodb.us-east-1.amazonaws.com", mode="empty")`` makes resolving
those names fail as they did in the October 2025 us-east-1 outage, for every client
in the process that resolves through ``socket.getaddrinfo`` (the standard library,
urllib3/requests/botocore, httpx, asyncio and aiohttp's default resolver). Other
names resolve as usual. ``resolve({"dynamodb.us-east-1.test": "127.0.0.1"})`` maps
test names to local servers. Both are context managers; the patch is installed while
any is active and removed after the last one ends. Thread-safe.
"""

from __future__ import annotations

import fnmatch
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Literal

from ._core.errors import ConfigError

__all__ = ["dns_outage", "resolve"]

Mode = Literal["nxdomain", "empty", "servfail"]

_ERRORS: dict[str, tuple[int, str]] = {
    # What glibc's getaddrinfo reports for each resolver answer.
    "nxdomain": (socket.EAI_NONAME, "Name or service not known"),
    "empty": (
        getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
        "No address associated with hostname",
    ),
    "servfail": (socket.EAI_AGAIN, "Temporary failure in name resolution"),
}


class _Registry:
    """Active outages and overrides, as immutable tuples replaced under the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outages: tuple[dns_outage, ...] = ()
        self.overrides: tuple[resolve, ...] = ()
        self.real: Any = None

    def install(self) -> None:
        if self.real is None:
            self.real = socket.getaddrinfo
            socket.getaddrinfo = _getaddrinfo

    def uninstall_if_idle(self) -> None:
        if self.real is not None and not self.outages and not self.overrides:
            socket.getaddrinfo = self.real
            self.real = None


_registry = _Registry()


def _normalize(host: object) -> str | None:
    if isinstance(host, bytes):  # anyio (httpx's async transport) passes IDNA bytes
        raw = host
        try:
            host = raw.decode("idna")
        except UnicodeError:
            host = raw.decode("ascii", errors="replace")
    if not isinstance(host, str):
        return None
    return host.rstrip(".").lower()


def _getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> Any:
    name = _normalize(host)
    if name is not None:
        for outage in reversed(_registry.outages):
            if outage.matches(name):
                code, message = _ERRORS[outage.mode]
                raise socket.gaierror(code, message)
        for override in reversed(_registry.overrides):
            address = override.address(name)
            if address is not None:
                host = address
                break
    real = _registry.real or socket.getaddrinfo
    return real(host, port, family, type, proto, flags)


class _Patch(ABC):
    """Shared start/stop/context-manager behaviour."""

    _active = False

    @abstractmethod
    def _register(self) -> None:
        """Add this patch to the registry (the lock is held)."""

    @abstractmethod
    def _unregister(self) -> None:
        """Remove this patch from the registry (the lock is held)."""

    def start(self) -> None:
        with _registry.lock:
            if self._active:
                return
            self._register()
            _registry.install()
            self._active = True

    def stop(self) -> None:
        with _registry.lock:
            if not self._active:
                return
            self._unregister()
            _registry.uninstall_if_idle()
            self._active = False

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class dns_outage(_Patch):
    """Make resolving ``hostnames`` fail in this process while active.

    ``mode``: ``"nxdomain"`` (the name does not exist), ``"empty"`` (the name exists
    with no address: the us-east-1 DynamoDB outage), or ``"servfail"`` (the resolver
    fails). Names may use shell wildcards (``"*.us-east-1.amazonaws.com"``).
    """

    def __init__(self, *hostnames: str, mode: Mode = "nxdomain") -> None:
        if not hostnames:
            raise ConfigError("hostnames", "at least one host name", hostnames)
        patterns = []
        for hostname in hostnames:
            name = _normalize(hostname)
            if not name:
                raise ConfigError("hostnames", "non-empty host names", hostname)
            patterns.append(name)
        if mode not in _ERRORS:
            raise ConfigError("mode", "one of 'nxdomain', 'empty', 'servfail'", mode)
        self.hostnames = tuple(patterns)
        self.mode: Mode = mode

    def matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hostnames)

    def _register(self) -> None:
        _registry.outages = (*_registry.outages, self)

    def _unregister(self) -> None:
        _registry.outages = tuple(o for o in _registry.outages if o is not self)

    def __repr__(self) -> str:
        names = ", ".join(repr(h) for h in self.hostnames)
        return f"dns_outage({names}, mode={self.mode!r})"


class resolve(_Patch):
    """Resolve the given host names to the given addresses in this process while active
    (``{"dynamodb.us-east-1.test": "127.0.0.1"}``)."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConfigError("mapping", "a non-empty mapping of host names to addresses", mapping)
        table: dict[str, str] = {}
        for hostname, address in mapping.items():
            name = _normalize(hostname)
            if not name or not isinstance(address, str) or not address:
                raise ConfigError("mapping", "host name -> address strings", (hostname, address))
            table[name] = address
        self.mapping = table

    def address(self, name: str) -> str | None:
        return self.mapping.get(name)

    def _register(self) -> None:
        _registry.overrides = (*_registry.overrides, self)

    def _unregister(self) -> None:
        _registry.overrides = tuple(o for o in _registry.overrides if o is not self)

    def __repr__(self) -> str:
        return f"resolve({self.mapping!r})"
