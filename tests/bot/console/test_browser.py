"""The console in a real browser (Debian's Chromium under Playwright), as a channel manager uses it:
sign in with a link from `mianzi admin link`, read the dashboard (its numbers are the database's),
filter the partners and open one, upload a sales file with a bad row (the row is shown, nothing is
stored), fix it and import it, download the invite sheet. A failing test leaves its screenshot in
`.test-artifacts/`."""

from __future__ import annotations

import io
from datetime import date

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, func, select

from messages.render import money, number, t
from models.db import session_scope
from models.tables import AuditEntry, Invite, Partner, PointsEntry, Sale
from models.values import utcnow
from tests.support import builders as b
from tests.support.builders import SH
from tests.support.console_web import link_path

pytestmark = pytest.mark.usefixtures("site")


def this_month() -> tuple[str, str, str]:
    """The first and last day of this month and a moment today, in the program's time zone."""
    now = utcnow().astimezone(SH)
    following = date(now.year + now.month // 12, now.month % 12 + 1, 1)
    last = date.fromordinal(following.toordinal() - 1)
    return now.strftime("%Y-%m-01"), last.isoformat(), now.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def program(engine: Engine) -> None:
    """Four dealers in two teams with sales this month, a running revenue contest, a points balance."""
    start, end, today = this_month()
    with session_scope(engine) as s:
        b.partners(s, {"code": "P2", "name": "李四", "team": "EAST", "region": "华东"},
                   {"code": "W1", "name": "赵六", "team": "WEST", "region": "西南", "city_tier": "2"},
                   {"code": "W2", "name": "钱七", "team": "WEST", "region": "西南", "city_tier": "2"})
        b.sales(s, *({"id": f"s{i}", "partner": code, "occurred_at": today, "amount": str(amount)}
                     for i, (code, amount) in enumerate([("P1", 52000), ("P2", 18000), ("W1", 9900.5)])))
        b.contest(s, start=start, end=end, name="本月销售冠军", tiers="铜牌=10000:50,银牌=50000:100")
        p1 = s.execute(select(Partner.id).where(Partner.code == "P1")).scalar_one()
        s.add(PointsEntry(partner_id=p1, kind="earned", amount=300, reason={"code": "points.contest_prize"},
                          source_key="test:p1", created_at=utcnow()))


def sign_in(page: Page) -> None:
    page.goto(link_path("BOSS"))
    expect(page.get_by_text("孙经理（BOSS）")).to_be_visible()
    page.get_by_role("button", name=t("console.signin.button", "zh")).click()
    expect(page).to_have_url(f"{page.url.split('/admin')[0]}/admin/")


def scalar(engine: Engine, statement: object) -> int:
    with session_scope(engine) as s:
        return int(s.execute(statement).scalar_one() or 0)  # type: ignore[call-overload]


def test_the_dashboard_shows_the_databases_numbers(page: Page, engine: Engine, program: None) -> None:
    sign_in(page)
    partners = scalar(engine, select(func.count()).select_from(Partner).where(Partner.active.is_(True)))
    revenue = scalar(engine, select(func.sum(Sale.amount_fen)))
    outstanding = scalar(engine, select(func.sum(PointsEntry.amount)))
    expect(page.locator("#partners .figure").first).to_have_text(number(partners))
    expect(page.locator("#sales")).to_contain_text(money(revenue, "zh"))
    expect(page.locator("#points .figure").first).to_have_text(number(outstanding))
    contest = page.locator("#contests .contest").first
    expect(contest).to_contain_text("本月销售冠军")
    expect(contest).to_contain_text("张三")  # the leader, with ¥52,000
    expect(contest.locator(".top3 li").first).to_contain_text(money(5200000, "zh"))
    expect(page.locator("#sales-chart canvas")).to_have_count(1)  # ECharts drew the chart, from the package
    not_joined = page.locator("#partners a", has_text=number(5))  # P1, CAP, P2, W1, W2: nobody bound
    not_joined.first.click()
    expect(page).to_have_url(f"{page.url.split('?')[0]}?bound=no")
    expect(page.locator("table.partners tbody tr")).to_have_count(5)


def test_filter_partners_and_open_one(page: Page, program: None) -> None:
    sign_in(page)
    page.locator("nav.nav").get_by_role("link", name=t("console.nav.partners", "zh")).click()
    expect(page.locator("table.partners tbody tr")).to_have_count(7)  # two admins too
    page.select_option("select[name=team]", "WEST")
    page.get_by_role("button", name=t("console.partners.apply", "zh")).click()
    rows = page.locator("table.partners tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("赵六")
    page.fill("input[name=q]", "钱")
    page.get_by_role("button", name=t("console.partners.apply", "zh")).click()
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="W2").click()
    expect(page.locator("h1")).to_contain_text("钱七")
    expect(page.locator("main")).to_contain_text(t("console.partner.no_accounts", "zh"))


def sales_csv(*rows: str) -> bytes:
    return ("id,partner,occurred_at,amount,units\n" + "\n".join(rows) + "\n").encode("gb18030")  # as Excel writes it


def test_upload_a_sales_file_see_its_bad_row_fix_it_and_import_it(page: Page, engine: Engine, program: None) -> None:
    sign_in(page)
    before = scalar(engine, select(func.count()).select_from(Sale))
    _start, _end, today = this_month()
    good = [f"n1,P2,{today},\"12,000.50\",2", f"n2,w1,{today},￥3000,1"]
    page.locator("nav.nav").get_by_role("link", name=t("console.nav.imports", "zh")).click()
    page.check("input[name=kind][value=sales]")
    page.set_input_files("input[name=file]", files=[{"name": "十二月销售.csv", "mimeType": "text/csv",
                                                      "buffer": sales_csv(*good, f"n3,P1,{today},一万二,1")}])
    page.get_by_role("button", name=t("console.imports.preview", "zh")).click()
    job = page.locator("#job")
    expect(job).to_have_attribute("data-state", "failed")
    bad = job.locator("table.bad-rows tbody tr")
    expect(bad).to_have_count(1)
    expect(bad.first.locator("td").first).to_have_text("4")  # the file's line
    expect(job).to_contain_text(t("console.imports.fix_and_retry", "zh"))
    assert scalar(engine, select(func.count()).select_from(Sale)) == before  # nothing stored

    job.get_by_role("link", name=t("console.imports.upload_again", "zh")).click()
    page.set_input_files("input[name=file]", files=[{"name": "十二月销售.csv", "mimeType": "text/csv",
                                                      "buffer": sales_csv(*good, f"n3,P1,{today},1.2万,1")}])
    page.get_by_role("button", name=t("console.imports.preview", "zh")).click()
    expect(job).to_have_attribute("data-state", "done")
    expect(job.locator("[data-count=inserted]")).to_have_text("3")
    expect(job).to_contain_text(t("console.imports.source_gb18030", "zh"))
    assert scalar(engine, select(func.count()).select_from(Sale)) == before  # a preview stores nothing
    job.get_by_role("button", name=t("console.imports.commit", "zh", rows="3")).click()
    expect(page.locator("#job")).to_have_attribute("data-state", "done")
    expect(page.locator("#job")).to_contain_text(t("console.imports.committed", "zh", rows="3"))
    assert scalar(engine, select(func.count()).select_from(Sale)) == before + 3
    assert scalar(engine, select(func.sum(Sale.amount_fen)).where(Sale.ext_id == "n3")) == 1200000
    with session_scope(engine) as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "import")).scalar_one()
        assert entry.object_kind == "sales" and entry.object_ref == "十二月销售.csv" and entry.details["inserted"] == 3
    page.locator("nav.nav").get_by_role("link", name=t("console.nav.audit", "zh")).click()
    expect(page.locator("table.list tbody tr").first).to_contain_text(t("console.action.import", "zh"))


def test_download_the_invite_sheet_of_the_filtered_list(page: Page, engine: Engine, program: None) -> None:
    sign_in(page)
    page.goto("/admin/partners?team=WEST")
    with page.expect_download() as download:
        page.get_by_role("button", name=t("console.partners.invite_sheet", "zh")).click()
    data = io.BytesIO(download.value.path().read_bytes())
    assert download.value.suggested_filename.endswith(".xlsx")
    rows = list(load_workbook(data, read_only=True).active.iter_rows(values_only=True))
    codes = {r[0] for r in rows[1:] if r and r[0]}
    assert codes == {"W1", "W2"}
    assert scalar(engine, select(func.count()).select_from(Invite)) == 2
    # the audit entry went in with the invites it records (one transaction)
    entry = scalar(engine, select(AuditEntry.object_ref).where(AuditEntry.action == "invites"))
    assert entry == 2  # object_ref "2", read through scalar()


def test_the_console_reads_on_a_phone(browser: object, site: httpx.Client, program: None) -> None:
    """At a phone's width the menu and the tables stay inside the screen (no sideways page)."""
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(base_url=str(site.base_url), viewport={"width": 390, "height": 844},
                                  is_mobile=True, locale="zh-CN")
    page = context.new_page()
    sign_in(page)
    for path in ("/admin/", "/admin/partners", "/admin/imports"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    context.close()
