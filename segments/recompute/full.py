"""A full recompute's phases, in the order they run: the order summary of each
chunk of customers, the purchase model (fit on every buyer, then predictions),
the scores and labels of everyone, then the history (stage changes, size
snapshots). Everything is set-based: one statement per phase (per chunk for the
aggregate phase), no per-customer loop. Dialect helpers are in ``sql``."""

import io
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection

from core.sql import sql_datetime

from .. import purchase_model, rules
from ..models import SegmentRun
from .sql import (
    AGG,
    CUSTOMER,
    ORDER,
    PAID,
    PRED,
    SCORE,
    SIZE_SNAPSHOT,
    STAGE_CHANGE,
    _days,
    _pg,
    _whole_days,
    copy_binary,
)


def customer_id_bounds(as_of: datetime) -> tuple[int, int, int]:
    """(min id, max id, count) of the customers known at ``as_of``."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT MIN(id), MAX(id), COUNT(*) FROM {CUSTOMER} WHERE COALESCE(signup_at, created_at) <= %s",
            [sql_datetime(as_of)],
        )
        lo, hi, n = cur.fetchone()
    return lo or 0, hi or 0, n or 0


def paid_orders_exist(as_of: datetime) -> bool:
    with connection.cursor() as cur:
        cur.execute(f"SELECT 1 FROM {ORDER} WHERE {PAID} AND occurred_at <= %s LIMIT 1", [sql_datetime(as_of)])
        return cur.fetchone() is not None


def aggregate_chunk(
    *, run: SegmentRun, window_days: int, lo: int = 0, hi: int = 0, customer_ids: list[int] | None = None
) -> int:
    """Writes the order summary of customers with ids in [lo, hi] (or just ``customer_ids``).

    Idempotent for id ranges: the chunk's earlier rows (a retried task) are deleted
    first, in the same transaction. ``customer_ids`` is the incremental run's list of
    changed customers, staged once under a run of its own (nothing to delete)."""
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
        SELECT %s, c.id, {_days("%s", "COALESCE(c.signup_at, c.created_at)")},
               CASE WHEN o.last_at IS NULL THEN NULL ELSE {_whole_days("%s", "o.last_at")} END,
               COALESCE(o.freq, 0), COALESCE(o.money, 0), COALESCE(o.total, 0), o.first_at, o.last_at, o.mean_value,
               o.repeat_mean, {_days("o.last_at", "o.first_at")}, {_days("%s", "o.first_at")}
        FROM {CUSTOMER} c
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
                FROM {ORDER}
                WHERE {PAID} AND occurred_at <= %s AND {o_filter}
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
    query = (
        "SELECT customer_id, orders_total - 1, COALESCE(t_x_days, 0), COALESCE(age_days, 0), "
        f"COALESCE(repeat_mean_value, 0) "
        f"FROM {AGG} WHERE run_id = %s AND orders_total > 0"
    )
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


def _unusable(bg: purchase_model.BgNbdParams, gg: purchase_model.GammaGammaParams, spend: tuple[float, float]) -> str:
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
    bad = sorted(
        k for k, v in values.items() if not (np.isfinite(v) and abs(np.log(v)) <= purchase_model._LOG_PLAUSIBLE)
    )
    if bad:
        return f"parameters outside the plausible range [1e-4, 1e4]: {', '.join(bad)}"
    mean = gg.population_mean
    if not (np.isfinite(mean) and spend[0] <= mean <= spend[1]):
        return (
            f"Gamma-Gamma population mean order value {mean:.6g} "
            f"is outside the observed range {spend[0]:.6g}-{spend[1]:.6g}"
        )
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
        bg = purchase_model.fit_bgnbd(x, t_x, T)
        gg = purchase_model.fit_gamma_gamma(x, np.where(x > 0, m, 0.0))
        fitted = m[(x > 0) & (m > 0)]
        note = _unusable(bg, gg, (float(fitted.min()), float(fitted.max())))
        if not note:
            return {"bgnbd": bg.to_dict(), "gamma_gamma": gg.to_dict(), "buyers": len(data), "refit": True}
        # JSON has no NaN/inf (PostgreSQL's jsonb refuses them): a degenerate fit's are null.
        rejected = {
            name: {k: v if not isinstance(v, float) or np.isfinite(v) else None for k, v in fit.to_dict().items()}
            for name, fit in (("bgnbd", bg), ("gamma_gamma", gg))
        }
    except purchase_model.InsufficientDataError as exc:
        note = str(exc)
    kept = {k: fallback[k] for k in ("bgnbd", "gamma_gamma")} if fallback and fallback.get("bgnbd") else {}
    out = {
        **kept,
        "buyers": len(data),
        "refit": False,
        "note": f"{note}; {'previous parameters kept' if kept else 'no previous parameters: no predictions'}",
    }
    return {**out, "rejected": rejected} if rejected else out


def predict(*, run_id: int, data: np.ndarray, params: dict, horizon_days: int) -> int:
    """Writes p_alive, expected purchases (90 days), expected order value and CLV for the
    buyers in ``data`` (rows of ``summary()``) under ``run_id``."""
    if not params.get("bgnbd") or not len(data):
        return 0
    bg = purchase_model.BgNbdParams.from_dict(params["bgnbd"])
    gg = purchase_model.GammaGammaParams.from_dict(params["gamma_gamma"])
    ids, x, t_x, T, m = (
        data[:, 0].astype(np.int64),
        data[:, 1],
        data[:, 2],
        np.maximum(data[:, 3], data[:, 2]),
        data[:, 4],
    )
    e_h = purchase_model.expected_purchases(bg, float(horizon_days), x, t_x, T)
    eov = purchase_model.expected_order_value(gg, x, m)
    columns = {
        "run_id": np.full(len(ids), run_id, dtype=np.int64),
        "customer_id": ids,
        "p_alive": purchase_model.p_alive(bg, x, t_x, T),
        "expected_purchases_90d": purchase_model.expected_purchases(bg, 90.0, x, t_x, T),
        "expected_order_value": eov,
        "clv": purchase_model.clv(e_h, eov),
    }
    for name in ("p_alive", "expected_purchases_90d", "expected_order_value", "clv"):
        columns[name] = np.nan_to_num(np.asarray(columns[name], dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    with connection.cursor() as cur:
        if _pg():
            copy_binary(cur.cursor, PRED, columns)
        else:
            cur.executemany(
                f"INSERT INTO {PRED} ({', '.join(columns)}) VALUES (%s, %s, %s, %s, %s, %s)",
                list(zip(*(c.tolist() for c in columns.values()), strict=True)),
            )
    return len(ids)


# --- Score phase: windows + labels into the run's CustomerScore rows -----------------


def label_select(t: rules.Thresholds) -> tuple[str, list]:
    """SELECT list (over a relation with the score columns) for group, segment, tier, stage."""
    tier_sql, tier_params = rules.tier_sql(t)
    stage_sql, stage_params = rules.stage_sql(t, signup_age="signup_age_days")
    return (
        f"{rules.rfm_group_sql(t)} AS rfm_group, {rules.rfm_segment_sql(t)} AS rfm_segment, "
        f"{tier_sql} AS tier, {stage_sql} AS stage"
    ), [*tier_params, *stage_params]


def score_run(*, run: SegmentRun, t: rules.Thresholds) -> int:
    """INSERT … SELECT the run's scores: quintile scores by window functions over the
    active base (customers with a paid order in the window), then the labels."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {AGG} WHERE run_id = %s AND frequency > 0", [run.pk])
        n = cur.fetchone()[0] or 1
        labels, label_params = label_select(t)
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
    reactivated, reactivated_params = rules.reactivated_sql("o.stage", "n.stage")
    sql = f"""
        INSERT INTO {STAGE_CHANGE} (customer_id, from_stage, to_stage, at, run_id, reactivated)
        SELECT n.customer_id, COALESCE(o.stage, ''), n.stage, %s, %s, {reactivated}
        FROM {SCORE} n LEFT JOIN {SCORE} o ON o.run_id = %s AND o.customer_id = n.customer_id
        WHERE n.run_id = %s AND (o.stage IS NULL OR o.stage <> n.stage)
    """
    with connection.cursor() as cur:
        cur.execute(sql, [sql_datetime(run.as_of), run.pk, *reactivated_params, prev_id, run.pk])
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
    sql = (
        f"INSERT INTO {SIZE_SNAPSHOT} (run_id, as_of, key, size) "
        f"WITH combos AS (SELECT {dims}, COUNT(*) AS n FROM {SCORE} WHERE run_id = %s GROUP BY {dims}) "
        f"SELECT %s, %s, k, n FROM ({parts}) s"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [run.pk, run.pk, sql_datetime(run.as_of)])
        return cur.rowcount
