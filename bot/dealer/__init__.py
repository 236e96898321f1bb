"""The dealer's own page, served by `mianzi serve` at `/me/` (docs/dealer.md): a Telegram Mini App
and a WeChat / WeCom page, signed in by the platform itself (no password, no link to spend).

`app.dealer_mount` composes it: `access` (the dealer session's cookie, shared with the console's
mechanism `bot.web.session`), `pages` (templates with their style sheet and script inlined: the
first view is one request), `signin` (Telegram's initData, WeChat's and WeCom's OAuth), `page`
(the page, the calculator, the certificates) and `live` (server-sent events). Every figure comes
from `handlers.dealer_page`, the same functions as the chat; every word from
`messages/<locale>/dealer.toml`.

Light on purpose (no Starlette, no database): the chat's buttons and links need only these paths.
"""

MOUNT = "/me"
PAGE = "me/"  # relative to MIANZI_PUBLIC_URL: the Mini App's URL, opened by Telegram's buttons
WECHAT_START = "me/wechat"  # the Official Account's entry: sets the OAuth state, sends the browser on
WECOM_START = "me/wecom"
