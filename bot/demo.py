"""`mianzi demo`: a sample program in a local SQLite file and a chat with it in the terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from bot.console import converse
from bot.context import engine_for
from bot.sample import DEMO_ADMIN, DEMO_CAPTAIN, DEMO_DEALER, build
from handlers.types import ChatConfig
from messages.render import t
from models.db import session_scope
from models.identities import new_invite
from models.tables import Partner
from models.values import zone

ROLES = {"dealer": DEMO_DEALER, "captain": DEMO_CAPTAIN, "admin": DEMO_ADMIN}
TOUR = [
    ("dealer", "帮助"), ("dealer", "排行"), ("dealer", "/lang en"), ("dealer", "/rank"), ("dealer", "/lang zh"),
    ("dealer", "团队"), ("captain", "团队"), ("dealer", "我的"), ("dealer", "比赛"), ("admin", "排行 2"),
    ("admin", "/team"), ("dealer", "荣誉"), ("dealer", "你好"),
]


def prepare(path: Path, timezone: str, locale: str) -> tuple[object, dict[str, str]]:
    """A fresh sample program at `path`, with one console account bound per role via real invites."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = engine_for(f"sqlite:///{path}")
    config = ChatConfig(timezone=timezone, default_locale=locale)
    with session_scope(engine) as session:
        build(session, zone(timezone))
        codes = {}
        for role, code in ROLES.items():
            partner = session.execute(select(Partner).where(Partner.code == code)).scalar_one()
            codes[role] = new_invite(session, partner).code
    names = {}
    for role, invite in codes.items():
        converse(engine, f"demo-{role}", f"绑定 {invite}", config)
        names[role] = role
    return engine, names


def run(path: Path, timezone: str, locale: str, interactive: bool | None = None,
        ask: Callable[[str], str] = input) -> int:
    console = Console(highlight=False, soft_wrap=True)
    engine, _ = prepare(path, timezone, locale)
    config = ChatConfig(timezone=timezone, default_locale=locale)
    console.print(t("demo.intro", locale, path=str(path)), markup=False)
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        for role, text in TOUR:
            console.print(f"\n[{t('demo.role_' + role, locale)}] > {text}", markup=False)
            console.print(converse(engine, f"demo-{role}", text, config), markup=False)
        console.print("\n" + t("demo.tour_done", locale), markup=False)
        return 0
    role = "dealer"
    console.print(t("demo.how", locale), markup=False)
    while True:
        try:
            text = ask(f"\n[{t('demo.role_' + role, locale)}] > ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return 0
        text = text.strip()
        if text in ("/quit", "/exit", "退出"):
            return 0
        if text.startswith("/as"):
            wanted = text[3:].strip()
            if wanted in ROLES:
                role = wanted
                console.print(t("demo.now_role", locale, role=t("demo.role_" + role, locale)), markup=False)
            else:
                console.print(t("demo.as_usage", locale), markup=False)
            continue
        console.print(converse(engine, f"demo-{role}", text, config), markup=False)
