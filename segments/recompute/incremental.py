"""An incremental run: patch the published run in place, in one transaction, for
the customers whose orders or profile changed since the last run."""

from datetime import datetime

import numpy as np
from django.db import connection

from core.sql import sql_datetime, temp_table_drop

from .. import rules
from ..models import SegmentRun
from .full import label_select
from .sql import (
    AGG,
    CUSTOMER,
    ORDER,
    PRED,
    SCORE,
    STAGE_CHANGE,
    _days,
    _pg,
    prefer_index_lookups,
    read_ints,
    write_ints,
)

RELABELLED = "tmp_relabel"  # patch_published's relabelled rows, with their new values


def _rescore(frame: dict[str, np.ndarray], dirty: np.ndarray) -> dict[str, np.ndarray]:
    """The rows whose quintile scores change, and every dirty customer, with their new
    (r, f, m) scores (0 = none: not active in the window). ``k`` counts the active
    customers whose value is no better (peers included) — the same ``ceil(5k/n)`` as the
    SQL windows of a full run, in integers."""
    ids = frame["id"]
    active = frame["freq"] > 0
    n = int(active.sum()) or 1
    new = np.zeros((len(ids), 3), dtype=np.int64)
    for j, (column, best_low) in enumerate((("rec", True), ("freq", False), ("cents", False))):
        values = frame[column][active]
        _distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        at_most = np.cumsum(counts)  # customers with a value <= each distinct value
        k = (n - (at_most - counts))[inverse] if best_low else at_most[inverse]
        new[active, j] = (5 * k + n - 1) // n
    old = np.stack([frame["r0"], frame["f0"], frame["m0"]], axis=1)
    moved = (new != old).any(axis=1) | np.isin(ids, dirty)
    unseen = np.setdiff1d(
        dirty, ids, assume_unique=True
    )  # dirty customers the frame left out: never active, still no scores
    customer_id = np.concatenate([ids[moved], unseen])
    order = np.argsort(customer_id, kind="stable")  # key order: the lookups that follow walk the indexes in order
    return {
        "customer_id": customer_id[order],
        **{
            name: np.concatenate([new[moved, j], np.zeros(len(unseen), dtype=np.int64)])[order]
            for j, name in enumerate(("r_score", "f_score", "m_score"))
        },
    }


def dirty_customer_ids(*, since: datetime) -> list[int]:
    """Customers whose orders changed, or who were created or edited (a new signup date
    moves the stage), since ``since``. Both reads are index range scans."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT customer_id FROM {ORDER} WHERE updated_at >= %s "
            f"UNION SELECT id FROM {CUSTOMER} WHERE updated_at >= %s",
            [sql_datetime(since), sql_datetime(since)],
        )
        return sorted(row[0] for row in cur.fetchall())


def patch_published(
    *, current: SegmentRun, staging_run: SegmentRun, t: rules.Thresholds, dirty: list[int]
) -> tuple[dict, np.ndarray]:
    """Copies the re-aggregated ``dirty`` customers (staged under ``staging_run``) into the
    published run, re-ranks everyone, relabels every row whose scores moved and
    records stage changes. Call inside a transaction. Returns the counts and the ids
    of the relabelled rows, whose new values stay in the temporary table ``RELABELLED``
    for the rest of the transaction (the custom segments read them; ``relabelled_drop``).

    The ranks are counted with numpy over the active base (one binary read of seven
    integer columns: id, the three values and the three old scores); only the rows
    whose scores move are labelled — by the same SQL
    as a full run, into a temporary table that also keeps their stage before — and
    written back by key, and the history comes from that table alone."""
    cur_id, staging_id = current.pk, staging_run.pk
    now = sql_datetime(staging_run.as_of)
    labels, label_params = label_select(t)
    with connection.cursor() as cur:
        prefer_index_lookups(True)
        # 1. New values for the dirty customers (existing rows, then newcomers).
        cur.execute(
            f"""
            UPDATE {SCORE} SET recency_days = a.recency_days, frequency = a.frequency, monetary = a.monetary,
                orders_total = a.orders_total, first_order_at = a.first_order_at, last_order_at = a.last_order_at,
                mean_order_value = a.mean_order_value, p_alive = p.p_alive,
                expected_purchases_90d = p.expected_purchases_90d,
                expected_order_value = ROUND(CAST(p.expected_order_value AS NUMERIC), 2),
                clv = ROUND(CAST(p.clv AS NUMERIC), 2)
            FROM {AGG} a LEFT JOIN {PRED} p ON p.run_id = a.run_id AND p.customer_id = a.customer_id
            WHERE a.run_id = %s AND {SCORE}.run_id = %s AND {SCORE}.customer_id = a.customer_id
        """,
            [staging_id, cur_id],
        )
        cur.execute(
            f"""
            INSERT INTO {SCORE} (run_id, customer_id, recency_days, frequency, monetary, orders_total, first_order_at,
                last_order_at, mean_order_value, p_alive, expected_purchases_90d, expected_order_value, clv,
                rfm_group, rfm_segment, tier, stage, operating_class)
            SELECT %s, a.customer_id, a.recency_days, a.frequency, a.monetary, a.orders_total, a.first_order_at,
                a.last_order_at, a.mean_order_value, p.p_alive, p.expected_purchases_90d,
                ROUND(CAST(p.expected_order_value AS NUMERIC), 2), ROUND(CAST(p.clv AS NUMERIC), 2),
                '', '', '', '', ''
            FROM {AGG} a LEFT JOIN {PRED} p ON p.run_id = a.run_id AND p.customer_id = a.customer_id
            WHERE a.run_id = %s
              AND NOT EXISTS (SELECT 1 FROM {SCORE} s WHERE s.run_id = %s AND s.customer_id = a.customer_id)
        """,
            [cur_id, staging_id, cur_id],
        )
        prefer_index_lookups(False)  # the next read wants every row of the run
        # 2. Re-rank the active base (and the rows scored before, which may drop out).
        frame = read_ints(
            f"SELECT customer_id, CAST(COALESCE(recency_days, 0) AS INTEGER), frequency, "
            f"CAST(ROUND(monetary * 100) AS BIGINT), CAST(COALESCE(r_score, 0) AS SMALLINT), "
            f"CAST(COALESCE(f_score, 0) AS SMALLINT), CAST(COALESCE(m_score, 0) AS SMALLINT) "
            f"FROM {SCORE} WHERE run_id = %s AND (frequency > 0 OR r_score IS NOT NULL)",
            [cur_id],
            {"id": 8, "rec": 4, "freq": 4, "cents": 8, "r0": 2, "f0": 2, "m0": 2},
        )
        moved = _rescore(frame, np.asarray(dirty, dtype=np.int64))
        prefer_index_lookups(True)
        # 3. Labels of the moved rows, and the stage each had.
        for table in ("tmp_rescore", RELABELLED):
            temp_table_drop(cur, table)
        cur.execute(
            "CREATE TEMPORARY TABLE tmp_rescore (customer_id bigint, r_score bigint, f_score bigint, m_score bigint)"
        )
        write_ints("tmp_rescore", moved)
        if _pg():
            cur.execute("ANALYZE tmp_rescore")
        cur.execute(
            f"""
            CREATE TEMPORARY TABLE {RELABELLED} AS
            SELECT z.*, {rules.operating_class_sql()} AS operating_class FROM (
                SELECT q.*, {labels} FROM (
                    SELECT s.customer_id, NULLIF(t.r_score, 0) AS r_score, NULLIF(t.f_score, 0) AS f_score,
                           NULLIF(t.m_score, 0) AS m_score, s.frequency, s.monetary, s.orders_total, s.recency_days,
                           s.p_alive, s.clv, s.stage AS old_stage,
                           {_days("%s", "COALESCE(c.signup_at, c.created_at)")} AS signup_age_days
                    FROM tmp_rescore t
                    JOIN {SCORE} s ON s.run_id = %s AND s.customer_id = t.customer_id
                    JOIN {CUSTOMER} c ON c.id = s.customer_id
                ) q
            ) z
        """,
            [*label_params, now, cur_id],
        )
        cur.execute(f"SELECT COUNT(*) FROM {RELABELLED}")  # CREATE … AS has no row count on SQLite
        changed = cur.fetchone()[0]
        # 4. Scores, labels and class written back by key.
        cur.execute(
            f"""
            UPDATE {SCORE} SET r_score = l.r_score, f_score = l.f_score, m_score = l.m_score, rfm_group = l.rfm_group,
                rfm_segment = l.rfm_segment, tier = l.tier, stage = l.stage, operating_class = l.operating_class
            FROM {RELABELLED} l
            WHERE {SCORE}.run_id = %s AND {SCORE}.customer_id = l.customer_id
        """,
            [cur_id],
        )
        # 5. History, from the temporary table alone.
        reactivated, reactivated_params = rules.reactivated_sql("old_stage", "stage")
        cur.execute(
            f"""
            INSERT INTO {STAGE_CHANGE} (customer_id, from_stage, to_stage, at, run_id, reactivated)
            SELECT customer_id, COALESCE(old_stage, ''), stage, %s, %s, {reactivated}
            FROM {RELABELLED} WHERE COALESCE(old_stage, '') <> stage
        """,
            [now, staging_id, *reactivated_params],
        )
        stage_changes = cur.rowcount
        temp_table_drop(cur, "tmp_rescore")  # tmp_relabel stays for the custom segments (relabelled_drop)
        prefer_index_lookups(False)  # back to the planner's own judgement for what follows
    return {"rescored": changed, "stage_changes": stage_changes}, moved["customer_id"]


def relabelled_drop() -> None:
    with connection.cursor() as cur:
        temp_table_drop(cur, RELABELLED)
