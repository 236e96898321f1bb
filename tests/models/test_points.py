"""The points ledger: admin adjustments, FIFO expiry with its reminder, and a property test that the
balance always equals the sum of the entries, never goes negative, and matches a simple reference model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlmodel import Session

from handlers.points import expire_due, queue_expiry_reminders
from models import points, rewards
from models.db import session_scope
from models.errors import DataError
from models.tables import Partner, PointsEntry, RewardItem
from tests.conftest import _empty
from tests.support import builders as b
from tests.support.console import NOW, ask, bound
from tests.support.incentives import balance, catalog, earn, entries, outbox, program


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


def test_admin_adjusts_in_chat_with_a_reason(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 100)
    boss, dealer = bound(engine, "BOSS"), bound(engine, "P1")
    assert ask(engine, boss, "/adjust p1 +250 补发十月奖励") == (
        "Adjusted 经销商1 (P1) by +250 points (补发十月奖励); balance now 350.")
    assert ask(engine, boss, "调整积分 P1 -400 重复发放") == (
        "P1 经销商1 has 350 points, not enough to take away 400 (50 short). A balance cannot go below zero.")
    assert ask(engine, boss, "调整积分 P1 -50 重复发放").endswith("balance now 300.")
    assert "仅限渠道经理" in ask(engine, dealer, "调整积分 P1 +1000000 我自己")
    assert ask(engine, boss, "/adjust P1 +5").startswith("Usage: /adjust")  # a reason is required
    assert "Not a valid number of points: abc" in ask(engine, boss, "/adjust P1 abc oops")
    assert "Not a valid number of points: 0" in ask(engine, boss, "/adjust P1 0 oops")
    assert "No partner with code NOBODY" in ask(engine, boss, "/adjust NOBODY +5 oops")
    assert entries(engine, ids["P1"]) == [("earned", 100), ("adjusted", 250), ("adjusted", -50)]
    pushes = outbox(engine, "points:adjusted:")
    assert [p["text"] for p in pushes.values()] == ["您的积分有一笔调整：+250（补发十月奖励），当前余额 350。",
                                                     "您的积分有一笔调整：-50（重复发放），当前余额 300。"]
    mine = ask(engine, dealer, "我的")
    assert "积分余额：300" in mine and "-50  积分调整" in mine and "+250  积分调整" in mine


def test_adjust_rules(engine: Engine, ids: dict[str, int]) -> None:
    with pytest.raises(DataError) as exc, session_scope(engine) as s:
        points.adjust(s, ids["P1"], 10, "   ", None, NOW)
    assert exc.value.key == "ledger.note_required"
    with pytest.raises(DataError) as exc, session_scope(engine) as s:
        points.adjust(s, ids["P1"], 10, "x" * 201, None, NOW)
    assert exc.value.key == "ledger.note_too_long"
    assert points.parse_amount("＋20") == 20 and points.parse_amount("-7") == -7
    for bad in ("", "+", "1e3", "½", "99999999999"):
        with pytest.raises(DataError):
            points.parse_amount(bad)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_expiry_is_first_in_first_out_and_idempotent(engine: Engine, ids: dict[str, int]) -> None:
    pid = ids["P1"]
    earn(engine, pid, 100, at("2025-01-10T00:00"))
    earn(engine, pid, 200, at("2025-06-01T00:00"))
    with session_scope(engine) as s:
        points.debit(s, pid, 150, "spent", {"code": "points.spent"}, "spend-1", at("2025-07-01T00:00"))
    earn(engine, pid, 50, at("2025-12-01T00:00"))

    def run(now: str, months: int = 12) -> dict[int, int]:
        with session_scope(engine) as s:
            return expire_due(s, at(now), months)

    assert run("2026-01-15T00:00", months=0) == {}  # the default: points never expire
    assert run("2026-01-15T00:00") == {}  # the oldest 100 were spent first: nothing of them is left
    assert run("2026-05-31T23:59") == {}
    assert run("2026-06-01T00:00") == {pid: 150}  # what is left of the 200
    assert run("2026-06-01T00:00") == {} and run("2026-06-02T00:00") == {}  # once
    assert balance(engine, pid) == 50
    assert run("2026-12-01T00:00") == {pid: 50}
    assert balance(engine, pid) == 0 and run("2027-12-01T00:00") == {}
    assert [k for k, _ in entries(engine, pid)].count("expired") == 2
    me = bound(engine, "P1", now=at("2026-12-02T00:00"))
    assert "-50  积分过期" in ask(engine, me, "我的", at("2026-12-02T00:00"))


def test_expiry_reminder_a_month_before(engine: Engine, ids: dict[str, int]) -> None:
    pid, other = ids["P1"], ids["P2"]
    bound(engine, "P1")
    bound(engine, "P2")
    earn(engine, pid, 100, at("2025-06-01T00:00"))
    earn(engine, pid, 40, at("2025-06-20T00:00"))
    earn(engine, other, 70, at("2025-12-01T00:00"))

    def run(now: str, months: int = 12) -> int:
        with session_scope(engine) as s:
            return queue_expiry_reminders(s, at(now), months, "Asia/Shanghai")

    assert run("2026-05-05T00:00", months=0) == 0
    assert run("2026-04-30T00:00") == 0  # more than a month ahead
    assert run("2026-05-02T00:00") == 1
    assert run("2026-05-03T00:00") == 0  # daily runs do not repeat it
    assert run("2026-05-25T00:00") == 1  # the 40 earned later come within a month too: one more notice
    assert run("2026-05-26T00:00") == 0
    texts = [p["text"] for p in outbox(engine, f"points:expiring:{pid}:").values()]
    assert texts[0].startswith("⏳ 积分即将过期：您有 100 积分将于 2026-06-01 起陆续过期（当前余额 140）")
    assert texts[1].startswith("⏳ 积分即将过期：您有 140 积分将于 2026-06-01 起陆续过期")
    assert outbox(engine, f"points:expiring:{other}:") == {}
    with session_scope(engine) as s:
        points.debit(s, other, 70, "spent", {"code": "points.spent"}, "spend-all", at("2026-10-01T00:00"))
    assert run("2026-11-15T00:00") == 0  # nothing left to expire, nothing to say


# --- the ledger reconciles: a property test against a reference model ---------------------------

MONTHS = 1  # short, so that random sequences of a few weeks do reach expiry
PRICES = {"A": 120, "B": 300}
STOCK = {"A": 3, "B": 1}


@dataclass
class Model:
    """What the ledger should say, computed the plain way: lots consumed oldest first."""

    lots: dict[int, list[list]] = field(default_factory=dict)  # partner → [[earned_at, left], …]
    stock: dict[str, int] = field(default_factory=lambda: dict(STOCK))
    pending: list[tuple[int, int, str, int]] = field(default_factory=list)  # (redemption id, partner, sku, cost)

    def balance(self, p: int) -> int:
        return sum(left for _at, left in self.lots.get(p, []))

    def add(self, p: int, n: int, when: datetime) -> None:
        self.lots.setdefault(p, []).append([when, n])

    def take(self, p: int, n: int) -> None:
        for lot in self.lots.get(p, []):
            used = min(lot[1], n)
            lot[1] -= used
            n -= used
        assert n == 0

    def expire(self, now: datetime) -> dict[int, int]:
        gone = {}
        for p, lots in self.lots.items():
            due = sum(left for when, left in lots if points.add_months(when, MONTHS) <= now)
            for lot in lots:
                if points.add_months(lot[0], MONTHS) <= now:
                    lot[1] = 0
            if due:
                gone[p] = due
        return gone


OPS = st.lists(st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 2), st.integers(1, 400)),
    st.tuples(st.just("redeem"), st.integers(0, 2), st.sampled_from(sorted(PRICES))),
    st.tuples(st.just("reject"), st.integers(0, 5)),
    st.tuples(st.just("approve"), st.integers(0, 5)),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.sampled_from((-1, 1)), st.integers(1, 300)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("wait"), st.integers(1, 40)),
), min_size=8, max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_ledger_reconciles_after_any_sequence(engine: Engine, ops: list[tuple]) -> None:
    _empty(engine)
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"Q{i}"} for i in range(3)))
        catalog(s, *({"sku": sku, "name_zh": sku, "points": PRICES[sku], "stock": STOCK[sku]} for sku in PRICES))
    with Session(engine) as s:
        pids = [int(pid) for pid in s.execute(select(Partner.id).order_by(Partner.id)).scalars()]
    model = Model()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with session_scope(engine) as s:  # everyone starts with something to spend
        for p in pids:
            points.credit(s, p, 400, "earned", {"code": "points.contest_prize"}, f"start:{p}", now)
            model.add(p, 400, now)
    for step, op in enumerate(ops):
        now += timedelta(days=1)
        with session_scope(engine) as s:
            kind = op[0]
            if kind == "earn":
                p, n = pids[op[1]], op[2]
                points.credit(s, p, n, "earned", {"code": "points.contest_prize"}, f"earn:{step}", now)
                model.add(p, n, now)
            elif kind == "redeem":
                p, sku = pids[op[1]], op[2]
                ok = model.stock[sku] > 0 and model.balance(p) >= PRICES[sku]
                try:
                    redemption, _ = rewards.redeem(s, p, sku, now)
                except DataError as exc:
                    assert not ok, exc
                    assert exc.key == ("rewards.out_of_stock" if model.stock[sku] <= 0 else "ledger.not_enough")
                else:
                    assert ok
                    model.take(p, PRICES[sku])
                    model.stock[sku] -= 1
                    model.pending.append((redemption.id, p, sku, PRICES[sku]))  # type: ignore[arg-type]
            elif kind in ("reject", "approve") and model.pending:
                rid, p, sku, cost = model.pending.pop(op[1] % len(model.pending))
                if kind == "reject":
                    rewards.reject(s, rid, None, "property test", now)
                    event("rejected")
                    model.add(p, cost, now)
                    model.stock[sku] += 1
                else:
                    rewards.approve(s, rid, None, now)
            elif kind == "adjust":
                p, n = pids[op[1]], op[2] * op[3]
                ok = n > 0 or model.balance(p) >= -n
                try:
                    points.adjust(s, p, n, "property test", None, now)
                except DataError as exc:
                    assert not ok and exc.key == "ledger.adjust_not_enough"
                else:
                    assert ok
                    if n > 0:
                        model.add(p, n, now)
                    else:
                        model.take(p, -n)
            elif kind == "expire":
                gone = points.expire_due(s, now, MONTHS)
                event(f"expired {bool(gone)}")
                assert gone == model.expire(now)
            elif kind == "wait":
                now += timedelta(days=op[1])
    with Session(engine) as s:
        for p in pids:
            amounts = [e.amount for e in s.execute(select(PointsEntry).where(PointsEntry.partner_id == p)).scalars()]
            assert points.balance(s, p) == sum(amounts) == model.balance(p) >= 0
            assert [lot.left for lot in points.lots([(e.id, e.created_at, e.amount) for e in s.execute(
                select(PointsEntry).where(PointsEntry.partner_id == p)).scalars()])] == [
                left for _at, left in model.lots.get(p, [])]
        assert {i.sku: i.stock for i in s.execute(select(RewardItem)).scalars()} == model.stock
    assert min(model.stock.values()) >= 0
