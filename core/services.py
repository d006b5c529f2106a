"""Cross-cutting writes: API keys, audit entries, job runs."""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from celery.contrib.django.task import DjangoTask
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .errors import ApplicationError
from .models import ApiKey, ApiScope, AuditEntry, DisplayName, JobRun
from .selectors import display_names_forget

logger = logging.getLogger(__name__)


def audit_value(value: Any) -> Any:
    """A field value as JSON can hold it: dates as ISO text, decimals as text, rows by their key."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [audit_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): audit_value(v) for k, v in value.items()}
    if isinstance(value, models.Model):
        return str(getattr(value, "external_id", None) or value.pk)
    return str(value)


def audit_snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The audited values of a row (every concrete, editable field unless ``fields`` names them)."""
    if fields is None:
        fields = [f.name for f in obj._meta.concrete_fields if f.editable and not f.primary_key]
    out = {}
    for name in fields:
        field = obj._meta.get_field(name)
        # The foreign key's id, not the related row: no query per audited relation.
        out[name] = getattr(obj, field.attname) if field.is_relation else getattr(obj, name)
    return out


def audit_diff(before: dict | None, after: dict | None) -> dict[str, list]:
    """``{field: [from, to]}`` for the fields whose value differs; a missing side is ``None``."""
    before, after = before or {}, after or {}
    changes = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = audit_value(before.get(name)), audit_value(after.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


def _audit_entry(*, actor, action: str, obj: Any, changes: dict) -> AuditEntry:
    return AuditEntry(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=str(getattr(actor, "username", "") or actor or "system")[:150],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        changes=changes,
    )


def audit_record(
    *, actor, action: str, obj: Any, changes: dict | None = None, before: dict | None = None, after: dict | None = None
) -> AuditEntry:
    """Writes one audit row. Give ``changes`` as they are, or ``before`` and ``after``
    (field → value) to store the fields that differ as ``{field: [from, to]}``."""
    if before is not None or after is not None:
        changes = {**audit_diff(before, after), **(changes or {})}
    entry = _audit_entry(actor=actor, action=action, obj=obj, changes=changes or {})
    entry.save()
    return entry


def audit_record_many(*, actor, action: str, items: Iterable[tuple[Any, dict]]) -> int:
    """One audit row per ``(obj, changes)`` in a single insert (batch imports)."""
    entries = [_audit_entry(actor=actor, action=action, obj=obj, changes=changes) for obj, changes in items]
    AuditEntry.objects.bulk_create(entries, batch_size=1000)
    return len(entries)


def api_key_create(
    *, name: str, scopes: list[str], created_by=None, expires_at: datetime | None = None, rate_limit: str = ""
) -> tuple[ApiKey, str]:
    """Creates a key and returns it with the full secret, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ApplicationError(_("An API key needs a name."), code="invalid_name")
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ApplicationError(
            _("Unknown scope(s): %(scopes)s.") % {"scopes": ", ".join(unknown)}, code="invalid_scope"
        )
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
            audit_record(
                actor=actor,
                action="api_key.revoke",
                obj=key,
                before={"revoked_at": None},
                after={"revoked_at": key.revoked_at},
            )
    return key


_API_KEY_EDITABLE = ("name", "rate_limit", "expires_at")


def api_key_update(*, key: ApiKey, actor=None, **changes) -> ApiKey:
    """Changes a key's name, rate limit or expiry (its secret and scopes stay); audited from → to."""
    unknown = sorted(set(changes) - set(_API_KEY_EDITABLE))
    if unknown:
        raise ApplicationError(f"Not editable on an API key: {', '.join(unknown)}.", code="invalid")
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            raise ApplicationError(_("An API key needs a name."), code="invalid_name")
    before = audit_snapshot(key, _API_KEY_EDITABLE)
    for name, value in changes.items():
        setattr(key, name, value if value is not None or name == "expires_at" else "")
    after = audit_snapshot(key, _API_KEY_EDITABLE)
    if before == after:
        return key
    with transaction.atomic():
        key.save(update_fields=[name for name in _API_KEY_EDITABLE if before[name] != after[name]])
        audit_record(actor=actor, action="api_key.change", obj=key, before=before, after=after)
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


# --- Side-effect tasks: per-row safe, retried when the failure is transient ----------

# Errors that say nothing about the rows (the database or the broker went away, a
# deadlock, a serialisation failure): the whole task is retried with a backoff.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
# How many ids a failed run's record names (a poisoned 1,000-row batch names them all).
FAILED_IDS_RECORDED = 1000


def ids_apply_isolating_failures(job: str, ids: list[int], apply: Callable[[list[int]], int]) -> int:
    """``apply(ids)``, set-based; if it raises for a reason other than a transient one,
    the ids are bisected until the rows that raise are isolated: every other row is
    applied (each half in its own call, so the work stays set-based — one poison row
    in 1,000 costs about 20 calls, not 1,000), and a failed ``JobRun`` names the rows
    that were skipped, with their errors, so ``jobs_requeue_failed`` can run them again
    once the data or the code is fixed. ``apply`` must be idempotent and run each call
    in its own transaction (a failed half leaves nothing behind).

    Returns what the successful calls returned, summed."""
    failed: dict[int, str] = {}

    def run(chunk: list[int]) -> int:
        try:
            with transaction.atomic():
                return apply(chunk)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            if len(chunk) == 1:
                failed[chunk[0]] = f"{type(exc).__name__}: {exc}"[:300]
                logger.exception("row skipped by a side-effect task", extra={"job": job, "row_id": chunk[0]})
                return 0
            middle = len(chunk) // 2
            return run(chunk[:middle]) + run(chunk[middle:])

    ids = list(ids)
    total = run(ids)
    if failed:
        failed_ids = sorted(failed)
        now = timezone.now()
        JobRun.objects.create(
            job=job,
            status=JobRun.Status.FAILED,
            started_at=now,
            finished_at=now,
            counts={
                "ids": len(ids),
                "applied": total,
                "failed": len(failed_ids),
                "failed_ids": failed_ids[:FAILED_IDS_RECORDED],
            },
            error="\n".join(f"{i}: {failed[i]}" for i in failed_ids)[:2000],
        )
    return total


def job_failure_record(job: str, ids: list[int] | None, exc: BaseException) -> JobRun:
    """A task that failed as a whole (retries exhausted) leaves this record; its ids can be re-queued."""
    now = timezone.now()
    counts: dict[str, Any] = {}
    if ids is not None:
        counts = {"ids": len(ids), "failed": len(ids), "failed_ids": list(ids)[:FAILED_IDS_RECORDED]}
    return JobRun.objects.create(
        job=job,
        status=JobRun.Status.FAILED,
        started_at=now,
        finished_at=now,
        counts=counts,
        error=f"{type(exc).__name__}: {exc}"[:2000],
    )


class SideEffectTask(DjangoTask):
    """Base of the tasks that react to committed writes with a list of row ids
    (``task(ids)``): acked late, retried with a backoff on transient errors, and a
    task that still fails leaves a failed ``JobRun`` naming its ids."""

    acks_late = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 5
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 6

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        ids = args[0] if args and isinstance(args[0], list) else kwargs.get("ids")
        try:
            job_failure_record(self.name, ids, exc)
        except Exception:  # the database may be what failed; the worker's log still has it
            logger.exception("could not record the failed task", extra={"job": self.name, "task_id": task_id})


def failed_jobs_requeue(runs: Iterable[JobRun]) -> list[JobRun]:
    """Queues the failed ids of these failed runs again (each run once), for side-effect
    tasks; returns the runs re-queued. The tasks are idempotent, so ids that have been
    applied since are a no-op."""
    from celery import current_app

    current_app.loader.import_default_modules()  # every app's tasks registered
    requeued = []
    for run in runs:
        ids = run.counts.get("failed_ids")
        if run.status != JobRun.Status.FAILED or not ids or run.counts.get("requeued_at"):
            continue
        task = current_app.tasks.get(run.job)
        if task is None:
            continue
        task.delay_on_commit(ids)
        run.counts = {**run.counts, "requeued_at": timezone.now().isoformat()}
        run.save(update_fields=["counts"])
        requeued.append(run)
    return requeued


_DISPLAY_NAME_FIELDS = ("kind", "key", "name_en", "name_zh_hans")


def display_name_save(
    *, kind: str, key: str, name_en: str, name_zh_hans: str, actor=None, display_name: DisplayName | None = None
) -> DisplayName:
    """Creates or changes the display name of a data key (audited from → to); every
    process's copy is dropped on commit, so pages show the new name."""
    kind, key = (kind or "").strip(), (key or "").strip()
    name_en, name_zh_hans = (name_en or "").strip(), (name_zh_hans or "").strip()
    if kind not in DisplayName.Kind.values:
        raise ApplicationError(_("Unknown kind of display name: %(kind)s.") % {"kind": kind}, code="invalid_kind")
    if not key or not (name_en or name_zh_hans):
        raise ApplicationError(_("A display name needs a key and a name."), code="invalid")
    clash = DisplayName.objects.filter(kind=kind, key=key)
    if display_name is not None and display_name.pk:
        clash = clash.exclude(pk=display_name.pk)
    if clash.exists():
        raise ApplicationError(_("This key has a display name already."), code="duplicate")
    with transaction.atomic():
        if display_name is not None and display_name.pk:
            before = audit_snapshot(DisplayName.objects.get(pk=display_name.pk), _DISPLAY_NAME_FIELDS)
            action = "display_name.change"
        else:
            display_name, before, action = DisplayName(), None, "display_name.create"
        display_name.kind, display_name.key = kind, key
        display_name.name_en, display_name.name_zh_hans = name_en, name_zh_hans
        display_name.save()
        audit_record(
            actor=actor, action=action, obj=display_name, before=before or {}, after=audit_snapshot(display_name)
        )
        transaction.on_commit(display_names_forget)
    return display_name


def display_name_delete(*, display_name: DisplayName, actor=None) -> None:
    """Removes a display name (the key shows as itself again); audited."""
    with transaction.atomic():
        audit_record(actor=actor, action="display_name.delete", obj=display_name, before=audit_snapshot(display_name))
        display_name.delete()
        transaction.on_commit(display_names_forget)
