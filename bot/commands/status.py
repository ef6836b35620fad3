"""`status`: which sources are healthy or failing and since when, the last cycle and the next."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.commands.base import (
    BotStatus,
    Field,
    Reply,
    Request,
    SourceHealth,
    StatusProvider,
    TransportHealth,
)
from bot.commands.registry import Command, check_arg_count
from bot.render.text import format_moment
from intel.snapshot import SourceState
from intel.timeutil import iso

__all__ = ["StatusCommands", "render_status", "source_health", "status_to_json"]

USAGE = "status"
STATE_MARKS: Mapping[str, str] = {
    "ok": "✅",
    "failing": "❌",
    "open": "⛔",
    "not_configured": "➖",
}
NOT_RECORDED_MARK = "○"  # state "ok", but the recording has no data here: nothing failed
CHAT_MARKS: Mapping[str, str] = {
    "running": "✅",
    "rejected": "❌",
    "unreachable": "❌",
    "failed": "❌",
    "not_configured": "➖",
}
CHAT_STATES: Mapping[str, str] = {"rejected": "token rejected"}  # else the state's own words


class StatusCommands:
    """The `status` command group."""

    def __init__(self, status: StatusProvider) -> None:
        self._status = status

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "status",
                self.status,
                "source health, last cycle and next run",
                "status",
                USAGE,
            ),
        )

    async def status(self, request: Request) -> Reply:
        check_arg_count(request.args, USAGE)
        return render_status(await self._status())


def source_health(states: Mapping[str, SourceState]) -> tuple[SourceHealth, ...]:
    """The desk's per-source states as the status view shows them."""
    return tuple(
        SourceHealth(name, s.state, s.detail, s.since, s.recorded) for name, s in states.items()
    )


def status_to_json(status: BotStatus) -> dict[str, object]:
    """The status JSON of the contract: {"sources": {name: {"state", "detail"}}, ...}; an
    expected absence keeps state "ok" with "recorded": false and a "not recorded" detail."""

    def moment(value: datetime | None) -> str | None:
        return iso(value) if value is not None else None

    return {
        "sources": {
            s.name: {
                "state": s.state,
                "detail": s.detail,
                "since": moment(s.since),
                "recorded": s.recorded,
            }
            for s in status.sources
        },
        "market_now": iso(status.market_now),
        "last_cycle_at": moment(status.last_cycle_at),
        "last_cycle_market_at": moment(status.last_cycle_market_at),
        "next_run_at": moment(status.next_run_at),
        "outbox": dict(status.outbox),
        "transports": list(status.transports),
        "notes": list(status.notes),
        "origin": status.origin,
        "chat_transports": {
            t.name: {"state": t.state, "detail": t.detail, "since": moment(t.since)}
            for t in status.chat_transports
        },
    }


def render_status(status: BotStatus) -> Reply:
    """The operator's view: one line per source (marked by state, never by colour alone)."""
    lines = [f"Status · market moment {format_moment(status.market_now)}", "Sources:"]
    lines.extend(f"  {_source_line(source)}" for source in status.sources)
    if not status.sources:
        lines.append("  none reported")
    lines.extend(
        [
            f"Last cycle: {_last_cycle(status)}",
            f"Next run: {_moment(status.next_run_at, 'not scheduled')}",
            f"Outbox: {_counts(status.outbox)}",
            f"Transports: {', '.join(status.transports) or 'none'}",
        ]
    )
    if status.chat_transports:
        lines.append("Chat platforms:")
        lines.extend(f"  {_chat_line(chat)}" for chat in status.chat_transports)
    lines.extend(status.notes)
    fields = tuple(Field(source.name, _source_value(source)) for source in status.sources)
    return Reply(text="\n".join(lines), fields=fields)


def _chat_line(chat: TransportHealth) -> str:
    mark = CHAT_MARKS.get(chat.state, "•")
    line = f"{mark} {chat.name}: {CHAT_STATES.get(chat.state, chat.state.replace('_', ' '))}"
    if chat.detail:
        line += f" — {chat.detail}"
    if chat.since is not None:
        line += f" (since {format_moment(chat.since)})"
    return line


def _source_line(source: SourceHealth) -> str:
    mark = STATE_MARKS.get(source.state, "•") if source.recorded else NOT_RECORDED_MARK
    return f"{mark} {source.name}: {_source_value(source)}"


def _source_value(source: SourceHealth) -> str:
    if not source.recorded:  # the detail already says "not recorded: why"
        value = source.detail
    else:
        value = source.state.replace("_", " ")
        if source.detail:
            value += f" — {source.detail}"
    if source.since is not None:
        value += f" (since {format_moment(source.since)})"
    return value


def _last_cycle(status: BotStatus) -> str:
    if status.last_cycle_at is None:
        return "none yet"
    market = (
        f" for market moment {format_moment(status.last_cycle_market_at)}"
        if status.last_cycle_market_at is not None
        else ""
    )
    return f"{format_moment(status.last_cycle_at)}{market}"


def _moment(moment: datetime | None, missing: str) -> str:
    return format_moment(moment) if moment is not None else missing


def _counts(outbox: Mapping[str, int]) -> str:
    if not outbox:
        return "empty"
    return " · ".join(f"{name} {count}" for name, count in sorted(outbox.items()))
