"""The chat commands (DESIGN §4). Each takes the asker and arguments and returns replies as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from handlers import broadcasts, feedback, points, rewards, trainings, views
from handlers.identity import LOCALES, Asker, bind
from handlers.parse import clean, id_arg, is_number
from handlers.types import PUBLIC, TEAM, Button, ChatConfig, Reply
from messages.render import t
from models import contests as contest_ops
from models import delivery_report
from models import points as ledger
from models.errors import DataError
from models.rules import parse_segment
from models.tables import Contest, ContestResult, Partner, PointsEntry, Team, TeamChat


def say(asker: Asker, key: str, **params: object) -> Reply:
    """A one-line reply from the string table."""
    return Reply("say", {"key": key, "params": params}, asker.locale)


def cmd_help(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return [Reply("help", {"role": asker.role, "bound": asker.member is not None,
                           "name": asker.member.name if asker.member else None}, asker.locale, audience=PUBLIC)]


def cmd_bind(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    if asker.incoming.is_group:
        return [say(asker, "chat.bind_in_private")]
    if not args:
        if asker.member is not None:
            return cmd_help(session, asker, args, config, now)
        return [Reply("welcome", {}, asker.locale)]
    outcome, partner = bind(session, asker.incoming, args[0], now)
    if partner is None:
        return [say(asker, f"chat.invite_{outcome}")]
    team = session.get(Team, partner.team_id) if partner.team_id else None
    return [Reply("bound", {"name": partner.name, "role": partner.role, "team": team.name if team else None},
                  partner.locale)]


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
    if asker.role == "admin":  # an admin has no line of their own: the board alone, public anyway
        return [Reply("rank", view, asker.locale, audience=PUBLIC)]
    public = Reply("rank", {**view, "me": None, "team": None, "public": True}, asker.locale, audience=PUBLIC)
    return [Reply("rank", view, asker.locale, public=public)]


def cmd_team(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    team: Team | None = None
    if args and partner.role == "admin":
        team = session.execute(select(Team).where((Team.code == args[0]) | (Team.name == args[0]))).scalars().first()
        if team is None:
            return [say(asker, "chat.no_such_team", value=args[0])]
    elif partner.team_id is not None:
        team = session.get(Team, partner.team_id)
    if team is None:
        if partner.role == "admin":
            return [Reply("teams", {"teams": _team_list(session)}, asker.locale)]
        return [say(asker, "chat.no_team")]
    contest, _ = views.pick_contest(session, partner if partner.role != "admin" else None, None, now, scope="team")
    if contest is None:
        contest, _ = views.pick_contest(session, partner if partner.role != "admin" else None, None, now)
    view = views.team_view(session, contest, team, partner, now)
    # the team's own standing, without anyone's contribution: for the team's own group
    public = Reply("team", {**view, "see_members": False, "members": [], "mine": None}, asker.locale,
                   audience=TEAM, team_id=team.id)
    return [Reply("team", view, asker.locale, public=public)]


def _team_list(session: Session) -> list[dict[str, object]]:
    rows = session.execute(select(Team.code, Team.name, func.count(Partner.id))
                           .join(Partner, Partner.team_id == Team.id, isouter=True)
                           .group_by(Team.id, Team.code, Team.name).order_by(Team.code)).all()
    return [{"code": code, "name": name, "size": size} for code, name, size in rows]


def cmd_me(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    balance = ledger.balance(session, partner.id)
    recent = session.execute(select(PointsEntry).where(PointsEntry.partner_id == partner.id)
                             .order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc()).limit(5)).scalars().all()
    active = []
    for contest in views.open_contests(session, now):
        if contest_ops.status(contest, now) == "upcoming" or not views.takes_part(session, contest, partner):
            continue
        view = views.rank_view(session, contest, partner, now)
        active.append({"contest": view["contest"], "me": view["me"], "team": view["team"]})
    team = session.get(Team, partner.team_id) if partner.team_id else None
    return [Reply("me", {"name": partner.name, "code": partner.code, "role": partner.role,
                         "team": team.name if team else None, "balance": int(balance),
                         "recent": [{"amount": e.amount, "reason": e.reason, "at": e.created_at} for e in recent],
                         "titles": _titles(session, partner), "active": active, "tz": config.timezone},
                  asker.locale)]


def _titles(session: Session, partner: Partner) -> list[dict[str, object]]:
    """Honours earned in closed contests: a top-3 place, alone or with one's team."""
    stmt = (select(Contest, ContestResult).join(ContestResult, ContestResult.contest_id == Contest.id)
            .where(ContestResult.rank.is_not(None), ContestResult.rank <= 3, ContestResult.score > 0,
                   ((ContestResult.kind == "partner") & (ContestResult.partner_id == partner.id))
                   | ((ContestResult.kind == "team") & (ContestResult.team_id == partner.team_id)))
            .order_by(Contest.end_at.desc()).limit(10))
    return [{"contest": c.name, "rank": r.rank, "team": r.kind == "team", "start": c.start_at, "tz": c.timezone}
            for c, r in session.execute(stmt).all()]


def cmd_contests(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    shown = []
    for contest in views.open_contests(session, now):
        if asker.member is not None and asker.role != "admin" and not views.takes_part(session, contest,
                                                                                       asker.member):
            continue
        shown.append(views.contest_info(contest, now))
    return [Reply("contests", {"contests": shown}, asker.locale, audience=PUBLIC)]  # rules are public


def cmd_honors(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    closed = session.execute(select(Contest).where(Contest.closed_at.is_not(None))
                             .order_by(Contest.end_at.desc(), Contest.id.desc()).limit(6)).scalars().all()
    roll = []
    for contest in closed:
        winners = session.execute(select(ContestResult).where(
            ContestResult.contest_id == contest.id, ContestResult.kind != "member",
            ContestResult.rank.is_not(None), ContestResult.rank <= 3, ContestResult.score > 0)
            .order_by(ContestResult.position)).scalars().all()
        names = views.names_of(session, list(winners))
        roll.append({"contest": views.contest_info(contest, now), "winners": [views.line_view(w, names)
                                                                                for w in winners]})
    return [Reply("honors", {"roll": roll}, asker.locale, audience=PUBLIC)]  # past winners, as announced


def cmd_lang(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    choice = args[0].lower() if args else ""
    choice = {"中文": "zh", "英文": "en", "english": "en", "chinese": "zh"}.get(choice, choice)
    if choice not in LOCALES:
        return [say(asker, "chat.lang_usage")]
    if asker.partner is not None:
        asker.partner.locale = choice
        session.add(asker.partner)
    return [Reply("say", {"key": "chat.lang_set", "params": {}}, choice)]


def cmd_linkgroup(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    if asker.role != "admin":
        return [say(asker, "chat.admin_only")]
    if not asker.incoming.is_group:
        return [say(asker, "chat.linkgroup_in_group")]
    if not args:
        return [say(asker, "chat.linkgroup_usage")]
    team = session.execute(select(Team).where((Team.code == args[0]) | (Team.name == args[0]))).scalars().first()
    if team is None:
        return [say(asker, "chat.no_such_team", value=args[0])]
    link = session.execute(select(TeamChat).where(TeamChat.platform == asker.incoming.platform,
                                                  TeamChat.chat_ref == asker.incoming.chat_ref)).scalars().first()
    if link is None:
        session.add(TeamChat(team_id=team.id, platform=asker.incoming.platform,  # type: ignore[arg-type]
                             chat_ref=asker.incoming.chat_ref, linked_at=now))
    else:
        link.team_id, link.linked_at = team.id, now  # type: ignore[assignment]
    # for the group itself: from now on its team's news is posted there
    return [replace(say(asker, "chat.group_linked", team=team.name), audience=PUBLIC)]


def cmd_broadcast(session: Session, asker: Asker, args: list[str], config: ChatConfig,
                  now: datetime) -> list[Reply]:
    """`/broadcast [region=华东 …] TEXT`: a preview with the recipient count and confirm/cancel buttons."""
    if asker.role != "admin":
        return [say(asker, "broadcast.admin_only")]
    text = args[0] if args else ""  # as typed (`handlers.parse.TEXT_AFTER`)
    words = text.split()
    segment_words = []
    while words and "=" in clean(words[0]):
        segment_words.append(words.pop(0))
    body = text
    for word in segment_words:
        body = body.split(word, 1)[1]
    try:
        segment = parse_segment(",".join(clean(w) for w in segment_words), allow_role=True)
        item, count = broadcasts.draft(session, body, segment, asker.partner.id, now, now)  # type: ignore[union-attr]
    except DataError as exc:
        return [say(asker, exc.key, **exc.params)]
    buttons = [Button(t("broadcast.confirm_button", asker.locale), f"bc:confirm:{item.id}"),
               Button(t("broadcast.cancel_button", asker.locale), f"bc:cancel:{item.id}")]
    return [Reply("broadcast_preview", {"count": count, "segment": segment, "text": item.text, "later": False,
                                        "send_at": now, "tz": config.timezone}, asker.locale, buttons)]


def cmd_confirm(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return _decide_draft(session, asker, args, now, confirm=True)


def cmd_cancel(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return _decide_draft(session, asker, args, now, confirm=False)


def _decide_draft(session: Session, asker: Asker, args: list[str], now: datetime, confirm: bool) -> list[Reply]:
    """`确认` / `取消` (or the inline buttons): send or drop the admin's broadcast draft."""
    if asker.role != "admin":
        return [say(asker, "broadcast.admin_only")]
    if args and is_number(args[0]) and id_arg(args[0]) is None:  # a number no broadcast can have
        return [say(asker, "broadcast.not_found", id=args[0].lstrip("#＃"))]
    target = _draft_ref(session, asker, args, now)
    if target is None:
        return [say(asker, "broadcast.nothing_to_confirm")]
    admin_id = asker.partner.id  # type: ignore[union-attr]
    try:
        if confirm:
            item = broadcasts.confirm(session, target, now, by=admin_id)
            return [say(asker, "broadcast.queued", id=item.id, count=item.recipients)]
        item = broadcasts.cancel(session, target, by=admin_id)
    except DataError as exc:
        return [say(asker, exc.key, **exc.params)]
    if item.status != "cancelled":
        return [say(asker, "broadcast.not_draft", id=item.id)]
    return [say(asker, "broadcast.cancelled", id=item.id)]


def _draft_ref(session: Session, asker: Asker, args: list[str], now: datetime) -> int | None:
    if args and (ident := id_arg(args[0])) is not None:
        return ident
    latest = broadcasts.latest_draft(session, asker.partner.id, now)  # type: ignore[union-attr]
    return latest.id if latest else None


def cmd_deliveries(session: Session, asker: Asker, args: list[str], config: ChatConfig,
                   now: datetime) -> list[Reply]:
    if asker.role != "admin":
        return [say(asker, "chat.admin_only")]
    number = args[0].lstrip("#＃") if args and is_number(args[0]) else None
    batch = id_arg(number) if number is not None else None
    if number is not None and batch is None:  # a number no batch can have: nothing pushed under it
        data: dict = {"channels": {}, "reasons": []}
    else:
        data = delivery_report.report(session, batch_id=batch, kind="broadcast" if batch is not None else None)
    title = f"#{batch if batch is not None else number}" if number is not None else ""
    return [Reply("deliveries", {**data, "title": title}, asker.locale)]


Handler = Callable[[Session, Asker, list[str], ChatConfig, datetime], list[Reply]]

# name → (handler, needs a bound partner)
COMMANDS: dict[str, tuple[Handler, bool]] = {
    "bind": (cmd_bind, False), "help": (cmd_help, False), "lang": (cmd_lang, False),
    "rank": (cmd_rank, True), "team": (cmd_team, True), "me": (cmd_me, True), "contests": (cmd_contests, True),
    "honors": (cmd_honors, True), "linkgroup": (cmd_linkgroup, True), "broadcast": (cmd_broadcast, True),
    "confirm": (cmd_confirm, True), "cancel": (cmd_cancel, True), "deliveries": (cmd_deliveries, True),
    # points, rewards store, trainings, feedback (issue 7)
    "rewards": (rewards.cmd_rewards, True), "redeem": (rewards.cmd_redeem, True),
    "approve": (rewards.cmd_approve, True), "reject": (rewards.cmd_reject, True), "adjust": (points.cmd_adjust, True),
    "training": (trainings.cmd_training, True), "join": (trainings.cmd_join, True),
    "checkin": (trainings.cmd_checkin, True), "feedback": (feedback.cmd_feedback, False),
}
