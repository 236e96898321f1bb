"""The languages Mianzi speaks, how a platform's language code maps onto one of them, and the
command words of each (`messages/<locale>/keywords.toml`)."""

from __future__ import annotations

import tomllib
import unicodedata
from functools import lru_cache
from pathlib import Path

from models.values import DEFAULT_LOCALE, LOCALES

__all__ = ["DEFAULT_LOCALE", "LOCALES", "keywords", "locale_for"]

HERE = Path(__file__).parent


def locale_for(hint: str | None, default: str) -> str:
    """A platform language code (`zh-hans`, `en-US`, `zh_CN`) as one of our languages, else `default`.

    Telegram sends IETF tags; the language is the part before the first `-` (or `_`).
    """
    if hint:
        base = hint.split("-")[0].split("_")[0].lower()
        if base in LOCALES:
            return base
    return default


@lru_cache(maxsize=1)
def keywords() -> dict[str, str]:
    """Every language's command words (`messages/<locale>/keywords.toml`): word → command name.

    Words are kept NFKC-normalised and lower-cased, as `handlers.parse` matches them. A word
    naming two commands is a mistake in the tables, refused when they are first read.
    """
    found: dict[str, str] = {}
    for locale in LOCALES:
        path = HERE / locale / "keywords.toml"
        if not path.exists():
            continue
        with path.open("rb") as f:
            table = tomllib.load(f)
        for name, words in table.items():
            for word in words:
                key = unicodedata.normalize("NFKC", word).strip().lower()
                if found.setdefault(key, name) != name:
                    raise ValueError(f"{path}: {word!r} names both {found[key]!r} and {name!r}")
    return found
