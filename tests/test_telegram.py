"""The Telegram transport through python-telegram-bot against the fake Bot API on 127.0.0.1:
updates fed through the application, replies checked down to the multipart photo."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot.app import build_message
from bot.commands.base import BotStatus, Reply, Request
from bot.commands.registry import Command
from bot.commands.router import CommandRouter
from bot.config import BotConfig, TransportLimits
from bot.delivery.sender import OutboxSender
from bot.logs import Redactor
from bot.storage.base import Delivery, DeliveryKind
from bot.transports.base import OutMessage, PermanentDeliveryError, TransportRejectedError
from bot.transports.fake_telegram import FakeBotApi, FloodLimits
from bot.transports.telegram import TelegramTransport, sender_limits
from intel.config import load_config
from intel.desk import SignalDesk, build_desk
from tests.factories import make_signal
from tests.telegram_html import check_telegram_html, utf16_length

ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config(env={}, model=BotConfig)
FAST = TransportLimits(overall_per_s=300, per_chat_per_s=20, per_group_per_min=1200)
GROUP = -1001234567890
ADMIN, MEMBER = 501, 502
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_update_ids = itertools.count(1)


async def no_status() -> BotStatus:
    raise AssertionError("status is not asked in these tests")


@pytest.fixture(scope="module")
def desk() -> SignalDesk:
    return build_desk(CONFIG)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(admins={str(GROUP): {str(ADMIN)}}) as fake:
        yield fake


@pytest.fixture
async def transport(api, store, desk) -> AsyncIterator[TelegramTransport]:
    router = CommandRouter(desk, store, CONFIG, no_status)
    telegram = TelegramTransport(
        api.token, store, limits=FAST, base_url=api.base_url, polling=False
    )
    await telegram.start(router.handle)
    yield telegram
    await telegram.close()


def command(
    text: str,
    *,
    chat_id: int = ADMIN,
    chat_type: str = "private",
    user_id: int | None = ADMIN,
    sender_chat: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update as Telegram sends it for a command typed in a chat."""
    message: dict[str, Any] = {
        "message_id": 1,
        "date": 1760000000,
        "chat": {"id": chat_id, "type": chat_type, "title": "Traders"},
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
    }
    if user_id is not None:
        message["from"] = {"id": user_id, "is_bot": False, "first_name": "Ann"}
    if sender_chat is not None:
        message["sender_chat"] = sender_chat
    key = "channel_post" if chat_type == "channel" else "message"
    return {"update_id": next(_update_ids), key: message}


async def feed(transport: TelegramTransport, payload: dict[str, Any]) -> None:
    app = transport.application
    await app.process_update(Update.de_json(payload, app.bot))


def texts(api: FakeBotApi, chat_id: int | str) -> list[str]:
    """The visible text of every message that reached the chat (captions included)."""
    shown = []
    for sent in api.sent(str(chat_id)):
        body = sent.params.get("text", sent.params.get("caption", ""))
        html = sent.params.get("parse_mode") == "HTML"
        shown.append(check_telegram_html(body) if html else body)
    return shown


async def test_start_welcomes_and_says_what_to_try(transport, api):
    await feed(transport, command("/start"))
    (welcome,) = api.sent(str(ADMIN))
    assert "Welcome" in welcome.params["text"]
    assert "<code>/signal btc</code>" in welcome.params["text"]
    check_telegram_html(welcome.params["text"])


async def test_signal_is_a_photo_with_its_caption_then_the_rest_as_text(transport, api):
    await feed(transport, command("/signal btc"))
    methods = [r.method for r in api.requests if r.method not in {"getMe"}]
    assert methods[0] == "sendChatAction"  # the user sees work under way first
    photo, *rest = api.sent(str(ADMIN))
    assert photo.method == "sendPhoto"
    assert photo.photo is not None
    assert photo.photo.startswith(PNG_MAGIC)
    caption = photo.params["caption"]
    assert utf16_length(caption) <= 1024
    assert "BTC/USDT" in check_telegram_html(caption).splitlines()[0]
    assert rest
    assert all(r.method == "sendMessage" and utf16_length(r.params["text"]) <= 4096 for r in rest)
    assert "Not financial advice" in "".join(texts(api, ADMIN))


@pytest.mark.parametrize(
    "line",
    [
        "/signal <b>@everyone</b>",
        "/signal </code>&amp;",
        "/watch add @everyone <a href='https://x'>x</a>",
        "/help </code><pre>",
        "/signal " + "<b>" * 2000,
    ],
)
async def test_hostile_input_never_breaks_the_markup(transport, api, line):
    await feed(transport, command(line))
    (answer,) = texts(api, ADMIN)  # parsed back as Telegram HTML, exactly one answer
    assert answer
    assert all(r.params.get("parse_mode") == "HTML" for r in api.sent(str(ADMIN)))


async def test_a_group_member_cannot_subscribe_and_nothing_is_written(transport, api, store):
    await feed(
        transport, command("/subscribe", chat_id=GROUP, chat_type="supergroup", user_id=MEMBER)
    )
    assert await store.subscription("telegram", str(GROUP)) is None
    (refusal,) = texts(api, GROUP)
    assert "admin" in refusal
    assert [r.params["user_id"] for r in api.requests if r.method == "getChatMember"] == [
        str(MEMBER)
    ]


async def test_a_group_admin_subscribes_the_group(transport, api, store):
    await feed(transport, command("/subscribe", chat_id=GROUP, chat_type="supergroup"))
    subscription = await store.subscription("telegram", str(GROUP))
    assert subscription is not None
    assert subscription.active


async def test_an_anonymous_admin_posting_as_the_group_may_subscribe(transport, api, store):
    group = {"id": GROUP, "type": "supergroup", "title": "Traders"}
    update = command(
        "/subscribe btc",
        chat_id=GROUP,
        chat_type="supergroup",
        user_id=1087968824,
        sender_chat=group,
    )
    await feed(transport, update)
    subscription = await store.subscription("telegram", str(GROUP))
    assert subscription is not None
    assert subscription.symbols == ("BTC/USDT",)


async def test_a_linked_channel_post_in_a_group_is_not_an_admin(transport, api, store):
    channel = {"id": -1009999, "type": "channel", "title": "Other"}
    update = command(
        "/subscribe", chat_id=GROUP, chat_type="supergroup", user_id=777000, sender_chat=channel
    )
    await feed(transport, update)
    assert await store.subscription("telegram", str(GROUP)) is None


async def test_a_channel_subscribes_by_a_post_of_its_admins(transport, api, store):
    channel = {"id": -1005555, "type": "channel", "title": "Signals"}
    update = command(
        "/subscribe eth", chat_id=-1005555, chat_type="channel", user_id=None, sender_chat=channel
    )
    await feed(transport, update)
    subscription = await store.subscription("telegram", "-1005555")
    assert subscription is not None
    assert subscription.symbols == ("ETH/USDT",)


SIGNAL = make_signal()


def alert(intro: str = "BTC/USDT: HOLD → BUY <b>&amp;") -> OutMessage:
    reply = Reply(text="unused by Telegram", chart_png=PNG_MAGIC + b"chart", signal=SIGNAL)
    return OutMessage(intro=intro, reply=reply, is_group=True, extra={"kind": "channel"})


async def test_a_flood_429_is_waited_out_and_the_alert_arrives_once(transport, api):
    api.flood_next, api.flood_retry_after_s = 1, 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    await transport.send(str(GROUP), alert())
    assert loop.time() - started >= 0.3
    photos = [r for r in api.sent(str(GROUP)) if r.method == "sendPhoto"]
    assert len(photos) == 1
    refused = [r for r in api.requests if r.status == 429]
    assert len(refused) == 1
    assert "HOLD → BUY <b>&amp;" in texts(api, GROUP)[0]


async def test_the_chart_is_uploaded_once_and_resent_by_file_id(transport, api):
    chats = [str(-1000 - n) for n in range(6)]
    await asyncio.gather(*(transport.send(chat, alert()) for chat in chats))
    assert len(api.uploads()) == 1
    photos = [r for r in api.sent() if r.method == "sendPhoto"]
    assert sorted(r.chat_id for r in photos) == sorted(chats)
    uploaded_id = "photo-1"
    assert all(r.params["photo"] == uploaded_id for r in photos if r.photo is None)


async def test_html_telegram_cannot_parse_is_resent_as_plain_text(transport, api):
    api.unparsable = ("Not financial advice",)
    await transport.send(str(ADMIN), alert())
    last = api.sent(str(ADMIN))[-1]
    assert "parse_mode" not in last.params
    assert "Not financial advice" in last.params["text"]
    assert "<i>" not in last.params["text"]
    refused = [r for r in api.requests if r.status == 400]
    assert len(refused) == 1


async def test_a_migrated_group_keeps_its_subscription_under_the_new_id(transport, api, store):
    old, new = "-4001", "-1004001"
    await store.subscribe("telegram", old, ["ETH/USDT"])
    api.migrated_chats[old] = new
    await transport.send(old, alert())
    assert [r.method for r in api.sent(new)] == ["sendPhoto", "sendMessage"]
    assert await store.subscription("telegram", old) is None
    moved = await store.subscription("telegram", new)
    assert moved is not None
    assert moved.symbols == ("ETH/USDT",)


async def test_a_user_who_blocked_the_bot_has_their_dms_disabled(transport, api, store):
    await store.watch_add("telegram", "42", "42", "BTC/USDT")
    await store.set_threshold("telegram", "42", "42", 10)
    assert len(await store.watchers("BTC/USDT")) == 1
    delivery = Delivery("telegram", "42", DeliveryKind.DM, "BTC/USDT crossed 10", user_id="42")
    await store.record_signal(SIGNAL, PNG_MAGIC, [delivery], alerted=True)
    api.blocked_chats.add("42")
    with pytest.raises(PermanentDeliveryError):
        await transport.send("42", alert())
    sender = OutboxSender(
        store,
        {"telegram": transport},
        {"telegram": sender_limits(TransportLimits())},
        concurrency=2,
        build_message=lambda item, stored: build_message(Redactor(()), item, stored),
        poll_interval_s=0.05,
    )
    await sender.drain_once()
    assert sender.stats.permanent_failures == 1
    assert await store.watchers("BTC/USDT") == []  # a disabled user is no longer DMed
    assert await store.pending_deliveries(10) == []


async def test_a_rejected_token_fails_start_in_one_clear_error(api, store):
    telegram = TelegramTransport(
        "999:wrong", store, limits=TransportLimits(), base_url=api.base_url, polling=False
    )
    with pytest.raises(TransportRejectedError, match="rejected the token"):
        await telegram.start(lambda request: asyncio.sleep(0, Reply(text="")))
    await telegram.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_exits_2_in_one_line_when_the_only_token_cannot_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT__", "DISCORD"))}
    token = "123456:tg-REJECTED-token"
    env.update(
        TELEGRAM_TOKEN=token,
        TELEGRAM_BASE_URL=f"http://127.0.0.1:{closed_port()}/bot",
        PYTHONPATH=str(ROOT),
        MPLBACKEND="Agg",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--no-console", "--db", str(tmp_path / "bot.db")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    failures = [line for line in proc.stderr.splitlines() if "transport_start_failed" in line]
    assert len(failures) == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no chat transport could start")
    assert token not in proc.stdout + proc.stderr


async def test_messages_to_one_chat_keep_its_per_second_limit(api, store):
    """Replies and alerts share one pacer per chat: the fake refuses a second message to a chat
    within 1 / per_chat_per_s, so any 429 here means the pacing failed."""
    api.limits = FloodLimits(per_chat_per_s=4)
    telegram = TelegramTransport(
        api.token,
        store,
        limits=TransportLimits(per_chat_per_s=4),
        base_url=api.base_url,
        polling=False,
        max_retries=0,
    )
    await telegram.start(lambda request: asyncio.sleep(0, Reply(text="")))
    try:
        await asyncio.gather(telegram.send("77", alert()), telegram.send("77", alert("again")))
        await feed(telegram, command("/start", chat_id=77, user_id=77))
    finally:
        await telegram.close()
    sent = api.sent("77")
    assert len(sent) == 5  # two alerts of photo + text, one welcome
    assert not [r for r in api.requests if r.status == 429]
    gaps = [later.at_s - earlier.at_s for earlier, later in itertools.pairwise(sent)]
    assert min(gaps) >= 0.25 - 0.02


async def test_a_plain_reply_with_a_chart_sends_the_text_then_the_photo(api, store, desk):
    png = PNG_MAGIC + b"backtest chart"

    async def charted(request: Request) -> Reply:
        return Reply(text="BTC/USDT divergence <beside> buy-and-hold", chart_png=png)

    extra = [Command("charted", charted, "a reply with a chart", "charted", "charted")]
    router = CommandRouter(desk, store, CONFIG, no_status, extra_commands=extra)
    telegram = TelegramTransport(
        api.token, store, limits=FAST, base_url=api.base_url, polling=False
    )
    await telegram.start(router.handle)
    try:
        await feed(telegram, command("/charted"))
    finally:
        await telegram.close()
    text, photo = api.sent(str(ADMIN))
    assert text.method == "sendMessage"
    assert "&lt;beside&gt;" in text.params["text"]  # escaped, not dropped
    assert photo.method == "sendPhoto"
    assert photo.photo == png
