"""Apply the Alembic migrations shipped in the `migrations` package.

Every entry point migrates on its first use of a database (`bot.context`), so a command that runs
for a tenth of a second would spend most of it in Alembic (importing it, then loading every
revision script to find there is nothing to do). `upgrade` first reads the database's revision
with one plain query and compares it with the heads of the shipped scripts, read from the files
as text; only when they differ (or the scripts are not in the simple form read here) does Alembic
run, and then exactly as before.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import migrations

if TYPE_CHECKING:  # SQLAlchemy too: `script_heads` serves `bot.context.plain_connection`, which reads without it
    from alembic.config import Config
    from sqlalchemy import Engine

VERSIONS = Path(migrations.__file__).parent / "versions"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return cfg


@lru_cache(maxsize=1)
def script_heads() -> frozenset[str] | None:
    """The newest revisions of the shipped scripts (those no other script revises), read as text
    without importing Alembic; None when a script's `revision`/`down_revision` is not a literal."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple) and all(isinstance(x, str) for x in down):
            parents.update(down)
        elif down is not None:
            return None
    heads = frozenset(revisions - parents)
    return heads or None


def at_head(engine: Engine) -> bool:
    """Whether the database's `alembic_version` names exactly the shipped heads (no table: no)."""
    from sqlalchemy.exc import SQLAlchemyError

    heads = script_heads()
    if heads is None:
        return False
    try:
        with engine.connect() as conn:
            current = {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    except SQLAlchemyError:
        return False
    return current == heads


def upgrade(engine: Engine) -> None:
    """Create or migrate the schema to the newest revision (idempotent)."""
    if at_head(engine):
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
