"""The operators' campaign pages: the list (status filter, what each sent and held
back, its query count pinned), a new campaign (every schedule kind, a refusal shown at
its field with nothing written), a campaign's page (settings, variants, the preview,
results with rates and the A/B verdict, counts) with Launch / Pause / Cancel, and the
edit page. Who may open which page is tests/campaigns/test_permissions_matrix.py."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Variant
from campaigns.services import campaigns as campaign_services
from campaigns.services import caps as cap_services
from campaigns.services.campaigns import VariantSpec
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def operator(make_user):
    return make_user("operator", "op-one")


@pytest.fixture
def op(operator):
    return _client(operator)


@pytest.fixture
def audience(static_segment):
    customers = [CustomerFactory(nickname=f"顾客{n}", consent_push=n % 4 != 0) for n in range(8)]
    return customers, static_segment("spring", customers)


def _campaign(segment: str, *, variants=None, **data) -> Campaign:
    return campaign_services.campaign_create(
        data={"name": "Spring sale", "channel": "push", "segments": [segment]} | data,
        variants=variants or [VariantSpec("A", 50, "promo"), VariantSpec("B", 50, "promo", subject="B subject")],
    )


def _deliveries(campaign: Campaign, customers, *, status: str, reason: str = "", variant: str = "A", **extra):
    variant_row = Variant.objects.get(campaign=campaign, code=variant)
    now = timezone.now()
    for customer in customers:
        Delivery.objects.create(
            key=f"c{campaign.pk}:{customer.pk}:once:{variant}:{status}",
            campaign=campaign,
            variant=variant_row,
            customer=customer,
            channel=campaign.channel,
            category=campaign.category,
            status=status,
            reason=reason,
            rule="cap:push-3-7" if reason == "cap" else "",
            due_at=now,
            sent_at=now if status in ("sent", "delivered", "opened", "clicked") else None,
            **extra,
        )


def _form(segment: str, template: str = "promo", **overrides) -> dict:
    data = {
        "name": "Double eleven",
        "channel": "push",
        "category": "marketing",
        "content_class": "",
        "segments": [segment],
        "schedule": "once",
        "start_at": "",
        "cron_minute": "0",
        "cron_hour": "10",
        "cron_day": "*",
        "cron_month": "*",
        "cron_weekday": "*",
        "schedule_timezone": "Asia/Shanghai",
        "trigger": "",
        "on_hold": "defer",
        "max_delay_hours": "24",
        "goal_days": "7",
        "cost": "",
        "variants-TOTAL_FORMS": "4",
        "variants-INITIAL_FORMS": "1",
        "variants-MIN_NUM_FORMS": "1",
        "variants-MAX_NUM_FORMS": "4",
        "variants-0-code": "A",
        "variants-0-share": "100",
        "variants-0-template": template,
        "variants-0-subject": "",
    }
    for i in range(1, 4):
        data.update({f"variants-{i}-code": "", f"variants-{i}-share": "", f"variants-{i}-template": ""})
    return data | overrides


# --- the list --------------------------------------------------------------------------


def test_the_list_shows_each_campaign_with_its_schedule_audience_and_counts(op, audience, approved_template):
    customers, segment = audience
    campaign = _campaign(segment, start_at=datetime(2030, 1, 2, 2, 0, tzinfo=UTC))
    _deliveries(campaign, customers[:3], status="sent")
    _deliveries(campaign, customers[3:5], status="deferred", reason="cap")
    _deliveries(campaign, customers[5:6], status="suppressed", reason="no_consent")
    _deliveries(campaign, customers[6:7], status="queued")
    response = op.get("/campaigns/")
    html = response.content.decode()
    assert response.status_code == 200
    row = html[html.index(f'data-campaign="{campaign.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Spring sale" in row and "app push" in row and "draft" in row
    assert "one-off at 2030-01-02 10:00" in row  # shown in the operators' timezone
    assert "spring" in row and "A/B × 2" in row
    assert '<td class="num" data-sent>3</td>' in row and '<td class="num" data-held>3</td>' in row
    assert 'data-action="campaign-new"' in html


def test_the_list_filters_by_status_and_refuses_an_unknown_one(op, audience, approved_template):
    _customers, segment = audience
    draft = _campaign(segment, name="Draft one")
    cancelled = campaign_services.campaign_cancel(campaign=_campaign(segment, name="Cancelled one"))
    html = op.get("/campaigns/", {"status": "cancelled"}).content.decode()
    assert f'data-campaign="{cancelled.pk}"' in html and f'data-campaign="{draft.pk}"' not in html
    response = op.get("/campaigns/", {"status": "nonsense"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown status; showing every campaign." in html
    assert f'data-campaign="{draft.pk}"' in html and f'data-campaign="{cancelled.pk}"' in html


def test_a_viewer_sees_the_list_without_the_new_button(make_user, audience, approved_template):
    _customers, segment = audience
    _campaign(segment)
    html = _client(make_user("viewer")).get("/campaigns/").content.decode()
    assert "Spring sale" in html and 'data-action="campaign-new"' not in html
    assert 'href="/campaigns/new"' not in html


def test_the_list_query_count_is_pinned(op, audience, approved_template, django_assert_max_num_queries):
    customers, segment = audience
    op.get("/campaigns/")  # warm: session, permissions, display names

    def many(n):
        for i in range(n):
            campaign = _campaign(segment, name=f"c{i}-{Campaign.objects.count()}")
            _deliveries(campaign, customers[:2], status="sent")
            _deliveries(campaign, customers[2:3], status="deferred", reason="cap")

    many(2)
    with django_assert_max_num_queries(12) as small:
        assert op.get("/campaigns/").status_code == 200
    many(6)
    with django_assert_max_num_queries(12) as large:
        assert op.get("/campaigns/").status_code == 200
    assert len(large) == len(small)


# --- a new campaign ----------------------------------------------------------------------


def test_the_new_page_offers_the_segments_and_the_usable_templates(op, audience, approved_template):
    _customers, segment = audience
    html = op.get("/campaigns/new").content.decode()
    assert f'<option value="{segment}">spring</option>' in html
    assert '<option value="promo">Spring promo (campaign message)</option>' in html
    assert 'name="variants-TOTAL_FORMS"' in html and 'value="Asia/Shanghai"' in html


def test_a_one_off_campaign_is_created_as_a_draft_in_the_operators_timezone(op, operator, audience, approved_template):
    _customers, segment = audience
    data = _form(
        segment,
        start_at="2030-01-02T10:00",
        cost="250.50",
        **{
            "variants-0-share": "60",
            "variants-1-code": "B",
            "variants-1-share": "40",
            "variants-1-template": "promo",
            "variants-1-subject": "春季特卖",
        },
    )
    response = op.post("/campaigns/new", data)
    campaign = Campaign.objects.get(name="Double eleven")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
    assert campaign.status == "draft" and campaign.created_by == operator
    assert campaign.start_at == datetime(2030, 1, 2, 2, 0, tzinfo=UTC)
    assert str(campaign.cost) == "250.50" and campaign.segments == [segment]
    assert [(v.code, v.share, v.template.code, v.subject) for v in campaign.variants.order_by("code")] == [
        ("A", 60, "promo", ""),
        ("B", 40, "promo", "春季特卖"),
    ]
    assert AuditEntry.objects.filter(action="campaign.create", object_id=str(campaign.pk), actor=operator).exists()
    assert "saved as a draft" in op.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"schedule": "recurring", "cron_minute": "30", "cron_hour": "9", "cron_weekday": "1"}, ("30 9 * * 1", "", "")),
        ({"schedule": "triggered", "trigger": "signup_day", "trigger_days": "3"}, ("", "signup_day", "3")),
        ({"schedule": "triggered", "trigger": "birthday"}, ("", "birthday", "")),
        ({"schedule": "triggered", "trigger": "points_expiring", "trigger_days": "7"}, ("", "points_expiring", "7")),
    ],
)
def test_recurring_and_triggered_campaigns(op, audience, approved_template, fields, expected):
    _customers, segment = audience
    response = op.post("/campaigns/new", _form(segment, **fields))
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Double eleven")
    assert (campaign.cron, campaign.trigger, campaign.trigger_value) == expected
    assert campaign.schedule == fields["schedule"] and campaign.start_at is None


def test_a_segment_entered_trigger_names_the_segment(op, audience, approved_template):
    _customers, segment = audience
    response = op.post(
        "/campaigns/new", _form(segment, schedule="triggered", trigger="segment_enter", trigger_segment=segment)
    )
    assert response.status_code == 302
    assert Campaign.objects.get().trigger_value == segment


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"segments": ["no-such-segment"]}, "segments", "Select a valid choice."),
        ({"start_at": "2001-01-01T10:00"}, "start_at", "The send time is in the past."),
        ({"schedule": "triggered", "trigger": "signup_day"}, "trigger_days", "needs a number of days"),
        ({"schedule": "triggered", "trigger": ""}, "trigger", "names its trigger"),
        ({"schedule": "triggered", "trigger": "segment_enter"}, "trigger_segment", "Name the segment"),
        ({"max_delay_hours": "9999"}, "max_delay_hours", "less than or equal to 336"),
        ({"cost": "-1"}, "cost", "greater than or equal to 0"),
        # Refused by the service, shown at the field it names:
        ({"schedule_timezone": "Mars/Olympus"}, "schedule_timezone", "Unknown timezone."),
        ({"schedule": "recurring", "cron_hour": "99"}, "cron_minute", "does not parse"),
    ],
)
def test_bad_input_comes_back_with_the_reason_and_writes_nothing(
    op, audience, approved_template, overrides, field, message
):
    _customers, segment = audience
    response = op.post("/campaigns/new", _form(segment, **overrides))
    assert response.status_code == 400
    html = response.content.decode()
    errors = html[html.index(f'data-field="{field}"') :]
    assert f'data-error="{field}"' in errors[: errors.index("</p>")]
    assert message in errors[: errors.index("</p>")]
    assert not Campaign.objects.exists() and not AuditEntry.objects.filter(action="campaign.create").exists()


@pytest.mark.parametrize(
    ("variant_fields", "message"),
    [
        ({"variants-0-share": "70"}, "add up to 70%, not 100%."),
        ({"variants-0-share": "50", "variants-1-code": "A", "variants-1-share": "50", "variants-1-template": "promo"},
         "distinct short codes"),
        ({"variants-0-template": "not-usable"}, "Select a valid choice."),
        ({"variants-TOTAL_FORMS": "9"}, "Please submit at most 4 forms."),
    ],
)  # fmt: skip
def test_bad_variants_are_refused(op, audience, approved_template, variant_fields, message):
    _customers, segment = audience
    data = _form(segment, **variant_fields)
    response = op.post("/campaigns/new", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_post_without_the_variants_management_form_is_a_400_not_a_500(op, audience, approved_template):
    _customers, segment = audience
    data = {k: v for k, v in _form(segment).items() if not k.startswith("variants-")}
    assert op.post("/campaigns/new", data).status_code == 400
    assert not Campaign.objects.exists()


# --- a campaign's page -------------------------------------------------------------------


def test_the_campaign_page_shows_settings_variants_and_the_preview(op, audience, approved_template, no_quiet_hours):
    customers, segment = audience
    campaign = _campaign(segment, cost="100")
    html = op.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Spring sale" in html and "spring" in html and "one-off, when launched" in html
    assert 'data-variant="A"' in html and 'data-variant="B"' in html and "B subject" in html
    preview = html[html.index('data-section="preview"') :]
    assert "The audience is 8 customers." in preview
    # 8 customers, two without push consent (n = 0, 4).
    assert 'data-outcome="queued"' in preview and 'data-outcome="suppressed:no_consent"' in preview
    assert "suppressed · no consent" in preview
    assert f"Hi {customers[0].nickname}, spring sale!" in preview
    assert "Nothing sent yet." in html and "Not enough data yet." in html
    for action in ("launch", "cancel"):
        assert f'action="/campaigns/{campaign.pk}/{action}"' in html
    assert f'action="/campaigns/{campaign.pk}/pause"' not in html


def test_results_show_rates_revenue_roi_and_the_ab_verdict(op, audience, approved_template):
    customers, segment = audience
    campaign = _campaign(segment, cost="100.00")
    now = timezone.now()
    _deliveries(campaign, customers[:4], status="opened", delivered_at=now, opened_at=now)
    _deliveries(campaign, customers[4:8], status="delivered", variant="B", delivered_at=now)
    Delivery.objects.filter(campaign=campaign, variant__code="A", customer=customers[0]).update(
        converted_at=now, revenue="150.00"
    )
    Delivery.objects.filter(campaign=campaign, status="deferred").delete()
    html = op.get(f"/campaigns/{campaign.pk}/").content.decode()
    results = html[html.index('data-section="results"') :]
    row_a = results[results.index('data-variant="A"') :]
    assert '<td class="num" data-field="conversion-rate">25.0%</td>' in row_a[: row_a.index("</tr>")]
    assert "100.0%" in row_a[: row_a.index("</tr>")]  # opened: 4 of 4
    assert 'data-field="revenue">150.00<' in results and 'data-field="roi">50.0%<' in results
    assert 'data-ab="not_enough_data"' in results and "Not enough data yet: fewer than 200 sent" in results
    # With the minimum sample lowered by an admin, the test runs.
    cap_services.policy_save(data={"ab_min_sample": 2}, actor=None)
    html = op.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'data-ab="tested"' in html and "No significant difference yet (p = " in html


def test_counts_by_status_and_reason_are_labelled(op, audience, approved_template):
    customers, segment = audience
    campaign = _campaign(segment)
    _deliveries(campaign, customers[:2], status="deferred", reason="cap")
    _deliveries(campaign, customers[2:3], status="suppressed", reason="quiet_hours")
    html = op.get(f"/campaigns/{campaign.pk}/").content.decode()
    counts = html[html.index('data-section="counts"') :]
    assert 'data-reason="deferred:cap"><td>deferred · frequency cap</td><td class="num">2</td>' in counts
    assert "suppressed · quiet hours" in counts


def test_an_unknown_campaign_is_404(op):
    assert op.get("/campaigns/999999/").status_code == 404
    assert op.post("/campaigns/999999/launch").status_code == 404
    assert op.get("/campaigns/999999/edit").status_code == 404


# --- launch, pause, cancel ---------------------------------------------------------------


def test_launch_pause_resume_and_cancel(op, operator, audience, approved_template, django_capture_on_commit_callbacks):
    _customers, segment = audience
    campaign = _campaign(segment, start_at=timezone.now() + timedelta(days=1))
    url = f"/campaigns/{campaign.pk}/"
    response = op.post(f"{url}launch", follow=True)
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert "Spring sale launched: it is scheduled." in response.content.decode()
    assert AuditEntry.objects.filter(action="campaign.launch", actor=operator, object_id=str(campaign.pk)).exists()
    html = op.post(f"{url}pause", follow=True).content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "paused" and "Spring sale paused." in html and ">Resume</button>" in html
    with django_capture_on_commit_callbacks():
        op.post(f"{url}launch")
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    html = op.post(f"{url}cancel", follow=True).content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "cancelled" and "Spring sale cancelled." in html
    assert 'data-role="campaign-actions"' not in html


def test_a_refused_action_shows_the_reason_not_a_500(op, audience, approved_template):
    _customers, segment = audience
    campaign = campaign_services.campaign_cancel(campaign=_campaign(segment))
    response = op.post(f"/campaigns/{campaign.pk}/launch", follow=True)
    assert response.status_code == 200
    assert "A cancelled campaign cannot be launched." in response.content.decode()
    response = op.post(f"/campaigns/{campaign.pk}/pause", follow=True)
    assert "A cancelled campaign cannot be paused." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"


def test_a_launch_the_full_check_refuses_shows_why(op, audience, approved_template):
    """A draft with no audience saves, and is refused at launch with the reason."""
    campaign = campaign_services.campaign_create(
        data={"name": "Nobody", "channel": "push", "segments": []}, variants=[VariantSpec("A", 100, "promo")]
    )
    html = op.post(f"/campaigns/{campaign.pk}/launch", follow=True).content.decode()
    assert "Choose at least one segment to send to." in html
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_the_actions_take_post_only(op, audience, approved_template):
    _customers, segment = audience
    campaign = _campaign(segment)
    for action in ("launch", "pause", "cancel"):
        assert op.get(f"/campaigns/{campaign.pk}/{action}").status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_the_actions_need_the_csrf_token(operator, audience, approved_template):
    _customers, segment = audience
    campaign = _campaign(segment)
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(operator)
    assert client.post(f"/campaigns/{campaign.pk}/launch").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"


# --- edit --------------------------------------------------------------------------------


def test_a_draft_is_edited_through_the_service(op, operator, audience, approved_template):
    _customers, segment = audience
    campaign = _campaign(segment, schedule="recurring", cron="0 10 * * 1")
    html = op.get(f"/campaigns/{campaign.pk}/edit").content.decode()
    assert 'value="Spring sale"' in html and 'name="cron_weekday"' in html and 'value="1"' in html
    assert 'name="variants-TOTAL_FORMS"' not in html  # variants stay as they are
    data = _form(segment, name="Spring sale 2", schedule="recurring", cron_hour="11", cron_weekday="1")
    response = op.post(f"/campaigns/{campaign.pk}/edit", data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Spring sale 2" and campaign.cron == "0 11 * * 1"
    entry = AuditEntry.objects.get(action="campaign.update", object_id=str(campaign.pk))
    assert entry.actor == operator and entry.changes["name"] == ["Spring sale", "Spring sale 2"]
    response = op.post(f"/campaigns/{campaign.pk}/edit", data | {"schedule_timezone": "Nowhere/Else"})
    assert response.status_code == 400 and "Unknown timezone." in response.content.decode()


def test_a_running_campaign_is_paused_before_it_is_edited(op, audience, approved_template):
    _customers, segment = audience
    campaign = campaign_services.campaign_launch(
        campaign=_campaign(segment, start_at=timezone.now() + timedelta(days=1))
    )
    response = op.get(f"/campaigns/{campaign.pk}/edit", follow=True)
    assert "Pause the campaign before changing it." in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/campaigns/{campaign.pk}/"


# --- navigation --------------------------------------------------------------------------


def test_the_navigation_links_the_section_and_the_campaigns_tabs(op, make_user, audience, approved_template):
    _customers, segment = audience
    campaign = _campaign(segment)
    html = op.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'href="/campaigns/" class="active" aria-current="page">Campaigns</a>' in html  # the top bar
    areas = html[html.index('data-nav="campaigns"') :]
    assert 'href="/campaigns/new"' in areas[: areas.index("</nav>")]
    tabs = html[html.index('data-nav="campaign"') :]
    assert "Spring sale" in tabs and f'href="/campaigns/{campaign.pk}/edit"' in tabs
    assert 'data-nav="campaign"' not in op.get("/campaigns/999999/").content.decode()
    home = _client(make_user("community_manager")).get("/").content.decode()
    assert 'href="/campaigns/"' not in home
