"""A partner's chat accounts: news of a new one, for the partner's other accounts and the admins.

A second account bound to a partner who already has one is how a leaked or guessed invite code
shows itself: the partner (on an account they already use) and the admins hear of it at once,
and an admin can remove it (`mianzi partners unbind CODE --platform P`).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.notify import push
from messages.render import t
from models import identities, partners
from models.recipients import Recipient
from models.tables import Partner


def tell_of_new_account(session: Session, partner: Partner, platform: str, user_ref: str, now: datetime) -> int:
    """Queue the news that `partner` just bound (platform, user_ref) while having other active
    accounts; nothing when it is their only one. Returns how many messages were queued."""
    new_id = identities.identity_id(session, platform=platform, user_ref=user_ref)
    others = identities.other_active_accounts(session, partner_id=partner.id, except_id=new_id)
    if not others:
        return 0

    def owner(r: Recipient) -> dict[str, object]:
        return {"key": "accounts.new_for_owner", "params": {"platform": t(f"platform.{platform}", r.locale)}}

    def admin(r: Recipient) -> dict[str, object]:
        return {"key": "accounts.new_for_admin", "params": {
            "name": partner.name, "code": partner.code, "platform": t(f"platform.{platform}", r.locale),
            "platform_id": platform}}

    queued = push(session, [partner.id], key=lambda pid: f"account:{new_id}:{now.isoformat()}:owner",
                  kind="account", template="say", context=owner, now=now, exclude_identities=[new_id])
    admins = partners.active_admin_ids(session)
    return queued + push(session, admins, key=lambda pid: f"account:{new_id}:{now.isoformat()}:admin:{pid}",
                         kind="account", template="say", context=admin, now=now, exclude_identities=[new_id])
