"""From a decoded WeChat / WeCom callback to the text of a passive reply, once per message.

The rules that shape this module (DESIGN §5):
- **5 seconds.** WeChat drops a callback not answered within 5 s and posts it again (three
  times). The core runs elsewhere (see below); if it is not done after `deadline` (4 s), the
  request is answered `success` and the reply, when ready, is queued in the outbox as a
  customer-service message (`reply:<platform>:<key>`) for the delivery worker.
- **Exactly once.** Each delivery is claimed by inserting its key (MsgId; for events
  FromUserName + CreateTime) into `InboundSeen` as the first statement of the transaction that
  runs the core: a duplicate key means a retry, which never runs again (a concurrent attempt in
  another process waits on the unique index until the first commits). A failure rolls the claim
  back with everything else, so nothing of a failed message is kept. A retry reaching the same
  process gets the same reply (it waits for it if the first attempt is still running), because
  WeChat only retries when it did not get our first answer; a retry reaching another process
  gets `success`.
- **Where the core runs.** A worker thread of this process, or with `MIANZI_CORE_PROCESS=1` the
  core process (`bot.core.runner`): only `execute` (claim, dispatch, render, fit)
  crosses to it; the entries, the deadline and the late replies stay here. If that process dies,
  the messages it was answering get the apology and nothing of them is kept (their transactions
  died with it); the next message starts a new one.
- **One nonce, one message.** The signed (timestamp, nonce) of the request is claimed in the same
  transaction, after the key (`bot.core.dedupe.Nonce`). A retry brings its own key back and stops at
  the key; a new key arriving with a pair already used is a captured request carrying a message
  of someone else's making (plaintext mode signs no body): `Replayed`, rolled back, 403. Events
  we ignore are claimed too (under a key of their own), so their pair cannot be reused either.
- **Events.** A follow greets (and binds at once with a `qrscene_<invite>` QR code), `SCAN` of
  an invite QR code binds, an unfollow stops pushes, a menu click runs the command named by its
  key; other events are acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from bot.channels.wechat.callback_xml import Inbound, Rejected
from bot.channels.wechat.limits import fit_text
from bot.core.conversation import Delivery, Replayed, answer, apology, chat_config
from bot.core.dedupe import Nonce
from bot.core.runner import Runner, ThreadRunner, groupable
from bot.settings import Settings
from handlers.types import ChatConfig, Incoming
from models import identities, outbox
from models.db import session_scope
from models.values import utcnow

log = logging.getLogger("mianzi.wechat")

DEADLINE = 4.0  # seconds before we give up on a passive reply (WeChat waits 5)
MENU_COMMANDS = ("rank", "team", "me", "contests", "honors", "help")
MAX_TEXT = 2000
MAX_CODE = 64


@dataclass(frozen=True)
class Action:
    """What a callback asks of the core."""

    text: str | None  # the command as if typed; None for a photo, a voice note …
    follow: bool = False  # a (re)follow: the account can receive pushes again
    unfollow: bool = False  # the account can no longer receive anything: nothing to run or answer
    ignored: bool = False  # an event we do not act on: claimed (key and nonce), nothing run


IGNORED = Action(None, ignored=True)


def plan(msg: Inbound) -> Action | None:
    """The action behind a callback, or None for what we acknowledge and ignore."""
    if msg.msg_type == "text":
        return Action(msg.content or "")
    if msg.msg_type != "event":
        if msg.msg_type == "voice" and msg.recognition:  # speech recognition switched on in the console
            return Action(msg.recognition.rstrip("。！？，.!?, "))  # it ends sentences with "。"
        return Action(None)
    event = (msg.event or "").lower()
    key = (msg.event_key or "").strip()
    if event == "subscribe":
        code = key.removeprefix("qrscene_") if key.startswith("qrscene_") else ""
        return Action(f"绑定 {code[:MAX_CODE]}" if code else "/start", follow=True)
    if event == "scan" and key:
        return Action(f"绑定 {key[:MAX_CODE]}")
    if event == "unsubscribe":
        return Action(None, unfollow=True)
    if event == "click":
        return Action(f"/{key.lower()}" if key.lower() in MENU_COMMANDS else "/help")
    return None


@dataclass
class _Entry:
    """One delivery handled by this process: its reply once ready, or `late` once handed to the outbox."""

    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    text: str | None = None
    late: bool = False
    replayed: bool = False  # refused (`Replayed`): the request gets 403, nothing ran


class Responder:
    """Runs the core for callbacks of one platform (`wechat` or `wecom`) and keeps the 5-second rule."""

    def __init__(self, engine: Engine, settings: Settings, platform: str, *, deadline: float = DEADLINE,
                 memory: int = 10_000, core: Runner | None = None) -> None:
        """`core`: where the core runs (`bot.core.runner`), by default a thread of this process."""
        self.engine = engine
        self.runner: Runner = core or ThreadRunner(engine)
        self._tasks: set[asyncio.Task[None]] = set()  # runs outliving their request (late replies)
        self.platform = platform
        self.config = self.runner.keep(chat_config(settings, max_text=MAX_TEXT))  # crosses to the core once
        self.deadline = deadline
        self.memory = memory
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    async def reply(self, msg: Inbound, nonce: Nonce | None = None) -> str | None:
        """The passive reply for this callback, or None to answer `success` (nothing, or later).

        `nonce` is the request's signed (timestamp, nonce); `Rejected(403)` when it already came
        with another message (nothing is run then)."""
        action = plan(msg)
        key = msg.dedupe_key
        if action is None:
            log.info("%s: ignored %s event %r from %s", self.platform, msg.msg_type, msg.event, msg.from_user)
            action, key = IGNORED, f"ign:{(msg.event or '').lower()[:16]}:{key}"[:128]
        entry, fresh = self._entry(key)
        if not fresh:
            log.info("%s: retry of %s from %s, not run again", self.platform, key, msg.from_user)
            return await self._wait(entry)
        job = asyncio.ensure_future(self._run(msg, action, key, entry, nonce))
        self._tasks.add(job)
        job.add_done_callback(self._tasks.discard)
        await asyncio.wait({job}, timeout=self.deadline)
        return self._answer(entry, key)

    def _answer(self, entry: _Entry, key: str) -> str | None:
        with entry.lock:
            if entry.replayed:
                raise Rejected(403, f"nonce already used by another message (then {key})")
            if entry.done.is_set():
                return None if entry.late else entry.text
            entry.late = True  # the thread will queue its reply in the outbox
        log.warning("%s: reply to %s not ready within %.1fs, answering success and sending it later",
                    self.platform, key, self.deadline)
        return None

    async def _wait(self, entry: _Entry) -> str | None:
        if not entry.done.is_set():
            await asyncio.to_thread(entry.done.wait, self.deadline)
        with entry.lock:
            if entry.replayed:
                raise Rejected(403, "nonce already used by another message")
            return entry.text if entry.done.is_set() and not entry.late else None

    def _entry(self, key: str) -> tuple[_Entry, bool]:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found, False
            entry = self._entries[key] = _Entry()
            if len(self._entries) > self.memory:
                self._entries.popitem(last=False)
            return entry, True

    async def _run(self, msg: Inbound, action: Action, key: str, entry: _Entry, nonce: Nonce | None) -> None:
        """Run the core through the runner, then hand the reply to the request or to the outbox; a
        dead core process costs this message the apology."""
        try:
            claimed, text = await self.runner.call(execute, self.platform, self.config, msg.from_user, action, key,
                                                   nonce, self._group(msg))
        except Replayed:
            self._refuse(key, entry)
            return
        except BrokenProcessPool:
            claimed, text = True, passive(apology(Incoming(self.platform, msg.from_user, msg.from_user, None),
                                                  self.config, _whole).text)
        if not self._settle(msg, key, entry, claimed, text):
            return
        if self._late_text(entry):
            await self._guarded(f"queue the late reply to {key}", queue_late, self.platform, msg.from_user, key,
                                entry.text)

    def _group(self, msg: Inbound) -> str | None:
        """The WeCom group chat a message came from (the Official Account has no group chats)."""
        return msg.chat_id if self.platform == "wecom" else None

    async def _guarded(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            await self.runner.call(fn, *args)
        except Exception:  # the core process died (BrokenProcessPool), or `fn` failed there
            log.exception("%s: could not %s", self.platform, what)

    def _refuse(self, key: str, entry: _Entry) -> None:
        """A `Replayed` request: 403 for it, and its key forgotten here so the real message with that
        key (if it ever comes) is not taken for a retry of the forgery."""
        with entry.lock:
            entry.replayed = entry.late = True
            entry.done.set()
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]

    def _settle(self, msg: Inbound, key: str, entry: _Entry, claimed: bool, text: str | None) -> bool:
        """The outcome into the entry (for the request, or for the retries); False when not ours to answer."""
        if not claimed:
            log.info("%s: %s from %s already handled (another process), not run again",
                     self.platform, key, msg.from_user)
            with entry.lock:
                entry.late = True  # nothing to answer, now or later
                entry.done.set()
            return False
        with entry.lock:
            entry.text = text
            entry.done.set()
        return True

    def _late_text(self, entry: _Entry) -> bool:
        """Whether the request gave up waiting for a reply that now exists (it goes to the outbox)."""
        with entry.lock:
            return entry.late and bool(entry.text)


# --- where the core runs: module-level functions of plain arguments (they cross to the core process)


@groupable
def execute(engine: Engine, platform: str, config: ChatConfig, user_ref: str, action: Action,
            key: str, nonce: Nonce | None = None, group: str | None = None) -> tuple[bool, str | None]:
    """(claimed, passive reply): the callback through the one answer path (`bot.core.conversation.answer`:
    its key claimed first, then its `nonce` — `Replayed` when another message came with it — in
    the transaction that runs the core, so nothing of a failed message is kept).

    `group`: the WeCom group chat the message was posted in. Its replies are not passive (that one
    answer goes to the asker's app chat): the group's part goes to the group (`appchat/send`) and the
    asker's own to them (`message/send`), queued in the outbox in this same transaction."""
    incoming = Incoming(platform=platform, user_ref=user_ref, chat_ref=group or user_ref, text=action.text,
                        is_group=group is not None)
    follow = True if action.follow else False if action.unfollow else None
    delivery = Delivery(key=key, nonce=nonce, follow=follow, run=not (action.ignored or action.unfollow),
                        queue=group is not None)
    outs = answer(engine, incoming, config, _whole, None, delivery)
    if outs is None:
        return False, None
    if action.unfollow:
        log.info("%s: %s unfollowed, identity marked inactive", platform, user_ref)
    joined = "\n\n".join(out.text for out in outs)
    return True, passive(joined) if joined else None


def _whole(text: str) -> str:
    """Replies are joined into one passive reply before they are cut (`passive`)."""
    return text


def passive(text: str) -> str:
    """A passive reply or customer-service text, cut at a line to WeChat's limit (`limits`)."""
    return fit_text(text)


def queue_late(engine: Engine, platform: str, user_ref: str, key: str, text: str) -> None:
    """A reply the request could not wait for, as a customer-service message (`reply:<platform>:<key>`)
    for the delivery worker."""
    now = utcnow()
    with session_scope(engine) as session:
        identity = identities.active_identity(session, platform=platform, user_ref=user_ref)
        outbox.queue(session, [{"key": f"reply:{platform}:{key.split(':', 1)[1]}"[:200], "kind": "reply",
                                "partner_id": identity.partner_id if identity else None,
                                "identity_id": identity.id if identity else None, "platform": platform,
                                "chat_ref": user_ref, "payload": {"text": text, "reply_to": key}}], now)
    log.info("%s: late reply to %s queued in the outbox", platform, key)
