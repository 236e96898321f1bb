"""`mianzi serve --access-log` without the callbacks' secrets.

WeChat and WeCom put a request's proof in its query string: `signature`, `msg_signature`,
`timestamp`, `nonce` (and the URL check's `echostr`). An access log that keeps them hands
whoever reads the log a ready-signed query (in plaintext mode, fresh for the freshness window).
uvicorn's access logger gets a filter that writes those values as `***`; the names stay, so a
line still shows which kind of request it was.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

from uvicorn.config import LOGGING_CONFIG

# ... a console sign-in link's one-time `token` (/admin/signin?token=…), and the dealer page's OAuth
# callback's `code` and `state` (/me/wechat/callback?code=…&state=…)
SECRET_PARAMS = frozenset({"signature", "msg_signature", "timestamp", "nonce", "echostr", "token", "code", "state"})
MASK = "***"


def redact(path: str) -> str:
    """`path?query` with the values of `SECRET_PARAMS` replaced by `***`; other values kept."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SECRET_PARAMS for name, _ in pairs):
        return path
    masked = [(name, MASK if name.lower() in SECRET_PARAMS else value) for name, value in pairs]
    return f"{base}?{urlencode(masked, safe='*')}"


class RedactSecrets(logging.Filter):
    """For `uvicorn.access`: its record's args are (client, method, path with query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with `RedactSecrets` on its access logger (so on
    every handler it writes to)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    config["loggers"]["uvicorn.access"].setdefault("filters", []).append("redact_secrets")
    return config
