"""Order ingestion benchmark: POST /api/v1/orders/batch against gunicorn on PostgreSQL.

    .venv/bin/python bench/ingest.py                      # 1,000,000 orders, default clients/workers
    .venv/bin/python bench/ingest.py --orders 200000 --clients 6 --workers 3

1. Recreates a PostgreSQL database (``--db``), migrates it, creates an API key
   with a high rate limit.
2. Starts gunicorn (``--workers`` sync workers, base settings, DEBUG off) with
   the cache on Redis (``--redis-url``) and the Celery broker on its own Redis
   database (``--broker-db``): each batch queues one order roll-up task there.
   No Celery worker runs during the measurement; the queued tasks are counted
   and deleted at the end.
3. Creates ``--customers`` customers through /api/v1/customers/batch.
4. Pushes ``--orders`` orders in 1,000-item batches (JSON bodies built
   beforehand) from ``--clients`` threads, each on its own HTTP connection,
   recording each request's latency; every answer must be 200 with
   created == 1000. Then replays a sample of batches, which must answer
   unchanged == 1000, and checks the order count in the database.
5. Prints one JSON line: rows/s, p50/p99 latency, the server's peak memory.

All traffic goes to 127.0.0.1.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import psycopg2
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    CpuMeter,
    Gunicorn,
    Pusher,
    database_drop,
    database_recreate,
    emit,
    load_average,
    machine,
    manage,
    postgres_backends,
    server_env,
)

BATCH = 1000


def _order_bodies(orders: int, customers: int, seed: int) -> list[bytes]:
    """Pre-built request bodies, so the client spends its time waiting, not encoding."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(1, customers + 1, orders)
    cents = np.clip(np.exp(rng.normal(np.log(9000), 0.8, orders)), 100, 5_000_000).astype(np.int64)
    start = np.datetime64("2025-05-01T00:00:00", "s")
    when = np.datetime_as_string(start + rng.integers(0, 365 * 86400, orders).astype("timedelta64[s]"), unit="s")
    status = np.array(["paid", "refunded", "cancelled"])[rng.choice(3, orders, p=[0.96, 0.03, 0.01])]
    bodies = []
    for lo in range(0, orders, BATCH):
        items = ",".join(
            f'{{"external_id":"bench-o{n + 1:07d}","customer":"bench-c{customer[n]:06d}",'
            f'"amount":"{cents[n] // 100}.{cents[n] % 100:02d}","status":"{status[n]}",'
            f'"occurred_at":"{when[n]}+08:00"}}'
            for n in range(lo, min(lo + BATCH, orders))
        )
        bodies.append(f'{{"items":[{items}],"atomic":false}}'.encode())
    return bodies


def _customer_bodies(customers: int) -> list[bytes]:
    bodies = []
    for lo in range(1, customers + 1, BATCH):
        items = [
            {"external_id": f"bench-c{n:06d}", "name": f"客户{n}", "channel": "organic"}
            for n in range(lo, min(lo + BATCH, customers + 1))
        ]
        bodies.append(json.dumps({"items": items}, ensure_ascii=False).encode())
    return bodies


def _expect(field: str, value: int):
    def check(status: int, payload: bytes) -> str | None:
        if status != 200:
            return f"HTTP {status}: {payload[:300]!r}"
        body = json.loads(payload)
        if body.get(field) != value or body.get("errors"):
            return f"unexpected answer {str(body)[:300]}"
        return None

    return check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=6, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--replay", type=int, default=20, help="batches replayed to check idempotency")
    parser.add_argument("--db", default="opsdesk_bench_ingest", help="database to (re)create")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2", help="cache (throttling)")
    parser.add_argument("--broker-db", type=int, default=12, help="Redis database for the queued roll-up tasks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.orders % BATCH:
        parser.error(f"--orders must be a multiple of {BATCH}")

    broker_url = args.redis_url.rsplit("/", 1)[0] + f"/{args.broker_db}"
    broker = redis.Redis.from_url(broker_url)
    broker.delete("celery")
    database = database_recreate(args.db)
    try:
        env = server_env(
            database, REDIS_URL=args.redis_url, CELERY_BROKER_URL=broker_url, CELERY_RESULT_BACKEND=args.redis_url
        )
        manage(env, "migrate", "--no-input", "-v", "0")
        key = (
            manage(env, "create_api_key", "ingest-bench", "--scope", "customers:write", "--rate", "1000000/min")
            .strip()
            .splitlines()[-1]
        )
        order_bodies = _order_bodies(args.orders, args.customers, args.seed)

        with Gunicorn(env, workers=args.workers) as server:
            customers = Pusher(server.port, key, "/api/v1/customers/batch")
            _lat, failures, _s = customers.run(
                _customer_bodies(args.customers),
                args.clients,
                lambda s, p: None if s == 200 and not json.loads(p)["errors"] else f"HTTP {s} {p[:200]!r}",
            )
            if failures:
                raise RuntimeError(f"customer setup failed: {failures[:3]}")

            orders = Pusher(server.port, key, "/api/v1/orders/batch")
            load_before = load_average()
            gunicorn_cpu = CpuMeter(server.pids)
            postgres_cpu = CpuMeter(lambda: postgres_backends(args.db))
            latencies, failures, seconds = orders.run(order_bodies, args.clients, _expect("created", BATCH))
            cpu = gunicorn_cpu.stop(), postgres_cpu.stop()
            load_after = load_average()
            rng = np.random.default_rng(args.seed + 1)
            sample = [
                order_bodies[i]
                for i in rng.choice(len(order_bodies), min(args.replay, len(order_bodies)), replace=False)
            ]
            _l, replay_failures, _s = orders.run(sample, args.clients, _expect("unchanged", BATCH))
            memory = server.memory()
            server_log = server.log_tail() if failures or replay_failures else ""

        queued = broker.llen("celery")
        broker.delete("celery")
        with psycopg2.connect(database) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users_order")
            stored = cur.fetchone()[0]
    finally:
        if not args.keep_db:
            database_drop(args.db)

    lat_ms = np.array(latencies) * 1000
    ok = not failures and not replay_failures and stored == args.orders
    result = {
        "bench": "ingest",
        "orders": args.orders,
        "clients": args.clients,
        "server_workers": args.workers,
        "seconds": round(seconds, 2),
        "rows_per_s": round(args.orders / seconds) if seconds else 0,
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1) if len(lat_ms) else None,
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1) if len(lat_ms) else None,
        "server_peak_rss_mb": memory["peak_rss_sum_mb"],
        "server_vmhwm_sum_mb": memory["vmhwm_sum_mb"],
        "server_vmhwm_max_mb": memory["vmhwm_max_mb"],
        # CPU the server side spent on the orders: with other work on the machine, rows per
        # CPU-second says what the code costs better than wall-clock throughput.
        "server_cpu_s": {"gunicorn": round(cpu[0], 1), "postgres": round(cpu[1], 1)},
        "rows_per_server_cpu_s": round(args.orders / (cpu[0] + cpu[1])) if cpu[0] + cpu[1] else None,
        "replay_unchanged": not replay_failures,
        "stored_orders": stored,
        "rollup_tasks_queued": queued,
        "celery_worker": "none during the measurement (roll-up tasks queued to Redis, then deleted)",
        "ok": ok,
        "machine": machine(),
        "load_avg_1m": [load_before, load_after],
    }
    if not ok:
        result["failures"] = (failures + replay_failures)[:5]
        if server_log:
            print(server_log, file=sys.stderr)
    emit(result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
