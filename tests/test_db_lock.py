"""One running bot per database: a second `run` on the same database refuses to start."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.app import run_bot
from bot.config import BotConfig
from bot.storage.lock import DatabaseLock
from intel.config import Secrets, load_config
from intel.errors import ConfigError


def test_a_second_lock_on_the_same_database_is_refused_until_the_first_is_released(
    tmp_path: Path,
) -> None:
    db = tmp_path / "bot.db"
    with DatabaseLock(db):
        with pytest.raises(ConfigError, match="another bot is already running"):
            DatabaseLock(db).acquire()
        DatabaseLock(tmp_path / "other.db").acquire()  # another database is fine
    with DatabaseLock(db) as again:
        assert again.path.read_text().strip().isdigit()  # holds the owner's pid


async def test_run_refuses_to_start_beside_a_running_bot(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    config = load_config(env={}, overrides={"storage.db_path": str(db)}, model=BotConfig)
    with DatabaseLock(db), pytest.raises(ConfigError, match=r"storage\.db_path"):
        await run_bot(config, Secrets(), console=False, stdin=io.StringIO(), stdout=io.StringIO())
