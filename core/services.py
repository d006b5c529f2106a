"""Cross-cutting writes: API keys, audit entries, job runs."""

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .errors import ApplicationError
from .models import ApiKey, ApiScope, AuditEntry, JobRun

logger = logging.getLogger(__name__)


def audit_record(*, actor, action: str, obj: Any, changes: dict | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=str(getattr(actor, "username", "") or actor or "system"),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        changes=changes or {},
    )


def api_key_create(
    *, name: str, scopes: list[str], created_by=None, expires_at: datetime | None = None, rate_limit: str = ""
) -> tuple[ApiKey, str]:
    """Creates a key and returns it with the full secret, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ApplicationError("An API key needs a name.", code="invalid_name")
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ApplicationError(f"Unknown scope(s): {', '.join(unknown)}.", code="invalid_scope")
    full, prefix, hashed = ApiKey.generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            hashed_secret=hashed,
            scopes=sorted(set(scopes)),
            created_by=created_by,
            expires_at=expires_at,
            rate_limit=rate_limit,
        )
        audit_record(actor=created_by, action="api_key.create", obj=key, changes={"scopes": key.scopes})
    return key, full


def api_key_revoke(*, key: ApiKey, actor=None) -> ApiKey:
    if key.revoked_at is None:
        with transaction.atomic():
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="api_key.revoke", obj=key)
    return key


class JobAlreadyRunning(Exception):
    pass


@contextlib.contextmanager
def job_run(job: str, *, lock_seconds: int = 3600) -> Iterator[JobRun]:
    """Records a periodic job's run; refuses to start a job that is already running.

    The lock lives in the shared cache (Redis in production, a file cache in
    the embedded default), so it holds across workers and machines. A run that
    dies without releasing it frees the lock after ``lock_seconds``.
    """
    lock_key = f"job-lock:{job}"
    if not cache.add(lock_key, "1", timeout=lock_seconds):
        JobRun.objects.create(job=job, status=JobRun.Status.SKIPPED, finished_at=timezone.now())
        raise JobAlreadyRunning(job)
    run = JobRun.objects.create(job=job)
    started = time.monotonic()
    try:
        yield run
    except Exception as exc:
        run.status = JobRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    else:
        run.status = JobRun.Status.SUCCEEDED
    finally:
        run.finished_at = timezone.now()
        run.counts = {**run.counts, "seconds": round(time.monotonic() - started, 3)}
        run.save(update_fields=["status", "error", "finished_at", "counts"])
        cache.delete(lock_key)
        logger.info("job finished", extra={"job": job, "status": run.status, "counts": run.counts})
