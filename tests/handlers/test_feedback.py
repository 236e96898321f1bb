"""Feedback after a training and after a contest: the request, a 1–5 rating (typed or a button), a comment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from handlers.feedback import queue_contest_feedback, queue_feedback_requests
from models import contests, trainings
from models.db import session_scope
from models.tables import FeedbackRequest
from tests.support import builders as b
from tests.support.cli_runner import mianzi
from tests.support.console import NOW, ask, bound
from tests.support.incentives import outbox, program

START = NOW + timedelta(hours=2)
END = START + timedelta(minutes=90)


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


def attended(engine: Engine, *codes: str) -> int:
    """A training two hours from NOW; the given partners join and check in."""
    with session_scope(engine) as s:
        tid = trainings.create(s, trainings.TrainingSpec("渠道政策培训", START, 5400, "上海", None, 10, "ABC123"),
                               NOW).id
    for code in codes:
        user = bound(engine, code)
        ask(engine, user, f"报名 {tid}")
        assert "签到成功" in ask(engine, user, "签到 ABC123", START + timedelta(minutes=5))
    return tid  # type: ignore[return-value]


def survey(engine: Engine, now: datetime) -> int:
    with session_scope(engine) as s:
        return queue_feedback_requests(s, now)


def requests(engine: Engine) -> list[FeedbackRequest]:
    with Session(engine) as s:
        return list(s.execute(select(FeedbackRequest).order_by(FeedbackRequest.id)).scalars())


def test_training_survey_rating_out_of_range_and_comment(engine: Engine, ids: dict[str, int]) -> None:
    tid = attended(engine, "P1", "P2")
    bound(engine, "P3")  # bound, but not at the training: not asked
    assert survey(engine, END - timedelta(minutes=1)) == 0  # not over yet
    assert survey(engine, END + timedelta(minutes=1)) == 2
    assert survey(engine, END + timedelta(minutes=2)) == 0  # once
    asked = outbox(engine, "feedback:")
    assert set(asked) == {f"feedback:training:{tid}:partner:{ids['P1']}", f"feedback:training:{tid}:partner:{ids['P2']}"}
    request = asked[f"feedback:training:{tid}:partner:{ids['P1']}"]
    assert request["text"].startswith("📝 培训“渠道政策培训”已结束，请为它打个分") and "回复 1 到 5 的数字" in request["text"]
    rid = requests(engine)[0].id
    assert request["buttons"] == [[f"{n} 分", f"fb:{rid}:{n}"] for n in range(1, 6)]  # Telegram inline buttons

    later = END + timedelta(minutes=10)
    p1 = "u-P1"
    for bad in ("6", "0", "-1", "10"):
        assert ask(engine, p1, bad, later) == "请回复 1 到 5 之间的数字（5 = 非常满意，1 = 很不满意）。"
    assert requests(engine)[0].rating is None
    assert ask(engine, p1, "4", later).startswith("谢谢您的评分（4 分）")
    assert ask(engine, p1, "讲得很清楚，希望多讲案例", later) == "收到，谢谢您的宝贵意见！"
    assert "没听懂" in ask(engine, p1, "还有一件事", later)  # one comment per survey
    assert "没听懂" in ask(engine, p1, "5", later)  # nothing left to rate: just a number
    first = requests(engine)[0]
    assert (first.rating, first.comment) == (4, "讲得很清楚，希望多讲案例")
    assert "没听懂" in ask(engine, "u-P3", "3", later)  # never asked

    # P2 answers with the button; a forged rating and someone else's request are refused
    p2_request = requests(engine)[1]
    assert ask(engine, "u-P2", f"fb:{p2_request.id}:9", later).startswith("请回复 1 到 5 之间的数字")
    assert "已失效或不存在" in ask(engine, "u-P1", f"fb:{p2_request.id}:5", later)
    assert ask(engine, "u-P2", f"fb:{p2_request.id}:5", later).startswith("谢谢您的评分（5 分）")
    assert ask(engine, "u-P2", f"fb:{p2_request.id}:1", later) == "您已经评过分了，谢谢！"
    assert "没听懂" in ask(engine, "u-P2", "排行榜是什么", later + timedelta(hours=2))  # the comment window closed
    assert requests(engine)[1].rating == 5 and requests(engine)[1].comment is None

    report = mianzi("feedback", "report", "--json").json()
    assert report == [{"subject": "training", "id": tid, "title": "渠道政策培训", "asked": 2, "answered": 2,
                       "average": "4.50", "ratings": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
                       "comments": [{"partner": "P1", "rating": 4, "comment": "讲得很清楚，希望多讲案例"}]}]
    shown = mianzi("feedback", "report").out
    assert "4.50" in shown and "讲得很清楚" in shown


def test_expired_surveys_and_old_trainings(engine: Engine, ids: dict[str, int]) -> None:
    attended(engine, "P1")
    assert survey(engine, END + timedelta(days=3)) == 0  # the scheduler was down too long: no stale survey
    with session_scope(engine) as s:  # a fresh one, answered too late
        tid = trainings.create(s, trainings.TrainingSpec("复训", NOW + timedelta(days=4), 3600, "线上", None, 0,
                                                         "XYZ789"), NOW).id
    start = NOW + timedelta(days=4)
    ask(engine, "u-P1", f"报名 {tid}")
    ask(engine, "u-P1", "签到 XYZ789", start + timedelta(minutes=1))
    assert survey(engine, start + timedelta(hours=1)) == 1
    rid = requests(engine)[-1].id
    after_a_week = start + timedelta(days=8)
    assert ask(engine, "u-P1", f"fb:{rid}:5", after_a_week) == "这份问卷已过期，谢谢您！"
    assert "没听懂" in ask(engine, "u-P1", "5", after_a_week)


def test_contest_survey_goes_to_participants_once(engine: Engine, ids: dict[str, int]) -> None:
    with session_scope(engine) as s:
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": "2026-11-10T10:00", "amount": "5000"},
                {"id": "s2", "partner": "P3", "occurred_at": "2026-11-11T10:00", "amount": "3000"})
        contest = b.contest(s, name="11月冲刺", segment="region=华东")
    for code in ("P1", "P2", "P3"):
        bound(engine, code)
    closed_at = datetime(2026, 12, 1, tzinfo=UTC)
    with session_scope(engine) as s:
        assert queue_contest_feedback(s, contest.id, closed_at) == 0  # not closed yet
        contests.close(s, contest.id, closed_at)  # type: ignore[arg-type]
    with session_scope(engine) as s:
        assert queue_contest_feedback(s, contest.id, closed_at) == 2  # type: ignore[arg-type]
        assert queue_contest_feedback(s, contest.id, closed_at) == 0  # type: ignore[arg-type]
        assert queue_contest_feedback(s, 999, closed_at) == 0
    asked = outbox(engine, "feedback:contest:")
    assert set(asked) == {f"feedback:contest:{contest.id}:partner:{ids['P1']}",
                          f"feedback:contest:{contest.id}:partner:{ids['P2']}"}  # 华南's P3 was not in it
    assert "比赛“11月冲刺”已结束" in next(iter(asked.values()))["text"]
    assert ask(engine, "u-P1", "3分", closed_at).startswith("谢谢您的评分（3 分）")
    report = mianzi("feedback", "report", "--json").json()
    assert report[0]["subject"] == "contest" and report[0]["title"] == "11月冲刺" and report[0]["average"] == "3.00"


def test_english_and_group_chats(engine: Engine, ids: dict[str, int]) -> None:
    from handlers.dispatch import dispatch
    from handlers.types import ChatConfig, Incoming

    attended(engine, "P1")
    assert survey(engine, END) == 1
    assert ask(engine, "u-P1", "/lang en", END)
    assert ask(engine, "u-P1", "7", END) == "Please reply with a number from 1 to 5 (5 = excellent, 1 = poor)."
    with session_scope(engine) as s:  # a digit typed in a group is not an answer, and gets no reply
        group = Incoming(platform="console", user_ref="u-P1", chat_ref="group-1", text="5", is_group=True)
        assert dispatch(s, group, ChatConfig(), END) == []
    assert requests(engine)[0].rating is None
    assert ask(engine, "u-P1", "5", END).startswith("Thank you for rating it 5!")
    assert mianzi("feedback", "report").code == 0
