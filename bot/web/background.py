"""What `mianzi serve` runs besides answering requests: the delivery worker and the scheduler.

Both share the process's one `Leadership` (`models.leadership`): on PostgreSQL, with several serve
processes, one of them runs the scheduler's jobs and one delivers for each channel; the first
election is held before the server answers, so `/healthz` tells from the start who does what.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine

from bot.channels.registry import ceilings, push_senders
from bot.delivery.worker import DeliveryWorker, release
from bot.settings import Settings
from handlers.announcements import ImageConfig
from models.leadership import SCHEDULER, Leadership
from scheduler.runner import SchedulerRunner

log = logging.getLogger("mianzi.serve")


class Background:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self.leadership = Leadership(engine)
        self.worker: DeliveryWorker | None = None
        self.runner: SchedulerRunner | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        senders = push_senders(self.settings, self.engine)
        if senders:
            self.worker = DeliveryWorker(self.engine, senders, ceilings(self.settings),
                                         concurrency=self.settings.delivery_concurrency,
                                         max_attempts=self.settings.delivery_max_attempts,
                                         lease=timedelta(seconds=self.settings.delivery_lease_seconds),
                                         leadership=self.leadership,
                                         election_every=self.settings.delivery_election_seconds)
            await asyncio.to_thread(self.worker.elect)
            self._task = asyncio.create_task(self.worker.run(self._stop), name="delivery-worker")
            log.info("delivery worker %s on: %s; delivering for: %s", self.worker.worker_id, ", ".join(senders),
                     ", ".join(sorted(self.worker.leading)) or "none yet (another process leads)")
        else:
            log.info("no push channel configured: pushes wait in the outbox")
        images = await asyncio.to_thread(ImageConfig.configured, self.settings.media_dir, self.settings.cjk_font)
        self.runner = SchedulerRunner(self.engine, self.settings.timezone, self.settings.weekly_cron,
                                      self.settings.scheduler_tick_seconds, self.settings.locale,
                                      images=images,
                                      points_expiry_months=self.settings.points_expiry_months,
                                      leadership=self.leadership)
        await asyncio.to_thread(self.runner.start)

    async def stop(self) -> None:
        if self.runner is not None:
            await asyncio.to_thread(self.runner.stop)
        self._stop.set()
        if self._task is not None:
            await self._task
        if self.worker is not None:
            await asyncio.to_thread(release, self.engine, self.worker.worker_id)
            await self.worker.close()
        # last: the rows are recorded or given back, so whoever leads next starts from where this one ended
        await asyncio.to_thread(self.leadership.close)

    def scheduler_running(self) -> bool:
        return self.runner is not None and self.runner.running

    def scheduler_leading(self) -> bool:
        """Whether this process is the one running the jobs (PostgreSQL: the advisory lock holder)."""
        return self.scheduler_running() and self.leadership.leads(SCHEDULER)

    def delivering(self) -> bool:
        return self._task is not None and not self._task.done()

    def delivering_for(self) -> list[str]:
        """The channels this process delivers for, as of the worker's last election."""
        return sorted(self.worker.leading) if self.worker is not None and self.delivering() else []
