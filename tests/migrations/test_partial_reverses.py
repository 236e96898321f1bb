"""Migration 0011: `ix_sale_reverses` becomes partial (only the reversals), on a database holding sales."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from bot.migrate import alembic_config
from tests.conftest import PG_URL

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """An empty database of its own (PostgreSQL: a schema of its own in the test database)."""
    if request.param == "sqlite":
        return create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert PG_URL is not None
    engine = create_engine(PG_URL, connect_args={"options": "-csearch_path=migrate_0011"})
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS migrate_0011 CASCADE"))
        conn.execute(text("CREATE SCHEMA migrate_0011"))
    request.addfinalizer(lambda: _drop(engine))
    return engine


def _drop(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS migrate_0011 CASCADE"))
    engine.dispose()


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _sale(conn: object, n: int, reverses: int | None) -> None:
    conn.execute(text("INSERT INTO sale (ext_id, partner_id, occurred_at, amount_fen, units, imported_at, reverses) "  # type: ignore[attr-defined]
                      "VALUES (:e, 1, '2026-11-01 00:00:00', :a, 1, '2026-11-02 00:00:00', :r)"),
                 {"e": f"S{n}", "a": -100 if reverses else 100, "r": reverses})


def test_the_reversals_index_becomes_partial_and_keeps_its_rows(fresh: Engine) -> None:
    _migrate(fresh, "0010_board_links")
    with fresh.begin() as conn:
        conn.execute(text("INSERT INTO partner (code, name, role, locale, active) VALUES ('P1', 'p', 'partner', 'zh', true)"))
        for n in range(1, 4):
            _sale(conn, n, None)
        _sale(conn, 4, 1)
    _migrate(fresh, "head")
    index = next(i for i in inspect(fresh).get_indexes("sale") if i["name"] == "ix_sale_reverses")
    assert index["unique"] and index["column_names"] == ["reverses"]
    with fresh.connect() as conn:
        if fresh.dialect.name == "sqlite":
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_sale_reverses'")).scalar_one()
            entries = conn.execute(text("SELECT count(*) FROM sale INDEXED BY ix_sale_reverses "
                                        "WHERE reverses IS NOT NULL")).scalar_one()
            assert entries == 1
        else:
            sql = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_sale_reverses' "
                                    "AND schemaname = 'migrate_0011'")).scalar_one()
        assert "WHERE" in sql and "reverses IS NOT NULL" in sql.replace("(", "").replace(")", "")
        assert conn.execute(text("SELECT count(*) FROM sale")).scalar_one() == 4
    with pytest.raises(IntegrityError), fresh.begin() as conn:  # a sale is still reversed only once
        _sale(conn, 5, 1)
    _migrate(fresh, "0010_board_links", down=True)
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sale")).scalar_one() == 4
