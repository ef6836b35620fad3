"""Tokens and API keys never appear in logs or replies, whatever logs them and however.

Fake DISCORD_TOKEN, TELEGRAM_TOKEN and GROQ_API_KEY values are set; commands and cycles run and log
(structlog events, exception tracebacks, standard-library records from libraries); the captured
logs and every reply are searched for the values.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from bot.app import run_bot
from bot.config import BotConfig
from bot.logs import configure_logging
from bot.scheduling.cycle import SignalCycle
from bot.storage.sqlite import SqliteStore
from intel.config import Secrets, load_config

ROOT = Path(__file__).resolve().parents[1]
FAKE_ENV = {
    "DISCORD_TOKEN": "MTA5ODc2NTQzMjEw.discord-fake-token.abc123",
    "TELEGRAM_TOKEN": "123456:tg-FAKE-token",
    "GROQ_API_KEY": "gsk_fake_groq_key_0123456789",
}
SECRETS = Secrets.from_env(FAKE_ENV)
# With a Telegram token `run` serves Telegram instead of the console (tests/test_telegram.py).
CONSOLE_ENV = {k: v for k, v in FAKE_ENV.items() if k != "TELEGRAM_TOKEN"}
TYPED_SECRET = "rd-FAKE-secret-42"  # short enough to be echoed whole in an error reply
# Discord's API at a local port where nothing listens: the transport is tried and fails offline.
NO_DISCORD = {"BOT__DISCORD__API_BASE_URL": "http://127.0.0.1:9/api/v10"}


async def no_chart(signal: object, snapshot: object) -> bytes | None:
    return None


def assert_clean(text: str) -> None:
    for name, value in FAKE_ENV.items():
        assert value not in text, f"{name} leaked"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """structlog and the standard library's logging, configured as `run` does, into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(json_output=True, level="DEBUG", secrets=SECRETS.values(), stream=buffer)
    yield buffer
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


def test_secrets_repr_hides_values():
    assert_clean(repr(SECRETS))
    assert sorted(SECRETS.values()) == sorted(FAKE_ENV.values())


def test_structlog_events_and_tracebacks_are_redacted(captured_logs):
    log = structlog.get_logger("test")
    token = FAKE_ENV["TELEGRAM_TOKEN"]
    log.info(
        "connecting",
        url=f"https://api.telegram.org/bot{token}/getMe",
        headers={"Authorization": f"Bearer {FAKE_ENV['GROQ_API_KEY']}"},
    )
    try:
        raise RuntimeError(f"login failed with {FAKE_ENV['DISCORD_TOKEN']}")
    except RuntimeError:
        log.exception("transport_failed")
    text = captured_logs.getvalue()
    assert "transport_failed" in text
    assert "RuntimeError" in text
    assert "<redacted>" in text
    assert_clean(text)


def test_standard_library_records_are_redacted(captured_logs):
    token = FAKE_ENV["TELEGRAM_TOKEN"]
    logging.getLogger("httpx").info(
        "HTTP Request: POST https://api.telegram.org/bot%s/getMe", token
    )
    try:
        raise ConnectionError(f"cannot reach /bot{token}/sendMessage")
    except ConnectionError:
        logging.getLogger("telegram.ext").exception("network error")
    text = captured_logs.getvalue()
    assert "HTTP Request" in text
    assert "ConnectionError" in text
    assert_clean(text)


class LeakyDesk:
    """A desk whose failure message carries a token, as a careless library's might."""

    symbols = ("BTC/USDT",)

    def now(self) -> datetime:
        return datetime(2025, 10, 6, 16, tzinfo=UTC)

    async def signal(self, symbol: str, at: datetime | None = None) -> None:
        raise RuntimeError(f"upstream refused key {FAKE_ENV['GROQ_API_KEY']}")


async def test_a_failing_cycle_logs_without_secrets(tmp_path, captured_logs):
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    try:
        await store.subscribe("console", "console", ())
        config = load_config(env={}, model=BotConfig)
        cycle = SignalCycle(LeakyDesk(), store, config, no_chart, lambda: None)
        result = await cycle.run_once()
    finally:
        await store.close()
    assert result.failed == ("BTC/USDT",)
    text = captured_logs.getvalue()
    assert "cycle_symbol_failed" in text
    assert "upstream refused key <redacted>" in text
    assert_clean(text)


async def test_replies_are_redacted(tmp_path, captured_logs):
    env = {"BOT__STORAGE__DB_PATH": str(tmp_path / "bot.db"), **NO_DISCORD}
    config = load_config(env=env, model=BotConfig)
    lines = "".join(
        f"{line}\n"
        for line in (
            f"signal {TYPED_SECRET}",
            f"watch add {TYPED_SECRET}",
            f"help {TYPED_SECRET}",
            "status",
        )
    )
    stdout = io.StringIO()
    assert (
        await run_bot(
            config,
            Secrets.from_env(CONSOLE_ENV | {"REDDIT_CLIENT_SECRET": TYPED_SECRET}),
            console=True,
            stdin=io.StringIO(lines),
            stdout=stdout,
        )
        == 0
    )
    out = stdout.getvalue()
    assert "<redacted>" in out
    assert TYPED_SECRET not in out
    assert_clean(out)
    assert_clean(captured_logs.getvalue())


def test_run_with_tokens_never_prints_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT__")}
    env.pop("TELEGRAM_TOKEN", None)
    env.update(CONSOLE_ENV, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", BOT__DEMO__SPEED="7200")
    env.update(NO_DISCORD)
    commands = "help\nsignal btc\nsubscribe\nwatch add eth\nalerts 50\nstatus\n"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--debug", "--db", str(tmp_path / "bot.db")],
        input=commands,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "signal_recorded" in proc.stderr or "cycle_done" in proc.stderr  # it did log
    # Discord was tried with the token, failed to connect, and the console took over.
    assert "transport_start_failed" in proc.stderr
    assert_clean(proc.stdout + proc.stderr)
