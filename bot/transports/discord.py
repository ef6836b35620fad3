"""The Discord transport (discord.py 2.7, `app_commands`): slash commands in, embeds with charts
out, platform errors mapped onto the delivery errors the outbox sender understands.

Every command is deferred first, before any other work, so Discord gets its answer within its
3 seconds whatever the command costs; the reply follows up. Nothing the bot sends may ping:
`AllowedMentions.none()` on the client and on every send, and every dynamic string is escaped
(bot.render.discord).

Rate limits: discord.py paces each route by Discord's bucket headers and waits out a 429 itself,
up to `discord.max_retry_after_s`; past that it raises at once and the outbox sender pauses the
transport for the retry-after. So a wait is never served twice. The sender's own throttle
(`delivery.discord`) only caps our bursts below Discord's global 50 requests/s.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aiohttp
import discord
import discord.http
import structlog
import yarl
from cachetools import LRUCache
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.commands.base import OptionValue, Reply, Request
from bot.commands.registry import Command
from bot.commands.router import INTERNAL_ERROR
from bot.config import DiscordConfig
from bot.render.discord import CHART_FILENAME, escape, reply_contents, signal_embeds
from bot.render.text import DEFAULT_CREDITS
from bot.storage.base import MetaStore
from bot.transports.base import (
    CommandHandler,
    OutMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
    TransportRejectedError,
)
from bot.transports.discord_commands import add_commands, add_registry_commands
from bot.transports.discord_views import ActionsClient, SignalButton, signal_view
from intel.symbols import base_asset

__all__ = ["COMMANDS_HASH_KEY", "DM_PREFIX", "DiscordTransport"]

log = structlog.get_logger(__name__)

COMMANDS_HASH_KEY = "discord.commands_hash"
DM_PREFIX = "user:"  # a DM "chat" is the user; its DM channel is opened on first send
NO_MENTIONS = discord.AllowedMentions.none()
# What the bot needs in a channel to post an alert, by the name Discord's UI shows.
_POSTING = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
    ("attach_files", "Attach Files"),
)
_PERSONAL = frozenset({"watch", "alerts", "status", "help"})  # answered to the asker only
_STOPPING = "the bot is restarting — try again in a minute"
_RETRY_AFTER_UNKNOWN_S = 1.0


class DiscordTransport:
    """One bot account on Discord; see the module docstring."""

    name = "discord"

    def __init__(
        self,
        token: str,
        config: DiscordConfig,
        symbols: Sequence[str],
        meta: MetaStore,
        *,
        gateway: bool = True,
    ) -> None:
        """`gateway=False` logs in and syncs but receives nothing (tests feed interactions)."""
        self._token = token
        self._config = config
        self._symbols = tuple(symbols)
        self._meta = meta
        self._gateway = gateway
        self.client = ActionsClient(
            self,
            intents=discord.Intents(guilds=True),  # no privileged intents: slash commands only
            allowed_mentions=NO_MENTIONS,
            max_ratelimit_timeout=config.max_retry_after_s,
        )
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(self.client)
        self._handler: CommandHandler | None = None
        self._accepting = False
        self._runner: asyncio.Task[None] | None = None
        self._dm_channels: LRUCache[str, int] = LRUCache(10_000)
        self._urls_before: tuple[str, yarl.URL] | None = None
        add_commands(self)
        # Buttons on messages posted before a restart match by custom_id, so they keep working.
        self.client.add_dynamic_items(SignalButton)

    # -- the Transport protocol --------------------------------------------------------------

    async def start(self, handler: CommandHandler) -> None:
        """Log in (a rejected token raises TransportRejectedError), sync commands if they
        changed, then receive interactions."""
        self._handler = handler
        self._point_at_configured_urls()
        try:
            await self.client.login(self._token)
        except discord.LoginFailure as exc:
            await self.close()
            raise TransportRejectedError("Discord rejected the token (DISCORD_TOKEN)") from exc
        except BaseException:
            await self.close()
            raise
        await self.sync_commands()
        self._accepting = True
        if self._gateway:
            self._runner = asyncio.create_task(self._connect(), name="discord-gateway")

    async def stop(self) -> None:
        self._accepting = False

    def use_commands(self, commands: Iterable[Command]) -> None:
        """Registry commands without a slash command of their own get a generic one (their
        words as one text option); call before `start`, whose sync uploads them."""
        add_registry_commands(self, commands)

    async def close(self) -> None:
        self._accepting = False
        await self.client.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._urls_before is not None:
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._urls_before

    async def send(self, chat_id: str, message: OutMessage) -> None:
        """Post an alert or DM; raise the delivery error matching what Discord answered."""
        try:
            channel = self.client.get_partial_messageable(await self._channel_id(chat_id))
            for kwargs in _messages(message.reply, message.intro):
                await channel.send(**kwargs, allowed_mentions=NO_MENTIONS)
        except discord.RateLimited as exc:  # longer than discord.py would wait itself
            raise RateLimitedError(exc.retry_after) from exc
        except (discord.Forbidden, discord.NotFound) as exc:  # blocked, no access, gone
            raise PermanentDeliveryError(f"{exc.status} {exc.code}: {exc.text}") from exc
        except discord.HTTPException as exc:
            if exc.status == 429:  # discord.py gave up after its own retries
                raise RateLimitedError(_retry_after_s(exc)) from exc
            raise TransientDeliveryError(f"{exc.status} {exc.code}: {exc.text}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(f"network: {exc!r}") from exc

    def _point_at_configured_urls(self) -> None:
        """discord.py reads its REST and gateway URLs from class attributes, one per process."""
        api, gateway = self._config.api_base_url, self._config.gateway_url
        if not (api or gateway):
            return
        self._urls_before = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if api:
            discord.http.Route.BASE = api.rstrip("/")
        if gateway:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    # -- commands ----------------------------------------------------------------------------

    async def sync_commands(self) -> bool:
        """Upload the command set when it differs from the one last uploaded; True if it did.

        With `discord.guild_id` the commands go to that server only, where they show at once."""
        guild = discord.Object(self._config.guild_id) if self._config.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        scope = f"guild:{guild.id}" if guild else "global"
        digest = hashlib.sha256(json.dumps([scope, payload], sort_keys=True).encode()).hexdigest()
        if await self._meta.get_meta(COMMANDS_HASH_KEY) == digest:
            return False
        await self.tree.sync(guild=guild)
        await self._meta.set_meta(COMMANDS_HASH_KEY, digest)
        log.info("discord_commands_synced", scope=scope, commands=len(payload))
        return True

    async def answer(
        self,
        interaction: discord.Interaction,
        command: str,
        args: tuple[str, ...],
        options: Mapping[str, OptionValue] | None = None,
    ) -> None:
        """Defer at once, then run the command and follow up with its reply; `options` are
        the typed slash-command options, passed on as values (an integer stays an int)."""
        personal = command in _PERSONAL
        await interaction.response.defer(thinking=True, ephemeral=personal)
        try:
            reply = await self._reply(interaction, command, args, options or {})
            for kwargs in _messages(reply, intro=None):  # each follow-up private if the first is
                await interaction.followup.send(
                    **kwargs, ephemeral=personal, allowed_mentions=NO_MENTIONS
                )
        except Exception:
            log.exception("discord_command_failed", command=command)
            await interaction.followup.send(
                INTERNAL_ERROR, ephemeral=personal, allowed_mentions=NO_MENTIONS
            )

    async def refresh(self, interaction: discord.Interaction, base: str) -> None:
        """The "Refresh" button: the signal again, edited into the same message; a refusal
        (cooldown, busy) goes to the presser only. Never a new public message."""
        await interaction.response.defer()  # a deferred update: the message stays as it is
        reply = await self._reply(interaction, "signal", (base,))
        messages = _messages(reply, intro=None)
        if reply.signal is not None and not reply.is_error:
            first = messages.pop(0)
            files = [first["file"]] if "file" in first else []
            await interaction.edit_original_response(
                content=first.get("content"),
                embed=first["embed"],
                attachments=files,
                view=first["view"],
                allowed_mentions=NO_MENTIONS,
            )
        for kwargs in messages:  # a refusal, or the rest of a signal too long for one message
            kwargs.pop("view", None)
            await interaction.followup.send(**kwargs, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def watch(self, interaction: discord.Interaction, base: str) -> None:
        """The "Watch" button: `watch add` for the presser, answered to them only."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        reply = await self._reply(interaction, "watch", ("add", base))
        for kwargs in _messages(reply, intro=None):
            await interaction.followup.send(**kwargs, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def _reply(
        self,
        interaction: discord.Interaction,
        command: str,
        args: tuple[str, ...],
        options: Mapping[str, OptionValue] | None = None,
    ) -> Reply:
        if not self._accepting or self._handler is None:
            return Reply(text=_STOPPING, is_error=True)
        request = self.request(interaction, command, args, options or {})
        if command == "subscribe" and request.is_admin and not request.is_private:
            missing = [
                label for name, label in _POSTING if not getattr(interaction.app_permissions, name)
            ]
            if missing:
                return Reply(
                    text=f"I can't post alerts in this channel: I lack {', '.join(missing)}."
                    " Grant them to my role in the channel settings, then `subscribe` again.",
                    is_error=True,
                )
        return await self._handler(request)

    def request(
        self,
        interaction: discord.Interaction,
        command: str,
        args: tuple[str, ...],
        options: Mapping[str, OptionValue] | None = None,
    ) -> Request:
        """The transport-neutral request for an interaction."""
        in_server = interaction.guild_id is not None
        user = interaction.user
        return Request(
            transport=self.name,
            user_id=str(user.id),
            chat_id=str(interaction.channel_id),
            dm_chat_id=f"{DM_PREFIX}{user.id}",
            command=command,
            args=args,
            is_private=not in_server,
            is_admin=not in_server or self._may_manage(interaction),
            options=dict(options or {}),
        )

    def _may_manage(self, interaction: discord.Interaction) -> bool:
        if interaction.permissions.manage_guild:
            return True
        # The member's role ids as the payload gave them: the server's role cache may be empty
        # (the bot asks for no gateway intents), so Member.roles could be.
        role_ids = set(getattr(interaction.user, "_roles", ()))
        return bool(role_ids & set(self._config.admin_role_ids))

    def symbol_choices(self, typed: str) -> list[app_commands.Choice[str]]:
        """Symbols matching what is typed so far (the base asset or the pair), at most 25."""
        text = typed.strip().upper()
        return [
            app_commands.Choice(name=symbol, value=base_asset(symbol).lower())
            for symbol in self._symbols
            if not text or symbol.startswith(text) or base_asset(symbol).startswith(text)
        ][:25]

    # -- sending -----------------------------------------------------------------------------

    async def _channel_id(self, chat_id: str) -> int:
        if not chat_id.startswith(DM_PREFIX):
            return int(chat_id)
        channel_id = self._dm_channels.get(chat_id)
        if channel_id is None:
            data = await self.client.http.start_private_message(int(chat_id[len(DM_PREFIX) :]))
            channel_id = self._dm_channels[chat_id] = int(data["id"])
        return channel_id

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # the transport stops receiving; sends and the other transports go on
            log.exception("discord_gateway_failed")


def _messages(reply: Reply, intro: str | None) -> list[dict[str, Any]]:
    """The keyword arguments of each message that carries `reply` (with an alert's intro)."""
    if reply.signal is None or reply.is_error:
        text = reply if not intro else Reply(text=f"{intro}\n{reply.text}", fields=reply.fields)
        texts: list[dict[str, Any]] = [{"content": content} for content in reply_contents(text)]
        if reply.chart_png is not None and not reply.is_error:  # a backtest's or performance's
            texts[-1]["file"] = discord.File(io.BytesIO(reply.chart_png), filename=CHART_FILENAME)
        return texts
    chart = reply.chart_png
    embeds = signal_embeds(
        reply.signal,
        intro=intro,
        with_chart=chart is not None,
        credits=reply.credits or DEFAULT_CREDITS,
    )
    messages: list[dict[str, Any]] = [{"embed": discord.Embed.from_dict(e)} for e in embeds]
    messages[0]["view"] = signal_view(base_asset(reply.signal.symbol).lower())
    if chart is not None:
        messages[0]["file"] = discord.File(io.BytesIO(chart), filename=CHART_FILENAME)
    hint = reply.extra.get("next")
    if hint:
        messages[0]["content"] = escape(hint)
    return messages


def _retry_after_s(exc: discord.HTTPException) -> float:
    try:
        return float(exc.response.headers.get("Retry-After", _RETRY_AFTER_UNKNOWN_S))
    except (TypeError, ValueError):
        return _RETRY_AFTER_UNKNOWN_S
