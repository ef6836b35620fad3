"""The console transport: a terminal chat on stdin/stdout with the same commands as the chats.

Input is read by a daemon thread (a blocked `readline` must never hold up shutdown) and handed
to the event loop; commands run one at a time, in the order typed. Charts are saved to files whose
paths are printed; only the newest `max_chart_files` the console wrote are kept. End of input
closes the chat and, through `on_eof`, stops the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import structlog

from bot.commands.alerts import EXAMPLE_THRESHOLD
from bot.commands.base import Reply, Request
from bot.commands.help import CHATS_NOTE
from bot.commands.router import parse_command_line
from bot.render.text import format_moment
from bot.transports.base import CommandHandler, OutMessage
from intel.errors import UserInputError
from intel.models import Signal

__all__ = ["CONSOLE", "ConsoleTransport", "greeting_text"]

CONSOLE = "console"  # the console's transport name, user id and chat id alike
RULE = "─" * 60

log = structlog.get_logger(__name__)


class ConsoleTransport:
    """`Transport` on two text streams; the console user is an admin of their own chat."""

    name = CONSOLE

    def __init__(
        self,
        input: TextIO,
        output: TextIO,
        chart_dir: Path,
        *,
        on_eof: Callable[[], None] | None = None,
        max_chart_files: int = 100,
    ) -> None:
        self._input = input
        self._output = output
        self._chart_dir = chart_dir
        self._max_chart_files = max_chart_files
        self._on_eof = on_eof
        self._lines: asyncio.Queue[str | UnicodeDecodeError | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._prompt = "> " if _is_tty(input) else ""

    async def start(self, handler: CommandHandler) -> None:
        loop = asyncio.get_running_loop()
        reader = threading.Thread(
            target=self._read_lines, args=(loop,), name="console-stdin", daemon=True
        )
        reader.start()
        self._task = asyncio.create_task(self._serve(handler), name="console-chat")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Nothing to release: the streams belong to whoever passed them in."""

    async def send(self, chat_id: str, message: OutMessage) -> None:
        """Show an alert or DM at once, under a banner that says which and why."""
        banner = "DM" if message.extra.get("kind") == "dm" else "ALERT"
        self._write(f"\n{RULE}\n{banner} · {message.intro}\n{RULE}\n{message.reply.text}\n")
        self._show_chart(message.reply)
        self._write(f"{RULE}\n{self._prompt}")

    def notice(self, text: str) -> None:
        """A line from the bot itself (greeting, the demo clock stopping)."""
        self._write(f"{text}\n")

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs in a daemon thread: every line (or why it is unreadable), then None at the end."""
        try:
            for line in _input_lines(self._input):
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
        except (OSError, ValueError, RuntimeError) as exc:  # closed stream: treat as end of input
            log.debug("console_input_closed", error=str(exc))
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed first: nobody is listening
                loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def _serve(self, handler: CommandHandler) -> None:
        self._write(self._prompt)
        while (line := await self._lines.get()) is not None:
            if isinstance(line, UnicodeDecodeError):
                self._write(f"error: {_unreadable(line)}\n")
            elif line.strip():
                await self._answer(handler, line.strip())
            self._write(self._prompt)
        self._write("\nEnd of input — stopping the bot.\n")
        if self._on_eof is not None:
            self._on_eof()

    async def _answer(self, handler: CommandHandler, line: str) -> None:
        try:
            command, args = parse_command_line(line)
        except UserInputError as exc:
            self._write(f"error: {exc}\n")
            return
        request = Request(
            transport=CONSOLE,
            user_id=CONSOLE,
            chat_id=CONSOLE,
            dm_chat_id=CONSOLE,
            command=command,
            args=args,
            is_private=True,
            is_admin=True,
        )
        try:
            reply = await handler(request)
        except Exception:  # the router answers every error; this is a last guard
            log.exception("console_handler_failed", command=command)
            self._write("error: internal error — please try again\n")
            return
        self._show(reply)

    def _show(self, reply: Reply) -> None:
        prefix = "error: " if reply.is_error and not reply.text.startswith("error") else ""
        self._write(f"{prefix}{reply.text}\n")
        self._show_chart(reply)
        if reply.extra.get("next"):
            self._write(f"Next: {reply.extra['next']}\n")

    def _show_chart(self, reply: Reply) -> None:
        if reply.chart_png is None:
            return
        path = self._chart_dir / _chart_name(reply.signal)
        try:
            self._chart_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(reply.chart_png)
        except OSError as exc:
            self._write(f"(chart not saved: {exc.strerror or exc})\n")
            return
        self._write(f"Chart saved to {path}\n")
        _keep_newest(path, self._max_chart_files)

    def _write(self, text: str) -> None:
        if not text:
            return
        try:
            self._output.write(text)
            self._output.flush()
        except (OSError, ValueError):  # the terminal went away; nothing left to tell
            log.debug("console_output_closed")


def greeting_text(market_now: datetime, clock: str, cycle_every: str, *, live: bool = False) -> str:
    """What a newcomer sees first: what this is, where its data comes from, what to type."""
    data = "live market data" if live else "recorded market data"
    return "\n".join(
        [
            "SignalDesk — crypto signals from whale flows, order books and sentiment.",
            f"Running on {data}; market time is {format_moment(market_now)} ({clock}).",
            f"A signal cycle runs every {cycle_every}; alerts and DMs appear here as they happen.",
            "Type `help` to see every command; try `signal btc`, `subscribe` for channel alerts, "
            f"`watch add eth` then `alerts {EXAMPLE_THRESHOLD}` for DMs. Ctrl-D or Ctrl-C quits.",
            CHATS_NOTE,
        ]
    )


def _chart_name(signal: Signal | None) -> str:
    if signal is None:
        return "chart.png"
    symbol = signal.symbol.replace("/", "")
    return f"{symbol}_{signal.as_of:%Y%m%dT%H%M%SZ}.png"


# The names `_chart_name` gives: other files a user keeps in the folder are never deleted.
_CHART_NAME = re.compile(r"(chart|[A-Z0-9]+_\d{8}T\d{6}Z)\.png")


def _keep_newest(written: Path, max_files: int) -> None:
    """Keep `written` and the newest of the other charts this console wrote, `max_files` in
    all. `written` is exempt by name: files saved within one clock tick share an mtime."""
    try:
        others = [
            (entry.stat().st_mtime_ns, entry.name, entry)
            for entry in written.parent.iterdir()
            if entry != written and entry.is_file() and _CHART_NAME.fullmatch(entry.name)
        ]
        for *_, old in sorted(others, reverse=True)[max_files - 1 :]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a chart we could not delete is left; the next write tries again
        log.warning("console_chart_prune_failed", chart=str(written), reason=str(exc))


def _input_lines(stream: TextIO) -> Iterator[str | UnicodeDecodeError]:
    """Each line typed, decoded on its own: an undecodable line is reported, not the end.

    A text stream decodes a whole buffered chunk at once, so one bad byte would fail (and lose)
    every line read with it; reading the bytes underneath and decoding line by line keeps the rest.
    """
    raw: BinaryIO | None = getattr(stream, "buffer", None)
    if raw is None:  # already text (io.StringIO): nothing to decode
        yield from iter(stream.readline, "")
        return
    encoding = stream.encoding or "utf-8"
    for data in iter(raw.readline, b""):
        try:
            yield data.decode(encoding)
        except UnicodeDecodeError as exc:
            yield exc


def _unreadable(error: UnicodeDecodeError) -> str:
    byte = error.object[error.start : error.start + 1].hex()
    return (
        f"that line is not valid {error.encoding} text (byte 0x{byte} at position "
        f"{error.start + 1}); please type it again"
    )


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
