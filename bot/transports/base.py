"""The transport interface: transports only parse inbound commands and send outbound messages.

Sending raises one of the delivery errors below, split by what the sender must do next.

Lifecycle: `start` begins receiving commands; `stop` ends receiving them but `send` keeps working,
so the alerts still in flight at shutdown go out; `close` then releases the connection, after
which nothing is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.commands.base import Reply, Request
from bot.commands.registry import Command

__all__ = [
    "CommandHandler",
    "CommandMenu",
    "DeliveryError",
    "OutMessage",
    "PermanentDeliveryError",
    "RateLimitedError",
    "TransientDeliveryError",
    "Transport",
    "TransportRejectedError",
]

CommandHandler = Callable[[Request], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A proactive message (alert or DM): an intro line, the signal reply, an optional chart."""

    intro: str
    reply: Reply
    is_group: bool = False  # a group or channel, for per-group rate limits
    extra: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """Base: a message was not delivered."""


class RateLimitedError(DeliveryError):
    """The platform said slow down (HTTP 429): wait `retry_after_s`, then retry the same row."""

    def __init__(self, retry_after_s: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after_s:g} s)")
        self.retry_after_s = retry_after_s


class TransientDeliveryError(DeliveryError):
    """Network trouble or a 5xx: retry later with backoff."""


class PermanentDeliveryError(DeliveryError):
    """The bot was blocked or the chat is gone: disable that subscription, never retry."""


class TransportRejectedError(Exception):
    """The platform refused the transport at start (a bad token): one log line, others run."""


class Transport(Protocol):
    name: str  # "console", "discord", "telegram"

    async def start(self, handler: CommandHandler) -> None:
        """Begin receiving commands; each goes to `handler` and its reply is sent back."""
        ...

    async def stop(self) -> None:
        """Stop receiving commands (a command being answered may be abandoned); keep sending."""
        ...

    async def close(self) -> None:
        """Release the connection once the sender has stopped; called after `stop`."""
        ...

    async def send(self, chat_id: str, message: OutMessage) -> None:
        """Deliver one proactive message; raise a DeliveryError subclass on failure."""
        ...


@runtime_checkable
class CommandMenu(Protocol):
    """A transport that shows the platform its commands (Discord's slash commands, Telegram's
    command menu), built from the command registry; told them before `start`."""

    def use_commands(self, commands: Iterable[Command]) -> None: ...
