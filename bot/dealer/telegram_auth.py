"""Telegram Mini App sign-in: the `initData` string Telegram hands the page, checked as Telegram documents.

https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app:
`secret_key = HMAC-SHA256(key="WebAppData", msg=bot_token)`; the data-check-string is every
received field but `hash`, as `key=value` lines sorted by key and joined with `\\n`; the data is
genuine when `hex(HMAC-SHA256(key=secret_key, msg=data_check_string))` equals `hash` (compared in
constant time). The signature alone never expires, so `auth_date` must also be recent
(`MIANZI_WEBAPP_MAX_AGE_SECONDS`): libraries that skip that accept a copied initData for ever.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

MAX_INIT_DATA = 4096  # Telegram's initData is a few hundred bytes; anything much longer is not from it
FUTURE_SLACK = 60  # seconds an auth_date may lie ahead of our clock (clock skew)


class Refusal(StrEnum):
    MALFORMED = "malformed"  # not a query string, a field twice, no user
    NO_HASH = "no_hash"
    BAD_HASH = "bad_hash"  # changed, or signed with another bot's token
    STALE = "stale"  # auth_date too old (or far in the future)


@dataclass(frozen=True)
class WebAppUser:
    user_id: str
    language_code: str | None
    auth_date: int


class InitDataRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


def secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode("utf-8"), hashlib.sha256).digest()


def data_check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def sign(fields: dict[str, str], bot_token: str) -> str:
    """The `hash` Telegram puts on these fields (tests build real initData with it)."""
    return hmac.new(secret_key(bot_token), data_check_string(fields).encode("utf-8"), hashlib.sha256).hexdigest()


def check(init_data: str, *, bot_token: str, max_age: int, now: float) -> WebAppUser:
    """The Telegram user `init_data` vouches for; `InitDataRefused` with the reason otherwise."""
    if not init_data or len(init_data) > MAX_INIT_DATA:
        raise InitDataRefused(Refusal.MALFORMED)
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InitDataRefused(Refusal.MALFORMED) from None
    fields = dict(pairs)
    if len(fields) != len(pairs):  # a field given twice: which one was signed?
        raise InitDataRefused(Refusal.MALFORMED)
    given = fields.get("hash")
    if not given:
        raise InitDataRefused(Refusal.NO_HASH)
    expected = sign(fields, bot_token)
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise InitDataRefused(Refusal.BAD_HASH)
    try:
        auth_date = int(fields.get("auth_date", ""))
    except ValueError:
        raise InitDataRefused(Refusal.STALE) from None
    if now - auth_date > max_age or auth_date - now > FUTURE_SLACK:
        raise InitDataRefused(Refusal.STALE)
    try:
        user = json.loads(fields.get("user", ""))
    except ValueError:
        raise InitDataRefused(Refusal.MALFORMED) from None
    if not isinstance(user, dict) or type(user.get("id")) is not int:
        raise InitDataRefused(Refusal.MALFORMED)
    language = user.get("language_code")
    return WebAppUser(str(user["id"]), language if isinstance(language, str) else None, auth_date)
