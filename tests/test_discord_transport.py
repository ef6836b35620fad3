"""The Discord transport through the real discord.py against the fake REST server: slash commands
on constructed interactions, follow-ups with embeds and the chart, permissions, alerts and DMs,
and Discord's errors mapped onto the delivery errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from bot.commands.base import BotStatus, Reply, Request
from bot.commands.registry import Command
from bot.commands.router import CommandRouter
from bot.config import BotConfig, DiscordConfig
from bot.render.discord import LIMITS
from bot.storage.memory import MemoryStore
from bot.transports.base import (
    OutMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
    TransportRejectedError,
)
from bot.transports.discord import COMMANDS_HASH_KEY, DiscordTransport
from bot.transports.fake_discord import (
    APP_ID,
    GUILD_ID,
    TOKEN,
    FakeDiscord,
    RecordedRequest,
    button_interaction,
    command_interaction,
)
from intel.config import load_config
from intel.desk import build_desk, replay_sources
from intel.snapshot import Sources
from tests.factories import make_signal

MOMENT = datetime(2025, 10, 10, 20, 0, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
COMMANDS = {"signal", "watch", "alerts", "subscribe", "unsubscribe", "status", "help"}
CHANNEL = 700000000000000001
MANAGE_GUILD = 1 << 5
HOSTILE = ["@everyone", "@here", "<@&123456789012345678>", "**bold** `x`", "# big\n> quote"]


class SlowCandles:
    """The recorded candles, each fetch `delay_s` late: a slow exchange."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self._inner, self._delay_s = inner, delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def candles(self, symbol: str, now: datetime, count: int) -> Any:
        await asyncio.sleep(self._delay_s)
        return await self._inner.candles(symbol, now, count)


async def no_status() -> BotStatus:
    raise AssertionError("status is not asked in these tests")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    with server.pointed():
        yield server
    await server.close()


@pytest.fixture
async def started(fake, store) -> AsyncIterator[Any]:
    """Starts transports on the fake (as `await started(...)`) and closes them all after."""
    opened: list[DiscordTransport] = []

    async def start(**options: Any) -> DiscordTransport:
        transport = await start_transport(store, **options)
        opened.append(transport)
        return transport

    yield start
    for transport in opened:
        await transport.close()


async def start_transport(
    store: MemoryStore,
    *,
    candle_delay_s: float = 0.0,
    config: DiscordConfig | None = None,
    gateway: bool = False,
    seen: list[Request] | None = None,
    extra_commands: tuple[Command, ...] = (),
) -> DiscordTransport:
    """A transport on the fake; `seen` collects every request the command layer gets."""
    bot_config = load_config(env={}, model=BotConfig)
    sources = replay_sources()
    if candle_delay_s:
        sources = Sources(
            SlowCandles(sources.candles, candle_delay_s),  # type: ignore[arg-type]
            sources.orderbook,
            sources.whales,
            sources.posts,
            sources.fear_greed,
        )
    desk = build_desk(bot_config, sources=sources, market_clock=lambda: MOMENT)
    router = CommandRouter(desk, store, bot_config, no_status, extra_commands=extra_commands)

    async def handle(request: Request) -> Reply:
        if seen is not None:
            seen.append(request)
        return await router.handle(request)

    transport = DiscordTransport(
        TOKEN, config or DiscordConfig(), desk.symbols, store, gateway=gateway
    )
    transport.use_commands(router.commands.values())
    await transport.start(handle)
    return transport


async def run(transport: DiscordTransport, payload: dict[str, Any]) -> None:
    """What the gateway does with an INTERACTION_CREATE: build the interaction, run the tree."""
    interaction = discord.Interaction(data=payload, state=transport.client._connection)
    await transport.tree._call(interaction)


def option(name: str, value: Any, kind: int = 3, *, focused: bool = False) -> dict[str, Any]:
    found = {"name": name, "type": kind, "value": value}
    return {**found, "focused": True} if focused else found


def follow_ups(fake: FakeDiscord) -> list[RecordedRequest]:
    return fake.matching(f"/webhooks/{APP_ID}/", "POST")


def contents(fake: FakeDiscord) -> str:
    return "\n".join(r.json.get("content") or "" for r in follow_ups(fake))


# -- start and command sync ------------------------------------------------------------------


async def test_commands_sync_once_and_again_only_when_the_set_changes(fake, store, started) -> None:
    await started()
    [put] = fake.matching(f"/applications/{APP_ID}/commands", "PUT")
    assert {command["name"] for command in put.json} == COMMANDS
    alerts = next(command for command in put.json if command["name"] == "alerts")
    threshold = next(o for o in alerts["options"] if o["name"] == "threshold")
    assert (threshold["type"], threshold["min_value"], threshold["max_value"]) == (4, 0, 100)
    await started()  # the same set: nothing uploaded
    assert len(fake.matching("/commands", "PUT")) == 1
    await started(config=DiscordConfig(guild_id=GUILD_ID))  # another scope
    assert len(fake.matching(f"/guilds/{GUILD_ID}/commands", "PUT")) == 1
    assert await store.get_meta(COMMANDS_HASH_KEY) is not None


async def test_a_rejected_token_says_so_at_start(fake, store, started) -> None:
    fake.token = "another"
    with pytest.raises(TransportRejectedError, match="DISCORD_TOKEN"):
        await started()


# -- slash commands --------------------------------------------------------------------------


async def test_signal_defers_before_slow_work_then_sends_the_embed_and_chart(
    fake, store, started
) -> None:
    transport = await started(candle_delay_s=3.2)
    loop = asyncio.get_running_loop()
    asked_at = loop.time()
    task = asyncio.create_task(
        run(transport, command_interaction("signal", [option("symbol", "eth")]))
    )
    [defer] = await asyncio.wait_for(fake.wait_for("/callback"), 3.0)
    assert defer.json["type"] == 5  # "thinking…"
    assert defer.at_s - asked_at < 0.5  # long before Discord's 3 s
    await asyncio.wait_for(task, 30)
    [answer] = follow_ups(fake)
    assert answer.at_s - asked_at >= 3.2  # the slow source really was slow
    [embed] = answer.json["embeds"]
    assert embed["title"].startswith(("🟢 BUY ETH/USDT", "🔴 SELL ETH/USDT", "⚪ HOLD ETH/USDT"))
    assert embed["image"]["url"] == "attachment://chart.png"
    [(filename, png)] = answer.files
    assert filename == "chart.png"
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert answer.json["allowed_mentions"]["parse"] == []
    [row] = answer.json["components"]
    assert [b["custom_id"] for b in row["components"]] == [
        "signaldesk:refresh:eth",
        "signaldesk:watch:eth",
    ]


async def test_alerts_takes_the_threshold_as_a_number(fake, store, started) -> None:
    transport = await started()
    await run(transport, command_interaction("alerts", [option("threshold", 60, 4)], guild=False))
    assert await store.threshold("discord", "42") == 60
    assert "60/100" in contents(fake)
    [defer] = fake.matching("/callback")
    assert defer.json["data"]["flags"] & 64  # personal commands answer the asker only


async def test_alerts_70_reaches_the_command_as_the_int_70(fake, store, started) -> None:
    seen: list[Request] = []
    transport = await started(seen=seen)
    await run(transport, command_interaction("alerts", [option("threshold", 70, 4)], guild=False))
    [request] = seen
    assert request.args == ()  # not re-stringified into the words
    assert request.options == {"threshold": 70}
    assert type(request.options["threshold"]) is int
    assert await store.threshold("discord", "42") == 70
    await run(transport, command_interaction("alerts", [option("off", True, 5)], guild=False))
    assert seen[-1].options == {"off": True}
    assert await store.threshold("discord", "42") is None


async def echo_args(request: Request) -> Reply:
    return Reply(text=f"got {list(request.args)}")


DIGEST = Command("digest", echo_args, "a summary of the day", "digest 30", "digest N")


async def test_a_registry_command_without_a_definition_gets_a_generic_one(
    fake, store, started
) -> None:
    seen: list[Request] = []
    transport = await started(seen=seen, extra_commands=(DIGEST,))
    [put] = fake.matching(f"/applications/{APP_ID}/commands", "PUT")
    assert {command["name"] for command in put.json} == COMMANDS | {"digest"}
    uploaded = next(command for command in put.json if command["name"] == "digest")
    assert uploaded["description"] == "a summary of the day"
    assert [(o["name"], o["type"], o["required"]) for o in uploaded["options"]] == [
        ("arguments", 3, False)
    ]
    await run(transport, command_interaction("digest", [option("arguments", " 30  btc")]))
    assert seen[-1].command == "digest"
    assert seen[-1].args == ("30", "btc")
    assert "got ['30', 'btc']" in contents(fake)


async def test_a_long_personal_reply_is_split_and_every_part_stays_private(fake, store) -> None:
    lines = [f"source {n:03d} ok · data as of 2025-10-10T20:00:00Z · replay" for n in range(120)]

    async def long_status(request: Request) -> Reply:  # a platform-neutral handler's answer
        return Reply(text="\n".join(lines))

    transport = DiscordTransport(TOKEN, DiscordConfig(), SYMBOLS, store, gateway=False)
    await transport.start(long_status)
    try:
        await run(transport, command_interaction("status"))
    finally:
        await transport.close()
    sent = follow_ups(fake)
    assert len(sent) >= 3
    assert all(r.json["flags"] & 64 for r in sent)  # ephemeral: only the asker sees them
    assert all(len(r.json["content"]) <= LIMITS.content for r in sent)
    assert "\n".join(r.json["content"] for r in sent).split("\n") == lines


async def test_symbol_autocomplete_answers_matching_symbols(fake, store, started) -> None:
    transport = await started()
    typed = command_interaction("signal", [option("symbol", "et", focused=True)], kind=4)
    await run(transport, typed)
    [answer] = fake.matching("/callback")
    assert answer.json == {
        "type": 8,
        "data": {"choices": [{"name": "ETH/USDT", "value": "eth"}]},
    }


async def test_a_member_without_manage_server_cannot_subscribe(fake, store, started) -> None:
    transport = await started()
    await run(transport, command_interaction("subscribe", [option("symbols", "btc")]))
    assert "only an admin" in contents(fake)
    assert await store.subscription("discord", str(CHANNEL)) is None


async def test_subscribe_names_the_permissions_the_bot_lacks_and_writes_nothing(
    fake, store, started
) -> None:
    transport = await started()
    view_and_send = (1 << 10) | (1 << 11)
    payload = command_interaction(
        "subscribe", member_permissions=MANAGE_GUILD, app_permissions=view_and_send
    )
    await run(transport, payload)
    assert "Embed Links, Attach Files" in contents(fake)
    assert await store.subscription("discord", str(CHANNEL)) is None


async def test_a_role_from_config_may_subscribe(fake, store, started) -> None:
    transport = await started(config=DiscordConfig(admin_role_ids=(555,)))
    await run(
        transport, command_interaction("subscribe", [option("symbols", "btc eth")], role_ids=(555,))
    )
    subscription = await store.subscription("discord", str(CHANNEL))
    assert subscription is not None
    assert set(subscription.symbols) == {"BTC/USDT", "ETH/USDT"}


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_input_never_pings_or_breaks_markup(
    fake, store, started, hostile: str
) -> None:
    transport = await started()
    await run(transport, command_interaction("signal", [option("symbol", hostile)]))
    await run(transport, command_interaction("help", [option("command", hostile)]))
    sent = follow_ups(fake)
    assert len(sent) == 2  # each answered, none lost
    for request in sent:
        content = request.json["content"]
        assert request.json["allowed_mentions"]["parse"] == []
        assert 0 < len(content) <= LIMITS.content
        assert "@everyone" not in content
        assert "@here" not in content
        assert "<@&123456789012345678>" not in content
        assert "**bold**" not in content
        assert not any(line.startswith(("# ", "> ")) for line in content.split("\n"))


# -- alerts and DMs through send -------------------------------------------------------------


def alert(chart: bytes | None = b"\x89PNG\r\n\x1a\nfake") -> OutMessage:
    signal = make_signal()
    return OutMessage(
        intro="HOLD → BUY on BTC/USDT", reply=Reply(text="…", signal=signal, chart_png=chart)
    )


async def test_a_channel_alert_is_the_embed_with_its_intro_and_chart(fake, store, started) -> None:
    transport = await started()
    await transport.send(str(CHANNEL), alert())
    [posted] = fake.matching(f"/channels/{CHANNEL}/messages", "POST")
    [embed] = posted.json["embeds"]
    assert embed["description"].startswith("**HOLD → BUY on BTC/USDT**")
    assert embed["image"]["url"] == "attachment://chart.png"
    assert posted.files == (("chart.png", b"\x89PNG\r\n\x1a\nfake"),)
    assert posted.json["allowed_mentions"]["parse"] == []


async def test_a_dm_opens_the_users_channel_once(fake, store, started) -> None:
    transport = await started()
    await transport.send("user:42", alert(chart=None))
    await transport.send("user:42", alert(chart=None))
    [opened] = fake.matching("/users/@me/channels", "POST")
    assert opened.json == {"recipient_id": 42}
    assert len(fake.matching("/messages", "POST")) == 2


async def test_a_short_429_is_waited_out_by_discord_py_and_sent_once(fake, store, started) -> None:
    transport = await started()
    fake.fail(f"/channels/{CHANNEL}/messages", 429, retry_after_s=0.1)
    await asyncio.wait_for(transport.send(str(CHANNEL), alert()), 5)
    tries = fake.matching(f"/channels/{CHANNEL}/messages", "POST")
    assert len(tries) == 2
    assert tries[1].at_s - tries[0].at_s >= 0.1


async def test_a_long_429_goes_back_to_the_sender_at_once(fake, store, started) -> None:
    transport = await started()
    fake.fail("/messages", 429, retry_after_s=45.0)
    with pytest.raises(RateLimitedError) as raised:
        await asyncio.wait_for(transport.send(str(CHANNEL), alert()), 5)
    assert raised.value.retry_after_s == 45.0


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, 50013, PermanentDeliveryError),  # Missing Permissions
        (403, 50001, PermanentDeliveryError),  # Missing Access
        (404, 10003, PermanentDeliveryError),  # Unknown Channel
        (503, 0, TransientDeliveryError),
    ],
)
async def test_discord_errors_map_onto_delivery_errors(
    fake, store, started, status, code, error
) -> None:
    transport = await started()
    fake.fail("/messages", status, code=code)
    with pytest.raises(error):
        await transport.send(str(CHANNEL), alert())


# -- buttons ---------------------------------------------------------------------------------


async def press(fake: FakeDiscord, custom_id: str, user_id: int = 42) -> None:
    """A button press through the fake gateway; returns once its first answer arrived."""
    before = len(fake.matching("/callback"))
    await fake.dispatch("INTERACTION_CREATE", button_interaction(custom_id, user_id=user_id))
    await asyncio.wait_for(fake.wait_for("/callback", before + 1), 10)


async def answered(fake: FakeDiscord, path_part: str, count: int) -> list[RecordedRequest]:
    return await asyncio.wait_for(fake.wait_for(path_part, count), 30)


async def test_the_watch_button_works_after_a_restart(fake, store, started) -> None:
    await (await started()).close()  # the message with its buttons was posted before this
    await started(gateway=True)
    await asyncio.wait_for(fake.ready.wait(), 10)
    await press(fake, "signaldesk:watch:eth")
    [done] = await answered(fake, f"/webhooks/{APP_ID}/", 1)
    assert done.json["flags"] & 64  # to the presser only
    assert await store.watchlist("discord", "42") == ["ETH/USDT"]


async def test_refresh_edits_the_message_in_place_and_a_refusal_is_private(fake, store, started):
    await started(gateway=True)
    await asyncio.wait_for(fake.ready.wait(), 10)
    await press(fake, "signaldesk:refresh:btc")
    [edit] = await answered(fake, "/messages/@original", 1)
    assert edit.method == "PATCH"
    assert edit.json["embeds"][0]["title"].split()[2] == "BTC/USDT"
    assert [name for name, _ in edit.files] == ["chart.png"]
    await press(fake, "signaldesk:refresh:btc")  # again at once: the cooldown answers
    webhook = await answered(fake, f"/webhooks/{APP_ID}/", 2)  # the edit, then the refusal
    [refusal] = [request for request in webhook if request.method == "POST"]
    assert refusal.json["flags"] & 64
    assert "not so fast" in refusal.json["content"]
    assert len(fake.matching("/messages/@original", "PATCH")) == 1  # the message was not touched
    assert not fake.matching(f"/channels/{CHANNEL}/messages")  # never a new public message
