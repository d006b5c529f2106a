from datetime import time, timedelta

import pytest
from django.utils import timezone

from campaigns.services.policy import policy_settings


@pytest.fixture
def channel_log(settings, tmp_path):
    """Every channel on the log backend, writing to a file of this test's own."""
    settings.OPS_CHANNEL_BACKENDS = dict.fromkeys(settings.OPS_CHANNELS, "log")
    settings.OPS_CHANNEL_RATES = {}
    settings.OPS_CHANNEL_LOG_FILE = tmp_path / "channel-log.jsonl"
    return settings.OPS_CHANNEL_LOG_FILE


@pytest.fixture
def no_quiet_hours(db):
    """Quiet hours off, so a test's sends do not depend on the hour it runs at."""
    policy = policy_settings()
    policy.quiet_start = policy.quiet_end = time(0, 0)
    policy.save()
    return policy


@pytest.fixture
def quiet_now(db):
    """Quiet hours around this very minute in Asia/Shanghai (the customers' default zone)."""
    from zoneinfo import ZoneInfo

    local = timezone.now().astimezone(ZoneInfo("Asia/Shanghai"))
    policy = policy_settings()
    policy.quiet_start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    policy.quiet_end = (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    policy.save()
    return policy


@pytest.fixture
def approved_template(db, make_user):
    """An approved SOP campaign template ``promo``: "Hi {{ nickname }}, spring sale!"."""
    from communities.services import templates

    writer, approver = make_user("admin", username="writer"), make_user("admin", username="approver")
    template = templates.template_create(
        code="promo", name="Spring promo", kind="campaign", body="Hi {{ nickname }}, spring sale!", actor=writer
    )
    templates.version_approve(version=template.versions.get(), actor=approver)
    template.refresh_from_db()
    return template


@pytest.fixture
def static_segment(db):
    """``make(name, customers)`` → a static segment of exactly those customers."""
    from segments import services as segment_services

    def make(name: str, customers) -> str:
        body = "\n".join(["external_id", *(c.external_id for c in customers)]).encode()
        return segment_services.static_segment_upload(name=name, file_bytes=body).slug

    return make
