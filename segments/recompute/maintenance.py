"""Housekeeping around the recompute's tables: clearing a run's staging rows,
deleting superseded scores, and vacuuming what the deletes leave behind."""

from django.db import connection

from .sql import AGG, PRED, SCORE, vacuum


def predictions_clear(*, run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {PRED} WHERE run_id = %s", [run_id])


def staging_clear(*, run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {AGG} WHERE run_id = %s", [run_id])
        cur.execute(f"DELETE FROM {PRED} WHERE run_id = %s", [run_id])


def scores_delete(*, run_ids: list[int]) -> int:
    if not run_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {SCORE} WHERE run_id IN ({', '.join(['%s'] * len(run_ids))})", run_ids)
        return cur.rowcount


def tables_vacuum() -> bool:
    """VACUUM (ANALYZE) of the score and staging tables (see ``sql.vacuum``)."""
    return vacuum(SCORE, AGG, PRED)
