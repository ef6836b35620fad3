"""Where the replay data shipped inside the package lives, and small readers shared by sources.

Every reader here follows the record pattern of `intel.sources.base`: a record that cannot be
read is skipped and counted in a `BadRecords`, never allowed to fail the whole file.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import structlog

__all__ = [
    "DEFAULT_REPLAY_DIR",
    "RECORD_ERRORS",
    "BadRecords",
    "open_text",
    "read_csv_records",
    "skipped_notes",
]

DEFAULT_REPLAY_DIR = Path(__file__).resolve().parent.parent / "data" / "replay"

log = structlog.get_logger(__name__)
T = TypeVar("T")

# What a parser raises on a malformed record: a missing field, a blank or non-numeric value, a
# short JSON array. Anything else is a bug in the parser and must not be hidden as "bad data".
RECORD_ERRORS = (ValueError, KeyError, TypeError, IndexError)


class BadRecords:
    """The records of one file that were skipped: how many, and the first one's line and error.

    `unit` names what the position counts: a file's lines, or a response's entries.
    """

    def __init__(self, file: str, unit: str = "line") -> None:
        self.file = file
        self.unit = unit
        self.count = 0
        self.first_line: int | None = None
        self.first_error = ""

    def skip(self, line: int, error: Exception) -> None:
        self.count += 1
        if self.first_line is None:
            self.first_line, self.first_error = line, _describe(error)

    def note(self) -> str | None:
        """One line for status and the log, or None when every record was read."""
        if not self.count:
            return None
        records = "record" if self.count == 1 else "records"
        return (
            f"{self.file}: skipped {self.count} bad {records} "
            f"(first at {self.unit} {self.first_line}: {self.first_error})"
        )

    def log(self) -> None:
        if self.count:
            log.warning(
                "replay_records_skipped",
                file=self.file,
                skipped=self.count,
                first_line=self.first_line,
                error=self.first_error,
            )


def skipped_notes(*files: BadRecords | None) -> tuple[str, ...]:
    """The notes of the files that had bad records (None: a file not read yet)."""
    return tuple(note for bad in files if bad is not None and (note := bad.note()))


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzipped text file."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Each data row with the file line it starts on (a quoted field may span lines)."""
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        _ = reader.fieldnames  # reads the header
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1


def read_csv_records(
    path: Path, parse: Callable[[dict[str, str]], T]
) -> tuple[list[T], BadRecords]:
    """Every row `parse` accepts, in file order, and the rows it rejected (logged once)."""
    records: list[T] = []
    bad = BadRecords(path.name)
    for line, row in _csv_rows(path):
        try:
            if None in row or None in row.values():  # csv's marks for extra / missing fields
                raise ValueError("wrong number of fields")
            records.append(parse(row))
        except RECORD_ERRORS as exc:
            bad.skip(line, exc)
    bad.log()
    return records, bad


def _describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
