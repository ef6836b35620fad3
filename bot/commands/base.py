"""Transport-neutral command types: who asked, where, with which arguments; and the reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from intel.models import Signal

__all__ = [
    "BotStatus",
    "Field",
    "OptionValue",
    "Reply",
    "Request",
    "SourceHealth",
    "StatusProvider",
    "TransportHealth",
]

OptionValue = str | int | float | bool
"""A typed option as a platform with typed options (Discord's app_commands) delivers it."""


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed command from any transport."""

    transport: str
    user_id: str
    chat_id: str  # where to answer
    dm_chat_id: str  # where to DM this user (a private chat with the bot)
    command: str  # lower-case name without the slash: "signal", "watch", …
    args: tuple[str, ...] = ()
    is_private: bool = True  # a DM with the bot, not a group or channel
    is_admin: bool = False  # may manage this chat's subscriptions
    # Named options as typed values, from platforms that type them (an integer stays an int);
    # text transports leave this empty and put every word in `args`. A handler reads its
    # option here first and parses its word from `args` otherwise.
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    thread_id: str | None = None  # the forum topic the command came from (Telegram)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """What every command returns; each transport renders it for its surface."""

    text: str
    fields: tuple[Field, ...] = ()
    chart_png: bytes | None = None
    signal: Signal | None = None  # set when the reply is a signal (Discord builds an embed)
    credits: tuple[str, ...] = ()  # the signal's data credits; empty: the replay sources'
    is_error: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    state: str  # "ok" | "failing" | "open" | "not_configured", as in the status JSON contract
    detail: str
    since: datetime | None = None
    recorded: bool = True  # False: the recording has nothing here (state stays "ok")


@dataclass(frozen=True, slots=True)
class TransportHealth:
    """A chat platform's state since it last changed, as `status` shows it."""

    name: str  # "discord", "telegram"
    state: str  # "running" | "rejected" | "unreachable" | "failed" | "not_configured"
    detail: str
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class BotStatus:
    """What `status` shows an operator; provided by the composition root."""

    market_now: datetime
    sources: tuple[SourceHealth, ...]
    last_cycle_at: datetime | None  # wall-clock time the last cycle finished
    last_cycle_market_at: datetime | None  # the market moment that cycle computed
    next_run_at: datetime | None
    outbox: dict[str, int]
    transports: tuple[str, ...]
    notes: tuple[str, ...] = ()
    # "bot": asked inside the running bot; "recorded": read from the running bot's record;
    # "probe": no bot runs on the database, so the sources were fetched just now.
    origin: Literal["bot", "recorded", "probe"] = "bot"
    chat_transports: tuple[TransportHealth, ...] = ()  # each chat platform's state


StatusProvider = Callable[[], Awaitable[BotStatus]]
