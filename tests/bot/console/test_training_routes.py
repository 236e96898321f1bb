"""Trainings and feedback in the console (issue 16): create a training as `mianzi trainings create` does,
its sign-ups and attendance, the check-in code as a QR code (a PNG that decodes to the chat's check-in
message), the feedback charts' data and comments — and every refusal: a clear page, nothing stored."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine, select

from messages.qrcodes import qr_png
from messages.render import t
from models import feedback, trainings
from models.db import session_scope
from models.tables import AuditEntry, Partner, Training
from models.values import utcnow
from tests.support import builders as b
from tests.support.builders import SH
from tests.support.console_web import signed_in
from tests.support.incentives import count


def local(minutes_from_now: int) -> str:
    return (utcnow() + timedelta(minutes=minutes_from_now)).astimezone(SH).strftime("%Y-%m-%dT%H:%M")


def test_create_a_training_and_read_its_pages(site: httpx.Client, engine: Engine, admins: None) -> None:
    csrf = signed_in(site, "BOSS")
    made = site.post("/admin/trainings", data={"csrf": csrf, "title": "新品 X5 产品培训", "start": local(60),
                                               "duration": "2h", "place": "上海 3 号会议室", "points": "20",
                                               "code": "x5go", "team": "EAST"})
    assert made.status_code == 303
    with session_scope(engine) as s:
        item = s.execute(select(Training)).scalar_one()
        assert (item.title, item.checkin_code, item.points, item.duration_seconds) == ("新品 X5 产品培训", "X5GO", 20, 7200)
        assert item.segment == {"team": "EAST"}
        assert "ops.training" in set(s.execute(select(AuditEntry.action)).scalars())
    page = site.get(made.headers["location"])
    assert page.status_code == 200 and 'id="checkin-code">X5GO<' in page.text
    assert t("console.trainings.created", "zh", code="X5GO") in page.text
    screen = site.get(f"/admin/trainings/{item.id}/screen")
    assert screen.status_code == 200 and "X5GO" in screen.text and 'class="top"' not in screen.text
    png = site.get(f"/admin/trainings/{item.id}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.width >= 300 and image.width == image.height
    assert png.content == qr_png(t("console.trainings.qr_text", "zh", code="X5GO"), 720)  # the chat's 签到 X5GO
    listing = site.get("/admin/trainings")
    assert listing.status_code == 200 and "新品 X5 产品培训" in listing.text and "X5GO" in listing.text


def test_training_refusals_store_nothing(site: httpx.Client, engine: Engine, admins: None) -> None:
    csrf = signed_in(site, "BOSS")
    good = {"title": "培训", "start": local(60), "duration": "90m", "place": "线上", "points": "0"}
    assert site.post("/admin/trainings", data=good).status_code == 403
    cases = [({"title": ""}, t("training.bad_title", "zh")),
             ({"start": ""}, t("console.trainings.start_missing", "zh")),
             ({"start": "明天下午"}, t("error.bad_datetime", "zh", value="明天下午")),
             ({"duration": "forever"}, t("error.bad_duration", "zh", value="forever")),
             ({"duration": "9d"}, t("training.bad_duration", "zh")),
             ({"points": "-5"}, t("training.bad_points", "zh", max=trainings.MAX_POINTS)),
             ({"code": "a b"}, t("training.bad_code", "zh", value="a b")),
             ({"city_tier": "7"}, "city_tier=7"),
             ({"place": ""}, t("training.bad_place", "zh"))]
    for change, reason in cases:
        answer = site.post("/admin/trainings", data={"csrf": csrf, **good, **change})
        assert answer.status_code == 400, change
        assert reason.split("{")[0][:12] in answer.text, (change, reason)
        assert 'value="线上"' in answer.text or change.get("place") == ""  # what was typed is kept
    assert count(engine, Training) == 0
    assert site.get("/admin/trainings/999").status_code == 404
    assert site.get("/admin/trainings/999/qr.png").status_code == 404
    assert site.get("/admin/trainings/x/screen").status_code == 404


@pytest.fixture
def surveyed(engine: Engine, admins: None) -> int:
    """A training that ended, P1 and CAP asked; P1 rated 5 with a comment, CAP 3."""
    now = utcnow()
    with session_scope(engine) as s:
        b.partners(s, {"code": "P2", "name": "李四", "team": "EAST"})
        item = trainings.create(s, trainings.TrainingSpec(title="安装培训", start_at=now - timedelta(hours=3),
                                                          duration_seconds=3600, place="线上"), now)
        ids = dict(s.execute(select(Partner.code, Partner.id)).all())
        asked = {r.partner_id: r for r in feedback.request(s, "training", item.id, [ids["P1"], ids["CAP"], ids["P2"]],
                                                           now)}
        assert feedback.rate(s, asked[ids["P1"]].id, ids["P1"], 5, now) == "rated"
        feedback.comment(s, asked[ids["P1"]], "讲得很清楚", now)
        assert feedback.rate(s, asked[ids["CAP"]].id, ids["CAP"], 3, now) == "rated"
        return item.id


def test_feedback_averages_spread_and_comments(site: httpx.Client, surveyed: int) -> None:
    signed_in(site, "BOSS")
    page = site.get("/admin/feedback")
    assert page.status_code == 200
    card = page.text.split(f'id="training-{surveyed}"')[1].split("</section>")[0]
    assert "安装培训" in card and ">4.00<" in card  # (5 + 3) / 2
    counts = json.loads(card.split('data-counts="')[1].split('"')[0])
    assert counts == [0, 0, 1, 0, 1]
    assert "讲得很清楚" in card and "张三" in card
    training = site.get(f"/admin/trainings/{surveyed}")
    assert t("console.trainings.feedback", "zh", avg="4.00", n=2) in training.text


def test_the_pages_read_in_english(site: httpx.Client, surveyed: int) -> None:
    signed_in(site, "ALT")  # ALT reads English
    for path, words in (("/admin/broadcasts", "console.broadcasts.intro"), ("/admin/broadcasts/new", "console.broadcasts.audience_hint"),
                        ("/admin/store", "console.store.queue"), ("/admin/trainings", "console.trainings.new"),
                        (f"/admin/trainings/{surveyed}", "console.trainings.report"), ("/admin/feedback", "console.feedback.intro")):
        page = site.get(path)
        assert page.status_code == 200, path
        assert t(words, "en") in page.text.replace("&#39;", "'"), path
