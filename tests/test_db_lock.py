"""One running bot per database file: a second `run` on it refuses to start, whatever the name."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
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
        assert again.path == db.resolve()


def other_names(tmp_path: Path, db: Path) -> dict[str, Path]:
    """Three more names for the same file, each in a directory of its own."""
    for folder in ("links", "hard", "sub"):
        (tmp_path / folder).mkdir()
    symlink, hard_link = tmp_path / "links" / "bot.db", tmp_path / "hard" / "copy.db"
    symlink.symlink_to(db)
    os.link(db, hard_link)
    return {
        "symlink": symlink,
        "hard link": hard_link,
        "dot-dot": tmp_path / "sub" / ".." / db.name,
    }


@pytest.mark.parametrize("name", ["symlink", "hard link", "dot-dot"])
def test_the_lock_is_on_the_file_not_its_name(tmp_path: Path, name: str) -> None:
    db = tmp_path / "bot.db"
    db.touch()
    other = other_names(tmp_path, db)[name]
    for first, second in ((db, other), (other, db)):
        with (
            DatabaseLock(first),
            pytest.raises(ConfigError, match="another bot is already running"),
        ):
            DatabaseLock(second).acquire()
        with DatabaseLock(second):  # free again once released
            pass


def test_locking_never_changes_the_database(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE kept (value TEXT)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    conn.close()
    before = db.read_bytes()
    with DatabaseLock(db):
        pass
    assert db.read_bytes() == before


@pytest.mark.parametrize("name", [None, "symlink", "hard link"])
async def test_run_refuses_to_start_beside_a_running_bot(tmp_path: Path, name: str | None) -> None:
    db = tmp_path / "bot.db"
    db.touch()
    path = db if name is None else other_names(tmp_path, db)[name]
    config = load_config(env={}, overrides={"storage.db_path": str(path)}, model=BotConfig)
    with DatabaseLock(db), pytest.raises(ConfigError, match=r"storage\.db_path"):
        # Without the refusal the bot would run until stopped: bound the wait so the test fails.
        await asyncio.wait_for(
            run_bot(config, Secrets(), console=False, stdin=io.StringIO(), stdout=io.StringIO()),
            timeout=30,
        )
