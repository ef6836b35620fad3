"""The offline guard in conftest: non-local addresses are refused before any packet leaves."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# A non-routable address (a real connect would hang) and a public resolver.
REMOTE = [("10.255.255.1", 9), ("1.1.1.1", 80)]


@pytest.fixture
def guard(network_guard, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The guard with its real calls replaced by spies: a blocked address must never reach them."""
    reached: list[object] = []

    def spy(real):
        def call(*args: object, **kwargs: object) -> object:
            reached.append(args)
            return real(*args, **kwargs)

        return call

    for name in ("real_connect", "real_connect_ex", "real_sendto", "real_create_connection"):
        monkeypatch.setattr(network_guard, name, spy(getattr(network_guard, name)))
    network_guard.reached = reached  # type: ignore[attr-defined]
    yield network_guard
    network_guard.blocked.clear()  # the attempts here were provoked on purpose


@pytest.fixture
def local_server() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"hello")
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()
    server.close()
    for conn in accepted:
        conn.close()


@pytest.mark.parametrize("address", REMOTE, ids=["10.255.255.1:9", "1.1.1.1:80"])
def test_connect_to_a_remote_address_is_refused_before_the_real_connect(guard, address) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        with pytest.raises(guard.error, match="network access blocked"):
            sock.connect(address)
        with pytest.raises(guard.error):
            sock.connect_ex(address)
    assert time.monotonic() - started < 0.5  # refused at once, not a timed-out SYN
    assert guard.reached == []
    assert len(guard.blocked) == 2
    assert address[0] in guard.blocked[0]


@pytest.mark.parametrize("address", REMOTE, ids=["10.255.255.1:9", "1.1.1.1:80"])
def test_create_connection_to_a_remote_address_is_refused(guard, address) -> None:
    with pytest.raises(guard.error):
        socket.create_connection(address, timeout=5)
    assert guard.reached == []


@pytest.mark.parametrize("address", REMOTE, ids=["10.255.255.1:9", "1.1.1.1:80"])
async def test_asyncio_connections_go_through_the_guard(guard, address) -> None:
    with pytest.raises(guard.error):
        await asyncio.wait_for(asyncio.open_connection(*address), timeout=5)
    assert guard.reached == []
    assert guard.blocked


def test_udp_and_dns_are_refused(guard) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(guard.error):
        sock.sendto(b"x", ("1.1.1.1", 53))
    with pytest.raises(guard.error, match="DNS"):
        socket.getaddrinfo("example.com", 443)
    assert guard.reached == []


def test_a_swallowed_attempt_is_still_recorded(guard) -> None:
    # What a careless `except Exception` in product code would do:
    with contextlib.suppress(Exception):
        socket.create_connection(("1.1.1.1", 443))
    assert len(guard.blocked) == 1  # the autouse fixture would fail the test on this


def test_local_server_on_127_0_0_1_is_allowed(guard, local_server) -> None:
    with socket.create_connection(local_server, timeout=5) as sock:
        assert sock.recv(5) == b"hello"
    with socket.create_connection(("localhost", local_server[1]), timeout=5) as sock:
        assert sock.recv(5) == b"hello"
    assert guard.reached  # the real connect ran
    assert guard.blocked == []


async def test_asyncio_to_a_local_server_is_allowed(guard, local_server) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*local_server), timeout=5)
    assert await reader.readexactly(5) == b"hello"
    writer.close()
    await writer.wait_closed()
    assert guard.blocked == []


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_loopback_is_allowed(guard) -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 is not configured here")
    with server, socket.create_connection(server.getsockname()[:2], timeout=5):
        pass
    assert guard.blocked == []


def test_unix_sockets_are_allowed(guard) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = str(Path(folder) / "s")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
    assert guard.blocked == []
