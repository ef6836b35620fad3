"""Where the replay data shipped inside the package lives, and small readers shared by sources."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DEFAULT_REPLAY_DIR", "open_text", "read_csv_rows"]

DEFAULT_REPLAY_DIR = Path(__file__).resolve().parent.parent / "data" / "replay"


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzipped text file."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def read_csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with open_text(path) as handle:
        yield from csv.DictReader(handle)
