"""A fake Telegram Bot API on 127.0.0.1 for tests and benchmarks: the documented wire format
(POST `/bot<token>/<method>`, form or multipart, answers `{"ok": ..., "result": ...}`).

It records every request, enforces the message limits it is given (answering 429 with a
`retry_after`, as Telegram's flood control does), and fails chosen chats and texts the way
Telegram does: 403 for a chat that blocked the bot, 400 "chat not found", 400 with
`migrate_to_chat_id` for a group that became a supergroup, 400 "can't parse entities".
Edits (`editMessageText`, `editMessageMedia`) change the messages it keeps, refusing an edit
that changes nothing ("message is not modified"), and a chat action to a user who never
started the bot is refused with 403, as Telegram does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from intel.sources.fakes.server import serve_on_loopback

__all__ = ["FakeBotApi", "FakeRequest", "FloodLimits"]

BOT_USER = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "SignalDesk",
    "username": "signaldesk_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_SENDS = {"sendMessage", "sendPhoto"}
_EDITS = {"editMessageText", "editMessageMedia"}
CAPTION_LIMIT, TEXT_LIMIT = 1024, 4096
# ChatMemberAdministrator's required fields (Bot API 9.x).
_ADMIN_RIGHTS = {
    right: right != "can_be_edited" and right != "is_anonymous"
    for right in (
        "can_be_edited",
        "is_anonymous",
        "can_manage_chat",
        "can_delete_messages",
        "can_manage_video_chats",
        "can_restrict_members",
        "can_promote_members",
        "can_change_info",
        "can_invite_users",
        "can_post_stories",
        "can_edit_stories",
        "can_delete_stories",
    )
}


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request as the fake received it; `photo` holds the uploaded bytes of a multipart
    `sendPhoto` (None when the photo was a file_id, which is then in `params["photo"]`)."""

    at_s: float
    method: str
    params: Mapping[str, str]
    photo: bytes | None = None
    status: int = 200
    message_id: int | None = None  # the message a send made

    @property
    def chat_id(self) -> str | None:
        return self.params.get("chat_id")


@dataclass(frozen=True, slots=True)
class FloodLimits:
    """Messages allowed in any sliding second, overall and per chat; None: no limit."""

    overall_per_s: float | None = None
    per_chat_per_s: float | None = None
    # Telegram measures arrival: sends this close to a window's edge count as outside it.
    tolerance_s: float = 0.02


@dataclass
class FakeBotApi:
    """The fake server; use `async with FakeBotApi(...) as api` and `api.base_url`."""

    token: str = "123456:TEST-token"
    limits: FloodLimits = field(default_factory=FloodLimits)
    blocked_chats: set[str] = field(default_factory=set)  # 403: the user blocked the bot
    missing_chats: set[str] = field(default_factory=set)  # 400: chat not found
    migrated_chats: dict[str, str] = field(default_factory=dict)  # group id -> supergroup id
    unparsable: tuple[str, ...] = ()  # HTML messages containing one of these: 400 parse error
    admins: dict[str, set[str]] = field(default_factory=dict)  # chat id -> admin user ids
    unstarted_users: set[str] = field(default_factory=set)  # never started the bot: no DMs
    # What each message shows now, (chat id, message id) -> its text or caption.
    shown: dict[tuple[str, int], str] = field(default_factory=dict)
    # The next N sends are refused with 429 and this retry_after (seconds; may be sub-second).
    flood_next: int = 0
    flood_retry_after_s: float = 0.2
    flood_every: int = 0  # also refuse every Nth send this way (0: never)
    requests: list[FakeRequest] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _file_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _sends: int = 0
    _overall: deque[float] = field(default_factory=deque)
    _per_chat: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """What python-telegram-bot's `base_url` takes (the token is appended to it)."""
        return f"http://127.0.0.1:{self._port}/bot"

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner, self._port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- for tests ---------------------------------------------------------------------------

    def sent(self, chat_id: str | None = None) -> list[FakeRequest]:
        """Accepted sendMessage/sendPhoto requests, to `chat_id` when given, in order."""
        return [
            r
            for r in self.requests
            if r.method in _SENDS and r.status == 200 and chat_id in (None, r.chat_id)
        ]

    def calls(self, method: str) -> list[FakeRequest]:
        """Accepted requests of one method, in order."""
        return [r for r in self.requests if r.method == method and r.status == 200]

    def uploads(self) -> list[FakeRequest]:
        return [r for r in self.sent() if r.method == "sendPhoto" and r.photo is not None]

    # -- the server --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, str] = {}
        photo: bytes | None = None
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                photo = value.file.read()
            else:
                params[name] = _plain(str(value))
        now = asyncio.get_running_loop().time()
        if request.match_info["token"] != self.token:
            return self._answer(FakeRequest(now, method, params, photo, 401), _error(401))
        status, body = self._respond(method, params, photo, now)
        result = body.get("result")
        made = result.get("message_id") if isinstance(result, dict) else None
        return self._answer(FakeRequest(now, method, params, photo, status, made), body)

    def _answer(self, record: FakeRequest, body: dict[str, Any]) -> web.Response:
        self.requests.append(record)
        return web.json_response(body, status=record.status)

    def _respond(
        self, method: str, params: dict[str, str], photo: bytes | None, now: float
    ) -> tuple[int, dict[str, Any]]:
        if method == "getMe":
            return 200, _ok(BOT_USER)
        if method == "getChatMember":
            admin = params.get("user_id") in self.admins.get(params.get("chat_id", ""), set())
            user = {"id": int(params.get("user_id", "0")), "is_bot": False, "first_name": "U"}
            if not admin:
                return 200, _ok({"user": user, "status": "member"})
            return 200, _ok({"user": user, "status": "administrator", **_ADMIN_RIGHTS})
        if method == "sendChatAction" and params.get("chat_id") in self.unstarted_users:
            return 403, _error(403, "Forbidden: bot can't initiate conversation with a user")
        if method in _EDITS:
            return self._edit(method, params)
        if method not in _SENDS:
            return 200, _ok([] if method == "getUpdates" else True)
        refusal = self._refusal(params)
        if refusal is not None:
            return refusal
        retry_after_s = self._flood(params["chat_id"], now)
        if retry_after_s is not None:
            return 429, _error(429, parameters={"retry_after": retry_after_s})
        return 200, _ok(self._message(method, params, photo))

    def _refusal(self, params: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        chat_id = params.get("chat_id", "")
        text = params.get("text", params.get("caption", ""))
        if chat_id in self.blocked_chats:
            return 403, _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing_chats:
            return 400, _error(400, "Bad Request: chat not found")
        if chat_id in self.migrated_chats:
            migrated = {"migrate_to_chat_id": int(self.migrated_chats[chat_id])}
            return 400, _error(400, "Bad Request: group chat was upgraded", parameters=migrated)
        if params.get("parse_mode") == "HTML" and any(bad in text for bad in self.unparsable):
            return 400, _error(400, "Bad Request: can't parse entities: unsupported start tag")
        limit = CAPTION_LIMIT if "caption" in params else TEXT_LIMIT
        if len(text.encode("utf-16-le")) // 2 > limit or ("text" in params and not text.strip()):
            return 400, _error(400, "Bad Request: message is too long or empty")
        return None

    def _flood(self, chat_id: str, now: float) -> float | None:
        """The retry_after of a 429 when this send is over a limit, else None (send counted)."""
        self._sends += 1
        if self.flood_next > 0 or (self.flood_every and self._sends % self.flood_every == 0):
            self.flood_next = max(0, self.flood_next - 1)
            return self.flood_retry_after_s
        chat = self._per_chat.setdefault(chat_id, deque())
        windows = ((self._overall, self.limits.overall_per_s), (chat, self.limits.per_chat_per_s))
        for sent, limit in windows:
            while sent and sent[0] <= now - 1.0 + self.limits.tolerance_s:
                sent.popleft()
            if limit is not None and len(sent) >= limit:
                # Whole seconds, rounded up, as Telegram answers; tests use sub-second floods.
                return float(max(1, math.ceil(sent[0] + 1.0 - now)))
        self._overall.append(now)
        chat.append(now)
        return None

    def _edit(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        key = (params["chat_id"], int(params["message_id"]))
        if key not in self.shown:
            return 400, _error(400, "Bad Request: message to edit not found")
        if method == "editMessageText":
            text = params["text"]
        else:
            text = json.loads(params["media"]).get("caption", "")
        if text == self.shown[key] and method == "editMessageText":
            return 400, _error(400, "Bad Request: message is not modified")
        self.shown[key] = text
        return 200, _ok(True)

    def _message(self, method: str, params: dict[str, str], photo: bytes | None) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": 1760000000,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        }
        self.shown[(params["chat_id"], message["message_id"])] = params.get(
            "text", params.get("caption", "")
        )
        if method == "sendMessage":
            message["text"] = params["text"]
            return message
        file_id = params["photo"] if photo is None else f"photo-{next(self._file_ids)}"
        message["photo"] = [
            {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 1280, "height": 960}
        ]
        if "caption" in params:
            message["caption"] = params["caption"]
        return message


def _plain(value: str) -> str:
    """PTB JSON-encodes non-string values (numbers stay as they are); strings arrive raw."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return str(decoded) if isinstance(decoded, int | float) else value


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def _error(code: int, description: str = "Unauthorized", **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description, **extra}
