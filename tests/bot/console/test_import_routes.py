"""The upload page's refusals (issue 15): no file, an empty or oversized file, an unknown job, a
commit of a preview that failed or of no preview, a second commit while one runs — each a clear
answer that stores nothing."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bot.settings import get_settings
from messages.render import t
from models.db import session_scope
from models.tables import Sale
from tests.support.console_web import signed_in


def sales(engine: Engine) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sale)).scalar_one())


def upload(client: httpx.Client, csrf: str, body: bytes, name: str = "sales.csv", kind: str = "sales") -> httpx.Response:
    return client.post("/admin/imports", data={"csrf": csrf, "kind": kind}, files={"file": (name, body, "text/csv")})


def finished(client: httpx.Client, location: str) -> str:
    """Poll a job's page (as htmx does) until it is done or failed; its page."""
    for _ in range(200):
        page = client.get(location, headers={"HX-Request": "true"}).text
        if 'data-state="done"' in page or 'data-state="failed"' in page:
            return page
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_bad_uploads_are_refused_and_store_nothing(site: httpx.Client, engine: Engine) -> None:
    csrf = signed_in(site, "BOSS")
    missing = site.post("/admin/imports", data={"csrf": csrf, "kind": "sales"})
    assert missing.status_code == 400 and t("console.imports.no_file", "zh") in missing.text
    empty = upload(site, csrf, b"")
    assert empty.status_code == 400
    no_csrf = site.post("/admin/imports", data={"kind": "sales"}, files={"file": ("a.csv", b"id\n", "text/csv")})
    assert no_csrf.status_code == 403
    columns = upload(site, csrf, "编号,金额\nx,1\n".encode())  # not a sales file: its columns are named
    assert columns.status_code == 303
    page = finished(site, columns.headers["location"])
    assert 'data-state="failed"' in page and "id" in page
    commit = site.post(columns.headers["location"] + "/commit", data={"csrf": csrf})
    assert commit.status_code == 409 and t("console.refusal.not_previewed_title", "zh") in commit.text
    broken = site.post("/admin/imports", content=b"--x\r\nnot a part", headers={
        "content-type": "multipart/form-data; boundary=x", "x-csrf-token": csrf})
    assert broken.status_code == 400 and t("console.refusal.bad_request_title", "zh") in broken.text
    assert site.get("/admin/imports/jobs/nosuchjob").status_code == 404
    assert site.post("/admin/imports/jobs/nosuchjob/commit", data={"csrf": csrf}).status_code == 404
    assert sales(engine) == 0


def test_an_upload_over_the_limit_is_refused_before_it_is_read(site: httpx.Client, engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIANZI_UPLOAD_MAX_MB", "1")
    get_settings.cache_clear()
    from bot.web.app import create_app
    from tests.support.live_app import live_app

    with live_app(create_app(background=False)) as small:
        csrf = signed_in(small, "BOSS")
        big = upload(small, csrf, b"id,partner,occurred_at,amount,units\n" + b"x" * (1024 * 1024 + 10))
        assert big.status_code == 413 and t("console.refusal.too_big_title", "zh") in big.text
    assert sales(engine) == 0


def test_a_preview_then_its_commit(site: httpx.Client, engine: Engine) -> None:
    csrf = signed_in(site, "BOSS")
    body = b"id,partner,occurred_at,amount,units\na1,P1,2026-12-01 10:00,100,1\n"
    started = upload(site, csrf, body)
    page = finished(site, started.headers["location"])
    assert 'data-count="inserted">1<' in page and sales(engine) == 0
    assert site.post(started.headers["location"] + "/commit").status_code == 403  # no token: nothing happens
    assert sales(engine) == 0
    committed = site.post(started.headers["location"] + "/commit", data={"csrf": csrf})
    assert committed.status_code == 303
    assert 'data-state="done"' in finished(site, committed.headers["location"]) and sales(engine) == 1
    again = upload(site, csrf, body)  # the same file again: nothing new, nothing to import
    page = finished(site, again.headers["location"])
    assert t("console.imports.nothing_new", "zh") in page and 'data-count="unchanged">1<' in page
