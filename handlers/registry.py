"""The one table of chat commands, filled by the `@command` declarations beside each handler.

A command is declared once, where it is implemented::

    @command("adjust", roles=ADMINS, text_after=2)
    def cmd_adjust(session, asker, args, config, now): ...

The declaration says everything the rest of the core needs: the slash name and its aliases
(`/start` is `/bind`), who may run it, whether it needs a bound partner, how much of its trailing
text is kept as typed, and whether its keyword may be written joined to what follows. Its words
without a slash (`排行`) live with the other words, in `messages/<locale>/keywords.toml`.

`handlers.parse` reads the table to recognise commands, `handlers.dispatch` to run them: the
bound-partner and role checks and turning a `DataError` into its reply happen there, once.

Who may see each reply (`Reply.audience`) stays with the handler: it is a property of the reply,
not of the command (`/rank` is public for an admin, private with a public part for a dealer).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlmodel import Session

from handlers.identity import Asker
from handlers.types import ChatConfig, Reply

Handler = Callable[[Session, Asker, list[str], ChatConfig, datetime], list[Reply]]

ANY: frozenset[str] | None = None  # anyone may run it (bound or not: see `needs_partner`)
ADMINS = frozenset({"admin"})  # channel managers only; anyone else gets `chat.admin_only`

# The modules that declare commands: importing them fills the table (`table()` does, once).
MODULES = ("handlers.commands", "handlers.rewards", "handlers.points", "handlers.trainings", "handlers.feedback",
           "handlers.console")


@dataclass(frozen=True)
class Spec:
    """One chat command, as declared with `command`."""

    name: str
    handler: Handler
    roles: frozenset[str] | None = ANY  # the `Asker.role`s that may run it; None: anyone
    needs_partner: bool = True  # asked by someone not bound: `chat.need_bind`, the handler is not called
    aliases: tuple[str, ...] = ()  # other slash names (`/start` for `/bind`)
    # When set, the last argument is the user's own text, kept exactly as typed (full-width
    # punctuation and all), after this many normalised arguments: a broadcast is all text (0);
    # `/adjust P1 -50 原因` has two before it, `驳回 12 原因` one.
    text_after: int | None = None
    # Whether its keyword may be written joined to what follows: `绑定AB12CD34` (one word) and,
    # for a command that is all text, `群发大家好`.
    glued: bool = False


_TABLE: dict[str, Spec] = {}


def command(name: str, *, roles: frozenset[str] | None = ANY, needs_partner: bool = True,
            aliases: tuple[str, ...] = (), text_after: int | None = None,
            glued: bool = False) -> Callable[[Handler], Handler]:
    """Declare the decorated function as the handler of the chat command `name`."""

    def register(handler: Handler) -> Handler:
        taken = {n for spec in _TABLE.values() if spec.name != name for n in (spec.name, *spec.aliases)}
        if name in taken or taken & set(aliases):
            raise ValueError(f"command {name!r} or one of its aliases {aliases!r} is declared twice")
        _TABLE[name] = Spec(name, handler, roles, needs_partner, aliases, text_after, glued)
        return handler

    return register


_loaded = False


def table() -> dict[str, Spec]:
    """Every declared command by name (the declaring modules are imported on first use)."""
    global _loaded
    if not _loaded:
        for module in MODULES:
            importlib.import_module(module)
        _loaded = True
    return _TABLE


@lru_cache(maxsize=1)
def slash_names() -> dict[str, str]:
    """Every slash name (names and aliases) → the command it runs."""
    return {n: spec.name for spec in table().values() for n in (spec.name, *spec.aliases)}


def may_run(spec: Spec, role: str) -> bool:
    return spec.roles is None or role in spec.roles
