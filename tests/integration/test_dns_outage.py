"""dns_outage and resolve against the real resolver path and real HTTP clients."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

from stormproof import ConfigError
from stormproof.chaos import dns_outage, resolve
from stormproof.classify import is_dns_failure

from .conftest import RegionServer

EAST = "dynamodb.us-east-1.test"
WEST = "dynamodb.us-west-2.test"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(host: str, port: int, path: str = "/item/k") -> dict[str, str]:
    with NO_PROXY.open(f"http://{host}:{port}{path}", timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("nxdomain", socket.EAI_NONAME),
        ("empty", getattr(socket, "EAI_NODATA", socket.EAI_NONAME)),
        ("servfail", socket.EAI_AGAIN),
    ],
)
def test_getaddrinfo_fails_for_those_hosts_only_and_recovers(mode: str, code: int) -> None:
    with resolve({EAST: "127.0.0.1", WEST: "127.0.0.1"}):
        assert socket.getaddrinfo(EAST, 443)[0][4][0] == "127.0.0.1"
        with dns_outage(EAST, mode=mode):  # type: ignore[arg-type]
            with pytest.raises(socket.gaierror) as caught:
                socket.getaddrinfo(EAST, 443)
            assert caught.value.errno == code
            assert socket.getaddrinfo(WEST, 443)[0][4][0] == "127.0.0.1"
            assert socket.getaddrinfo("localhost", 80)  # everything else resolves
        assert socket.getaddrinfo(EAST, 443)[0][4][0] == "127.0.0.1"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(EAST, 443)  # .test names do not exist outside resolve()


def test_wildcards_case_and_trailing_dots() -> None:
    with resolve({"a.us-east-1.test": "127.0.0.1"}), dns_outage("*.US-EAST-1.test"):
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("A.us-east-1.test.", 80)


def test_host_names_given_as_bytes() -> None:
    """anyio (under httpx's async transport) asks for IDNA-encoded bytes."""
    with resolve({"bytes.stormproof.test": "127.0.0.1"}):
        assert socket.getaddrinfo(b"bytes.stormproof.test", 80)[0][4][0] == "127.0.0.1"
        with dns_outage("bytes.stormproof.test"), pytest.raises(socket.gaierror):
            socket.getaddrinfo(b"bytes.stormproof.test", 80)


def test_the_patch_is_removed_when_nothing_is_active() -> None:
    original = socket.getaddrinfo
    with dns_outage(EAST):
        assert socket.getaddrinfo is not original
        with dns_outage(WEST):
            pass
        assert socket.getaddrinfo is not original
    assert socket.getaddrinfo is original


def test_a_real_http_client_fails_during_the_outage_and_recovers(
    regions: dict[str, RegionServer],
) -> None:
    port = regions["us-east-1"].port
    with resolve({EAST: "127.0.0.1"}):
        assert get(EAST, port)["region"] == "us-east-1"
        with dns_outage(EAST, mode="empty"):
            with pytest.raises(urllib.error.URLError) as caught:
                get(EAST, port)
            assert is_dns_failure(caught.value)
        assert get(EAST, port)["region"] == "us-east-1"
    assert len(regions["us-east-1"].requests) == 2


def test_httpx_sees_the_outage_too(regions: dict[str, RegionServer]) -> None:
    httpx = pytest.importorskip("httpx")
    port = regions["us-east-1"].port
    with resolve({EAST: "127.0.0.1"}), httpx.Client(trust_env=False, timeout=5) as client:
        assert client.get(f"http://{EAST}:{port}/x").json()["region"] == "us-east-1"
        with dns_outage(EAST, mode="empty"):
            with pytest.raises(httpx.ConnectError) as caught:
                client.get(f"http://{EAST}:{port}/x")
            assert is_dns_failure(caught.value)
        assert client.get(f"http://{EAST}:{port}/x").status_code == 200


def test_outages_are_thread_safe() -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for _ in range(200):
                with dns_outage(f"host{n}.test"):
                    with pytest.raises(socket.gaierror):
                        socket.getaddrinfo(f"host{n}.test", 80)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    original = socket.getaddrinfo
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert socket.getaddrinfo is original


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="hostnames must be at least one host name"):
        dns_outage()
    with pytest.raises(ConfigError, match="mode must be one of"):
        dns_outage(EAST, mode="blackhole")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mapping must be a non-empty mapping"):
        resolve({})
