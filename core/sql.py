"""Small helpers for the raw SQL the bulk paths run on both PostgreSQL and SQLite."""

from datetime import datetime

from django.db import connection


def sql_datetime(value: datetime):
    """A datetime as a raw-SQL parameter, stored the way the ORM stores it: as is on
    PostgreSQL, as naive UTC text on SQLite (the driver's own adapter would add an offset
    and mix two formats in one column)."""
    return value if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(value)


def temp_table_drop(cursor, name: str) -> None:
    """Drops a temporary table if it exists, never a permanent table of the same name
    (``pg_temp.`` / ``temp.`` name the session's own temporary schema)."""
    schema = "pg_temp" if connection.vendor == "postgresql" else "temp"
    cursor.execute(f"DROP TABLE IF EXISTS {schema}.{name}")
