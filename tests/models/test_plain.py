"""`models.plain`: the reads without SQLAlchemy (`mianzi contests list`) give what the ORM reads,
on each backend, through the driver's own connection and through the engine's."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, select, update
from sqlmodel import Session

from bot import context
from bot.migrate import alembic_config, script_heads
from bot.settings import get_settings
from models import contests, identities, plain
from models.db import make_engine, session_scope
from models.rows import ContestRow, Member
from models.tables import ChatIdentity, Contest, Partner
from tests.support import builders as b
from tests.support.cli_runner import mianzi


def _orm_rows(session: Session) -> list[ContestRow]:
    found = session.execute(select(Contest).order_by(Contest.start_at, Contest.id)).scalars()  # type: ignore[arg-type]
    return [ContestRow(**{f.name: getattr(c, f.name) for f in fields(ContestRow)}) for c in found]


def _program(engine: Engine) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1"})
        b.contest(s, name="十二月", start="2026-12-01", end="2026-12-31", prizes="1=500", tiers="gold=100:50:2%",
                  segment="region=华东", min_score="10")
        b.contest(s, name="十一月", metric="satisfaction", min_ratings=5, featured=True)
        wrong = b.contest(s, name="建错了", start="2026-12-01", end="2026-12-07")
        wrong.cancelled_at, wrong.cancelled_by = datetime(2026, 11, 20, 3, 4, 5, 678, tzinfo=UTC), "cli"
        done = b.contest(s, name="十月", start="2026-10-01", end="2026-10-31")
    with session_scope(engine) as s:
        contests.close(s, done.id, datetime(2026, 11, 2, tzinfo=UTC))


def test_plain_rows_are_the_orms(db_url: str, engine: Engine, session: Session) -> None:
    _program(engine)
    own = plain.connect(db_url)
    assert own is not None  # an SQLite file, or PostgreSQL through psycopg: the driver's own connection
    try:
        assert plain.revisions(conn=own) == script_heads()
        rows = plain.contest_rows(conn=own)
    finally:
        own.close()
    assert rows == _orm_rows(session)
    assert [r.name for r in rows] == ["十月", "十一月", "十二月", "建错了"]
    assert all(r.start_at.tzinfo is UTC for r in rows) and rows[3].cancelled_at is not None
    assert rows[1].featured is True and rows[0].standings_dirty in (True, False)
    pooled = engine.raw_connection()  # the path for URLs the driver does not open by itself
    try:
        assert plain.contest_rows(conn=pooled) == rows
    finally:
        pooled.close()


def test_open_contest_rows_are_the_orms(engine: Engine, session: Session) -> None:
    """The chat's list of open contests (the driver's cursor, `models.plain`'s converters) holds
    what the ORM reads of the same contests: not closed, not cancelled, by start, end and id."""
    _program(engine)
    with session_scope(engine) as s:
        rows = contests.open_contest_rows(s)
    wanted = [r for r in _orm_rows(session) if r.closed_at is None and r.cancelled_at is None]
    assert rows == sorted(wanted, key=lambda r: (r.start_at, r.end_at, r.id))
    assert [r.name for r in rows] == ["十一月", "十二月"] and rows[0].featured is True
    assert all(r.end_at.tzinfo is UTC for r in rows) and isinstance(rows[1].tiers, list)
    with session_scope(engine) as s:  # an edit is seen at once (the converted rows are kept by their values)
        s.execute(update(Contest).where(Contest.id == rows[1].id).values(name="十二月冠军"))  # type: ignore[arg-type]
    with session_scope(engine) as s:
        again = contests.open_contest_rows(s)
    assert [r.name for r in again] == ["十一月", "十二月冠军"] and again[0] == rows[0]


def test_the_asker_is_what_the_orm_reads(engine: Engine) -> None:
    """Who is asking (read on the driver's cursor with the columns' own result processors): the
    same values as the ORM's objects, dates, times and booleans included; nobody for an inactive
    account."""
    seen = datetime(2026, 12, 3, 6, 5, 4, 321, tzinfo=UTC)
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "region": "华东", "team": "T1"})
        partner = s.execute(select(Partner)).scalars().one()  # type: ignore[arg-type]
        s.add(ChatIdentity(partner_id=partner.id, platform="wechat", user_ref="oA", chat_ref="oA", bound_at=seen,
                           last_seen_at=seen, window_pushes=3))
        s.add(ChatIdentity(partner_id=partner.id, platform="wechat", user_ref="oB", bound_at=seen, active=False))
    with session_scope(engine) as s:
        found = identities.asker(s, platform="wechat", user_ref="oA")
        assert identities.asker(s, platform="wechat", user_ref="oB") is None
        partner = s.execute(select(Partner)).scalars().one()  # type: ignore[arg-type]
        identity = s.execute(select(ChatIdentity).where(ChatIdentity.user_ref == "oA")).scalars().one()  # type: ignore[arg-type]
        assert found is not None
        visit, member = found
        assert visit == identities.Visit(identity.id, seen, 3, "oA") and visit.last_seen_at == identity.last_seen_at
        assert member == Member(**{f.name: getattr(partner, f.name) for f in fields(Member)})
        assert member.active is True and member.joined_on == date(2020, 1, 1) and member.team_id is not None


def test_urls_the_driver_does_not_open_by_itself(tmp_path: Path) -> None:
    assert plain.connect("sqlite://") is None
    assert plain.connect("sqlite:///:memory:") is None
    assert plain.connect(f"sqlite:///{tmp_path / 'missing.db'}") is None  # the engine creates and migrates it
    assert plain.connect(f"sqlite:///{tmp_path / 'x.db'}?mode=ro") is None
    assert plain.connect("mysql://u@h/db") is None
    assert not (tmp_path / "missing.db").exists()


def test_list_on_a_new_or_older_database_migrates_first(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("MIANZI_DATABASE_URL", url)
    get_settings.cache_clear()
    context.dispose_all()
    try:
        ran = mianzi("contests", "list", "--json")
        assert ran.code == 0 and ran.json() == []
        engine = make_engine(url)
        with engine.begin() as conn:  # one revision back, as a database of the release before would be
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "-1")
        context.dispose_all()
        with context.plain_connection() as conn:  # not at head: the engine migrates, then its connection reads
            assert plain.revisions(conn=conn) == script_heads()
        engine.dispose()
    finally:
        get_settings.cache_clear()
        context.dispose_all()


def test_a_broken_database_is_one_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "broken.db"
    path.write_bytes(b"not a database at all" * 100)
    monkeypatch.setenv("MIANZI_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    context.dispose_all()
    try:
        ran = mianzi("contests", "list")
        assert ran.code == 2 and "数据库" in ran.err and "Traceback" not in ran.err
    finally:
        get_settings.cache_clear()
        context.dispose_all()
