"""The end of a period: celebrate the top in public, tell everyone else their result in private.

Nobody below the public top N is named in a public post; each participant's private message holds
their own line with the rule behind it and an encouraging next step. Everything goes through the
outbox with keys that make a second announcement of the same close queue nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from handlers import views
from messages.render import render
from models import contests, outbox, partners, results, standings, team_chats
from models.kinds import Scope
from models.recipients import recipients
from models.rules import next_tier
from models.tables import Contest, ContestResult

PUBLIC_TOP_MAX = 10
# Channels whose senders deliver images (WeChat/WeCom upload them as temporary media first).
IMAGE_PLATFORMS = ("telegram", "console", "wechat", "wecom")


def public_view(session: Session, contest: Contest, now: datetime) -> dict[str, Any]:
    """What may be said in public about a closed contest: the top N, champions, tier counts."""
    top_n = min(contest.top_n, PUBLIC_TOP_MAX)
    lines = standings.top(session, contest, top_n)
    names = views.names_of(session, list(lines))
    top = [views.line_view(line, names) for line in lines]
    champions = [x for x in top if x["rank"] == 1]
    winning_members: list[str] = []
    if contest.scope == Scope.TEAM and lines and lines[0].rank == 1:
        winning_members = results.winning_member_names(session, contest_id=contest.id, team_id=lines[0].team_id)
    tiers = standings.tier_counts(session, contest=contest)
    tier_counts = [{"name": t["name"], "count": tiers.get(t["name"], 0)} for t in reversed(contest.tiers)
                   if tiers.get(t["name"])]
    champion_team_ids = [line.team_id for line in lines if line.rank == 1 and line.kind == "team"]
    return {"contest": views.contest_info(contest, now), "top": top, "champions": champions,
            "winning_members": winning_members, "tier_counts": tier_counts, "champion_team_ids": champion_team_ids}


def private_view(session: Session, contest: Contest, line: ContestResult, team_line: ContestResult | None,
                 now: datetime) -> dict[str, Any]:
    names = views.names_of(session, [line] + ([team_line] if team_line else []))
    own = views.line_view(line, names)
    if line.eligible and line.kind == "partner":
        own.update(views.gaps(session, contest, line))
    elif line.kind == "partner" or (line.kind == "member" and line.eligible):
        tier = next_tier(contest.tiers, line.score)
        own.update({"gap_place": None, "next_tier": tier["name"] if tier else None,
                    "gap_tier": tier["threshold"] - line.score if tier else None})
    for key in ("gap_place", "next_rank", "next_tier", "gap_tier"):
        own.setdefault(key, None)
    team = None
    if team_line is not None:
        team = {**views.line_view(team_line, names)}
    return {"me": own, "team": team}


@dataclass(frozen=True)
class ImageConfig:
    """Where recognition images go and which CJK font draws them (None: text posts only)."""

    media_dir: Path
    font: str | None

    @classmethod
    def configured(cls, media_dir: str, cjk_font: str | None) -> ImageConfig:
        """The settings' media directory and CJK font (the configured one, else a system font if any)."""
        from messages.images import find_cjk_font

        return cls(Path(media_dir), find_cjk_font(cjk_font))


def announce_close(session: Session, contest_id: int, now: datetime, group_locale: str = "zh",
                   images: ImageConfig | None = None) -> int:
    """Queue the recognition post for linked groups and each participant's result. Returns rows queued."""
    contest = contests.contest_by_id(session, contest_id=contest_id)
    if contest is None or contest.closed_at is None:
        return 0
    public = public_view(session, contest, now)
    rows: list[dict[str, Any]] = []
    for link in team_chats.linked_groups(session):
        text = render("winners_public", group_locale, **public)
        rows.append(outbox.to_group(key=f"announce:{contest.id}:chat:{link.platform}:{link.chat_ref}",
                                    kind="announcement", platform=link.platform, chat_ref=link.chat_ref,
                                    payload={"text": text}))
    own_kind = "member" if contest.scope == Scope.TEAM else "partner"
    lines = results.results_by_partner(session, contest_id=contest.id, kind=own_kind)
    team_lines = results.results_by_team(session, contest_id=contest.id)
    public_text: dict[str, str] = {}
    for person in recipients(session, partner_ids=list(lines)):
        line = lines[person.partner_id]
        if person.locale not in public_text:
            public_text[person.locale] = render("winners_public", person.locale, **public)
        private = private_view(session, contest, line, team_lines.get(line.team_id), now)
        text = public_text[person.locale] + "\n\n" + render("result_private", person.locale,
                                                           contest=public["contest"], **private)
        rows.append(outbox.personal(person, key=f"result:{contest.id}:partner:{person.partner_id}", kind="result",
                                    payload={"text": text}))
    if images is not None and images.font and public["top"]:
        rows += _image_rows(session, contest, public, lines, images, group_locale)
    return outbox.queue(session, rows, now)


def _image_rows(session: Session, contest: Contest, public: dict[str, Any], lines: dict[int, ContestResult],
                images: ImageConfig, group_locale: str) -> list[dict[str, Any]]:
    """The top-N board for the linked groups and a certificate for each champion."""
    from messages.images import board, certificate
    from messages.render import dated_name, period_text, score_text, t

    assert images.font is not None
    info = public["contest"]
    period = period_text(info["start"], info["end"], info["tz"])
    rows: list[dict[str, Any]] = []
    board_png = board(images.media_dir / f"contest-{contest.id}-board.png", images.font, group_locale, info,
                      public["top"], period)
    for link in team_chats.linked_groups(session, platforms=IMAGE_PLATFORMS):
        rows.append(outbox.to_group(key=f"announce:{contest.id}:chat:{link.platform}:{link.chat_ref}:board",
                                    kind="announcement", platform=link.platform, chat_ref=link.chat_ref,
                                    payload={"image": str(board_png),
                                             "caption": t("image.caption_board", group_locale, contest=contest.name)}))
    champions = [pid for pid, line in lines.items() if line.eligible and _is_champion(contest, line, public)]
    for person in recipients(session, partner_ids=champions):
        if person.platform not in IMAGE_PLATFORMS:
            continue
        partner = partners.partner_by_id(session, partner_id=person.partner_id)
        line = lines[person.partner_id]
        title = t("image.champion_title", person.locale,
                  contest=dated_name(contest.name, contest.start_at, contest.timezone, person.locale))
        detail = t("image.detail", person.locale, metric=t("metric." + contest.metric, person.locale),
                   score=score_text(line.score, contest.metric, person.locale))
        png = certificate(certificate_path(images.media_dir, contest.id, person.partner_id),
                          images.font, person.locale, partner.name if partner else "", title, contest.name, period,
                          detail)
        rows.append(outbox.personal(person, key=f"result:{contest.id}:partner:{person.partner_id}:certificate",
                                    kind="result", payload={"image": str(png),
                                                            "caption": t("image.caption_certificate", person.locale)}))
    return rows


def certificate_path(media_dir: Path, contest_id: int, partner_id: int) -> Path:
    """Where a champion's certificate of a contest is written (and the dealer page finds it)."""
    return media_dir / f"contest-{contest_id}-certificate-{partner_id}.png"


def _is_champion(contest: Contest, line: ContestResult, public: dict[str, Any]) -> bool:
    """Rank 1 alone or shared; in a team contest, every counted member of the winning team."""
    if contest.scope == Scope.TEAM:
        return line.kind == "member" and any(c["rank"] == 1 for c in public["champions"]) and \
            line.team_id in public["champion_team_ids"]
    return line.rank == 1 and line.score > 0


def announce_opening(session: Session, contest_id: int, now: datetime) -> int:
    """Tell the participants of a new (e.g. rolled) period its rules, when it starts."""
    contest = contests.contest_by_id(session, contest_id=contest_id)
    if contest is None:
        return 0
    info = views.contest_info(contest, now)
    rows = []
    people = [p for p in recipients(session) if _takes_part(session, contest, p.partner_id)]
    texts: dict[str, str] = {}
    for person in people:
        if person.locale not in texts:
            texts[person.locale] = render("contest_opened", person.locale, contests=[info])
        rows.append(outbox.personal(person, key=f"opened:{contest.id}:partner:{person.partner_id}", kind="announcement",
                                    payload={"text": texts[person.locale]}, next_attempt_at=max(contest.start_at, now)))
    return outbox.queue(session, rows, now)


def _takes_part(session: Session, contest: Contest, partner_id: int) -> bool:
    partner = partners.partner_by_id(session, partner_id=partner_id)
    return partner is not None and views.takes_part(session, contest, partner)



MISSING_SHOWN = 50  # codes named in the admins' message; the CLI prints them all


def tell_admins_missing_targets(session: Session, contest: Contest, codes: list[str], now: datetime) -> int:
    """A recurring attainment contest rolled into a period where some participants have no target:
    every admin hears which (once per period)."""
    from handlers.notify import push

    if not codes:
        return 0
    admins = partners.active_admin_ids(session)
    shown = codes[:MISSING_SHOWN]
    params = {"id": contest.id, "name": contest.name, "count": len(codes), "codes": "、".join(shown),
              "more": len(codes) - len(shown)}
    return push(session, list(admins), key=lambda pid: f"targets_missing:{contest.id}:partner:{pid}",
                kind="announcement", template="say", context={"key": "contest.targets_missing", "params": params},
                now=now)
