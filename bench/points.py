"""Points ledger benchmark: concurrent earn/spend requests against a server on PostgreSQL.

    .venv/bin/python bench/points.py --requests 20000 --clients 8 --workers 3

Creates a fresh database, customers through the API, then fires single-entry
``POST /api/v1/points/entries`` requests from several client threads: earns
and spends (some beyond the balance, which must answer 409 and write
nothing) spread over the customers, with a few hot customers taking a large
share so row locks contend, and some replays of keys already used. Afterwards
it checks the ledger: entries written == requests answered 201 (first time),
and ``manage.py reconcile_points`` finds no drift. Prints one JSON line.
Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psycopg2

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


def _bodies(requests: int, customers: int, hot: int, replay_share: float, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    # 20% of requests go to a handful of hot customers, so their row locks contend.
    who = np.where(rng.random(requests) < 0.2, rng.integers(0, hot, requests), rng.integers(0, customers, requests))
    spend = rng.random(requests) < 0.35
    amount = np.where(spend, rng.integers(1, 60, requests), rng.integers(1, 100, requests))
    bodies = []
    for i in range(requests):
        bodies.append(json.dumps({
            "customer": f"p{int(who[i]):06d}", "kind": "spend" if spend[i] else "earn", "amount": int(amount[i]),
            "reason": "bench", "idempotency_key": f"k{i}",
        }).encode())
    # Replays: the same body again (the server must answer the first result, write nothing).
    replays = rng.choice(requests, int(requests * replay_share), replace=False)
    bodies.extend(bodies[int(i)] for i in replays)
    order = rng.permutation(len(bodies))
    return [bodies[int(i)] for i in order]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="distinct entries requested")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--hot", type=int, default=10, help="customers taking 20% of the traffic")
    parser.add_argument("--replay-share", type=float, default=0.05)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--db", default="opsdesk_bench_points")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    database = database_recreate(args.db)
    try:
        env = server_env(database, REDIS_URL=args.redis_url)
        manage(env, "migrate", "--no-input", "-v", "0")
        key = manage(env, "create_api_key", "points-bench", "--scope", "customers:write", "--scope", "points:write",
                     "--rate", "10000000/min").strip().splitlines()[-1]
        customer_bodies = [json.dumps({"items": [{"external_id": f"p{i:06d}"} for i in range(s, min(s + 1000, args.customers))]}).encode()
                           for s in range(0, args.customers, 1000)]
        bodies = _bodies(args.requests, args.customers, args.hot, args.replay_share, args.seed)
        statuses: Counter = Counter()
        codes: Counter = Counter()
        lock = threading.Lock()

        def check(status: int, payload: bytes) -> str | None:
            with lock:
                statuses[status] += 1
                if status == 409:
                    codes[json.loads(payload)["error"]["code"]] += 1
            return None if status in (201, 409) else f"HTTP {status}: {payload[:200]!r}"

        with Gunicorn(env, workers=args.workers) as server:
            _l, failures, _s = Pusher(server.port, key, "/api/v1/customers/batch").run(
                customer_bodies, 2, lambda s, p: None if s == 200 else f"HTTP {s}")
            if failures:
                raise RuntimeError(f"customer setup failed: {failures[:3]}")
            load_before = load_average()
            gunicorn_cpu = CpuMeter(server.pids)
            postgres_cpu = CpuMeter(lambda: postgres_backends(args.db))
            latencies, failures, seconds = Pusher(server.port, key, "/api/v1/points/entries").run(bodies, args.clients, check)
            cpu = gunicorn_cpu.stop(), postgres_cpu.stop()
            load_after = load_average()
            memory = server.memory()

        started = time.monotonic()
        report = json.loads(manage(env, "reconcile_points", "--json").strip().splitlines()[-1])
        reconcile_s = time.monotonic() - started
        with psycopg2.connect(database) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE balance_after < 0) FROM incentives_pointsentry")
            entries, negative = cur.fetchone()
            cur.execute("SELECT count(*) FROM (SELECT customer_id, idempotency_key FROM incentives_pointsentry "
                        "GROUP BY 1, 2 HAVING count(*) > 1) d")
            duplicate_keys = cur.fetchone()[0]
    finally:
        database_drop(args.db)

    lat_ms = np.array(latencies) * 1000
    answered = sum(statuses.values())
    # Every 201 to a first request wrote one entry; replays answer 201 without writing, so
    # the entries can only be fewer than the 201s by the replays of successful keys.
    result = {
        "bench": "points",
        "requests": len(bodies),
        "distinct_keys": args.requests,
        "clients": args.clients,
        "server_workers": args.workers,
        "seconds": round(seconds, 2),
        "requests_per_s": round(answered / seconds) if seconds else 0,
        "entries_written": entries,
        "entries_per_s": round(entries / seconds) if seconds else 0,
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1) if len(lat_ms) else None,
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1) if len(lat_ms) else None,
        "status_counts": dict(statuses),
        "conflict_codes": dict(codes),
        "negative_balance_after": negative,
        "duplicate_keys": duplicate_keys,
        "reconcile_drift_accounts": report["drift_accounts"],
        "reconcile_s": round(reconcile_s, 2),
        "server_peak_rss_mb": memory["peak_rss_sum_mb"],
        "server_cpu_s": {"gunicorn": round(cpu[0], 1), "postgres": round(cpu[1], 1)},
        "ok": not failures and report["drift_accounts"] == 0 and negative == 0 and duplicate_keys == 0,
        "failures": failures[:3],
        "machine": machine(),
        "load_avg_1m": [load_before, load_after],
    }
    emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
