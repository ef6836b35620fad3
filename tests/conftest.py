"""Shared test setup: offline by default (a network guard) and no GUI or model downloads.

The guard is installed when this module is imported, so it also covers collection and session
fixtures. It checks every address (connect, connect_ex, sendto, create_connection, DNS lookups)
*before* the real call, so a blocked attempt sends nothing; asyncio connects through the same
`socket.connect`.
Allowed: 127.0.0.0/8, ::1, "localhost" and unix sockets. An autouse fixture also fails any test
whose blocked attempt was swallowed by an `except Exception` on the way up.
The shared fakes come as fixtures: `clock` (a ManualClock) and `store` (an open MemoryStore on it).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from bot.scheduling.manual_clock import ManualClock
from bot.storage.memory import MemoryStore

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-local address. Not an OSError, so retry loops don't eat it."""


def is_local_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.split("%", 1)[0]  # an IPv6 scope id, as in fe80::1%eth0
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name other than localhost: never resolved, so never reached
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


class NetworkGuard:
    """Wraps the socket entry points; `real_*` are what an allowed call goes on to."""

    error = NetworkBlockedError

    def __init__(self) -> None:
        self.real_connect = socket.socket.connect
        self.real_connect_ex = socket.socket.connect_ex
        self.real_sendto = socket.socket.sendto
        self.real_create_connection = socket.create_connection
        self.real_getaddrinfo = socket.getaddrinfo
        self.blocked: list[str] = []
        self._lock = threading.Lock()

    def check(self, family: int, address: Any, what: str) -> None:
        if family == getattr(socket, "AF_UNIX", object()):
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if is_local_host(host):
            return
        message = (
            f"network access blocked in tests: {what} to {address!r}; tests are offline "
            "(use a fake server on 127.0.0.1 or a recorded response under tests/fixtures)"
        )
        with self._lock:
            self.blocked.append(message)
        raise NetworkBlockedError(message)

    def install(self) -> NetworkGuard:
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check(sock.family, address, "socket.connect")
            return guard.real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(sock.family, address, "socket.connect_ex")
            return guard.real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: Any, *flags_and_address: Any) -> int:
            if flags_and_address:  # sendto(data, address) or sendto(data, flags, address)
                guard.check(sock.family, flags_and_address[-1], "socket.sendto")
            return guard.real_sendto(sock, data, *flags_and_address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            guard.check(socket.AF_INET, address, "socket.create_connection")
            return guard.real_create_connection(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            # A DNS query is itself a packet; IP literals are judged at connect time.
            if host is not None and host != socket.gethostname() and not _is_ip_literal(host):
                guard.check(socket.AF_INET, (host,), "DNS lookup (socket.getaddrinfo)")
            return guard.real_getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.socket.sendto = sendto  # type: ignore[method-assign]
        socket.create_connection = create_connection
        socket.getaddrinfo = getaddrinfo
        socket._network_guard = self  # type: ignore[attr-defined]
        return self


def _is_ip_literal(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    return True


# Installed once per process, even if this module is imported a second time under another name.
NETWORK_GUARD: NetworkGuard = getattr(socket, "_network_guard", None) or NetworkGuard().install()


@pytest.fixture
def clock() -> ManualClock:
    """Wall, market and monotonic time that move only when the test says so."""
    return ManualClock(datetime(2025, 10, 10, 20, tzinfo=UTC))


@pytest.fixture
async def store(clock: ManualClock) -> AsyncIterator[MemoryStore]:
    """An open, empty in-memory store on the test's clock."""
    opened = MemoryStore(clock=clock)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def network_guard() -> NetworkGuard:
    """The installed guard, for tests that check it (clear `blocked` after provoking it)."""
    return NETWORK_GUARD


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """`bot.cli.main` configures structlog globally, bound to the stderr of that moment (pytest's
    capture stream, closed after the test); later tests must not log into it."""
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _fail_on_blocked_network() -> Iterator[None]:
    NETWORK_GUARD.blocked.clear()
    yield
    if NETWORK_GUARD.blocked:
        attempts = list(NETWORK_GUARD.blocked)
        NETWORK_GUARD.blocked.clear()
        pytest.fail("\n".join(attempts), pytrace=False)
