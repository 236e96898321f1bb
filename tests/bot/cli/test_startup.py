"""The command line answers at once: `--help` imports none of the data layer, and a command on a
migrated database does not load Alembic (issue 14). Not timed: what is imported is checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from bot.migrate import alembic_config, at_head, script_heads, upgrade
from models.db import make_engine

# pydantic itself is not here: Typer coerces parameter values through it (the settings' pydantic_settings is).
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "pydantic_settings", "jinja2", "models", "handlers", "scheduler",
         "messages")

PROBE = """
import sys
from bot.cli import app
try:
    app({args!r}, prog_name="mianzi")
except SystemExit as done:
    assert not done.code, done.code
print(sorted({{m.split(".")[0] for m in sys.modules}}))
"""


def _imported(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    ran = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                         check=True, env=env)
    *text, last = ran.stdout.rstrip().splitlines()
    return set(eval(last)), "\n".join(text)  # noqa: S307 (our own probe's list of names)


@pytest.mark.parametrize("args", [["--help"], ["contests", "--help"], ["partners", "--help"]])
def test_help_imports_no_data_layer(args: list[str]) -> None:
    modules, text = _imported(*args)
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    assert "Usage" in text


def test_help_still_lists_every_group_and_command() -> None:
    _modules, top = _imported("--help")
    for group in ("db", "partners", "targets", "sales", "contests", "demo", "serve", "broadcast", "deliveries",
                  "rewards", "redemptions", "points", "trainings", "feedback"):
        assert group in top
    _modules, contests = _imported("contests", "--help")
    for name in ("create", "list", "show", "close-due"):
        assert name in contests


def test_a_query_on_a_migrated_database_loads_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(make_engine(url))
    env = {**os.environ, "MIANZI_DATABASE_URL": url}
    modules, text = _imported("contests", "list", env=env)
    assert "alembic" not in modules
    assert "handlers" not in modules and "scheduler" not in modules
    assert text.strip()  # the "no contests" line


def test_contests_list_reads_without_sqlalchemy(tmp_path: Path) -> None:
    """The simple query's answer in under half a second: the driver's own connection (`models.plain`)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(make_engine(url))
    env = {**os.environ, "MIANZI_DATABASE_URL": url}
    for args in (("contests", "list"), ("contests", "list", "--json")):
        modules, text = _imported(*args, env=env)
        assert modules.isdisjoint({"sqlalchemy", "sqlmodel", "alembic", "handlers", "scheduler"}), modules
        assert text.strip()


def test_script_heads_are_alembics() -> None:
    assert script_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_upgrade_still_migrates_an_older_or_empty_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    assert not at_head(engine)  # no alembic_version table yet
    upgrade(engine)
    assert at_head(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
    assert not at_head(engine)
    upgrade(engine)
    assert at_head(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM bindfailure").scalar() == 0
    engine.dispose()
