"""Loading big tables the way pg_dump does: secondary indexes and foreign keys
are dropped before the data and rebuilt after it (used by ``seed_demo`` and the
benchmarks' loaders)."""

import contextlib
from collections.abc import Iterator

from django.db import connection


def _secondary_indexes(tables: list[str]) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the tables' plain, non-unique indexes."""
    placeholders = ", ".join(["%s"] * len(tables))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                f"WHERE t.relname IN ({placeholders}) AND pg_table_is_visible(t.oid) "
                "AND NOT x.indisunique AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                tables,
            )
        elif connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND sql NOT LIKE 'CREATE UNIQUE%%' AND tbl_name IN ({placeholders})",
                tables,
            )
        else:
            return []
        return cursor.fetchall()


def _foreign_keys(tables: list[str]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the PostgreSQL foreign keys declared on the tables."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid "
            f"WHERE c.contype = 'f' AND t.relname IN ({', '.join(['%s'] * len(tables))}) "
            "AND pg_table_is_visible(t.oid)",
            tables,
        )
        return cursor.fetchall()


@contextlib.contextmanager
def bulk_load(*models, analyze=()) -> Iterator[None]:
    """Loads big tables the way pg_dump does: indexes and foreign keys after the data;
    ``analyze`` names more models whose statistics to refresh afterwards.

    Building an index once, by sorting, is several times faster than inserting
    (or deleting) 500,000 rows one by one into B-trees keyed by customer, and
    SQLite never truncates a table while foreign keys are enforced. On
    PostgreSQL a foreign key checked per row also locks the customer row each
    time; added afterwards it is validated by one join. Unique indexes stay,
    so duplicates are still refused. Use inside a transaction: DDL is
    transactional on both databases, so a failed load leaves the schema as it
    was (the tables are locked against other writers meanwhile).
    """
    tables = [m._meta.db_table for m in models]
    indexes, fks = _secondary_indexes(tables), _foreign_keys(tables)
    q = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            # ALTER TABLE refuses to run over deferred foreign-key checks still pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table, name, _definition in fks:
            cursor.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}")
        for name, _sql in indexes:
            cursor.execute(f"DROP INDEX {q(name)}")
    yield
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for _name, sql in indexes:
            cursor.execute(sql)
        for table, name, definition in fks:
            cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")
        if postgres:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django declares them INITIALLY DEFERRED
            # Fresh statistics, or the roll-up that follows is planned for empty tables.
            cursor.execute(f"ANALYZE {', '.join(q(t) for t in [*tables, *(m._meta.db_table for m in analyze)])}")
