"""A requests adapter that sends each request through stormproof's policies.

Mount ``RetryAdapter`` on a ``requests.Session``; it replaces requests' and urllib3's
own retries (it is an ``HTTPAdapter`` with ``max_retries=0``), so every attempt it makes
reaches the server once, and no other. Its rules are the HTTP integrations'
(``stormproof.integrations.http``); bodies that can be sent again are bytes, or a file
that can seek back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import requests
import urllib3
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, HTTPAdapter
from requests.utils import rewind_body

from stormproof import Retry, remaining
from stormproof._core.validate import check_bool, check_int
from stormproof.policy import Policy

from ._http import (
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    Configured,
    Decisions,
    HTTPOptions,
    capped,
    drain,
)

__all__ = ["RetryAdapter"]

_READ_SIZE = 8192


class RetryAdapter(Configured, HTTPAdapter):
    """A ``requests`` transport adapter that sends each request through stormproof's
    policies: ``session.mount("https://", RetryAdapter(retry=...))``.

    - ``retry``, ``around``, ``methods``, ``statuses``: the HTTP integrations' options
      (``stormproof.integrations.http``);
    - ``pool_connections``, ``pool_maxsize``, ``pool_block``: ``HTTPAdapter``'s.

    urllib3 retries nothing beneath it (``max_retries`` is 0).
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "_decisions"]  # noqa: RUF012  (requests pickles these)

    def __init__(
        self,
        *,
        retry: Retry | None = None,
        around: Policy | None = None,
        methods: Iterable[str] = IDEMPOTENT_METHODS,
        statuses: Iterable[int] = RETRY_STATUSES,
        pool_connections: int = DEFAULT_POOLSIZE,
        pool_maxsize: int = DEFAULT_POOLSIZE,
        pool_block: bool = DEFAULT_POOLBLOCK,
    ) -> None:
        self._decisions = Decisions(
            HTTPOptions(retry=retry, around=around, methods=methods, statuses=statuses)
        )
        check_int("pool_connections", pool_connections, low=1)
        check_int("pool_maxsize", pool_maxsize, low=1)
        check_bool("pool_block", pool_block)
        super().__init__(
            pool_connections=pool_connections,
            pool_maxsize=pool_maxsize,
            max_retries=0,
            pool_block=pool_block,
        )

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        replayable, rewind = _body(request)
        decisions = self._decisions
        retry = decisions.retry_for(request.method or "GET", replayable)
        sending = (request, rewind, stream, timeout, verify, cert, proxies)
        response: requests.Response = decisions.run(retry, self._attempt, sending, _close, _never)
        return response

    def _attempt(self, *sending: Any) -> Any:
        return self._decisions.through(self._send, *sending)

    def _send(
        self,
        request: requests.PreparedRequest,
        rewind: bool,
        stream: bool,
        timeout: Any,
        verify: Any,
        cert: Any,
        proxies: Mapping[str, str] | None,
    ) -> Any:
        if rewind:
            rewind_body(request)
        response = super().send(
            request,
            stream=stream,
            timeout=_timeout(timeout, remaining()),
            verify=verify,
            cert=cert,
            proxies=None if proxies is None else dict(proxies),
        )
        headers = response.headers
        return self._decisions.judge(
            response, response.status_code, headers.get("retry-after"), headers.get("date")
        )

    def __repr__(self) -> str:
        return f"RetryAdapter(retry={self.retry!r})"


def _body(request: requests.PreparedRequest) -> tuple[bool, bool]:
    """Whether the body can be sent again, and whether it must be rewound first: bytes
    can (what ``data=``, ``json=`` and ``files=`` make); a file can if requests recorded
    where it started (it can seek); an iterator cannot."""
    body = request.body
    if body is None or isinstance(body, (bytes, str)):
        return True, False
    position = getattr(request, "_body_position", None)
    if type(position) is int and callable(getattr(body, "seek", None)):
        return True, True
    return False, False


def _timeout(timeout: Any, left: float | None) -> Any:
    """requests' timeout (a number, a (connect, read) pair, a urllib3 ``Timeout``, or
    None) within the time ``left`` before the caller's deadline."""
    if left is None:
        return timeout
    if timeout is None or (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)):
        return capped(timeout, left)
    if isinstance(timeout, tuple) and len(timeout) == 2:
        return tuple(capped(part, left) for part in timeout)
    if isinstance(timeout, urllib3.Timeout):
        shorter = timeout.clone()
        total = shorter.total
        shorter.total = capped(total if isinstance(total, (int, float)) else None, left)
        return shorter
    return timeout  # not one requests takes: it says so itself


def _close(response: requests.Response) -> None:
    """Drop a retried response's body and release its connection."""
    try:
        raw = response.raw
        stream = getattr(raw, "stream", None)
        if callable(stream):
            drain(stream(_READ_SIZE, decode_content=False))
    finally:
        with contextlib.suppress(Exception):
            response.close()


def _never(response: requests.Response) -> Awaitable[None]:  # pragma: no cover
    raise AssertionError("requests is sync: its attempts never run in a task")
