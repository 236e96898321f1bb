"""APScheduler inside `mianzi serve`, derived from the database (DESIGN §3 rule 4, §5).

Exactly one process runs the jobs: on PostgreSQL the leader of the role `scheduler`
(`models.leadership`: an advisory lock; another process takes over when its connection goes away);
on SQLite a single server process is assumed. Jobs are
derived from the contests at start-up and on every tick, so a contest created from the command
line, or a period that ended while the server was down, is handled without anyone pressing a button.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from handlers.announcements import ImageConfig
from models import contests
from models.contests import settles_at
from models.db import session_scope
from models.leadership import SCHEDULER, Leadership
from models.values import utcnow, zone
from scheduler import jobs

log = logging.getLogger("mianzi.scheduler")

class SchedulerRunner:
    def __init__(self, engine: Engine, timezone: str, weekly_cron: str = "0 9 * * mon", tick_seconds: int = 30,
                 group_locale: str = "zh", clock: Callable[[], datetime] = utcnow,
                 images: ImageConfig | None = None, points_expiry_months: int = 0,
                 extra_jobs: list[Callable[[Engine, datetime], object]] | None = None,
                 leadership: Leadership | None = None) -> None:
        self.engine, self.timezone, self.clock = engine, timezone, clock
        self.group_locale, self.images = group_locale, images
        self.points_expiry_months = points_expiry_months
        self.weekly_cron, self.tick_seconds = weekly_cron, tick_seconds
        self.extra_jobs = extra_jobs or []
        # the process's own (`mianzi serve` shares one with the delivery worker), or one of this runner's
        self._owns_leadership = leadership is None
        self.leadership = leadership if leadership is not None else Leadership(engine)
        self.scheduler = BackgroundScheduler(timezone=zone(timezone), job_defaults={
            "misfire_grace_time": 3600, "coalesce": True, "max_instances": 1})
        self._lock = threading.Lock()
        self._stopping = False
        self.running = False

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the APScheduler; the jobs only act while this process is the leader."""
        self.scheduler.add_job(self.tick, "interval", seconds=self.tick_seconds, id="tick", replace_existing=True,
                               next_run_time=datetime.now(zone(self.timezone)))
        self.scheduler.add_job(self.weekly, CronTrigger.from_crontab(self.weekly_cron, timezone=zone(self.timezone)),
                               id="weekly", replace_existing=True)
        self.scheduler.add_job(self.daily, CronTrigger(hour=2, minute=0, timezone=zone(self.timezone)), id="daily",
                               replace_existing=True)
        self.scheduler.start()
        self.running = True

    def stop(self) -> None:
        """Let a running job finish, then shut down.

        APScheduler 3's `shutdown(wait=True)` holds its job-store lock while waiting for running
        jobs, and our jobs touch the job store (`reconcile`): waiting on our own lock instead avoids
        that deadlock.
        """
        self._stopping = True
        if self.running:
            self.scheduler.pause()
            with self._lock:
                self.scheduler.shutdown(wait=False)
            self.running = False
        if self._owns_leadership:
            self.leadership.close()
        else:
            self.leadership.resign(SCHEDULER)

    def leads(self) -> bool:
        """Whether this process may run the jobs now (an election: PostgreSQL's lock taken or still held)."""
        return SCHEDULER in self.leadership.elect([SCHEDULER])

    # --- jobs ------------------------------------------------------------------------------------

    def tick(self) -> dict[str, int] | None:
        """Catch up with everything due, then (re)derive the exact-time jobs from the database."""
        with self._lock:
            if self._stopping or not self.leads():
                return None
            now = self.clock()
            result = jobs.tick(self.engine, now, self.group_locale, self.images)
            for job in self.extra_jobs:
                job(self.engine, now)
            self.reconcile(now)
            return result

    def weekly(self) -> int | None:
        with self._lock:
            if self._stopping or not self.leads():
                return None
            return jobs.weekly_standings(self.engine, self.clock())

    def daily(self) -> int | None:
        with self._lock:
            if self._stopping or not self.leads():
                return None
            return jobs.daily(self.engine, self.clock(), self.points_expiry_months, self.timezone)

    def reconcile(self, now: datetime) -> None:
        """A date job per open contest at its settle time, and one 48 hours before its end."""
        with session_scope(self.engine) as session:
            rows = contests.unclosed(session)
            wanted = {}
            for contest in rows:
                wanted[f"close:{contest.id}"] = settles_at(contest)
                final = contest.end_at - timedelta(hours=48)
                if final > now:
                    wanted[f"final48:{contest.id}"] = final
        present = {job.id for job in self.scheduler.get_jobs() if job.id.startswith(("close:", "final48:"))}
        for job_id in present - set(wanted):
            self.scheduler.remove_job(job_id)
        for job_id, when in wanted.items():
            run_at = max(when, now)
            existing = self.scheduler.get_job(job_id)
            if existing is None or existing.next_run_time != run_at:
                self.scheduler.add_job(self.tick, "date", run_date=run_at, id=job_id, replace_existing=True)

    def next_run(self, job_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id)
        return job.next_run_time if job else None
