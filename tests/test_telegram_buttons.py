"""Telegram's Refresh and Watch buttons, forum topics and the command menu, through
python-telegram-bot against the fake Bot API: callback_query updates fed through the
application, every answer checked as the fake received it."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.commands.router import CommandRouter
from bot.transports.fake_telegram import BOT_USER, FakeBotApi, FakeRequest
from bot.transports.telegram import TelegramTransport
from intel.desk import SignalDesk, build_desk
from tests.test_telegram import (
    ADMIN,
    CONFIG,
    FAST,
    GROUP,
    MEMBER,
    alert,
    command,
    feed,
    no_status,
    texts,
)

STRANGER = 503  # a group member who never started the bot
_query_ids = itertools.count(1)
_update_ids = itertools.count(10_000)


@pytest.fixture(scope="module")
def desk() -> SignalDesk:
    return build_desk(CONFIG)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    admins = {str(GROUP): {str(ADMIN)}}
    async with FakeBotApi(admins=admins, unstarted_users={str(STRANGER)}) as fake:
        yield fake


@pytest.fixture
async def router(store, desk) -> CommandRouter:
    return CommandRouter(desk, store, CONFIG, no_status)


@pytest.fixture
async def transport(api, store, router) -> AsyncIterator[TelegramTransport]:
    telegram = TelegramTransport(
        api.token, store, limits=FAST, base_url=api.base_url, polling=False
    )
    telegram.use_commands(router.commands.values())
    await telegram.start(router.handle)
    yield telegram
    await telegram.close()


def press(
    data: str, *, user_id: int, chat: dict[str, Any], message_id: int, date: int = 1760000000
) -> dict[str, Any]:
    """A callback_query update: `user_id` pressed a button under message `message_id`."""
    message = {
        "message_id": message_id,
        "date": date,  # 0: the message is no longer accessible to the bot
        "chat": chat,
        "photo": [{"file_id": "photo-1", "file_unique_id": "u1", "width": 1280, "height": 960}],
    }
    query = {
        "id": str(next(_query_ids)),
        "from": {"id": user_id, "is_bot": False, "first_name": "Bo"},
        "chat_instance": "instance-1",
        "data": data,
        "message": message,
    }
    return {"update_id": next(_update_ids), "callback_query": query}


GROUP_CHAT = {"id": GROUP, "type": "supergroup", "title": "Traders"}


def keyboard(request: FakeRequest) -> list[str]:
    markup = json.loads(request.params["reply_markup"])
    return [button["callback_data"] for row in markup["inline_keyboard"] for button in row]


def answered(api: FakeBotApi) -> FakeRequest:
    (answer,) = api.calls("answerCallbackQuery")
    return answer


async def signal_in_group(transport: TelegramTransport, api: FakeBotApi) -> list[FakeRequest]:
    await feed(transport, command("/signal btc", chat_id=GROUP, chat_type="supergroup"))
    return api.sent(str(GROUP))


async def test_a_signal_carries_refresh_and_watch_buttons(transport, api):
    photo, *rest = await signal_in_group(transport, api)
    assert photo.method == "sendPhoto"
    assert keyboard(photo) == ["sd:refresh:btc", "sd:watch:btc"]
    assert all("reply_markup" not in r.params for r in rest)  # once per signal
    await transport.send(str(GROUP), alert())  # alerts carry them too
    assert keyboard(api.sent(str(GROUP))[len(rest) + 1]) == ["sd:refresh:btc", "sd:watch:btc"]


async def test_refresh_edits_the_signal_in_place_and_never_posts(transport, api):
    photo, *rest = await signal_in_group(transport, api)
    assert photo.message_id is not None
    sent_before = len(api.sent())
    data = "sd:refresh:btc"
    await feed(transport, press(data, user_id=MEMBER, chat=GROUP_CHAT, message_id=photo.message_id))
    assert len(api.sent()) == sent_before  # no new message in the chat
    (media,) = api.calls("editMessageMedia")
    assert (media.chat_id, media.params["message_id"]) == (str(GROUP), str(photo.message_id))
    caption = json.loads(media.params["media"])["caption"]
    assert caption.splitlines()[0] == photo.params["caption"].splitlines()[0]
    # The new chart: uploaded, or the same chart again by the file_id of its first upload.
    uploaded = json.loads(media.params["media"])["media"]
    assert media.photo is not None or uploaded == "photo-1"
    assert keyboard(media) == ["sd:refresh:btc", "sd:watch:btc"]
    edited_texts = [r for r in api.requests if r.method == "editMessageText"]
    assert [r.params["message_id"] for r in edited_texts] == [str(r.message_id) for r in rest]
    assert answered(api).params["text"] == "Refreshed"


async def test_refresh_under_the_cooldown_answers_the_presser_alone(transport, api):
    photo, *_ = await signal_in_group(transport, api)  # ADMIN asked: their cooldown runs
    sent_before = len(api.sent())
    assert photo.message_id is not None
    await feed(
        transport,
        press("sd:refresh:btc", user_id=ADMIN, chat=GROUP_CHAT, message_id=photo.message_id),
    )
    assert len(api.sent()) == sent_before
    assert api.calls("editMessageMedia") == []
    answer = answered(api)
    assert answer.params["text"].startswith("not so fast — you can ask for another BTC/USDT")
    assert answer.params["show_alert"] in {"true", "True"}  # a box only the presser sees


async def test_refresh_of_a_message_too_old_to_edit_says_how_to_ask_again(transport, api):
    await feed(
        transport, press("sd:refresh:eth", user_id=MEMBER, chat=GROUP_CHAT, message_id=9, date=0)
    )
    assert "/signal eth" in answered(api).params["text"]
    assert api.calls("editMessageMedia") == []


async def test_watch_in_a_private_chat_adds_to_the_presser_watchlist(transport, api, store):
    chat = {"id": MEMBER, "type": "private", "first_name": "Bo"}
    await feed(transport, press("sd:watch:eth", user_id=MEMBER, chat=chat, message_id=3))
    assert await store.watchlist("telegram", str(MEMBER)) == ["ETH/USDT"]
    answer = answered(api)
    assert answer.params["text"].startswith("Now watching ETH/USDT.")
    assert "`" not in answer.params["text"]  # the alert box shows no Markdown
    assert api.calls("sendChatAction") == []  # no need to probe a private chat
    assert api.sent() == []


async def test_watch_in_a_group_from_a_started_user_adds_it(transport, api, store):
    await feed(transport, press("sd:watch:btc", user_id=MEMBER, chat=GROUP_CHAT, message_id=3))
    assert await store.watchlist("telegram", str(MEMBER)) == ["BTC/USDT"]
    assert [r.chat_id for r in api.calls("sendChatAction")] == [str(MEMBER)]
    assert answered(api).params["text"].startswith("Now watching BTC/USDT.")
    assert api.sent(str(GROUP)) == []


async def test_watch_from_someone_who_never_started_the_bot_answers_a_start_link(
    transport, api, store
):
    await feed(transport, press("sd:watch:eth", user_id=STRANGER, chat=GROUP_CHAT, message_id=3))
    link = f"https://t.me/{BOT_USER['username']}?start=watch_eth"
    assert answered(api).params["url"] == link
    assert await store.watchlist("telegram", str(STRANGER)) == []
    assert api.sent() == []
    # The link opens the bot's chat; Start sends the payload, and the watch is added.
    await feed(transport, command("/start watch_eth", chat_id=STRANGER, user_id=STRANGER))
    welcome, watching = texts(api, STRANGER)
    assert welcome.startswith("Welcome")
    assert watching.startswith("Now watching ETH/USDT.")
    assert await store.watchlist("telegram", str(STRANGER)) == ["ETH/USDT"]


async def test_a_start_payload_that_is_not_ours_only_welcomes(transport, api, store):
    await feed(transport, command("/start watch_<b>", chat_id=MEMBER, user_id=MEMBER))
    (welcome,) = texts(api, MEMBER)
    assert welcome.startswith("Welcome")
    assert await store.watchlist("telegram", str(MEMBER)) == []


# -- forum topics ----------------------------------------------------------------------------


def in_topic(update: dict[str, Any], thread_id: int) -> dict[str, Any]:
    update["message"].update(message_thread_id=thread_id, is_topic_message=True)
    update["message"]["chat"]["is_forum"] = True
    return update


async def test_a_subscription_made_in_a_topic_posts_its_alerts_there(transport, api, store):
    update = command("/subscribe btc", chat_id=GROUP, chat_type="supergroup")
    await feed(transport, in_topic(update, 77))
    (reply,) = api.sent(str(GROUP))
    assert reply.params["message_thread_id"] == "77"  # answered in the topic
    subscription = await store.subscription("telegram", str(GROUP))
    assert subscription is not None
    assert subscription.thread_id == "77"
    await transport.send(str(GROUP), alert())
    photo, text = api.sent(str(GROUP))[1:]
    assert (photo.params["message_thread_id"], text.params["message_thread_id"]) == ("77", "77")
    # Subscribed again from the General topic: alerts go to the chat itself from now on.
    await feed(transport, command("/subscribe", chat_id=GROUP, chat_type="supergroup"))
    await transport.send(str(GROUP), alert("again"))
    assert all("message_thread_id" not in r.params for r in api.sent(str(GROUP))[3:])


async def test_a_dm_never_goes_to_a_topic(transport, api, store):
    await store.subscribe("telegram", str(ADMIN), [], thread_id="5")
    message = alert()
    await transport.send(str(ADMIN), type(message)(message.intro, message.reply, is_group=False))
    assert all("message_thread_id" not in r.params for r in api.sent(str(ADMIN)))


# -- the command menu ------------------------------------------------------------------------


async def test_the_command_menu_lists_start_and_every_registered_command(transport, api, router):
    (menu,) = api.calls("setMyCommands")
    listed = json.loads(menu.params["commands"])
    assert [c["command"] for c in listed] == ["start", *router.commands]
    assert all(1 <= len(c["description"]) <= 256 for c in listed)
