"""The cycle scheduler: APScheduler 3.x on the running asyncio loop, one interval job.

A cycle that overruns is never started twice (max_instances=1) and late runs collapse into one
(coalesce=True). The last cycle's wall-clock time lives in the store, so after downtime an overdue
cycle runs once at start: not a burst, and not never. Otherwise the next run keeps the rhythm of
the last one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.scheduling.cycle import LAST_CYCLE_AT
from bot.storage.base import MetaStore
from intel.timeutil import iso, parse_time, utcnow

__all__ = ["CycleScheduler", "real_interval_s"]

JOB_ID = "signal-cycle"
STOP_GRACE_S = 30.0

log = structlog.get_logger(__name__)


def real_interval_s(interval_minutes: int, speed: float) -> float:
    """Real seconds between cycles: the market interval divided by the demo clock's speed."""
    return interval_minutes * 60.0 / max(speed, 1e-9)


class CycleScheduler:
    def __init__(
        self,
        run_cycle: Callable[[], Awaitable[object]],
        store: MetaStore,
        interval_s: float,
        wall_clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._run_cycle = run_cycle
        self._store = store
        self._interval_s = interval_s
        self._wall_clock = wall_clock
        self._scheduler: AsyncIOScheduler | None = None
        self._in_flight: asyncio.Task[object] | None = None
        self._stopping = False

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def next_run_at(self) -> datetime | None:
        """When the next cycle starts (wall clock), for `status`; None when not running."""
        job = self._scheduler.get_job(JOB_ID) if self._scheduler is not None else None
        return job.next_run_time if job is not None else None

    async def first_run_at(self) -> datetime:
        """Now if the stored last cycle is absent or over one interval old, else last + interval."""
        now = self._wall_clock()
        stored = await self._store.get_meta(LAST_CYCLE_AT)
        if stored is None:
            return now
        due = parse_time(stored) + timedelta(seconds=self._interval_s)
        return now if due <= now else due

    async def start(self) -> None:
        first = await self.first_run_at()
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=self._interval_s, start_date=first, timezone="UTC"),
            id=JOB_ID,
            name="signal cycle",
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            # A late run (blocked loop, slow cycle) still runs once, up to one interval late.
            misfire_grace_time=max(1, round(self._interval_s)),
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler_started", interval_s=self._interval_s, first_run_at=iso(first))

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop scheduling; a cycle in flight may finish (it records in one transaction anyway)."""
        self._stopping = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()
        task = self._in_flight
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
            except TimeoutError:
                log.warning("cycle_cancelled_at_stop", grace_s=grace_s)
                task.cancel()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # APScheduler 3 shuts down through a loop callback
        self._scheduler = None

    async def _job(self) -> None:
        if self._stopping:
            return
        self._in_flight = asyncio.current_task()
        try:
            await self._run_cycle()
        except Exception:  # the scheduler would log it too, but without our redacting logger
            log.exception("cycle_failed")
        finally:
            self._in_flight = None
