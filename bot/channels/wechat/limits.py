"""What WeChat and WeCom take, declared once for passive replies and pushes alike:

- a passive reply or a customer-service / app message text is at most 2,048 bytes of UTF-8 (a
  Chinese character is three); a template field about 200 characters;
- a callback must be answered within 5 s (we give the core 4, then answer `success` and send the
  reply later through the outbox);
- the Official Account may message a user for 48 hours after their last message (5 messages in
  that window), else only by template; WeCom drops silently what goes over 30 messages a minute or
  1,000 an hour per member (settings `MIANZI_WECOM_CHAT_*`, enforced by the delivery worker).
"""

from __future__ import annotations

from messages.render import fit

TEXT_BYTES = 2048  # UTF-8 bytes
TEMPLATE_CHARS = 200


def fit_text(text: str) -> str:
    """Cut at a line boundary so that the text fits a passive reply or a message (UTF-8 bytes)."""
    return fit(text, max_bytes=TEXT_BYTES)


def fit_template(text: str) -> str:
    return fit(text, max_chars=TEMPLATE_CHARS)
