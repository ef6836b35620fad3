"""`run` with DISCORD_TOKEN: the bot serves Discord (alerts reach a subscribed channel through the
fake REST server, a slash command through the fake gateway), a rejected token is one log line,
and with no console left the run exits 2."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.app import run_bot
from bot.config import BotConfig
from bot.runstate import load_state
from bot.storage.sqlite import SqliteStore
from bot.transports.fake_discord import APP_ID, TOKEN, FakeDiscord, command_interaction
from intel.config import Secrets, load_config

CHANNEL = "700000000000000009"


def config_for(fake: FakeDiscord, db: Path) -> BotConfig:
    return load_config(
        env={
            "BOT__STORAGE__DB_PATH": str(db),
            "BOT__DISCORD__API_BASE_URL": fake.url,
            "BOT__DISCORD__GATEWAY_URL": fake.gateway_url,
            "BOT__DEMO__SPEED": "7200",  # a cycle every half second
        },
        model=BotConfig,
    )


@pytest.fixture
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.close()


async def test_a_rejected_token_is_one_line_and_without_console_run_exits_2(fake, tmp_path):
    fake.token = "the real one"
    with capture_logs() as logs:
        code = await run_bot(
            config_for(fake, tmp_path / "bot.db"),
            Secrets(discord_token=TOKEN),
            console=False,
            stdin=io.StringIO(),
            stdout=io.StringIO(),
        )
    assert code == 2
    rejected = [e for e in logs if e["event"] == "transport_rejected"]
    assert [(e["transport"], e["log_level"]) for e in rejected] == [("discord", "error")]
    assert "DISCORD_TOKEN" in rejected[0]["detail"]
    assert not [e for e in logs if e["event"] == "transport_start_failed"]  # no traceback


async def test_a_rejected_token_leaves_the_console_chat_running(fake, tmp_path):
    fake.token = "the real one"
    stdout = io.StringIO()
    code = await run_bot(
        config_for(fake, tmp_path / "bot.db"),
        Secrets(discord_token=TOKEN),
        console=True,
        stdin=io.StringIO("help\n"),
        stdout=stdout,
    )
    assert code == 0
    assert "Commands:" in stdout.getvalue()


async def test_status_shows_each_chat_platform_and_the_bot_records_it(fake, tmp_path):
    fake.token = "the real one"
    db = tmp_path / "bot.db"
    stdout = io.StringIO()
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    code = await run_bot(
        config_for(fake, db),
        Secrets(discord_token=TOKEN),
        console=True,
        stdin=io.StringIO("status\n"),
        stdout=stdout,
    )
    assert code == 0
    lines = stdout.getvalue().splitlines()
    start = lines.index("Chat platforms:")
    discord_line, telegram_line = lines[start + 1 : start + 3]
    assert discord_line.startswith(
        "  ❌ discord: token rejected — Discord rejected the token (DISCORD_TOKEN) (since "
    )
    assert telegram_line.startswith("  ➖ telegram: not configured — TELEGRAM_TOKEN is not set")
    store = SqliteStore(db, read_only=True)
    await store.open()
    try:
        state = await load_state(store)
    finally:
        await store.close()
    assert state is not None
    recorded = state.chat_transports
    assert {name: chat.state for name, chat in recorded.items()} == {
        "discord": "rejected",
        "telegram": "not_configured",
    }
    since = recorded["discord"].since
    assert since is not None
    assert before <= since <= datetime.now(UTC)
    assert f"(since {since:%Y-%m-%d %H:%M} UTC)" in discord_line


async def test_with_a_token_alerts_reach_a_subscribed_discord_channel(fake, tmp_path):
    db = tmp_path / "bot.db"
    store = SqliteStore(db)
    await store.open()
    await store.subscribe("discord", CHANNEL, ["BTC/USDT"])
    await store.close()
    stdout = io.StringIO()
    task = asyncio.create_task(
        run_bot(
            config_for(fake, db),
            Secrets(discord_token=TOKEN),
            console=True,  # a chat platform runs, so the console does not
            stdin=io.StringIO(),
            stdout=stdout,
        )
    )
    try:
        [posted] = await asyncio.wait_for(fake.wait_for(f"/channels/{CHANNEL}/messages"), 60)
        # A slash command through the gateway, as Discord delivers it: deferred, then answered.
        await asyncio.wait_for(fake.ready.wait(), 10)
        await fake.dispatch("INTERACTION_CREATE", command_interaction("help"))
        [defer] = await asyncio.wait_for(fake.wait_for("/callback"), 10)
        [answer] = await asyncio.wait_for(fake.wait_for(f"/webhooks/{APP_ID}/"), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert fake.matching("/users/@me", "GET")  # logged in with the token
    assert fake.matching("/commands", "PUT")  # and synced the commands
    [embed] = posted.json["embeds"]
    assert "BTC/USDT" in embed["title"]
    assert embed["image"]["url"] == "attachment://chart.png"
    assert posted.files[0][1].startswith(b"\x89PNG")
    assert posted.json["allowed_mentions"]["parse"] == []
    assert stdout.getvalue() == ""  # no console chat beside Discord
    assert defer.json["type"] == 5
    assert "signal" in answer.json["content"]
