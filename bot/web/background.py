"""What `mianzi serve` runs besides answering requests: the delivery worker and the scheduler."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine

from bot.channels.registry import ceilings, push_senders
from bot.delivery.worker import DeliveryWorker, release
from bot.settings import Settings
from handlers.announcements import ImageConfig
from scheduler.runner import SchedulerRunner

log = logging.getLogger("mianzi.serve")


class Background:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
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
                                         lease=timedelta(seconds=self.settings.delivery_lease_seconds))
            self._task = asyncio.create_task(self.worker.run(self._stop), name="delivery-worker")
            log.info("delivery worker %s on: %s", self.worker.worker_id, ", ".join(senders))
        else:
            log.info("no push channel configured: pushes wait in the outbox")
        images = await asyncio.to_thread(ImageConfig.configured, self.settings.media_dir, self.settings.cjk_font)
        self.runner = SchedulerRunner(self.engine, self.settings.timezone, self.settings.weekly_cron,
                                      self.settings.scheduler_tick_seconds, self.settings.locale,
                                      images=images,
                                      points_expiry_months=self.settings.points_expiry_months)
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

    def scheduler_running(self) -> bool:
        return self.runner is not None and self.runner.running

    def scheduler_leading(self) -> bool:
        """Whether this process is the one running the jobs (PostgreSQL: the advisory lock holder)."""
        return self.scheduler_running() and self.runner is not None and self.runner.leadership.holds()

    def delivering(self) -> bool:
        return self._task is not None and not self._task.done()
