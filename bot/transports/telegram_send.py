"""Posting to Telegram, for the transport: each Bot API message paced per chat, sent as HTML
with a plain-text fallback, a chart uploaded once and re-sent by its file_id, edits in place;
and Telegram's errors mapped onto the delivery errors the outbox sender understands.

The pacing (see bot.transports.telegram): `PausingRateLimiter` paces the overall and group
budgets, `Poster` spaces the messages to one chat, counted when Telegram answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import structlog
from cachetools import LRUCache
from telegram import Bot, InputMediaPhoto, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.config import TransportLimits
from bot.delivery.limits import ChatPacer
from bot.render.telegram import plain_text
from bot.transports.base import (
    DeliveryError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from bot.transports.telegram_buttons import signal_keyboard

__all__ = [
    "Part",
    "Poster",
    "Thread",
    "delivery_error",
    "sender_limits",
]

# Bad requests that mean the chat is gone for this bot: retrying can never deliver.
_CHAT_GONE = ("chat not found", "user not found", "bot was kicked", "not enough rights")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_T = TypeVar("_T")
Thread = int | str | None  # a forum topic's message_thread_id; None: the chat itself

log = structlog.get_logger(__name__)


def sender_limits(limits: TransportLimits) -> TransportLimits:
    """What the outbox sender enforces for Telegram: nothing, as the transport paces every
    message (see bot.transports.telegram); a 429 that gets through still pauses the sender."""
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


@dataclass(frozen=True, slots=True)
class Part:
    """One Bot API message: a photo with its caption, or a text."""

    html: str
    photo_png: bytes | None = None
    buttons: str | None = None  # the base asset of a signal's Refresh and Watch buttons
    # The photo's digest, which its file_id is kept under; hashed once (about 90 KB a chart).
    photo_key: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.photo_png is not None:
            digest = hashlib.blake2b(self.photo_png, digest_size=16).hexdigest()
            object.__setattr__(self, "photo_key", digest)


@dataclass(frozen=True, slots=True)
class _ChatTurns:
    pacer: ChatPacer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Poster:
    """Posts and edits messages for one bot; raises PTB's TelegramError as it comes."""

    def __init__(self, bot: Bot, per_chat_per_s: float) -> None:
        self._bot = bot
        self._per_chat_per_s = per_chat_per_s
        self._chats: LRUCache[str, _ChatTurns] = LRUCache(maxsize=10_000)
        self._file_ids: LRUCache[str, str] = LRUCache(maxsize=256)  # chart digest -> file_id
        self._uploads: dict[str, asyncio.Future[str | None]] = {}

    async def post(self, chat_id: str, part: Part, thread_id: Thread = None) -> Message:
        """Send one message to the chat (in the forum topic `thread_id`)."""
        return await self._with_fallback(
            chat_id, part, lambda p, mode: self._post(chat_id, p, mode, _thread(thread_id))
        )

    async def edit(self, chat_id: str, message_id: int, part: Part) -> None:
        """Replace a message's photo and caption, or its text, with `part`'s."""
        if part.photo_png is None:
            edit_text = _edit_text_call(self._bot, chat_id, message_id)
            await self._with_fallback(chat_id, part, edit_text)
        else:
            await self._with_fallback(
                chat_id, part, lambda p, mode: self._edit_photo(chat_id, message_id, p, mode)
            )

    async def _with_fallback(
        self, chat_id: str, part: Part, call: Callable[[Part, str | None], Awaitable[_T]]
    ) -> _T:
        """As HTML; if Telegram cannot parse it, the same text as plain text, never lost."""
        try:
            return await self._paced(chat_id, lambda: call(part, ParseMode.HTML))
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            log.warning("telegram_html_refused", chat_id=chat_id, reason=exc.message)
            plain = dataclasses.replace(part, html=plain_text(part.html))
            return await self._paced(chat_id, lambda: call(plain, None))

    async def _paced(self, chat_id: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run one API call once this chat's per-second limit allows it. The turn is counted
        when Telegram answers, as it counts arrival: counted before the overall limiter's
        wait, a photo held there arrived late and its text too soon after it (measured: 132
        of 600 messages refused)."""
        turns = self._chats.get(chat_id)
        if turns is None:
            turns = self._chats[chat_id] = _ChatTurns(ChatPacer(self._per_chat_per_s, 1.0))
        loop = asyncio.get_running_loop()
        async with turns.lock:  # one message to a chat at a time, replies and alerts alike
            await asyncio.sleep(turns.pacer.wait_s(loop.time()))
            result = await call()
            turns.pacer.take(loop.time())  # a refused message (an exception) takes no turn
        return result

    async def _post(
        self, chat_id: str, part: Part, parse_mode: str | None, thread_id: int | None
    ) -> Message:
        keyboard = signal_keyboard(part.buttons) if part.buttons else None
        if part.photo_png is None:
            return await self._bot.send_message(
                chat_id,
                part.html,
                parse_mode=parse_mode,
                link_preview_options=_NO_PREVIEW,
                message_thread_id=thread_id,
                reply_markup=keyboard,
            )
        key = part.photo_key
        assert key is not None
        file_id = self._file_ids.get(key)
        if file_id is None and key in self._uploads:  # another chat is uploading this chart
            file_id = await asyncio.shield(self._uploads[key])

        async def send(photo: str | bytes) -> Message:
            return await self._bot.send_photo(
                chat_id,
                photo,
                caption=part.html,
                parse_mode=parse_mode,
                message_thread_id=thread_id,
                reply_markup=keyboard,
            )

        if file_id is not None:
            return await send(file_id)
        upload: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._uploads[key] = upload
        try:
            sent = await send(part.photo_png)
            file_id = self._remember_file_id(key, sent)
        finally:
            upload.set_result(file_id)  # None: the waiters upload it themselves
            del self._uploads[key]
        return sent

    def _remember_file_id(self, key: str, sent: Message | bool) -> str | None:
        file_id = sent.photo[-1].file_id if isinstance(sent, Message) and sent.photo else None
        if file_id is not None:
            self._file_ids[key] = file_id
        return file_id

    async def _edit_photo(
        self, chat_id: str, message_id: int, part: Part, parse_mode: str | None
    ) -> Message | bool:
        key = part.photo_key
        assert key is not None
        assert part.photo_png is not None
        file_id = self._file_ids.get(key)
        media = InputMediaPhoto(file_id or part.photo_png, caption=part.html, parse_mode=parse_mode)
        keyboard = signal_keyboard(part.buttons) if part.buttons else None
        edited = await self._bot.edit_message_media(
            media, chat_id, message_id, reply_markup=keyboard
        )
        if file_id is None:
            self._remember_file_id(key, edited)
        return edited


def _edit_text_call(
    bot: Bot, chat_id: str, message_id: int
) -> Callable[[Part, str | None], Awaitable[Message | bool]]:
    """The call that edits one text message to a part's text."""

    async def edit(part: Part, parse_mode: str | None) -> Message | bool:
        return await bot.edit_message_text(
            part.html, chat_id, message_id, parse_mode=parse_mode, link_preview_options=_NO_PREVIEW
        )

    return edit


def _thread(thread_id: Thread) -> int | None:
    return None if thread_id is None else int(thread_id)
