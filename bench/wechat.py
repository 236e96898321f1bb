"""Load benchmark of `/wechat/callback`: `排行` text messages answered with the passive reply.

Run by hand, never in CI, after the foundation benchmark has built its 100,000-partner program:

    python bench/foundation.py --keep            # once: bench/out/foundation.db
    python bench/wechat.py                       # plaintext mode, then safe mode
    python bench/wechat.py --seconds 5 --connections 8 --users 500

Set-up: the foundation database is copied to `bench/out/wechat.db` (a fresh copy each run),
migrated, its contest reopened around the current time (the foundation run closes it) and
`--users` random partners bound to WeChat OpenIDs. Then, for each mode, the app built from
`bot.wechat_oa.wechat_routes` is served by uvicorn in its own process (one worker, as
`mianzi serve` runs), and a load generator in this process keeps `--connections` keep-alive
HTTP/1.1 connections on loopback busy with signed (and in safe mode encrypted) messages, each
with a new MsgId and a random bound user. Requests are prepared before the clock starts, so
the generator's own cost is small. Every answer must be 200 with a passive reply; a sample is
decrypted and checked to hold the asker's rank.

"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "bench-token"
APP_ID = "wxbench0000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
GH = "gh_bench00000001"
TARGET_RATE = 500.0
TARGET_P99 = 0.050


def prepare(source: Path, db: Path, users: int, seed: int) -> list[str]:
    """A fresh copy of the program with a running contest and `users` bound WeChat accounts."""
    from datetime import timedelta

    from sqlalchemy import text

    from bot.migrate import upgrade
    from models.db import make_engine
    from models.values import utcnow

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, db)
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = utcnow()

    def stored(moment: Any) -> str:  # the text form SQLAlchemy keeps SQLite datetimes in (naive UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    with engine.begin() as conn:
        conn.execute(text("UPDATE contest SET closed_at = NULL, start_at = :s, end_at = :e"),
                     {"s": stored(now - timedelta(days=15)), "e": stored(now + timedelta(days=15))})
        conn.execute(text("DELETE FROM contestresult"))
        conn.execute(text("DELETE FROM pointsentry"))
        ids = [r[0] for r in conn.execute(text("SELECT id FROM partner"))]
        chosen = random.Random(seed).sample(ids, min(users, len(ids)))
        refs = [f"oBench{pid:022d}" for pid in chosen]
        conn.execute(text("INSERT INTO chatidentity (partner_id, platform, user_ref, chat_ref, active, bound_at, "
                          "last_seen_at, window_pushes) VALUES (:p, 'wechat', :u, :u, 1, :n, :n, 0)"),
                     [{"p": pid, "u": ref, "n": stored(now)} for pid, ref in zip(chosen, refs, strict=True)])
    engine.dispose()
    return refs


def serve(db: Path, port: int, mode: str) -> None:
    """The server process: the WeChat routes only, one uvicorn worker, no access log."""
    import logging

    import uvicorn
    from starlette.applications import Starlette

    from bot.settings import Settings
    from bot.wechat_oa import wechat_routes
    from models.db import make_engine

    logging.getLogger("mianzi").setLevel(logging.ERROR)
    settings = Settings(database_url=f"sqlite:///{db}", wechat_app_id=APP_ID, wechat_token=TOKEN,
                        wechat_aes_key=AES_KEY if mode == "safe" else None)
    app = Starlette(routes=wechat_routes(settings, make_engine(settings.database_url)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def requests(refs: list[str], count: int, mode: str, port: int, seed: int, text: str = "排行") -> list[bytes]:
    """`count` ready-to-send HTTP requests, each a new message from a random bound user."""
    from wechatpy.crypto import WeChatCrypto

    from bot.wechat_xml import cdata, signature

    rng = random.Random(seed)
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    out = []
    for i in range(count):
        user, ts, nonce = rng.choice(refs), str(int(time.time())), str(rng.randrange(10**9))
        xml = (f"<xml><ToUserName>{cdata(GH)}</ToUserName><FromUserName>{cdata(user)}</FromUserName>"
               f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{cdata(text)}</Content>"
               f"<MsgId>{7_000_000_000_000_000 + seed * 1_000_000 + i}</MsgId></xml>")
        query = f"signature={signature(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}&openid={user}"
        if mode == "safe":
            enc = crypto.encrypt_message(xml, nonce, ts)
            encrypt = enc.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
            msg_sig = enc.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
            xml = f"<xml><ToUserName>{cdata(GH)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>"
            query += f"&encrypt_type=aes&msg_signature={msg_sig}"
        body = xml.encode("utf-8")
        out.append(f"POST /wechat/callback?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(h.split(":", 1)[1]) for h in lines if h.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def load(port: int, pool: list[bytes], connections: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Closed-loop load: each connection sends its next request as soon as the answer arrived."""
    latencies: list[float] = []
    samples: list[bytes] = []
    errors: list[str] = []
    index = 0
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def worker() -> None:
        nonlocal index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at and index < len(pool):
                request = pool[index]
                index += 1
                t0 = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                t1 = time.perf_counter()
                if status != 200 or b"<xml>" not in body:
                    errors.append(f"{status} {body[:80]!r}")
                elif t0 >= measure_from and t1 <= stop_at:
                    latencies.append(t1 - t0)
                    if len(samples) < 20:
                        samples.append(body)
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(connections)))
    if index >= len(pool):
        errors.append("ran out of prepared requests: raise --pool")
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {"messages": len(latencies), "rate": len(latencies) / seconds, "p50": pct(0.5), "p90": pct(0.9),
            "p99": pct(0.99), "max": latencies[-1] if latencies else float("nan"), "errors": errors[:5],
            "error_count": len(errors), "samples": [s.decode("utf-8") for s in samples]}


def check(samples: list[str], mode: str, text: str) -> bool:
    """Each sampled answer is a passive text reply (for `排行`: the board and the asker's own line)."""
    from wechatpy.crypto import WeChatCrypto

    from bot.wechat_xml import parse_xml

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    for body in samples:
        fields = parse_xml(body)
        if mode == "safe":
            fields = parse_xml(crypto.decrypt_message(body, fields["MsgSignature"], fields["TimeStamp"],
                                                      fields["Nonce"]))
        content = fields.get("Content", "")
        if fields.get("MsgType") != "text" or (text == "排行" and not ("🏆" in content and "🙋" in content)):
            return False
    return bool(samples)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_mode(a: argparse.Namespace, db: Path, refs: list[str], mode: str) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", mode, "--db", str(db), "--port", str(port)]
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the {mode} server did not start") from None
                time.sleep(0.1)
        pool = requests(refs, a.pool, mode, port, seed=1 if mode == "plain" else 2, text=a.text)
        result = asyncio.run(load(port, pool, a.connections, a.warmup, a.seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["replies_ok"] = check(result.pop("samples"), mode, a.text)
    return result


def report(results: dict[str, dict[str, Any]], a: argparse.Namespace) -> None:
    def ms(x: float) -> str:
        return f"{x * 1000:.1f} ms"

    print(f"\n/wechat/callback, {a.text} from {a.users} bound users, {a.connections} connections, {a.seconds:.0f} s"
          f"; load average {os.getloadavg()[0]:.2f}")
    print("| mode | messages/s | p50 | p99 | max | errors | replies | target |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, r in results.items():
        ok = r["rate"] >= TARGET_RATE and r["p99"] < TARGET_P99 and not r["error_count"] and r["replies_ok"]
        print(f"| {mode} | {r['rate']:.0f} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(r['max'])} | {r['error_count']} "
              f"| {'checked' if r['replies_ok'] else 'WRONG'} | ≥ 500/s, p99 < 50 ms {'✅' if ok else '❌'} |")
    if len(results) == 2:
        print(f"safe/plain throughput ratio: {results['safe']['rate'] / results['plain']['rate']:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Load benchmark of /wechat/callback (SQLite). Run by hand.")
    p.add_argument("--source", type=Path, default=HERE / "out" / "foundation.db", help="the foundation's database")
    p.add_argument("--out", type=Path, default=HERE / "out")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--pool", type=int, default=20000, help="requests prepared per mode")
    p.add_argument("--modes", default="plain,safe")
    p.add_argument("--text", default="排行", help="the message sent (帮助 measures the channel without standings)")
    p.add_argument("--serve", choices=("plain", "safe"), help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if a.serve:
        serve(a.db, a.port, a.serve)
        return 0
    if not a.source.exists():
        print(f"{a.source} is missing: run `python bench/foundation.py --keep` first", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    db = a.out / "wechat.db"
    refs = prepare(a.source, db, a.users, seed=20261101)
    results = {mode: run_mode(a, db, refs, mode) for mode in a.modes.split(",")}
    report(results, a)
    (a.out / "wechat_results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                                                           "results": results}, indent=2, default=str))
    ok = all(r["rate"] >= TARGET_RATE and r["p99"] < TARGET_P99 and r["replies_ok"] and not r["error_count"]
             for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
