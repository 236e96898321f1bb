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

ROOT = Path(__file__).resolve().parent.parent


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
