"""`mianzi serve` and `mianzi demo`: the server, and the sample program in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.common import _locale, err, guarded, out

if TYPE_CHECKING:
    from bot.settings import Settings


GRACEFUL_SECONDS = 10  # how long a stopping server waits for open requests (uvicorn's graceful shutdown)


def demo(db: Path = typer.Option(Path("mianzi-demo.db"), "--db", help="SQLite file for the sample program"),
         script: bool = typer.Option(False, "--script", help="play the scripted tour even in a terminal")) -> None:
    """A complete sample program and a chat in the terminal (a scripted tour without a terminal)."""
    from bot.demo.tour import run
    from bot.settings import get_settings

    settings = get_settings()
    raise typer.Exit(run(db, settings.timezone, settings.locale, interactive=False if script else None))


def channel_names(settings: Settings, on: dict[str, bool], loc: str) -> list[str]:
    """The chat channels the server answers on (`on`: the app's, as `/healthz` reports them), as
    `mianzi serve`'s start-up line names them."""
    from messages.render import t

    names = []
    if on.get("telegram"):
        names.append(t("web.telegram_webhook" if settings.telegram_webhook_url else "web.telegram_polling", loc))
    if on.get("wechat"):
        names.append(t("web.wechat_on", loc))
    if on.get("wecom"):
        names.append(t("web.wecom_on", loc))
    return names


def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8080, "--port"),
          access_log: bool = typer.Option(False, "--access-log/--no-access-log",
                                          help="a log line per HTTP request (every webhook message)")) -> None:
    """The server: /healthz, the Telegram webhook (or long polling), the WeChat and WeCom callbacks, the sales API."""
    import logging

    import uvicorn

    from bot.settings import get_settings
    from bot.web.access_log import uvicorn_log_config
    from bot.web.app import create_app
    from messages.render import t

    settings = get_settings()
    loc = _locale()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines show Bot API URLs, token included
    with guarded():
        application = create_app(settings)
    channels = channel_names(settings, application.state.channels, loc)
    out.print(t("web.serving", loc, url=f"http://{host}:{port}"), markup=False, highlight=False)
    listed = t("web.channel_separator", loc).join(channels) if channels else t("web.no_channels", loc)
    out.print(t("web.channels", loc, channels=listed),
              markup=False, highlight=False)
    out.print(t("web.api_on" if settings.api_token else "web.api_off", loc), markup=False, highlight=False)
    if settings.receives("wechat") and not settings.wechat_aes_key:
        err.print(t("web.wechat_plaintext_warning", loc), markup=False, highlight=False)
    # The dealer pages' event streams never end by themselves: at shutdown, requests still open
    # after GRACEFUL_SECONDS are cancelled (an import in a request rolls back; the API is idempotent).
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=access_log,
                log_config=uvicorn_log_config(),  # the access log writes no signature, nonce …
                timeout_graceful_shutdown=GRACEFUL_SECONDS)


