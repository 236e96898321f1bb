"""The Telegram adapter: python-telegram-bot 22 fed by our webhook route, or long polling.

What it decides (and nothing else — who won is the core's business):
- private and group text → `Incoming`; a leading `/cmd@OurBot` loses its `@OurBot`, and a command
  addressed to another bot in a shared group is not ours to answer;
- an inline button press → `Incoming.callback_data`, and the query is always answered so the
  user's button stops spinning;
- stickers, photos, voice … → `Incoming.text = None` (the core answers with a short help);
- an **edited** message is never run again (editing `/redeem 3` must not redeem twice); in a
  private chat the user is told to send a new message instead, in a group nothing is said;
- `my_chat_member` (blocked, kicked, added) and every other update type: ignored for now;
- each `update_id` is processed once (`bot.core.dedupe`: this process's memory, then the database
  shared by all workers), whether it came by webhook or polling; a new message's claim is part of
  the transaction that answers it.

Replies are plain text, cut to Telegram's limit (`bot.channels.telegram.limits`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from telegram import Chat, MenuButtonWebApp, Update, WebAppInfo
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, CallbackContext, TypeHandler

from bot import context
from bot.channels.telegram.limits import fit_text
from bot.channels.telegram.push import TelegramPush
from bot.channels.telegram.request import AiohttpRequest
from bot.core.conversation import Delivery, Outgoing, answer, apology, chat_config, group_notice
from bot.core.dedupe import DatabaseKeys, Dedupe, Layered, RecentKeys, keys_for
from bot.core.runner import Runner, ThreadRunner, run
from bot.settings import Settings
from bot.web.body import Rejected, read_body
from handlers.types import ChatConfig, Incoming
from messages.locales import locale_for
from messages.render import t

log = logging.getLogger("mianzi.telegram")

PLATFORM = "telegram"
MAX_UPDATE_BYTES = 1 << 20
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
GROUP_TYPES = (Chat.GROUP, Chat.SUPERGROUP)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
T = TypeVar("T")


def command_text(text: str, bot_username: str) -> str | None:
    """`/rank@OurBot 2` → `/rank 2`; `/rank@OtherBot` → None (not for us); anything else unchanged."""
    if not text.startswith("/"):
        return text
    head, sep, rest = text.partition(" ")
    name, at, addressee = head.partition("@")
    if not at:
        return text
    if addressee.lower() != bot_username.lower():
        return None
    return name + sep + rest


class NotAnUpdate(ValueError):
    """A body that is JSON but not shaped like a Telegram Update (a field missing or of another type)."""


def _field(obj: Mapping[str, Any], name: str, kind: type[T]) -> T:
    """`obj[name]`, which must be a `kind` (a bool is not an int here)."""
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NotAnUpdate(name)
    return value


def _optional(obj: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    """`obj[name]` when present (and not null), which must then be a `kind`."""
    return None if obj.get(name) is None else _field(obj, name, kind)


def _full_name(user: Mapping[str, Any]) -> str:
    """Telegram's "first last" (python-telegram-bot's `User.full_name`)."""
    first, last = _field(user, "first_name", str), _optional(user, "last_name", str)
    return f"{first} {last}" if last else first


def incoming_from_update(update: Mapping[str, Any], bot_username: str) -> Incoming | None:
    """The neutral message behind a Telegram update (its JSON object), or None when there is
    nothing to answer; `NotAnUpdate` when the parts it reads are not shaped as Telegram's.

    Read from the JSON itself, not from python-telegram-bot's `Update`: building those objects
    was a tenth of the server's time per `/rank` (bench/webhook.py), for the few fields read here."""
    query = _optional(update, "callback_query", dict)
    if query is not None:
        user = _field(query, "from", dict)
        message = _optional(query, "message", dict)
        chat = _field(message, "chat", dict) if message is not None else None
        chat_id = _field(chat, "id", int) if chat is not None else _field(user, "id", int)
        return Incoming(platform=PLATFORM, user_ref=str(_field(user, "id", int)), chat_ref=str(chat_id), text=None,
                        locale_hint=_optional(user, "language_code", str),
                        is_group=chat is not None and chat.get("type") in GROUP_TYPES,
                        display_name=_full_name(user), callback_data=_optional(query, "data", str) or "")
    message = _optional(update, "message", dict)
    if message is None:
        return None  # service updates (my_chat_member …)
    quoted = _optional(message, "reply_to_message", dict)
    if quoted is not None and "reply_to_message" in quoted:  # Telegram quotes one level deep, never more
        raise NotAnUpdate("reply_to_message")
    sender = _optional(message, "from", dict)
    chat = _field(message, "chat", dict)
    if sender is None or _field(sender, "is_bot", bool):
        return None  # channel posts, anonymous group admins, other bots
    text = _optional(message, "text", str)
    if text is not None:
        text = command_text(text, bot_username)
        if text is None:
            return None
    return Incoming(platform=PLATFORM, user_ref=str(_field(sender, "id", int)), chat_ref=str(_field(chat, "id", int)),
                    text=text, locale_hint=_optional(sender, "language_code", str),
                    is_group=chat.get("type") in GROUP_TYPES, display_name=_full_name(sender),
                    message_ref=str(_field(message, "message_id", int)))


class TelegramChannel:
    """One bot: its PTB `Application`, the webhook route, and the start/stop of the lifespan."""

    def __init__(self, settings: Settings, core: Runner | None = None) -> None:
        """`core`: where chat answers run (`bot.core.runner`; the app starts and stops it), by default a
        thread of this process."""
        if not settings.receives("telegram") or not settings.telegram_token:
            raise ValueError("Telegram is off: MIANZI_TELEGRAM_TOKEN is not set")
        self.settings = settings
        self._recent = RecentKeys()
        self._replies = TelegramPush(settings.telegram_token, settings.telegram_api_url)
        self._claims: DatabaseKeys | None = None  # once the engine is known
        self._core = core
        self._runner: Runner | None = core  # a thread runner once the engine is known, if none was given
        self.dedupe: Dedupe | None = None  # this process's memory, then the database
        self.webhook_mode = bool(settings.telegram_webhook_url)
        builder = (ApplicationBuilder().token(settings.telegram_token).base_url(settings.telegram_api_url)
                   .request(AiohttpRequest()).get_updates_request(AiohttpRequest(connections=2, read_timeout=40))
                   .job_queue(None))  # our scheduler is APScheduler directly (DESIGN §5)
        if self.webhook_mode:
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_polled))
        self.application.add_error_handler(self._on_error)
        self.config: ChatConfig = chat_config(settings)
        self._engine: Engine | None = None

    @property
    def bot_username(self) -> str:
        return self.config.bot_username

    # --- lifespan --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Ask Telegram who we are, then register the webhook or start long polling."""
        self._engine = await asyncio.to_thread(context.engine, self.settings)
        self._claims = keys_for(self._engine)
        self._runner = self._core or ThreadRunner(self._engine)
        self.dedupe = Layered(self._recent, self._claims)
        app = self.application
        try:
            try:
                await app.initialize()  # getMe
            except InvalidToken:  # PTB's message quotes the token: keep it out of the log
                raise InvalidToken("the Bot API rejected MIANZI_TELEGRAM_TOKEN") from None
            username = app.bot.username
            if username and username.lower() != self.settings.telegram_bot_username.lower():
                log.warning("the bot is @%s but MIANZI_TELEGRAM_BOT_USERNAME says %s: invite links printed by "
                            "the CLI use the setting", username, self.settings.telegram_bot_username)
            self.config = chat_config(self.settings, bot_username=username)
            await app.start()
            if self.webhook_mode:
                if not self.settings.telegram_secret:
                    log.warning("MIANZI_TELEGRAM_SECRET is not set: anyone who finds the webhook URL can post "
                                "updates in any user's name")
                await app.bot.set_webhook(self.settings.telegram_webhook_url or "",
                                          secret_token=self.settings.telegram_secret,
                                          allowed_updates=ALLOWED_UPDATES)
                log.info("telegram: @%s, webhook registered", username)
            else:
                assert app.updater is not None
                await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                log.info("telegram: @%s, long polling", username)
            await self._menu_button()
        except BaseException:
            await self.stop()
            raise

    async def _menu_button(self) -> None:
        """The bot's menu button opens the dealer page as a Mini App (Telegram wants https); a failure
        is logged, never fatal: the chat works without it."""
        url = self.config.dealer_page_url
        if not url:
            return
        button = MenuButtonWebApp(text=t("dealer.chat.menu", self.config.default_locale), web_app=WebAppInfo(url))
        try:
            await self.application.bot.set_chat_menu_button(menu_button=button)
            log.info("telegram: menu button opens %s", url)
        except TelegramError as exc:
            log.warning("setChatMenuButton failed: %s", exc)

    async def stop(self) -> None:
        """Stop polling and the application, close its HTTP client. The webhook stays registered:
        another worker, or this one after a restart, keeps receiving updates."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        await app.bot.shutdown()  # after a failed start the application was never initialized, the bot's client was
        await self._replies.close()

    # --- the webhook route -----------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """`POST /telegram/webhook`: check the secret, then process the update before answering.

        Answering after processing keeps back-pressure on Telegram (it holds further updates for
        a slow bot) and is still 200 when the reply could not be sent: the update was claimed,
        and a retry would only be dropped as a duplicate.
        """
        secret = self.settings.telegram_secret
        if secret:
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return Response(status_code=403)
        try:
            body = await read_body(request, MAX_UPDATE_BYTES)
        except Rejected as exc:
            log.warning("webhook request refused with %s: %s", exc.status, exc.reason)
            return Response(status_code=exc.status)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep, never Telegram's
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            return JSONResponse({"error": "not a Telegram Update"}, status_code=400)
        try:
            await self._on_update(data)
        except NotAnUpdate:
            return JSONResponse({"error": "not a Telegram Update"}, status_code=400)
        except Exception:  # logged; 200 all the same: a retry of the update would be dropped as a duplicate
            log.exception("error while processing Telegram update %s", data["update_id"])
        return Response(status_code=200)

    # --- one update ------------------------------------------------------------------------------

    async def _on_polled(self, update: Update, _context: CallbackContext[Any, Any, Any, Any]) -> None:
        """Long polling: the update python-telegram-bot fetched, back to its JSON and on as the webhook's."""
        await self._on_update(update.to_dict())

    async def _on_update(self, update: Mapping[str, Any]) -> None:
        """One update (its JSON object), whichever way it came; read whole before anything is claimed."""
        incoming = incoming_from_update(update, self.bot_username)
        key = str(update["update_id"])
        if _optional(update, "message", dict) is not None:
            await self._on_message(key, incoming)
            return
        edited = _optional(update, "edited_message", dict)
        edit = (edited, _field(edited, "chat", dict)) if edited is not None else None
        query = _optional(update, "callback_query", dict)
        query_id = _field(query, "id", str) if query is not None else None
        if await self._seen_before(key):
            log.info("update %s already processed: skipped", key)
            return
        if query_id is not None:
            await self._acknowledge(query_id)
        if edit is not None:
            await self._edited(*edit)
            return
        if incoming is not None:
            await self._deliver(incoming, await self._answer(incoming) or [])

    async def _on_message(self, key: str, incoming: Incoming | None) -> None:
        """A new message: claimed and answered in one transaction, where the core runs."""
        if self._recent.seen_before(PLATFORM, key):
            log.info("update %s already processed: skipped", key)
            return
        if incoming is None:
            return
        outs = await self._answer(incoming, key)
        if outs is None:
            log.info("update %s already processed by another worker: skipped", key)
            return
        await self._deliver(incoming, outs)

    async def _deliver(self, incoming: Incoming, outs: list[Outgoing]) -> None:
        """The replies to where they belong: the asker's own to their private chat (a Telegram
        user's private chat id is their user id), the rest to the chat; after anything private
        asked in a group, one line there saying it was sent, or (403: the user never opened a
        private chat with the bot, or blocked it) how to open one."""
        private = [out for out in outs if out.private]
        reached = True
        for out in private:
            if not await self.send(incoming.user_ref, out):
                reached = False
                break
        public = [out for out in outs if not out.private]
        for out in public:
            if not await self.send(incoming.chat_ref, out):
                return
        if private:  # as an answer to the asker's message, so that the group sees whom it is for
            await self.send(incoming.chat_ref, Outgoing(text=fit_text(group_notice(private, reached, self.config))),
                            reply_to=incoming.message_ref)

    async def _answer(self, incoming: Incoming, claim: str | None = None) -> list[Outgoing] | None:
        """`bot.core.conversation.answer` through the runner (a thread, or the core process)."""
        assert self._runner is not None
        try:
            config = self._runner.keep(self.config)  # crosses to the core once (the same object each time)
            return await self._runner.call(answer, incoming, config, fit_text, None, Delivery(key=claim))
        except BrokenProcessPool:  # the core process died with this message: the apology, nothing kept
            return [apology(incoming, self.config, fit_text)]

    async def _seen_before(self, key: str) -> bool:
        """The claim; if the database cannot be asked, go on: the user then gets at least an apology."""
        assert self.dedupe is not None and self._engine is not None
        try:
            return await run(self._engine, self.dedupe.seen_before, PLATFORM, key)
        except Exception:
            log.exception("could not check update %s for a repeat delivery", key)
            return False

    async def _acknowledge(self, query_id: str) -> None:
        """`answerCallbackQuery`, so that the button stops spinning; a failure (too old, already
        answered) is only logged: the reply still follows."""
        result = await self._replies.answer_callback(query_id)
        if result.outcome != "sent":
            log.info("answerCallbackQuery failed: %s", result.error)

    async def _edited(self, message: Mapping[str, Any], chat: Mapping[str, Any]) -> None:
        user = _optional(message, "from", dict)
        if chat.get("type") != Chat.PRIVATE or user is None or _field(user, "is_bot", bool):
            return
        locale = locale_for(_optional(user, "language_code", str), self.config.default_locale)
        await self.send(str(_field(chat, "id", int)), Outgoing(text=fit_text(t("web.edited_ignored", locale))))

    async def send(self, chat_ref: str, out: Outgoing, reply_to: str | None = None) -> bool:
        """Send one reply; False when the chat will not take more (blocked, rate-limited, failing).

        Through `TelegramPush`, the sender of the delivery worker, rather than PTB's `Bot`: the
        answer is only checked, never turned into PTB objects, which was a sixth of the server's
        time per `/rank` (bench/webhook.py).
        """
        result = await self._replies.send_text(chat_ref, out.text, [(b.label, b.data, b.web_app) for b in out.buttons],
                                               reply_to=reply_to)
        if result.outcome == "sent":
            return True
        if result.outcome == "blocked":
            log.info("chat %s does not accept messages: %s", chat_ref, result.error)
        else:
            log.warning("sendMessage to chat %s failed: %s", chat_ref, result.error)
        return False

    async def _on_error(self, update: object, ctx: CallbackContext[Any, Any, Any, Any]) -> None:
        log.error("error while processing a Telegram update", exc_info=ctx.error)
