"""Run an ASGI app under uvicorn on 127.0.0.1 in a background thread, as `mianzi serve` does.

Tests talk to it over real HTTP with httpx; its lifespan (start-up, shutdown) runs for real.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.types import ASGIApp


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
