"""The dealer page's fixtures: a running program (an individual and a team contest this month),
partners bound on Telegram, WeChat and WeCom, and the app over HTTP against fake Telegram and WeChat."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, select

from bot.settings import Settings
from bot.web.app import create_app
from models.db import session_scope
from models.tables import ChatIdentity, Partner, PointsEntry
from models.values import utcnow
from tests.support import builders as b
from tests.support.browser import tab
from tests.support.builders import SH
from tests.support.fake_telegram import FakeBotApi, bot_api, settings_for
from tests.support.fake_wechat import FakeWeixin, weixin_api
from tests.support.live_app import live_app
from tests.support.official_account import TOKEN as WX_TOKEN

PUBLIC_URL = "http://dealer.test"
API_TOKEN = "api-token-for-tests"
TG = {"P1": 7400001, "CAP": 7400002, "W2": 7400005, "P2": 7400006}
STRANGER = 7409999  # a Telegram user bound to nobody
OPENID = {"P1": "oP1-openid", "W1": "oW1-openid"}
WECOM_USER = {"CAP": "WangCap"}
SALES = {"W1": 90000, "P2": 60000, "CAP": 40000, "P1": 28000, "W2": 5000}


def month() -> tuple[str, str, str]:
    now = utcnow().astimezone(SH)
    following = date(now.year + now.month // 12, now.month % 12 + 1, 1)
    yesterday = max(now - timedelta(days=1), now.replace(day=1, hour=0, minute=1))
    return now.strftime("%Y-%m-01"), (following - timedelta(days=1)).isoformat(), yesterday.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def program(engine: Engine) -> dict[str, int]:
    """Six partners in two teams, sales this month, an individual revenue contest (top 3 public,
    tiers) and a team contest; chat accounts bound; P1 has points. Returns the contests' ids."""
    start, end, when = month()
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "张三", "team": "EAST"}, {"code": "P2", "name": "李四", "team": "EAST"},
                   {"code": "CAP", "name": "王队长", "team": "EAST", "role": "captain"},
                   {"code": "W1", "name": "赵六", "team": "WEST"}, {"code": "W2", "name": "钱七", "team": "WEST"},
                   {"code": "EN", "name": "Emma", "team": "WEST", "locale": "en"})
        b.sales(s, *({"id": f"s-{code}", "partner": code, "occurred_at": when, "amount": str(amount)}
                     for code, amount in SALES.items()))
        solo = b.contest(s, start=start, end=end, name="本月销售冠军", top_n=3, prizes="1=500,2=300,3=100",
                         tiers="铜牌=10000:50,银牌=50000:100,金牌=100000:200")
        team = b.contest(s, start=start, end=end, name="团队争霸", scope="team")
        ids = {code: s.execute(select(Partner.id).where(Partner.code == code)).scalar_one()
               for code in ("P1", "P2", "CAP", "W1", "W2", "EN")}
        now = utcnow()
        accounts = [("telegram", str(ref), code) for code, ref in TG.items()]
        accounts += [("wechat", ref, code) for code, ref in OPENID.items()]
        accounts += [("wecom", ref, code) for code, ref in WECOM_USER.items()]
        accounts.append(("telegram", "7400007", "EN"))
        for platform, ref, code in accounts:
            s.add(ChatIdentity(partner_id=ids[code], platform=platform, user_ref=ref, chat_ref=ref,
                               bound_at=now - timedelta(days=3), last_seen_at=now - timedelta(days=3)))
        s.add(PointsEntry(partner_id=ids["P1"], kind="earned", amount=300, reason={"code": "points.contest_prize"},
                          source_key="test:p1", created_at=now))
        return {"solo": solo.id, "team": team.id, **{f"id_{k}": v for k, v in ids.items()}}


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture
def weixin(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    yield from weixin_api(monkeypatch)


def dealer_settings(telegram: FakeBotApi, weixin: FakeWeixin, media: Path, **overrides: object) -> Settings:
    weixin.app_secret = "wx-secret"
    values: dict[str, object] = {
        "public_url": PUBLIC_URL, "api_token": API_TOKEN, "media_dir": str(media),
        "wechat_app_id": "wx-app", "wechat_app_secret": "wx-secret", "wechat_token": WX_TOKEN,
        "wechat_api_url": weixin.base_url, "wechat_sns_url": weixin.root, "wechat_oauth_url": weixin.root + "connect/",
        "wecom_corp_id": "corp", "wecom_secret": "corp-secret", "wecom_agent_id": "1000002",
        "wecom_api_url": weixin.base_url, **overrides}
    return settings_for(telegram, **values)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.fixture
def site(db_url: str, program: dict[str, int], telegram: FakeBotApi, weixin: FakeWeixin,
         media: Path) -> Iterator[httpx.Client]:
    """The app (no background services) over real HTTP, channels against the fakes."""
    with live_app(create_app(dealer_settings(telegram, weixin, media), background=False)) as client:
        client.follow_redirects = False
        yield client


# --- the browser ----------------------------------------------------------------------------------

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Browser, site: httpx.Client, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A phone-sized browser profile on the live app."""
    with tab(browser, str(site.base_url), request, viewport=PHONE, device_scale_factor=2, is_mobile=True,
             has_touch=True) as opened:
        yield opened
