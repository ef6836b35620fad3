"""Lifecycles: the composition roots open the desk's sources, engine and coordinator in order and
close them in reverse, also when the work raises or is cancelled.

Every part is a real one (replay sources, the lexicon engine, the fake coordinator beside its
interface) wrapped in a recorder, injected through `build_desk` as any future caller would.
"""

from __future__ import annotations

import asyncio
import io
import os
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.app import run_bot
from bot.cli import compute_signal
from bot.cli_status import _gather
from bot.config import BotConfig
from intel.config import Secrets, load_config
from intel.coordinator.fake import FakeCoordinator
from intel.coordinator.rules import RulesCoordinator
from intel.desk import SignalDesk, build_desk, replay_sources
from intel.errors import BadTimeError
from intel.lifecycle import enter_all
from intel.sentiment.lexicon import LexiconEngine
from intel.snapshot import Sources
from intel.timeutil import parse_time

ROLES = ("candles", "orderbook", "whales", "posts", "fear_greed")  # the sources, in order
ORDER = (*ROLES, "engine", "coordinator")
OPENED = [f"start {part}" for part in ORDER]
CLOSED = [f"close {part}" for part in reversed(ORDER)]
ENGINE = LexiconEngine()


class Recording:
    """A real component whose start and close are written to a log shared by all parts."""

    def __init__(self, label: str, inner: object, log: list[str], fail: str | None = None) -> None:
        self._label, self._inner, self._log, self._fail = label, inner, log, fail
        self.started = asyncio.Event()

    async def start(self) -> None:
        self._log.append(f"start {self._label}")
        if self._fail == "start":
            raise RuntimeError(f"{self._label} cannot start")
        await self._inner.start()  # type: ignore[attr-defined]
        self.started.set()

    async def close(self) -> None:
        self._log.append(f"close {self._label}")
        await self._inner.close()  # type: ignore[attr-defined]
        if self._fail == "close":
            raise RuntimeError(f"{self._label} cannot close")

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def make_config(tmp_path: Path, **env: str) -> BotConfig:
    return load_config(
        env={
            "BOT__STORAGE__DB_PATH": str(tmp_path / "bot.db"),
            "BOT__CONSOLE__CHART_DIR": str(tmp_path / "charts"),
            **env,
        },
        model=BotConfig,
    )


def recorded_factory(
    log: list[str], config: BotConfig, fail: dict[str, str] | None = None, delay_s: float = 0.0
) -> tuple[partial[SignalDesk], FakeCoordinator]:
    """`build_desk` with every part recorded; `fail` maps a part to "start" or "close"."""
    fail = fail or {}
    real = replay_sources()
    recorded = {role: Recording(role, getattr(real, role), log, fail.get(role)) for role in ROLES}
    sources = Sources(**recorded)  # type: ignore[arg-type]
    fake = FakeCoordinator(RulesCoordinator(config.coordinator), name="llm", delay_s=delay_s)
    factory = partial(
        build_desk,
        sources=sources,
        engine=Recording("engine", ENGINE, log, fail.get("engine")),
        coordinator=Recording("coordinator", fake, log, fail.get("coordinator")),
    )
    return factory, fake


async def test_the_signal_command_opens_in_order_and_closes_in_reverse(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, fake = recorded_factory(log, config)
    result = await compute_signal(config, "eth", None, factory)
    assert result.signal.coordinator == "llm"  # the injected coordinator decided
    assert fake.calls == 1
    assert log == OPENED + CLOSED


async def test_the_parts_close_in_reverse_when_the_signal_raises(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, _ = recorded_factory(log, config)
    with pytest.raises(BadTimeError):
        await compute_signal(config, "btc", parse_time("2031-01-01T00:00Z"), factory)
    assert log == OPENED + CLOSED


async def test_the_parts_close_in_reverse_when_the_task_is_cancelled(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path, BOT__PIPELINE__COORDINATOR_TIMEOUT_S="60")
    factory, fake = recorded_factory(log, config, delay_s=60)
    task = asyncio.create_task(compute_signal(config, "btc", None, factory))
    await asyncio.wait_for(fake.deciding.wait(), timeout=10)
    assert log == OPENED  # mid-decision: everything open, nothing closed yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.cancelled
    assert log == OPENED + CLOSED


async def test_a_failed_start_closes_what_was_started_and_starts_nothing_more(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, fake = recorded_factory(log, config, fail={"posts": "start"})
    with pytest.raises(RuntimeError, match="posts cannot start"):
        await compute_signal(config, "btc", None, factory)
    assert fake.calls == 0
    assert log == [
        "start candles",
        "start orderbook",
        "start whales",
        "start posts",
        "close whales",
        "close orderbook",
        "close candles",
    ]


async def test_a_failed_close_is_logged_and_the_others_still_close(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, _ = recorded_factory(log, config, fail={"engine": "close"})
    with capture_logs() as events:
        result = await compute_signal(config, "btc", None, factory)
    assert result.signal.symbol == "BTC/USDT"
    assert log == OPENED + CLOSED
    assert [e["event"] for e in events if e["log_level"] == "error"] == ["close_failed"]


async def test_the_status_command_opens_and_closes_the_sources(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, fake = recorded_factory(log, config)
    status = await _gather(config, factory)
    assert status.sources  # every source was probed while open
    assert fake.calls == 0  # a probe runs no coordinator
    assert log == OPENED + CLOSED


async def test_run_opens_the_desk_for_the_whole_run_and_closes_it_at_the_end(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, _ = recorded_factory(log, config)
    stdin, stdout = io.StringIO("signal eth\n"), io.StringIO()
    code = await asyncio.wait_for(
        run_bot(config, Secrets(), console=True, stdin=stdin, stdout=stdout, desk_factory=factory),
        timeout=60,
    )
    assert code == 0
    assert "ETH/USDT · confidence" in stdout.getvalue()
    assert "llm coordinator" in stdout.getvalue()
    assert log == OPENED + CLOSED


async def test_run_closes_the_desk_when_its_task_is_cancelled(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, _ = recorded_factory(log, config)
    read_fd, write_fd = os.pipe()  # console input that never ends by itself
    stdin = os.fdopen(read_fd, "r")
    task = asyncio.create_task(
        run_bot(
            config, Secrets(), console=True, stdin=stdin, stdout=io.StringIO(), desk_factory=factory
        )
    )
    await asyncio.wait_for(factory.keywords["coordinator"].started.wait(), timeout=30)
    assert log == OPENED
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    os.close(write_fd)
    stdin.close()
    assert log == OPENED + CLOSED


async def test_one_object_in_several_roles_is_opened_and_closed_once() -> None:
    log: list[str] = []
    both = Recording("both", ENGINE, log)
    other = Recording("other", ENGINE, log)
    async with AsyncExitStack() as stack:
        await enter_all(stack, [both, other, both])
    assert log == ["start both", "start other", "close other", "close both"]


async def test_the_default_desk_opens_and_closes_its_replay_parts(tmp_path) -> None:
    config = make_config(tmp_path)
    async with build_desk(config) as desk:
        result = await desk.signal("BTC/USDT")
    assert result.signal.coordinator == "rules"
    # the rules answered themselves: no fallback (calibration may add its own note)
    assert not any(note.startswith("Fell back") for note in result.signal.notes)


async def test_a_desk_started_twice_refuses_instead_of_opening_its_parts_again(tmp_path) -> None:
    log: list[str] = []
    config = make_config(tmp_path)
    factory, _ = recorded_factory(log, config)
    async with factory(config) as desk:
        with pytest.raises(RuntimeError, match="already started"):
            await desk.start()
    assert log == OPENED + CLOSED
