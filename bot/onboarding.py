"""An invite run from start to finish, as `mianzi partners invite` (and later the admin console) does it.

1. Check what was asked for (the sheet's format, a CJK font for posters) before anything changes.
2. One transaction: choose the partners and issue their invites (`handlers.onboarding.issue`).
3. With the Official Account set up, one WeChat QR code per invite (`bot/channels/wechat/qrcode.py`),
   outside the transaction: the invites stand even if WeChat fails, and the sheet says why.
4. The sheet (`messages/sheets.py`) and the posters (`messages/qrcodes.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from handlers.onboarding import Batch, InviteLine, issue
from messages.render import local_time, t, zone_name
from models.db import session_scope
from models.errors import DataError
from models.roster import Selection
from models.values import utcnow


@dataclass
class InviteRun:
    batch: Batch
    wechat: bool  # whether the Official Account is set up (and so WeChat codes were asked for)
    wechat_failed: int = 0
    out: Path | None = None
    posters: list[Path] = field(default_factory=list)


def invite(settings: Settings, engine: Engine, selection: Selection, *, out: Path | None = None,
           posters: Path | None = None, now: datetime | None = None,
           audit: Callable[[Session, Batch], None] | None = None) -> InviteRun:
    """Issue the invites of `selection`, make their QR codes, write the sheet and the posters.

    `audit` writes the caller's record of the run in the same transaction as the invites it issued
    (the console's audit log), so there is never one without the other."""
    from bot.channels.wechat import qrcode

    now = now or utcnow()
    font = _check(settings, out, posters)
    with session_scope(engine) as session:
        batch = issue(session, selection, settings.invite_ttl_days, settings.telegram_bot_username, now)
        if audit is not None:
            audit(session, batch)
    run = InviteRun(batch, qrcode.configured(settings))
    if run.wechat:
        wanted = bool(posters) or (out is not None and out.suffix.lower() == ".xlsx")
        made = qrcode.create_codes(settings, engine, [(line.invite, qrcode.expire_seconds(line.expires_at, now))
                                                      for line in batch.lines], download=wanted)
        for line in batch.lines:
            result = made[line.invite]
            if isinstance(result, qrcode.QrFailed):
                line.wechat = {"reason": result.reason}
                run.wechat_failed += 1
            else:
                line.wechat = {"ticket": result.ticket, "url": result.url, "image_url": result.image_url,
                               "expire_seconds": result.expire_seconds}
                line.wechat_png = result.png
    if out is not None:
        run.out = write_sheet(out, batch.lines, settings, run.wechat)
    if posters is not None and font is not None:
        run.posters = write_posters(posters, batch.lines, settings, font)
    return run


def _check(settings: Settings, out: Path | None, posters: Path | None) -> str | None:
    from messages.sheets import check_format

    if out is not None:
        check_format(out)
    if posters is None:
        return None
    if posters.exists() and not posters.is_dir():
        raise DataError("onboard.not_a_directory", value=str(posters))
    from messages.images import find_cjk_font

    font = find_cjk_font(settings.cjk_font)
    if font is None:
        raise DataError("onboard.posters_need_font")
    return font


def _expires(line: InviteLine, settings: Settings) -> str:
    return local_time(line.expires_at, settings.timezone)


def write_sheet(path: Path, lines: list[InviteLine], settings: Settings, wechat: bool) -> Path:
    """One row per invite: partner, name, team, code, expiry (program time), Telegram link; in a .xlsx
    the Telegram and WeChat QR codes as pictures, in a .csv the WeChat code's image URL."""
    from messages.qrcodes import qr_png
    from messages.sheets import Sheet, write

    loc = settings.locale
    xlsx = path.suffix.lower() == ".xlsx"
    keys = ["partner", "name", "team", "invite"]
    headers = [t(f"onboard.col_{k}", loc) for k in keys]
    headers.append(t("cli.time_column", loc, name=t("onboard.col_expires", loc),
                     zone=zone_name(settings.timezone, loc)))
    headers.append(t("onboard.col_telegram_link", loc))
    if xlsx:
        headers.append(t("onboard.col_telegram_qr", loc))
    headers.append(t("onboard.col_wechat_qr", loc))
    sheet = Sheet(t("onboard.sheet_title", loc), headers)
    for i, line in enumerate(lines):
        row: list[object] = [line.partner, line.name, line.team_name or line.team, line.invite,
                             _expires(line, settings), line.telegram_link]
        if xlsx:
            sheet.pictures[(i, len(row))] = qr_png(line.telegram_link)
            row.append(None)
        if not wechat:
            row.append(t("onboard.wechat_off", loc))
        elif "reason" in line.wechat:
            row.append(t("onboard.wechat_failed", loc, reason=line.wechat["reason"]))
        elif xlsx and line.wechat_png:
            sheet.pictures[(i, len(row))] = line.wechat_png
            row.append(None)
        else:
            row.append(line.wechat["image_url"])
        sheet.rows.append(row)
    return write(path, sheet)


_UNSAFE = re.compile(r"[^0-9A-Za-z._-]+")


def write_posters(folder: Path, lines: list[InviteLine], settings: Settings, font: str) -> list[Path]:
    """One A5 poster per invite, named by the partner's code (`P001.png`)."""
    from messages.qrcodes import poster

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for line in lines:
        name = _UNSAFE.sub("_", line.partner).strip("._") or "partner"
        written.append(poster(folder / f"{name}.png", font, settings.locale, name=line.name,
                              team=line.team_name or line.team, invite=line.invite,
                              expires=_expires(line, settings), telegram_link=line.telegram_link,
                              wechat_png=line.wechat_png))
    return written
