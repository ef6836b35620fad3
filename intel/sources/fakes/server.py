"""Where every fake server of the tests and benchmarks listens: 127.0.0.1, at a free port."""

from __future__ import annotations

from aiohttp import web

__all__ = ["serve_on_loopback"]


async def serve_on_loopback(
    app: web.Application, *, shutdown_timeout_s: float = 60.0
) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 (never another address: see the network rule in README) at a port
    the OS picks; returns the runner (`await runner.cleanup()` stops it) and the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]
