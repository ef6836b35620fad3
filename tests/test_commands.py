"""The transport-neutral commands through CommandRouter, over the real replay desk and the
in-memory store (the store contract itself is tested over SQLite and memory in test_store.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.commands.base import BotStatus, Reply, Request, SourceHealth
from bot.commands.registry import MAX_ARGS, MAX_INPUT_CHARS, Command
from bot.commands.router import INTERNAL_ERROR, CommandRouter, parse_command_line
from bot.config import BotConfig
from bot.render.chart_task import ChartRenderer
from bot.render.text import render_text
from bot.storage.base import SignalOrigin
from bot.storage.memory import MemoryStore
from intel.calibration import DEFAULT_MAP_PATH, NO_EDGE_NOTE
from intel.config import load_config
from intel.desk import SignalDesk, build_desk
from intel.errors import NoSignalError, UserInputError
from intel.models import Action, MarketSnapshot, Signal
from intel.pipeline import SignalResult
from intel.textfmt import quote_input
from tests.factories import make_signal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MOMENT = datetime(2025, 10, 10, 20, 0, tzinfo=UTC)


class CountingDesk:
    """Wraps the real desk: counts pipeline runs and how many overlap, optionally slowed down."""

    def __init__(
        self, desk: SignalDesk, delay_s: float = 0.0, fail: Exception | None = None
    ) -> None:
        self._desk = desk
        self._delay_s = delay_s
        self.fail = fail
        self.calls = 0
        self.active = 0
        self.peak = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._desk.symbols

    def resolve(self, text: str) -> str:
        return self._desk.resolve(text)

    def now(self) -> datetime:
        return self._desk.now()

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        self.calls += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self._delay_s)
            if self.fail is not None:
                raise self.fail
            return await self._desk.signal(symbol, at)
        finally:
            self.active -= 1


class MovingClockDesk(CountingDesk):
    """The demo clock's way: market time has moved on between any two reads of `now`."""

    def __init__(self, desk: SignalDesk, delay_s: float = 0.0) -> None:
        super().__init__(desk, delay_s)
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return self._desk.now() + timedelta(seconds=self.reads)

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        return await super().signal(symbol, self.now() if at is None else at)


class BrokenStore:
    """A store whose every write fails, for the on-demand record."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def record_signal(self, *args: Any, **kwargs: Any) -> int:
        raise OSError("disk full")


def make_config(**commands: Any) -> BotConfig:
    overrides = {f"commands.{key}": value for key, value in commands.items()}
    return load_config(env={}, model=BotConfig, overrides=overrides)


async def fixed_status() -> BotStatus:
    return BotStatus(
        market_now=MOMENT,
        sources=(
            SourceHealth("candles", "ok", "replay"),
            SourceHealth("whales", "failing", "HTTP 503", since=MOMENT - timedelta(minutes=12)),
            SourceHealth(
                "orderbook",
                "open",
                "breaker open after 5 failures",
                since=MOMENT - timedelta(hours=1),
            ),
            SourceHealth("reddit", "not_configured", "set REDDIT_CLIENT_ID"),
        ),
        last_cycle_at=MOMENT - timedelta(minutes=5),
        last_cycle_market_at=MOMENT - timedelta(hours=1),
        next_run_at=MOMENT + timedelta(minutes=55),
        outbox={"pending": 2, "sent": 40, "failed": 1},
        transports=("console", "telegram"),
    )


@pytest.fixture(scope="module")
def desk() -> SignalDesk:
    return build_desk(load_config(env={}, model=BotConfig))


@pytest.fixture
def router(desk, store, clock) -> CommandRouter:
    return CommandRouter(desk, store, make_config(), fixed_status, clock=clock.monotonic)


def request(
    line: str,
    *,
    user: str = "u1",
    chat: str = "c1",
    admin: bool = False,
    transport: str = "console",
) -> Request:
    name, args = parse_command_line(line)
    return Request(
        transport=transport,
        user_id=user,
        chat_id=chat,
        dm_chat_id=f"dm-{user}",
        command=name,
        args=args,
        is_private=not admin,
        is_admin=admin,
    )


async def ask(router: CommandRouter, line: str, **who: Any) -> Reply:
    reply = await router.handle(request(line, **who))
    assert reply.text.strip()
    if reply.is_error:
        assert "\n" not in reply.text
        assert "Traceback" not in reply.text
    return reply


async def user_state(store: MemoryStore, user: str = "u1", chat: str = "c1") -> tuple:
    symbols = ("BTC/USDT", "ETH/USDT")
    return (
        await store.watchlist("console", user),
        await store.threshold("console", user),
        await store.subscription("console", chat),
        [sorted(await store.watchers(s), key=lambda w: (w.transport, w.user_id)) for s in symbols],
    )


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/signal eth", ("signal", ("eth",))),
        ("signal eth", ("signal", ("eth",))),
        ("/Signal@SignalDeskBot ETH", ("signal", ("ETH",))),
        ("  watch \t add   eth  ", ("watch", ("add", "eth"))),
        ("HELP", ("help", ())),
    ],
)
def test_parse_command_line(line, expected):
    assert parse_command_line(line) == expected


@pytest.mark.parametrize(
    "line",
    ["", "   \n\t", "/", "@bot", "/@bot eth", "x" * 10_000, "signal " + "a " * (MAX_ARGS + 1)],
)
def test_parse_command_line_rejects_unusable_input(line):
    with pytest.raises(UserInputError) as caught:
        parse_command_line(line)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_quote_input_is_printable_and_bounded():
    assert quote_input("  eth ") == "'eth'"
    assert quote_input("\u202eCTB\x00") == "'?CTB?'"  # bidi override and control chars
    assert quote_input("x" * 30) == repr("x" * 24 + "…")
    assert quote_input("abcdef", 3) == "'abc…'"


# -- help and unknown commands ---------------------------------------------------------------


async def test_help_lists_every_command_with_an_example_and_which_chats_exist(router):
    reply = await ask(router, "help")
    assert not reply.is_error
    for command in router.commands.values():
        assert f"{command.name} — " in reply.text
        assert f"`{command.example}`" in reply.text
    assert "Discord when DISCORD_TOKEN is set" in reply.text
    assert "Telegram when TELEGRAM_TOKEN is set" in reply.text
    assert "no Discord" not in reply.text
    assert "no Telegram" not in reply.text
    # Only what this build has: no source has a circuit breaker before the live-data release.
    assert "breaker" not in reply.text


async def test_help_for_one_command_and_a_typo(router):
    assert "watch add" in (await ask(router, "help watch")).text
    typo = await ask(router, "help wach")
    assert typo.is_error
    assert "did you mean `help watch`" in typo.text
    assert (await ask(router, "help watch list")).is_error


async def test_help_names_the_whale_alert_commands(router):
    listed = (await ask(router, "help")).text
    for words in ("`subscribe whales`", "`unsubscribe whales`", "`alerts whales`"):
        assert words in listed
    assert "· subscribe whales —" in (await ask(router, "help subscribe")).text
    assert "· unsubscribe whales —" in (await ask(router, "help unsubscribe")).text
    assert "alerts whales [off]" in (await ask(router, "help alerts")).text


async def test_unknown_command_suggests_the_closest(router):
    reply = await ask(router, "sigal btc")
    assert reply.is_error
    assert "did you mean `signal`" in reply.text
    nothing_close = await ask(router, "qqqqqq")
    assert "`help`" in nothing_close.text


def test_performance_and_backtest_are_slots_not_placeholders(router):
    assert "performance" not in router.commands
    assert "backtest" not in router.commands


async def test_extra_commands_fill_the_slot_and_show_in_help(desk, store):
    async def performance(req: Request) -> Reply:
        return Reply(text=f"performance for {req.user_id}")

    slot = Command("performance", performance, "how past signals did", "performance", "performance")
    router = CommandRouter(desk, store, make_config(), fixed_status, extra_commands=[slot])
    assert (await ask(router, "performance")).text == "performance for u1"
    assert "`performance`" in (await ask(router, "help")).text
    with pytest.raises(ValueError, match="already registered"):
        router.register(slot)


# -- signal ----------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["btc", "BTC", "btcusdt", "BTC-USDT", "btc/usdt"])
async def test_signal_accepts_symbols_as_typed(desk, store, typed):
    router = CommandRouter(desk, store, make_config(), fixed_status)
    reply = await ask(router, f"signal {typed}")
    assert not reply.is_error
    assert reply.signal is not None
    assert reply.signal.symbol == "BTC/USDT"


async def test_signal_reply_has_text_fields_and_chart(router):
    reply = await ask(router, "/signal eth")
    assert reply.signal is not None
    assert reply.text == render_text(reply.signal)
    assert [f.name for f in reply.fields] == ["Whales", "Order book", "Sentiment"]
    assert all(f.value and "\n" not in f.value for f in reply.fields)
    assert reply.chart_png is not None
    assert reply.chart_png.startswith(PNG_SIGNATURE)
    assert "watch add eth" in reply.extra["next"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("signal btx", "did you mean BTC/USDT?"),
        ("signal $$$", "malformed symbol"),
        ("signal DOGE", "unknown symbol 'DOGE'"),
        ("signal", "missing argument"),
        ("signal btc eth", "too many arguments"),
        ("signal " + "b" * 400, "malformed symbol"),
    ],
)
async def test_signal_bad_input(router, line, expected):
    reply = await ask(router, line)
    assert reply.is_error
    assert expected in reply.text
    assert reply.chart_png is None


async def test_signal_cooldown_per_user_and_symbol_with_seconds_left(router, clock):
    assert not (await ask(router, "signal btc")).is_error
    clock.advance(3)
    assert not (await ask(router, "signal eth")).is_error  # another symbol: no cooldown
    again = await ask(router, "signal btc")
    assert again.is_error
    assert "BTC/USDT signal in 7 s" in again.text
    assert not (await ask(router, "signal btc", user="u2")).is_error
    assert not (await ask(router, "signal btc", transport="telegram")).is_error
    clock.advance(7)
    assert not (await ask(router, "signal btc")).is_error
    assert "ETH/USDT signal in 3 s" in (await ask(router, "signal eth")).text


async def test_one_user_is_capped_on_symbols_in_flight(desk, store, clock):
    counting = CountingDesk(desk, delay_s=0.2)
    config = make_config(max_signals_in_flight_per_user=1)
    router = CommandRouter(counting, store, config, fixed_status, clock=clock.monotonic)
    btc, eth, btc_again, other_eth = await asyncio.gather(
        router.handle(request("signal btc")),
        router.handle(request("signal eth")),
        router.handle(request("signal btc")),  # joins the one in flight: takes no more room
        router.handle(request("signal eth", user="u2")),
    )
    assert not btc.is_error
    assert not btc_again.is_error
    assert not other_eth.is_error  # the cap is per user
    assert eth.is_error
    assert "BTC/USDT signal is still computing" in eth.text
    assert counting.calls == 2
    # Once answered, the room is free again (and the refusal cost no ETH cooldown).
    assert not (await ask(router, "signal eth")).is_error


async def test_rejected_symbol_does_not_start_the_cooldown(router):
    assert (await ask(router, "signal btx")).is_error
    assert not (await ask(router, "signal btc")).is_error


async def test_concurrent_requests_for_one_symbol_share_one_computation(desk, store):
    counting = CountingDesk(desk, delay_s=0.2)
    router = CommandRouter(counting, store, make_config(), fixed_status)
    replies = await asyncio.gather(
        *(router.handle(request("signal btc", user=f"user{i}")) for i in range(5))
    )
    assert counting.calls == 1
    assert all(not r.is_error for r in replies)
    assert all(r.signal is replies[0].signal for r in replies)
    assert all(r.chart_png is replies[0].chart_png for r in replies)
    # Once finished, a later request computes afresh (the desk's caches decide what it reuses).
    await router.handle(request("signal btc", user="late"))
    assert counting.calls == 2


async def test_concurrent_requests_share_one_computation_while_the_market_clock_moves(desk, store):
    moving = MovingClockDesk(desk, delay_s=0.2)
    router = CommandRouter(moving, store, make_config(), fixed_status)
    replies = await asyncio.gather(
        *(router.handle(request("signal btc", user=f"user{i}")) for i in range(5))
    )
    assert moving.calls == 1
    assert all(not r.is_error for r in replies)
    assert all(r.signal is replies[0].signal for r in replies)


async def test_one_users_concurrent_duplicates_share_one_computation_and_one_cooldown(
    desk, store, clock
):
    counting = CountingDesk(desk, delay_s=0.2)
    router = CommandRouter(counting, store, make_config(), fixed_status, clock=clock.monotonic)
    replies = await asyncio.gather(*(router.handle(request("signal btc")) for _ in range(3)))
    assert counting.calls == 1
    assert all(not r.is_error for r in replies)
    later = await ask(router, "signal btc")
    assert later.is_error
    assert "not so fast" in later.text


async def test_a_busy_answer_does_not_cost_the_cooldown(desk, store, clock):
    counting = CountingDesk(desk, delay_s=0.5)
    config = make_config(max_concurrent_signals=1, signal_wait_s=0.05)
    router = CommandRouter(counting, store, config, fixed_status, clock=clock.monotonic)
    _first, busy = await asyncio.gather(
        router.handle(request("signal btc", user="a")),
        router.handle(request("signal eth", user="b")),
    )
    assert "busy" in busy.text
    assert not (await ask(router, "signal eth", user="b")).is_error  # asked again at once
    assert "not so fast" in (await ask(router, "signal eth", user="b")).text  # the answer cost it


async def test_an_error_does_not_cost_the_cooldown(desk, store, clock):
    failing = CountingDesk(desk, fail=NoSignalError("no signal for BTC/USDT: no candles"))
    router = CommandRouter(failing, store, make_config(), fixed_status, clock=clock.monotonic)
    assert (await ask(router, "signal btc")).is_error
    failing.fail = None
    assert not (await ask(router, "signal btc")).is_error


async def test_the_signal_command_draws_the_injected_chart(desk, store):
    drawn: list[str] = []

    async def chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
        drawn.append(signal.symbol)
        return b"chart"

    router = CommandRouter(desk, store, make_config(), fixed_status, render_chart=chart)
    reply = await ask(router, "signal eth")
    assert drawn == ["ETH/USDT"]
    assert reply.chart_png == b"chart"


async def test_a_chart_that_cannot_be_drawn_costs_only_the_picture(desk, store):
    def broken_draw(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("renderer broke")

    router = CommandRouter(
        desk, store, make_config(), fixed_status, render_chart=ChartRenderer(draw=broken_draw)
    )
    with capture_logs() as logs:
        reply = await ask(router, "signal eth")
    assert not reply.is_error
    assert reply.signal is not None
    assert reply.chart_png is None
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["chart_failed"]


async def test_the_chart_renderer_draws_at_the_configured_sizes(desk):
    seen: list[dict[str, int]] = []

    def draw(signal: Signal, snapshot: MarketSnapshot, **sizes: int) -> bytes:
        seen.append(sizes)
        return b"png"

    config = make_config().chart.model_copy(update={"candles": 30, "flow_hours": 12})
    renderer = dataclasses.replace(ChartRenderer.from_config(config), draw=draw)
    result = await desk.signal("ETH/USDT")
    assert await renderer(result.signal, result.snapshot) == b"png"
    assert seen == [{"candles": 30, "flow_hours": 12}]


async def test_an_on_demand_signal_is_stored_once_however_many_asked(desk, store):
    counting = CountingDesk(desk, delay_s=0.2)
    router = CommandRouter(counting, store, make_config(), fixed_status)
    replies = await asyncio.gather(
        *(router.handle(request("signal btc", user=f"user{i}")) for i in range(5))
    )
    (stored,) = await store.signals("BTC/USDT")
    assert stored.origin == SignalOrigin.ON_DEMAND
    answered = replies[0].signal
    assert answered is not None
    assert (stored.signal.as_of, stored.signal.action, stored.signal.confidence) == (
        answered.as_of,
        answered.action,
        answered.confidence,
    )
    assert stored.chart_png is None
    assert not stored.alerted
    assert await store.last_signal("BTC/USDT") is None  # the cycle's state is untouched
    assert await store.outbox_counts() == {"pending": 0, "sent": 0, "failed": 0}


async def test_a_failed_on_demand_write_still_answers(desk, store):
    router = CommandRouter(desk, BrokenStore(store), make_config(), fixed_status)
    with capture_logs() as logs:
        reply = await ask(router, "signal btc")
    assert not reply.is_error
    assert reply.signal is not None
    (failure,) = [e for e in logs if e["event"] == "on_demand_signal_not_stored"]
    assert failure["exc_info"] is True


@pytest.mark.parametrize("cap", [1, 2])
async def test_concurrency_cap_is_respected(desk, store, cap):
    counting = CountingDesk(desk, delay_s=0.2)
    router = CommandRouter(counting, store, make_config(max_concurrent_signals=cap), fixed_status)
    replies = await asyncio.gather(
        router.handle(request("signal btc", user="a")),
        router.handle(request("signal eth", user="b")),
    )
    assert all(not r.is_error for r in replies)
    assert counting.calls == 2
    assert counting.peak == cap


async def test_full_cap_waits_then_says_busy(desk, store):
    counting = CountingDesk(desk, delay_s=0.5)
    config = make_config(max_concurrent_signals=1, signal_wait_s=0.05)
    router = CommandRouter(counting, store, config, fixed_status)
    first, second = await asyncio.gather(
        router.handle(request("signal btc", user="a")),
        router.handle(request("signal eth", user="b")),
    )
    assert not first.is_error
    assert second.is_error
    assert "busy" in second.text
    assert counting.peak == 1


async def test_no_signal_possible_is_a_one_line_error(desk, store):
    failing = CountingDesk(desk, fail=NoSignalError("no signal for BTC/USDT: no candles"))
    router = CommandRouter(failing, store, make_config(), fixed_status)
    reply = await ask(router, "signal btc")
    assert reply.is_error
    assert reply.text == "no signal for BTC/USDT: no candles"


async def test_a_market_moment_outside_the_data_is_explained_without_cli_flags(store):
    late = build_desk(
        load_config(env={}, model=BotConfig), market_clock=lambda: datetime(2031, 1, 1, tzinfo=UTC)
    )
    router = CommandRouter(late, store, make_config(), fixed_status)
    reply = await ask(router, "signal btc")
    assert reply.is_error
    assert "no BTC/USDT signal at the market moment 2031-01-01T00:00:00Z" in reply.text
    assert "its recorded candles cover" in reply.text  # the range, so the user sees why
    assert "--at" not in reply.text


async def test_a_bug_becomes_a_short_generic_reply_and_is_logged(desk, store):
    async def broken_status() -> BotStatus:
        raise RuntimeError("secret internals /etc/passwd")

    router = CommandRouter(desk, store, make_config(), broken_status)
    with capture_logs() as logs:
        reply = await ask(router, "status")
    assert reply.is_error
    assert reply.text == INTERNAL_ERROR
    assert [e["event"] for e in logs] == ["command_failed"]
    assert logs[0]["exc_info"] is True


# -- watch and alerts ------------------------------------------------------------------------


async def test_watch_add_list_remove(router, store):
    added = await ask(router, "watch add eth")
    assert "Now watching ETH/USDT" in added.text
    assert "alerts 50" in added.text
    assert "already" in (await ask(router, "watch add ETHUSDT")).text
    await ask(router, "watch add btc")
    assert await store.watchlist("console", "u1") == ["BTC/USDT", "ETH/USDT"]
    listed = await ask(router, "watch list")
    assert "BTC/USDT" in listed.text
    assert "alerts off" in listed.text
    assert "Stopped watching ETH/USDT" in (await ask(router, "watch remove eth")).text
    assert "weren't watching" in (await ask(router, "watch remove eth")).text
    assert await store.watchlist("console", "u1") == ["BTC/USDT"]
    assert "BTC/USDT" in (await ask(router, "watch")).text


async def test_a_symbol_dropped_from_the_config_can_still_be_unwatched(router, store):
    await store.watch_add("console", "u1", "dm-u1", "SOL/USDT")
    assert "Stopped watching SOL/USDT" in (await ask(router, "watch remove sol")).text
    assert await store.watchlist("console", "u1") == []
    assert "unknown symbol 'sol'" in (await ask(router, "watch remove sol")).text


async def test_watch_with_alerts_set_says_when_a_dm_comes(router):
    await ask(router, "alerts 70")
    assert "70/100" in (await ask(router, "watch add btc")).text


async def test_empty_watch_list_says_what_to_do(router):
    assert "watch add btc" in (await ask(router, "watch list")).text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("watch add btx", "did you mean BTC/USDT?"),
        ("watch add", "missing argument"),
        ("watch add btc eth", "too many arguments"),
        ("watch remove", "missing argument"),
        ("watch list btc", "too many arguments"),
        ("watch ad btc", "did you mean `watch add`"),
        ("watch 🚀 btc", "unknown watch action"),
    ],
)
async def test_watch_bad_input_changes_nothing(router, store, line, expected):
    await ask(router, "watch add eth")
    before = await user_state(store)
    reply = await ask(router, line)
    assert reply.is_error
    assert expected in reply.text
    assert await user_state(store) == before


async def test_alerts_set_show_and_off(router, store):
    assert "off" in (await ask(router, "alerts")).text
    reply = await ask(router, "alerts 60")
    assert "60/100" in reply.text
    assert "watch add" in reply.text
    assert await store.threshold("console", "u1") == 60
    assert "60/100" in (await ask(router, "alerts")).text
    await ask(router, "watch add eth")
    assert "ETH/USDT" in (await ask(router, "alerts 75%")).text
    assert await store.threshold("console", "u1") == 75
    assert "off" in (await ask(router, "alerts OFF")).text
    assert await store.threshold("console", "u1") is None


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("100", 100), ("007", 7)])
async def test_alerts_bounds(router, store, value, expected):
    assert not (await ask(router, f"alerts {value}")).is_error
    assert await store.threshold("console", "u1") == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("alerts 101", "out of range"),
        ("alerts 1000", "out of range"),
        ("alerts -1", "out of range"),
        ("alerts -5%", "out of range"),
        ("alerts 6.5", "not a whole number"),
        ("alerts sixty", "not a whole number"),
        ("alerts ٦٠", "not a whole number"),
        ("alerts 1e2", "not a whole number"),
        ("alerts 60 70", "too many arguments"),
    ],
)
async def test_alerts_bad_input_changes_nothing(router, store, line, expected):
    await ask(router, "alerts 40")
    before = await user_state(store)
    reply = await ask(router, line)
    assert reply.is_error
    assert expected in reply.text
    if "alerts 60 70" not in line:
        assert "must be a whole number from 0 to 100" in reply.text
    assert await user_state(store) == before


# -- subscribe -------------------------------------------------------------------------------


async def test_subscribe_adds_symbols_and_unsubscribe_removes_them(router, store):
    first = await ask(router, "subscribe eth", admin=True)
    assert first.text.startswith("Subscribed.")
    assert "ETH/USDT: no signal yet" in first.text
    added = await ask(router, "/subscribe btc ETHUSDT", admin=True)
    assert added.text.startswith("Added BTC/USDT.")
    assert (await store.subscription("console", "c1")).symbols == ("BTC/USDT", "ETH/USDT")
    again = await ask(router, "subscribe btc", admin=True)
    assert "already follows BTC/USDT, so nothing changed" in again.text
    removed = await ask(router, "unsubscribe eth", admin=True)
    assert removed.text.startswith("Removed ETH/USDT.")
    assert "for BTC/USDT." in removed.text
    assert (await store.subscription("console", "c1")).symbols == ("BTC/USDT",)
    assert "did not follow ETH/USDT" in (await ask(router, "unsubscribe eth", admin=True)).text
    last = await ask(router, "unsubscribe btc", admin=True)
    assert "last one" in last.text
    assert "ended" in last.text
    assert await store.subscription("console", "c1") is None  # not an every-symbol one
    assert "no subscription" in (await ask(router, "unsubscribe btc", admin=True)).text


async def test_an_every_symbol_subscription(router, store):
    everything = await ask(router, "subscribe", admin=True)
    assert "every symbol (BTC/USDT, ETH/USDT)" in everything.text
    assert (await store.subscription("console", "c1")).symbols == ()
    some = await ask(router, "/subscribe eth btc eth/usdt", admin=True)
    assert not some.is_error
    assert "already follows every symbol, so nothing changed" in some.text
    assert (await store.subscription("console", "c1")).symbols == ()
    assert "Removed BTC/USDT" in (await ask(router, "unsubscribe btc", admin=True)).text
    assert (await store.subscription("console", "c1")).symbols == ("ETH/USDT",)
    assert "now follows every symbol" in (await ask(router, "subscribe", admin=True)).text
    assert "Unsubscribed" in (await ask(router, "unsubscribe", admin=True)).text
    assert await store.subscription("console", "c1") is None
    assert "no subscription" in (await ask(router, "unsubscribe", admin=True)).text


async def test_subscribe_shows_each_symbols_current_call(router, store):
    await store.record_signal(
        make_signal("BTC/USDT", Action.SELL, 64), chart_png=None, deliveries=(), alerted=True
    )
    on_demand = make_signal("ETH/USDT", Action.BUY, 90)  # asked in chat: not the current call
    await store.record_signal(
        on_demand, chart_png=None, deliveries=(), alerted=False, origin=SignalOrigin.ON_DEMAND
    )
    reply = await ask(router, "subscribe btc eth", admin=True)
    assert "BTC/USDT: SELL 64/100 (as of 2025-10-10 20:00 UTC)" in reply.text
    assert "ETH/USDT: no signal yet" in reply.text
    assert "ETH/USDT: no signal yet" in (await ask(router, "unsubscribe btc", admin=True)).text


async def test_subscribe_says_what_a_calibrated_confidence_means(router, store):
    signal = dataclasses.replace(
        make_signal("BTC/USDT", Action.BUY, 41), raw_confidence=80, notes=(NO_EDGE_NOTE,)
    )
    await store.record_signal(signal, chart_png=None, deliveries=(), alerted=True)
    reply = await ask(router, "subscribe btc", admin=True)
    assert (
        "BTC/USDT: BUY 41/100, no demonstrated edge at this horizon (right about 4 times in 10"
        " historically) (as of 2025-10-10 20:00 UTC)"
    ) in reply.text


async def test_a_symbol_dropped_from_the_config_can_still_be_unsubscribed(router, store):
    await store.subscribe("console", "c1", ["DOGE/USDT", "BTC/USDT"])
    assert "Removed DOGE/USDT" in (await ask(router, "unsubscribe doge", admin=True)).text
    assert (await store.subscription("console", "c1")).symbols == ("BTC/USDT",)


@pytest.mark.parametrize("line", ["subscribe", "subscribe btc", "unsubscribe", "unsubscribe eth"])
async def test_non_admins_are_refused(router, store, line):
    await ask(router, "subscribe eth", admin=True)
    before = await user_state(store)
    reply = await ask(router, line, admin=False)
    assert reply.is_error
    assert "admin" in reply.text
    assert await user_state(store) == before


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("subscribe btc btx", "did you mean BTC/USDT?"),
        ("subscribe btc ???", "malformed symbol"),
        ("unsubscribe now", "unknown symbol 'now'"),
        ("unsubscribe eth btx", "did you mean BTC/USDT?"),
    ],
)
async def test_subscribe_bad_input_changes_nothing(router, store, line, expected):
    await ask(router, "subscribe eth", admin=True)
    before = await user_state(store)
    reply = await ask(router, line, admin=True)
    assert reply.is_error
    assert expected in reply.text
    assert await user_state(store) == before


# -- status ----------------------------------------------------------------------------------


async def test_status_shows_sources_cycle_and_schedule(router):
    reply = await ask(router, "status")
    assert not reply.is_error
    text = reply.text
    assert "✅ candles: ok" in text
    assert "❌ whales: failing — HTTP 503 (since 2025-10-10 19:48 UTC)" in text
    assert "⛔ orderbook: open" in text
    assert "not configured" in text
    assert "Last cycle: 2025-10-10 19:55 UTC for market moment 2025-10-10 19:00 UTC" in text
    assert "Next run: 2025-10-10 20:55 UTC" in text
    assert "pending 2" in text
    assert "console, telegram" in text
    assert [f.name for f in reply.fields] == ["candles", "whales", "orderbook", "reddit"]
    assert (await ask(router, "status now")).is_error


# -- strange input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg",
    [
        "x" * 10_000,
        "\x00\x07\x1b[31m",
        "🚀🌕",
        "\u202eCTB",  # right-to-left override
        "בִּיטְקוֹין",
        "e\u0301th",
        "ETH\u200b",
    ],
)
@pytest.mark.parametrize("command", ["signal", "watch", "alerts", "subscribe", "help", "sigñal"])
async def test_strange_arguments_get_a_short_reply_and_change_nothing(router, store, command, arg):
    before = await user_state(store)
    reply = await router.handle(
        Request(
            "console",
            "u1",
            "c1",
            "dm-u1",
            command,
            ("add", arg) if command == "watch" else (arg,),
            is_admin=True,
        )
    )
    assert reply.is_error
    assert reply.text.strip()
    assert "\n" not in reply.text
    assert len(reply.text) < 300
    assert not any(ch in reply.text for ch in "\x00\x07\x1b\u202e\u200b")
    assert await user_state(store) == before


async def test_too_many_args_from_a_transport_that_skips_the_parser(router, store):
    before = await user_state(store)
    reply = await router.handle(
        Request(
            "console", "u1", "c1", "dm-u1", "subscribe", ("btc",) * (MAX_ARGS + 1), is_admin=True
        )
    )
    assert reply.is_error
    assert "too many arguments" in reply.text
    huge = await router.handle(
        Request(
            "console",
            "u1",
            "c1",
            "dm-u1",
            "subscribe",
            ("b" * MAX_INPUT_CHARS, "eth"),
            is_admin=True,
        )
    )
    assert huge.is_error
    assert await user_state(store) == before


async def test_alerts_above_what_calibrated_calls_reach_says_so(router, store):
    # The shipped map read directly: the highest calibrated confidence is its last knot's.
    shipped = json.loads(DEFAULT_MAP_PATH.read_text(encoding="utf-8"))
    ceiling = round(shipped["probabilities"][-1] * 100)
    assert shipped["raw_knots"][-1] <= 100  # beyond the last knot the map stays flat
    reply = await ask(router, f"alerts {ceiling + 1}")
    assert f"reach at most {ceiling}/100" in reply.text
    assert f"`alerts {ceiling}` would" in reply.text
    assert await store.threshold("console", "u1") == ceiling + 1  # set all the same
    assert "at most" not in (await ask(router, f"alerts {ceiling}")).text
