"""The tables of an incentive program.

Conventions (DESIGN §3 rule 6): every datetime is stored as naive UTC; money is integer fen;
contest scores are integers in hundredths of the metric's unit (see `models.metrics`), so that
sums, averages and percentages stay exact and sort as integers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

ROLES = ("dealer", "captain", "admin")
PLATFORMS = ("telegram", "wechat", "wecom", "console")


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)


class Partner(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    region: str | None = Field(default=None, max_length=64)
    city_tier: int | None = None
    industry: str | None = Field(default=None, max_length=64)
    size: str | None = Field(default=None, max_length=32)
    joined_on: date | None = None
    role: str = Field(default="dealer", max_length=16)
    locale: str = Field(default="zh", max_length=8)
    active: bool = True


class Invite(SQLModel, table=True):
    """A one-time code that binds a chat account to a partner."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class ChatIdentity(SQLModel, table=True):
    """A partner's account on one platform; a partner may be bound on several."""

    __table_args__ = (UniqueConstraint("platform", "user_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    platform: str = Field(max_length=16)
    user_ref: str = Field(max_length=128)
    chat_ref: str | None = Field(default=None, max_length=128)
    active: bool = True
    bound_at: datetime
    last_seen_at: datetime | None = None
    # WeChat's customer-service window: free-form pushes only within 48 h of the user's last
    # message, and at most 5 of them per window; the count restarts with each user message.
    window_pushes: int = 0


class Sale(SQLModel, table=True):
    """Append-only ledger of sales facts; `ext_id` is the source system's id."""

    __table_args__ = (
        Index("ix_sale_occurred_partner", "occurred_at", "partner_id"),
        Index("ix_sale_partner_customer", "partner_id", "customer", "occurred_at"),
        Index("ix_sale_reverses", "reverses", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    ext_id: str = Field(max_length=128, unique=True)
    partner_id: int = Field(foreign_key="partner.id")
    occurred_at: datetime
    amount_fen: int = Field(sa_type=BigInteger)
    units: int = 0
    margin_fen: int | None = Field(default=None, sa_type=BigInteger)
    customer: str | None = Field(default=None, max_length=128)
    satisfaction: int | None = None
    imported_at: datetime
    # A correcting entry (`models.corrections`): the id of the sale it cancels, whose negatives it
    # carries (amount, units, margin; the same rating, counted negatively), in the same period.
    reverses: int | None = None
    reason: str | None = Field(default=None, max_length=500)


MONTHLY_START, MONTHLY_END = date(1970, 1, 1), date(9999, 12, 31)


class Target(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("partner_id", "period_start", "period_end"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    period_start: date
    period_end: date
    target_fen: int = Field(sa_type=BigInteger)
    # A recurring monthly amount (a targets row with period `monthly` / `每月`): the target of every
    # contest period within one calendar month that has no dated target of its own. Stored with the
    # period MONTHLY_START – MONTHLY_END, so one per partner.
    monthly: bool = False


class Contest(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    metric: str = Field(max_length=32)
    scope: str = Field(default="individual", max_length=16)
    team_score: str = Field(default="sum", max_length=8)
    start_at: datetime = Field(index=True)
    end_at: datetime = Field(index=True)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    grace_seconds: int = 0
    segment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    min_tenure_days: int | None = None
    min_score: int | None = Field(default=None, sa_type=BigInteger)
    min_satisfaction: int | None = None
    prizes: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    tiers: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    top_n: int = 10
    recur: str = Field(default="none", max_length=16)
    previous_id: int | None = Field(default=None, foreign_key="contest.id", unique=True)
    created_at: datetime
    closed_at: datetime | None = Field(default=None, index=True)
    sales_at_close: int | None = None  # the period's sales the close saw; `late_sales` counts the others
    standings_dirty: bool = True
    standings_at: datetime | None = None
    # A contest on an average (satisfaction): fewer ratings than this in the period and a partner
    # is shown as not yet eligible (one 5-star rating does not beat a hundred near 4.9).
    min_ratings: int = 3
    featured: bool = False  # `排行` without a name shows the featured running contest first
    cancelled_at: datetime | None = None  # created by mistake: never closes, never pays, kept for the record
    cancelled_by: str | None = Field(default=None, max_length=64)


class _StandingColumns(SQLModel):
    """Shared shape of a live standing row and a frozen result row.

    `kind` is `partner` (individual contest), `team` (team contest) or `member` (a team member's
    contribution inside a team contest; never ranked by itself).
    """

    contest_id: int = Field(foreign_key="contest.id")
    kind: str = Field(max_length=8)
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    team_id: int | None = Field(default=None, foreign_key="team.id")
    score: int = Field(sa_type=BigInteger)
    reached_at: datetime | None = None
    eligible: bool
    reason: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    rank: int | None = None
    position: int | None = None
    tier: str | None = Field(default=None, max_length=32)
    prize_points: int = 0
    rebate_pct: str | None = Field(default=None, max_length=16)
    # The partner's (or team's) revenue in the period, frozen with the result: what a rebate is a
    # share of (`mianzi contests results`), whatever the contest's metric and whatever arrives late.
    revenue_fen: int | None = Field(default=None, sa_type=BigInteger)


class Standing(_StandingColumns, table=True):
    """Live standings cache of an open contest; rebuilt from the sales ledger at any time."""

    __table_args__ = (
        Index("ix_standing_lookup", "contest_id", "kind", "partner_id"),
        Index("ix_standing_team", "contest_id", "kind", "team_id"),
        Index("ix_standing_position", "contest_id", "kind", "position"),
        Index("ix_standing_score", "contest_id", "kind", "score", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)


class ContestResult(_StandingColumns, table=True):
    """Frozen at close: what everyone scored, their rank and prize, and the rule behind it."""

    __table_args__ = (
        Index("ix_result_lookup", "contest_id", "kind", "partner_id"),
        Index("ix_result_team", "contest_id", "kind", "team_id"),
        Index("ix_result_position", "contest_id", "kind", "position"),
        Index("ix_result_score", "contest_id", "kind", "score", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)


class ContestChange(SQLModel, table=True):
    """The log of changes to a contest after it was created: who, what (old and new values), when.

    `action` is `edit` or `cancel`; `changes` maps each changed field to `[old, new]` (JSON values).
    """

    id: int | None = Field(default=None, primary_key=True)
    contest_id: int = Field(foreign_key="contest.id", index=True)
    action: str = Field(max_length=16)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    by: str = Field(max_length=64)
    at: datetime
    announced: int = 0  # messages queued to the participants about it


class PointsEntry(SQLModel, table=True):
    """Append-only points ledger. The balance is the sum of `amount`; `source_key` is unique."""

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    kind: str = Field(max_length=16)  # earned, spent, refunded, adjusted, expired
    amount: int
    reason: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    source_key: str = Field(max_length=200, unique=True)
    created_at: datetime


class TeamChat(SQLModel, table=True):
    """A group chat linked to a team (`/linkgroup`), where team news can be posted."""

    __table_args__ = (UniqueConstraint("platform", "chat_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    platform: str = Field(max_length=16)
    chat_ref: str = Field(max_length=128)
    linked_at: datetime


class InboundSeen(SQLModel, table=True):
    """Platform deliveries already handled (Telegram update_id, WeChat MsgId …), so retries run once."""

    __table_args__ = (UniqueConstraint("platform", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    key: str = Field(max_length=128)
    seen_at: datetime = Field(index=True)


class BindFailure(SQLModel, table=True):
    """A failed bind (a wrong, used or expired invite code) by one chat account, for the throttle
    (`models.identities`); rows older than the throttle's window are pruned as new ones come."""

    __table_args__ = (Index("ix_bindfailure_account", "platform", "user_ref", "failed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    user_ref: str = Field(max_length=128)
    failed_at: datetime = Field(index=True)


OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "blocked", "undeliverable")


class Outbox(SQLModel, table=True):
    """Every push, one row per recipient and channel, before it is sent (DESIGN §3 rule 2).

    `key` makes queuing idempotent (`broadcast:42:partner:1007`). The delivery worker claims due
    rows by setting `status=sending` with a lease; a crashed worker's lease expires and another
    worker sends the row again, which bounds duplicates to the rows in flight at the crash.
    """

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32)  # broadcast, result, announcement, reminder, reply …
    batch_id: int | None = Field(default=None, index=True)  # the broadcast (or other batch) it belongs to
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    identity_id: int | None = Field(default=None, foreign_key="chatidentity.id")
    platform: str = Field(max_length=16)
    chat_ref: str = Field(max_length=128)
    is_group: bool = False
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    leased_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime
    sent_at: datetime | None = None


class Broadcast(SQLModel, table=True):
    """An announcement from an admin to everyone or a segment; queued into the outbox on confirm."""

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(max_length=4000)
    segment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_by: int | None = Field(default=None, foreign_key="partner.id")
    created_at: datetime
    send_at: datetime
    status: str = Field(default="draft", max_length=16)  # draft, queued, cancelled
    recipients: int = 0
    confirmed_at: datetime | None = None


class AccessToken(SQLModel, table=True):
    """Platform access tokens shared by every server process (WeChat invalidates older ones)."""

    id: int | None = Field(default=None, primary_key=True)
    app: str = Field(max_length=128, unique=True)  # e.g. wechat:<appid>, wecom:<corpid>:<agentid>
    token: str = Field(max_length=1024)
    expires_at: datetime
    fetched_at: datetime
