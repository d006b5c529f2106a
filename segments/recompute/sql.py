"""The recompute's SQL helpers: the few dialect differences between PostgreSQL
(production, benchmarks) and SQLite (the embedded demo) — date arithmetic, binary
COPY of numpy columns — the tables the phases write, and the planner settings and
statistics passes around them."""

import io

import numpy as np
from django.db import connection

from users import selectors as users_selectors

from ..models import AggregateStaging, CustomerScore, PredictionStaging, SegmentSizeSnapshot, StageChange

SCORE = CustomerScore._meta.db_table
AGG = AggregateStaging._meta.db_table  # the chunks' order summaries (staging)
PRED = PredictionStaging._meta.db_table  # the model's predictions (staging)
STAGE_CHANGE = StageChange._meta.db_table
SIZE_SNAPSHOT = SegmentSizeSnapshot._meta.db_table
# The users app's tables (and its "paid" condition), as the users app names them.
CUSTOMER = users_selectors.sql_tables()["customer"]
ORDER = users_selectors.sql_tables()["order"]
PAID = users_selectors.paid_order_sql()


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _days(later: str, earlier: str) -> str:
    if _pg():
        return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"
    return f"(julianday({later}) - julianday({earlier}))"


def _whole_days(later: str, earlier: str) -> str:
    """Whole days, rounded down (PostgreSQL's numeric → integer cast rounds to nearest)."""
    if _pg():
        return f"CAST(FLOOR({_days(later, earlier)}) AS INTEGER)"
    return f"CAST({_days(later, earlier)} AS INTEGER)"


def copy_binary(cursor, table: str, columns: dict[str, np.ndarray]) -> None:
    """COPY … FROM STDIN (FORMAT binary) of int64/float64 numpy columns, packed by numpy
    in one pass (text CSV of a million rows costs seconds; this costs milliseconds)."""
    fields = [("n", ">i2")]
    for i, array in enumerate(columns.values()):
        fields += [(f"l{i}", ">i4"), (f"v{i}", ">i8" if array.dtype.kind in "iu" else ">f8")]
    rows = np.empty(len(next(iter(columns.values()))), dtype=fields)
    rows["n"] = len(columns)
    for i, array in enumerate(columns.values()):
        rows[f"l{i}"] = 8
        rows[f"v{i}"] = array
    payload = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)", io.BytesIO(payload))


_BIG_ENDIAN_INT = {2: ">i2", 4: ">i4", 8: ">i8"}  # smallint, integer, bigint on the wire


def read_ints(sql: str, params: list, columns: dict[str, int]) -> dict[str, np.ndarray]:
    """A query's integer, never-NULL columns (``{name: byte width}``, the query casting
    each to smallint, integer or bigint to match) as int64 numpy arrays: a binary COPY
    parsed by numpy in one pass on PostgreSQL (half the bytes and none of the parsing
    of CSV), a plain fetch elsewhere."""
    with connection.cursor() as cur:
        if not _pg():
            cur.execute(sql, params)
            rows = np.array(cur.fetchall(), dtype=np.int64).reshape(-1, len(columns))
            return {name: rows[:, i] for i, name in enumerate(columns)}
        buf = io.BytesIO()
        cur.cursor.copy_expert(f"COPY ({cur.mogrify(sql, params).decode()}) TO STDOUT WITH (FORMAT binary)", buf)
    payload = buf.getbuffer()
    header = 11 + 4 + 4 + int.from_bytes(payload[15:19], "big")  # signature, flags, extension area
    fields = [("n", ">i2")]
    for i, width in enumerate(columns.values()):
        fields += [(f"l{i}", ">i4"), (f"v{i}", _BIG_ENDIAN_INT[width])]
    rows = np.frombuffer(payload[header : len(payload) - 2], dtype=fields)
    widths = list(columns.values())
    if len(rows) and (
        (rows["n"] != len(columns)).any() or any((rows[f"l{i}"] != w).any() for i, w in enumerate(widths))
    ):
        raise ValueError("a binary COPY column is NULL or not the width its cast promised")
    return {name: rows[f"v{i}"].astype(np.int64) for i, name in enumerate(columns)}


def write_ints(table: str, columns: dict[str, np.ndarray]) -> None:
    """Integer numpy columns into a table: binary COPY on PostgreSQL, executemany elsewhere."""
    with connection.cursor() as cur:
        if _pg():
            copy_binary(cur.cursor, table, columns)
        elif len(next(iter(columns.values()))):
            cur.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                list(zip(*(c.tolist() for c in columns.values()), strict=True)),
            )


def analyze(*tables: str) -> None:
    """Fresh planner statistics for tables a phase has just filled (a million new rows
    planned as a few hundred invites nested loops)."""
    if _pg():
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {', '.join(tables)}")


def vacuum(*tables: str) -> bool:
    """VACUUM (ANALYZE) after a bulk delete, so the space is reused by the next run and
    scans do not wade through a million dead rows. Autovacuum would get there in its own
    time — or never, where it is switched off (as on the benchmark machine). VACUUM
    cannot run inside a transaction: there it is skipped and False is returned."""
    if not _pg() or connection.in_atomic_block:
        return False
    with connection.cursor() as cur:
        cur.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
    return True


def large_sorts_in_memory() -> None:
    """For the current transaction: let PostgreSQL sort and hash a million rows in memory
    (window functions, joins) instead of spilling to temporary files."""
    if _pg():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL work_mem = '256MB'")


def prefer_index_lookups(on: bool) -> None:
    """The incremental statements touch a few thousand rows of a million-row run; the
    planner's default — hash joins over a full scan of the run, compiled with JIT — costs
    a scan per statement. Inside this transaction only, prefer index lookups."""
    if _pg():
        with connection.cursor() as cur:
            cur.execute(f"SET LOCAL enable_seqscan = {'off' if on else 'on'}")
            cur.execute(f"SET LOCAL enable_hashjoin = {'off' if on else 'on'}")
            cur.execute("SET LOCAL jit = off")
