"""The contests' pages over HTTP: create (the rules preview as the chat's `比赛` shows them), edit by
the CLI's rules, cancel, the standings (every participant, paged, filtered, the tie rule explained),
close now (the scheduler's close), the results and the finance file; and every refusal — an expired
session, a missing CSRF token, a contest that can no longer change — with a clear page and nothing
changed."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from messages.render import render, t
from models import board_links
from models.db import session_scope
from models.tables import (
    AuditEntry,
    BoardLink,
    ChatIdentity,
    Contest,
    ContestChange,
    ContestResult,
    Outbox,
    Partner,
    WebSession,
)
from models.values import utcnow
from tests.support import builders as b
from tests.support.builders import SH
from tests.support.console_web import signed_in


def day(offset: int) -> str:
    return (utcnow().astimezone(SH) + timedelta(days=offset)).date().isoformat()


def form(**over: Any) -> dict[str, Any]:
    """The create form as a browser sends it (every field), with `over` changed."""
    data: dict[str, Any] = {
        "name": "冬季冲刺", "metric": "revenue", "scope": "individual", "team_score": "sum",
        "start_date": day(3), "start_time": "", "end_date": day(30), "end_time": "", "grace_hours": "6",
        "recur": "none", "segment": "1", "seg_team": "", "seg_region": "", "seg_city_tier": "", "seg_industry": "",
        "seg_size": "", "min_tenure_days": "", "min_score": "", "min_satisfaction": "", "min_ratings": "3",
        "prizes": "1", "tiers": "1", "top": "10", "featured_field": "1"}
    for i in range(5):
        data[f"prize_rank_{i}"] = data[f"prize_points_{i}"] = ""
    for i in range(4):
        for part in ("name", "threshold", "points", "rebate"):
            data[f"tier_{part}_{i}"] = ""
    data.update({"prize_rank_0": "1", "prize_points_0": "500", "prize_rank_1": "2", "prize_points_1": "300",
                 "tier_name_0": "银牌", "tier_threshold_0": "30000", "tier_points_0": "100", "tier_rebate_0": "1.5"})
    data.update(over)
    return data


def contests(engine: Engine) -> list[Contest]:
    with session_scope(engine) as s:
        rows = list(s.execute(select(Contest).order_by(Contest.id)).scalars())
        s.expunge_all()
        return rows


def bind(engine: Engine, *codes: str) -> None:
    """Chat accounts on Telegram for these partners (announcements reach only the bound)."""
    with session_scope(engine) as s:
        for code in codes:
            pid = s.execute(select(Partner.id).where(Partner.code == code)).scalar_one()
            s.add(ChatIdentity(partner_id=pid, platform="telegram", user_ref=f"u{pid}", chat_ref=f"u{pid}",
                               bound_at=utcnow(), last_seen_at=utcnow()))


def count(engine: Engine, model: type) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def running(engine: Engine) -> int:
    """A running revenue contest with tied and ineligible lines: P1 ¥52,000; P2 and W1 ¥18,000 (P2
    first); W2 too new for the tenure rule."""
    today = utcnow().astimezone(SH).strftime("%Y-%m-%dT%H:%M")
    with session_scope(engine) as s:
        b.partners(s, {"code": "P2", "name": "李四", "team": "EAST", "region": "华东", "joined_on": "2025-01-01"},
                   {"code": "W1", "name": "赵六", "team": "WEST", "region": "西南", "joined_on": "2025-01-01"},
                   {"code": "W2", "name": "钱七", "team": "WEST", "region": "西南", "joined_on": day(0)})
        for code in ("P1", "CAP"):
            s.execute(Partner.__table__.update().where(Partner.code == code).values(joined_on=SH_DAY))
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": day(-1) + "T08:00", "amount": "52000"},
                {"id": "s2", "partner": "P2", "occurred_at": day(-1) + "T09:00", "amount": "18000"},
                {"id": "s3", "partner": "W1", "occurred_at": day(-1) + "T10:00", "amount": "18000"},
                {"id": "s4", "partner": "W2", "occurred_at": today, "amount": "99000"})
        contest = b.contest(s, name="本月冲刺", start=day(-5), end=day(20), prizes="1=500,2=300",
                            tiers="银牌=15000:100:1.5", min_tenure_days=30)
        return contest.id


SH_DAY = date(2024, 1, 1)


def test_the_list_groups_contests_by_status(site: httpx.Client, engine: Engine, running: int) -> None:
    with session_scope(engine) as s:
        b.contest(s, name="下月赛", start=day(40), end=day(60))
        gone = b.contest(s, name="建错了", start=day(40), end=day(60))
        gone.cancelled_at = utcnow()
    signed_in(site, "BOSS")
    page = site.get("/admin/contests")
    assert page.status_code == 200
    html = page.text
    running_at, upcoming_at, cancelled_at = html.index('id="running"'), html.index('id="upcoming"'), \
        html.index('id="cancelled"')
    assert running_at < html.index("本月冲刺") < upcoming_at < html.index("下月赛") < cancelled_at < html.index("建错了")


def test_the_preview_is_the_chats_text_and_counts_the_segment(site: httpx.Client, engine: Engine,
                                                              running: int) -> None:
    csrf = signed_in(site, "BOSS")
    answer = site.post("/admin/contests/preview", data=form(seg_team="WEST", min_tenure_days="30"),
                       headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert answer.status_code == 200
    html = answer.text
    assert 'data-count="in_segment">2<' in html  # W1, W2
    assert 'data-count="meet_tenure">1<' in html  # W2 joined today
    from bot.console.contests import _transient, rules_texts
    from models.contest_changes import spec_from_options
    spec = spec_from_options({"name": "冬季冲刺", "metric": "revenue", "start": day(3), "end": day(30),
                              "grace": "6h", "segment": "team=WEST", "min_tenure_days": "30",
                              "prizes": "1=500,2=300", "tiers": "银牌=30000:100:1.5"}, "Asia/Shanghai")
    for locale, text in rules_texts(_transient(spec), utcnow()).items():
        assert text.replace("<", "&lt;").replace(">", "&gt;") in html.replace("&#34;", '"').replace("&#39;", "'"), \
            locale
    assert "银牌（≥ ¥30,000.00）100 积分 + 返利 1.5%" in html
    bad = site.post("/admin/contests/preview", data=form(end_date=day(1), start_date=day(5)),
                    headers={"X-CSRF-Token": csrf})
    assert t("error.period_reversed", "zh") in bad.text
    assert count(engine, Contest) == 1  # a preview stores nothing


def test_create_then_the_chat_lists_it(site: httpx.Client, engine: Engine) -> None:
    csrf = signed_in(site, "BOSS")
    answer = site.post("/admin/contests", data=form(csrf=csrf, featured="1"))
    assert answer.status_code == 303, answer.text
    (contest,) = contests(engine)
    assert answer.headers["location"] == f"/admin/contests/{contest.id}?done=created"
    assert (contest.name, contest.grace_seconds, contest.prizes, contest.featured) == \
        ("冬季冲刺", 6 * 3600, [{"rank": 1, "points": 500}, {"rank": 2, "points": 300}], True)
    assert contest.tiers == [{"name": "银牌", "threshold": 3000000, "points": 100, "rebate_pct": "1.5"}]
    with session_scope(engine) as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "contest.create")).scalar_one()
        assert entry.object_ref == str(contest.id)
    page = site.get(answer.headers["location"])
    assert page.status_code == 200 and "冬季冲刺" in page.text
    audit = site.get("/admin/audit").text
    assert t("console.action.contest.create", "zh") in audit and f"比赛 #{contest.id}" in audit


def test_a_bad_form_is_shown_again_with_the_reason_and_nothing_is_stored(site: httpx.Client,
                                                                         engine: Engine) -> None:
    csrf = signed_in(site, "BOSS")
    answer = site.post("/admin/contests", data=form(csrf=csrf, tier_threshold_0="很多"))
    assert answer.status_code == 400
    assert 'id="form-error"' in answer.text and 'value="很多"' in answer.text
    assert count(engine, Contest) == 0


def test_edit_before_the_start_changes_any_field_and_tells_the_participants(site: httpx.Client,
                                                                            engine: Engine) -> None:
    with session_scope(engine) as s:
        contest = b.contest(s, name="下月赛", start=day(10), end=day(40))
        ident = contest.id
    bind(engine, "P1", "CAP", "BOSS")
    csrf = signed_in(site, "BOSS")
    page = site.get(f"/admin/contests/{ident}/edit")
    assert page.status_code == 200 and " disabled" not in page.text.split('id="contest-form"')[1].split("</form>")[0]
    answer = site.post(f"/admin/contests/{ident}/edit", data=form(csrf=csrf, name="下月赛", start_date=day(10),
                                                                  end_date=day(40), grace_hours="0",
                                                                  metric="units", prize_rank_0="", prize_rank_1="",
                                                                  tier_name_0="", tier_threshold_0=""))
    assert answer.status_code == 303, answer.text
    (edited,) = contests(engine)
    assert edited.metric == "units" and edited.prizes == [] and edited.tiers == []
    with session_scope(engine) as s:
        change = s.execute(select(ContestChange)).scalar_one()
        assert sorted(change.changes) == ["metric"]
        assert change.announced == 2  # P1 and CAP (dealers and captains; not the admins)
    assert count(engine, Outbox) == 2


def test_while_running_only_the_allowed_fields_change(site: httpx.Client, engine: Engine, running: int) -> None:
    csrf = signed_in(site, "BOSS")
    page = site.get(f"/admin/contests/{running}/edit")
    assert 'name="metric" disabled' in page.text and 'name="name" value="本月冲刺" required maxlength="200"' \
        ' placeholder' in page.text
    # a crafted form that changes the metric anyway: refused with a clear page, nothing changed
    answer = site.post(f"/admin/contests/{running}/edit", data={"csrf": csrf, "name": "本月冲刺", "metric": "units"})
    assert answer.status_code == 409
    assert t("error.edit_running", "zh", id=running, field="metric") in answer.text
    assert contests(engine)[0].metric == "revenue"
    ok = site.post(f"/admin/contests/{running}/edit", data={"csrf": csrf, "name": "本月冲刺（加码）", "prizes": "1",
                                                          "prize_rank_0": "1", "prize_points_0": "800"})
    assert ok.status_code == 303
    assert contests(engine)[0].name == "本月冲刺（加码）" and contests(engine)[0].prizes == [{"rank": 1, "points": 800}]


def test_a_closed_or_cancelled_contest_can_no_longer_change(site: httpx.Client, engine: Engine,
                                                            running: int) -> None:
    with session_scope(engine) as s:
        closed = b.contest(s, name="上月赛", start=day(-60), end=day(-31))
        closed_id = closed.id
    from models import contests as contest_ops
    with session_scope(engine) as s:
        contest_ops.close(s, closed_id, utcnow())
    csrf = signed_in(site, "BOSS")
    before = contests(engine)
    page = site.get(f"/admin/contests/{closed_id}/edit")
    assert page.status_code == 409 and t("error.edit_closed", "zh", id=closed_id) in page.text
    assert site.post(f"/admin/contests/{closed_id}/edit", data={"csrf": csrf, "name": "新名字"}).status_code == 409
    refused = site.post(f"/admin/contests/{closed_id}/cancel", data={"csrf": csrf, "announce": "1"})
    assert refused.status_code == 409 and t("error.cancel_closed", "zh", id=closed_id) in refused.text
    assert [c.name for c in contests(engine)] == [c.name for c in before]
    assert contests(engine)[1].cancelled_at is None


def test_cancel_announces_once_and_the_contest_stays_for_the_record(site: httpx.Client, engine: Engine,
                                                                    running: int) -> None:
    bind(engine, "P1", "CAP", "P2", "W1", "W2")
    csrf = signed_in(site, "BOSS")
    answer = site.post(f"/admin/contests/{running}/cancel", data={"csrf": csrf, "announce": "1"})
    assert answer.status_code == 303
    (contest,) = contests(engine)
    assert contest.cancelled_at is not None and contest.cancelled_by == "BOSS"
    assert count(engine, Outbox) == 5  # P1, CAP, P2, W1, W2
    again = site.post(f"/admin/contests/{running}/cancel", data={"csrf": csrf, "announce": "1"})
    assert again.status_code == 409 and t("error.contest_cancelled", "zh", id=running) in again.text
    assert count(engine, Outbox) == 5
    assert "建错" not in site.get("/admin/contests").text.split('id="cancelled"')[0].split('id="running"')[1]


def test_no_csrf_token_changes_nothing(site: httpx.Client, engine: Engine, running: int) -> None:
    signed_in(site, "BOSS")
    for path, data in (("/admin/contests", form()), (f"/admin/contests/{running}/edit", {"name": "x"}),
                       (f"/admin/contests/{running}/cancel", {"announce": "1"}),
                       (f"/admin/contests/{running}/close", {}), (f"/admin/contests/{running}/boards", {}),
                       ("/admin/contests/preview", form())):
        answer = site.post(path, data=data)
        assert answer.status_code == 403, path
        assert t("console.refusal.csrf_title", "zh") in answer.text
    wrong = site.post(f"/admin/contests/{running}/cancel", data={"csrf": "not-it"})
    assert wrong.status_code == 403
    assert [(c.name, c.cancelled_at) for c in contests(engine)] == [("本月冲刺", None)]
    assert count(engine, BoardLink) == 0 and count(engine, Outbox) == 0


def test_an_expired_session_gets_the_sign_in_help_and_changes_nothing(site: httpx.Client, engine: Engine,
                                                                      running: int) -> None:
    csrf = signed_in(site, "BOSS")
    with session_scope(engine) as s:
        s.execute(WebSession.__table__.update().values(expires_at=utcnow() - timedelta(minutes=1)))
    for method, path in (("GET", "/admin/contests"), ("GET", f"/admin/contests/{running}"),
                         ("POST", f"/admin/contests/{running}/cancel"), ("POST", "/admin/contests")):
        answer = site.request(method, path, data={"csrf": csrf, **form()} if method == "POST" else None)
        assert answer.status_code == 401, path
        assert t("console.signin.needed_title", "zh") in answer.text
    assert [(c.name, c.cancelled_at) for c in contests(engine)] == [("本月冲刺", None)]


def test_the_standings_show_everyone_with_the_rule_behind_their_place(site: httpx.Client, engine: Engine,
                                                                      running: int) -> None:
    signed_in(site, "BOSS")
    html = site.get(f"/admin/contests/{running}").text
    rows = html.split("<table class=\"list standings\">")[1].split("</table>")[0].split("<tr")[2:]
    codes = [row.split('data-code="')[1].split('"')[0] for row in rows]
    assert codes == ["P1", "P2", "W1", "CAP", "W2"]  # ranked by the tie rule; CAP no sales; W2 not eligible
    assert t("console.contests.order_first", "zh") in rows[0]
    assert "与上一名同分，上一名先达到" in rows[2]  # W1 reached ¥18,000 an hour after P2
    assert "比上一名少 ¥34,000.00" in rows[1]
    assert "not-eligible" in rows[4] and "30" in rows[4]
    west = site.get(f"/admin/contests/{running}?team=WEST").text
    assert 'data-code="W1"' in west and 'data-code="P1"' not in west
    tier = site.get(f"/admin/contests/{running}?region=华东").text
    assert 'data-code="P2"' in tier and 'data-code="W1"' not in tier


def test_close_now_only_after_the_end_then_results_and_the_finance_file(site: httpx.Client, engine: Engine,
                                                                        running: int) -> None:
    csrf = signed_in(site, "BOSS")
    early = site.get(f"/admin/contests/{running}/close")
    assert early.status_code == 409 and t("console.contests.close_not_ended", "zh", id=running) in early.text
    assert site.post(f"/admin/contests/{running}/close", data={"csrf": csrf}).status_code == 409
    with session_scope(engine) as s:  # the period ended yesterday; a day of grace left
        s.execute(Contest.__table__.update().values(end_at=utcnow() - timedelta(hours=1), grace_seconds=86400))
    confirm = site.get(f"/admin/contests/{running}/close")
    assert confirm.status_code == 200
    assert "张三" in confirm.text.split('id="winners-post"')[1].split("</pre>")[0]
    done = site.post(f"/admin/contests/{running}/close", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].startswith(f"/admin/contests/{running}/results")
    assert count(engine, ContestResult) == 5
    results = site.get(done.headers["location"]).text
    assert 'data-rebate="P1">¥780.00' in results  # 1.5% of ¥52,000
    sheet = site.get(f"/admin/contests/{running}/results/download?format=xlsx")
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.content), read_only=True).active.iter_rows(values_only=True))
    assert rows[1][0] == "P1" and str(rows[1][9]) == "780"
    again = site.post(f"/admin/contests/{running}/close", data={"csrf": csrf})
    assert again.status_code == 409  # closed once, announced once


def test_board_links_are_created_and_revoked(site: httpx.Client, engine: Engine, running: int) -> None:
    csrf = signed_in(site, "BOSS")
    assert site.post(f"/admin/contests/{running}/boards", data={"csrf": csrf}).status_code == 303
    with session_scope(engine) as s:
        link = s.execute(select(BoardLink)).scalar_one()
        token, ident = link.token, link.id
    assert len(token) >= 40
    assert f"/board/{token}" in site.get(f"/admin/contests/{running}").text
    assert site.post(f"/admin/contests/{running}/boards/{ident}/revoke", data={"csrf": csrf}).status_code == 303
    assert f"/board/{token}" not in site.get(f"/admin/contests/{running}").text
    assert site.post(f"/admin/contests/{running}/boards/{ident}/revoke", data={"csrf": csrf}).status_code == 404


def test_unknown_contest_pages(site: httpx.Client) -> None:
    signed_in(site, "BOSS")
    for path in ("/admin/contests/999", "/admin/contests/999/edit", "/admin/contests/999/results",
                 "/admin/contests/abc"):
        answer = site.get(path)
        assert answer.status_code == 404, path


_ = render


def test_a_team_contest_shows_the_team_race_and_each_members_part(site: httpx.Client, engine: Engine,
                                                                  running: int) -> None:
    with session_scope(engine) as s:
        team = b.contest(s, name="团队赛", scope="team", start=day(-5), end=day(20), tiers="团队银牌=30000:50")
        ident = team.id
    signed_in(site, "BOSS")
    html = site.get(f"/admin/contests/{ident}").text
    race = html.split('id="team-race"')[1].split("</table>")[0]
    assert race.index("WEST") < race.index("EAST")  # WEST: W1 + W2 ¥117,000 (no tenure rule); EAST ¥70,000
    assert "¥117,000.00" in race and "比上一名少 ¥47,000.00" in race and "团队银牌" in race
    members = html.split('class="list standings"')[1].split("</table>")[0]
    assert 'data-code="W2"' in members and t("console.contests.counted", "zh") in members


def test_every_page_has_its_words_in_both_languages(site: httpx.Client, engine: Engine, running: int) -> None:
    with session_scope(engine) as s:
        done = b.contest(s, name="上月赛", start=day(-60), end=day(-31), tiers="银牌=1:1:1")
        b.contest(s, name="团队赛", scope="team", start=day(-5), end=day(20))
        done_id = done.id
    from models import contests as contest_ops
    with session_scope(engine) as s:
        contest_ops.close(s, done_id, utcnow())
        board_links.create(s, contest_id=running, by=None, now=utcnow())
    for code in ("BOSS", "ALT"):
        site.cookies.clear()
        signed_in(site, code)
        for path in ("/admin/contests", "/admin/contests/new", f"/admin/contests/{running}",
                     f"/admin/contests/{running}/edit", f"/admin/contests/{done_id}/results",
                     f"/admin/contests/{running + 2}", "/admin/audit"):
            answer = site.get(path)
            assert answer.status_code == 200, (code, path)
            assert "console." not in answer.text.replace("console.css", "").replace("console.js", "").replace("//console.test", ""), (code, path)
    with session_scope(engine) as s:
        token = s.execute(select(BoardLink.token)).scalar_one()
    for lang in ("zh", "en"):
        board = site.get(f"/board/{token}?lang={lang}")
        assert board.status_code == 200 and "console." not in board.text, lang


def test_a_grace_of_minutes_from_the_cli_survives_an_edit(site: httpx.Client, engine: Engine) -> None:
    with session_scope(engine) as s:
        ident = b.contest(s, name="下月赛", start=day(10), end=day(40), grace_seconds=90 * 60).id
    csrf = signed_in(site, "BOSS")
    page = site.get(f"/admin/contests/{ident}/edit").text
    assert 'name="grace_hours" inputmode="numeric" size="6" value="90m"' in page
    answer = site.post(f"/admin/contests/{ident}/edit", data=form(csrf=csrf, name="下月赛（改）", start_date=day(10),
                                                                  end_date=day(40), grace_hours="90m",
                                                                  prize_rank_0="", prize_rank_1="", tier_name_0="",
                                                                  tier_threshold_0=""))
    assert answer.status_code == 303, answer.text
    (contest,) = contests(engine)
    assert contest.grace_seconds == 90 * 60 and contest.name == "下月赛（改）"
    with session_scope(engine) as s:
        assert sorted(s.execute(select(ContestChange)).scalar_one().changes) == ["name"]
