"""Settings from the environment or a `.env` file (DESIGN §4), all prefixed `MIANZI_`.

Every command reads them, so this module imports nothing of the program (no `models`, no
SQLAlchemy): `mianzi contests list` must answer in under half a second (issue 14).
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIANZI_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///mianzi.db"
    timezone: str = "Asia/Shanghai"
    locale: str = "zh"
    api_token: str | None = None
    # The base URL people reach this server at (`https://mianzi.example.com`): sign-in links to the
    # console (`mianzi admin link`, chat `/console`) are built on it; https makes the cookies Secure.
    public_url: str | None = None
    session_idle_hours: float = 8.0  # a web session (console, dealer page) ends after this long unused
    upload_max_mb: int = 200  # the largest file the console takes in an upload (a million sales rows is ~60 MB)

    telegram_token: str | None = None
    telegram_secret: str | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_bot_username: str = "MianziBot"
    # The dealer page as a Telegram Mini App (bot/dealer/telegram_auth.py): initData older than this
    # (its `auth_date`) is refused, so that a copied sign-in cannot be replayed later.
    webapp_max_age_seconds: int = 3600

    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_token: str | None = None
    wechat_aes_key: str | None = None
    wechat_api_url: str = "https://api.weixin.qq.com/cgi-bin/"
    # Where a parametric QR code's image is downloaded by its ticket (`partners invite`).
    wechat_qrcode_url: str = "https://mp.weixin.qq.com/cgi-bin/showqrcode"
    wechat_template_id: str | None = None
    # The dealer page's WeChat OAuth (snsapi_base): where the browser is sent to authorize, and the
    # base of the server-side code exchange (`sns/oauth2/access_token`); tests point both at a fake.
    wechat_oauth_url: str = "https://open.weixin.qq.com/connect/"
    wechat_sns_url: str = "https://api.weixin.qq.com/"

    wecom_corp_id: str | None = None
    wecom_secret: str | None = None
    wecom_agent_id: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com/cgi-bin/"
    # WeChat/WeCom freshness (DESIGN §6): a callback whose `timestamp` is further than this from
    # now is refused with 403, and each (timestamp, nonce) is remembered at least this long.
    wechat_max_age_seconds: int = 300

    invite_ttl_days: int = 7
    # The invite throttle (models/identities.py): failed binds allowed per chat account, and over
    # all accounts, within the window; past either, binds are refused until failures age out.
    invite_max_failures: int = 5
    invite_max_failures_global: int = 100
    invite_failure_window_minutes: int = 10
    points_expiry_months: int = 0  # points expire N months after they were earned, oldest first; 0: never

    # Delivery ceilings (DESIGN §5): the platforms' figures can change, so they are settings.
    telegram_rate: float = 30.0  # messages per second for the whole bot (1000 with paid broadcasts)
    telegram_chat_interval: float = 1.0  # seconds between two messages to one private chat
    telegram_group_per_minute: int = 20
    wechat_rate: float = 20.0
    wecom_rate: float = 20.0
    wecom_chat_interval: float = 2.0  # WeCom drops silently past 30 messages a minute per member
    wecom_chat_per_hour: int = 1000  # ... and past 1000 an hour per member (0: no hourly limit)
    cjk_font: str | None = None  # a .ttf/.otf/.ttc with Chinese glyphs; default: a system font if found
    media_dir: str = "media"  # where recognition images are written
    weekly_cron: str = "0 9 * * mon"  # weekly standings push, program time zone
    scheduler_tick_seconds: int = 30  # how often the scheduler looks for due work
    delivery_concurrency: int = 64
    delivery_max_attempts: int = 5
    delivery_lease_seconds: int = 60  # a crashed worker's rows are sent by another after this long
    delivery_election_seconds: float = 5.0  # PostgreSQL: how often a serve process holds its channels' election
    # Chat answers in a process of their own (bot/core/runner.py): the web loop and the database
    # work then use two CPU cores instead of sharing one interpreter lock. None (the default):
    # on when it helps — SQLite (one writer, so one answering process) and more than one core.
    core_process: bool | None = None

    def public_link(self, path: str) -> str | None:
        """`path` on `MIANZI_PUBLIC_URL`, or None when it is not set (the callers say how to set it)."""
        if not self.public_url:
            return None
        return self.public_url.rstrip("/") + "/" + path.lstrip("/")

    def receives(self, platform: str) -> bool:
        """Whether chat messages come in on `platform`: the one place that says a channel is on."""
        if platform == "telegram":
            return bool(self.telegram_token)
        if platform == "wechat":
            return bool(self.wechat_token and self.wechat_app_id)
        if platform == "wecom":
            return bool(self.wecom_corp_id and self.wecom_agent_id and self.wecom_token and self.wecom_aes_key)
        return False

    def sends(self, platform: str) -> bool:
        """Whether pushes can go out on `platform` (the delivery worker's senders)."""
        if platform == "telegram":
            return bool(self.telegram_token)
        if platform == "wechat":
            return bool(self.wechat_app_id and self.wechat_app_secret)
        if platform == "wecom":
            return bool(self.wecom_corp_id and self.wecom_secret and self.wecom_agent_id)
        return False

    def core_process_on(self) -> bool:
        """Whether `mianzi serve` answers chat in a process of its own (`MIANZI_CORE_PROCESS`, else automatic).

        On PostgreSQL several `serve` processes are the way to more cores; on one core a second
        process only adds a hand-over.
        """
        if self.core_process is not None:
            return self.core_process
        return self.database_url.startswith("sqlite") and len(os.sched_getaffinity(0)) > 1


@lru_cache
def get_settings() -> Settings:
    return Settings()
