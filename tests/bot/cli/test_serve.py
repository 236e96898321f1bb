"""`mianzi serve` as an operator runs it: a real process, stopped with a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from messages.render import t

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_with_no_channel_and_says_so(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MIANZI_DATABASE_URL": db_url, "MIANZI_LOCALE": "en", "NO_PROXY": "127.0.0.1"}
    for name in ("MIANZI_TELEGRAM_TOKEN", "MIANZI_API_TOKEN"):
        env.pop(name, None)
    out = (tmp_path / "out").open("w+")
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        health = None
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False, timeout=5) as client:
            while health is None and time.monotonic() < deadline and proc.poll() is None:
                try:
                    health = client.get(f"http://127.0.0.1:{port}/healthz").json()
                except httpx.TransportError:
                    time.sleep(0.1)
        assert health is not None
        health.pop("scheduler_leader")  # on a shared PostgreSQL another process may lead
        assert health == {"database": "ok", "scheduler": True, "delivery": False,
                          "channels": {"telegram": False, "wechat": False, "wecom": False}}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out.seek(0)
        printed = out.read()
        out.close()
    assert t("web.channels", "en", channels=t("web.no_channels", "en")) in printed
    assert t("web.api_off", "en") in printed
    assert "Application shutdown complete" in printed


def test_serve_warns_of_plaintext_mode_and_keeps_signatures_out_of_the_access_log(db_url: str,
                                                                                   tmp_path: Path) -> None:
    from tests.support.fake_wechat import sample_xml, signed_query

    port = free_port()
    env = {**os.environ, "MIANZI_DATABASE_URL": db_url, "MIANZI_LOCALE": "en", "NO_PROXY": "127.0.0.1",
           "MIANZI_WECHAT_APP_ID": "wx0123456789abcdef", "MIANZI_WECHAT_APP_SECRET": "s3cret",
           "MIANZI_WECHAT_TOKEN": "mianzi-token-42"}
    for name in ("MIANZI_TELEGRAM_TOKEN", "MIANZI_API_TOKEN", "MIANZI_WECHAT_AES_KEY"):
        env.pop(name, None)
    out = (tmp_path / "out").open("w+")
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port", str(port),
                             "--access-log"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/wechat/callback"
    check = signed_query("mianzi-token-42", nonce="918273645", echostr="5550123498761234")
    message = signed_query("mianzi-token-42", nonce="192837465", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False, timeout=5) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert client.get(url, params=check).text == "5550123498761234"
            assert client.post(url, params=message, content=sample_xml("text", Content="帮助")).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out.seek(0)
        printed = out.read()
        out.close()
    lines = [line for line in printed.splitlines() if "/wechat/callback?" in line]  # the access log, not the start-up line
    assert len(lines) == 2, printed
    for query in (check, message):
        for name in ("signature", "timestamp", "nonce", "echostr"):
            if name in query:
                assert query[name] not in printed  # never the value
    assert "signature=***" in lines[0] and "echostr=***" in lines[0] and "nonce=***" in lines[0]
    assert "openid=oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" in lines[1] and "timestamp=***" in lines[1]  # other values stay
    assert t("web.wechat_plaintext_warning", "en") in printed
