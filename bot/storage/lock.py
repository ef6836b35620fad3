"""One running bot per database file: an exclusive `flock` on the file itself while `run` runs.

The alert plan of a cycle is read before its recording transaction, so two bots on one database
could both announce the same change; the lock makes a second one refuse to start instead. It is
taken on the database file's inode, not on a name: a symlink, a hard link or `./x/../bot.db`
reaches the same lock. The OS releases it when the process ends, however it ends (SIGKILL too).

Why not a `bot.db.lock` file beside the database (or `filelock`): a name beside a path differs
per hard link, and `filelock` opens its file with `O_TRUNC`, which must never touch a database.
`flock` and SQLite's own POSIX (`fcntl`) locks are independent on Linux and macOS; but closing
any descriptor of the file drops the process's POSIX locks, so release this lock only after the
store has closed its connections (as `bot.app.run_bot` does).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from intel.errors import ConfigError

__all__ = ["DatabaseLock"]


class DatabaseLock:
    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self.path = db_path.resolve()  # the file the lock is on, for messages
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            # O_CREAT: an empty file is a valid empty SQLite database; flock needs no write access.
            fd = os.open(self._db_path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"storage.db_path {self._db_path}: cannot open it: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"storage.db_path {self._db_path}: another bot is already running on this "
                f"database ({self.path}); stop it first or give this one its own --db"
            ) from None
        self._fd = fd

    def held(self) -> bool:
        """Whether a bot holds this database now (for `status`, with no connection of its own
        open: closing the probe's descriptor would drop this process's SQLite locks). Never
        creates the file; the probe's shared lock lasts a moment, and a bot starting in that
        moment is refused as a second."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing the descriptor releases the probe's shared lock
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
