"""Logging through structlog: readable in a terminal, JSON in production; secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

__all__ = ["Redactor", "configure_logging"]


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
    """Configure structlog and the standard library's logging once, at the composition root.

    Both end in the same processors: the redactor, then one renderer. Standard-library records
    (APScheduler, aiosqlite, HTTP clients) go through structlog's `ProcessorFormatter`, so a
    token inside a library's URL never reaches the log either.
    """
    output = stream or sys.stderr
    numeric_level = logging.getLevelName(level.upper())
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    redactor = Redactor(secrets)
    structlog.configure(
        processors=[*shared, redactor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(output),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redactor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)


def _add_logger_name(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """The library's logger under `logger_name`, the key these log lines have always carried."""
    event["logger_name"] = event["_record"].name
    return event
