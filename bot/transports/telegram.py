"""The Telegram transport (python-telegram-bot): commands in, replies and alerts out as HTML, and
Telegram's errors mapped onto the delivery errors the outbox sender understands.

Pacing, one limiter per budget, each counting Bot API messages (an alert is a photo and a text):
PTB's `AIORateLimiter` paces the overall and per-group budgets and waits out a 429 itself (up to
`max_retries` times, pausing every request meanwhile); a per-chat pacer here spaces every message
to one chat, command replies and alerts alike. The outbox sender is therefore given no Telegram
limits of its own (`sender_limits`): it counts one turn per alert where Telegram counts each
message, and a 429 that AIORateLimiter already waited out would pause it once more. Measured in
benchmarks/telegram_fanout.py (600 chats, limits x 3, 2 cores shared): 1.25x the floor alone,
1.31x with the sender's limits stacked on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from cachetools import LRUCache
from telegram import Chat, ChatMember, LinkPreviewOptions, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, Application, ContextTypes, MessageHandler, filters

from bot.commands.base import Reply, Request
from bot.commands.router import parse_command_line
from bot.config import TransportLimits
from bot.delivery.limits import ChatPacer, window_limiter
from bot.render.telegram import plain_text, reply_messages, signal_messages
from bot.render.text import DEFAULT_CREDITS
from bot.storage.base import SubscriptionStore
from bot.transports.base import (
    CommandHandler,
    DeliveryError,
    OutMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from intel.errors import UserInputError

__all__ = ["TELEGRAM", "TelegramTransport", "delivery_error", "sender_limits"]

TELEGRAM = "telegram"
WELCOME = (
    "Welcome to SignalDesk: crypto signals from whale flows, order books and sentiment.\n"
    "Try `/signal btc` for a signal with its chart, `/watch add eth` then `/alerts 60` for DMs "
    "when a watched call is that sure, `/subscribe` in a group or channel (admins) for alerts "
    "there, and `/help` for every command. Not financial advice."
)
# Bad requests that mean the chat is gone for this bot: retrying can never deliver.
_CHAT_GONE = ("chat not found", "user not found", "bot was kicked", "not enough rights")
_ADMIN_STATUSES = {ChatMember.ADMINISTRATOR, ChatMember.OWNER}
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

log = structlog.get_logger(__name__)


def sender_limits(limits: TransportLimits) -> TransportLimits:
    """What the outbox sender enforces for Telegram: nothing, as the transport paces every
    message (see the module docstring); a 429 that gets through still pauses the sender."""
    del limits  # every Telegram budget is enforced by the transport
    return TransportLimits(overall_per_s=1e9, per_chat_per_s=1e9, per_group_per_min=1e9)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Telegram's error as the delivery error that tells the sender what to do next."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return RateLimitedError(seconds, exc.message)
    if isinstance(exc, Forbidden):  # blocked by the user, kicked from the group
        return PermanentDeliveryError(exc.message)
    if isinstance(exc, BadRequest) and any(gone in exc.message.lower() for gone in _CHAT_GONE):
        return PermanentDeliveryError(exc.message)
    # Timeouts, network errors and 5xx; also any other bad request, so that a bug of ours is
    # retried with backoff and logged rather than disabling a chat that did nothing wrong.
    return TransientDeliveryError(f"{type(exc).__name__}: {exc.message}")


def _rate_limiter(limits: TransportLimits, max_retries: int) -> AIORateLimiter:
    """AIORateLimiter with its buckets shaped as `window_limiter` shapes ours: given (30, 1 s)
    it would let 30 through at once and 30 more within the same second, and a platform counting
    sliding windows answers 429 (measured: 128 of 600 messages refused, 1.9x the floor)."""
    overall = window_limiter(limits.overall_per_s, 1.0)
    group = window_limiter(limits.per_group_per_min, 60.0)
    return AIORateLimiter(
        overall_max_rate=overall.max_rate,
        overall_time_period=overall.time_period,
        group_max_rate=group.max_rate,
        group_time_period=group.time_period,
        max_retries=max_retries,
    )


@dataclass(frozen=True, slots=True)
class _ChatTurns:
    pacer: ChatPacer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class _Part:
    """One Bot API message: a photo with its caption, or a text."""

    html: str
    photo_png: bytes | None = None

    @property
    def photo_key(self) -> str | None:
        if self.photo_png is None:
            return None
        return hashlib.blake2b(self.photo_png, digest_size=16).hexdigest()


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
    ) -> None:
        builder = (
            Application.builder()
            .token(token)
            .rate_limiter(_rate_limiter(limits, max_retries))
            .concurrent_updates(32)  # a slow /signal must not hold up everyone else's commands
        )
        if base_url:
            builder = builder.base_url(base_url)
        if not polling:
            builder = builder.updater(None)
        self.application = builder.build()
        self._store = store
        self._per_chat_per_s = limits.per_chat_per_s
        self._chats: LRUCache[str, _ChatTurns] = LRUCache(maxsize=10_000)
        self._handler: CommandHandler | None = None
        self._file_ids: LRUCache[str, str] = LRUCache(maxsize=256)  # chart digest -> file_id
        self._uploads: dict[str, asyncio.Future[str | None]] = {}
        # Parts already delivered of a message whose later part failed: a retry skips them.
        self._progress: LRUCache[tuple[str, ...], int] = LRUCache(maxsize=10_000)

    # -- the Transport protocol --------------------------------------------------------------

    async def start(self, handler: CommandHandler) -> None:
        self._handler = handler
        commands = filters.COMMAND & (filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST)
        self.application.add_handler(MessageHandler(commands, self._on_command))
        self.application.add_error_handler(self._on_error)
        try:
            await self.application.initialize()  # getMe: checks the token
        except InvalidToken as exc:
            raise PermanentDeliveryError(f"Telegram rejected the token ({exc.message})") from None
        except TelegramError as exc:
            raise TransientDeliveryError(f"Telegram is unreachable ({exc.message})") from None
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
        await self._send_parts(chat_id, self._message_parts(message), _progress_key(message))

    # -- inbound -----------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text or self._handler is None:
            return
        first = message.text.split(maxsplit=1)[0]
        addressee = first.partition("@")[2]
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # `/signal@OtherBot` in a group is for that bot
        try:
            command, args = parse_command_line(message.text)
        except UserInputError as exc:
            await self._answer(chat.id, Reply(text=str(exc), is_error=True))
            return
        if command == "start":
            await self._answer(chat.id, Reply(text=WELCOME))
            return
        request = await self._request(update, message, chat, command, args)
        if command == "signal":
            with contextlib.suppress(TelegramError):  # "sending photo…" while it computes
                await chat.send_action(ChatAction.UPLOAD_PHOTO)
        try:
            reply = await self._handler(request)
        except Exception:  # the router answers every error; this is a last guard
            log.exception("telegram_handler_failed", command=command)
            reply = Reply(text="internal error — sorry, please try again", is_error=True)
        await self._answer(chat.id, reply)

    async def _request(
        self, update: Update, message: Message, chat: Chat, command: str, args: tuple[str, ...]
    ) -> Request:
        user = update.effective_user
        author = str(user.id) if user else str((message.sender_chat or chat).id)
        return Request(
            transport=TELEGRAM,
            user_id=author,
            chat_id=str(chat.id),
            dm_chat_id=author,  # a user's private chat with the bot has the user's id
            command=command,
            args=args,
            is_private=chat.type == Chat.PRIVATE,
            is_admin=await self._is_admin(message, chat),
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

    async def _answer(self, chat_id: int, reply: Reply) -> None:
        try:
            await self._send_parts(str(chat_id), self._reply_parts(reply), None)
        except DeliveryError as exc:  # the asker cannot be answered; nothing more to do
            log.warning("telegram_reply_failed", chat_id=chat_id, reason=str(exc))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram_update_failed", reason=repr(context.error))

    # -- outbound ----------------------------------------------------------------------------

    def _reply_parts(self, reply: Reply, intro: str = "") -> list[_Part]:
        if reply.signal is None:
            text = f"{intro}\n{reply.text}" if intro else reply.text
            return [_Part(html) for html in reply_messages(dataclasses.replace(reply, text=text))]
        follow = [f"Next: {reply.extra['next']}"] if reply.extra.get("next") else []
        rendered = signal_messages(reply.signal, intro, follow, reply.credits or DEFAULT_CREDITS)
        first = _Part(rendered.caption, reply.chart_png)
        return [first, *(_Part(text) for text in rendered.messages)]

    def _message_parts(self, message: OutMessage) -> list[_Part]:
        return self._reply_parts(message.reply, message.intro)

    async def _send_parts(
        self, chat_id: str, parts: Sequence[_Part], key: tuple[str, ...] | None, moved: bool = False
    ) -> None:
        progress = (chat_id, *key) if key is not None else None
        index = self._progress.get(progress, 0) if progress is not None else 0
        try:
            while index < len(parts):
                await self._send_part(chat_id, parts[index])
                index += 1
                if progress is not None:
                    self._progress[progress] = index
        except ChatMigrated as exc:
            if moved:
                raise TransientDeliveryError("the chat migrated twice in one send") from exc
            new_id = str(exc.new_chat_id)
            await self._move_subscription(chat_id, new_id)
            await self._send_parts(new_id, parts[index:], key, moved=True)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        if progress is not None:
            self._progress.pop(progress, None)

    async def _send_part(self, chat_id: str, part: _Part) -> None:
        """Send as HTML; if Telegram cannot parse it, the same text as plain text, never lost."""
        try:
            await self._send_once(chat_id, part, ParseMode.HTML)
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            log.warning("telegram_html_refused", chat_id=chat_id, reason=exc.message)
            await self._send_once(chat_id, _Part(plain_text(part.html), part.photo_png), None)

    async def _send_once(self, chat_id: str, part: _Part, parse_mode: str | None) -> None:
        """Send one message once this chat's per-second limit allows it. The turn is counted
        when Telegram answers, as it counts arrival: counted before the overall limiter's
        wait, a photo held there arrived late and its text too soon after it (measured: 132
        of 600 messages refused)."""
        turns = self._chats.get(chat_id)
        if turns is None:
            turns = self._chats[chat_id] = _ChatTurns(ChatPacer(self._per_chat_per_s, 1.0))
        loop = asyncio.get_running_loop()
        async with turns.lock:  # one message to a chat at a time, replies and alerts alike
            await asyncio.sleep(turns.pacer.wait_s(loop.time()))
            await self._post(chat_id, part, parse_mode)
            turns.pacer.take(loop.time())  # a refused message (an exception) takes no turn

    async def _post(self, chat_id: str, part: _Part, parse_mode: str | None) -> None:
        bot = self.application.bot
        if part.photo_png is None:
            await bot.send_message(
                chat_id, part.html, parse_mode=parse_mode, link_preview_options=_NO_PREVIEW
            )
            return
        key = part.photo_key
        assert key is not None
        file_id = self._file_ids.get(key)
        if file_id is None and key in self._uploads:  # another chat is uploading this chart
            file_id = await asyncio.shield(self._uploads[key])
        if file_id is not None:
            await bot.send_photo(chat_id, file_id, caption=part.html, parse_mode=parse_mode)
            return
        upload: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._uploads[key] = upload
        try:
            sent = await bot.send_photo(
                chat_id, part.photo_png, caption=part.html, parse_mode=parse_mode
            )
            file_id = sent.photo[-1].file_id if sent.photo else None
            if file_id is not None:
                self._file_ids[key] = file_id
        finally:
            upload.set_result(file_id)  # None: the waiters upload it themselves
            del self._uploads[key]

    async def _move_subscription(self, old_id: str, new_id: str) -> None:
        """A group became a supergroup: its subscription follows it to the new id."""
        subscription = await self._store.subscription(TELEGRAM, old_id)
        if subscription is not None:
            await self._store.subscribe(TELEGRAM, new_id, subscription.symbols or ())
            await self._store.unsubscribe(TELEGRAM, old_id)
        log.info("telegram_chat_migrated", old_chat_id=old_id, new_chat_id=new_id)


def _progress_key(message: OutMessage) -> tuple[str, ...]:
    """Identifies a message across the sender's retries (it may rebuild the object)."""
    signal = message.reply.signal
    moment = signal.created_at.isoformat() if signal is not None else ""
    return (message.intro, message.reply.text[:200], moment)
