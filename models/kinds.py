"""The closed sets of words the data uses: roles, platforms, statuses, metrics, scopes.

Each is a `StrEnum`: a member *is* its string, so the columns stay plain `VARCHAR`s holding the same
values as before, rows read back compare equal to the members, and `", ".join(Role)` lists the choices.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    DEALER = "dealer"
    CAPTAIN = "captain"
    ADMIN = "admin"


class Platform(StrEnum):
    TELEGRAM = "telegram"
    WECHAT = "wechat"
    WECOM = "wecom"
    CONSOLE = "console"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # leased by a delivery worker
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"  # the user blocked the bot
    UNDELIVERABLE = "undeliverable"


class RedemptionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"
    CANCELLED = "cancelled"


class Metric(StrEnum):
    """What a contest scores (in this order in the help and the error listing the choices)."""

    REVENUE = "revenue"
    UNITS = "units"
    ORDERS = "orders"
    NEW_CUSTOMERS = "new_customers"
    MARGIN = "margin"
    ATTAINMENT = "attainment"
    SATISFACTION = "satisfaction"


class Scope(StrEnum):
    INDIVIDUAL = "individual"
    TEAM = "team"


class WebKind(StrEnum):
    """Which web pages a sign-in link or a session is for (`models.web_sessions`)."""

    CONSOLE = "console"  # the admin console, /admin/
    DEALER = "dealer"  # a dealer's own page (issue 17)
