"""Recognising commands: Telegram-style slash commands and WeChat-style Chinese keywords."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from handlers import registry
from messages.locales import keywords

# a survey answer typed as a bare number (WeChat); out-of-range numbers are told the range
RATING = re.compile(r"^-?\d{1,3}\s*[分星]?$")
# The largest id a row can have (PostgreSQL's INTEGER keys; SQLite's are 64-bit). A larger number
# names nothing, and must not reach the database: SQLite raises OverflowError past 2**63, and
# PostgreSQL refuses to cast it to INTEGER.
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Command:
    name: str  # a known command name, or "" when the text is not a command
    args: list[str]
    raw: str
    rest: str = ""  # the text after the command word, as typed (a broadcast's message)


def _digits(arg: str) -> str:
    return arg.strip().removeprefix("#").removeprefix("＃")


def is_number(arg: str) -> bool:
    """Whether an argument is a whole number (`12`, `#12`, full-width `１２`), however large."""
    return _digits(arg).isdecimal()


def id_arg(arg: str) -> int | None:
    """The id an argument names, or None when it can name no row: not a number, 0, or past `MAX_ID`.

    Every command that takes an id parses it here, so that `/rank 99999999999999999999` gets the
    same "not found" as `/rank 12345` instead of an apology (the caller tells "not a number",
    its usage line, from "no such row" with `is_number`).
    """
    digits = _digits(arg)
    if not digits.isdecimal() or len(digits) > len(str(MAX_ID)):
        return None
    value = int(digits)
    return value if 0 < value <= MAX_ID else None


def strip_controls(text: str) -> str:
    """Drop control and zero-width characters (never seen, only confusing); keep everything else."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()


def clean(text: str) -> str:
    """NFKC-normalise (full-width ／ and letters become ASCII), drop control and zero-width characters.

    For matching only (command words, ids, numbers): what people write is kept as they wrote it.
    """
    return strip_controls(unicodedata.normalize("NFKC", text))


def _after(text: str, words: int) -> str:
    """`text` without its first `words` whitespace-separated words, spacing and punctuation kept."""
    for _ in range(words):
        text = text.lstrip()
        cut = re.search(r"\s", text)
        text = text[cut.start():] if cut else ""
    return text.strip()


def _command(name: str, args: list[str], raw: str, rest: str) -> Command:
    """The command with its normalised arguments, and for `text_after` commands the text as typed."""
    keep = registry.table()[name].text_after
    if keep is not None:
        args = args[:keep] + ([_after(rest, keep)] if len(args) > keep else [])
    return Command(name, args, raw, rest)


def parse(text: str, bot_username: str = "") -> Command:
    """`/rank@MianziBot 2`, `/RANK`, `排行`, ` 绑定 AB12CD34 ` → a command; anything else → name "".

    The command word and arguments are matched NFKC-normalised (`／ｒａｎｋ`, `兑换 Ａ１`); `rest`
    and the text arguments of `text_after` commands (`handlers.registry.Spec`) are the user's own characters.
    """
    typed = strip_controls(text)
    raw = clean(text)
    parts = raw.split()
    if not parts:
        return Command("", [], raw)
    if raw.startswith("bc:"):  # an inline button: bc:<confirm|cancel>:<broadcast id>
        _, action, ref = (raw.split(":") + ["", ""])[:3]
        return Command(action if action in ("confirm", "cancel") else "", [ref], raw)
    if raw.startswith("fb:"):  # a feedback button: fb:<request id>:<rating>
        _, ref, rating = (raw.split(":") + ["", ""])[:3]
        return Command("feedback", [ref, rating], raw)
    if RATING.match(raw):
        return Command("feedback", [raw], raw)
    head, args = parts[0], parts[1:]
    rest = _after(typed, 1)
    if head.startswith("/"):
        name, _, addressee = head[1:].partition("@")
        name = name.lower()
        if addressee and bot_username and addressee.lower() != bot_username.lower():
            return Command("", [], raw)  # a command for another bot in the same group
        slash = registry.slash_names().get(name)
        if slash is not None:
            return _command(slash, args, raw, rest)
        return Command("", args, raw)
    table = registry.table()
    for keyword, name in keywords().items():
        spec = table[name]
        if spec.glued and spec.text_after == 0 and raw.startswith(keyword):
            rest = typed[len(keyword):].strip()  # "群发大家好": all of it is the text
            return _command(name, raw[len(keyword):].split(), raw, rest)
        if head.lower() == keyword:
            return _command(name, args, raw, rest)
        if spec.glued and head.startswith(keyword) and len(parts) == 1:
            rest = head[len(keyword):].strip()  # "绑定AB12CD34" without a space
            return Command(name, [rest] if rest else [], raw, rest)
    return Command("", [], raw)


def command_name(word: str) -> str | None:
    """The command a word names, as a slash name without its slash (`join`) or a keyword (`报名`)."""
    word = clean(word).lower()
    return registry.slash_names().get(word) or keywords().get(word)
