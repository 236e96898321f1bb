"""`/console` (`后台`): an admin's one-time sign-in link to the web console, always in private."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.identity import Asker
from handlers.notify import say
from handlers.registry import ADMINS, command
from handlers.types import ChatConfig, Reply
from models import web_sessions
from models.kinds import WebKind


@command("console", roles=ADMINS)
def cmd_console(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    """The link is the admin's alone: PRIVATE, so asked in a group it goes to the private chat."""
    if config.console_signin_url is None or asker.partner is None:
        return [say(asker, "console.chat.no_public_url")]
    token = web_sessions.issue_link(session, partner=asker.partner, kind=WebKind.CONSOLE, now=now)
    minutes = int(web_sessions.LINK_TTL.total_seconds() // 60)
    link = web_sessions.link_url(config.console_signin_url, token)
    return [say(asker, "console.chat.link", url=link, minutes=minutes)]  # a `say` is PRIVATE
