"""The wire format shared by the Official Account and WeCom callbacks: signed, size-capped XML.

Everything that comes in is hostile until proven otherwise, and each check fails with a
`Rejected` carrying the HTTP status and a reason for the log (never for the caller):
- the body is read up to `MAX_BODY` bytes and no further (a callback is a few hundred bytes), by
  `bot.web.body`, the reader of every route;
- XML goes through expat (xmltodict's parser, or the same parser set up as xmltodict sets it: `_flat`) with
  entities disabled, so a "billion laughs" document is refused
  (`ValueError: entities are disabled`) before anything expands;
- signatures are compared in constant time;
- the signed `timestamp` must be within `max_age` seconds of now (`check_fresh`): a captured
  request is worth nothing once that has passed.

Going out, a passive reply is built here rather than with wechatpy's `TextReply`: wechatpy
wraps text in CDATA without escaping `]]>`, so a user's own words echoed back could close the
section and inject XML. `cdata` splits every `]]>` across two sections, which any XML parser
reads back as the exact original text.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import xmltodict
from starlette.requests import Request

from bot.web.body import Rejected as Rejected  # raised here, caught by the routes
from bot.web.body import read_body as capped_body

MAX_BODY = 1 << 20  # 1 MiB: WeChat's callbacks are tiny; anything near this is not WeChat


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """`bot.web.body.read_body` with the callbacks' limit."""
    return await capped_body(request, limit)


def parse_xml(data: bytes | str) -> dict[str, str]:
    """The flat `<xml><Field>value</Field>…</xml>` of a callback as a dict of strings.

    Nested elements (WeCom's `<ScanCodeInfo>` …) are kept as their text-less dicts turned into
    strings; we never read them. What xmltodict returns, through `_flat` when the document has
    the shape every callback has (a third of the cost), else through xmltodict itself.
    """
    try:
        flat = _flat(data)
        if flat is not None:
            return flat
        doc = xmltodict.parse(data, disable_entities=True)
    except ValueError as exc:  # "entities are disabled", and a few other refusals of xmltodict
        raise Rejected(400, f"XML refused: {exc}") from exc
    except Exception as exc:  # expat.ExpatError and friends: not XML at all
        raise Rejected(400, f"not XML: {type(exc).__name__}") from exc
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise Rejected(400, "XML without an <xml> root element")
    return {str(k): v if isinstance(v, str) else "" if v is None else str(v) for k, v in root.items()}


class _Unusual(Exception):
    """The document is not of the plain shape `_flat` reads: xmltodict reads it instead."""


def _unusual(*_args: Any) -> None:
    raise _Unusual


def _no_entities(*_args: Any) -> None:
    raise ValueError("entities are disabled")  # xmltodict's own refusal, word for word


def _flat(data: bytes | str) -> dict[str, str] | None:
    """`parse_xml` of a document of the plain shape — an `<xml>` root without attributes or text of its
    own, holding one or more elements of text each (no attributes, no children, no name twice),
    no DOCTYPE — or None for any other document, which xmltodict then reads.

    The same parser as xmltodict's (expat, set up as it sets it up), and on that shape the same
    result: each element's text stripped, an empty one as "". Expat's errors and the refusal
    of entity declarations come out as xmltodict's do."""
    from xml.parsers import expat

    if isinstance(data, str):
        parser = expat.ParserCreate("utf-8", None)
        data = data.encode("utf-8")
    else:
        parser = expat.ParserCreate(None, None)
    parser.ordered_attributes = True
    parser.buffer_text = True
    fields: dict[str, str] = {}
    depth = 0
    name = ""
    text: list[str] = []
    root_text: list[str] = []

    def start(tag: str, attrs: list[str]) -> None:
        nonlocal depth, name
        depth += 1
        if attrs or depth > 2 or (depth == 1 and tag != "xml"):
            raise _Unusual
        if depth == 2:
            name = tag
            text.clear()

    def end(tag: str) -> None:
        nonlocal depth
        if depth == 2:
            if name in fields:
                raise _Unusual
            fields[name] = "".join(text).strip()
        depth -= 1

    def characters(chunk: str) -> None:
        (text if depth == 2 else root_text).append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = _unusual
    parser.EntityDeclHandler = _no_entities
    try:
        parser.Parse(data, True)
    except _Unusual:
        return None
    if not fields or "".join(root_text).strip():
        return None
    return fields


def signature(*parts: str) -> str:
    """WeChat's signature: sha1 of the parts sorted and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(given: str | None, *parts: str | None) -> bool:
    if not given or any(p is None for p in parts):
        return False
    return hmac.compare_digest(given.lower().encode(), signature(*parts).encode())  # type: ignore[arg-type]


def check_fresh(timestamp: str | None, max_age: int, now: float | None = None) -> None:
    """`Rejected(403)` unless `timestamp` (Unix seconds, as WeChat and WeCom send it) is within
    `max_age` seconds of now, either way: 1, 2020, "abc" and a year ahead are all refused."""
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Rejected(403, "timestamp missing or not a number")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > max_age:
        raise Rejected(403, f"timestamp {age:+.0f} s from now, outside the {max_age} s window")


def decrypt(key: bytes, encrypted: str, expected_id: str, prp: type, wrong_id: type[Exception]) -> str:
    """The plaintext of an `<Encrypt>` field (wechatpy's `PrpCrypto`), checked to be for `expected_id`."""
    try:
        return str(prp(key).decrypt(encrypted, expected_id))
    except wrong_id as exc:
        raise Rejected(403, "encrypted payload addressed to another app id") from exc
    except Exception as exc:  # bad base64, bad padding, garbage after decryption
        raise Rejected(400, f"cannot decrypt: {type(exc).__name__}") from exc


def make_crypto(crypto_class: type, token: str, aes_key: str, receive_id: str, setting: str) -> Any:
    """wechatpy's crypto for a callback, with a readable error for a mistyped EncodingAESKey."""
    try:
        return crypto_class(token, aes_key, receive_id)
    except (AssertionError, ValueError) as exc:  # wechatpy asserts a 32-byte key after base64
        raise ValueError(f"{setting} must be the 43-character EncodingAESKey from the console") from exc


def new_nonce() -> str:
    return str(secrets.randbelow(10**10))


def client(request: Request) -> str:
    return request.client.host if request.client else "?"


def cdata(text: str) -> str:
    """`text` inside CDATA; a `]]>` in it is split across two sections instead of ending the first."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, now: float | None = None) -> str:
    """A passive text reply (the same shape for the Official Account and WeCom)."""
    created = int(now if now is not None else time.time())
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


@dataclass(frozen=True)
class Inbound:
    """One decoded callback: a message or an event, in the fields we use."""

    to_user: str  # the account's original id (gh_…) or the corp id
    from_user: str  # OpenID (Official Account) or UserID (WeCom)
    create_time: str
    msg_type: str  # text, image, voice, …, event
    msg_id: str | None = None
    content: str | None = None
    event: str | None = None  # subscribe, unsubscribe, SCAN, CLICK (WeCom: click, enter_agent …)
    event_key: str | None = None
    recognition: str | None = None  # a voice message's speech recognition, when switched on
    agent_id: str | None = None  # WeCom only
    chat_id: str | None = None  # WeCom only: the group chat (`ChatId`) a message was posted in

    @property
    def dedupe_key(self) -> str:
        """MsgId for messages; events carry none, so FromUserName + CreateTime (DESIGN §5)."""
        key = f"msg:{self.msg_id}" if self.msg_id else f"evt:{self.from_user}:{self.create_time}"
        return key[:128]


def inbound(fields: dict[str, Any]) -> Inbound:
    """The callback behind decoded fields, or `Rejected(400)` when it lacks what every callback has."""

    def get(name: str) -> str | None:
        value = fields.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    from_user, msg_type, create_time = get("FromUserName"), get("MsgType"), get("CreateTime")
    if not from_user or not msg_type or not create_time:
        raise Rejected(400, "callback without FromUserName, MsgType or CreateTime")
    if len(from_user) > 128 or len(get("ChatId") or "") > 128:
        raise Rejected(400, "FromUserName or ChatId longer than 128 characters")
    content = fields.get("Content")
    return Inbound(to_user=get("ToUserName") or "", from_user=from_user, create_time=create_time,
                   msg_type=msg_type.lower(), msg_id=get("MsgId") or get("MsgID"),
                   content=content if isinstance(content, str) else None, event=get("Event"),
                   event_key=get("EventKey"), recognition=get("Recognition"), agent_id=get("AgentID"),
                   chat_id=get("ChatId") if (get("ChatType") or "group").lower() != "single" else None)
