"""Recognising commands: Telegram-style slash commands and WeChat-style Chinese keywords."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# keyword (as typed on WeChat) → command name
KEYWORDS = {
    "绑定": "bind", "帮助": "help", "排行": "rank", "排名": "rank", "团队": "team", "我的": "me",
    "比赛": "contests", "荣誉": "honors", "语言": "lang", "关联群": "linkgroup", "菜单": "help",
    "群发": "broadcast", "确认": "confirm", "取消": "cancel", "送达": "deliveries",
}
COMMANDS = ("start", "bind", "help", "rank", "team", "me", "contests", "honors", "lang", "linkgroup",
            "broadcast", "confirm", "cancel", "deliveries")
ALIASES = {"start": "bind"}
# points, rewards store, trainings, feedback (issue 7)
KEYWORDS.update({"积分商城": "rewards", "商城": "rewards", "兑换": "redeem", "批准": "approve", "驳回": "reject",
                 "调整积分": "adjust", "培训": "training", "报名": "join", "签到": "checkin"})
COMMANDS += ("rewards", "redeem", "approve", "reject", "adjust", "training", "join", "checkin", "feedback")
# a survey answer typed as a bare number (WeChat); out-of-range numbers are told the range
RATING = re.compile(r"^-?\d{1,3}\s*[分星]?$")
# The largest id a row can have (PostgreSQL's INTEGER keys; SQLite's are 64-bit). A larger number
# names nothing, and must not reach the database: SQLite raises OverflowError past 2**63, and
# PostgreSQL refuses to cast it to INTEGER.
MAX_ID = 2**31 - 1


# commands whose last argument is the user's own text, kept exactly as typed (full-width punctuation
# and all): the number of normalised arguments before it. A broadcast is all text; `/adjust P1 -50 原因`
# and `驳回 12 原因` have two and one.
TEXT_AFTER = {"broadcast": 0, "adjust": 2, "reject": 1}


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
    """The command with its normalised arguments, and for `TEXT_AFTER` commands the text as typed."""
    keep = TEXT_AFTER.get(name)
    if keep is not None:
        args = args[:keep] + ([_after(rest, keep)] if len(args) > keep else [])
    return Command(name, args, raw, rest)


def parse(text: str, bot_username: str = "") -> Command:
    """`/rank@MianziBot 2`, `/RANK`, `排行`, ` 绑定 AB12CD34 ` → a command; anything else → name "".

    The command word and arguments are matched NFKC-normalised (`／ｒａｎｋ`, `兑换 Ａ１`); `rest`
    and the text arguments of `TEXT_AFTER` commands are the user's own characters.
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
        if name in COMMANDS:
            return _command(ALIASES.get(name, name), args, raw, rest)
        return Command("", args, raw)
    for keyword, name in KEYWORDS.items():
        if name == "broadcast" and raw.startswith(keyword):
            rest = typed[len(keyword):].strip()
            return _command(name, raw[len(keyword):].split(), raw, rest)
        if head.lower() == keyword:
            return _command(name, args, raw, rest)
        if head.startswith(keyword) and len(parts) == 1 and name in ("bind", "lang", "redeem", "join", "checkin"):
            rest = head[len(keyword):].strip()  # "绑定AB12CD34" without a space
            return Command(name, [rest] if rest else [], raw, rest)
    return Command("", [], raw)
