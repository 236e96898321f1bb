"""The languages Mianzi speaks, and how a platform's language code maps onto one of them."""

from __future__ import annotations

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"


def locale_for(hint: str | None, default: str) -> str:
    """A platform language code (`zh-hans`, `en-US`, `zh_CN`) as one of our languages, else `default`.

    Telegram sends IETF tags; the language is the part before the first `-` (or `_`).
    """
    if hint:
        base = hint.split("-")[0].split("_")[0].lower()
        if base in LOCALES:
            return base
    return default
