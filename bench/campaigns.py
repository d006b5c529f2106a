"""Campaigns benchmark on PostgreSQL + Redis: one marketing push campaign to N customers
with a realistic delivery history, through the contact policy, the outbox and the log
backend, on W real Celery worker processes.

    .venv/bin/python bench/campaigns.py --customers 1000000 --workers 2
    .venv/bin/python bench/campaigns.py --customers 20000          # a quick run

1. Recreates a database (``--db``), migrates it, and seeds set-based in SQL: N
   customers (10% without push consent, 2% do-not-contact, 15% spread over six
   timezones around the world so some are in their quiet hours whenever it runs), a
   static segment of all of them, and a prior push history: 30% got a push within the
   last 3 hours (the 3 h gap holds them), 8% got seven in the last 19 hours (the 7 a
   day holds them), 5% three unanswered in the last 12 hours (back-off halves their
   day to 3), 1% have a push already deferred to later (decided by the rules in Python).
2. Writes an SOP template and approves it, creates the campaign (on hold: defer, within
   24 h) and launches it through the services.
3. Starts W worker processes (``celery worker --pool prefork --concurrency W``) on a
   queue of its own, queues the dispatch, and waits until every chunk is written
   (decided) and nothing due is left in the outbox (handed over to the log backend).
4. Checks: cap violations by an independent query (for each cap window, a window
   function counting each customer's marketing sends in the window ending at every
   send) — must be 0; duplicates (keys the log backend saw twice) — must be 0.

Prints one JSON line. All traffic stays on 127.0.0.1."""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from _common import PYTHON, database_drop, database_recreate, emit, load_average, machine, manage, server_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
QUEUE = "bench-campaigns"
ZONES = ["America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Sydney",
         "Pacific/Auckland"]  # fmt: skip


def _seed(customers: int) -> None:
    from django.db import connection, transaction

    zones = "ARRAY[" + ",".join(f"'{z}'" for z in ZONES) + "]"
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO users_customer (external_id, name, nickname, phone, email, gender, city, timezone,
                channel, consent_push, consent_sms, consent_email, consent_wechat, consent_in_app,
                do_not_contact, paid_orders, paid_amount, created_at, updated_at, signup_at)
            SELECT 'bk' || n, '', 'nick' || n, '', '', 'unknown', '',
                   CASE WHEN n %% 100 < 85 THEN 'Asia/Shanghai' ELSE ({zones})[1 + n %% 6] END,
                   'app', n %% 10 <> 3, false, false, false, false, n %% 50 = 7, 0, 0, now(), now(), now()
            FROM generate_series(1, %s) AS n""",
            [customers],
        )
        cur.execute(
            """INSERT INTO segments_segment (slug, name, description, kind, definition, is_active, size, computed_at,
                                             created_at, updated_at)
               VALUES ('bench-all', 'Everyone', '', 'static', '{}', true, 0, now(), now(), now()) RETURNING id"""
        )
        segment_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO segments_segmentmembership (segment_id, customer_id, since) "
            "SELECT %s, id, now() FROM users_customer",
            [segment_id],
        )
        # The prior history, set-based: (share of customers, hours ago of each push, sent/deferred).
        history = [
            ("c.id % 100 < 30", "ARRAY[random() * 2.9 + 0.05]", "sent"),
            ("c.id % 100 BETWEEN 30 AND 37", "ARRAY[1, 4, 7, 10, 13, 16, 19]", "sent"),
            ("c.id % 100 BETWEEN 38 AND 42", "ARRAY[4, 8, 12]", "sent"),
            ("c.id % 100 = 43", "ARRAY[-1]", "deferred"),
        ]
        for n, (where, hours, status) in enumerate(history):
            sent_at = "now() - make_interval(secs => h * 3600)" if status == "sent" else "NULL"
            cur.execute(
                f"""
                INSERT INTO campaigns_delivery (key, customer_id, channel, category, content_class, subject, content,
                    status, reason, rule, due_at, send_after, planned_at, sent_at, attempts, recovered, revenue,
                    provider_id, last_error, claimed_by, occurrence, created_at)
                SELECT 'prior:{n}:' || c.id || ':' || i, c.id, 'push', 'marketing', '', '', 'earlier', '{status}',
                       '', '', now() - make_interval(secs => h * 3600), now() - make_interval(secs => h * 3600),
                       now() - make_interval(secs => h * 3600), {sent_at}, 1, 0, 0, '', '', '', '', now()
                FROM users_customer c, LATERAL unnest({hours}) WITH ORDINALITY AS t(h, i)
                WHERE {where}"""
            )
        cur.execute("ANALYZE")


def _campaign():
    from django.contrib.auth import get_user_model

    from campaigns.services import campaigns as services
    from communities.services import templates

    users = get_user_model().objects
    writer = users.create_superuser(username="bench-writer", email="w@example.com", password="x" * 12)
    approver = users.create_superuser(username="bench-approver", email="a@example.com", password="x" * 12)
    template = templates.template_create(
        code="bench-promo", name="Promo", kind="campaign", body="{{ nickname }}，春季特惠今天开始！", actor=writer
    )
    templates.version_approve(version=template.versions.get(), actor=approver)
    campaign = services.campaign_create(
        data={"name": "Bench", "channel": "push", "segments": ["bench-all"], "max_delay_hours": 24},
        variants=[services.VariantSpec("A", 50, "bench-promo"), services.VariantSpec("B", 50, "bench-promo")],
        actor=writer,
    )
    return campaign


def _violations() -> dict:
    """Independent of the policy code: for each cap window, every marketing send whose
    window (t − S, t] holds more sends than the limit."""
    from django.db import connection

    from campaigns.models import CapRule

    out = {}
    with connection.cursor() as cur:
        for cap in CapRule.objects.filter(is_active=True):
            scope = "TRUE"
            if cap.channel:
                scope = f"channel = '{cap.channel}'"
            if cap.content_class:
                scope += f" AND content_class = '{cap.content_class}'"
            for window in cap.windows:
                cur.execute(
                    f"""SELECT count(*) FROM (
                        SELECT count(*) OVER (PARTITION BY customer_id ORDER BY planned_at
                               RANGE BETWEEN make_interval(secs => %s) - interval '1 microsecond' PRECEDING
                               AND CURRENT ROW) AS n
                        FROM campaigns_delivery WHERE category = 'marketing' AND planned_at IS NOT NULL AND {scope}
                    ) w WHERE n > %s""",
                    [window["seconds"], window["limit"]],
                )
                out[f"{cap.code}/{window['seconds']}s"] = cur.fetchone()[0]
    return out


def _worker(env: dict, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "ops_site", "worker", "-Q", QUEUE, "--pool", "prefork",
         "--concurrency", str(workers), "--without-heartbeat", "--without-gossip", "--without-mingle",
         "--prefetch-multiplier", "1", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_ready(redis_url: str, timeout: float = 60) -> None:
    """Until a worker answers a ping (its start-up is not the campaign's time)."""
    from ops_site.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.inspect(timeout=1).ping():
            return
        time.sleep(0.5)
    raise RuntimeError("the worker did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=int(os.environ.get("BENCH_CAMPAIGN_CUSTOMERS", 1_000_000)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", default="opsdesk_bench_campaigns")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds to wait for the last hand-over")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    log_file = Path(tempfile.mkdtemp(prefix="opsdesk-bench-campaigns-")) / "channel-log.jsonl"
    url = database_recreate(args.db)
    env = server_env(
        url,
        REDIS_URL=args.redis_url,
        CELERY_DEFAULT_QUEUE=QUEUE,
        OPS_CHANNEL_PUSH="log",
        OPS_CHANNEL_LOG_FILE=str(log_file),
        OPS_OUTBOX_BATCH="500",
    )
    os.environ.update(env)
    worker = None
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        import django

        django.setup()
        import redis
        from django.db.models import Count, Q

        from campaigns.models import Delivery, DispatchChunk

        broker = redis.Redis.from_url(args.redis_url)
        broker.flushdb()
        seed_started = time.perf_counter()
        _seed(args.customers)
        seed_s = time.perf_counter() - seed_started
        campaign = _campaign()
        prior = Delivery.objects.count()

        from campaigns.services import campaigns as services

        worker = _worker(env, args.workers)
        _wait_ready(args.redis_url)
        load_before = load_average()
        started = time.perf_counter()
        # Launching queues the dispatch right away (no transaction around it here).
        campaign = services.campaign_launch(campaign=campaign)
        decided_s = handed_s = None
        deadline = started + args.timeout
        while time.perf_counter() < deadline:
            time.sleep(0.5)
            chunks = DispatchChunk.objects.filter(campaign=campaign).aggregate(
                total=Count("id"), done=Count("id", filter=~Q(done_at=None))
            )
            if decided_s is None and chunks["total"] and chunks["total"] == chunks["done"]:
                decided_s = time.perf_counter() - started
            if decided_s is not None:
                due = Delivery.objects.filter(
                    campaign=campaign, status__in=["queued", "sending"], send_after__lte=datetime.now(UTC)
                ).exists()
                if not due:
                    handed_s = time.perf_counter() - started
                    break
        load_after = load_average()
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()

    try:
        from campaigns.backends import read_log

        decided = Delivery.objects.filter(campaign=campaign).count()
        by_outcome = {
            (f"{s}:{r}" if r else s): n
            for s, r, n in Delivery.objects.filter(campaign=campaign)
            .values_list("status", "reason")
            .annotate(n=Count("id"))
            .order_by()
        }
        lines = read_log(log_file)
        keys = Counter(line["key"] for line in lines)
        duplicates = sum(n - 1 for n in keys.values() if n > 1)
        violations = _violations()
    finally:
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            database_drop(args.db)

    ok = (
        decided == args.customers
        and handed_s is not None
        and duplicates == 0
        and not any(violations.values())
        and by_outcome.get("sent", 0) == len(keys)
    )
    emit(
        {
            "bench": "campaigns",
            "ok": ok,
            "customers": args.customers,
            "workers": args.workers,
            "prior_deliveries": prior,
            "seed_s": round(seed_s, 1),
            "decided": decided,
            "decided_s": round(decided_s, 1) if decided_s else None,
            "decided_per_s": round(decided / decided_s) if decided_s else None,
            "last_handover_s": round(handed_s, 1) if handed_s else None,
            "handed_over": len(keys),
            "duplicates": duplicates,
            "cap_violations": sum(violations.values()),
            "violations_by_window": violations,
            "outcomes": dict(sorted(by_outcome.items())),
            "target": "1,000,000 recipients decided and handed over in at most 300 s",
            "load_before": load_before,
            "load_after": load_after,
            "machine": machine(),
        }
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
