"""Segments admin: rule sets are versioned (an edit is a new version, the old one
stays as it was), bad rule sets are refused with the reason, history is
read-only, custom segments are validated and materialised, definitions export
and import."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import tablib
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from segments import services
from segments.admin import SegmentResource
from segments.forms import RuleSetAdminForm
from segments.models import RuleSet, Segment, SegmentMembership, SegmentRun, StageChange
from tests.users.factories import CustomerFactory, OrderFactory
from users.models import CustomerTag

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("admin"))
    return client


def rule_set_post(rule_set: RuleSet, **changes) -> dict:
    data = model_to_dict(rule_set, fields=RuleSetAdminForm._meta.fields)
    data.update(changes)
    return {
        k: json.dumps(v) if k in ("rfm_groups", "rfm_segments") else ("" if v is None else v) for k, v in data.items()
    }


def test_editing_a_rule_set_creates_version_2_and_leaves_version_1_unchanged(admin_client):
    v1 = RuleSet.objects.get(version=1)
    before = model_to_dict(v1)
    url = reverse("admin:segments_ruleset_change", args=[v1.pk])
    response = admin_client.post(url, rule_set_post(v1, rfm_window_days=180, note="half a year"), **EN)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RuleSet.objects.count() == 2
    v2 = RuleSet.objects.get(version=2)
    assert v2.rfm_window_days == 180 and v2.note == "half a year" and v2.is_active
    assert v2.created_by is not None and v2.created_by.username == "admin-user"
    assert v2.clv_horizon_days == v1.clv_horizon_days and v2.rfm_groups == v1.rfm_groups
    v1.refresh_from_db()
    assert {k: v for k, v in model_to_dict(v1).items() if k != "is_active"} == {
        k: v for k, v in before.items() if k != "is_active"
    }
    assert not v1.is_active
    assert services.rule_set_active() == v2


def test_old_versions_are_view_only(admin_client):
    v1 = RuleSet.objects.get(version=1)
    admin_client.post(reverse("admin:segments_ruleset_change", args=[v1.pk]), rule_set_post(v1, new_days=14))
    page = admin_client.get(reverse("admin:segments_ruleset_change", args=[v1.pk]), **EN)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    again = admin_client.post(reverse("admin:segments_ruleset_change", args=[v1.pk]), rule_set_post(v1, new_days=7))
    assert again.status_code == 403
    assert RuleSet.objects.count() == 2 and RuleSet.objects.get(version=1).new_days == 30
    assert admin_client.post(reverse("admin:segments_ruleset_delete", args=[v1.pk]), {"post": "yes"}).status_code == 403


def test_saving_without_changes_makes_no_version(admin_client):
    v1 = RuleSet.objects.get(version=1)
    response = admin_client.post(reverse("admin:segments_ruleset_change", args=[v1.pk]), rule_set_post(v1), **EN)
    assert response.status_code == 302
    assert RuleSet.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rfm_window_days": 0}, "The RFM window must be at least 1 day."),
        ({"tier_normal_monthly": "3000", "tier_active_monthly": "2000"}, "tiers overlap"),
        ({"rfm_groups": [{"code": "x", "r": [4, 9], "f": [1, 5], "m": [1, 5]}]}, "must be [low, high]"),
    ],
)
def test_a_rule_set_that_makes_no_sense_is_refused_with_the_reason(admin_client, changes, message):
    v1 = RuleSet.objects.get(version=1)
    response = admin_client.post(
        reverse("admin:segments_ruleset_change", args=[v1.pk]), rule_set_post(v1, **changes), **EN
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "errorlist" in html and message in html.replace("&#x27;", "'")
    assert RuleSet.objects.count() == 1
    assert RuleSet.objects.get(version=1).rfm_window_days == 365


def test_adding_a_rule_set_goes_through_the_service_as_the_next_version(admin_client):
    v1 = RuleSet.objects.get(version=1)
    response = admin_client.post(
        reverse("admin:segments_ruleset_add"), rule_set_post(v1, mature_min_orders=4, note="stricter mature")
    )
    assert response.status_code == 302
    new = RuleSet.objects.get(version=2)
    assert new.mature_min_orders == 4 and new.is_active
    assert not RuleSet.objects.get(version=1).is_active


# --- history is read-only -----------------------------------------------------------------------


@pytest.fixture
def scored(db):
    now = timezone.now()
    for i in range(6):
        c = CustomerFactory(external_id=f"ad-{i}", signup_at=now - timedelta(days=300))
        for k in range(i + 1):
            OrderFactory(customer=c, amount=Decimal(50 * (i + 1)), occurred_at=now - timedelta(days=2 + 7 * k))
    CustomerTag.objects.create(customer=c, tag="vip")
    return services.recompute_sync()


def test_runs_and_stage_changes_are_read_only(admin_client, scored):
    run_url = reverse("admin:segments_segmentrun_change", args=[scored.pk])
    page = admin_client.get(run_url, **EN)
    assert page.status_code == 200
    html = page.content.decode()
    assert "model_fit" in html and 'name="_save"' not in html  # phases shown, nothing to save
    assert admin_client.post(run_url, {"status": "failed"}).status_code == 403
    assert SegmentRun.objects.get(pk=scored.pk).status == SegmentRun.Status.PUBLISHED
    assert admin_client.get(reverse("admin:segments_segmentrun_add")).status_code == 403
    change = StageChange.objects.first()
    assert admin_client.post(reverse("admin:segments_stagechange_change", args=[change.pk]), {}).status_code == 403
    listing = admin_client.get(reverse("admin:segments_stagechange_changelist"), {"to_stage": change.to_stage}, **EN)
    assert listing.status_code == 200 and "ad-" in listing.content.decode()
    assert (
        admin_client.get(reverse("admin:segments_segmentsizesnapshot_changelist"), {"q": "stage:"}).status_code == 200
    )


# --- custom segments ----------------------------------------------------------------------------


def test_admin_segment_with_a_bad_definition_is_refused(admin_client, scored):
    response = admin_client.post(
        reverse("admin:segments_segment_add"),
        {
            "name": "Broken",
            "slug": "broken",
            "description": "",
            "kind": "dynamic",
            "is_active": "on",
            "definition": json.dumps({"op": "and", "conditions": [{"field": "nope", "op": "eq", "value": 1}]}),
        },
        **EN,
    )
    assert response.status_code == 200
    assert "definition.conditions[0].field" in response.content.decode()
    assert not Segment.objects.exists()


def test_admin_segment_is_saved_through_the_service_and_materialised(admin_client, scored):
    response = admin_client.post(
        reverse("admin:segments_segment_add"),
        {
            "name": "Tagged",
            "slug": "tagged",
            "description": "",
            "kind": "dynamic",
            "is_active": "on",
            "definition": json.dumps({"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}),
        },
    )
    assert response.status_code == 302
    segment = Segment.objects.get(slug="tagged")
    assert segment.size == 1
    assert list(SegmentMembership.objects.filter(segment=segment).values_list("customer__external_id", flat=True)) == [
        "ad-5"
    ]


def test_segment_definitions_export_and_import(admin_client, scored):
    Segment.objects.create(slug="placeholder", name="Placeholder", kind=Segment.Kind.STATIC)
    export = admin_client.post(
        reverse("admin:segments_segment_export"),
        {"format": "0", "resource": "0", "segmentresource_slug": "on", "segmentresource_definition": "on"},
    )
    assert export.status_code == 200
    assert "placeholder" in export.content.decode()

    dataset = tablib.Dataset(headers=["slug", "name", "description", "kind", "definition", "is_active"])
    dataset.append(
        [
            "big-spenders",
            "Big spenders",
            "",
            "dynamic",
            json.dumps({"op": "and", "conditions": [{"field": "orders", "op": "gte", "value": 5}]}),
            "1",
        ]
    )
    result = SegmentResource().import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors()
    segment = Segment.objects.get(slug="big-spenders")
    assert set(segment.memberships.values_list("customer__external_id", flat=True)) == {"ad-4", "ad-5"}

    bad = tablib.Dataset(headers=["slug", "name", "description", "kind", "definition", "is_active"])
    bad.append(["bad-one", "Bad", "", "dynamic", json.dumps({"op": "xor", "conditions": []}), "1"])
    result = SegmentResource().import_data(
        bad, dry_run=False, use_transactions=True, rollback_on_validation_errors=True
    )
    assert result.has_validation_errors()
    assert not Segment.objects.filter(slug="bad-one").exists()


def _static_segment() -> Segment:
    from segments.services import static_segment_upload

    CustomerFactory(external_id="st-1")
    return static_segment_upload(name="Imported list", file_bytes=b"external_id\nst-1\n", slug="imported")


def test_a_static_segment_edit_goes_through_the_service_with_from_to(admin_client):
    from core.models import AuditEntry

    segment = _static_segment()
    r = admin_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {"name": "Renamed list", "description": "", "definition": "{}"},
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    segment.refresh_from_db()
    assert (segment.name, segment.is_active, segment.size) == ("Renamed list", False, 1)
    entry = AuditEntry.objects.get(action="segment.change", object_id=str(segment.pk))
    assert entry.changes == {"name": ["Imported list", "Renamed list"], "is_active": [True, False]}
    upload = AuditEntry.objects.get(action="segment.static_upload")
    assert upload.changes["size"] == [0, 1]


def test_switching_a_dynamic_segment_off_is_audited(admin_client, scored):
    from core.models import AuditEntry
    from segments.services import segment_save

    definition = {"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
    segment = segment_save(name="Tagged", definition=definition)
    r = admin_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {"name": "Tagged", "description": "", "definition": json.dumps(definition)},
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    assert Segment.objects.get(pk=segment.pk).is_active is False
    entry = AuditEntry.objects.get(action="segment.change", object_id=str(segment.pk))
    assert entry.changes == {"is_active": [True, False]}
    created = AuditEntry.objects.get(action="segment.create")
    assert created.changes["definition"] == [None, definition]


def test_a_segment_import_edits_a_static_segment_through_the_service(make_user):
    from core.models import AuditEntry

    segment = _static_segment()
    dataset = tablib.Dataset(headers=["slug", "name", "description", "kind", "definition", "is_active"])
    dataset.append(["imported", "Imported list", "From the CRM", "static", "{}", "0"])
    result = SegmentResource(actor=make_user("admin")).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors(), [r.error_dict for r in result.invalid_rows]
    segment.refresh_from_db()
    assert (segment.description, segment.is_active, segment.size) == ("From the CRM", False, 1)
    entry = AuditEntry.objects.get(action="segment.change", object_id=str(segment.pk))
    assert entry.changes == {"description": ["", "From the CRM"], "is_active": [True, False]}
    assert entry.actor_label == "admin-user"


def test_an_import_cannot_turn_a_static_segment_into_a_dynamic_one(make_user):
    segment = _static_segment()
    members = list(segment.memberships.values_list("customer_id", flat=True))
    dataset = tablib.Dataset(headers=["slug", "name", "description", "kind", "definition", "is_active"])
    dataset.append([segment.slug, segment.name, "", "dynamic", '{"field": "city", "op": "eq", "value": "x"}', "1"])
    result = SegmentResource(actor=make_user("admin")).import_data(dataset, dry_run=False, use_transactions=True)
    assert result.has_errors() or result.has_validation_errors()
    segment.refresh_from_db()
    assert segment.kind == "static" and segment.definition == {}
    assert list(segment.memberships.values_list("customer_id", flat=True)) == members
