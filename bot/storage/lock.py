"""One running bot per database: an exclusive lock file held for as long as `run` runs.

The alert plan of a cycle is read before its recording transaction, so two bots on one database
could both announce the same change; the lock makes a second one refuse to start instead. The OS
releases the lock when the process ends, however it ends (a SIGKILL included).
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
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"storage.db_path {self._db_path}: cannot create {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"storage.db_path {self._db_path}: another bot is already running on this "
                "database; stop it first or give this one its own --db"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def held(self) -> bool:
        """Whether a bot holds this database now. Never creates the lock file; the probe's own
        shared lock lasts a moment, and a bot starting in that moment is refused as a second."""
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
