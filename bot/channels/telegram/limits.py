"""What Telegram takes, declared once for replies and pushes alike (Bot API):

- a message's text is at most 4,096 UTF-16 code units (an emoji outside the BMP counts twice),
  a photo's caption 1,024; texts are plain (no parse mode: nothing a user typed becomes markup);
- ceilings (settings, enforced by the delivery worker): about 30 messages a second for the bot,
  one a second to a private chat, 20 a minute to a group (`MIANZI_TELEGRAM_*`);
- a bot can message a user only after they opened a private chat with it (else 403).
"""

from __future__ import annotations

from messages.render import fit

TEXT_LIMIT = 4096  # UTF-16 code units
CAPTION_LIMIT = 1024


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit_utf16(text: str, limit: int) -> str:
    text = fit(text, max_chars=limit)
    while (excess := utf16_len(text) - limit) > 0:
        text = fit(text, max_chars=len(text) - excess)
    return text


def fit_text(text: str) -> str:
    """Cut at a line boundary so that the text fits a Telegram message (emoji count twice there)."""
    return _fit_utf16(text, TEXT_LIMIT)


def fit_caption(text: str) -> str:
    """The same for a photo's caption."""
    return _fit_utf16(text, CAPTION_LIMIT)
