"""The scheduler: contests close at their moment in Asia/Shanghai, announce once, nudge on time."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.channels.telegram.push import TelegramPush
from bot.delivery.limiter import Ceilings
from bot.delivery.worker import DeliveryWorker
from models.db import session_scope
from models.leadership import SCHEDULER, Leadership, delivery_role
from models.tables import Contest, Outbox, Partner
from scheduler import jobs
from scheduler.runner import SchedulerRunner
from tests.support import builders as b
from tests.support.builders import END, MID, SH, program
from tests.support.delivery import drain
from tests.support.fake_flood import FloodFake

AFTER = END.astimezone(UTC) + timedelta(hours=2)


def outbox_rows(engine: Engine, surveys: bool = False) -> list[Outbox]:
    """Queued pushes; the satisfaction surveys queued at close are left out unless asked for."""
    with Session(engine) as s:
        rows = list(s.execute(select(Outbox).order_by(Outbox.id)).scalars())
    return [r for r in rows if surveys or "feedback" not in r.key]


def test_closes_at_the_configured_moment_and_announces_once(engine: Engine) -> None:
    cid = program(engine)
    assert jobs.close_due(engine, (END - timedelta(seconds=1)).astimezone(UTC)) == []
    closed = jobs.close_due(engine, END.astimezone(UTC))
    assert [c.contest_id for c in closed] == [cid]
    rows = outbox_rows(engine)
    assert len(rows) == 15  # 14 participants and the linked group
    assert jobs.close_due(engine, END.astimezone(UTC) + timedelta(minutes=5)) == []
    assert len(outbox_rows(engine)) == 15

    group = next(r for r in rows if r.is_group)
    public = group.payload["text"]
    assert "👑 冠军：伙伴00" in public and "奖励 700 积分" in public
    for shown in ("伙伴00", "伙伴01", "伙伴02", "伙伴03", "伙伴04"):
        assert shown in public
    for hidden in ("伙伴05", "伙伴09", "伙伴13"):
        assert hidden not in public  # nobody below the public top 5 is named
    assert "4. 伙伴03" in public and "4. 伙伴04" in public  # a tie is a shared place
    assert "6. " not in public
    assert "⭐ 5 位伙伴达到金牌" in public

    private = {r.partner_id: r.payload["text"] for r in rows if not r.is_group}
    with Session(engine) as s:
        ids = {p.code: p.id for p in s.execute(select(Partner)).scalars()}
    last = private[ids["P13"]]
    assert "仅您可见" in last and "第 14 名" in last and "伙伴12" not in last
    assert "距第 13 名只差 ¥5,000.00" in last
    english = private[ids["P05"]]
    assert "Your result (only you can see this)" in english and "#6" in english
    assert "Champion: 伙伴00" in english


def test_announcements_reach_telegram_once(engine: Engine) -> None:
    program(engine)
    jobs.close_due(engine, END.astimezone(UTC))
    with FloodFake(rate=50) as fake:
        drain(DeliveryWorker(engine, {"telegram": TelegramPush("1:T", fake.base_url)},
                             {"telegram": Ceilings(40, 0.0, 20)}, clock=lambda: AFTER))
        jobs.close_due(engine, END.astimezone(UTC) + timedelta(hours=1))  # a later tick: nothing new
        asyncio.run(_drain_again(engine, fake))
        from collections import Counter

        per_chat = Counter(chat for chat, text, _t in fake.delivered if text.startswith("🎉"))
        surveys = Counter(chat for chat, text, _t in fake.delivered if not text.startswith("🎉"))
    assert len(per_chat) == 15 and set(per_chat.values()) == {1}  # the announcement, once everywhere
    assert per_chat["-100777"] == 1
    assert len(surveys) == 14 and set(surveys.values()) == {1}  # and one survey per participant


async def _drain_again(engine: Engine, fake: FloodFake) -> None:
    worker = DeliveryWorker(engine, {"telegram": TelegramPush("1:T", fake.base_url)},
                            {"telegram": Ceilings(40, 0.0, 20)}, clock=lambda: AFTER)
    try:
        await worker.drain()
    finally:
        await worker.close()


def test_runner_derives_jobs_from_the_database(engine: Engine) -> None:
    cid = program(engine, grace_seconds=6 * 3600)
    runner = SchedulerRunner(engine, "Asia/Shanghai", clock=lambda: MID.astimezone(UTC), tick_seconds=3600)
    runner.start()
    try:
        runner.reconcile(MID.astimezone(UTC))
        assert runner.next_run(f"close:{cid}") == END + timedelta(hours=6)
        assert runner.next_run(f"final48:{cid}") == END - timedelta(hours=48)
        weekly = runner.next_run("weekly")
        assert weekly is not None and weekly.weekday() == 0 and (weekly.hour, weekly.minute) == (9, 0)
        assert str(weekly.tzinfo) == "Asia/Shanghai"
    finally:
        runner.stop()


def test_restart_after_the_end_closes_and_announces_once(engine: Engine) -> None:
    cid = program(engine, recur="monthly")
    later = (END + timedelta(days=2)).astimezone(UTC)
    for _restart in range(2):  # the server was down at the end; it starts twice
        runner = SchedulerRunner(engine, "Asia/Shanghai", clock=lambda: later, tick_seconds=3600)
        runner.tick()
        runner.stop()
    with Session(engine) as s:
        assert s.get(Contest, cid).closed_at is not None
        nxt = s.execute(select(Contest).where(Contest.previous_id == cid)).scalar_one()
        assert nxt.start_at == END.astimezone(UTC)
        results = s.execute(select(func.count()).select_from(Outbox).where(Outbox.kind == "result")).scalar_one()
        opened = s.execute(select(Outbox).where(Outbox.key.like(f"opened:{nxt.id}:%"))).scalars().all()
    assert results == 14
    assert len(opened) == 14 and "新一期比赛开始了" in opened[0].payload["text"]


def test_two_schedulers_announce_once(engine: Engine) -> None:
    program(engine)
    after = END.astimezone(UTC) + timedelta(minutes=1)
    runners = [SchedulerRunner(engine, "Asia/Shanghai", clock=lambda: after) for _ in range(2)]
    if engine.dialect.name == "postgresql":
        assert runners[0].leads() is True
        assert runners[1].leads() is False  # the lock is held: only one leader
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def run(r: SchedulerRunner) -> None:
        barrier.wait()
        try:
            outcomes.append(r.tick())
        except Exception as exc:  # SQLite may refuse a concurrent writer: it must not double-announce
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r in runners:
        r.stop()
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Outbox).where(Outbox.kind == "result")).scalar_one() == 14
    if engine.dialect.name == "postgresql":
        assert sum(1 for o in outcomes if o is None) == 1  # the follower did nothing
        later = SchedulerRunner(engine, "Asia/Shanghai", clock=lambda: after)
        assert later.leads() is True  # the leader stopped: another takes over
        later.stop()


def test_weekly_final_hours_and_overtaken(engine: Engine) -> None:
    cid = program(engine)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=SH).astimezone(UTC)
    assert jobs.weekly_standings(engine, monday) == 14
    assert jobs.weekly_standings(engine, monday + timedelta(hours=3)) == 0  # once a week
    weekly = [r for r in outbox_rows(engine) if r.key.startswith("weekly:")]
    assert any("本周战报" in r.payload["text"] and "第 14 名" in r.payload["text"] for r in weekly)

    assert jobs.refresh_and_nudge(engine, MID.astimezone(UTC)) == 0  # not the final 48 hours yet
    final = (END - timedelta(hours=47)).astimezone(UTC)
    assert jobs.refresh_and_nudge(engine, final) == 14
    assert jobs.refresh_and_nudge(engine, final + timedelta(hours=1)) == 0

    with session_scope(engine) as s:  # P09 and P10 jump ahead: P03 and P04 (tied 4th) fall to 6th
        b.sales(s, {"id": "j9", "partner": "P09", "occurred_at": "2026-11-29T10:00", "amount": "900000"},
                {"id": "j10", "partner": "P10", "occurred_at": "2026-11-29T10:00", "amount": "800000"})
    queued = jobs.refresh_and_nudge(engine, final + timedelta(hours=2))
    over = [r for r in outbox_rows(engine) if r.key.startswith(f"overtaken:{cid}")]
    with Session(engine) as s:
        gone = set(s.execute(select(Partner.id).where(Partner.code.in_(["P03", "P04"]))).scalars())
    assert queued == 2 and {r.partner_id for r in over} == gone
    assert "跌出了前 5 名" in over[0].payload["text"]


@pytest.mark.parametrize("when", ["2026-11-30T23:59:59", "2026-12-01T00:00:00"])
def test_the_last_minute_in_shanghai(engine: Engine, when: str) -> None:
    program(engine)
    moment = datetime.fromisoformat(when).replace(tzinfo=SH).astimezone(UTC)
    closed = jobs.close_due(engine, moment)
    assert bool(closed) == when.startswith("2026-12-01")


def test_a_runner_sharing_the_process_leadership_resigns_only_its_role(engine: Engine) -> None:
    shared = Leadership(engine)
    try:
        assert shared.elect([delivery_role("telegram")]) == {delivery_role("telegram")}
        runner = SchedulerRunner(engine, "Asia/Shanghai", leadership=shared)
        assert runner.leads() and shared.leads(SCHEDULER)
        runner.stop()
        assert shared.leads(delivery_role("telegram"))  # the delivery worker's role stays with the process
        if engine.dialect.name == "postgresql":
            assert not shared.leads(SCHEDULER)
            other = Leadership(engine)
            try:
                assert other.elect([SCHEDULER, delivery_role("telegram")]) == {SCHEDULER}
            finally:
                other.close()
    finally:
        shared.close()


def test_recognition_images_reach_telegram_as_photos(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    from handlers.announcements import ImageConfig
    from messages.images import find_cjk_font

    font = find_cjk_font(None)
    if font is None:
        pytest.skip("no CJK font on this machine (CI installs fonts-noto-cjk)")
    program(engine)
    jobs.close_due(engine, END.astimezone(UTC), images=ImageConfig(tmp_path, font))
    rows = outbox_rows(engine)
    images = [r for r in rows if r.payload.get("image")]
    assert {r.key.rsplit(":", 1)[-1] for r in images} == {"board", "certificate"}
    with FloodFake(rate=50) as fake:
        asyncio.run(_drain_again(engine, fake))
        photos = fake.photos
    assert len(photos) == 2 and {chat for chat, _ in photos} == {"-100777", next(
        r.chat_ref for r in images if r.key.endswith("certificate"))}
    for _chat, png in photos:
        picture = Image.open(io.BytesIO(png))
        assert picture.format == "PNG" and picture.width >= 1000
        extrema = picture.convert("L").getextrema()
        assert extrema[1] - extrema[0] > 100  # not blank: there is ink on the paper


def test_no_cjk_font_means_text_posts_only(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from handlers.announcements import ImageConfig
    from messages.images import has_cjk

    latin = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    if Path(latin).exists():
        assert has_cjk(latin) is False  # a font without Chinese is never used (no boxes)
    program(engine)
    jobs.close_due(engine, END.astimezone(UTC), images=ImageConfig(tmp_path, None))
    assert not [r for r in outbox_rows(engine) if r.payload.get("image")]
    assert len(outbox_rows(engine)) == 15


def test_tick_sends_training_reminders_and_contest_surveys(engine: Engine) -> None:
    """The scheduler runs the incentive jobs: training reminders, and a survey after a contest closes."""
    from models import trainings

    cid = program(engine, n=5)
    start = datetime(2026, 11, 25, 19, 0, tzinfo=SH)
    with session_scope(engine) as s:
        training = trainings.create(s, trainings.TrainingSpec("新品培训", start, 5400, "线上会议"), MID)
        partner = s.execute(select(Partner).where(Partner.code == "P01")).scalar_one()
        assert trainings.join(s, training.id, partner, MID)[0] == "joined"
    jobs.tick(engine, (start - timedelta(hours=23)).astimezone(UTC))
    jobs.tick(engine, (start - timedelta(minutes=50)).astimezone(UTC))
    jobs.tick(engine, (start - timedelta(minutes=40)).astimezone(UTC))  # nothing twice
    reminders = [r.key for r in outbox_rows(engine, surveys=True) if r.key.startswith(f"training:{training.id}:")]
    assert sorted(k.split(":")[2] for k in reminders) == ["remind1", "remind24"]
    jobs.tick(engine, END.astimezone(UTC))
    surveys = [r for r in outbox_rows(engine, surveys=True) if r.kind != "result" and f":{cid}:" in r.key
               and "feedback" in r.key]
    assert len(surveys) == 5
