"""httpx transports that send each request through stormproof's policies.

``RetryTransport`` (for ``httpx.Client``) and ``AsyncRetryTransport`` (for
``httpx.AsyncClient``) wrap the transport that does the I/O and replace httpx's own
retries: every attempt they make reaches the server once, and no other.

Their rules are the HTTP integrations' (``stormproof.integrations.http``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

import httpx

from stormproof import ConfigError, Retry, remaining
from stormproof.policy import Policy

from ._http import (
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    Configured,
    Decisions,
    HTTPOptions,
    adrain,
    capped_timeouts,
    drain,
)

Inner = TypeVar("Inner", httpx.BaseTransport, httpx.AsyncBaseTransport)

__all__ = ["AsyncRetryTransport", "RetryTransport"]


class _Transport(Configured, Generic[Inner]):
    """What the sync and async transports share: options, the inner transport, and
    reading a request and a response."""

    __slots__ = ("_decisions", "_transport")

    def __init__(
        self,
        *,
        transport: Inner | None = None,
        retry: Retry | None = None,
        around: Policy | None = None,
        methods: Iterable[str] = IDEMPOTENT_METHODS,
        statuses: Iterable[int] = RETRY_STATUSES,
    ) -> None:
        self._decisions = Decisions(
            HTTPOptions(retry=retry, around=around, methods=methods, statuses=statuses)
        )
        if transport is None:
            transport = self._made_by()
        else:
            _inner(transport, self._kind)
        self._transport: Inner = transport

    _kind: ClassVar[type[Any]]
    """What the inner transport must be."""
    _made_by: ClassVar[type[Any]]
    """The inner transport made when none is given."""

    @property
    def transport(self) -> Inner:
        """The transport that does the I/O."""
        return self._transport

    def _retry_for(self, request: httpx.Request) -> Retry:
        return self._decisions.retry_for(request.method, _replayable(request.stream))

    def _judge(self, response: httpx.Response) -> Any:
        headers = response.headers
        return self._decisions.judge(
            response, response.status_code, headers.get("retry-after"), headers.get("date")
        )


def _inner(transport: object, kind: type) -> None:
    """Refuse what is not a transport of ``kind``, or one that retries by itself."""
    if not isinstance(transport, kind):
        raise ConfigError("transport", f"an httpx.{kind.__name__}, or None", transport)
    retries = getattr(getattr(transport, "_pool", None), "_retries", 0)
    if type(retries) is int and retries > 0:
        raise ConfigError(
            "transport",
            f"a transport without retries of its own (this one has retries={retries}, "
            "which would multiply the attempts: build it with retries=0)",
            transport,
        )


class RetryTransport(_Transport[httpx.BaseTransport], httpx.BaseTransport):
    """An ``httpx`` transport that sends each request through stormproof's policies.

    ``httpx.Client(transport=RetryTransport(retry=Retry(on=is_retryable_error)))``

    - ``transport``: the transport that does the I/O (default ``httpx.HTTPTransport()``;
      one with ``retries=`` of its own is refused);
    - ``retry``, ``around``, ``methods``, ``statuses``: the HTTP integrations' options
      (``stormproof.integrations.http``).

    Closing the transport closes the inner one.
    """

    __slots__ = ()

    _kind = httpx.BaseTransport
    _made_by = httpx.HTTPTransport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        try:
            response: httpx.Response = self._decisions.run(
                self._retry_for(request), self._attempt, (request, extensions), _close, _aclose
            )
        finally:
            request.extensions = extensions
        return response

    def _attempt(self, request: httpx.Request, extensions: dict[str, Any]) -> Any:
        return self._decisions.through(self._send, request, extensions)

    def _send(self, request: httpx.Request, extensions: dict[str, Any]) -> Any:
        left = remaining()
        if left is not None:
            request.extensions = {
                **extensions,
                "timeout": capped_timeouts(extensions.get("timeout"), left),
            }
        return self._judge(self._transport.handle_request(request))

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return f"RetryTransport(transport={self._transport!r}, retry={self.retry!r})"


class AsyncRetryTransport(_Transport[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport):
    """``RetryTransport`` for ``httpx.AsyncClient``: the same options and decisions,
    around an ``httpx.AsyncBaseTransport`` (default ``httpx.AsyncHTTPTransport()``);
    waits with the Retry's ``clock.asleep``."""

    __slots__ = ()

    _kind = httpx.AsyncBaseTransport
    _made_by = httpx.AsyncHTTPTransport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        try:
            response: httpx.Response = await self._decisions.arun(
                self._retry_for(request), self._attempt, (request, extensions), _close, _aclose
            )
        finally:
            request.extensions = extensions
        return response

    async def _attempt(self, request: httpx.Request, extensions: dict[str, Any]) -> Any:
        return await self._decisions.athrough(self._send, request, extensions)

    async def _send(self, request: httpx.Request, extensions: dict[str, Any]) -> Any:
        left = remaining()
        if left is not None:
            request.extensions = {
                **extensions,
                "timeout": capped_timeouts(extensions.get("timeout"), left),
            }
        return self._judge(await self._transport.handle_async_request(request))

    async def aclose(self) -> None:
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"AsyncRetryTransport(transport={self._transport!r}, retry={self.retry!r})"


def _replayable(stream: object) -> bool:
    """Whether a request's body can be sent again as it was: bytes (what ``content=``,
    ``data=`` and ``json=`` make, or a body read with ``request.read()``), or a
    multipart form whose files are bytes or can seek back. Not an iterator's body."""
    if isinstance(stream, httpx.ByteStream):
        return True
    fields = getattr(stream, "fields", None)
    if type(stream).__name__ != "MultipartStream" or not isinstance(fields, list):
        return False
    return all(_rewinds(getattr(field, "file", b"")) for field in fields)


def _rewinds(file: object) -> bool:
    """httpx sends a multipart file from its start: it must be bytes, or seekable."""
    if isinstance(file, (str, bytes)):
        return True
    try:
        return bool(file.seekable())  # type: ignore[attr-defined]
    except Exception:
        return False


def _close(response: httpx.Response) -> None:
    """Drop a retried response's body and release its connection."""
    try:
        drain(response.stream)  # type: ignore[arg-type]
    finally:
        with contextlib.suppress(Exception):
            response.close()


async def _aclose(response: httpx.Response) -> None:
    try:
        await adrain(response.stream)  # type: ignore[arg-type]
    finally:
        with contextlib.suppress(Exception):
            await response.aclose()
