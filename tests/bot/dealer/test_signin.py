"""Signing in to the dealer page without a password (issue 17): Telegram's initData with real
signatures, and WeChat's and WeCom's OAuth against the fake, over HTTP."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bot.dealer import telegram_auth
from bot.dealer.telegram_auth import InitDataRefused, Refusal
from messages.render import t
from models.db import session_scope
from models.tables import WebSession
from tests.bot.dealer.conftest import OPENID, PUBLIC_URL, STRANGER, TG, WECOM_USER
from tests.support.dealer_web import BOT_TOKEN, init_data, telegram_signed_in
from tests.support.fake_wechat import FakeWeixin


def sessions(engine: Engine) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(WebSession)).scalar_one())


def fields_of(data: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(data, keep_blank_values=True).items()}


# --- the check itself, as Telegram documents it ------------------------------------------------------

def test_valid_init_data_is_accepted() -> None:
    user = telegram_auth.check(init_data(42), bot_token=BOT_TOKEN, max_age=3600, now=time.time())
    assert user.user_id == "42" and user.language_code == "zh-hans"


@pytest.mark.parametrize("change", ["user", "auth_date", "query_id"])
def test_a_changed_field_is_refused(change: str) -> None:
    fields = fields_of(init_data(42))
    fields[change] = fields[change].replace("42", "43") if change == "user" else fields[change] + "1"
    with pytest.raises(InitDataRefused) as refused:
        telegram_auth.check(urlencode(fields), bot_token=BOT_TOKEN, max_age=10**9, now=time.time())
    assert refused.value.refusal == Refusal.BAD_HASH


def test_an_added_field_is_refused() -> None:
    with pytest.raises(InitDataRefused):
        telegram_auth.check(init_data(42) + "&start_param=x", bot_token=BOT_TOKEN, max_age=3600, now=time.time())


def test_a_wrong_token_is_refused() -> None:
    with pytest.raises(InitDataRefused) as refused:
        telegram_auth.check(init_data(42, token="999:OTHER"), bot_token=BOT_TOKEN, max_age=3600, now=time.time())
    assert refused.value.refusal == Refusal.BAD_HASH


def test_an_old_auth_date_is_refused_though_signed() -> None:
    old = int(time.time()) - 3601
    with pytest.raises(InitDataRefused) as refused:
        telegram_auth.check(init_data(42, auth_date=old), bot_token=BOT_TOKEN, max_age=3600, now=time.time())
    assert refused.value.refusal == Refusal.STALE
    assert telegram_auth.check(init_data(42, auth_date=old + 2), bot_token=BOT_TOKEN, max_age=3600,
                               now=time.time()).user_id == "42"


def test_a_missing_hash_is_refused() -> None:
    fields = fields_of(init_data(42))
    del fields["hash"]
    with pytest.raises(InitDataRefused) as refused:
        telegram_auth.check(urlencode(fields), bot_token=BOT_TOKEN, max_age=3600, now=time.time())
    assert refused.value.refusal == Refusal.NO_HASH


def test_a_field_given_twice_is_refused() -> None:
    data = init_data(42)
    with pytest.raises(InitDataRefused):
        telegram_auth.check(data + "&user=" + json.dumps({"id": 1}), bot_token=BOT_TOKEN, max_age=3600,
                            now=time.time())


def test_the_data_check_string_is_sorted_lines_without_hash() -> None:
    assert telegram_auth.data_check_string({"b": "2", "hash": "x", "a": "1"}) == "a=1\nb=2"


# --- over HTTP -----------------------------------------------------------------------------------------

def test_a_bound_telegram_user_is_signed_in(site: httpx.Client, engine: Engine) -> None:
    answer = telegram_signed_in(site, TG["P1"])
    assert answer.status_code == 303 and answer.headers["location"] == "/me/"
    cookie = answer.headers["set-cookie"]
    assert "mianzi_dealer=" in cookie and "HttpOnly" in cookie and "Path=/me" in cookie
    page = site.get("/me/")
    assert page.status_code == 200 and "张三" in page.text
    assert sessions(engine) == 1


@pytest.mark.parametrize("data", [
    init_data(TG["P1"], token="999:OTHER"),
    init_data(TG["P1"], auth_date=int(time.time()) - 7200),
    init_data(TG["P1"]).rsplit("&hash=", 1)[0],
    init_data(TG["P1"]).replace("7400001", "7400002"),
    "", "%%%"])
def test_bad_init_data_signs_nobody_in(site: httpx.Client, engine: Engine, data: str) -> None:
    answer = site.post("/me/telegram", data={"init_data": data})
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers and sessions(engine) == 0
    assert "张三" not in answer.text and "王队长" not in answer.text
    assert site.get("/me/").status_code == 200 and "张三" not in site.get("/me/").text  # the sign-in shell


def test_an_unbound_telegram_user_sees_how_to_bind_and_nothing_else(site: httpx.Client, engine: Engine) -> None:
    answer = telegram_signed_in(site, STRANGER)
    assert answer.status_code == 403 and sessions(engine) == 0
    assert t("dealer.unbound.how", "zh") in answer.text
    for name in ("张三", "李四", "赵六", "本月销售冠军"):
        assert name not in answer.text


def test_the_page_without_a_session_is_the_sign_in_shell(site: httpx.Client) -> None:
    answer = site.get("/me/")
    assert answer.status_code == 200 and 'action="/me/telegram"' in answer.text
    assert "<script src" not in answer.text and "<link" not in answer.text  # nothing loads from elsewhere
    assert site.get("/me/api/calc?contest=1&amount=1").status_code == 401
    assert site.get("/me/events").status_code == 401
    assert site.get("/me/?part=main").status_code == 401  # an open page's refresh after its session ended


# --- WeChat Official Account OAuth ---------------------------------------------------------------------

def start_wechat(site: httpx.Client, path: str = "/me/wechat") -> tuple[str, str]:
    """The entry link: the state cookie set, the browser sent to the authorize URL. (state, redirect_uri)"""
    answer = site.get(path)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    query = parse_qs(target.query)
    assert target.path.endswith("/connect/oauth2/authorize")
    if path == "/me/wechat":
        assert query["scope"] == ["snsapi_base"] and query["appid"] == ["wx-app"]
    assert site.cookies.get("mianzi_oauth_state") == query["state"][0]
    return query["state"][0], query["redirect_uri"][0]


def back_path(redirect_uri: str) -> str:
    assert redirect_uri.startswith(PUBLIC_URL)
    return redirect_uri.removeprefix(PUBLIC_URL)


def test_wechat_oauth_signs_the_bound_partner_in(site: httpx.Client, weixin: FakeWeixin, engine: Engine) -> None:
    state, redirect = start_wechat(site)
    code = weixin.issue_code(OPENID["P1"])
    answer = site.get(back_path(redirect), params={"code": code, "state": state})
    assert answer.status_code == 303 and "mianzi_dealer=" in answer.headers["set-cookie"]
    assert "张三" in site.get("/me/").text
    exchange = weixin.sent("sns/oauth2/access_token")[-1].body
    assert exchange["code"] == code and exchange["appid"] == "wx-app" and exchange["secret"] == "wx-secret"


def test_a_reused_code_is_refused(site: httpx.Client, weixin: FakeWeixin, engine: Engine) -> None:
    state, redirect = start_wechat(site)
    code = weixin.issue_code(OPENID["P1"])
    assert site.get(back_path(redirect), params={"code": code, "state": state}).status_code == 303
    site.cookies.clear()
    state, _ = start_wechat(site)
    again = site.get(back_path(redirect), params={"code": code, "state": state})
    assert again.status_code == 403 and "set-cookie" not in again.headers or "mianzi_dealer=" not in again.headers.get(
        "set-cookie", "")
    assert sessions(engine) == 1


def test_a_forged_code_is_refused(site: httpx.Client, engine: Engine) -> None:
    state, redirect = start_wechat(site)
    answer = site.get(back_path(redirect), params={"code": "CODE-forged", "state": state})
    assert answer.status_code == 403 and sessions(engine) == 0
    assert t("dealer.refusal.bad_signin_title", "zh") in answer.text


@pytest.mark.parametrize("wrong", ["other-state", "", None])
def test_a_wrong_state_is_refused_before_the_code_is_spent(site: httpx.Client, weixin: FakeWeixin, engine: Engine,
                                                          wrong: str | None) -> None:
    _state, redirect = start_wechat(site)
    code = weixin.issue_code(OPENID["P1"])
    params = {"code": code} if wrong is None else {"code": code, "state": wrong}
    answer = site.get(back_path(redirect), params=params)
    assert answer.status_code == 403 and sessions(engine) == 0
    assert t("dealer.refusal.bad_state_title", "zh") in answer.text
    assert code in weixin.oauth_codes  # never exchanged


def test_a_state_works_once(site: httpx.Client, weixin: FakeWeixin, engine: Engine) -> None:
    state, redirect = start_wechat(site)
    assert site.get(back_path(redirect), params={"code": weixin.issue_code(OPENID["P1"]),
                                                 "state": state}).status_code == 303
    site.cookies.set("mianzi_oauth_state", state, path="/me")
    replay = site.get(back_path(redirect), params={"code": weixin.issue_code(OPENID["P1"]), "state": state})
    assert replay.status_code == 403 and sessions(engine) == 1


def test_a_state_from_another_browser_is_refused(site: httpx.Client, weixin: FakeWeixin) -> None:
    state, redirect = start_wechat(site)
    site.cookies.clear()
    start_wechat(site)  # this browser's own state is another one
    answer = site.get(back_path(redirect), params={"code": weixin.issue_code(OPENID["P1"]), "state": state})
    assert answer.status_code == 403


def test_an_unbound_wechat_user_sees_how_to_bind(site: httpx.Client, weixin: FakeWeixin, engine: Engine) -> None:
    state, redirect = start_wechat(site)
    answer = site.get(back_path(redirect), params={"code": weixin.issue_code("o-stranger"), "state": state})
    assert answer.status_code == 403 and sessions(engine) == 0
    assert t("dealer.unbound.how", "zh") in answer.text and "张三" not in answer.text


# --- WeCom OAuth -----------------------------------------------------------------------------------------

def test_wecom_oauth_signs_the_member_in(site: httpx.Client, weixin: FakeWeixin, engine: Engine) -> None:
    state, redirect = start_wechat(site, "/me/wecom")
    code = weixin.issue_code(WECOM_USER["CAP"])
    answer = site.get(back_path(redirect), params={"code": code, "state": state})
    assert answer.status_code == 303
    assert "王队长" in site.get("/me/").text
    call = weixin.sent("user/getuserinfo")[-1]
    assert call.body["code"] == code and call.token in weixin.valid  # the app's shared token


def test_wecom_refuses_a_reused_or_forged_code(site: httpx.Client, weixin: FakeWeixin, engine: Engine) -> None:
    state, redirect = start_wechat(site, "/me/wecom")
    code = weixin.issue_code(WECOM_USER["CAP"])
    assert site.get(back_path(redirect), params={"code": code, "state": state}).status_code == 303
    for bad in (code, "CODE-forged"):
        site.cookies.clear()
        state, _ = start_wechat(site, "/me/wecom")
        assert site.get(back_path(redirect), params={"code": bad, "state": state}).status_code == 403
    assert sessions(engine) == 1


def test_a_sign_in_posted_from_another_site_is_refused(site: httpx.Client, engine: Engine) -> None:
    answer = site.post("/me/telegram", data={"init_data": init_data(TG["P1"])},
                       headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and sessions(engine) == 0
    same = site.post("/me/telegram", data={"init_data": init_data(TG["P1"])}, headers={"Origin": str(site.base_url)})
    assert same.status_code == 303


def test_the_access_log_keeps_no_oauth_code_or_state() -> None:
    from bot.web.access_log import redact

    logged = redact("/me/wechat/callback?code=CODE-123abc&state=s3cr3t-state")
    assert "CODE-123abc" not in logged and "s3cr3t-state" not in logged and logged.startswith("/me/wechat/callback?")
