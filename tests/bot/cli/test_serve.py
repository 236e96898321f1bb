"""`mianzi serve` as an operator runs it: a real process, stopped with a signal."""

from __future__ import annotations

from pathlib import Path

from messages.render import t
from tests.support.fake_wechat import sample_xml, signed_query
from tests.support.live_app import serve_process


def test_serve_starts_with_no_channel_and_says_so(db_url: str, tmp_path: Path) -> None:
    env = {"MIANZI_DATABASE_URL": db_url, "MIANZI_LOCALE": "en", "MIANZI_TELEGRAM_TOKEN": None, "MIANZI_API_TOKEN": None}
    with serve_process(tmp_path, env) as served:
        health = served.health
        assert health is not None
        health.pop("scheduler_leader")  # on a shared PostgreSQL another process may lead
        assert health == {"database": "ok", "scheduler": True, "delivery": False, "delivering_for": [],
                          "channels": {"telegram": False, "wechat": False, "wecom": False}}
    printed = served.printed
    assert t("web.channels", "en", channels=t("web.no_channels", "en")) in printed
    assert t("web.api_off", "en") in printed
    assert "Application shutdown complete" in printed


def test_serve_warns_of_plaintext_mode_and_keeps_signatures_out_of_the_access_log(db_url: str,
                                                                                   tmp_path: Path) -> None:
    env = {"MIANZI_DATABASE_URL": db_url, "MIANZI_LOCALE": "en", "MIANZI_WECHAT_APP_ID": "wx0123456789abcdef",
           "MIANZI_WECHAT_APP_SECRET": "s3cret", "MIANZI_WECHAT_TOKEN": "mianzi-token-42",
           "MIANZI_TELEGRAM_TOKEN": None, "MIANZI_API_TOKEN": None, "MIANZI_WECHAT_AES_KEY": None}
    check = signed_query("mianzi-token-42", nonce="918273645", echostr="5550123498761234")
    message = signed_query("mianzi-token-42", nonce="192837465", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    with serve_process(tmp_path, env, "--access-log") as served:
        url = f"http://127.0.0.1:{served.port}/wechat/callback"
        assert served.client.get(url, params=check).text == "5550123498761234"
        assert served.client.post(url, params=message, content=sample_xml("text", Content="帮助")).status_code == 200
    printed = served.printed
    lines = [line for line in printed.splitlines() if "/wechat/callback?" in line]  # the access log, not the start-up line
    assert len(lines) == 2, printed
    for query in (check, message):
        for name in ("signature", "timestamp", "nonce", "echostr"):
            if name in query:
                assert query[name] not in printed  # never the value
    assert "signature=***" in lines[0] and "echostr=***" in lines[0] and "nonce=***" in lines[0]
    assert "openid=oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" in lines[1] and "timestamp=***" in lines[1]  # other values stay
    assert t("web.wechat_plaintext_warning", "en") in printed
