"""The app over real HTTP on 127.0.0.1: under uvicorn in a background thread (`live_app`), or as a
real `mianzi serve` process (`serve_process`), as an operator runs it.

Tests talk to it with httpx; its lifespan (start-up, shutdown) runs for real.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from tests.support.cli_runner import MIANZI


def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients under test reach 127.0.0.1 directly, whatever proxy the environment names."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StartupFailed(RuntimeError):
    pass


@contextmanager
def live_app(app: ASGIApp, timeout: float = 10.0) -> Iterator[httpx.Client]:
    """The app served on a free port; yields an httpx client for it (no proxies, no internet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", http="h11", ws="none", log_level="warning",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn exits when the lifespan start-up fails; the waiter below reports it
            pass

    thread = threading.Thread(target=run, name="live-app", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise StartupFailed("the app's lifespan start-up failed (see the log)")
            if time.monotonic() > deadline:
                raise StartupFailed(f"the app did not start within {timeout}s")
            time.sleep(0.01)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@dataclass
class Served:
    """A running `mianzi serve`: its port, a client, what `/healthz` first answered (None if it never
    did), and — once stopped — everything it printed."""

    port: int
    client: httpx.Client
    health: dict[str, Any] | None
    printed: str = ""


@contextmanager
def serve_process(cwd: Path, env: Mapping[str, str | None], *args: str, timeout: float = 30) -> Iterator[Served]:
    """`mianzi serve --port P *args` in its own process, with this environment plus `env` (None
    removes a variable); waits until `/healthz` answers, stops it with SIGINT at the end."""
    port = free_port()
    environ = {**os.environ, "NO_PROXY": "127.0.0.1"}
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    out = (cwd / "out").open("w+")
    proc = subprocess.Popen([*MIANZI, "serve", "--port", str(port), *args], cwd=cwd, env=environ, stdout=out,
                            stderr=subprocess.STDOUT)
    try:
        with httpx.Client(trust_env=False, timeout=5) as client:
            health = None
            deadline = time.monotonic() + timeout
            while health is None and time.monotonic() < deadline and proc.poll() is None:
                try:
                    health = client.get(f"http://127.0.0.1:{port}/healthz").json()
                except httpx.TransportError:
                    time.sleep(0.1)
            served = Served(port, client, health)
            yield served
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out.seek(0)
        printed = out.read()
        out.close()
    served.printed = printed
