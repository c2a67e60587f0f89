"""A real HTTP/1.1 server on loopback for the HTTP integrations' tests: it answers
what each test tells it and counts what reaches it (requests, connections)."""

from __future__ import annotations

import contextlib
import email.utils
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["T0", "Answer", "Ledger", "Seen", "Server", "http_date"]

# -- the server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the server answers to one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Seen:
    """One request as it reached the server."""

    method: str
    path: str
    body: bytes


class Server:
    """A real HTTP/1.1 server (keep-alive) on 127.0.0.1, in threads of this process.

    ``answer(*answers)`` sets what the next requests get, in order (then ``200 ok``;
    ``repeat=True``: the sequence again and again). ``requests`` lists every request
    that reached it; ``connections`` counts the connections it accepted, ``open`` those
    still open. Only the headers an answer names are sent (no ``Date`` of its own).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Answer] = deque()
        self._repeat: tuple[Answer, ...] = ()
        self.requests: list[Seen] = []
        self.connections = 0
        self.open = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[Server]:
        server = cls()
        server._thread.start()
        try:
            yield server
        finally:
            server._httpd.shutdown()
            server._httpd.server_close()
            server._thread.join(timeout=10)

    def answer(self, *answers: Answer, repeat: bool = False) -> None:
        with self._lock:
            self._script = deque(answers)
            self._repeat = answers if repeat else ()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def hits(self) -> int:
        """Requests that reached the server."""
        with self._lock:
            return len(self.requests)

    def _next(self, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(seen)
            if not self._script and self._repeat:
                self._script.extend(self._repeat)
            return self._script.popleft() if self._script else Answer()

    def _connected(self, change: int) -> None:
        with self._lock:
            self.open += change
            self.connections += max(change, 0)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: connections are reused
        disable_nagle_algorithm = True
        timeout = 30  # a connection left open by a test ends, eventually

        def setup(self) -> None:
            super().setup()
            server._connected(+1)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                server._connected(-1)

        def answer(self) -> None:
            answer = server._next(Seen(self.command, self.path, self._body()))
            self.send_response_only(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = answer

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


T0 = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


class Ledger:
    """A retry budget that grants everything and writes down what it is told."""

    name = "ledger"

    def __init__(self) -> None:
        self.told: list[tuple[str, object]] = []

    def on_request(self) -> None:
        self.told.append(("request", None))

    def try_retry(self, error_class: str) -> object | None:
        self.told.append(("try_retry", error_class))
        return "receipt"

    def cancel_retry(self, receipt: object) -> None:
        self.told.append(("cancel", receipt))

    def on_success(self, receipt: object | None) -> None:
        self.told.append(("success", receipt))

    def on_failure(self, error_class: str | None) -> None:
        self.told.append(("failure", error_class))
