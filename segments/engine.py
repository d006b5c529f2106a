"""The recompute's SQL, phase by phase. Everything here is set-based: one
statement per phase (per chunk for the aggregate phase), no per-customer loop.

The statements run on PostgreSQL (production, benchmarks) and on SQLite (the
embedded demo); the few dialect differences (date arithmetic, COPY) are in
the helpers at the top.
"""

import io
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection

from core.sql import sql_datetime, temp_table_drop

from . import churn, rules
from .models import AggregateStage, CustomerScore, PredictionStage, SegmentRun

SCORE = CustomerScore._meta.db_table
AGG = AggregateStage._meta.db_table
PRED = PredictionStage._meta.db_table
RELABELLED = "tmp_relabel"  # patch_published's relabelled rows, with their new values


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


def customer_id_bounds(as_of: datetime) -> tuple[int, int, int]:
    """(min id, max id, count) of the customers known at ``as_of``."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT MIN(id), MAX(id), COUNT(*) FROM users_customer WHERE COALESCE(signup_at, created_at) <= %s",
            [sql_datetime(as_of)],
        )
        lo, hi, n = cur.fetchone()
    return lo or 0, hi or 0, n or 0


def paid_orders_exist(as_of: datetime) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM users_order WHERE status = 'paid' AND occurred_at <= %s LIMIT 1", [sql_datetime(as_of)])
        return cur.fetchone() is not None


def aggregate_chunk(*, run: SegmentRun, window_days: int, lo: int = 0, hi: int = 0,
                    customer_ids: list[int] | None = None) -> int:
    """Writes the order summary of customers with ids in [lo, hi] (or just ``customer_ids``).

    Idempotent for id ranges: the chunk's earlier rows (a retried task) are deleted
    first, in the same transaction. ``customer_ids`` is the incremental run's list of
    changed customers, staged once under a run of its own (nothing to delete).

    ``monetary`` (RFM: the window's total) and ``mean_order_value`` (shown to operators:
    the mean of all positive paid orders) keep their meaning; the model reads
    ``repeat_mean_value``, the mean of the paid orders after the first one (first by
    time, then id), as Fader & Hardie's Gamma-Gamma defines it (NULL with no repeat)."""
    as_of = sql_datetime(run.as_of)
    window_start = sql_datetime(run.as_of - timedelta(days=window_days))
    if customer_ids is None:
        c_filter, o_filter, ids = "c.id BETWEEN %s AND %s", "customer_id BETWEEN %s AND %s", [lo, hi]
    elif _pg():
        c_filter, o_filter, ids = "c.id = ANY(%s)", "customer_id = ANY(%s)", [list(customer_ids)]
    else:
        marks = ", ".join(["%s"] * len(customer_ids)) or "NULL"
        c_filter, o_filter, ids = f"c.id IN ({marks})", f"customer_id IN ({marks})", list(customer_ids)
    sql = f"""
        INSERT INTO {AGG} (run_id, customer_id, signup_age_days, recency_days, frequency, monetary, orders_total,
                           first_order_at, last_order_at, mean_order_value, repeat_mean_value, t_x_days, age_days)
        SELECT %s, c.id, {_days('%s', 'COALESCE(c.signup_at, c.created_at)')},
               CASE WHEN o.last_at IS NULL THEN NULL ELSE {_whole_days('%s', 'o.last_at')} END,
               COALESCE(o.freq, 0), COALESCE(o.money, 0), COALESCE(o.total, 0), o.first_at, o.last_at, o.mean_value,
               o.repeat_mean, {_days('o.last_at', 'o.first_at')}, {_days('%s', 'o.first_at')}
        FROM users_customer c
        LEFT JOIN (
            SELECT customer_id,
                   SUM(CASE WHEN occurred_at > %s THEN 1 ELSE 0 END) AS freq,
                   -- ROUND: on SQLite amounts are floats, and equal totals must stay equal (ties).
                   ROUND(SUM(CASE WHEN occurred_at > %s THEN amount ELSE 0 END), 2) AS money,
                   COUNT(*) AS total, MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at,
                   AVG(CASE WHEN amount > 0 THEN amount END) AS mean_value,
                   -- The Gamma-Gamma input: the mean of the x repeat orders (all but the first).
                   AVG(CASE WHEN nth > 1 THEN amount END) AS repeat_mean
            FROM (
                SELECT customer_id, occurred_at, amount,
                       ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY occurred_at, id) AS nth
                FROM users_order
                WHERE status = 'paid' AND occurred_at <= %s AND {o_filter}
            ) po
            GROUP BY customer_id
        ) o ON o.customer_id = c.id
        WHERE {c_filter} AND COALESCE(c.signup_at, c.created_at) <= %s
    """
    params = [run.pk, as_of, as_of, as_of, window_start, window_start, as_of, *ids, *ids, as_of]
    with connection.cursor() as cur:
        if customer_ids is None:
            cur.execute(f"DELETE FROM {AGG} WHERE run_id = %s AND customer_id BETWEEN %s AND %s", [run.pk, lo, hi])
        cur.execute(sql, params)
        return cur.rowcount


# --- Model phase ------------------------------------------------------------------


def summary(*, run_id: int) -> np.ndarray:
    """customer_id, x (repeat purchases), t_x, T (days), mean value of the repeat
    orders (0 when x = 0) — for buyers only."""
    query = (f"SELECT customer_id, orders_total - 1, COALESCE(t_x_days, 0), COALESCE(age_days, 0), COALESCE(repeat_mean_value, 0) "
             f"FROM {AGG} WHERE run_id = %s AND orders_total > 0")
    with connection.cursor() as cur:
        if _pg():
            buf = io.StringIO()
            sql = cur.mogrify(query, [run_id]).decode()
            cur.cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH CSV", buf)
            if not buf.tell():
                return np.empty((0, 5))
            buf.seek(0)
            return pd.read_csv(buf, header=None, dtype=float).to_numpy().reshape(-1, 5)
        cur.execute(query, [run_id])
        rows = cur.fetchall()
    return np.array(rows, dtype=float).reshape(-1, 5) if rows else np.empty((0, 5))


def _unusable(bg: churn.BgNbdParams, gg: churn.GammaGammaParams, spend: tuple[float, float]) -> str:
    """Why a new fit must not be used ('' when it may).

    * BG/NBD must have converged (``churn``: the optimiser succeeded, nothing on the
      search box, r, alpha in days, a and b within the plausible range [1e-4, 1e4]).
    * Gamma-Gamma: p within [1e-4, 1e4], and the expected order value of an unknown
      customer (the population mean) a number within ``spend``, the range of the fitted
      customers' mean values. q itself may run off upwards (``converged`` False): that
      is the model's limit when the customers' means spread no more than single orders
      do, which shrinks everyone to the population mean — the parameters at the
      stopping point reproduce that limit, and the population-mean check guards it."""
    if not bg.converged:
        return f"BG/NBD did not converge or is implausible: {bg.message}"
    values = {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p}
    bad = sorted(k for k, v in values.items() if not (np.isfinite(v) and abs(np.log(v)) <= churn._LOG_PLAUSIBLE))
    if bad:
        return f"parameters outside the plausible range [1e-4, 1e4]: {', '.join(bad)}"
    mean = gg.population_mean
    if not (np.isfinite(mean) and spend[0] <= mean <= spend[1]):
        return f"Gamma-Gamma population mean order value {mean:.6g} is outside the observed range {spend[0]:.6g}-{spend[1]:.6g}"
    return ""


def fit_model(*, data: np.ndarray, fallback: dict | None = None) -> dict:
    """Fits BG/NBD and Gamma-Gamma on every buyer's (x, t_x, T in days; mean value of
    the x repeat orders, as Fader & Hardie define the Gamma-Gamma input).

    A new fit is used only when it is converged and plausible (``_unusable`` says
    what that means). Otherwise — and when the data cannot identify the model at all
    (nobody bought twice) — the previous published parameters (``fallback``) are kept;
    with none, there are no churn predictions (P(alive), CLV stay empty) and stages
    fall back to the inactivity thresholds alone. Either way ``refit`` is False,
    ``note`` says why and ``rejected`` holds a rejected fit, for the admin's run page.
    ``data`` is ``summary(run_id=...)``."""
    # Whole days: the model loses nothing that matters, and identical (x, t_x, T) rows
    # collapse into weighted ones, which makes the fit fast at a million customers.
    x, t_x, T, m = data[:, 1], np.round(data[:, 2]), np.round(np.maximum(data[:, 3], data[:, 2])), data[:, 4]
    rejected = None
    try:
        bg = churn.fit_bgnbd(x, t_x, T)
        gg = churn.fit_gamma_gamma(x, np.where(x > 0, m, 0.0))
        fitted = m[(x > 0) & (m > 0)]
        note = _unusable(bg, gg, (float(fitted.min()), float(fitted.max())))
        if not note:
            return {"bgnbd": bg.to_dict(), "gamma_gamma": gg.to_dict(), "buyers": len(data), "refit": True}
        # JSON has no NaN/inf (PostgreSQL's jsonb refuses them): a degenerate fit's are null.
        rejected = {name: {k: v if not isinstance(v, float) or np.isfinite(v) else None for k, v in fit.to_dict().items()}
                    for name, fit in (("bgnbd", bg), ("gamma_gamma", gg))}
    except churn.InsufficientDataError as exc:
        note = str(exc)
    kept = {k: fallback[k] for k in ("bgnbd", "gamma_gamma")} if fallback and fallback.get("bgnbd") else {}
    out = {**kept, "buyers": len(data), "refit": False,
           "note": f"{note}; {'previous parameters kept' if kept else 'no previous parameters: no predictions'}"}
    return {**out, "rejected": rejected} if rejected else out


def predict(*, run_id: int, data: np.ndarray, params: dict, horizon_days: int) -> int:
    """Writes p_alive, expected purchases (90 days), expected order value and CLV for the
    buyers in ``data`` (rows of ``summary()``) under ``run_id``."""
    if not params.get("bgnbd") or not len(data):
        return 0
    bg = churn.BgNbdParams.from_dict(params["bgnbd"])
    gg = churn.GammaGammaParams.from_dict(params["gamma_gamma"])
    ids, x, t_x, T, m = data[:, 0].astype(np.int64), data[:, 1], data[:, 2], np.maximum(data[:, 3], data[:, 2]), data[:, 4]
    e_h = churn.expected_purchases(bg, float(horizon_days), x, t_x, T)
    eov = churn.expected_order_value(gg, x, m)
    columns = {
        "run_id": np.full(len(ids), run_id, dtype=np.int64),
        "customer_id": ids,
        "p_alive": churn.p_alive(bg, x, t_x, T),
        "expected_purchases_90d": churn.expected_purchases(bg, 90.0, x, t_x, T),
        "expected_order_value": eov,
        "clv": churn.clv(e_h, eov),
    }
    for name in ("p_alive", "expected_purchases_90d", "expected_order_value", "clv"):
        columns[name] = np.nan_to_num(np.asarray(columns[name], dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    with connection.cursor() as cur:
        if _pg():
            _copy_binary(cur.cursor, PRED, columns)
        else:
            cur.executemany(
                f"INSERT INTO {PRED} ({', '.join(columns)}) VALUES (%s, %s, %s, %s, %s, %s)",
                list(zip(*(c.tolist() for c in columns.values()), strict=True)),
            )
    return len(ids)


def _copy_binary(cursor, table: str, columns: dict[str, np.ndarray]) -> None:
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


# --- Score phase: windows + labels into the run's CustomerScore rows -----------------


def _label_select(t: rules.Thresholds) -> tuple[str, list]:
    """SELECT list (over a relation with the score columns) for group, segment, tier, stage."""
    tier_sql, tier_params = rules.tier_sql(t)
    stage_sql, stage_params = rules.stage_sql(t, signup_age="signup_age_days")
    return (f"{rules.rfm_group_sql(t)} AS rfm_group, {rules.rfm_segment_sql(t)} AS rfm_segment, "
            f"{tier_sql} AS tier, {stage_sql} AS stage"), [*tier_params, *stage_params]


def score_run(*, run: SegmentRun, t: rules.Thresholds) -> int:
    """INSERT … SELECT the run's scores: quintile scores by window functions over the
    active base (customers with a paid order in the window), then the labels."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {AGG} WHERE run_id = %s AND frequency > 0", [run.pk])
        n = cur.fetchone()[0] or 1
        labels, label_params = _label_select(t)
        sql = f"""
            INSERT INTO {SCORE} (run_id, customer_id, recency_days, frequency, monetary, orders_total, first_order_at,
                last_order_at, mean_order_value, r_score, f_score, m_score, p_alive, expected_purchases_90d,
                expected_order_value, clv, rfm_group, rfm_segment, tier, stage, operating_class)
            WITH base AS (
                SELECT a.*, p.p_alive, p.expected_purchases_90d,
                       ROUND(CAST(p.expected_order_value AS NUMERIC), 2) AS expected_order_value,
                       ROUND(CAST(p.clv AS NUMERIC), 2) AS clv
                FROM {AGG} a LEFT JOIN {PRED} p ON p.run_id = a.run_id AND p.customer_id = a.customer_id
                WHERE a.run_id = %s
            ),
            ranked AS (
                SELECT customer_id,
                       (5 * COUNT(*) OVER (ORDER BY recency_days DESC) + %s - 1) / %s AS r_score,
                       (5 * COUNT(*) OVER (ORDER BY frequency) + %s - 1) / %s AS f_score,
                       (5 * COUNT(*) OVER (ORDER BY monetary) + %s - 1) / %s AS m_score
                FROM base WHERE frequency > 0
            ),
            labeled AS (
                SELECT b.*, r.r_score, r.f_score, r.m_score, {labels}
                FROM base b LEFT JOIN ranked r ON r.customer_id = b.customer_id
            )
            SELECT %s, customer_id, recency_days, frequency, monetary, orders_total, first_order_at, last_order_at,
                   mean_order_value, r_score, f_score, m_score, p_alive, expected_purchases_90d, expected_order_value,
                   clv, rfm_group, rfm_segment, tier, stage, {rules.operating_class_sql()}
            FROM labeled
        """
        # The label CASEs read r_score/f_score/m_score: inside "labeled" they are r.*.
        cur.execute(sql, [run.pk, n, n, n, n, n, n, *label_params, run.pk])
        return cur.rowcount


def stage_changes_insert(*, run: SegmentRun, previous: SegmentRun | None) -> int:
    """Records every customer whose stage differs from the previous published run."""
    prev_id = previous.pk if previous else -1
    sql = f"""
        INSERT INTO segments_stagechange (customer_id, from_stage, to_stage, at, run_id, reactivated)
        SELECT n.customer_id, COALESCE(o.stage, ''), n.stage, %s, %s,
               CASE WHEN o.stage IN ('churn_warning', 'churned') AND n.stage IN ('new', 'growing', 'mature')
                    THEN %s ELSE %s END
        FROM {SCORE} n LEFT JOIN {SCORE} o ON o.run_id = %s AND o.customer_id = n.customer_id
        WHERE n.run_id = %s AND (o.stage IS NULL OR o.stage <> n.stage)
    """
    with connection.cursor() as cur:
        cur.execute(sql, [sql_datetime(run.as_of), run.pk, True, False, prev_id, run.pk])
        return cur.rowcount


SNAPSHOT_DIMENSIONS = ("stage", "tier", "rfm_group", "rfm_segment", "operating_class")


def size_snapshots_insert(*, run: SegmentRun) -> int:
    """Every dimension's group sizes from one scan of the run (grouped by all dimensions
    at once, then summed per dimension)."""
    dims = ", ".join(SNAPSHOT_DIMENSIONS)
    parts = " UNION ALL ".join(
        f"SELECT '{dim}:' || {dim} AS k, SUM(n) AS n FROM combos WHERE {dim} <> '' GROUP BY {dim}"
        for dim in SNAPSHOT_DIMENSIONS
    )
    sql = (f"INSERT INTO segments_segmentsizesnapshot (run_id, as_of, key, size) "
           f"WITH combos AS (SELECT {dims}, COUNT(*) AS n FROM {SCORE} WHERE run_id = %s GROUP BY {dims}) "
           f"SELECT %s, %s, k, n FROM ({parts}) s")
    with connection.cursor() as cur:
        cur.execute(sql, [run.pk, run.pk, sql_datetime(run.as_of)])
        return cur.rowcount


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


def predictions_clear(*, run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {PRED} WHERE run_id = %s", [run_id])


def stages_clear(*, run_id: int) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {AGG} WHERE run_id = %s", [run_id])
        cur.execute(f"DELETE FROM {PRED} WHERE run_id = %s", [run_id])


def scores_delete(*, run_ids: list[int]) -> int:
    if not run_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {SCORE} WHERE run_id IN ({', '.join(['%s'] * len(run_ids))})", run_ids)
        return cur.rowcount


# --- Incremental: patch the published run in place (one transaction) ----------------


_BIG_ENDIAN_INT = {2: ">i2", 4: ">i4", 8: ">i8"}  # smallint, integer, bigint on the wire


def _read_ints(sql: str, params: list, columns: dict[str, int]) -> dict[str, np.ndarray]:
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
    rows = np.frombuffer(payload[header:len(payload) - 2], dtype=fields)
    widths = list(columns.values())
    if len(rows) and ((rows["n"] != len(columns)).any() or any((rows[f"l{i}"] != w).any() for i, w in enumerate(widths))):
        raise ValueError("a binary COPY column is NULL or not the width its cast promised")
    return {name: rows[f"v{i}"].astype(np.int64) for i, name in enumerate(columns)}


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
    unseen = np.setdiff1d(dirty, ids, assume_unique=True)  # dirty customers the frame left out: never active, still no scores
    customer_id = np.concatenate([ids[moved], unseen])
    order = np.argsort(customer_id, kind="stable")  # key order: the lookups that follow walk the indexes in order
    return {
        "customer_id": customer_id[order],
        **{name: np.concatenate([new[moved, j], np.zeros(len(unseen), dtype=np.int64)])[order]
           for j, name in enumerate(("r_score", "f_score", "m_score"))},
    }


def prefer_index_lookups(on: bool) -> None:
    """The incremental statements touch a few thousand rows of a million-row run; the
    planner's default — hash joins over a full scan of the run, compiled with JIT — costs
    a scan per statement. Inside this transaction only, prefer index lookups."""
    if _pg():
        with connection.cursor() as cur:
            cur.execute(f"SET LOCAL enable_seqscan = {'off' if on else 'on'}")
            cur.execute(f"SET LOCAL enable_hashjoin = {'off' if on else 'on'}")
            cur.execute("SET LOCAL jit = off")


def dirty_customer_ids(*, since: datetime) -> list[int]:
    """Customers whose orders changed, or who were created or edited (a new signup date
    moves the stage), since ``since``. Both reads are index range scans."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT customer_id FROM users_order WHERE updated_at >= %s "
            "UNION SELECT id FROM users_customer WHERE updated_at >= %s",
            [sql_datetime(since), sql_datetime(since)],
        )
        return sorted(row[0] for row in cur.fetchall())


def patch_published(*, current: SegmentRun, stage_run: SegmentRun, t: rules.Thresholds,
                    dirty: list[int]) -> tuple[dict, np.ndarray]:
    """Copies the re-aggregated ``dirty`` customers (staged under ``stage_run``) into the
    published run, re-ranks everyone, relabels every row whose scores moved and
    records stage changes. Call inside a transaction. Returns the counts and the ids
    of the relabelled rows, whose new values stay in the temporary table ``RELABELLED``
    for the rest of the transaction (the custom segments read them; ``relabelled_drop``).

    The ranks are counted with numpy over the active base (one binary read of seven
    integer columns: id, the three values and the three old scores); only the rows
    whose scores move are labelled — by the same SQL
    as a full run, into a temporary table that also keeps their stage before — and
    written back by key, and the history comes from that table alone."""
    cur_id, stage_id = current.pk, stage_run.pk
    now = sql_datetime(stage_run.as_of)
    labels, label_params = _label_select(t)
    with connection.cursor() as cur:
        prefer_index_lookups(True)
        # 1. New values for the dirty customers (existing rows, then newcomers).
        cur.execute(f"""
            UPDATE {SCORE} SET recency_days = a.recency_days, frequency = a.frequency, monetary = a.monetary,
                orders_total = a.orders_total, first_order_at = a.first_order_at, last_order_at = a.last_order_at,
                mean_order_value = a.mean_order_value, p_alive = p.p_alive,
                expected_purchases_90d = p.expected_purchases_90d,
                expected_order_value = ROUND(CAST(p.expected_order_value AS NUMERIC), 2), clv = ROUND(CAST(p.clv AS NUMERIC), 2)
            FROM {AGG} a LEFT JOIN {PRED} p ON p.run_id = a.run_id AND p.customer_id = a.customer_id
            WHERE a.run_id = %s AND {SCORE}.run_id = %s AND {SCORE}.customer_id = a.customer_id
        """, [stage_id, cur_id])
        cur.execute(f"""
            INSERT INTO {SCORE} (run_id, customer_id, recency_days, frequency, monetary, orders_total, first_order_at,
                last_order_at, mean_order_value, p_alive, expected_purchases_90d, expected_order_value, clv,
                rfm_group, rfm_segment, tier, stage, operating_class)
            SELECT %s, a.customer_id, a.recency_days, a.frequency, a.monetary, a.orders_total, a.first_order_at,
                a.last_order_at, a.mean_order_value, p.p_alive, p.expected_purchases_90d,
                ROUND(CAST(p.expected_order_value AS NUMERIC), 2), ROUND(CAST(p.clv AS NUMERIC), 2),
                '', '', '', '', ''
            FROM {AGG} a LEFT JOIN {PRED} p ON p.run_id = a.run_id AND p.customer_id = a.customer_id
            WHERE a.run_id = %s AND NOT EXISTS (SELECT 1 FROM {SCORE} s WHERE s.run_id = %s AND s.customer_id = a.customer_id)
        """, [cur_id, stage_id, cur_id])
        prefer_index_lookups(False)  # the next read wants every row of the run
        # 2. Re-rank the active base (and the rows scored before, which may drop out).
        frame = _read_ints(
            f"SELECT customer_id, CAST(COALESCE(recency_days, 0) AS INTEGER), frequency, "
            f"CAST(ROUND(monetary * 100) AS BIGINT), CAST(COALESCE(r_score, 0) AS SMALLINT), "
            f"CAST(COALESCE(f_score, 0) AS SMALLINT), CAST(COALESCE(m_score, 0) AS SMALLINT) "
            f"FROM {SCORE} WHERE run_id = %s AND (frequency > 0 OR r_score IS NOT NULL)",
            [cur_id], {"id": 8, "rec": 4, "freq": 4, "cents": 8, "r0": 2, "f0": 2, "m0": 2})
        moved = _rescore(frame, np.asarray(dirty, dtype=np.int64))
        prefer_index_lookups(True)
        # 3. Labels of the moved rows, and the stage each had.
        for table in ("tmp_rescore", RELABELLED):
            temp_table_drop(cur, table)
        cur.execute("CREATE TEMPORARY TABLE tmp_rescore (customer_id bigint, r_score bigint, f_score bigint, m_score bigint)")
        write_ints("tmp_rescore", moved)
        if _pg():
            cur.execute("ANALYZE tmp_rescore")
        cur.execute(f"""
            CREATE TEMPORARY TABLE {RELABELLED} AS
            SELECT z.*, {rules.operating_class_sql()} AS operating_class FROM (
                SELECT q.*, {labels} FROM (
                    SELECT s.customer_id, NULLIF(t.r_score, 0) AS r_score, NULLIF(t.f_score, 0) AS f_score,
                           NULLIF(t.m_score, 0) AS m_score, s.frequency, s.monetary, s.orders_total, s.recency_days,
                           s.p_alive, s.clv, s.stage AS old_stage,
                           {_days('%s', 'COALESCE(c.signup_at, c.created_at)')} AS signup_age_days
                    FROM tmp_rescore t
                    JOIN {SCORE} s ON s.run_id = %s AND s.customer_id = t.customer_id
                    JOIN users_customer c ON c.id = s.customer_id
                ) q
            ) z
        """, [*label_params, now, cur_id])
        cur.execute(f"SELECT COUNT(*) FROM {RELABELLED}")  # CREATE … AS has no row count on SQLite
        changed = cur.fetchone()[0]
        # 4. Scores, labels and class written back by key.
        cur.execute(f"""
            UPDATE {SCORE} SET r_score = l.r_score, f_score = l.f_score, m_score = l.m_score, rfm_group = l.rfm_group,
                rfm_segment = l.rfm_segment, tier = l.tier, stage = l.stage, operating_class = l.operating_class
            FROM {RELABELLED} l
            WHERE {SCORE}.run_id = %s AND {SCORE}.customer_id = l.customer_id
        """, [cur_id])
        # 5. History, from the temporary table alone.
        cur.execute(f"""
            INSERT INTO segments_stagechange (customer_id, from_stage, to_stage, at, run_id, reactivated)
            SELECT customer_id, COALESCE(old_stage, ''), stage, %s, %s,
                   CASE WHEN old_stage IN ('churn_warning', 'churned') AND stage IN ('new', 'growing', 'mature')
                        THEN %s ELSE %s END
            FROM {RELABELLED} WHERE COALESCE(old_stage, '') <> stage
        """, [now, stage_id, True, False])
        stage_changes = cur.rowcount
        temp_table_drop(cur, "tmp_rescore")  # tmp_relabel stays for the custom segments (relabelled_drop)
        prefer_index_lookups(False)  # back to the planner's own judgement for what follows
    return {"rescored": changed, "stage_changes": stage_changes}, moved["customer_id"]


def relabelled_drop() -> None:
    with connection.cursor() as cur:
        temp_table_drop(cur, RELABELLED)


def write_ints(table: str, columns: dict[str, np.ndarray]) -> None:
    """Integer numpy columns into a table: binary COPY on PostgreSQL, executemany elsewhere."""
    with connection.cursor() as cur:
        if _pg():
            _copy_binary(cur.cursor, table, columns)
        elif len(next(iter(columns.values()))):
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                            list(zip(*(c.tolist() for c in columns.values()), strict=True)))
