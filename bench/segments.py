"""Segments recompute benchmark on PostgreSQL, through Celery.

    .venv/bin/python bench/segments.py --customers 1000000 --orders 10000000 --workers 2

1. Creates a fresh database, migrates it, loads synthetic customers and orders
   with COPY (numeric columns COPYed into an unlogged staging table, then one
   INSERT … SELECT builds the rows), VACUUM ANALYZE.
2. Starts a Celery worker (``--workers`` processes) on Redis and times the full
   recompute end to end: from queuing ``segments.recompute`` to the run being
   published (fan-out over chunks, model fit, scoring, publish).
3. Adds one order for 1% of the customers and times the incremental recompute.
4. Times the naive way — a Python loop over customers with ORM queries — on a
   sample, and extrapolates.
Prints one JSON line. All traffic stays on 127.0.0.1.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _common import load_customers_orders as load

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _memory_gib() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


def _peak_rss_mb(pids: list[int]) -> float:
    peak = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return round(peak, 1)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAtc", sql], check=True)


def _loaded(db: str, customers: int, orders: int) -> bool:
    found = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-qAtc",
            "SELECT (SELECT count(*) FROM users_customer), "
            "(SELECT count(*) FROM users_order WHERE external_id NOT LIKE 'inc%')",
        ],
        capture_output=True,
        text=True,
    )
    return found.returncode == 0 and found.stdout.strip() == f"{customers}|{orders}"


def _full_recompute(chunk_size: int):
    """Queues ``segments.recompute`` and waits for its run to publish: (run, seconds)."""
    from segments.models import SegmentRun
    from segments.tasks import segments_recompute_task

    before = SegmentRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    started = time.monotonic()
    segments_recompute_task.delay(None, chunk_size)
    run = None
    while time.monotonic() - started < 1800:
        run = SegmentRun.objects.filter(pk__gt=before, kind=SegmentRun.Kind.FULL).order_by("-pk").first()
        if run and run.status in (SegmentRun.Status.PUBLISHED, SegmentRun.Status.FAILED):
            break
        time.sleep(0.2)
    seconds = time.monotonic() - started
    if run is None or run.status != SegmentRun.Status.PUBLISHED:
        raise SystemExit(f"recompute did not publish: {run and run.status} {run and run.error}")
    for _ in range(50):  # the publish phase's seconds are recorded just after the status flips
        if "publish" in run.phases:
            break
        time.sleep(0.1)
        run.refresh_from_db()
    return run, seconds


CUSTOM_SEGMENTS = {
    "Growing and mature": {"field": "stage", "op": "in", "value": ["growing", "mature"]},
    "Core, still buying": {
        "op": "and",
        "conditions": [
            {"field": "tier", "op": "in", "value": ["core", "super_vip"]},
            {"field": "r_score", "op": "gte", "value": 4},
        ],
    },
    "Slipping away": {
        "op": "and",
        "conditions": [{"field": "p_alive", "op": "lt", "value": 0.5}, {"field": "f_score", "op": "gte", "value": 3}],
    },
    "Champions or loyal": {
        "op": "or",
        "conditions": [
            {"field": "rfm_segment", "op": "eq", "value": "champions"},
            {"field": "rfm_segment", "op": "eq", "value": "loyal"},
        ],
    },
    "Big spenders this year": {"field": "monetary", "op": "gte", "value": 2000},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default="opsdesk_bench_segments")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of an earlier run with the same sizes (skips the load)"
    )
    args = parser.parse_args()

    reuse = args.reuse and _loaded(args.db, args.customers, args.orders)
    if not reuse:
        _psql(f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)")
        _psql(f"CREATE DATABASE {args.db}")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
        "REDIS_URL": args.redis,
        "DJANGO_SETTINGS_MODULE": "ops_site.settings.base",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    subprocess.run(["redis-cli", "-u", args.redis, "flushdb"], check=True, capture_output=True)

    import django

    django.setup()
    from django.db import connection, transaction

    from ops_site.celery import app
    from segments import services
    from segments.models import SegmentRun

    if reuse:
        with connection.cursor() as cur:  # back to the loaded state: no runs, no incremental orders
            cur.execute("DELETE FROM users_order WHERE external_id LIKE 'inc%%'")
            cur.execute(
                "TRUNCATE segments_stagechange, segments_segmentsizesnapshot, segments_customerscore, "
                "segments_aggregatestaging, segments_predictionstaging, segments_segmentrun, "
                "segments_segmentmembershipchange, segments_segmentmembership, segments_segment CASCADE"
            )
        info = {"load_s": None}
    else:
        with transaction.atomic():  # bulk_load's index drop and rebuild are transactional DDL
            info = load(customers=args.customers, orders=args.orders, seed=args.seed)
    with connection.cursor() as cur:  # visibility map for index-only scans, fresh statistics
        cur.execute("VACUUM ANALYZE users_order")
        cur.execute("VACUUM ANALYZE users_customer")
    connection.close()

    # The custom segments an operations team keeps (materialised at publish, and for the
    # customers that changed at every incremental run).
    from segments.services import segment_save

    for name, definition in CUSTOM_SEGMENTS.items():
        segment_save(name=name, definition=definition)
    connection.close()

    queue = f"bench-{uuid.uuid4().hex[:6]}"
    app.conf.task_default_queue = queue
    env["CELERY_DEFAULT_QUEUE"] = queue  # the chord's subtasks, sent from the worker, go there too
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ops_site",
            "worker",
            "-Q",
            queue,
            "-c",
            str(args.workers),
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(4)  # let the worker connect before the clock starts
        run, full_s = _full_recompute(args.chunk_size)
        worker_pids = [worker.pid, *_children(worker.pid)]
        worker_peak = _peak_rss_mb(worker_pids)
        # The cleanup the worker runs after every full run (old scores out, tables
        # vacuumed) is done before the incremental run, as it is by the next quarter hour.
        services.superseded_scores_cleanup()

        # 1% of customers change: one new paid order each.
        with connection.cursor() as cur:
            cur.execute("""
                INSERT INTO users_order
                    (external_id, customer_id, amount, currency, status, occurred_at, created_at, updated_at)
                SELECT 'inc' || id, id, 88.00, 'CNY', 'paid', now(), now(), now()
                FROM users_customer WHERE id % 100 = 0
            """)
            changed = cur.rowcount
        t0 = time.monotonic()
        dirty = services.recompute_incremental()
        incremental_s = time.monotonic() - t0
        inc_run = SegmentRun.objects.filter(kind=SegmentRun.Kind.INCREMENTAL).order_by("-pk").first()

        # The next night: a full recompute with the previous results (and the custom
        # segments' members) in place, as every nightly run after the first one.
        services.superseded_scores_cleanup()
        nightly, nightly_s = _full_recompute(args.chunk_size)
        worker_peak = max(worker_peak, _peak_rss_mb([worker.pid, *_children(worker.pid)]))

        # The naive way on a sample: a query per customer in a Python loop.
        from datetime import timedelta

        from django.db.models import Max, Sum

        from users.models import Customer, Order

        as_of = run.as_of
        sample = list(Customer.objects.order_by("?").values_list("id", flat=True)[: args.naive_sample])
        t0 = time.monotonic()
        for cid in sample:
            paid = Order.objects.filter(customer_id=cid, status="paid", occurred_at__lte=as_of)
            last = paid.aggregate(m=Max("occurred_at"))["m"]
            window = paid.filter(occurred_at__gt=as_of - timedelta(days=365))
            window.count()
            window.aggregate(s=Sum("amount"))
            _ = (as_of - last).days if last else None
        naive_per_customer = (time.monotonic() - t0) / max(1, len(sample))
        naive_total = naive_per_customer * args.customers
    finally:
        worker.terminate()
        worker.wait(30)

    phases = run.phases
    print(
        json.dumps(
            {
                "bench": "segments",
                "customers": args.customers,
                "orders": args.orders,
                "workers": args.workers,
                "chunk_size": args.chunk_size,
                "load_s": info["load_s"],
                "full_recompute_s": round(full_s, 2),
                "phases_s": phases,
                "full_recompute_first_counts": run.counts,
                "nightly_recompute_s": round(nightly_s, 2),
                "nightly_phases_s": nightly.phases,
                "nightly_counts": nightly.counts,
                "worker_peak_rss_mb": worker_peak,
                "incremental_changed_customers": changed,
                "incremental_dirty_customers": dirty,
                "incremental_s": round(incremental_s, 2),
                "incremental_phases_s": inc_run.phases,
                "incremental_counts": inc_run.counts,
                "custom_segments": len(CUSTOM_SEGMENTS),
                "naive_s_per_customer": round(naive_per_customer, 5),
                "naive_extrapolated_s": round(naive_total, 1),
                "speedup_vs_naive": round(naive_total / full_s, 1),
                "machine": f"{os.cpu_count()} cores, {_memory_gib()} GiB",
            }
        )
    )


if __name__ == "__main__":
    main()
