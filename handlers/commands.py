"""The chat commands (DESIGN §4). Each takes the asker and arguments and returns replies as data.

Each is declared where it is written, with `handlers.registry.command`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers import accounts, broadcasts, views
from handlers.identity import Asker, bind
from handlers.notify import say
from handlers.parse import clean, id_arg, is_number
from handlers.registry import ADMINS, command
from handlers.types import PUBLIC, TEAM, Button, ChatConfig, Reply
from messages.locales import LOCALES
from messages.render import t
from models import contests as contest_ops
from models import delivery_report, points, teams
from models.kinds import Role
from models.rules import parse_segment
from models.tables import Partner, Team
from models.values import locale_word


@command("help", needs_partner=False)
def cmd_help(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return [Reply("help", {"role": asker.role, "bound": asker.member is not None,
                           "name": asker.member.name if asker.member else None}, asker.locale, audience=PUBLIC)]


@command("bind", needs_partner=False, aliases=("start",), glued=True)
def cmd_bind(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    if asker.incoming.is_group:
        return [say(asker, "chat.bind_in_private")]
    if not args:
        if asker.member is not None:
            return cmd_help(session, asker, args, config, now)
        return [Reply("welcome", {}, asker.locale)]
    outcome, partner = bind(session, asker.incoming, args[0], now, config.bind_limits)
    if partner is None:
        minutes = int(config.bind_limits.window.total_seconds() // 60)
        return [say(asker, f"chat.invite_{outcome}", minutes=minutes)]
    if asker.member is None or asker.member.id != partner.id:  # an account new to this partner
        accounts.tell_of_new_account(session, partner, asker.incoming.platform, asker.incoming.user_ref, now)
    team = teams.team_by_id(session, team_id=partner.team_id) if partner.team_id else None
    return [Reply("bound", {"name": partner.name, "role": partner.role, "team": team.name if team else None},
                  partner.locale)]


@command("rank")
def cmd_rank(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    contest, running = views.pick_contest(session, asker.member, args[0] if args else None, now)
    if contest is None:
        if args:
            return [say(asker, "chat.no_such_contest", value=args[0])]
        return [say(asker, "chat.no_running_contest")]
    view = views.rank_view(session, contest, asker.member, now)
    view["others"] = [{"id": c.id, "name": c.name} for c in running if c.id != contest.id]
    view["role"] = asker.role
    view["public"] = False
    view["dealer_link"] = None
    if asker.role == Role.ADMIN:  # an admin has no line of their own: the board alone, public anyway
        return [Reply("rank", view, asker.locale, audience=PUBLIC)]
    public = Reply("rank", {**view, "me": None, "team": None, "public": True}, asker.locale, audience=PUBLIC)
    # The dealer's own page, from their private answer: Telegram's Mini App button, WeChat's link
    buttons = []
    if asker.incoming.platform == "telegram" and config.dealer_page_url:
        buttons.append(Button(t("dealer.chat.button", asker.locale), "", web_app=config.dealer_page_url))
    view["dealer_link"] = config.dealer_link(asker.incoming.platform)
    return [Reply("rank", view, asker.locale, buttons=buttons, public=public)]


@command("team")
def cmd_team(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    team: Team | None = None
    if args and partner.role == Role.ADMIN:
        team = teams.find(session, ref=args[0])
        if team is None:
            return [say(asker, "chat.no_such_team", value=args[0])]
    elif partner.team_id is not None:
        team = teams.team_by_id(session, team_id=partner.team_id)
    if team is None:
        if partner.role == Role.ADMIN:
            return [Reply("teams", {"teams": _team_list(session)}, asker.locale)]
        return [say(asker, "chat.no_team")]
    contest, _ = views.pick_contest(session, partner if partner.role != Role.ADMIN else None, None, now, scope="team")
    if contest is None:
        contest, _ = views.pick_contest(session, partner if partner.role != Role.ADMIN else None, None, now)
    view = views.team_view(session, contest, team, partner, now)
    # the team's own standing, without anyone's contribution: for the team's own group
    public = Reply("team", {**view, "see_members": False, "members": [], "mine": None}, asker.locale,
                   audience=TEAM, team_id=team.id)
    return [Reply("team", view, asker.locale, public=public)]


def _team_list(session: Session) -> list[dict[str, object]]:
    return [{"code": code, "name": name, "size": size} for code, name, size in teams.sizes(session)]


@command("me")
def cmd_me(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    balance = points.balance(session, partner.id)
    recent = points.entries(session, partner.id, limit=5)
    active = []
    for contest in views.open_contests(session, now):
        if contest_ops.status(contest, now) == "upcoming" or not views.takes_part(session, contest, partner):
            continue
        view = views.rank_view(session, contest, partner, now)
        active.append({"contest": view["contest"], "me": view["me"], "team": view["team"]})
    team = teams.team_by_id(session, team_id=partner.team_id) if partner.team_id else None
    return [Reply("me", {"name": partner.name, "code": partner.code, "role": partner.role,
                         "team": team.name if team else None, "balance": int(balance),
                         "recent": [{"amount": e.amount, "reason": e.reason, "at": e.created_at} for e in recent],
                         "titles": _titles(session, partner), "active": active, "tz": config.timezone},
                  asker.locale)]


def _titles(session: Session, partner: Partner) -> list[dict[str, object]]:
    """Honours earned in closed contests: a top-3 place, alone or with one's team."""
    found = contest_ops.honours_of(session, partner_id=partner.id, team_id=partner.team_id)
    return [{"contest": c.name, "rank": r.rank, "team": r.kind == "team", "start": c.start_at, "tz": c.timezone}
            for c, r in found]


@command("contests")
def cmd_contests(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    shown = []
    for contest in views.open_contests(session, now):
        if asker.member is not None and asker.role != Role.ADMIN and not views.takes_part(session, contest,
                                                                                       asker.member):
            continue
        shown.append(views.contest_info(contest, now))
    return [Reply("contests", {"contests": shown}, asker.locale, audience=PUBLIC)]  # rules are public


@command("honors")
def cmd_honors(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    roll = []
    for contest in contest_ops.recently_closed(session, limit=6):
        winners = contest_ops.winners(session, contest_id=contest.id)
        names = views.names_of(session, list(winners))
        roll.append({"contest": views.contest_info(contest, now), "winners": [views.line_view(w, names)
                                                                                for w in winners]})
    return [Reply("honors", {"roll": roll}, asker.locale, audience=PUBLIC)]  # past winners, as announced


@command("lang", needs_partner=False, glued=True)
def cmd_lang(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    choice = locale_word(args[0]) if args else ""
    if choice not in LOCALES:
        return [say(asker, "chat.lang_usage")]
    if asker.partner is not None:
        asker.partner.locale = choice
        session.add(asker.partner)
    return [Reply("say", {"key": "chat.lang_set", "params": {}}, choice)]


@command("linkgroup", roles=ADMINS)
def cmd_linkgroup(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    if not asker.incoming.is_group:
        return [say(asker, "chat.linkgroup_in_group")]
    if not args:
        return [say(asker, "chat.linkgroup_usage")]
    team = teams.find(session, ref=args[0])
    if team is None:
        return [say(asker, "chat.no_such_team", value=args[0])]
    teams.link_chat(session, team_id=team.id, platform=asker.incoming.platform,
                    chat_ref=asker.incoming.chat_ref, now=now)
    # for the group itself: from now on its team's news is posted there
    return [replace(say(asker, "chat.group_linked", team=team.name), audience=PUBLIC)]


@command("broadcast", roles=ADMINS, text_after=0, glued=True)
def cmd_broadcast(session: Session, asker: Asker, args: list[str], config: ChatConfig,
                  now: datetime) -> list[Reply]:
    """`/broadcast [region=华东 …] TEXT`: a preview with the recipient count and confirm/cancel buttons."""
    text = args[0] if args else ""  # as typed (`text_after=0`)
    words = text.split()
    segment_words = []
    while words and "=" in clean(words[0]):
        segment_words.append(words.pop(0))
    body = text
    for word in segment_words:
        body = body.split(word, 1)[1]
    segment = parse_segment(",".join(clean(w) for w in segment_words), allow_role=True, allow_platform=True)
    item, count = broadcasts.draft(session, body, segment, asker.partner.id, now, now)  # type: ignore[union-attr]
    buttons = [Button(t("broadcast.confirm_button", asker.locale), f"bc:confirm:{item.id}"),
               Button(t("broadcast.cancel_button", asker.locale), f"bc:cancel:{item.id}")]
    return [Reply("broadcast_preview", {"count": count, "segment": segment, "text": item.text, "later": False,
                                        "send_at": now, "tz": config.timezone}, asker.locale, buttons)]


@command("confirm", roles=ADMINS)
def cmd_confirm(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return _decide_draft(session, asker, args, now, confirm=True)


@command("cancel", roles=ADMINS)
def cmd_cancel(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return _decide_draft(session, asker, args, now, confirm=False)


def _decide_draft(session: Session, asker: Asker, args: list[str], now: datetime, confirm: bool) -> list[Reply]:
    """`确认` / `取消` (or the inline buttons): send or drop the admin's broadcast draft."""
    if args and is_number(args[0]) and id_arg(args[0]) is None:  # a number no broadcast can have
        return [say(asker, "broadcast.not_found", id=args[0].lstrip("#＃"))]
    target = _draft_ref(session, asker, args, now)
    if target is None:
        return [say(asker, "broadcast.nothing_to_confirm")]
    admin_id = asker.partner.id  # type: ignore[union-attr]
    if confirm:
        item = broadcasts.confirm(session, target, now, by=admin_id)
        return [say(asker, "broadcast.queued", id=item.id, count=item.recipients)]
    item = broadcasts.cancel(session, target, by=admin_id)
    if item.status != "cancelled":
        return [say(asker, "broadcast.not_draft", id=item.id)]
    return [say(asker, "broadcast.cancelled", id=item.id)]


def _draft_ref(session: Session, asker: Asker, args: list[str], now: datetime) -> int | None:
    if args and (ident := id_arg(args[0])) is not None:
        return ident
    latest = broadcasts.latest_draft(session, asker.partner.id, now)  # type: ignore[union-attr]
    return latest.id if latest else None


@command("deliveries", roles=ADMINS)
def cmd_deliveries(session: Session, asker: Asker, args: list[str], config: ChatConfig,
                   now: datetime) -> list[Reply]:
    number = args[0].lstrip("#＃") if args and is_number(args[0]) else None
    batch = id_arg(number) if number is not None else None
    if number is not None and batch is None:  # a number no batch can have: nothing pushed under it
        data: dict[str, Any] = {"channels": {}, "reasons": []}
    else:
        data = delivery_report.report(session, batch_id=batch, kind="broadcast" if batch is not None else None)
    title = f"#{batch if batch is not None else number}" if number is not None else ""
    return [Reply("deliveries", {**data, "title": title}, asker.locale)]
