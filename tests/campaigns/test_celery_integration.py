"""A campaign from launch to hand-over on a real Celery worker: the dispatch, its chunks
and the senders run in the worker process, on the configured broker."""

import time
from datetime import time as dtime

import pytest

from campaigns.backends import read_log
from campaigns.models import Delivery
from campaigns.services import campaigns as services
from campaigns.services.campaigns import VariantSpec
from campaigns.services.policy import policy_settings
from communities.services import templates
from segments import services as segment_services
from tests.users.factories import CustomerFactory


@pytest.fixture
def log_file(tmp_path, monkeypatch, settings):
    """The worker (started after this fixture) and this process log to the same file."""
    path = tmp_path / "channel-log.jsonl"
    monkeypatch.setenv("OPS_CHANNEL_LOG_FILE", str(path))
    monkeypatch.setenv("OPS_CHANNEL_PUSH", "log")
    settings.OPS_CHANNEL_LOG_FILE = path
    return path


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_launched_campaign_is_decided_and_handed_over_by_a_real_worker(log_file, worker_queue, make_user):
    knobs = policy_settings()
    knobs.quiet_start = knobs.quiet_end = dtime(0, 0)
    knobs.save()
    customers = [CustomerFactory(consent_push=n % 5 != 0) for n in range(25)]
    body = "\n".join(["external_id", *(c.external_id for c in customers)]).encode()
    segment = segment_services.static_segment_upload(name="worker audience", file_bytes=body).slug
    writer, approver = make_user("admin", username="w"), make_user("admin", username="a")
    template = templates.template_create(
        code="wk", name="Worker", kind="campaign", body="Hi {{ nickname }}", actor=writer
    )
    templates.version_approve(version=template.versions.get(), actor=approver)
    campaign = services.campaign_create(
        data={"name": "On the worker", "channel": "push", "segments": [segment]},
        variants=[VariantSpec("A", 100, "wk")],
    )
    services.campaign_launch(campaign=campaign)  # queues the dispatch on commit (autocommit here)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Delivery.objects.filter(campaign=campaign, status="sent").count() < 20:
        time.sleep(0.2)
    statuses = sorted(Delivery.objects.filter(campaign=campaign).values_list("status", "reason"))
    assert statuses.count(("sent", "")) == 20 and statuses.count(("suppressed", "no_consent")) == 5
    keys = [line["key"] for line in read_log(log_file)]
    assert len(keys) == len(set(keys)) == 20
    assert all(key.startswith(f"c{campaign.pk}:") for key in keys)
