import uuid

import pytest

from core.models import JobRun
from core.services import JobAlreadyRunning, job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    # A fresh name per test: the lock lives in the shared cache (a file or Redis), not the test database.
    return f"test.job.{uuid.uuid4().hex[:8]}"


def test_a_successful_run_is_recorded_with_counts_and_duration(job):
    with job_run(job) as run:
        assert JobRun.objects.get(pk=run.pk).status == JobRun.Status.RUNNING
        run.counts["customers"] = 42
    run = JobRun.objects.get(job=job)
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.counts["customers"] == 42
    assert run.counts["seconds"] >= 0
    assert run.finished_at is not None and run.duration_seconds >= 0
    assert run.error == ""


def test_a_failed_run_is_recorded_and_the_error_raised(job):
    with pytest.raises(RuntimeError, match="boom"), job_run(job) as run:
        run.counts["done"] = 1
        raise RuntimeError("boom")
    run = JobRun.objects.get(job=job)
    assert run.status == JobRun.Status.FAILED
    assert run.error == "RuntimeError: boom"
    assert run.counts["done"] == 1 and run.finished_at is not None


def test_a_second_concurrent_run_is_refused_and_recorded_as_skipped(job):
    with job_run(job), pytest.raises(JobAlreadyRunning), job_run(job):
        pytest.fail("the second run must not start")
    statuses = sorted(JobRun.objects.filter(job=job).values_list("status", flat=True))
    assert statuses == [JobRun.Status.SKIPPED, JobRun.Status.SUCCEEDED]
    skipped = JobRun.objects.get(job=job, status=JobRun.Status.SKIPPED)
    assert skipped.finished_at is not None


def test_the_lock_is_released_after_a_run_even_a_failed_one(job):
    with pytest.raises(ValueError), job_run(job):
        raise ValueError
    with job_run(job):
        pass
    assert JobRun.objects.filter(job=job, status=JobRun.Status.SUCCEEDED).count() == 1


def test_different_jobs_do_not_block_each_other(job):
    with job_run(job), job_run(f"{job}.other"):
        pass
    assert JobRun.objects.filter(job__startswith=job, status=JobRun.Status.SUCCEEDED).count() == 2
