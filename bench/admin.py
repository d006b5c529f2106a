"""Admin changelist benchmark on PostgreSQL: every admin list, filtered and searched, at scale.

    .venv/bin/python bench/admin.py --customers 1000000 --orders 10000000 --events 10000000

1. Creates a fresh database, migrates it, loads synthetic customers and orders
   (bench/_common.load_customers_orders, COPY) and events (load_events, COPY),
   VACUUM ANALYZE, and an admin account.
2. Starts gunicorn on 127.0.0.1, logs in as the admin and requests every
   changelist of Ops Desk's admin — plain, with a typical filter and with a
   search — ``--repeat`` times each (after one warm-up request).
3. Prints one JSON line: p50/p95 milliseconds per page, the slowest p95, and
   whether every page stayed under ``--budget-ms``.
"""

import argparse
import http.cookiejar
import os
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from _common import (
    Gunicorn,
    database_recreate,
    database_url,
    emit,
    load_average,
    load_customers_orders,
    load_events,
    machine,
    manage,
    server_env,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-admin-password-2026"
# A typical filter and search per big list (the rest get a search for a value nobody has).
FILTERS = {
    "users/customer": "channel__exact=organic",
    "users/order": "status__exact=refunded",
    "users/event": "type__exact=checkin",
    "incentives/pointsentry": "kind__exact=earn",
    "core/auditentry": "object_type__exact=users.customer",
    "auth/user": "is_active__exact=1",
}


def _searches(customers: int, orders: int, events: int) -> dict[str, str]:
    return {
        "users/customer": f"b{customers // 2}",
        "users/order": f"o{orders // 2}",
        "users/event": f"b{customers // 3}",  # a customer's events
    }


def _loaded(args) -> bool:
    import psycopg2

    try:
        with psycopg2.connect(database_url(args.db)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM users_customer), (SELECT count(*) FROM users_order), "
                "(SELECT count(*) FROM users_event)"
            )
            return cur.fetchone() == (args.customers, args.orders, args.events)
    except psycopg2.Error:
        return False


def _setup(args) -> tuple[dict, dict, list[str]]:
    reuse = args.reuse and _loaded(args)
    url = database_url(args.db) if reuse else database_recreate(args.db)
    env = server_env(url)
    manage(env, "migrate", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")  # DEBUG off: the admin's CSS from the manifest
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from core.roles import ADMIN, OPS_APPS

    info = {"reused": reuse}
    if not reuse:
        with transaction.atomic():  # bulk_load's index drop and rebuild are transactional DDL
            info.update(load_customers_orders(customers=args.customers, orders=args.orders, seed=args.seed))
            info.update(load_events(events=args.events, seed=args.seed))
    with connection.cursor() as cur:  # statistics for the planner and the estimated counts
        for table in ("users_customer", "users_order", "users_event"):
            cur.execute(f"VACUUM ANALYZE {table}")
    user = get_user_model().objects.filter(username="bench-admin").first()
    user = user or get_user_model().objects.create_user("bench-admin", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=ADMIN))
    pages = sorted(
        f"{m._meta.app_label}/{m._meta.model_name}"
        for m in admin.site._registry
        if m._meta.app_label in [*OPS_APPS, "auth"]
    )
    connection.close()
    return env, info, pages


class _Session:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, float]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=120) as r:
            r.read()
            return r.status, (time.perf_counter() - started) * 1000

    def login(self, username: str, password: str) -> None:
        with self.opener.open(self.base + "/admin/login/", timeout=60) as r:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.read().decode()).group(1)
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"}
        ).encode()
        request = urllib.request.Request(self.base + "/admin/login/", data=body, headers={"Referer": self.base})
        with self.opener.open(request, timeout=60) as r:
            if "/admin/login/" in r.geturl():
                raise RuntimeError("the benchmark admin could not log in")


def _measure(session: _Session, path: str, repeat: int) -> dict:
    status, _ = session.get(path)  # warm-up (and a check the page opens)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")
    times = sorted(session.get(path)[1] for _ in range(repeat))
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--budget-ms", type=float, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default="opsdesk_bench_admin")
    parser.add_argument("--reuse", action="store_true", help="keep the database of an earlier run with the same sizes")
    args = parser.parse_args()

    started = time.monotonic()
    env, info, pages = _setup(args)
    load_s = round(time.monotonic() - started, 1)
    searches = _searches(args.customers, args.orders, args.events)
    results = {}
    with Gunicorn(env, workers=args.workers) as server:
        session = _Session(server.url)
        session.login("bench-admin", PASSWORD)
        for page in pages:
            base = f"/admin/{page}/"
            variants = {"list": base, "search": f"{base}?q={searches.get(page, 'nobody-has-this')}"}
            if page in FILTERS:
                variants["filter"] = f"{base}?{FILTERS[page]}"
            for name, path in variants.items():
                results[f"{page} {name}"] = _measure(session, path, args.repeat)
    worst = max(results.items(), key=lambda kv: kv[1]["p95_ms"])
    emit(
        {
            "benchmark": "admin_changelists",
            "customers": args.customers,
            "orders": args.orders,
            "events": args.events,
            "repeat": args.repeat,
            "setup_s": load_s,
            **info,
            "pages": results,
            "worst_p95": {"page": worst[0], "ms": worst[1]["p95_ms"]},
            "all_under_budget": all(r["p95_ms"] < args.budget_ms for r in results.values()),
            "budget_ms": args.budget_ms,
            "load_average": load_average(),
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
