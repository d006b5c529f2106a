"""Points ledger benchmark: concurrent earn/spend requests against a server on PostgreSQL.

    .venv/bin/python bench/points.py --single 6000 --batched 100000 --batch-size 100 --clients 8 --workers 3

Creates a fresh database, customers through the API, then fires two phases of
earns and spends (some beyond the balance, which must be refused and write
nothing) spread over the customers, with a few hot customers taking a large
share so row locks contend, and some replays of keys already used:

1. ``single``: one entry per ``POST /api/v1/points/entries`` request;
2. ``batch``: ``--batch-size`` entries per ``POST /api/v1/points/entries/batch``
   request (the way a backend moves points in volume).

Afterwards it checks the ledger: entries written == entries the server said it
created, no negative balance, no key applied twice, and ``manage.py
reconcile_points`` finds no drift. Prints one JSON line with both phases.
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


def _items(count: int, *, prefix: str, customers: int, hot: int, replay_share: float, seed: int) -> list[dict]:
    """``count`` distinct entries plus replays of some of them, shuffled."""
    rng = np.random.default_rng(seed)
    # 20% of requests go to a handful of hot customers, so their row locks contend.
    who = np.where(rng.random(count) < 0.2, rng.integers(0, hot, count), rng.integers(0, customers, count))
    spend = rng.random(count) < 0.35
    amount = np.where(spend, rng.integers(1, 60, count), rng.integers(1, 100, count))
    items = [
        {
            "customer": f"p{int(who[i]):06d}",
            "kind": "spend" if spend[i] else "earn",
            "amount": int(amount[i]),
            "reason": "bench",
            "idempotency_key": f"{prefix}{i}",
        }
        for i in range(count)
    ]
    # Replays: the same item again (the server must answer the first result, write nothing).
    items.extend(items[int(i)] for i in rng.choice(count, int(count * replay_share), replace=False))
    return [items[int(i)] for i in rng.permutation(len(items))]


class Tally:
    """What the server answered, counted from the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.outcomes: Counter = Counter()  # created / replayed / refusal codes, per entry


def _phase(server, key: str, path: str, bodies: list[bytes], clients: int, check, database: str) -> dict:
    load_before = load_average()
    gunicorn_cpu = CpuMeter(server.pids)
    postgres_cpu = CpuMeter(lambda: postgres_backends(database))
    latencies, failures, seconds = Pusher(server.port, key, path).run(bodies, clients, check)
    lat_ms = np.array(latencies) * 1000
    return {
        "requests": len(bodies),
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(latencies) / seconds) if seconds else 0,
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1) if len(lat_ms) else None,
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1) if len(lat_ms) else None,
        "server_cpu_s": {"gunicorn": round(gunicorn_cpu.stop(), 1), "postgres": round(postgres_cpu.stop(), 1)},
        "load_avg_1m": [load_before, load_average()],
        "failures": failures[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=6_000, help="distinct entries sent one per request")
    parser.add_argument("--batched", type=int, default=100_000, help="distinct entries sent in batches")
    parser.add_argument("--batch-size", type=int, default=100)
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
    shape = {"customers": args.customers, "hot": args.hot, "replay_share": args.replay_share}
    single_items = _items(args.single, prefix="s", seed=args.seed, **shape)
    batched_items = _items(args.batched, prefix="b", seed=args.seed + 1, **shape)
    tally = Tally()

    def check_single(status: int, payload: bytes) -> str | None:
        if status not in (201, 409):
            return f"HTTP {status}: {payload[:200]!r}"
        body = json.loads(payload)
        with tally.lock:
            tally.statuses[status] += 1
            if status == 409:
                tally.outcomes[body["error"]["code"]] += 1
            else:
                tally.outcomes["replayed" if body["entry"]["idempotency_key"] in seen_single else "created"] += 1
                seen_single.add(body["entry"]["idempotency_key"])
        return None

    def check_batch(status: int, payload: bytes) -> str | None:
        if status != 200:
            return f"HTTP {status}: {payload[:200]!r}"
        body = json.loads(payload)
        unexpected = [e for e in body["errors"] if e.get("code") not in ("insufficient_points",)]
        with tally.lock:
            tally.statuses[status] += 1
            tally.outcomes["created"] += body["created"]
            tally.outcomes["replayed"] += body["unchanged"]
            tally.outcomes.update(e.get("code", "invalid") for e in body["errors"])
        return f"unexpected item errors: {unexpected[:2]}" if unexpected else None

    seen_single: set[str] = set()
    try:
        env = server_env(database, REDIS_URL=args.redis_url)
        manage(env, "migrate", "--no-input", "-v", "0")
        key = (
            manage(
                env,
                "create_api_key",
                "points-bench",
                "--scope",
                "customers:write",
                "--scope",
                "points:write",
                "--rate",
                "10000000/min",
            )
            .strip()
            .splitlines()[-1]
        )
        customer_bodies = [
            json.dumps(
                {"items": [{"external_id": f"p{i:06d}"} for i in range(s, min(s + 1000, args.customers))]}
            ).encode()
            for s in range(0, args.customers, 1000)
        ]
        with Gunicorn(env, workers=args.workers) as server:
            _l, failures, _s = Pusher(server.port, key, "/api/v1/customers/batch").run(
                customer_bodies, 2, lambda s, p: None if s == 200 else f"HTTP {s}"
            )
            if failures:
                raise RuntimeError(f"customer setup failed: {failures[:3]}")
            single = _phase(
                server,
                key,
                "/api/v1/points/entries",
                [json.dumps(i).encode() for i in single_items],
                args.clients,
                check_single,
                args.db,
            )
            single_outcomes = dict(tally.outcomes)
            tally.outcomes.clear()
            batches = [
                json.dumps({"items": batched_items[s : s + args.batch_size]}).encode()
                for s in range(0, len(batched_items), args.batch_size)
            ]
            batch = _phase(server, key, "/api/v1/points/entries/batch", batches, args.clients, check_batch, args.db)
            batch_outcomes = dict(tally.outcomes)
            memory = server.memory()

        started = time.monotonic()
        report = json.loads(manage(env, "reconcile_points", "--json").strip().splitlines()[-1])
        reconcile_s = time.monotonic() - started
        with psycopg2.connect(database) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE idempotency_key LIKE 'api:s%%'), "
                "count(*) FILTER (WHERE idempotency_key LIKE 'api:b%%'), count(*) FILTER (WHERE balance_after < 0) "
                "FROM incentives_pointsentry"
            )
            single_written, batch_written, negative = cur.fetchone()
            cur.execute(
                "SELECT count(*) FROM (SELECT customer_id, idempotency_key FROM incentives_pointsentry "
                "GROUP BY 1, 2 HAVING count(*) > 1) d"
            )
            duplicate_keys = cur.fetchone()[0]
    finally:
        database_drop(args.db)

    for phase, written, outcomes, size in (
        (single, single_written, single_outcomes, 1),
        (batch, batch_written, batch_outcomes, args.batch_size),
    ):
        phase["entries_per_request"] = size
        phase["entries_written"] = written
        phase["entries_per_s"] = round(written / phase["seconds"]) if phase["seconds"] else 0
        phase["outcomes"] = outcomes
        # Every entry the server said it created is in the ledger, and nothing else.
        phase["written_matches_answers"] = written == outcomes.get("created", 0)
    result = {
        "bench": "points",
        "clients": args.clients,
        "server_workers": args.workers,
        "customers": args.customers,
        "single": single,
        "batch": batch,
        "negative_balance_after": negative,
        "duplicate_keys": duplicate_keys,
        "reconcile_drift_accounts": report["drift_accounts"],
        "reconcile_s": round(reconcile_s, 2),
        "server_peak_rss_mb": memory["peak_rss_sum_mb"],
        "ok": (
            not single["failures"]
            and not batch["failures"]
            and report["drift_accounts"] == 0
            and negative == 0
            and duplicate_keys == 0
            and single["written_matches_answers"]
            and batch["written_matches_answers"]
        ),
        "machine": machine(),
    }
    emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
