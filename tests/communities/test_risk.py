"""Risk members: the graded handling (warn → mute → remove) with its escalation window,
the refusals that write nothing, who may act, the group's pages, the 360 page's record
and the community settings admin."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from communities.models import CommunityGroup, CommunitySettings, Membership, RiskAction, RiskStep
from communities.selectors import risk as risk_selectors
from communities.selectors.settings import settings_get
from communities.services import groups as group_services
from communities.services import risk as risk_services
from core.errors import ApplicationError, NotFound
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

WARN, MUTE, REMOVE = RiskStep.WARN, RiskStep.MUTE, RiskStep.REMOVE


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def managers(make_user):
    return make_user("community_manager", "mgr-one"), make_user("community_manager", "mgr-two")


@pytest.fixture
def group(managers):
    return group_services.group_save(
        group=CommunityGroup(code="runners", name="跑步群", owner=managers[0]), actor=managers[0]
    )


@pytest.fixture
def member(group):
    customer = CustomerFactory(external_id="spammer-1", nickname="广告哥")
    group_services.member_join(group=group, customer=customer, joined_at=timezone.now() - timedelta(days=90))
    return customer


def _act(group, customer, step, actor, **kw):
    return risk_services.risk_action_record(
        group=group,
        customer=customer,
        requested_step=step,
        reason=kw.pop("reason", "marketing"),
        note=kw.pop("note", "posted a QR code for a casino"),
        actor=actor,
        **kw,
    )


def _age(action: RiskAction, days: float) -> None:
    """Moves a recorded action back in time (the record has no other way to be old)."""
    RiskAction.objects.filter(pk=action.pk).update(at=action.at - timedelta(days=days))


# --- escalation -------------------------------------------------------------------


def test_repeats_within_the_window_escalate_warn_mute_remove(group, member, managers):
    owner = managers[0]
    first = _act(group, member, WARN, owner)
    second = _act(group, member, WARN, owner, mute_minutes=60)
    third = _act(group, member, WARN, owner)
    assert [(a.requested_step, a.step) for a in (first, second, third)] == [(WARN, WARN), (WARN, MUTE), (WARN, REMOVE)]
    assert first.mute_until is None and third.mute_until is None
    assert second.mute_until - second.at == timedelta(minutes=60)
    span = Membership.objects.get(group=group, customer=member)
    assert span.left_at == third.at
    assert span.left_reason == f"risk:marketing #{third.pk}"
    # Rejoined and caught again within the window: remove stays remove.
    group_services.member_join(group=group, customer=member)
    fourth = _act(group, member, WARN, owner)
    assert (fourth.requested_step, fourth.step) == (WARN, REMOVE)
    assert Membership.objects.filter(group=group, customer=member, left_at__isnull=True).count() == 0


def test_actions_outside_the_window_do_not_escalate(group, member, managers):
    assert settings_get().risk_repeat_days == 30
    old = _act(group, member, MUTE, managers[0], mute_minutes=10)
    _age(old, 31)
    again = _act(group, member, WARN, managers[0])
    assert again.step == WARN
    _age(again, 29)  # 29 days ago: inside the window, and the highest recent step is warn
    assert _act(group, member, WARN, managers[0], mute_minutes=10).step == MUTE


def test_the_window_is_the_admin_set_one(group, member, managers):
    CommunitySettings.objects.update_or_create(pk=1, defaults={"risk_repeat_days": 7})
    first = _act(group, member, WARN, managers[0])
    _age(first, 8)
    assert _act(group, member, WARN, managers[0]).step == WARN


def test_asked_for_less_than_the_floor_applies_the_floor_and_more_is_honoured(group, member, managers):
    muted = _act(group, member, MUTE, managers[0], mute_minutes=30)
    assert (muted.requested_step, muted.step) == (MUTE, MUTE)
    removed = _act(group, member, WARN, managers[0])  # the floor after a mute is remove
    assert (removed.requested_step, removed.step) == (WARN, REMOVE)
    other = CustomerFactory()
    group_services.member_join(group=group, customer=other)
    on_sight = _act(group, other, REMOVE, managers[0], reason="abuse")
    assert (on_sight.requested_step, on_sight.step) == (REMOVE, REMOVE)


def test_repeats_count_per_group(group, member, managers):
    other_group = group_services.group_save(
        group=CommunityGroup(code="swimmers", name="游泳群", owner=managers[0]), actor=managers[0]
    )
    group_services.member_join(group=other_group, customer=member)
    _act(group, member, WARN, managers[0])
    assert _act(other_group, member, WARN, managers[0]).step == WARN


def test_the_record_keeps_who_when_why_and_an_audit_row(group, member, managers):
    action = _act(group, member, MUTE, managers[0], mute_minutes=24 * 60, reason="abuse", note="  insulted a member ")
    stored = RiskAction.objects.get(pk=action.pk)
    assert (stored.actor, stored.reason, stored.note) == (managers[0], "abuse", "insulted a member")
    assert abs(stored.at - timezone.now()) < timedelta(seconds=30)
    entry = AuditEntry.objects.get(action="risk_action.record", object_id=str(action.pk))
    assert entry.actor == managers[0]
    assert entry.changes["step"] == [None, "mute"]
    assert entry.changes["customer"] == [None, "spammer-1"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_operators_acting_at_once_are_put_in_order_and_the_second_escalates(group, member, managers):
    """The member's open span is locked while the record is written: without the lock
    both would read "no earlier action" and both would warn."""
    start = threading.Barrier(2)
    steps, errors = [], []

    def act():
        try:
            start.wait(timeout=10)
            steps.append(_act(group, member, WARN, managers[0], mute_minutes=10).step)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=act) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(steps) == ["mute", "warn"]


# --- refusals write nothing -------------------------------------------------------


def test_a_non_member_is_refused(group, managers):
    stranger = CustomerFactory()
    with pytest.raises(ApplicationError) as exc:
        _act(group, stranger, WARN, managers[0])
    assert exc.value.code == "not_member"
    left = CustomerFactory()
    group_services.member_join(group=group, customer=left, joined_at=timezone.now() - timedelta(days=2))
    group_services.member_leave(group=group, customer=left)
    with pytest.raises(ApplicationError) as exc:
        _act(group, left, WARN, managers[0])
    assert exc.value.code == "not_member"
    assert RiskAction.objects.count() == 0
    assert not AuditEntry.objects.filter(action="risk_action.record").exists()


def test_a_mute_without_a_duration_is_refused_also_when_a_warning_escalates(group, member, managers):
    with pytest.raises(ApplicationError) as exc:
        _act(group, member, MUTE, managers[0])
    assert exc.value.code == "mute_duration_required"
    assert RiskAction.objects.count() == 0
    _act(group, member, WARN, managers[0])
    with pytest.raises(ApplicationError) as exc:
        _act(group, member, WARN, managers[0])
    assert exc.value.code == "mute_duration_required"
    assert exc.value.details["step"] == ["mute"]
    assert list(RiskAction.objects.values_list("step", flat=True)) == ["warn"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"mute_minutes": 0}, "mute_minutes"),
        ({"mute_minutes": 31 * 24 * 60}, "mute_until"),
        ({"mute_until": "past"}, "mute_until"),
        ({"mute_minutes": 10, "mute_until": "future"}, "mute_until"),
    ],
)
def test_a_bad_mute_duration_is_refused(group, member, managers, kw, field):
    now = timezone.now()
    if kw.get("mute_until") == "past":
        kw["mute_until"] = now - timedelta(minutes=1)
    elif kw.get("mute_until") == "future":
        kw["mute_until"] = now + timedelta(hours=1)
    with pytest.raises(ApplicationError) as exc:
        _act(group, member, MUTE, managers[0], **kw)
    assert field in exc.value.details
    assert RiskAction.objects.count() == 0


def test_an_unknown_reason_or_step_or_a_blank_note_is_refused(group, member, managers):
    for kw, field in [({"reason": "ugly"}, "reason"), ({"note": "   "}, "note"), ({"note": "x" * 501}, "note")]:
        with pytest.raises(ApplicationError) as exc:
            _act(group, member, WARN, managers[0], **kw)
        assert field in exc.value.details
    with pytest.raises(ApplicationError) as exc:
        _act(group, member, "ban", managers[0])
    assert "requested_step" in exc.value.details
    assert RiskAction.objects.count() == 0
    assert Membership.objects.get(group=group, customer=member).left_at is None


# --- who may act ------------------------------------------------------------------


def test_group_admins_act_only_with_the_right_and_a_second_manager_not_at_all(group, member, managers, make_user):
    owner, second = managers
    helper = make_user("group_admin", "core-member")
    group_services.staff_grant(group=group, user=helper, actor=owner, can_post=True)
    with pytest.raises(ApplicationError) as exc:
        _act(group, member, WARN, helper)
    assert exc.value.status_code == 403
    with pytest.raises(NotFound) as exc:
        _act(group, member, WARN, second)
    assert exc.value.code == "unknown_group"
    assert RiskAction.objects.count() == 0
    group_services.staff_grant(group=group, user=helper, actor=owner, can_handle_risk=True)
    assert _act(group, member, WARN, helper).actor == helper


# --- selectors --------------------------------------------------------------------


def test_muted_now_lists_open_members_with_the_latest_end(group, member, managers):
    short = _act(group, member, MUTE, managers[0], mute_minutes=10)
    other = CustomerFactory()
    group_services.member_join(group=group, customer=other)
    expired = _act(group, other, MUTE, managers[0], mute_minutes=10)
    RiskAction.objects.filter(pk=expired.pk).update(mute_until=timezone.now() - timedelta(minutes=1))
    assert risk_selectors.group_muted_members(group=group) == [{"customer": member, "mute_until": short.mute_until}]
    _act(group, member, WARN, managers[0])  # after a mute the floor is remove: the member is gone
    assert risk_selectors.group_muted_members(group=group) == []


def test_the_risk_members_summary_has_one_row_per_member_in_one_query(
    group, member, managers, django_assert_num_queries
):
    owner = managers[0]
    old = _act(group, member, WARN, owner)
    _age(old, 40)
    muted = _act(group, member, MUTE, owner, mute_minutes=60)
    gone = CustomerFactory(external_id="gone")
    group_services.member_join(group=group, customer=gone)
    _act(group, gone, REMOVE, owner, reason="abuse")
    with django_assert_num_queries(2):  # the summary, then the customers
        rows = risk_selectors.group_risk_members(group=group, window_days=30)
    assert [
        (r["customer"].external_id, r["actions"], r["recent"], r["last_step"], r["next_step"], r["in_group"])
        for r in rows
    ] == [("gone", 1, 1, "remove", "remove", False), ("spammer-1", 2, 1, "mute", "remove", True)]
    assert rows[1]["muted_until"] == muted.mute_until and rows[0]["muted_until"] is None


def test_customer_risk_actions_is_one_query_and_shows_only_visible_groups(
    group, member, managers, make_user, django_assert_num_queries
):
    owner, second = managers
    _act(group, member, WARN, owner)
    theirs = group_services.group_save(
        group=CommunityGroup(code="second", name="second's group", owner=second), actor=second
    )
    other = CustomerFactory()
    for customer in (member, other):
        group_services.member_join(group=theirs, customer=customer)
    _act(theirs, member, WARN, second)
    _act(theirs, other, REMOVE, second, reason="abuse")
    viewer = make_user("viewer", "reader")
    viewer.has_perm("communities.view_riskaction")  # the permission cache is filled before counting
    with django_assert_num_queries(1):
        seen = risk_selectors.customer_risk_actions(customer_ids=[member.pk, other.pk], viewer=viewer)
        assert {cid: [(a.group.code, a.step) for a in rows] for cid, rows in seen.items()} == {
            member.pk: [("second", "warn"), ("runners", "warn")],
            other.pk: [("second", "remove")],
        }
    by_owner = risk_selectors.customer_risk_actions(customer_ids=[member.pk, other.pk], viewer=owner)
    assert {cid: [a.group.code for a in rows] for cid, rows in by_owner.items()} == {member.pk: ["runners"]}
    # A group admin reads the record of the groups where they may handle risk members only.
    helper = make_user("group_admin", "core-member")
    group_services.staff_grant(group=group, user=helper, actor=owner, can_post=True)
    assert risk_selectors.customer_risk_actions(customer_ids=[member.pk], viewer=helper) == {}
    group_services.staff_grant(group=group, user=helper, actor=owner, can_handle_risk=True)
    by_helper = risk_selectors.customer_risk_actions(customer_ids=[member.pk], viewer=helper)
    assert [a.group.code for a in by_helper[member.pk]] == ["runners"]


# --- pages ------------------------------------------------------------------------


def _post(client, group, follow=False, **data):
    form = {"customer": "spammer-1", "requested_step": "warn", "reason": "marketing", "note": "spam", **data}
    return client.post(reverse("communities:risk-act", args=[group.pk]), form, follow=follow)


def test_the_list_shows_the_record_the_escalation_and_who_is_muted(group, member, managers):
    owner = managers[0]
    _act(group, member, WARN, owner)
    response = _client(owner).get(reverse("communities:group-risk", args=[group.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "2nd within 30 days: at least mute." in html
    members = html[html.index('data-table="risk-members"') : html.index('data-section="risk-record"')]
    assert 'data-customer="spammer-1"' in members
    assert "at least mute" in members  # this member's next step
    assert "posted a QR code for a casino" in html


def test_the_pages_speak_chinese(group, member, managers):
    _act(group, member, WARN, managers[0])
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(managers[0])
    listing = client.get(reverse("communities:group-risk", args=[group.pk])).content.decode()
    assert "30 天内第 2 次：至少禁言。" in listing and "有处理记录的成员" in listing
    form = client.get(reverse("communities:risk-act", args=[group.pk]), {"customer": "spammer-1"}).content.decode()
    assert "最近 30 天内已被处理过" in form and "禁言时长" in form


def test_the_form_records_escalates_and_shows_refusals_on_the_field(group, member, managers):
    client = _client(managers[0])
    page = client.get(reverse("communities:risk-act", args=[group.pk]), {"customer": "spammer-1"})
    assert page.status_code == 200
    assert "the step you choose applies" in page.content.decode()
    assert _post(client, group).status_code == 302
    refused = _post(client, group)  # a repeat: escalates to mute, which needs a duration
    assert refused.status_code == 200
    assert "mute_minutes" in refused.context["form"].errors
    assert "escalates to a mute" in refused.context["form"].errors["mute_minutes"][0]
    done = _post(client, group, mute_minutes="60", follow=True)
    assert "escalated from warn to mute" in done.content.decode()
    assert list(RiskAction.objects.order_by("at").values_list("step", flat=True)) == ["warn", "mute"]
    unknown = _post(client, group, customer="nobody", reason="ugly")
    assert set(unknown.context["form"].errors) == {"customer", "reason"}
    stranger = CustomerFactory(external_id="stranger")
    not_member = _post(client, group, customer=stranger.external_id)
    assert "not a member" in not_member.context["form"].errors["customer"][0]
    assert RiskAction.objects.count() == 2


def test_remove_from_the_form_closes_the_membership(group, member, managers):
    response = _post(_client(managers[0]), group, requested_step="remove", reason="abuse")
    assert response.status_code == 302
    assert Membership.objects.get(group=group, customer=member).left_at is not None


def test_page_rights_group_admin_viewer_and_second_manager(group, member, managers, make_user):
    owner, second = managers
    helper = make_user("group_admin", "core-member")
    group_services.staff_grant(group=group, user=helper, actor=owner, can_post=True)
    viewer = make_user("viewer", "reader")
    pages = [reverse("communities:group-risk", args=[group.pk]), reverse("communities:risk-act", args=[group.pk])]
    for url in pages:
        assert _client(second).get(url).status_code == 404
        assert _client(helper).get(url).status_code == 403
    assert _post(_client(second), group).status_code == 404
    assert _post(_client(helper), group).status_code == 403
    assert _client(viewer).get(pages[0]).status_code == 200  # viewers read every group
    assert _client(viewer).get(pages[1]).status_code == 403
    assert _post(_client(viewer), group).status_code == 403
    assert RiskAction.objects.count() == 0
    group_services.staff_grant(group=group, user=helper, actor=owner, can_handle_risk=True)
    assert _client(helper).get(pages[1]).status_code == 200
    assert _post(_client(helper), group).status_code == 302
    assert RiskAction.objects.get().actor == helper
    for url in pages:
        assert Client().get(url).status_code == 302


def test_the_360_page_shows_the_record(group, member, managers, make_user):
    _act(group, member, WARN, managers[0])
    _act(group, member, WARN, managers[0], mute_minutes=60, reason="abuse", note="came back with more ads")
    url = reverse("users:detail", args=[member.external_id])
    html = _client(make_user("operator", "op")).get(url).content.decode()
    panel = html[html.index('data-section="risk-record"') :]
    assert "跑步群" in panel and "mgr-one" in panel and "came back with more ads" in panel
    assert "abuse / harassment" in panel and "escalated" in panel
    # The second manager sees the customer but nothing of the first one's group.
    other = _client(managers[1]).get(url).content.decode()
    assert "跑步群" not in other
    assert "No risk-member action on record." in other


# --- the settings admin -----------------------------------------------------------


def _admin(make_user) -> Client:
    return _client(make_user("admin", "boss"))


SETTINGS_URL = "/admin/communities/communitysettings/"


def test_the_settings_admin_is_one_row_without_add_or_delete(make_user):
    client = _admin(make_user)
    assert client.get(f"{SETTINGS_URL}add/").status_code == 200
    row = settings_get()
    assert client.get(f"{SETTINGS_URL}add/").status_code == 403
    assert client.get(f"{SETTINGS_URL}{row.pk}/delete/").status_code == 403
    response = client.post(
        f"{SETTINGS_URL}{row.pk}/change/",
        {"ticket_severity": 5, "incident_window_minutes": 15, "risk_repeat_days": 14},
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.ticket_severity, row.incident_window_minutes, row.risk_repeat_days) == (5, 15, 14)
    entry = AuditEntry.objects.get(action="community_settings.update")
    assert entry.changes["risk_repeat_days"] == [30, 14]
    assert CommunitySettings.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("incident_window_minutes", 0),
        ("incident_window_minutes", 7 * 24 * 60 + 1),
        ("risk_repeat_days", 0),
        ("risk_repeat_days", 366),
        ("ticket_severity", 9),
    ],
)
def test_the_settings_admin_refuses_values_out_of_range(make_user, field, value):
    client = _admin(make_user)
    row = settings_get()
    data = {"ticket_severity": 4, "incident_window_minutes": 60, "risk_repeat_days": 30, field: value}
    response = client.post(f"{SETTINGS_URL}{row.pk}/change/", data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    row.refresh_from_db()
    assert (row.ticket_severity, row.incident_window_minutes, row.risk_repeat_days) == (4, 60, 30)
    assert not AuditEntry.objects.filter(action__startswith="community_settings.").exists()


def test_the_settings_service_refuses_out_of_range_values_directly(make_user):
    from communities.services.settings import community_settings_save

    row = settings_get()
    row.risk_repeat_days = 400
    with pytest.raises(ApplicationError) as exc:
        community_settings_save(row=row, actor=None)
    assert set(exc.value.details) == {"risk_repeat_days"}
    assert CommunitySettings.objects.get().risk_repeat_days == 30


def test_risk_actions_are_read_only_in_the_admin(group, member, managers, make_user):
    action = _act(group, member, WARN, managers[0])
    client = _admin(make_user)
    listing = client.get("/admin/communities/riskaction/", {"q": "spammer-1"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [action]
    assert client.get("/admin/communities/riskaction/add/").status_code == 403
    detail = client.get(f"/admin/communities/riskaction/{action.pk}/change/")
    assert detail.status_code == 200
    assert client.post(f"/admin/communities/riskaction/{action.pk}/change/", {"note": "edited"}).status_code == 403
    assert client.post(f"/admin/communities/riskaction/{action.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RiskAction.objects.get().note == "posted a QR code for a casino"
