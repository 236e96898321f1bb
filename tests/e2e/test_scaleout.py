"""Several real `mianzi serve` processes on one PostgreSQL: the channel's ceiling holds in total.

Each process counts the ceilings in its own memory, so only one of them delivers for a channel
(`models.leadership`). The fake Bot API enforces Telegram's flood control at 30/s and logs every
message with its arrival time; our ceiling is set to 25/s. Two processes each sending at their own
25/s would offer 50/s and meet 429s; one elected deliverer never does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.support import builders as b
from tests.support.cli_runner import MIANZI
from tests.support.fake_flood import FloodFake
from tests.support.live_app import free_port

RECIPIENTS = 200
CEILING = 25  # MIANZI_TELEGRAM_RATE; the fake refuses over 30 in any second
CONCURRENCY = 8
ELECTION = 0.5  # MIANZI_DELIVERY_ELECTION_SECONDS
LEASE = 2  # MIANZI_DELIVERY_LEASE_SECONDS


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int

    def health(self) -> dict[str, object]:
        answer: dict[str, object] = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()
        return answer


@pytest.fixture
def postgresql(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("several serve processes share one PostgreSQL database; SQLite has one server process")
    return db_url


def _env(db_url: str, fake: FloodFake) -> dict[str, str]:
    return {**os.environ, "MIANZI_DATABASE_URL": db_url, "MIANZI_TELEGRAM_TOKEN": "1:T",
            "MIANZI_TELEGRAM_API_URL": fake.base_url, "MIANZI_TELEGRAM_WEBHOOK_URL": "https://example.invalid/hook",
            "MIANZI_TELEGRAM_RATE": str(CEILING), "MIANZI_TELEGRAM_CHAT_INTERVAL": "0",
            "MIANZI_DELIVERY_CONCURRENCY": str(CONCURRENCY), "MIANZI_DELIVERY_LEASE_SECONDS": str(LEASE),
            "MIANZI_DELIVERY_ELECTION_SECONDS": str(ELECTION), "MIANZI_SCHEDULER_TICK_SECONDS": "3600",
            "NO_PROXY": "127.0.0.1,localhost"}


@contextmanager
def _servers(count: int, env: dict[str, str], cwd: Path) -> Iterator[list[Served]]:
    """`count` serve processes, each answering /healthz before this yields; stopped (SIGINT) after."""
    log = (cwd / "serve.log").open("ab")
    served = []
    try:
        for _ in range(count):
            port = free_port()
            proc = subprocess.Popen([*MIANZI, "serve", "--port", str(port)], cwd=cwd, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            served.append(Served(proc, port))
        deadline = time.monotonic() + 60
        for server in served:
            while True:
                try:
                    if server.health().get("delivery"):
                        break
                except httpx.HTTPError:
                    pass
                assert server.proc.poll() is None and time.monotonic() < deadline, (cwd / "serve.log").read_text()
                time.sleep(0.1)
        yield served
    finally:
        for server in served:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGINT)
        for server in served:
            server.proc.wait(timeout=30)
        log.close()


def _broadcast(env: dict[str, str], cwd: Path) -> int:
    queued = subprocess.run([*MIANZI, "broadcast", "本月冲刺：还差一步就进前十", "--json"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr
    broadcast_id: int = json.loads(queued.stdout)["id"]
    return broadcast_id


def _wait_for_everyone(fake: FloodFake, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(fake.per_chat()) < RECIPIENTS and time.monotonic() < deadline:
        time.sleep(0.1)


def _deliverers(served: list[Served]) -> list[Served]:
    return [s for s in served if s.proc.poll() is None and "telegram" in s.health()["delivering_for"]]  # type: ignore[operator]


def _report(env: dict[str, str], cwd: Path, broadcast_id: int) -> dict[str, int]:
    report = subprocess.run([*MIANZI, "deliveries", "report", str(broadcast_id), "--json"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=60)
    telegram: dict[str, int] = json.loads(report.stdout)["channels"]["telegram"]
    return telegram


@pytest.mark.parametrize("processes", [2, 3])
def test_several_servers_keep_the_ceiling_in_total(postgresql: str, engine: Engine, tmp_path: Path,
                                                   processes: int) -> None:
    b.telegram_recipients(engine, RECIPIENTS, prefix="S", chat_base=70000)
    with FloodFake(rate=30) as fake:
        env = _env(postgresql, fake)
        with _servers(processes, env, tmp_path) as served:
            assert len(_deliverers(served)) == 1  # elected before the first request was answered
            broadcast_id = _broadcast(env, tmp_path)
            _wait_for_everyone(fake, 60)
            assert len(_deliverers(served)) == 1
        counts = fake.per_chat()
        assert len(counts) == RECIPIENTS, (tmp_path / "serve.log").read_text()[-3000:]
        assert set(counts.values()) == {1}  # nothing sent twice
        assert fake.refused["429"] == 0  # the platform never had to say "too many"
        assert fake.max_in_any_second() <= CEILING
    assert _report(env, tmp_path, broadcast_id)["sent"] == RECIPIENTS


def test_a_killed_deliverer_is_replaced_and_the_ceiling_holds(postgresql: str, engine: Engine,
                                                              tmp_path: Path) -> None:
    b.telegram_recipients(engine, RECIPIENTS, prefix="S", chat_base=70000)
    with FloodFake(rate=30) as fake:
        env = _env(postgresql, fake)
        with _servers(3, env, tmp_path) as served:
            [first] = _deliverers(served)
            broadcast_id = _broadcast(env, tmp_path)
            deadline = time.monotonic() + 60
            while len(fake.delivered) < RECIPIENTS // 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            first.proc.send_signal(signal.SIGKILL)  # no goodbye: its lock goes with its connection
            first.proc.wait(timeout=10)
            killed_at, at_kill = time.monotonic(), len(fake.delivered)
            assert 0 < at_kill < RECIPIENTS
            while not (_deliverers(served)) and time.monotonic() < killed_at + 10:
                time.sleep(0.05)
            took_over = time.monotonic() - killed_at
            [second] = _deliverers(served)
            assert second is not first
            _wait_for_everyone(fake, 60)
        counts = Counter(fake.per_chat())
        assert len(counts) == RECIPIENTS, (tmp_path / "serve.log").read_text()[-3000:]  # nobody is missing
        # the crash bound (docs/delivery.md): the calls in flight at the kill, plus those sent but not yet recorded
        assert sum(n - 1 for n in counts.values()) <= CONCURRENCY * 2
        assert fake.refused["429"] == 0 and fake.max_in_any_second() <= CEILING
    assert took_over < 4 * ELECTION + 2  # the next elections after the kill, and a /healthz round
    assert _report(env, tmp_path, broadcast_id)["sent"] == RECIPIENTS
