"""``/healthz``: is the database, the cache and the broker reachable?"""

import time

from celery import current_app
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("healthz", "ok", 10)
    if cache.get("healthz") != "ok":
        raise RuntimeError("cache did not return the value just written")


def _check_broker() -> None:
    # The project's Celery app (ops_site.celery, loaded with the settings package) is the
    # current one; asking Celery for it keeps core from importing the site above it.
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


@never_cache
@require_GET
def healthz(request):
    results, healthy = {}, True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
        except Exception as exc:  # the point is to report any failure
            healthy = False
            results[name] = {"ok": False, "error": type(exc).__name__}
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
