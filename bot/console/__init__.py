"""The admin web console, served by `mianzi serve` at `/admin/` (docs/console.md).

`app.console_mount` composes it: `access` (who is signed in, the CSRF check of every POST),
`pages` (the templates and the refusal pages), then one module of routes per part of the console
(`signin`, `dashboard`, `partners`, `imports`, `audit`). Every figure and every change goes through
the same `models/` and `handlers/` functions as the CLI; every word comes from
`messages/<locale>/console.toml`. Its static files (htmx, ECharts, the style sheet) are vendored
in `static/`: the console works on a closed network.

This module stays light (no Starlette, no database): the chat's `/console` and the CLI need only
the paths below.
"""

MOUNT = "/admin"
SIGNIN = "admin/signin"  # the sign-in page, relative to MIANZI_PUBLIC_URL; the link adds ?token=…
