"""Logging through structlog: readable in a terminal, JSON in production; secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["Redactor", "StructlogHandler", "configure_logging"]


class Redactor:
    """A structlog processor that replaces every known secret value with `<redacted>`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        if not self._secrets:
            return event
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = self.redact(value)
            elif value is not None and not isinstance(value, int | float | bool):
                event[key] = self.redact(repr(value))
        return event


def configure_logging(
    *,
    json_output: bool,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog once, at the composition root."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Redactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(level)


def _route_stdlib_logging(level: str) -> None:
    """Send standard-library records (APScheduler, aiosqlite, HTTP clients) through structlog,
    and so through the Redactor: a token inside a library's URL never reaches the log."""
    root = logging.getLogger()
    root.handlers[:] = [StructlogHandler()]
    root.setLevel(logging.getLevelName(level.upper()))


class StructlogHandler(logging.Handler):
    """Forwards standard-library log records to structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = structlog.get_logger(record.name)
            method = getattr(logger, record.levelname.lower(), logger.info)
            if record.exc_info:
                method(record.getMessage(), logger_name=record.name, exc_info=record.exc_info)
            else:
                method(record.getMessage(), logger_name=record.name)
        except Exception:
            self.handleError(record)
