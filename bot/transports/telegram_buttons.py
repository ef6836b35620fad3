"""The buttons under a signal on Telegram, "Refresh" and "Watch", as an inline keyboard.

Same semantics as Discord's (bot.transports.discord_views): Refresh edits the signal's message
in place, and a refusal (the cooldown, busy) is answered to the presser alone, as the callback's
alert, never as a new message in the chat; Watch adds the symbol to the presser's watchlist.
The action and symbol live in the button's callback data (`sd:refresh:eth`), so buttons on
messages posted before a restart keep working.

In a group or channel, Watch from someone who never started the bot answers with a deep link
(`https://t.me/<bot>?start=watch_eth`): the bot may not DM a user before they start it, and
the link opens the bot's chat, where Start sends `/start watch_eth` and the watch is added.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

import structlog
from telegram import CallbackQuery, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ChatAction
from telegram.error import Forbidden, TelegramError

from bot.commands.base import Reply, Request

if TYPE_CHECKING:
    from bot.transports.telegram import TelegramTransport

__all__ = [
    "ALERT_TEXT_MAX",
    "ButtonPresses",
    "parse_callback",
    "signal_keyboard",
    "start_link",
    "start_payload_command",
]

ALERT_TEXT_MAX = 200  # answerCallbackQuery's text limit, in characters
_CALLBACK = re.compile(r"sd:(?P<action>refresh|watch):(?P<base>[a-z0-9]{1,20})")
_START_WATCH = re.compile(r"watch_(?P<base>[a-z0-9]{1,20})")
_TOO_OLD = "This message is too old to refresh; /signal {base} asks again."
_IN_PRIVATE = "The answer is too long for this box: it is in your private chat with me."

log = structlog.get_logger(__name__)


def signal_keyboard(base: str) -> InlineKeyboardMarkup:
    """The two buttons for a signal on `base` (the base asset, lower case: "eth")."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Refresh", callback_data=f"sd:refresh:{base}"),
                InlineKeyboardButton("Watch", callback_data=f"sd:watch:{base}"),
            ]
        ]
    )


def parse_callback(data: str | None) -> tuple[str, str] | None:
    """(action, base) of one of our buttons; None for anything else."""
    match = _CALLBACK.fullmatch(data or "")
    return None if match is None else (match["action"], match["base"])


def start_link(bot_username: str, base: str) -> str:
    """The deep link that starts the bot and watches `base`."""
    return f"https://t.me/{bot_username}?start=watch_{base}"


def start_payload_command(payload: str) -> tuple[str, tuple[str, ...]] | None:
    """The command a `/start` payload stands for: `watch_eth` -> ("watch", ("add", "eth"))."""
    match = _START_WATCH.fullmatch(payload)
    return None if match is None else ("watch", ("add", match["base"]))


def alert_text(reply: Reply) -> str:
    """A reply as the plain text of a callback's alert (no Markdown there)."""
    return reply.text.replace("`", "")


class ButtonPresses:
    """Answers callback queries from the signal buttons, through the transport's handler."""

    def __init__(self, transport: TelegramTransport) -> None:
        self._transport = transport

    async def press(self, query: CallbackQuery) -> None:
        parsed = parse_callback(query.data)
        if parsed is None:  # not ours (or an old format): stop the client's spinner only
            with contextlib.suppress(TelegramError):
                await query.answer()
            return
        action, base = parsed
        if action == "refresh":
            await self._refresh(query, base)
        else:
            await self._watch(query, base)

    async def _refresh(self, query: CallbackQuery, base: str) -> None:
        message = query.message
        if not isinstance(message, Message) or not message.is_accessible:  # deleted, or old
            await _alert(query, _TOO_OLD.format(base=base))
            return
        reply = await self._transport.handle(self._request(query, message.chat, "signal", (base,)))
        if reply.signal is None or reply.is_error:
            await self._answer_presser(query, reply)
            return
        await self._transport.edit_signal(str(message.chat.id), message.message_id, reply)
        with contextlib.suppress(TelegramError):  # the edit is the answer; this stops the spinner
            await query.answer("Refreshed")

    async def _watch(self, query: CallbackQuery, base: str) -> None:
        message = query.message
        chat = message.chat if isinstance(message, Message) else None
        private = chat is not None and chat.type == Chat.PRIVATE
        if not private and not await self._has_started(query.from_user.id):
            username = self._transport.application.bot.username
            with contextlib.suppress(TelegramError):
                await query.answer(url=start_link(username, base))
            return
        reply = await self._transport.handle(self._request(query, chat, "watch", ("add", base)))
        await self._answer_presser(query, reply)

    def _request(
        self, query: CallbackQuery, chat: Chat | None, command: str, args: tuple[str, ...]
    ) -> Request:
        user = str(query.from_user.id)
        return Request(
            transport=self._transport.name,
            user_id=user,
            chat_id=str(chat.id) if chat is not None else user,
            dm_chat_id=user,
            command=command,
            args=args,
            is_private=chat is None or chat.type == Chat.PRIVATE,
        )

    async def _has_started(self, user_id: int) -> bool:
        """Whether the bot may write to this user. The Bot API has no query for it; a chat
        action in the user's private chat is the one call that probes without posting
        (403 for a user who never started the bot or blocked it)."""
        try:
            await self._transport.application.bot.send_chat_action(user_id, ChatAction.TYPING)
        except Forbidden:
            return False
        except TelegramError as exc:  # cannot tell: go ahead; a failed DM disables itself later
            log.warning("telegram_start_probe_failed", reason=exc.message)
        return True

    async def _answer_presser(self, query: CallbackQuery, reply: Reply) -> None:
        """The reply to the presser alone: the callback's alert, or their private chat when it
        is too long for one (never cut)."""
        text = alert_text(reply)
        if len(text) <= ALERT_TEXT_MAX:
            await _alert(query, text)
            return
        await self._transport.answer_privately(str(query.from_user.id), reply)
        await _alert(query, _IN_PRIVATE)


async def _alert(query: CallbackQuery, text: str) -> None:
    try:
        await query.answer(text, show_alert=True)
    except TelegramError as exc:  # the query expired: nothing else reaches only the presser
        log.warning("telegram_callback_answer_failed", reason=exc.message)
