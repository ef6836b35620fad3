"""`python -m bot run`: the console chat driven through stdin/stdout, and the composition root.

The subprocess test is the newcomer's first five minutes, compressed: commands typed, a signal with
its chart file, a watch and a threshold, a subscription, and an alert from the demo clock, then end
of input and a clean exit. The in-process tests run `run_bot` with text streams and a fake chat.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import structlog

from bot.app import run_bot
from bot.commands.base import Reply, Request
from bot.config import BotConfig
from bot.storage.sqlite import SqliteStore
from bot.transports.memory import MemoryTransport
from intel.config import Secrets, load_config


@pytest.fixture(autouse=True)
def _fresh_structlog() -> None:
    """Another test may have bound structlog to a stream pytest has since closed."""
    structlog.reset_defaults()


ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["help", "signal btc", "watch add eth", "alerts 60", "subscribe", "status"]
# 2025-09-30 03:00: BTC turns SELL two market hours later, ETH later that day.
DEMO_ENV = {
    "BOT__DATA__DEFAULT_AT": "2025-09-30T03:00Z",
    "BOT__DEMO__SPEED": "7200",  # one market hour every 0.5 s
    "BOT__SCHEDULE__INTERVAL_MINUTES": "60",
}
SECRET_NAMES = (
    "DISCORD_TOKEN",
    "TELEGRAM_TOKEN",
    "GROQ_API_KEY",
    "REDDIT_CLIENT_ID",
    "REDDIT_CLIENT_SECRET",
)


def bot_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("BOT__") and k not in SECRET_NAMES
    }
    env.update(DEMO_ENV, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", **extra)
    return env


class Session:
    """A `python -m bot run` subprocess with its output collected line by line."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--db", str(tmp_path / "bot.db"), *args],
            cwd=tmp_path,
            env=env or bot_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, k=sink: k.extend(s), daemon=True).start()

    def wait_for(self, pattern: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if re.search(pattern, "".join(self.out), re.MULTILINE):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def finish(self, timeout_s: float = 30) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    @property
    def stdout(self) -> str:
        return "".join(self.out)


def test_console_chat_through_stdin_and_stdout(tmp_path):
    session = Session(tmp_path)
    assert session.proc.stdin is not None
    session.proc.stdin.write("".join(f"{line}\n" for line in COMMANDS))
    session.proc.stdin.flush()
    alerted = session.wait_for(r"^ALERT · BTC/USDT", timeout_s=60)
    session.proc.stdin.close()  # end of input stops the bot
    code = session.finish()
    out = session.stdout
    assert code == 0, session.err
    assert alerted, out
    assert "Type `help`" in out
    assert "Discord when DISCORD_TOKEN is set" in out
    assert "Telegram when TELEGRAM_TOKEN is set" in out
    assert "Commands:" in out
    assert "SELL BTC/USDT" in out or "HOLD BTC/USDT" in out or "BUY BTC/USDT" in out
    assert "Now watching ETH/USDT" in out
    assert "60/100" in out
    assert "This chat now gets an alert" in out
    assert "Last cycle:" in out
    assert "End of input" in out
    charts = re.findall(r"^Chart saved to (.+\.png)$", out, re.MULTILINE)
    assert charts
    for chart in charts:
        assert (tmp_path / chart).read_bytes().startswith(b"\x89PNG")


def shown_alerts(out: str) -> list[tuple[str, str]]:
    """Each alert shown, as (intro, chart file): the chart names the signal's market moment."""
    return re.findall(r"^(?:ALERT|DM) · (.+)$[\s\S]*?^Chart saved to (.+)$", out, re.MULTILINE)


def test_run_restarts_without_repeating_alerts(tmp_path):
    first = Session(tmp_path)
    assert first.proc.stdin is not None
    first.proc.stdin.write("subscribe\n")
    first.proc.stdin.flush()
    assert first.wait_for(r"^ALERT · BTC/USDT", timeout_s=60)
    first.proc.stdin.close()
    assert first.finish() == 0

    second = Session(tmp_path, env=bot_env(BOT__DEMO__SPEED="1"))  # market time barely moves
    assert second.proc.stdin is not None
    second.wait_for(r"market time is", timeout_s=30)
    time.sleep(2)  # the overdue cycle runs at start, and the outbox left pending is sent
    second.proc.stdin.close()
    assert second.finish() == 0, second.err
    before, after = shown_alerts(first.stdout), shown_alerts(second.stdout)
    assert before
    assert len(set(before + after)) == len(before + after)  # nothing shown twice


def test_no_console_runs_until_sigterm(tmp_path):
    session = Session(tmp_path, "--no-console", env=bot_env(BOT__LOGGING__LEVEL="INFO"))
    deadline = time.monotonic() + 30
    while "bot_started" not in "".join(session.err) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "bot_started" in "".join(session.err)
    session.proc.send_signal(signal.SIGTERM)
    assert session.finish() == 0
    assert "bot_stopped" in "".join(session.err)
    assert "Type `help`" not in session.stdout  # no console chat in this mode


def make_config(tmp_path: Path, **env: str) -> BotConfig:
    values = {
        "BOT__STORAGE__DB_PATH": str(tmp_path / "bot.db"),
        "BOT__CONSOLE__CHART_DIR": str(tmp_path / "charts"),
        **DEMO_ENV,
        **env,
    }
    return load_config(env=values, model=BotConfig)


async def test_run_bot_in_process_with_text_streams(tmp_path):
    stdin, stdout = io.StringIO("help\nsignal eth\nwatch add btc\nbogus\n"), io.StringIO()
    config = make_config(tmp_path)
    code = await asyncio.wait_for(
        run_bot(config, Secrets(), console=True, stdin=stdin, stdout=stdout), timeout=60
    )
    out = stdout.getvalue()
    assert code == 0
    assert "Commands:" in out
    # the calibrated header: a call as its record, a HOLD never as a probability
    assert (
        "ETH/USDT · right about" in out
        or "ETH/USDT · no demonstrated edge" in out
        or ("ETH/USDT · hold" in out and "not a probability" in out)
    )
    assert "Now watching BTC/USDT" in out
    assert "unknown command 'bogus'" in out
    assert list((tmp_path / "charts").glob("ETHUSDT_*.png"))
    assert out.rstrip().endswith("End of input — stopping the bot.")


async def test_an_undecodable_line_is_answered_and_the_chat_carries_on(tmp_path):
    """Bytes as a terminal or pipe delivers them: one bad byte costs that one line only."""
    typed = b"help\nwatch list\nwatch add \xff\nwatch add eth\nstatus\n"
    stdin = io.TextIOWrapper(io.BytesIO(typed), encoding="utf-8")
    stdout = io.StringIO()
    code = await asyncio.wait_for(
        run_bot(make_config(tmp_path), Secrets(), console=True, stdin=stdin, stdout=stdout),
        timeout=60,
    )
    out = stdout.getvalue()
    assert code == 0
    assert "Commands:" in out  # read in the same chunk as the bad byte, answered before it
    assert "You watch nothing yet" in out
    assert "error: that line is not valid utf-8 text (byte 0xff at position 11)" in out
    assert "Now watching ETH/USDT" in out  # after it: the chat carried on
    assert "Last cycle:" in out
    assert out.rstrip().endswith("End of input — stopping the bot.")


async def test_status_says_who_gets_whale_alerts(tmp_path):
    stdin, stdout = io.StringIO("status\nsubscribe whales\nstatus\n"), io.StringIO()
    code = await asyncio.wait_for(
        run_bot(make_config(tmp_path), Secrets(), console=True, stdin=stdin, stdout=stdout),
        timeout=60,
    )
    out = stdout.getvalue()
    assert code == 0
    # whale_alerts.min_usd is 100,000,000 in config.yaml
    before = "Whale alerts: no chat has asked (`subscribe whales`, `alerts whales`), from $100.0M"
    assert before in out
    assert "Whale alerts: 1 channel, 0 DMs, from $100.0M" in out
    assert out.index(before) < out.index("Whale alerts: 1 channel")


async def test_the_demo_clock_stops_at_the_end_of_the_data_and_says_so_once(tmp_path):
    read_fd, write_fd = os.pipe()
    stdin, stdout = os.fdopen(read_fd, "r"), io.StringIO()
    config = make_config(tmp_path, BOT__DEMO__UNTIL="2025-09-30T05:00Z")  # 1 s of real time
    bot = asyncio.create_task(run_bot(config, Secrets(), console=True, stdin=stdin, stdout=stdout))
    for _ in range(200):
        await asyncio.sleep(0.1)
        if "end of the recorded data" in stdout.getvalue():
            break
    await asyncio.sleep(0.5)
    os.close(write_fd)  # end of input
    assert await asyncio.wait_for(bot, timeout=30) == 0
    stdin.close()
    assert stdout.getvalue().count("reached the end of the recorded data") == 1
    assert "(2025-09-30T05:00:00Z)" in stdout.getvalue()


SUBSCRIBE = Request(
    transport="console",
    user_id="admin",
    chat_id="room",
    dm_chat_id="dm-admin",
    command="subscribe",
    is_private=False,
    is_admin=True,
)


async def subscribe_when_started(chat: MemoryTransport) -> Reply:
    """The chat's admin subscribes the room once the bot has started the chat."""
    await asyncio.wait_for(chat.started.wait(), timeout=60)
    return await chat.command(SUBSCRIBE)


async def test_run_bot_delivers_alerts_and_stops_on_sigterm(tmp_path):
    chat = MemoryTransport("console")
    config = make_config(tmp_path)
    bot = asyncio.create_task(
        run_bot(
            config,
            Secrets(),
            console=True,
            stdin=io.StringIO(),
            stdout=io.StringIO(),
            extra_transports=[chat],
        )
    )
    assert "now gets an alert" in (await subscribe_when_started(chat)).text
    await asyncio.wait_for(chat.wait_accepted(), timeout=60)
    os.kill(os.getpid(), signal.SIGTERM)  # run_bot's handler turns it into a clean stop
    assert await asyncio.wait_for(bot, timeout=30) == 0
    chat_id, message = chat.accepted[0].chat_id, chat.accepted[0].message
    assert chat_id == "room"
    assert message.extra["kind"] == "channel"
    assert message.intro.startswith("BTC/USDT: ")
    assert message.reply.signal is not None
    assert message.reply.chart_png is not None
    assert message.reply.chart_png.startswith(b"\x89PNG")


async def test_a_send_in_flight_at_shutdown_finishes_before_the_transport_closes(tmp_path):
    chat = MemoryTransport("console", latency_s=1.0)  # a platform's (slow) round trip
    config = make_config(tmp_path)
    bot = asyncio.create_task(
        run_bot(
            config,
            Secrets(),
            console=True,
            stdin=io.StringIO(),
            stdout=io.StringIO(),
            extra_transports=[chat],
        )
    )
    await subscribe_when_started(chat)
    await asyncio.wait_for(chat.wait_calls(), timeout=60)
    os.kill(os.getpid(), signal.SIGTERM)  # mid-send
    assert await asyncio.wait_for(bot, timeout=30) == 0
    # No more commands first, then the send finishes, and only then the connection goes (a send
    # still in flight at close would raise instead of being answered: no "sent").
    assert chat.events[:4] == ["start", "send", "stop", "sent"]
    assert chat.events.count("send") == chat.events.count("sent")  # every send finished
    assert chat.events.index("close") == len(chat.events) - 1
    store = SqliteStore(config.storage.db_path)
    await store.open()
    try:
        assert (await store.outbox_counts())["sent"] == len(chat.accepted) >= 1
    finally:
        await store.close()


def test_the_greeting_says_which_market_data_the_bot_runs_on():
    from datetime import UTC, datetime

    from bot.transports.console import greeting_text

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert "Running on recorded market data" in greeting_text(now, "demo clock", "1 h")
    live = greeting_text(now, "live market time", "1 h", live=True)
    assert "Running on live market data" in live
    assert "recorded" not in live
