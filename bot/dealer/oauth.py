"""WeChat's web sign-in for the dealer page: the Official Account's OAuth (`snsapi_base`) and WeCom's.

Both are silent (no consent screen): the browser is sent to the platform's authorize URL with our
`state`, comes back to our callback with a `code`, and the server exchanges that code — once, it
is single-use at the platform — for the user's OpenID (Official Account, `sns/oauth2/access_token`)
or UserID (WeCom, `user/getuserinfo`), through wechatpy. The calls are blocking (requests): run
them in a thread. Base URLs are settings so tests and checks point them at a fake.
"""

from __future__ import annotations

from wechatpy.enterprise import WeChatClient as WeComClient
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from bot.settings import Settings

TIMEOUT = 10.0


class CodeRefused(Exception):
    """The platform did not take the code (forged, used already, expired), or could not be asked."""


def _wechat(settings: Settings, redirect_uri: str, state: str = "") -> WeChatOAuth:
    oauth = WeChatOAuth(settings.wechat_app_id or "", settings.wechat_app_secret or "", redirect_uri,
                        scope="snsapi_base", state=state)
    oauth.API_BASE_URL = _slash(settings.wechat_sns_url)
    oauth.OAUTH_BASE_URL = _slash(settings.wechat_oauth_url)
    return oauth


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def wechat_authorize_url(settings: Settings, *, redirect_uri: str, state: str) -> str:
    return str(_wechat(settings, redirect_uri, state).authorize_url)


def wechat_openid(settings: Settings, *, code: str, redirect_uri: str) -> str:
    """The OpenID behind an authorization code (Official Account)."""
    try:
        answer = _wechat(settings, redirect_uri).fetch_access_token(code)
    except (WeChatOAuthException, OSError, ValueError) as exc:
        raise CodeRefused(str(exc)) from exc
    openid = answer.get("openid")
    if not isinstance(openid, str) or not openid:
        raise CodeRefused("no openid")
    return openid


def _wecom(settings: Settings, access_token: str | None = None) -> WeComClient:
    client = WeComClient(settings.wecom_corp_id or "", settings.wecom_secret or "", access_token=access_token,
                         timeout=TIMEOUT)
    client.API_BASE_URL = _slash(settings.wecom_api_url)
    client.oauth.OAUTH_BASE_URL = _slash(settings.wechat_oauth_url) + "oauth2/authorize"
    return client


def wecom_authorize_url(settings: Settings, *, redirect_uri: str, state: str) -> str:
    return str(_wecom(settings, "unused").oauth.authorize_url(redirect_uri, state))


def wecom_userid(settings: Settings, *, code: str, access_token: str) -> str:
    """The member's UserID behind an authorization code (WeCom; `access_token` is the app's shared one)."""
    try:
        answer = _wecom(settings, access_token).oauth.get_user_info(code)
    except (WeChatClientException, OSError, ValueError) as exc:
        raise CodeRefused(str(exc)) from exc
    user = answer.get("UserId") or answer.get("userid")
    if not isinstance(user, str) or not user:  # an outsider gets an OpenId only: not a member we know
        raise CodeRefused("no UserId")
    return user
