"""SIGKILL a real `mianzi serve` in the middle of a broadcast, start it again, read the fake's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine

from tests.support import builders as b
from tests.support.cli_runner import MIANZI
from tests.support.fake_flood import FloodFake
from tests.support.live_app import free_port

RECIPIENTS = 300
CONCURRENCY = 8


def _serve(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    out = log.open("a")
    cmd = [*MIANZI, "serve", "--port", str(free_port())]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return proc


def test_sigkill_mid_broadcast_loses_nothing(db_url: str, engine: Engine, tmp_path: Path) -> None:
    b.telegram_recipients(engine, RECIPIENTS)
    with FloodFake(rate=60) as fake:
        env = {**os.environ, "MIANZI_DATABASE_URL": db_url, "MIANZI_TELEGRAM_TOKEN": "1:T",
               "MIANZI_TELEGRAM_API_URL": fake.base_url, "MIANZI_TELEGRAM_WEBHOOK_URL": "https://example.invalid/hook",
               "MIANZI_TELEGRAM_RATE": "50", "MIANZI_TELEGRAM_CHAT_INTERVAL": "0",
               "MIANZI_DELIVERY_CONCURRENCY": str(CONCURRENCY), "MIANZI_DELIVERY_LEASE_SECONDS": "2",
               "MIANZI_SCHEDULER_TICK_SECONDS": "3600", "NO_PROXY": "127.0.0.1,localhost"}
        queued = subprocess.run([*MIANZI, "broadcast",
                                 "年终冲刺动员会今晚八点", "--json"], env=env, cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr
        broadcast_id = json.loads(queued.stdout)["id"]

        first = _serve(env, tmp_path, tmp_path / "serve.log")
        deadline = time.monotonic() + 60
        while len(fake.delivered) < RECIPIENTS // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # no goodbye: leases, not cleanup, must save us
        first.wait(timeout=10)
        at_kill = len(fake.delivered)
        assert 0 < at_kill < RECIPIENTS

        second = _serve(env, tmp_path, tmp_path / "serve.log")
        try:
            deadline = time.monotonic() + 90
            while len(fake.per_chat()) < RECIPIENTS and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(timeout=30)
        counts = Counter(fake.per_chat())

    assert len(counts) == RECIPIENTS, (tmp_path / "serve.log").read_text()[-3000:]  # nobody is missing
    duplicates = sum(n - 1 for n in counts.values())
    # the documented bound: the rows in flight at the kill (being sent, plus sent-but-not-yet-recorded)
    assert duplicates <= CONCURRENCY * 2, duplicates
    report = subprocess.run([*MIANZI, "deliveries", "report",
                             str(broadcast_id), "--json"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    channels = json.loads(report.stdout)["channels"]
    assert channels["telegram"]["sent"] == RECIPIENTS and channels["telegram"]["pending"] == 0
