"""The lifecycle every resource-holding component shares: async `start()` and `close()`.

Sources, sentiment engines and coordinators fit `Lifecycle`; `enter_all` starts a set of them in
order onto an `AsyncExitStack`, which closes the started ones in reverse, also when a later start
fails, the work raises or the task is cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Protocol

import structlog

__all__ = ["Lifecycle", "NoResources", "enter_all"]

log = structlog.get_logger(__name__)


class Lifecycle(Protocol):
    async def start(self) -> None:
        """Acquire what the component holds (client, connection, model); called once."""
        ...

    async def close(self) -> None:
        """Release it; called once, after a successful `start`, whatever happened in between."""
        ...


class NoResources:
    """For components that hold nothing to open or close (replay data loads lazily)."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def enter_all(stack: AsyncExitStack, components: Iterable[Lifecycle]) -> None:
    """Start each distinct component in order, registering its close on `stack` (LIFO)."""
    seen: set[int] = set()
    for component in components:
        if id(component) in seen:  # one object serving several roles is opened once
            continue
        seen.add(id(component))
        await component.start()
        stack.push_async_callback(_close, component)


async def _close(component: Lifecycle) -> None:
    # A failed close is logged, not raised: it must neither keep the others open nor replace
    # the outcome (a signal, or the error that is unwinding) the caller is waiting for.
    try:
        await component.close()
    except Exception:
        log.exception("close_failed", component=type(component).__name__)
