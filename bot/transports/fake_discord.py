"""A fake Discord API on 127.0.0.1 for tests and benchmarks: enough of the documented wire
format for discord.py 2.7 to log in, answer interactions, follow up, post messages and sync
commands. It records every request and can answer chosen paths with 429s, 5xx or errors. A
minimal gateway at `gateway_url` says HELLO, answers IDENTIFY with READY and heartbeats with
ACKs, and pushes the events given to `dispatch` (e.g. INTERACTION_CREATE) as plain text frames.

Point discord.py at it with `FakeDiscord.pointed()` (it sets `discord.http.Route.BASE` and the
gateway URL), or with the `discord.api_base_url` and `discord.gateway_url` settings.
Gotchas that discord.py checks (see OFFLINE-TESTING.md): the content type is exactly
`application/json`, a 429 carries a `Via` header (without one discord.py suspects a Cloudflare
ban and gives up), an interaction payload has `attachment_size_limit`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web
from discord.gateway import DiscordWebSocket

from intel.sources.fakes.server import serve_on_loopback

__all__ = ["APP_ID", "BOT_USER_ID", "FakeDiscord", "Fault", "RecordedRequest"]

APP_ID = 900000000000000001
BOT_USER_ID = 900000000000000002
GUILD_ID = 900000000000000003
TOKEN = "fake.discord.token"
_SNOWFLAKES = itertools.count(1_100_000_000_000_000_000)
_JSON = "application/json"  # exactly: discord.py refuses `; charset=utf-8`


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it, at `at_s` on the event loop's clock."""

    at_s: float
    method: str
    path: str
    json: Any
    files: tuple[tuple[str, bytes], ...] = ()  # (filename, content) of multipart uploads


@dataclass(slots=True)
class Fault:
    """Answer the next `count` requests whose path contains `path_part` with this status."""

    path_part: str
    status: int
    count: int = 1
    retry_after_s: float = 0.05  # for a 429
    code: int = 0  # Discord's JSON error code, e.g. 50013 Missing Permissions


@dataclass
class FakeDiscord:
    """The fake server; `await start()` binds an ephemeral port, `await close()` stops it."""

    token: str = TOKEN
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by scope
    url: str = ""
    gateway_url: str = ""
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # a client got READY
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, port = await serve_on_loopback(app)
        self.url = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextmanager
    def pointed(self) -> Iterator[None]:
        """discord.py's REST calls go to this fake while inside."""
        before = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = before

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Push a gateway event to every connected client."""
        for socket in self.sockets:
            await socket.send_str(
                json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data})
            )

    def fail(self, path_part: str, status: int, **options: Any) -> Fault:
        fault = Fault(path_part, status, **options)
        self.faults.append(fault)
        return fault

    def matching(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if path_part in r.path and (method is None or r.method == method)
        ]

    async def wait_for(self, path_part: str, count: int = 1) -> list[RecordedRequest]:
        """Return once `count` requests reached a path containing `path_part` (bound it)."""
        while len(found := self.matching(path_part)) < count:
            self._arrived.clear()
            await self._arrived.wait()
        return found

    # -- the gateway -----------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45_000}}))
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            op = json.loads(frame.data).get("op")
            if op == 1:  # heartbeat
                await socket.send_str(json.dumps({"op": 11}))
            elif op == 2:  # identify
                await self.dispatch("READY", self._ready())
                self.ready.set()
        self.sockets.remove(socket)
        return socket

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": bot_user(),
            "guilds": [],
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "shard": [0, 1],
        }

    # -- the API ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"].removeprefix("api/v10/")
        body, files = await _read_body(request)
        now = asyncio.get_running_loop().time()
        self.requests.append(RecordedRequest(now, request.method, path, body, files))
        self._arrived.set()
        if request.headers.get("Authorization") not in (f"Bot {self.token}", None):
            return _error(401, 0, "401: Unauthorized")
        fault = next((f for f in self.faults if f.path_part in path and f.count > 0), None)
        if fault is not None:
            fault.count -= 1
            return _fault(fault)
        return _json(self._answer(request.method, path, body))

    def _answer(self, method: str, path: str, body: Any) -> Any:
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["users", "@me"]:
                return bot_user()
            case "GET", ["oauth2", "applications", "@me"]:
                return application()
            case "POST", ["interactions", interaction_id, _, "callback"]:
                kind = body.get("type", 4) if isinstance(body, dict) else 4
                return {
                    "interaction": {"id": interaction_id, "type": 2},
                    "resource": {"type": kind},
                }
            case (("POST" | "PATCH"), ["webhooks", _, _, *_]):
                return message(0, body)
            case "POST", ["channels", channel_id, "messages"]:
                return message(int(channel_id), body)
            case "POST", ["users", "@me", "channels"]:
                return {"id": str(next(_SNOWFLAKES)), "type": 1, "recipients": []}
            case "PUT", ["applications", _, *scope, "commands"]:
                synced = [
                    {
                        **c,
                        "id": str(next(_SNOWFLAKES)),
                        "application_id": str(APP_ID),
                        "version": "1",
                    }
                    for c in body
                ]
                self.commands["/".join(scope) or "global"] = synced
                return synced
            case "GET", ["applications", _, *scope, "commands"]:
                return self.commands.get("/".join(scope) or "global", [])
        return {}


async def _read_body(request: web.Request) -> tuple[Any, tuple[tuple[str, bytes], ...]]:
    if not request.can_read_body:
        return None, ()
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            if part.name == "payload_json":
                payload = json.loads(data)
            else:
                files.append((part.filename or "", bytes(data)))
        return payload, tuple(files)
    text = await request.text()
    return (json.loads(text) if text else None), ()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type=_JSON, headers=headers
    )


def _error(status: int, code: int, text: str) -> web.Response:
    return _json({"code": code, "message": text}, status)


def _fault(fault: Fault) -> web.Response:
    if fault.status == 429:
        body = {
            "message": "You are being rate limited.",
            "retry_after": fault.retry_after_s,
            "global": False,
        }
        return _json(body, 429, {"Via": "1.1 google", "Retry-After": str(fault.retry_after_s)})
    return _error(fault.status, fault.code, f"{fault.status}: fault injected")


def bot_user() -> dict[str, Any]:
    return user(BOT_USER_ID, "signaldesk", bot=True)


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "avatar": None,
        "global_name": name,
        "bot": bot,
    }


def application() -> dict[str, Any]:
    return {
        "id": str(APP_ID),
        "name": "signaldesk",
        "description": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": user(1, "owner"),
        "flags": 0,
    }


def message(channel_id: int, body: Any) -> dict[str, Any]:
    payload = body if isinstance(body, dict) else {}
    return {
        "id": str(next(_SNOWFLAKES)),
        "channel_id": str(channel_id),
        "type": 0,
        "content": payload.get("content") or "",
        "author": bot_user(),
        "embeds": payload.get("embeds") or [],
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": False,
        "timestamp": datetime.now(UTC).isoformat(),
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
    }


def command_interaction(
    name: str,
    options: list[dict[str, Any]] | None = None,
    *,
    user_id: int = 42,
    guild: bool = True,
    member_permissions: int = 0,
    role_ids: tuple[int, ...] = (),
    app_permissions: int = (1 << 11) | (1 << 14) | (1 << 15) | (1 << 10),
    kind: int = 2,  # 2: a slash command, 4: autocomplete
    channel_id: int = 700000000000000001,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload for a slash command, as Discord sends it.

    The default app permissions are View Channel, Send Messages, Embed Links, Attach Files."""
    payload: dict[str, Any] = {
        "id": str(next(_SNOWFLAKES)),
        "application_id": str(APP_ID),
        "type": kind,
        "token": f"interaction-token-{next(_SNOWFLAKES)}",
        "version": 1,
        "attachment_size_limit": 10 * 1024 * 1024,
        "app_permissions": str(app_permissions),
        "locale": "en-US",
        "data": {"id": str(next(_SNOWFLAKES)), "name": name, "type": 1, "options": options or []},
        "channel_id": str(channel_id),
        "channel": {"id": str(channel_id), "type": 1, "recipients": [], "flags": 0},
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0 if guild else 1,
    }
    person = user(user_id, f"user{user_id}")
    if guild:
        payload["guild_id"] = str(GUILD_ID)
        payload["channel"] = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": "signals",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        payload["member"] = {
            "user": person,
            "roles": [str(role) for role in role_ids],
            "permissions": str(member_permissions),
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
    else:
        payload["user"] = person
        payload["channel"]["recipients"] = [person]
    return payload


def button_interaction(custom_id: str, **options: Any) -> dict[str, Any]:
    """An INTERACTION_CREATE payload for a button press on a message the bot posted."""
    payload = command_interaction("", **options)
    payload["type"] = 3
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    pressed = message(int(payload["channel_id"]), {"content": "a signal"})
    # The message carries the button: discord.py rebuilds the view from it to find the press.
    button = {"type": 2, "style": 1, "label": "button", "custom_id": custom_id}
    pressed["components"] = [{"type": 1, "id": 1, "components": [button]}]
    payload["message"] = pressed
    return payload
