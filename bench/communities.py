"""Communities benchmark on PostgreSQL: bot ingestion through the batch endpoint, then
the daily health roll-up over the ingested days.

    .venv/bin/python bench/communities.py                     # 1,000,000 messages, 1,000 groups
    BENCH_COMMUNITIES_MESSAGES=20000 .venv/bin/python bench/communities.py   # a quick run

1. Recreates a database (``--db``), migrates it, and seeds set-based in SQL: one
   owner, ``--groups`` groups, ``--members`` members per group (customers and open
   memberships with a platform member id each, one INSERT … SELECT apiece), a few
   keyword rules, and an API key with ``communities:write`` and a high rate limit.
2. Builds the request bodies beforehand: ``--messages`` messages in batches of 1,000
   (batch *i* for group *i* mod groups), senders named by platform member id, sent
   over ``--days`` days, about 1% carrying a watched word.
3. Posts every batch to ``POST /api/v1/communities/{id}/messages/batch`` in this process
   through Django's test client (the whole stack: middleware, API-key authentication,
   throttling, DRF, the service), one request at a time; every answer must be 200 with
   created == 1000. Then replays a sample, which must answer unchanged == 1000. Each
   batch queues its keyword scan to Redis (``--redis-url``, a queue of its own, no
   worker running); the queued tasks are counted and deleted at the end.
4. Times the keyword scan (``communities.services.alerts.messages_scan``, what the
   worker runs per batch) in-process over the first ``--scan`` batches.
5. Times ``communities.services.health.health_rollup(day_from, day_to)`` over the
   ingested days (target ≤ 10 s).

Prints one JSON line. All traffic stays on 127.0.0.1."""

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    CpuMeter,
    database_drop,
    database_recreate,
    emit,
    load_average,
    machine,
    manage,
    postgres_backends,
    server_env,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH = 1000
QUEUE = "bench-communities"
START = datetime(2026, 3, 1, tzinfo=UTC)
WATCHED = ["退款", "骗子", "投诉"]
CHATTER = ["早上好", "今天打卡了", "有人一起跑步吗", "这个活动什么时候开始", "谢谢分享", "周末见", "good morning"]


def _seed(groups: int, members: int) -> dict:
    """Owner, groups, customers and memberships, set-based; returns what the bodies need."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from communities.models import CommunityGroup, KeywordRule
    from core.services import api_key_create

    started = time.monotonic()
    owner = get_user_model().objects.create_user(username="bench-owner", email="owner@example.com")
    with transaction.atomic():
        CommunityGroup.objects.bulk_create(
            CommunityGroup(code=f"g{g:05d}", name=f"群{g}", owner=owner) for g in range(groups)
        )
        KeywordRule.objects.bulk_create(
            KeywordRule(name=word, kind="keyword", pattern=word, severity=3) for word in WATCHED
        )
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO users_customer (external_id, name, nickname, phone, email, gender, city, timezone,
                    channel, consent_push, consent_sms, consent_email, consent_wechat, consent_in_app,
                    do_not_contact, paid_orders, paid_amount, created_at, updated_at, signup_at)
                SELECT 'bc' || n, '', 'nick' || n, '', '', 'unknown', '', 'Asia/Shanghai', 'community',
                    true, true, true, true, true, false, 0, 0, %s, %s, %s
                FROM generate_series(1, %s) n
                """,
                [START, START, START, groups * members],
            )
            # Member m of group g is customer g * members + m + 1, known to the bot as wx-<g>-<m>.
            cur.execute(
                """
                INSERT INTO communities_membership (group_id, customer_id, role, platform_member_id,
                    joined_at, left_at, left_reason)
                SELECT g.id, c.id, 'member', 'wx-' || (g.rank - 1) || '-' || ((c.n - 1) %% %s), %s, NULL, ''
                FROM (SELECT id, row_number() OVER (ORDER BY code) AS rank FROM communities_communitygroup) g
                JOIN (SELECT id, substr(external_id, 3)::int AS n FROM users_customer WHERE external_id LIKE 'bc%%') c
                  ON (c.n - 1) / %s = g.rank - 1
                """,
                [members, START - timedelta(days=30), members],
            )
            cur.execute("ANALYZE")
    ids = list(CommunityGroup.objects.order_by("code").values_list("id", flat=True))
    _key, secret = api_key_create(name="bench-bot", scopes=["communities:write"], rate_limit="1000000/min")
    return {"group_ids": ids, "key": secret, "seed_s": round(time.monotonic() - started, 1)}


def _bodies(messages: int, group_ids: list[int], members: int, days: int, seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    span = days * 86400
    out = []
    for b in range(messages // BATCH):
        g = b % len(group_ids)
        items = []
        for i in range(BATCH):
            text = rng.choice(CHATTER)
            if rng.random() < 0.01:
                text += rng.choice(WATCHED)
            at = START + timedelta(seconds=rng.randrange(span))
            items.append(
                {
                    "external_id": f"msg-{b}-{i}",
                    "member": f"wx-{g}-{rng.randrange(members)}",
                    "sent_at": at.isoformat(),
                    "text": text,
                }
            )
        out.append((group_ids[g], json.dumps({"items": items}, ensure_ascii=False).encode()))
    return out


def _post_all(client, bodies, expect: str) -> tuple[list[float], list[str]]:
    latencies, failures = [], []
    for group_id, body in bodies:
        started = time.perf_counter()
        r = client.post(f"/api/v1/communities/{group_id}/messages/batch", body, content_type="application/json")
        latencies.append(time.perf_counter() - started)
        payload = r.json() if r.status_code == 200 else {}
        if r.status_code != 200 or payload.get(expect) != BATCH or payload.get("errors"):
            failures.append(f"group {group_id}: HTTP {r.status_code} {r.content[:200]!r}")
            if len(failures) > 10:
                break
    return latencies, failures


def _rollup(days: int) -> dict:
    from communities.services.health import health_rollup

    day_from = START.date()
    day_to = day_from + timedelta(days=days - 1)
    started = time.monotonic()
    rows = health_rollup(day_from, day_to)
    return {"rollup_s": round(time.monotonic() - started, 2), "rollup_rows": rows}


def _scan(batches: int) -> dict:
    """The keyword scan the worker would run, in-process, over the first ``batches``
    batches' messages (1,000 ids a call, as queued), with the seeded rules."""
    from communities.models import Alert, GroupMessage
    from communities.services.alerts import messages_scan

    ids = list(GroupMessage.objects.order_by("id").values_list("id", flat=True)[: batches * BATCH])
    started = time.monotonic()
    for lo in range(0, len(ids), BATCH):
        messages_scan(message_ids=ids[lo : lo + BATCH])
    seconds = time.monotonic() - started
    return {
        "scan_messages": len(ids),
        "scan_s": round(seconds, 2),
        "scan_messages_per_s": round(len(ids) / seconds) if seconds else None,
        "alerts_raised": Alert.objects.count(),
    }


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=int(os.environ.get("BENCH_COMMUNITIES_MESSAGES", 1_000_000)))
    parser.add_argument("--groups", type=int, default=int(os.environ.get("BENCH_COMMUNITIES_GROUPS", 1000)))
    parser.add_argument("--members", type=int, default=50, help="members per group")
    parser.add_argument("--days", type=int, default=30, help="days the messages are spread over")
    parser.add_argument("--replay", type=int, default=5, help="batches replayed to check idempotency")
    parser.add_argument("--scan", type=int, default=20, help="batches whose keyword scan is timed in-process")
    parser.add_argument("--db", default="opsdesk_bench_communities")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3", help="cache and broker")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.messages % BATCH or args.messages < BATCH:
        parser.error(f"--messages must be a positive multiple of {BATCH}")
    args.groups = min(args.groups, args.messages // BATCH)

    url = database_recreate(args.db)
    env = server_env(url, REDIS_URL=args.redis_url, CELERY_DEFAULT_QUEUE=QUEUE)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "OPS_VAR_DIR", "LOG_LEVEL")})
    os.environ.update({"REDIS_URL": args.redis_url, "CELERY_DEFAULT_QUEUE": QUEUE, "DEBUG": "false"})
    # The scan emails the groups' owner: kept in memory, not printed beside the JSON line.
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        import django

        django.setup()
        import redis
        from django.test import Client

        from communities.models import GroupMessage

        broker = redis.Redis.from_url(args.redis_url)
        broker.delete(QUEUE)
        seeded = _seed(args.groups, args.members)
        bodies = _bodies(args.messages, seeded["group_ids"], args.members, args.days, args.seed)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {seeded['key']}", HTTP_HOST="127.0.0.1")
        load_before = load_average()
        postgres_cpu = CpuMeter(lambda: postgres_backends(args.db))
        cpu_started = time.process_time()
        started = time.perf_counter()
        latencies, failures = _post_all(client, bodies, "created")
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started, postgres_cpu.stop()
        load_after = load_average()
        sample = random.Random(args.seed + 1).sample(bodies, min(args.replay, len(bodies)))
        _l, replay_failures = _post_all(client, sample, "unchanged")
        stored = GroupMessage.objects.count()
        queued = broker.llen(QUEUE)
        broker.delete(QUEUE)
        scan = _scan(min(args.scan, len(bodies)))
        rollup = _rollup(args.days)
    finally:
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            database_drop(args.db)

    ok = not failures and not replay_failures and stored == args.messages
    rollup_ok = rollup["rollup_s"] is None or rollup["rollup_s"] <= 10
    result = {
        "bench": "communities",
        "messages": args.messages,
        "groups": args.groups,
        "members_per_group": args.members,
        "days": args.days,
        "seed_s": seeded["seed_s"],
        "ingest_s": round(seconds, 2),
        "rows_per_s": round(args.messages / seconds) if seconds else 0,
        "batch_p50_ms": _percentile(latencies, 0.5),
        "batch_p99_ms": _percentile(latencies, 0.99),
        "path": "in-process Django test client, one request at a time, PostgreSQL",
        # With other work on the two cores, rows per CPU-second says what the code costs.
        "cpu_s": {"django": round(cpu[0], 1), "postgres": round(cpu[1], 1)},
        "rows_per_cpu_s": round(args.messages / (cpu[0] + cpu[1])) if cpu[0] + cpu[1] else None,
        "replay_unchanged": not replay_failures,
        "stored_messages": stored,
        "scan_tasks_queued": queued,
        **scan,
        **rollup,
        "rollup_target_s": 10,
        "ok": ok and rollup_ok,
        "machine": machine(),
        "load_avg_1m": [load_before, load_after],
    }
    if failures or replay_failures:
        result["failures"] = (failures + replay_failures)[:5]
    emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
