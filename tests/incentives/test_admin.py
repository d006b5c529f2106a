"""The catalogue (earning rules, rewards, levels, badges) and the incentive policy:
admin saves, deletes and file imports go through ``incentives.services`` and leave
an audit row with each moved field as ``[from, to]`` (typed values, not text)."""

import pytest
import tablib
from django.db import models
from django.forms.models import model_to_dict
from django.test import Client

from core.models import AuditEntry
from incentives.models import Badge, EarningRule, IncentivePolicy, Level, Reward
from incentives.resources import BadgeResource, EarningRuleResource, LevelResource, RewardResource
from incentives.services import catalogue_save, policy_update

from .factories import seed_defaults

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


@pytest.fixture
def admin_user(make_user):
    return make_user("admin")


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def _post(obj: models.Model, **changes) -> dict:
    data = {}
    for name, value in {**model_to_dict(obj), **changes}.items():
        field = obj._meta.get_field(name)
        if isinstance(field, models.DateTimeField):
            data[f"{name}_0"], data[f"{name}_1"] = ("", "") if value is None else (value.date(), value.time())
        elif isinstance(field, models.BooleanField):
            if value:
                data[name] = "on"
        elif name != "id":
            data[name] = "" if value is None else value
    return data


def test_an_earning_rule_edit_is_audited_from_to(admin_client, admin_user):
    rule = EarningRule.objects.get(code="daily-checkin")
    r = admin_client.post(f"/admin/incentives/earningrule/{rule.pk}/change/", _post(rule, points=25, is_active=False))
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    rule.refresh_from_db()
    assert (rule.points, rule.is_active) == (25, False)
    entry = AuditEntry.objects.get(action="earningrule.change", object_id=str(rule.pk))
    assert entry.changes == {"points": [10, 25], "is_active": [True, False]}
    assert entry.actor_id == admin_user.pk


def test_a_catalogue_delete_in_the_admin_is_audited(admin_client):
    reward = catalogue_save(obj=Reward(name="Mug", points_price=100, stock=5))
    r = admin_client.post(f"/admin/incentives/reward/{reward.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Reward.objects.filter(pk=reward.pk).exists()
    entry = AuditEntry.objects.get(action="reward.delete", object_id=str(reward.pk))
    assert entry.changes["name"] == ["Mug", None] and entry.changes["points_price"] == [100, None]


def test_the_policy_edit_records_from_and_to(admin_client, admin_user):
    policy = IncentivePolicy.objects.get()
    r = admin_client.post(
        f"/admin/incentives/incentivepolicy/{policy.pk}/change/", _post(policy, reminder_days=45, level_grace_days=60)
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    policy.refresh_from_db()
    assert (policy.reminder_days, policy.level_grace_days) == (45, 60)
    entry = AuditEntry.objects.get(action="incentive_policy.change")
    assert entry.changes == {"reminder_days": [30, 45], "level_grace_days": [30, 60]}
    assert entry.actor_id == admin_user.pk


def test_the_policy_service_validates_and_skips_a_no_op():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        policy_update(level_downgrade_margin_pct=100)
    policy_update(reminder_days=30)  # unchanged
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("resource", "model", "headers", "row", "lookup", "moved"),
    [
        (
            EarningRuleResource,
            EarningRule,
            ["code", "name", "kind", "points"],
            ["daily-checkin", "Check-in", "checkin", 15],
            {"code": "daily-checkin"},
            {"points": [10, 15], "name": ["每日签到 Daily check-in", "Check-in"]},
        ),
        (
            LevelResource,
            Level,
            ["name", "threshold", "benefits"],
            ["Silver+", 1000, "More"],
            {"threshold": 1000},
            {"name": ["银卡 Silver", "Silver+"], "benefits": ["生日礼包 Birthday gift; 95折 5% off", "More"]},
        ),
        (
            BadgeResource,
            Badge,
            ["code", "name", "kind", "threshold"],
            ["invite-star-10", "Star", "invite_count", 12],
            {"code": "invite-star-10"},
            {"name": ["邀请达人 Invite Star", "Star"], "threshold": [10, 12]},
        ),
    ],
)
def test_a_catalogue_import_is_audited_like_an_admin_save(admin_user, resource, model, headers, row, lookup, moved):
    dataset = tablib.Dataset(headers=headers)
    dataset.append(row)
    result = resource(actor=admin_user).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors(), [r.error_dict for r in result.invalid_rows]
    obj = model.objects.get(**lookup)
    entry = AuditEntry.objects.get(action=f"{model._meta.model_name}.change", object_id=str(obj.pk))
    assert entry.changes == moved
    assert entry.actor_id == admin_user.pk


def test_a_reward_import_creates_through_the_service_and_the_preview_writes_nothing(admin_user):
    dataset = tablib.Dataset(headers=["id", "name", "points_price", "stock", "is_active"])
    dataset.append(["", "Tote bag", 300, 10, "1"])
    RewardResource(actor=admin_user).import_data(dataset, dry_run=True, use_transactions=True)
    assert not Reward.objects.exists() and not AuditEntry.objects.exists()
    result = RewardResource(actor=admin_user).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors()
    reward = Reward.objects.get()
    entry = AuditEntry.objects.get(action="reward.create")
    assert entry.object_id == str(reward.pk)
    assert entry.changes["name"] == [None, "Tote bag"] and entry.changes["points_price"] == [None, 300]


def test_the_admin_import_passes_the_operator_as_the_actor(admin_client, admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = b"code,name,kind,points\ndaily-checkin,Check-in,checkin,12\n"
    preview = admin_client.post(
        "/admin/incentives/earningrule/import/",
        {"import_file": SimpleUploadedFile("r.csv", content), "format": "0", "resource": "0"},
    )
    assert preview.status_code == 200 and preview.context["confirm_form"] is not None
    done = admin_client.post("/admin/incentives/earningrule/process_import/", preview.context["confirm_form"].initial)
    assert done.status_code == 302
    entry = AuditEntry.objects.get(action="earningrule.change")
    assert entry.changes["points"] == [10, 12] and entry.actor_id == admin_user.pk


@pytest.mark.parametrize("until", ["9999-12-31", "1969-12-31"])
def test_an_admin_date_time_outside_the_accepted_range_is_a_form_error(admin_client, until):
    """Every admin's date-time fields hold the API's range (core.admin_base): a reward
    "valid until 9999" would break the pages that show it in Shanghai time."""
    from datetime import datetime

    rule = EarningRule.objects.get(code="daily-checkin")
    data = _post(rule)
    data["active_until_0"], data["active_until_1"] = until, "23:59:59"
    r = admin_client.post(f"/admin/incentives/earningrule/{rule.pk}/change/", data)
    assert r.status_code == 200 and "active_until" in r.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.active_until is None or rule.active_until < datetime(2100, 1, 2).astimezone()
