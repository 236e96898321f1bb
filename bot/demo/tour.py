"""`mianzi demo`: a sample program in a local SQLite file and a chat with it in the terminal.

The demo keeps its own clock: `/tick 7d` (as the channel manager) moves it forward and runs the
scheduler's jobs for every day passed, so a newcomer can watch a period close, the winners being
announced and the private results arriving — the same jobs `mianzi serve` runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from bot.channels.console import converse
from bot.context import engine_for
from bot.demo.sample import DEMO_ADMIN, DEMO_CAPTAIN, DEMO_DEALER, build
from handlers.types import ChatConfig
from messages.render import t
from models import leases as outbox  # claim, mark, renew: the outbox's leases
from models.contests import partner_by_code
from models.db import session_scope
from models.identities import new_invite
from models.values import as_utc, utcnow, zone
from scheduler import jobs

ROLES = {"dealer": DEMO_DEALER, "captain": DEMO_CAPTAIN, "admin": DEMO_ADMIN}
TOUR = [
    ("dealer", "帮助"), ("dealer", "排行"), ("dealer", "/lang en"), ("dealer", "/rank"), ("dealer", "/lang zh"),
    ("dealer", "团队"), ("captain", "团队"), ("dealer", "我的"), ("dealer", "比赛"), ("admin", "排行 2"),
    ("admin", "/team"), ("dealer", "荣誉"), ("dealer", "你好"), ("admin", "/tick {days}d"), ("dealer", "荣誉"),
]
_TICK = re.compile(r"^/tick\s+(\d+)\s*([dh])$")


@dataclass
class Demo:
    engine: Engine
    config: ChatConfig
    locale: str
    now: datetime = field(default_factory=utcnow)

    def say(self, role: str, text: str) -> str:
        return converse(self.engine, f"demo-{role}", text, self.config, self.now)

    def tick(self, amount: int, unit: str) -> list[tuple[str, str]]:
        """Move the clock forward, running the scheduler's jobs at each step; returns the pushes
        that reached the demo's own accounts as (role, text)."""
        end = self.now + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
        step = timedelta(hours=1) if unit == "h" else timedelta(hours=6)
        tz = zone(self.config.timezone)
        while self.now < end:
            before = self.now
            self.now = min(self.now + step, end)
            jobs.tick(self.engine, self.now, self.config.default_locale)
            if _crossed_monday_9(before, self.now, tz):
                jobs.weekly_standings(self.engine, self.now)
        return self.deliver()

    def deliver(self) -> list[tuple[str, str]]:
        """The console's delivery worker: take what is due for terminal accounts and show it."""
        with self.engine.begin() as conn:
            rows = outbox.claim(conn, "demo", 10_000, timedelta(minutes=5), now=self.now, platforms=["console"])
            outbox.mark(conn, [r.id for r in rows], "demo", now=self.now, status="sent", sent_at=self.now)
        return [(r.chat_ref.removeprefix("demo-"), r.payload.get("text") or r.payload.get("caption", ""))
                for r in rows]


def _crossed_monday_9(before: datetime, after: datetime, tz) -> bool:  # type: ignore[no-untyped-def]
    local = as_utc(before).astimezone(tz)
    day = local.date()
    while datetime.combine(day, datetime.min.time(), tzinfo=tz) <= as_utc(after).astimezone(tz):
        nine = datetime.combine(day, datetime.min.time(), tzinfo=tz).replace(hour=9)
        if day.weekday() == 0 and local < nine <= as_utc(after).astimezone(tz):
            return True
        day += timedelta(days=1)
    return False


def prepare(path: Path, timezone: str, locale: str) -> Demo:
    """A fresh sample program at `path`, with one console account bound per role via real invites."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = engine_for(f"sqlite:///{path}")
    demo = Demo(engine, ChatConfig(timezone=timezone, default_locale=locale), locale)
    with session_scope(engine) as session:
        build(session, zone(timezone), now=demo.now)
        codes = {}
        for role, code in ROLES.items():
            partner = partner_by_code(session, code)
            codes[role] = new_invite(session, partner, now=demo.now).code
    for role, invite in codes.items():
        demo.say(role, f"绑定 {invite}")
    demo.deliver()  # nothing is due yet; clears anything the sample's own history queued
    return demo


def days_past_month_end(demo: Demo) -> int:
    """Whole days from the demo's clock to the morning after the running month ends, so the tour
    shows a close and its announcements whatever today's date is."""
    local = demo.now.astimezone(zone(demo.config.timezone)).date()
    next_month = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
    return (next_month - local).days + 1


def run(path: Path, timezone: str, locale: str, interactive: bool | None = None,
        ask: Callable[[str], str] = input) -> int:
    console = Console(highlight=False, soft_wrap=True)
    demo = prepare(path, timezone, locale)
    console.print(t("demo.intro", locale, path=str(path)), markup=False)
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        days = days_past_month_end(demo)
        for role, step in TOUR:
            text = step.format(days=days)
            console.print(f"\n[{t('demo.role_' + role, locale)}] > {text}", markup=False)
            console.print(_answer(demo, role, text), markup=False)
        console.print("\n" + t("demo.tour_done", locale), markup=False)
        return 0
    role = "dealer"
    console.print(t("demo.how", locale), markup=False)
    while True:
        try:
            text = ask(f"\n[{t('demo.role_' + role, locale)}] > ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return 0
        text = text.strip()
        if text in ("/quit", "/exit", "退出"):
            return 0
        if text.startswith("/as"):
            wanted = text[3:].strip()
            if wanted in ROLES:
                role = wanted
                console.print(t("demo.now_role", locale, role=t("demo.role_" + role, locale)), markup=False)
            else:
                console.print(t("demo.as_usage", locale), markup=False)
            continue
        console.print(_answer(demo, role, text), markup=False)


def _answer(demo: Demo, role: str, text: str) -> str:
    """A chat answer, or for `/tick` the pushes that arrived while time passed."""
    if not text.startswith("/tick"):
        return demo.say(role, text)
    if role != "admin":
        return t("demo.tick_admin_only", demo.locale)
    match = _TICK.match(text)
    if match is None:
        return t("demo.tick_usage", demo.locale)
    pushes = demo.tick(int(match.group(1)), match.group(2))
    local = as_utc(demo.now).astimezone(zone(demo.config.timezone))
    lines = [t("demo.ticked", demo.locale, now=local.strftime("%Y-%m-%d %H:%M"), count=len(pushes))]
    for who, body in pushes:
        lines.append("\n" + t("demo.push_to", demo.locale, role=t("demo.role_" + who, demo.locale)) + "\n" + body)
    return "\n".join(lines)
