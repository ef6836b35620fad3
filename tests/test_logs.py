"""Log output: one redacting pipeline for structlog events and standard-library records alike,
JSON lines off a terminal and readable text on one, at the levels the config sets."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from bot.cli_run import _configure_run_logging
from bot.config import BotConfig
from bot.logs import configure_logging
from intel.config import Secrets, load_config

TOKEN = "123456:tg-FAKE-token"
API_KEY = "gsk_fake_groq_key_0123456789"
SECRETS = Secrets.from_env({"TELEGRAM_TOKEN": TOKEN, "GROQ_API_KEY": API_KEY})
RENDERINGS = pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("apscheduler").level
    yield
    root.handlers[:], level, apscheduler_level = saved
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(apscheduler_level)
    structlog.reset_defaults()


def configured(json_output: bool, level: str = "DEBUG") -> io.StringIO:
    buffer = io.StringIO()
    configure_logging(json_output=json_output, level=level, secrets=SECRETS.values(), stream=buffer)
    return buffer


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def assert_no_secret(text: str) -> None:
    assert TOKEN not in text
    assert API_KEY not in text


@RENDERINGS
def test_a_library_record_is_redacted_in_its_message_and_its_args(json_output) -> None:
    buffer = configured(json_output)
    httpx_log = logging.getLogger("httpx")
    httpx_log.info("HTTP Request: POST https://api.telegram.org/bot%s/getMe", TOKEN)
    httpx_log.info(f"HTTP Request: POST https://api.telegram.org/bot{TOKEN}/getUpdates")
    expected = [
        "HTTP Request: POST https://api.telegram.org/bot<redacted>/getMe",
        "HTTP Request: POST https://api.telegram.org/bot<redacted>/getUpdates",
    ]
    output = lines(buffer)
    assert len(output) == 2
    if json_output:
        records = [json.loads(line) for line in output]
        assert [r["event"] for r in records] == expected
        assert {(r["level"], r["logger_name"]) for r in records} == {("info", "httpx")}
    else:
        for line, event in zip(output, expected, strict=True):
            assert f"[info     ] {event}" in line
            assert line.endswith("[httpx]")
    assert_no_secret(buffer.getvalue())


@RENDERINGS
def test_a_library_traceback_is_redacted(json_output) -> None:
    buffer = configured(json_output)
    try:
        raise ConnectionError(f"cannot reach /bot{TOKEN}/sendMessage")
    except ConnectionError:
        logging.getLogger("telegram.ext").exception("network error")
    text = buffer.getvalue()
    assert "ConnectionError: cannot reach /bot<redacted>/sendMessage" in (
        json.loads(text)["exception"] if json_output else text
    )
    assert_no_secret(text)


@RENDERINGS
def test_a_structlog_event_is_redacted(json_output) -> None:
    buffer = configured(json_output)
    structlog.get_logger("test").warning(
        f"login with {API_KEY} refused",
        url=f"https://api.telegram.org/bot{TOKEN}/getMe",
        headers={"Authorization": f"Bearer {API_KEY}"},
        attempt=2,
    )
    (line,) = lines(buffer)
    if json_output:
        event = json.loads(line)
        assert event["event"] == "login with <redacted> refused"
        assert event["url"] == "https://api.telegram.org/bot<redacted>/getMe"
        assert event["headers"] == "{'Authorization': 'Bearer <redacted>'}"
        assert (event["level"], event["attempt"]) == ("warning", 2)
    else:
        assert "[warning  ] login with <redacted> refused" in line
        assert "url=https://api.telegram.org/bot<redacted>/getMe" in line
        assert "attempt=2" in line
    assert_no_secret(line)


@RENDERINGS
def test_the_level_applies_to_both_kinds_of_record(json_output) -> None:
    buffer = configured(json_output, level="warning")
    structlog.get_logger().info("quiet_event")
    logging.getLogger("aiosqlite").info("quiet record")
    structlog.get_logger().warning("loud_event")
    logging.getLogger("aiosqlite").error("loud record")
    text = buffer.getvalue()
    assert "quiet" not in text
    assert len(lines(buffer)) == 2
    assert "loud_event" in text
    assert "loud record" in text


class FakeStderr(io.StringIO):
    def __init__(self, *, terminal: bool) -> None:
        super().__init__()
        self._terminal = terminal

    def isatty(self) -> bool:
        return self._terminal


def run_logging(monkeypatch, env: dict[str, str], *, terminal: bool, console: bool) -> FakeStderr:
    """Configure logging as `python -m bot run` does, onto a stand-in stderr; log one of each."""
    stderr = FakeStderr(terminal=terminal)
    monkeypatch.setattr(sys, "stderr", stderr)
    config = load_config(env=env, model=BotConfig)
    _configure_run_logging(config, SECRETS, console=console, debug=False)
    for level in ("info", "warning"):
        getattr(structlog.get_logger(), level)(f"{level}_event")
        getattr(logging.getLogger("httpx"), level)(f"{level} record %s", TOKEN)
    return stderr


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_json_lines_off_a_terminal_and_text_on_one(monkeypatch, terminal) -> None:
    stderr = run_logging(monkeypatch, {}, terminal=terminal, console=False)
    output = stderr.getvalue().splitlines()
    assert len(output) == 4  # logging.level is INFO without the console chat
    if terminal:
        assert all(not line.startswith("{") for line in output)
        assert "[warning  ] warning record <redacted>" in output[3]
    else:
        events = [json.loads(line)["event"] for line in output]
        assert events == [
            "info_event",
            "info record <redacted>",
            "warning_event",
            "warning record <redacted>",
        ]


def test_logging_json_output_in_config_wins_over_the_terminal(monkeypatch) -> None:
    env = {"BOT__LOGGING__JSON_OUTPUT": "true"}
    stderr = run_logging(monkeypatch, env, terminal=True, console=False)
    assert json.loads(stderr.getvalue().splitlines()[0])["event"] == "info_event"


@pytest.mark.parametrize(
    ("env", "console", "shown"),
    [
        ({}, True, 2),  # logging.console_level (WARNING) while the console chat runs
        ({}, False, 4),  # logging.level (INFO) otherwise
        ({"BOT__LOGGING__CONSOLE_LEVEL": "INFO"}, True, 4),
        ({"BOT__LOGGING__LEVEL": "ERROR"}, False, 0),
    ],
)
def test_levels_come_from_config(monkeypatch, env, console, shown) -> None:
    stderr = run_logging(monkeypatch, env, terminal=False, console=console)
    assert len(stderr.getvalue().splitlines()) == shown
