"""The contact policy's write path (``campaigns.services.caps``): caps and the policy
knobs are checked, written and audited from → to; a refused value names its field and
writes nothing; what is saved is what the send pipeline then reads."""

from datetime import time
from decimal import Decimal

import pytest

from campaigns.models import CapRule, ContactPolicy
from campaigns.selectors.policy import cap_rules, policy_settings
from campaigns.services import caps
from campaigns.services.policy import policy_load
from core.errors import ApplicationError
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

DAY = 86400


def _cap(**overrides) -> dict:
    windows = [{"seconds": 7 * DAY, "limit": 2}]
    return {"code": "email-weekly", "name": "Email weekly", "channel": "email", "windows": windows} | overrides


def test_a_cap_is_created_audited_and_read_by_the_policy(make_user):
    admin = make_user("admin")
    cap = caps.cap_save(
        cap=None, data=_cap(windows=[{"seconds": 7 * DAY, "limit": 2}, {"seconds": DAY, "limit": 1}]), actor=admin
    )
    assert cap.pk and cap.windows == [{"seconds": DAY, "limit": 1}, {"seconds": 7 * DAY, "limit": 2}]  # shortest first
    entry = AuditEntry.objects.get(action="cap.create", object_id=str(cap.pk))
    assert entry.actor == admin and entry.changes["code"] == [None, "email-weekly"]
    loaded = next(c for c in cap_rules() if c.code == "email-weekly")
    assert loaded.channel == "email" and [(w.seconds, w.limit) for w in loaded.windows] == [(DAY, 1), (7 * DAY, 2)]


def test_a_cap_change_is_audited_from_what_was_stored(make_user):
    admin = make_user("admin")
    cap = CapRule.objects.get(code="push-3-7")
    cap.name = "changed by a form, not saved"  # the admin fills the instance before saving
    caps.cap_save(
        cap=cap, data={"windows": [{"seconds": 3 * 3600, "limit": 1}, {"seconds": DAY, "limit": 5}]}, actor=admin
    )
    cap.refresh_from_db()
    assert cap.windows[1] == {"seconds": DAY, "limit": 5}
    assert cap.name.startswith("App push 3-7")  # what data left out stays as stored
    entry = AuditEntry.objects.get(action="cap.update", object_id=str(cap.pk))
    assert set(entry.changes) == {"windows"}
    assert entry.changes["windows"][0][1] == {"seconds": DAY, "limit": 7}


def test_switching_a_cap_off_takes_it_out_of_the_policy(make_user):
    cap = CapRule.objects.get(code="all-channels-daily")
    caps.cap_save(cap=cap, data={"is_active": False}, actor=make_user("admin"))
    assert "all-channels-daily" not in {c.code for c in policy_load().caps}


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"windows": []}, "windows", "invalid_windows"),
        ({"windows": "3-7"}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": DAY, "limit": 1}] * 11}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": 0, "limit": 1}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": -5, "limit": 1}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": 367 * DAY, "limit": 1}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": DAY, "limit": 0}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": DAY, "limit": 1.5}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": True, "limit": 1}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": DAY}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": DAY, "limit": 1, "extra": 2}]}, "windows", "invalid_windows"),
        ({"windows": [{"seconds": DAY, "limit": 1}, {"seconds": DAY, "limit": 3}]}, "windows", "invalid_windows"),
        ({"windows": ["86400/1"]}, "windows", "invalid_windows"),
        ({"code": "has spaces"}, "code", "invalid_code"),
        ({"code": ""}, "code", "invalid_code"),
        ({"code": "x" * 65}, "code", "invalid_code"),
        ({"code": "push-3-7"}, "code", "duplicate_code"),
        ({"channel": "pigeon"}, "channel", "unknown_channel"),
        ({"content_class": "gossip"}, "content_class", "invalid_content_class"),
        ({"is_active": "yes"}, "is_active", "invalid_active"),
        ({"name": "n" * 101}, "name", "invalid_name"),
        ({"colour": "red"}, None, "unknown_fields"),
    ],
)
def test_a_bad_cap_is_refused_with_its_field_and_nothing_is_written(make_user, data, field, code):
    before = CapRule.objects.count()
    with pytest.raises(ApplicationError) as refused:
        caps.cap_save(cap=None, data=_cap(**data), actor=make_user("admin"))
    assert refused.value.code == code and refused.value.details.get("field") == field
    assert refused.value.status_code == 422 and refused.value.message
    assert CapRule.objects.count() == before and not AuditEntry.objects.filter(action__startswith="cap.").exists()


def test_whole_numbers_typed_as_text_are_taken():
    cap = caps.cap_save(cap=None, data=_cap(windows=[{"seconds": "86400", "limit": "2"}]), actor=None)
    assert cap.windows == [{"seconds": DAY, "limit": 2}]


def test_a_blank_name_is_the_code():
    assert caps.cap_save(cap=None, data=_cap(name="  "), actor=None).name == "email-weekly"


def test_the_policy_knobs_are_saved_and_audited(make_user):
    admin = make_user("admin")
    policy = caps.policy_save(
        data={
            "quiet_start": "21:30",
            "quiet_end": time(7, 0),
            "backoff_after": 5,
            "backoff_factor": "0.25",
            "ab_min_sample": 50,
        },
        actor=admin,
    )
    stored = policy_settings()
    assert stored.pk == policy.pk and ContactPolicy.objects.count() == 1
    assert (stored.quiet_start, stored.quiet_end) == (time(21, 30), time(7, 0))
    assert (stored.backoff_after, stored.backoff_factor, stored.ab_min_sample) == (5, Decimal("0.25"), 50)
    entry = AuditEntry.objects.get(action="policy.update")
    assert entry.actor == admin
    assert entry.changes["backoff_after"] == [3, 5] and entry.changes["quiet_start"] == ["22:00:00", "21:30:00"]
    loaded = policy_load()
    assert loaded.backoff_after == 5 and loaded.backoff_factor == 0.25 and loaded.quiet_start == time(21, 30)


def test_a_missing_policy_row_is_written_with_its_defaults():
    ContactPolicy.objects.all().delete()
    policy = caps.policy_save(data={"backoff_after": 4}, actor=None)
    assert ContactPolicy.objects.get().backoff_after == 4 and policy.quiet_start == time(22, 0)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"quiet_start": "25:00"}, "quiet_start"),
        ({"quiet_end": "noon"}, "quiet_end"),
        ({"backoff_after": 0}, "backoff_after"),
        ({"backoff_after": 21}, "backoff_after"),
        ({"backoff_after": True}, "backoff_after"),
        ({"backoff_factor": "0.05"}, "backoff_factor"),
        ({"backoff_factor": "1.5"}, "backoff_factor"),
        ({"backoff_factor": "NaN"}, "backoff_factor"),
        ({"backoff_factor": "half"}, "backoff_factor"),
        ({"ab_min_sample": 0}, "ab_min_sample"),
        ({"ab_min_sample": 2_000_000}, "ab_min_sample"),
        ({"quiet": "on"}, None),
    ],
)
def test_a_bad_policy_value_is_refused_and_nothing_changes(data, field):
    with pytest.raises(ApplicationError) as refused:
        caps.policy_save(data=data, actor=None)
    assert refused.value.details.get("field") == field
    stored = policy_settings()
    assert (stored.backoff_after, stored.backoff_factor, stored.ab_min_sample) == (3, Decimal("0.50"), 200)
    assert not AuditEntry.objects.filter(action="policy.update").exists()
