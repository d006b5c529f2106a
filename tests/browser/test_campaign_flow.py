"""An operator schedules a campaign to a segment in a real headless Chromium and watches
its results: the form, the preview, launch, then — after the worker's part (run here, as
the worker would) and the gateway's delivery reports — the results per variant."""

from datetime import time

import pytest

from tests.chromium import CHROMIUM, chromium_page
from tests.users.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture
def page(monkeypatch):
    with chromium_page(monkeypatch, timeout_ms=20_000) as page:
        yield page


@pytest.fixture
def flow_data(make_user, settings, tmp_path):
    """Written before Playwright starts (see test_operator_flow)."""
    from campaigns.services.policy import policy_settings
    from communities.services import template_create, version_approve
    from segments import services as segment_services

    settings.OPS_CHANNEL_BACKENDS = dict.fromkeys(settings.OPS_CHANNELS, "log")
    settings.OPS_CHANNEL_LOG_FILE = tmp_path / "channel-log.jsonl"
    knobs = policy_settings()
    knobs.quiet_start = knobs.quiet_end = time(0, 0)  # the hour the test runs at must not matter
    knobs.save()
    make_user("operator", username="olga")
    customers = [CustomerFactory(consent_push=n != 0) for n in range(12)]
    body = "\n".join(["external_id", *(c.external_id for c in customers)]).encode()
    segment = segment_services.static_segment_upload(name="春季活跃用户", file_bytes=body)
    writer, approver = make_user("admin", username="writer"), make_user("admin", username="approver")
    template = template_create(
        code="spring", name="春季特惠", kind="campaign", body="{{ nickname }}，春季特惠！", actor=writer
    )
    version_approve(version=template.versions.get(), actor=approver)
    return {"segment": segment.slug}


def _worker_runs_the_campaign(campaign_id: int) -> int:
    """What the worker does after the launch: the occurrence's chunks, then the senders."""
    from campaigns.models import Campaign
    from campaigns.services import dispatch, outbox

    campaign = Campaign.objects.get(pk=campaign_id)
    for chunk_id in dispatch.occurrence_start(campaign_id=campaign_id, occurrence="once", due=campaign.start_at):
        dispatch.write_chunk(chunk_id=chunk_id)
    return outbox.outbox_drain().sent


def _gateway_reports(campaign_id: int) -> None:
    from campaigns.models import Delivery
    from campaigns.rows import CallbackRow
    from campaigns.services import results
    from core.batch import ValidatedBatch

    sent = list(Delivery.objects.filter(campaign_id=campaign_id, status="sent").order_by("pk"))
    items = [{"delivery": d.pk, "event": "delivered", "at": d.sent_at} for d in sent]
    items += [{"delivery": d.pk, "event": "opened", "at": d.sent_at} for d in sent[:4]]
    rows = [(i, CallbackRow.model_validate(item)) for i, item in enumerate(items)]
    results.callbacks_record(batch=ValidatedBatch(rows=rows, errors=[], atomic=False))


def test_an_operator_schedules_a_campaign_and_watches_its_results(flow_data, live_server, page):
    elsewhere = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else elsewhere.append(r.url))
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector(".kpi-grid")

    page.goto(f"{live_server.url}/campaigns/new")
    page.fill("#id_name", "春季特惠推送")
    page.select_option("#id_channel", "push")
    page.select_option("#id_segments", flow_data["segment"])
    page.fill("#id_variants-0-code", "A")
    page.fill("#id_variants-0-share", "100")
    page.select_option("#id_variants-0-template", "spring")
    page.click('[data-role="save"]')

    page.wait_for_selector('[data-section="preview"]')
    campaign_id = int(page.locator("[data-campaign]").get_attribute("data-campaign"))
    assert page.locator("[data-campaign]").get_attribute("data-status") == "draft"
    preview = page.locator('[data-section="preview"]').inner_text()
    assert "12" in preview  # the audience
    assert page.locator('[data-outcome="queued"] td.num').inner_text() == "11"
    assert page.locator('[data-outcome="suppressed:no_consent"] td.num').inner_text() == "1"
    assert "春季特惠！" in page.locator('[data-sample="A"]').inner_text()

    page.click('[data-role="launch"] button')
    page.wait_for_selector('[data-status="scheduled"], [data-status="running"]')

    assert _worker_runs_the_campaign(campaign_id) == 11
    _gateway_reports(campaign_id)
    page.reload()
    results = page.locator('[data-table="results"] [data-variant="A"]').inner_text()
    assert "11" in results and "36.4%" in results  # 4 of 11 sent were opened
    assert page.locator('[data-field="ab-test"]').get_attribute("data-ab") == "single_variant"
    assert page.locator('[data-table="by-status"] [data-status="delivered"] td.num').inner_text() == "7"
    assert page.locator('[data-table="by-status"] [data-status="opened"] td.num').inner_text() == "4"
    assert elsewhere == []
