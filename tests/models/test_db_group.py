"""`models.db.grouped`: several sessions on the held SQLite connection in one transaction, each
one a savepoint of it; nothing kept unless the whole group commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from models.db import GroupConflict, grouped, hold_connection, make_engine, release_connection, session_scope


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """An engine whose connection is held in this thread, and another one on the same file (another process's)."""
    url = f"sqlite:///{tmp_path / 'group.db'}"
    engine, other = make_engine(url), make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE said (id INTEGER PRIMARY KEY, words TEXT UNIQUE)"))
    assert hold_connection(engine)
    yield engine, other
    release_connection(engine)
    engine.dispose()
    other.dispose()


def say(engine: Engine, words: str, fail: bool = False) -> None:
    with session_scope(engine) as session:
        session.execute(text("INSERT INTO said (words) VALUES (:w)"), {"w": words})
        if fail:
            raise LookupError(words)


def said(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT words FROM said ORDER BY id"))]


def test_the_scopes_of_a_group_commit_together_and_a_failed_one_alone_is_undone(held: tuple[Engine, Engine]) -> None:
    engine, other = held
    with grouped(engine) as commit:
        assert commit is not None
        say(engine, "一")
        with pytest.raises(LookupError):
            say(engine, "二", fail=True)
        say(engine, "三")
        with session_scope(engine) as session:  # the group's own scopes see what the earlier ones did
            assert session.execute(text("SELECT count(*) FROM said")).scalar_one() == 2
        assert said(other) == []  # nothing committed before the group's commit
        assert commit()
    assert said(other) == ["一", "三"]
    say(engine, "四")  # one by one again afterwards
    assert said(other) == ["一", "三", "四"]


def test_a_group_left_by_an_error_keeps_nothing(held: tuple[Engine, Engine]) -> None:
    engine, other = held
    with pytest.raises(RuntimeError), grouped(engine) as commit:
        assert commit is not None
        say(engine, "一")
        raise RuntimeError
    assert said(other) == []
    say(engine, "一")  # the claim of the lost group is free again
    assert said(other) == ["一"]


def test_another_connection_asked_for_in_a_group_is_refused_and_the_group_lost(held: tuple[Engine, Engine]) -> None:
    """It would wait for the write lock the group holds: refused at once, and nothing of the group kept."""
    engine, other = held
    with grouped(engine) as commit:
        assert commit is not None
        say(engine, "一")
        with pytest.raises(GroupConflict), engine.begin() as conn:
            conn.execute(text("INSERT INTO said (words) VALUES ('elsewhere')"))
        say(engine, "二")
        assert not commit()
    assert said(other) == []
    with engine.begin() as conn:  # outside a group other connections work as ever
        conn.execute(text("INSERT INTO said (words) VALUES ('elsewhere')"))
    assert said(other) == ["elsewhere"]


def test_a_group_whose_transaction_was_rolled_back_under_it_commits_nothing(held: tuple[Engine, Engine]) -> None:
    """SQLite rolls a transaction back by itself on some errors (a full disk): the scopes after it
    must not commit on their own, and the group says it was lost."""
    engine, other = held
    with grouped(engine) as commit:
        assert commit is not None
        say(engine, "一")
        with pytest.raises(OperationalError), session_scope(engine) as session:  # its own savepoint went too
            session.connection().connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        say(engine, "二")
        assert not commit()
    assert said(other) == []


def test_a_commit_that_fails_keeps_nothing(held: tuple[Engine, Engine]) -> None:
    """A deferred foreign key is checked at the group's one commit, which fails: nothing of it is kept."""
    engine, other = held
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, said_id INTEGER REFERENCES said (id))"))
    with grouped(engine) as commit:
        assert commit is not None
        say(engine, "一")
        with session_scope(engine) as session:
            session.execute(text("PRAGMA defer_foreign_keys = ON"))
            session.execute(text("INSERT INTO note (said_id) VALUES (999)"))
        assert not commit()
    assert said(other) == []
    say(engine, "一")
    assert said(other) == ["一"]


def test_nothing_is_grouped_without_a_held_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    with grouped(engine) as commit:
        assert commit is None
    engine.dispose()
