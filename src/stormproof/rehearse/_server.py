"""A moto server on loopback that counts the requests it receives.

``python -m stormproof.rehearse._server [--port N]`` serves moto's DynamoDB (and
every other moto service) on 127.0.0.1 through werkzeug's threaded server, one
connection per request (HTTP/1.0: each attempt opens a connection, so each resolves
the name), and prints ``PORT <n>`` once it listens. Each request is counted when it
arrives, by its tag (the ``rehearse/<tag>`` token of its User-Agent, ``-`` without
one), by the tenth of a second (Unix time times 10, a whole number) and by operation
(``X-Amz-Target``).
``GET /__stormproof/counts`` returns ``{"tag": {"tenth": {"Operation": n}}}``; it is
not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["COUNTS_PATH", "Counter", "counting", "main", "tag_of"]

COUNTS_PATH = "/__stormproof/counts"

_App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def tag_of(user_agent: str) -> str:
    """The rehearsal tag in a User-Agent (``... rehearse/aws-legacy``), or ``-``."""
    for token in user_agent.split():
        if token.startswith("rehearse/"):
            return token[len("rehearse/") :] or "-"
    return "-"


class Counter:
    """Requests by tag, tenth of a second and operation, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[int, dict[str, int]]] = {}

    def add(self, tag: str, tenth: int, operation: str) -> None:
        with self._lock:
            tenths = self._counts.setdefault(tag, {})
            ops = tenths.setdefault(tenth, {})
            ops[operation] = ops.get(operation, 0) + 1

    def document(self) -> dict[str, dict[str, dict[str, int]]]:
        with self._lock:
            return {
                tag: {str(tenth): dict(ops) for tenth, ops in tenths.items()}
                for tag, tenths in self._counts.items()
            }


def counting(app: _App, counter: Counter) -> _App:
    """``app`` behind a WSGI middleware that counts each request in ``counter`` and
    answers ``GET /__stormproof/counts`` itself."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            body = json.dumps(counter.document()).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.rpartition(".")[2] or str(environ.get("REQUEST_METHOD", "?"))
        counter.add(
            tag_of(str(environ.get("HTTP_USER_AGENT", ""))), int(time.time() * 10), operation
        )
        return app(environ, start_response)

    return middleware


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - run in a subprocess
    parser = argparse.ArgumentParser(prog="python -m stormproof.rehearse._server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - only in the server
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    class Handler(MotoRequestHandler):
        protocol_version = "HTTP/1.0"  # one connection per request

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", args.port, counting(app, Counter()), threaded=True, request_handler=Handler
    )
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
