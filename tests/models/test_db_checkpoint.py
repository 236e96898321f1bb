"""SQLite's write-ahead log copied into the database by a thread, not at a chat message's commit."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import text

from models.db import checkpoint_apart, hold_connection, make_engine, release_connection, session_scope


def _database_file_holds_every_page(path: Path) -> bool:
    """Whether the main file (not the log) has every page of the database: checkpointed."""
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    engine.dispose()
    return bool(os.path.getsize(path) >= pages * size)


def test_the_held_connection_leaves_checkpoints_to_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE said (id INTEGER PRIMARY KEY, words TEXT)"))
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert hold_connection(engine)
    stop = checkpoint_apart(engine, every=3600)  # no round of the thread's during the writes
    assert stop is not None
    try:
        for _ in range(50):  # ~1,200 pages of log: past the 1,000 at which a commit would checkpoint itself
            with session_scope(engine) as session:
                session.execute(text("INSERT INTO said (words) VALUES (:w)"), [{"w": "话" * 300}] * 25)
            with session_scope(engine) as session:
                assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        assert not _database_file_holds_every_page(path)  # no message's commit copied the log
    finally:
        release_connection(engine)
    stop.set()

    quick = make_engine(f"sqlite:///{path}")
    assert hold_connection(quick)
    stop = checkpoint_apart(quick, every=0.05)
    assert stop is not None and checkpoint_apart(quick) is None  # one thread an engine
    try:
        deadline = time.monotonic() + 10
        while not _database_file_holds_every_page(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _database_file_holds_every_page(path)  # the thread did
        with session_scope(quick) as session:
            assert session.execute(text("SELECT count(*) FROM said")).scalar_one() == 50 * 25
    finally:
        release_connection(quick)
    assert stop.is_set()  # released: its thread ends
    engine.dispose()
    quick.dispose()


def test_without_a_held_connection_nothing_changes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    assert checkpoint_apart(engine) is None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
    engine.dispose()
