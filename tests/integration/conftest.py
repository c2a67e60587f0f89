"""Real local HTTP servers on loopback, one per simulated region."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ._http_server import Server


@dataclass
class RegionServer:
    region: str
    port: int = 0
    requests: list[str] = field(default_factory=list)


def _serve(region: RegionServer) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            region.requests.append(self.path)
            body = json.dumps({"region": region.region, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    region.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def regions() -> Iterator[dict[str, RegionServer]]:
    servers = {name: RegionServer(name) for name in ("us-east-1", "us-west-2")}
    running = [_serve(server) for server in servers.values()]
    try:
        yield servers
    finally:
        for server, thread in running:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[Server]:
    """A counting HTTP/1.1 server on loopback (``_http_server.Server``)."""
    with Server.running() as running:
        yield running


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens (held, so nobody else takes it)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
