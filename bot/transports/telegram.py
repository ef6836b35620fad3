"""The Telegram transport (python-telegram-bot): commands in, replies and alerts out as HTML, and
Telegram's errors mapped onto the delivery errors the outbox sender understands.

Pacing, one limiter per budget, each counting Bot API messages (an alert is a photo and a text):
`PausingRateLimiter` (bot.transports.telegram_pacing, in PTB's rate-limiter slot) paces the
overall and per-group budgets and waits out a 429 itself (up to `max_retries` times, pausing
every request meanwhile); a per-chat pacer (bot.transports.telegram_send) spaces every message to
one chat, command replies and alerts alike. The outbox sender is therefore given no Telegram
limits of its own (`sender_limits`): it counts one turn per alert where Telegram counts each
message, and a 429 already waited out would pause it once more. Figures in
benchmarks/telegram_fanout.py.

A signal carries the Refresh and Watch buttons (bot.transports.telegram_buttons). A command
typed in a forum topic is answered in that topic, and a subscription made there posts its
alerts there (the topic is kept with the subscription).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence

import structlog
from cachetools import LRUCache
from telegram import (
    BotCommand,
    Chat,
    ChatMember,
    Message,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
    InvalidToken,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands.alerts import EXAMPLE_THRESHOLD
from bot.commands.base import Reply, Request
from bot.commands.registry import Command
from bot.commands.router import parse_command_line
from bot.config import TransportLimits
from bot.render.telegram import reply_messages, signal_messages
from bot.render.text import DEFAULT_CREDITS
from bot.storage.base import SubscriptionStore
from bot.transports.base import (
    CommandHandler,
    DeliveryError,
    OutMessage,
    TransientDeliveryError,
    TransportRejectedError,
)
from bot.transports.telegram_buttons import ButtonPresses, start_payload_command
from bot.transports.telegram_pacing import PausingRateLimiter
from bot.transports.telegram_send import (
    Part,
    Poster,
    Thread,
    delivery_error,
    sender_limits,
)
from intel.errors import UserInputError
from intel.symbols import base_asset

__all__ = ["TELEGRAM", "TelegramTransport", "delivery_error", "sender_limits"]

TELEGRAM = "telegram"
WELCOME = (
    "Welcome to SignalDesk: crypto signals from whale flows, order books and sentiment.\n"
    "Try `/signal btc` for a signal with its chart, "
    f"`/watch add eth` then `/alerts {EXAMPLE_THRESHOLD}` for DMs "
    "when a watched call is that sure, `/subscribe` in a group or channel (admins) for alerts "
    "there, and `/help` for every command. Not financial advice."
)
_ADMIN_STATUSES = {ChatMember.ADMINISTRATOR, ChatMember.OWNER}
_START = BotCommand("start", "welcome and what to try")
_SUBSCRIPTION_COMMANDS = ("subscribe", "unsubscribe")
_BOT_COMMAND_MAX = 256  # a command menu description's limit, in characters
_POOL_TIMEOUT_S = 30.0  # a send waits this long for a free connection before it fails

log = structlog.get_logger(__name__)


class TelegramTransport:
    """`Transport` on a PTB `Application`; `polling=False` for tests that feed updates."""

    name = TELEGRAM

    def __init__(
        self,
        token: str,
        store: SubscriptionStore,
        *,
        limits: TransportLimits,
        base_url: str | None = None,
        polling: bool = True,
        max_retries: int = 3,
        connection_pool_size: int = 16,
    ) -> None:
        builder = (
            Application.builder()
            .token(token)
            .rate_limiter(PausingRateLimiter(limits, max_retries))
            .concurrent_updates(32)  # a slow /signal must not hold up everyone else's commands
            .connection_pool_size(connection_pool_size)
            .pool_timeout(_POOL_TIMEOUT_S)
        )
        if base_url:
            builder = builder.base_url(base_url)
        if not polling:
            builder = builder.updater(None)
        self.application = builder.build()
        self._store = store
        self._poster = Poster(self.application.bot, limits.per_chat_per_s)
        self._handler: CommandHandler | None = None
        # Parts already delivered of a message whose later part failed: a retry skips them.
        self._progress: LRUCache[tuple[str, ...], int] = LRUCache(maxsize=10_000)
        # The text messages under a signal's photo, (chat, photo message) -> their ids, so that
        # Refresh edits them too (a press after a restart edits the photo and caption only).
        self._details: LRUCache[tuple[str, int], tuple[int, ...]] = LRUCache(maxsize=10_000)
        # Each subscribed chat's forum topic (None: the chat itself). Subscriptions of Telegram
        # chats change only through this transport, which forgets a chat's entry when they do.
        self._threads: LRUCache[str, str | None] = LRUCache(maxsize=10_000)
        self._menu: tuple[BotCommand, ...] = ()
        self._rendered: LRUCache[tuple[object, ...], tuple[Part, ...]] = LRUCache(maxsize=64)
        self._buttons = ButtonPresses(self)

    # -- the Transport protocol --------------------------------------------------------------

    async def start(self, handler: CommandHandler) -> None:
        self._handler = handler
        commands = filters.COMMAND & (filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST)
        self.application.add_handler(MessageHandler(commands, self._on_command))
        self.application.add_handler(CallbackQueryHandler(self._on_press))
        self.application.add_error_handler(self._on_error)
        try:
            await self.application.initialize()  # getMe: checks the token
        except InvalidToken as exc:
            raise TransportRejectedError(
                f"Telegram rejected the token (TELEGRAM_TOKEN): {exc.message}"
            ) from None
        except TelegramError as exc:
            raise TransientDeliveryError(f"Telegram is unreachable ({exc.message})") from None
        await self._publish_menu()
        await self.application.start()
        if self.application.updater is not None:
            await self.application.updater.start_polling()
        log.info("telegram_started", bot=self.application.bot.username)

    async def stop(self) -> None:
        """Stop taking updates; the bot stays initialized so alerts in flight still go out."""
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()

    async def close(self) -> None:
        await self.stop()
        await self.application.shutdown()  # does nothing when start never initialized it

    async def send(self, chat_id: str, message: OutMessage) -> None:
        thread_id = await self._thread_of(chat_id) if message.is_group else None
        parts = self._message_parts(message)
        await self._send_parts(chat_id, parts, _progress_key(message), thread_id=thread_id)

    def use_commands(self, commands: Iterable[Command]) -> None:
        """The command menu Telegram shows on "/", from the registry; published at start."""
        self._menu = (
            _START,
            *(BotCommand(c.name, c.summary[:_BOT_COMMAND_MAX]) for c in commands),
        )

    async def _publish_menu(self) -> None:
        if not self._menu:
            return
        try:
            await self.application.bot.set_my_commands(self._menu)
        except TelegramError as exc:  # a menu is a convenience: typed commands still work
            log.warning("telegram_menu_not_set", reason=exc.message)

    # -- inbound -----------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text or self._handler is None:
            return
        first = message.text.split(maxsplit=1)[0]
        addressee = first.partition("@")[2]
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # `/signal@OtherBot` in a group is for that bot
        thread_id = _topic(message)
        try:
            command, args = parse_command_line(message.text)
        except UserInputError as exc:
            await self._answer(chat.id, Reply(text=str(exc), is_error=True), thread_id)
            return
        if command == "start":
            await self._answer(chat.id, Reply(text=WELCOME), thread_id)
            deep_link = start_payload_command(args[0]) if len(args) == 1 else None
            if deep_link is None:
                return
            command, args = deep_link  # `/start watch_eth` from a Watch button's link
        request = await self._request(update, message, chat, command, args)
        if command == "signal":
            with contextlib.suppress(TelegramError):  # "sending photo…" while it computes
                await chat.send_action(ChatAction.UPLOAD_PHOTO, message_thread_id=thread_id)
        reply = await self.handle(request)
        if command in _SUBSCRIPTION_COMMANDS:
            self._threads.pop(str(chat.id), None)
        await self._answer(chat.id, reply, thread_id)

    async def _on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None and self._handler is not None:
            await self._buttons.press(update.callback_query)

    async def handle(self, request: Request) -> Reply:
        """The command layer's reply; never raises."""
        assert self._handler is not None
        try:
            return await self._handler(request)
        except Exception:  # the router answers every error; this is a last guard
            log.exception("telegram_handler_failed", command=request.command)
            return Reply(text="internal error — sorry, please try again", is_error=True)

    async def _request(
        self, update: Update, message: Message, chat: Chat, command: str, args: tuple[str, ...]
    ) -> Request:
        user = update.effective_user
        author = str(user.id) if user else str((message.sender_chat or chat).id)
        topic = _topic(message)
        return Request(
            transport=TELEGRAM,
            user_id=author,
            chat_id=str(chat.id),
            dm_chat_id=author,  # a user's private chat with the bot has the user's id
            command=command,
            args=args,
            is_private=chat.type == Chat.PRIVATE,
            is_admin=await self._is_admin(message, chat),
            thread_id=None if topic is None else str(topic),
        )

    async def _is_admin(self, message: Message, chat: Chat) -> bool:
        """Whether the author manages this chat: anyone in a DM, a channel's own posts (only
        its admins post), an anonymous admin (posting as the group), or a group's admin."""
        if chat.type in (Chat.PRIVATE, Chat.CHANNEL):
            return True
        if message.sender_chat is not None:
            return message.sender_chat.id == chat.id
        if message.from_user is None:
            return False
        try:
            member = await chat.get_member(message.from_user.id)
        except TelegramError as exc:
            log.warning("telegram_admin_check_failed", chat_id=chat.id, reason=exc.message)
            return False
        return member.status in _ADMIN_STATUSES

    async def _answer(self, chat_id: int | str, reply: Reply, thread_id: int | None = None) -> None:
        try:
            await self._send_parts(
                str(chat_id), self._reply_parts(reply), None, thread_id=thread_id
            )
        except DeliveryError as exc:  # the asker cannot be answered; nothing more to do
            log.warning("telegram_reply_failed", chat_id=chat_id, reason=str(exc))

    async def answer_privately(self, user_id: str, reply: Reply) -> None:
        """A reply in the user's private chat with the bot (logged when it cannot be sent)."""
        await self._answer(user_id, reply)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram_update_failed", reason=repr(context.error))

    # -- outbound ----------------------------------------------------------------------------

    def _reply_parts(self, reply: Reply, intro: str = "") -> list[Part]:
        if reply.signal is None:
            text = f"{intro}\n{reply.text}" if intro else reply.text
            parts = [Part(html) for html in reply_messages(dataclasses.replace(reply, text=text))]
            # A chart beside a plain reply (backtest, performance): the photo after the text
            # that explains it, with no caption of its own.
            chart = [Part("", reply.chart_png)] if reply.chart_png is not None else []
            return [*parts, *chart]
        follow = [f"Next: {reply.extra['next']}"] if reply.extra.get("next") else []
        rendered = signal_messages(reply.signal, intro, follow, reply.credits or DEFAULT_CREDITS)
        first = Part(rendered.caption, reply.chart_png, base_asset(reply.signal.symbol).lower())
        return [first, *(Part(text) for text in rendered.messages)]

    def _message_parts(self, message: OutMessage) -> tuple[Part, ...]:
        """An alert's parts, rendered once for every chat it goes to (a fan-out renders the
        same signal and intro thousands of times otherwise)."""
        signal, chart = message.reply.signal, message.reply.chart_png
        if signal is None:
            return tuple(self._reply_parts(message.reply, message.intro))
        key = (
            signal.symbol,
            signal.created_at,
            message.intro,
            message.reply.credits,
            len(chart or b""),
        )
        parts = self._rendered.get(key)
        if parts is None:
            parts = self._rendered[key] = tuple(self._reply_parts(message.reply, message.intro))
        return parts

    async def _send_parts(
        self,
        chat_id: str,
        parts: Sequence[Part],
        key: tuple[str, ...] | None,
        moved: bool = False,
        thread_id: Thread = None,
    ) -> None:
        progress = (chat_id, *key) if key is not None else None
        start = index = self._progress.get(progress, 0) if progress is not None else 0
        sent_ids: list[int] = []
        try:
            while index < len(parts):
                sent_ids.append(
                    (await self._poster.post(chat_id, parts[index], thread_id)).message_id
                )
                index += 1
                if progress is not None:
                    self._progress[progress] = index
        except ChatMigrated as exc:
            if moved:
                raise TransientDeliveryError("the chat migrated twice in one send") from exc
            new_id = str(exc.new_chat_id)
            await self._move_subscription(chat_id, new_id)
            await self._send_parts(new_id, parts[index:], key, moved=True, thread_id=thread_id)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        if progress is not None:
            self._progress.pop(progress, None)
        if start == 0 and parts and parts[0].buttons and sent_ids:
            self._details[(chat_id, sent_ids[0])] = tuple(sent_ids[1:])

    async def edit_signal(self, chat_id: str, message_id: int, reply: Reply) -> None:
        """A signal edited into the message that shows one (Refresh): the photo, its caption
        and buttons, then the text messages under it that this process sent. A count that
        differs (a longer signal) leaves the extra text out rather than post a new message."""
        first, *rest = self._reply_parts(reply)
        details = self._details.get((chat_id, message_id), ())
        try:
            await self._poster.edit(chat_id, message_id, first)
            for detail_id, part in zip(details, rest, strict=False):
                await self._poster.edit(chat_id, detail_id, part)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # the same signal: nothing to change
                log.warning("telegram_refresh_failed", chat_id=chat_id, reason=exc.message)
        except TelegramError as exc:
            log.warning("telegram_refresh_failed", chat_id=chat_id, reason=exc.message)

    async def _thread_of(self, chat_id: str) -> Thread:
        """The forum topic a subscribed chat's alerts go to; None: the chat itself."""
        if chat_id not in self._threads:
            subscription = await self._store.subscription(TELEGRAM, chat_id)
            self._threads[chat_id] = subscription.thread_id if subscription else None
        return self._threads[chat_id]

    async def _move_subscription(self, old_id: str, new_id: str) -> None:
        """A group became a supergroup: its subscription follows it to the new id."""
        subscription = await self._store.subscription(TELEGRAM, old_id)
        if subscription is not None:
            await self._store.subscribe(
                TELEGRAM, new_id, subscription.symbols or (), subscription.thread_id
            )
            await self._store.unsubscribe(TELEGRAM, old_id)
        self._threads.pop(old_id, None)
        self._threads.pop(new_id, None)
        log.info("telegram_chat_migrated", old_chat_id=old_id, new_chat_id=new_id)


def _topic(message: Message) -> int | None:
    """The forum topic a message was posted in; None outside forum topics (a reply thread in
    an ordinary group also has a message_thread_id, but posting there is not what it means)."""
    return message.message_thread_id if message.is_topic_message else None


def _progress_key(message: OutMessage) -> tuple[str, ...]:
    """Identifies a message across the sender's retries (it may rebuild the object)."""
    signal = message.reply.signal
    moment = signal.created_at.isoformat() if signal is not None else ""
    return (message.intro, message.reply.text[:200], moment)
