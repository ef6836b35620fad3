"""The composition root: `run_bot` builds the store, desk, clock, chart, commands, sender,
scheduler and transports, starts them, waits for a stop (SIGINT/SIGTERM, end of console input), and
stops them in an order that loses nothing in flight: transports stop receiving commands, the
scheduler lets a running cycle finish, the sender lets sends in flight finish (through transports
still open), then transports close, then the desk's sources, engine and coordinator, last the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Literal, TextIO

import structlog

from bot.alerts.whales import WhaleAlerter, build_whale_message
from bot.commands.backtest import BacktestCommands
from bot.commands.base import BotStatus, Field, Reply, Request, TransportHealth
from bot.commands.performance import PerformanceCommands
from bot.commands.router import CommandRouter
from bot.commands.signal import modality_fields
from bot.commands.status import source_health
from bot.commands.whales import whale_status_line
from bot.config import BotConfig, TransportLimits
from bot.delivery.sender import OutboxSender
from bot.logs import Redactor
from bot.render.chart_task import ChartFn, ChartRenderer
from bot.render.text import DEFAULT_CREDITS, render_text
from bot.runstate import StateRecorder
from bot.scheduling.clock import DemoClock, MarketClock, build_market_clock
from bot.scheduling.cycle import (
    LAST_CYCLE_AT,
    LAST_CYCLE_MARKET_AT,
    CycleResult,
    SignalCycle,
    stored_time,
)
from bot.scheduling.scheduler import CycleScheduler, real_interval_s
from bot.storage.base import DeliveryKind, OutboxItem, Store, StoredSignal
from bot.storage.lock import DatabaseLock
from bot.storage.sqlite import SqliteStore
from bot.transports.base import (
    CommandHandler,
    CommandMenu,
    DeliveryError,
    OutMessage,
    Transport,
    TransportRejectedError,
)
from bot.transports.console import ConsoleTransport, greeting_text
from bot.transports.telegram import TelegramTransport, sender_limits
from intel.config import Secrets
from intel.desk import DeskFactory, SignalDesk, build_desk
from intel.timeutil import iso, utcnow

__all__ = ["build_message", "run_bot"]

SENDER_STOP_GRACE_S = 30.0
EXIT_BAD_CONFIG = 2  # every configured chat token was refused and there is no console

log = structlog.get_logger(__name__)


@dataclass
class _Bot:
    """Everything `run_bot` wires together."""

    config: BotConfig
    store: Store
    desk: SignalDesk
    clock: MarketClock
    chart: ChartFn
    sender: OutboxSender
    scheduler: CycleScheduler
    transports: Sequence[Transport]
    console: ConsoleTransport | None
    recorder: StateRecorder
    # Each chat platform's state: the unconfigured ones from the start, the rest once started.
    chats: list[TransportHealth] = field(default_factory=list)


async def run_bot(
    config: BotConfig,
    secrets: Secrets,
    *,
    console: bool,
    stdin: TextIO,
    stdout: TextIO,
    extra_transports: Sequence[Transport] = (),
    desk_factory: DeskFactory = build_desk,
) -> int:
    """Run the bot until SIGINT/SIGTERM or the end of console input; returns the exit status."""
    stop = asyncio.Event()
    clock_ref: list[MarketClock] = []  # the desk needs the clock; the clock needs the desk's data
    store = SqliteStore(
        config.storage.db_path,
        backoff_base_s=config.delivery.backoff_base_s,
        backoff_max_s=config.delivery.backoff_max_s,
    )
    # The whale-flow window is kept in the store (read once the desk starts, after the open).
    desk = desk_factory(
        config, market_clock=lambda: clock_ref[0].now(), flow_store=store.flow_window
    )  # refuses a bad mode
    chat: ConsoleTransport | None = None
    if console and not extra_transports:  # started when no chat platform runs (`_serve`)
        chat = ConsoleTransport(
            stdin,
            stdout,
            config.console.chart_dir,
            on_eof=stop.set,
            max_chart_files=config.console.max_chart_files,
        )
    await store.open()  # first: a bad path is reported as such, not as a lock problem
    lock = DatabaseLock(config.storage.db_path)
    try:
        lock.acquire()
        async with desk:  # sources, engine, coordinator: open in order, close in reverse
            transports = list(extra_transports) or _chat_transports(config, secrets, store, desk)
            bot = await _assemble(config, secrets, store, desk, clock_ref, transports, chat)
            if not extra_transports:
                bot.chats = _unconfigured(secrets)
            return await _serve(bot, Redactor(secrets.values()), stop)
    finally:
        await store.close()
        lock.release()  # after the store: see bot.storage.lock on SQLite's own locks


def _chat_transports(
    config: BotConfig, secrets: Secrets, store: Store, desk: SignalDesk
) -> list[Transport]:
    """A transport for every chat platform whose token is set (each starts, or fails alone, in
    `_serve`); discord.py loads only when used."""
    transports: list[Transport] = []
    if secrets.discord_token:
        from bot.transports.discord import DiscordTransport

        transports.append(
            DiscordTransport(secrets.discord_token, config.discord, desk.symbols, store)
        )
    if secrets.telegram_token:
        transports.append(
            TelegramTransport(
                secrets.telegram_token,
                store,
                limits=config.delivery.telegram,
                base_url=secrets.telegram_base_url,
            )
        )
    return transports


def _unconfigured(secrets: Secrets) -> list[TransportHealth]:
    tokens = [
        ("discord", "DISCORD_TOKEN", secrets.discord_token),
        ("telegram", "TELEGRAM_TOKEN", secrets.telegram_token),
    ]
    return [
        TransportHealth(name, "not_configured", f"{variable} is not set", utcnow())
        for name, variable, token in tokens
        if not token
    ]


async def _assemble(
    config: BotConfig,
    secrets: Secrets,
    store: Store,
    desk: SignalDesk,
    clock_ref: list[MarketClock],
    transports: Sequence[Transport],
    chat: ConsoleTransport | None,
) -> _Bot:
    # Live: the wall clock needs no end of data (and a source down at start must not stop us).
    data_end = (
        utcnow()
        if desk.live
        else min([(await desk.coverage(symbol))[1] for symbol in desk.symbols])
    )
    resume = await stored_time(store, LAST_CYCLE_MARKET_AT)
    clock = build_market_clock(config, data_end, resume, partial(_clock_ended, chat))
    clock_ref.append(clock)
    # The console too, though it starts only when no chat platform does: its rows wait for it.
    every = [*transports, chat] if chat is not None else list(transports)
    sender = OutboxSender(
        store,
        {t.name: t for t in every},
        {t.name: _sender_limits(config, t.name) for t in every},
        concurrency=config.delivery.concurrency,
        build_message=partial(build_message, Redactor(secrets.values()), credits=desk.credits),
        poll_interval_s=config.delivery.poll_interval_s,
        build_whale_message=partial(build_whale_message, Redactor(secrets.values())),
    )
    if config.whale_alerts.enabled:  # live whale sources call it as they count a transfer
        alerter = WhaleAlerter(config.whale_alerts, store, desk.symbols, sender.wake)
        desk.add_large_transfer_listener(alerter)
    chart = ChartRenderer.from_config(config.chart)  # one chart for alerts and `signal` alike
    cycle = SignalCycle(desk, store, config, chart, on_recorded=sender.wake)
    await cycle.follow_books()  # live: the followed books stream from the start, not the 1st cycle
    speed = clock.speed if clock.speed > 0 else 1.0  # a fixed clock: cycle at the market rate
    interval_s = real_interval_s(config.schedule.interval_minutes, speed)
    recorder = StateRecorder(
        store,
        clock,
        interval_s,
        desk.source_health,
        lambda: scheduler.next_run_at,
        notes=partial(_desk_notes, desk),
    )
    scheduler = CycleScheduler(partial(_cycle_and_record, cycle, recorder), store, interval_s)
    return _Bot(config, store, desk, clock, chart, sender, scheduler, transports, chat, recorder)


def _desk_notes(desk: SignalDesk) -> tuple[str, ...]:
    """The coordinator and sentiment engine in use, as `status` shows them."""
    return desk.coordinator_status(), f"Sentiment: {desk.sentiment_engine_status()}"


def _sender_limits(config: BotConfig, transport: str) -> TransportLimits:
    limits = getattr(config.delivery, transport, TransportLimits())
    # The transport paces Telegram's overall and group budgets per API call; a second
    # limiter on the same budgets would double the waits (bot.transports.telegram).
    return sender_limits(limits) if transport == TelegramTransport.name else limits


async def _cycle_and_record(cycle: SignalCycle, recorder: StateRecorder) -> CycleResult:
    result = await cycle.run_once()
    await recorder.cycled(result.market_at)  # `status` and the health check read this record
    return result


async def _serve(bot: _Bot, redactor: Redactor, stop: asyncio.Event) -> int:
    """Start everything, wait for `stop`, then stop everything (see `_stop_all` for the order).

    The console chat starts when no chat platform does (none configured, or every one failed);
    with no console and every configured platform refused, the bot stops with exit status 2."""
    backtests = BacktestCommands(bot.desk, bot.config)
    router = CommandRouter(
        bot.desk,
        bot.store,
        bot.config,
        partial(_status, bot),
        render_chart=bot.chart,
        extra_commands=(
            *backtests.commands(),
            *PerformanceCommands(
                bot.desk, bot.store, bot.config.commands.performance_cooldown_s
            ).commands(),
        ),
    )
    handler = _redacting(router.handle, redactor)
    for transport in bot.transports:  # every registered command shows on every platform
        if isinstance(transport, CommandMenu):
            transport.use_commands(router.commands.values())
    loop = asyncio.get_running_loop()
    installed = _install_signal_handlers(loop, stop)
    sender_stop = asyncio.Event()
    sender_task = asyncio.create_task(bot.sender.run(sender_stop), name="outbox-sender")
    try:
        await bot.scheduler.start()
        outcomes = await _start_transports(bot.transports, handler)
        bot.chats = sorted([*bot.chats, *outcomes], key=lambda chat: chat.name)
        started = [o.name for o in outcomes if o.state == "running"]
        if not started and bot.console is not None:
            bot.console.notice(_greeting(bot))
            bot.transports = [*bot.transports, bot.console]
            consoles = await _start_transports([bot.console], handler)
            started = [o.name for o in consoles if o.state == "running"]
        elif not started and bot.transports:
            log.error(
                "no_transport_started",
                detail="every configured chat platform failed to start; see the lines above",
            )
            return EXIT_BAD_CONFIG
        await bot.recorder.started(started, bot.chats)
        _watch_clock_end(loop, bot.clock)
        log.info("bot_started", transports=started, clock=bot.clock.describe())
        if not started:
            log.warning(
                "no_transport",
                detail="no chat transport runs: signals are computed "
                "and alerts wait in the outbox until one does",
            )
        await stop.wait()
        log.info("bot_stopping")
    finally:
        await _stop_all(bot, sender_stop, sender_task)
        await backtests.close()
        await _record_stop(bot.recorder)
        for signum in installed:
            loop.remove_signal_handler(signum)
    log.info("bot_stopped")
    return 0


async def _record_stop(recorder: StateRecorder) -> None:
    try:
        await recorder.stopped()
    except Exception:  # the record is a report: failing to write it must not mask the stop
        log.exception("bot_state_not_recorded")


async def _start_transports(
    transports: Sequence[Transport], handler: CommandHandler
) -> list[TransportHealth]:
    """Start each transport; what became of each (`status` shows it)."""
    outcomes = []
    for transport in transports:
        since = utcnow()
        try:
            await transport.start(handler)
        except TransportRejectedError as exc:  # a bad token: one line says which and why
            log.error("transport_rejected", transport=transport.name, detail=str(exc))
            outcomes.append(TransportHealth(transport.name, "rejected", str(exc), since))
            continue
        except DeliveryError as exc:  # a platform unreachable at start: one line, no traceback
            log.error("transport_start_failed", transport=transport.name, reason=str(exc))
            outcomes.append(TransportHealth(transport.name, "unreachable", str(exc), since))
            continue
        except Exception as exc:  # one chat platform failing must not keep the others down
            log.exception("transport_start_failed", transport=transport.name)
            detail = f"failed to start: {type(exc).__name__}"
            outcomes.append(TransportHealth(transport.name, "failed", detail, since))
            continue
        outcomes.append(TransportHealth(transport.name, "running", "", since))
    return outcomes


async def _stop_all(bot: _Bot, sender_stop: asyncio.Event, sender_task: asyncio.Task[None]) -> None:
    """No new commands, then no new cycles, then no new sends, and only then no connections."""
    for transport in reversed(bot.transports):
        await _transport_step(transport, "stop")
    await bot.scheduler.stop()  # a cycle in flight finishes and records its alerts
    sender_stop.set()
    bot.sender.wake()
    try:
        await asyncio.wait_for(sender_task, timeout=SENDER_STOP_GRACE_S)
    except TimeoutError:
        log.warning("sender_cancelled_at_stop", grace_s=SENDER_STOP_GRACE_S)
    except Exception:
        log.exception("sender_failed")
    for transport in reversed(bot.transports):
        await _transport_step(transport, "close")


async def _transport_step(transport: Transport, step: Literal["stop", "close"]) -> None:
    """Stop or close one transport; its failure must not keep the others open."""
    try:
        await (transport.stop() if step == "stop" else transport.close())
    except Exception:
        log.exception(f"transport_{step}_failed", transport=transport.name)


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    installed: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            continue
        installed.append(signum)
    return installed


def _watch_clock_end(loop: asyncio.AbstractEventLoop, clock: MarketClock) -> None:
    """Read the clock when it reaches the end of the data, so it says so even if nobody asks."""
    seconds = clock.real_seconds_to_end()
    if seconds is not None:
        loop.call_later(seconds + 0.05, clock.now)


def _clock_ended(chat: ConsoleTransport | None, end: datetime) -> None:
    log.info(
        "demo_clock_stopped",
        market_at=iso(end),
        detail="end of the recorded data; market time stays here",
    )
    if chat is not None:
        chat.notice(
            f"\nThe demo clock reached the end of the recorded data ({iso(end)}); "
            "market time stays there, so signals will not change any more. "
            "To replay the demo, start again with a fresh database (--db PATH)."
        )


def _greeting(bot: _Bot) -> str:
    minutes = bot.config.schedule.interval_minutes
    every = f"{minutes} min" if minutes < 60 or minutes % 60 else f"{minutes // 60} h"
    clock = bot.clock
    if isinstance(clock, DemoClock):
        every += f" of market time ({bot.scheduler.interval_s:g} s real time)"
    return greeting_text(clock.now(), clock.describe(), every, live=bot.desk.live)


def build_message(
    redactor: Redactor,
    item: OutboxItem,
    stored: StoredSignal,
    credits: Sequence[str] = DEFAULT_CREDITS,
) -> OutMessage:
    """An outbox row as a message: the intro, the signal's text and fields, its chart; the
    footer credits this bot's sources."""
    signal = stored.signal
    reply = Reply(
        text=redactor.redact(render_text(signal, credits)),
        fields=modality_fields(signal),
        chart_png=stored.chart_png,
        signal=signal,
        credits=tuple(credits),
    )
    return OutMessage(
        intro=redactor.redact(item.intro),
        reply=reply,
        is_group=item.kind == DeliveryKind.CHANNEL,
        extra={"kind": item.kind.value},
    )


def _redacting(handler: CommandHandler, redactor: Redactor) -> CommandHandler:
    """Every reply passes the redactor: a secret must never reach a chat, whatever went wrong."""

    async def handle(request: Request) -> Reply:
        reply = await handler(request)
        return dataclasses.replace(
            reply,
            text=redactor.redact(reply.text),
            fields=tuple(Field(f.name, redactor.redact(f.value), f.inline) for f in reply.fields),
            extra={key: redactor.redact(value) for key, value in reply.extra.items()},
        )

    return handle


async def _status(bot: _Bot) -> BotStatus:
    last_at = await stored_time(bot.store, LAST_CYCLE_AT)
    notes = [
        f"Clock: {bot.clock.describe()}",
        *_desk_notes(bot.desk),
    ]
    if isinstance(bot.clock, DemoClock) and bot.clock.ended:
        notes.append("The demo clock reached the end of the recorded data and stays there.")
    notes.append(whale_status_line(await bot.store.whale_alert_chats(), bot.config.whale_alerts))
    return BotStatus(
        market_now=bot.desk.now(),
        sources=source_health(bot.desk.source_health()),
        last_cycle_at=last_at,
        last_cycle_market_at=await stored_time(bot.store, LAST_CYCLE_MARKET_AT),
        next_run_at=bot.scheduler.next_run_at,
        outbox=await bot.store.outbox_counts(),
        transports=tuple(t.name for t in bot.transports),
        notes=tuple(notes),
        chat_transports=tuple(bot.chats),
    )
