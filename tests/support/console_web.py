"""The admin console over real HTTP: the app under uvicorn, sign-in links from `mianzi admin link`
(the browser is in `tests.support.browser`).

`signed_in(client, code)` opens a console session the way an admin does (the link, then its
button) and returns the session's CSRF token, read from the page as a browser would.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from tests.support.cli_runner import mianzi

PUBLIC_URL = "http://console.test"  # what links are built on; tests keep only their path and query


def link_path(code: str) -> str:
    """A fresh one-time sign-in link for `code` from the command line, as a path (`/admin/signin?token=…`)."""
    ran = mianzi("admin", "link", code, "--json")
    assert ran.code == 0, ran.err
    url = urlsplit(ran.json()["url"])
    return f"{url.path}?{url.query}"


def token_of(path: str) -> str:
    return path.split("token=", 1)[1]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def signed_in(client: httpx.Client, code: str) -> str:
    """Sign `client` in as `code` through the link and its button; the session's CSRF token."""
    path = link_path(code)
    assert client.get(path).status_code == 200
    answer = client.post("/admin/signin", data={"token": token_of(path)})
    assert answer.status_code == 303, answer.text
    page = client.get("/admin/audit")
    assert page.status_code == 200
    return csrf_of(page.text)
