"""The tables of an incentive program, one module per thing they hold; all importable from here.

Conventions (DESIGN §3 rule 6): every datetime is stored as naive UTC; money is integer fen;
contest scores are integers in hundredths of the metric's unit (see `models.metrics`), so that
sums, averages and percentages stay exact and sort as integers. The ledgers (sales, points) are
append-only.
"""

from __future__ import annotations

from models.tables.boards import BoardLink
from models.tables.broadcasts import Broadcast
from models.tables.chats import PLATFORMS, BindFailure, ChatIdentity, Invite, TeamChat
from models.tables.contests import Contest, ContestChange, ContestResult, Standing
from models.tables.delivery import OUTBOX_STATUSES, AccessToken, InboundSeen, Outbox
from models.tables.feedback import FEEDBACK_SUBJECTS, FeedbackRequest
from models.tables.partners import ROLES, Partner, Team
from models.tables.points import PointsEntry
from models.tables.rewards import REDEMPTION_STATUSES, Redemption, RewardItem
from models.tables.sales import MONTHLY_END, MONTHLY_START, Sale, Target
from models.tables.trainings import Training, TrainingSignup
from models.tables.web import AuditEntry, SignInLink, WebSession

__all__ = [
    "AccessToken",
    "AuditEntry",
    "BindFailure",
    "BoardLink",
    "Broadcast",
    "ChatIdentity",
    "Contest",
    "ContestChange",
    "ContestResult",
    "FEEDBACK_SUBJECTS",
    "FeedbackRequest",
    "InboundSeen",
    "MONTHLY_END",
    "MONTHLY_START",
    "Invite",
    "OUTBOX_STATUSES",
    "Outbox",
    "PLATFORMS",
    "Partner",
    "PointsEntry",
    "REDEMPTION_STATUSES",
    "ROLES",
    "Redemption",
    "RewardItem",
    "Sale",
    "SignInLink",
    "Standing",
    "Target",
    "Team",
    "TeamChat",
    "Training",
    "TrainingSignup",
    "WebSession",
]
