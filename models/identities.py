"""Invite codes and chat identities: how a chat account becomes a known partner.

Guessing a code is throttled (`BindLimits`): failed binds are counted in the database, per chat
account and over all accounts, so every server process shares the count. Past either limit
every bind is refused, a right code too, until old failures leave the window: a guesser learns
nothing from a refused try. The code length makes guessing hopeless at that pace (README,
Security): 31^10 ≈ 8.2 × 10^14 codes against at most `global_failures` tries per window.

The counts are read before the failure is written, in the message's transaction: on SQLite
(one writer at a time) they are exact; on PostgreSQL tries of one account arriving at the very
same moment can each pass before the others commit, which lets a burst exceed the limit by at
most the number of server workers, once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlmodel import Session, col

from models.db import Prepared, rowcount, table_of
from models.errors import DataError
from models.kinds import OutboxStatus
from models.rows import Member
from models.tables import PLATFORMS, BindFailure, ChatIdentity, Invite, Outbox, Partner
from models.values import as_utc, utcnow

# No 0/O, 1/I/L: codes are read aloud and typed on phones.
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_LENGTH = 10


@dataclass(frozen=True)
class BindLimits:
    """Failed binds allowed within `window`: per chat account, and over all accounts."""

    account_failures: int = 5
    global_failures: int = 100
    window: timedelta = timedelta(minutes=10)


def new_invite(session: Session, partner: Partner, ttl_days: int = 7, now: datetime | None = None) -> Invite:
    """A fresh single-use invite code for the partner, valid `ttl_days` (see `issue_invites`)."""
    issued = issue_invites(session, [partner.id], ttl_days, now)
    invite: Invite = session.execute(select(Invite).where(col(Invite.code) == issued.codes[partner.id])).scalar_one()
    return invite


@dataclass(frozen=True)
class Issued:
    """What `issue_invites` did: the new code of each partner (by id), their expiry, how many older
    unused codes it revoked."""

    codes: dict[int, str]
    created_at: datetime
    expires_at: datetime
    revoked: int


CHUNK = 1000  # partners per statement: well under SQLite's and PostgreSQL's limits on bound parameters


def issue_invites(session: Session, partner_ids: list[int], ttl_days: int = 7, now: datetime | None = None) -> Issued:
    """A fresh single-use invite code for each partner, valid `ttl_days`, in the caller's transaction.

    The partners' older unused codes stop working (they answer "expired"): the newest invite is
    the one the partner was given, and a code lost on the way is revoked by issuing another.
    Two statements per thousand partners (one UPDATE revoking, one multi-row INSERT), so inviting
    a whole program takes a moment, not a command per partner.
    """
    now = now or utcnow()
    expires = now + timedelta(days=ttl_days)
    codes: dict[int, str] = {}
    taken: set[str] = set()
    for pid in partner_ids:
        code = _code()
        while code in taken:  # 31^10 codes: practically never, but two partners must not share one
            code = _code()
        taken.add(code)
        codes[pid] = code
    revoked = 0
    ids = list(codes)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        result = session.execute(update(Invite).where(col(Invite.partner_id).in_(chunk), col(Invite.used_at).is_(None),
                                                      col(Invite.created_at) <= now, col(Invite.expires_at) > now)
                                 .values(expires_at=now).execution_options(synchronize_session=False))
        revoked += rowcount(result)
        session.execute(insert(Invite), [{"code": codes[pid], "partner_id": pid, "created_at": now,
                                          "expires_at": expires, "used_at": None} for pid in chunk])
    return Issued(codes, now, expires, revoked)


def _code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))


def bind_throttled(session: Session, platform: str, user_ref: str, now: datetime, limits: BindLimits) -> bool:
    """Whether this chat account (or everyone, past the global ceiling) must wait before binding."""
    since = now - limits.window
    recent = select(func.count()).select_from(BindFailure).where(col(BindFailure.failed_at) > since)
    mine = recent.where(col(BindFailure.platform) == platform, col(BindFailure.user_ref) == user_ref)
    if session.execute(mine).scalar_one() >= limits.account_failures:
        return True
    return int(session.execute(recent).scalar_one()) >= limits.global_failures


def record_bind_failure(session: Session, platform: str, user_ref: str, now: datetime, limits: BindLimits) -> None:
    """Count a failed bind, and forget failures that have left the window."""
    session.execute(delete(BindFailure).where(col(BindFailure.failed_at) <= now - limits.window))
    session.execute(insert(BindFailure).values(platform=platform, user_ref=user_ref[:128], failed_at=now))


def redeem_invite(session: Session, *, code: str, now: datetime) -> Invite | str:
    """The invite behind `code` (any letter case), now marked used; or why not (`not_found`,
    `used`, `expired`). The claim is a conditional UPDATE, so two simultaneous uses cannot both
    succeed."""
    invite: Invite | None = session.execute(select(Invite).where(col(Invite.code) == code.upper())).scalars().first()
    if invite is None:
        return "not_found"
    if invite.used_at is not None:
        return "used"
    if as_utc(invite.expires_at) <= now:
        return "expired"
    claimed = session.execute(update(Invite).where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
                              .values(used_at=now))
    if rowcount(claimed) != 1:
        return "used"
    return invite


def bind_account(session: Session, *, partner_id: int, platform: str, user_ref: str, chat_ref: str | None,
                 now: datetime) -> ChatIdentity:
    """Bind the chat account (platform, user_ref) to the partner: a new identity, or the account's
    existing one (active or not, any partner's) taken over, as when a shared phone changes hands."""
    identity = session.execute(select(ChatIdentity).where(
        col(ChatIdentity.platform) == platform,
        col(ChatIdentity.user_ref) == user_ref)).scalars().first()
    if identity is None:
        identity = ChatIdentity(partner_id=partner_id, platform=platform, user_ref=user_ref, chat_ref=chat_ref,
                                bound_at=now, last_seen_at=now)
        session.add(identity)
    else:
        identity.partner_id, identity.active, identity.bound_at = partner_id, True, now
        identity.chat_ref, identity.last_seen_at = chat_ref, now
    session.flush()
    return identity


def identity_id(session: Session, *, platform: str, user_ref: str) -> int:
    """The id of the chat account (platform, user_ref), which must exist."""
    return int(session.execute(select(col(ChatIdentity.id)).where(
        col(ChatIdentity.platform) == platform, col(ChatIdentity.user_ref) == user_ref)).scalar_one())


def other_active_accounts(session: Session, *, partner_id: int, except_id: int) -> int:
    """How many active chat accounts the partner has besides `except_id`."""
    return int(session.execute(select(func.count()).select_from(ChatIdentity).where(
        col(ChatIdentity.partner_id) == partner_id, col(ChatIdentity.active).is_(True),
        col(ChatIdentity.id) != except_id)).scalar_one())


@dataclass(frozen=True, slots=True)
class Visit:
    """What the asker's chat account holds about their last visit (`worth_recording`)."""

    identity_id: int
    last_seen_at: datetime | None
    window_pushes: int
    chat_ref: str | None


# Built once, read as plain rows: every chat message asks them, and building a statement costs
# more than running it. The asker is read on the driver's cursor (`Prepared.typed_rows`, the
# columns' own result processors): SQLAlchemy's execution layer was two thirds of its cost (py-spy).
_MEMBER_COLUMNS = [table_of(Partner).c[f.name] for f in fields(Member)]
_IDENTITY = table_of(ChatIdentity)
_ASKER = Prepared(
    select(_IDENTITY.c.id, _IDENTITY.c.last_seen_at, _IDENTITY.c.window_pushes, _IDENTITY.c.chat_ref, *_MEMBER_COLUMNS)
    .join_from(_IDENTITY, table_of(Partner), table_of(Partner).c.id == _IDENTITY.c.partner_id)
    .where(_IDENTITY.c.platform == bindparam("platform"), _IDENTITY.c.user_ref == bindparam("user_ref"),
           _IDENTITY.c.active.is_(True)))
_SEEN = (update(_IDENTITY).where(_IDENTITY.c.id == bindparam("identity"))
         .values(last_seen_at=bindparam("now"), chat_ref=bindparam("chat"), window_pushes=0))


def asker(session: Session, *, platform: str, user_ref: str) -> tuple[Visit, Member] | None:
    """The active chat account (platform, user_ref) and its partner (active or not), as plain rows."""
    rows = _ASKER.typed_rows(session, {"platform": platform, "user_ref": user_ref})
    if not rows:
        return None
    row = rows[0]
    return Visit(row[0], row[1], row[2], row[3]), Member(*row[4:])


SEEN_PRECISION = timedelta(minutes=1)


def worth_recording(visit: Visit, *, chat_ref: str | None, now: datetime) -> bool:
    """Record the visit unless nothing would change: `last_seen_at` to the minute (it drives
    WeChat's 48-hour window and the choice of app to push on), the push count, the chat.

    Skipping the write keeps a burst of questions from one person off SQLite's single write lock.
    """
    last = as_utc(visit.last_seen_at) if visit.last_seen_at else None
    return (last is None or now - last >= SEEN_PRECISION or visit.window_pushes != 0
            or visit.chat_ref != chat_ref)


def record_visit(session: Session, *, identity_id: int, chat_ref: str | None, now: datetime) -> None:
    """The account was seen now in `chat_ref`: its window's push count starts again."""
    session.connection().execute(_SEEN, {"identity": identity_id, "now": now, "chat": chat_ref})


def accounts_of(session: Session, partner: Partner) -> list[ChatIdentity]:
    """The partner's chat accounts, oldest binding first (inactive ones too: unfollowed, blocked)."""
    return list(session.execute(select(ChatIdentity).where(col(ChatIdentity.partner_id) == partner.id)
                                .order_by(col(ChatIdentity.bound_at), col(ChatIdentity.id))).scalars())


def unbind(session: Session, partner: Partner, platform: str | None = None) -> list[ChatIdentity]:
    """Remove the partner's chat accounts (on `platform`, or all): they are strangers again and
    need a new invite. Pushes still queued for them are dropped (`undeliverable`, `unbound`);
    sent ones keep their history without the account. Returns the accounts removed."""
    if platform is not None and platform not in PLATFORMS:
        raise DataError("error.bad_choice", option="platform", value=platform, choices=", ".join(PLATFORMS))
    gone = [a for a in accounts_of(session, partner) if platform is None or a.platform == platform]
    ids = [a.id for a in gone]
    if ids:
        session.execute(update(Outbox).where(col(Outbox.identity_id).in_(ids),
                                             col(Outbox.status) == OutboxStatus.PENDING)
                        .values(status=OutboxStatus.UNDELIVERABLE, last_error="unbound"))
        session.execute(update(Outbox).where(col(Outbox.identity_id).in_(ids)).values(identity_id=None))
        session.execute(delete(ChatIdentity).where(col(ChatIdentity.id).in_(ids)))
    return gone


def active_identity(session: Session, *, platform: str, user_ref: str) -> ChatIdentity | None:
    """The bound, active chat account behind a platform user, if any."""
    return session.execute(select(ChatIdentity).where(
        col(ChatIdentity.platform) == platform, col(ChatIdentity.user_ref) == user_ref,
        col(ChatIdentity.active).is_(True))).scalars().first()


def set_active(session: Session, *, platform: str, user_ref: str, active: bool) -> None:
    """A (re)follow makes the chat account reachable again; an unfollow stops every push to it."""
    session.execute(update(ChatIdentity).where(col(ChatIdentity.platform) == platform,
                                               col(ChatIdentity.user_ref) == user_ref,
                                               col(ChatIdentity.active).is_(not active)).values(active=active))


def push_identity(session: Session, *, identity_id: int | None, platform: str, user_ref: str) -> ChatIdentity | None:
    """The chat account a push goes to: the one it names, else the platform user it is addressed to."""
    if identity_id is not None:
        return session.get(ChatIdentity, identity_id)
    return session.execute(select(ChatIdentity).where(
        col(ChatIdentity.platform) == platform, col(ChatIdentity.user_ref) == user_ref)).scalars().first()


def count_window_push(conn: Connection, *, identity_id: int) -> None:
    """One more push in the account's current WeChat window (`window_pushes`, set to 0 by a visit)."""
    conn.execute(update(ChatIdentity).where(col(ChatIdentity.id) == identity_id)
                 .values(window_pushes=col(ChatIdentity.window_pushes) + 1))


def set_window_pushes(conn: Connection, *, identity_id: int, pushes: int) -> None:
    """Set the account's push count in its window (the limit: the platform said the window is shut)."""
    conn.execute(update(ChatIdentity).where(col(ChatIdentity.id) == identity_id).values(window_pushes=pushes))
