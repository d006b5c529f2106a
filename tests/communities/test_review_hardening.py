"""Regression tests of the review of issue 12's communities app: another group's rows
reached through a visible group's URL, a group admin acting beyond the rights given,
and bad input that raised a 500 or was stored to fail later (hostile template bodies,
an RE2 pattern the matcher's set cannot hold, dates at the ends of the calendar)."""

from datetime import date

import pytest
import tablib
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from communities import urls as community_urls
from communities.keywords.matcher import Hit, Matcher, PatternError, RuleSpec, pattern_compile
from communities.models import (
    Alert,
    AlertStatus,
    CommunityGroup,
    ContentPost,
    GroupStaff,
    KeywordRule,
    Membership,
    RiskAction,
    SopTemplate,
    SopTemplateVersion,
    TemplateKind,
)
from communities.resources import MembershipResource
from communities.selectors import templates as template_selectors
from communities.services import alerts as alert_services
from communities.services import groups as group_services
from communities.services import templates as template_services
from communities.services.health import health_range_check
from core.errors import ApplicationError
from core.models import AuditEntry
from tests.users.factories import CustomerFactory

from . import test_permissions_matrix as matrix

pytestmark = pytest.mark.django_db

# The permission matrix's world: the first manager's group with a row of each kind in it.
world = matrix.world

# A pattern RE2 compiles alone within the per-pattern memory, but whose one-pattern set
# it cannot build: before the review, one such rule made every scan raise.
SET_BREAKER = "[^a]{1000}[^b]{1000}[^c]{1000}"


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en", raise_request_exception=False)
    client.force_login(user)
    return client


# --- another group's rows through my group's URL ------------------------------------


def _state(world) -> dict:
    """What the first manager's rows look like (nothing below may change them)."""
    group = world["group"]
    return {
        "posts": list(ContentPost.objects.filter(group=group).values_list("pk", "status", "title")),
        "open_spans": list(Membership.objects.filter(group=group, left_at__isnull=True).values_list("pk", "role")),
        "staff": list(GroupStaff.objects.filter(group=group).values_list("pk", "can_post", "can_manage")),
        "alerts": list(Alert.objects.filter(group=group).values_list("pk", "status")),
        "risk": RiskAction.objects.filter(group=group).count(),
    }


def test_another_groups_row_ids_in_my_groups_urls_are_404_and_change_nothing(world):
    """The second manager owns a group of their own; every page of one group, given
    that group's id and the *first* manager's row ids (a post, a membership, a staff
    entry…), is 404 by GET and by POST, and the first manager's rows stay as they were."""
    second = world["second"]
    mine = group_services.group_save(group=CommunityGroup(code="second-own", name="second's own"), actor=second)
    fillers = {**world["fillers"], "group_id": mine.pk}
    crossing = []
    for name, pattern in matrix._patterns(community_urls.urlpatterns):
        names = matrix._kwarg_names(pattern)
        if "group_id" in names and matrix.GROUP_SCOPED & set(names) - {"group_id"}:
            crossing.append((name, reverse(f"communities:{name}", kwargs={n: fillers[n] for n in names})))
    assert {"post-done", "post-edit", "member-leave", "member-role", "staff-revoke"} <= {
        name for name, _url in crossing
    }
    before = _state(world)
    client = _client(second)
    wrong = []
    for name, url in crossing:
        for method in ("get", "post"):
            status = getattr(client, method)(url, {"role": "admin", "reason": "x", "posted_text": "x"}).status_code
            if status not in (404, 405):
                wrong.append(f"{method.upper()} communities:{name} {url} → {status}")
    assert wrong == []
    assert _state(world) == before


def test_a_group_admin_who_may_only_post_is_refused_everything_else(world, make_user):
    """分级管理: a group admin given "can post SOP content" only may plan posts, and gets
    403 on every other write of the group (members, staff, risk, alerts, roll-up)."""
    group = world["group"]
    helper = GroupStaff.objects.get(group=group, user__username="helper").user
    customer = CustomerFactory(external_id="newcomer")
    client = _client(helper)
    fillers = world["fillers"]
    refused = {
        reverse("communities:group-edit", args=[group.pk]): {"code": group.code, "name": "taken over"},
        reverse("communities:member-add", args=[group.pk]): {"customer": customer.external_id, "role": "member"},
        reverse("communities:member-leave", args=[group.pk, fillers["membership_id"]]): {"reason": "x"},
        reverse("communities:member-role", args=[group.pk, fillers["membership_id"]]): {"role": "admin"},
        reverse("communities:staff-grant", args=[group.pk]): {"username": helper.username, "can_manage": "on"},
        reverse("communities:staff-revoke", args=[group.pk, fillers["staff_id"]]): {},
        reverse("communities:risk-act", args=[group.pk]): {"customer": "x", "requested_step": "warn"},
        reverse("communities:health-rollup", args=[group.pk]): {"day_from": "2026-01-01", "day_to": "2026-01-02"},
        reverse("communities:alert-acknowledge", args=[fillers["alert_id"]]): {},
        reverse("communities:alert-dismiss", args=[fillers["alert_id"]]): {"reason": "noise"},
    }
    before = _state(world)
    answers = {url: client.post(url, data).status_code for url, data in refused.items()}
    assert answers == dict.fromkeys(refused, 403)
    assert _state(world) == before
    assert not GroupStaff.objects.get(group=group, user=helper).can_manage
    assert not Membership.objects.filter(group=group, customer=customer).exists()
    # What was given still works: planning a post.
    plan = reverse("communities:post-plan", args=[group.pk])
    data = {"due_on": "2026-03-02", "kind": TemplateKind.DAILY_TOPIC, "content_class": "value", "title": "晨跑打卡"}
    assert client.post(plan, data).status_code == 302
    assert ContentPost.objects.filter(group=group, title="晨跑打卡", planned_by=helper).exists()
    assert Alert.objects.get(pk=fillers["alert_id"]).status == AlertStatus.OPEN


# --- hostile template bodies ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{{ 1" + "1" * 5000 + " }}", "template_syntax"),  # Python refuses to read 5,000 digits
        ("{{ nickname|truncate(2) }}", "template_forbidden"),  # Jinja asserts length >= len("...")
        ("{{ nickname|truncate(length=1, end='') }}{{ nickname|truncate(0) }}", "template_forbidden"),
        ("{{ nickname|upper(1) }}", "template_render_failed"),
        ("{% if nickname > 3 %}x{% endif %}", "template_render_failed"),
        ("{{ self }}", "template_unknown_variable"),  # Jinja's own name: prints the template object
    ],
)
def test_a_body_that_would_fail_when_sent_is_refused_when_saved(body, code):
    with pytest.raises(ApplicationError) as refused:
        template_services.template_create(code="bad", name="bad", kind=TemplateKind.WELCOME, body=body)
    assert refused.value.code == code
    assert refused.value.message
    assert not SopTemplate.objects.filter(code="bad").exists()


def test_the_pages_and_the_admin_show_the_reason_for_a_hostile_body(make_user):
    huge = "{{ 1" + "1" * 5000 + " }}"
    page = _client(make_user("community_manager", "writer"))
    data = {"code": "huge", "name": "huge", "kind": TemplateKind.WELCOME, "language": "en", "body": huge}
    r = page.post(reverse("communities:template-new"), {**data, "form-TOTAL_FORMS": "0", "form-INITIAL_FORMS": "0"})
    assert r.status_code == 400
    assert "number too long" in r.content.decode()
    admin = _client(make_user("admin", "boss"))
    r = admin.post(
        "/admin/communities/soptemplate/add/",
        {**data, "is_active": "on", "fields_declared": "", "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"},
    )
    assert r.status_code == 200
    assert "number too long" in " ".join(r.context["adminform"].form.errors["body"])
    assert not SopTemplate.objects.filter(code="huge").exists()


def test_a_stored_body_that_fails_to_render_is_a_clear_error_not_a_500(make_user):
    """A version written around the save's check (an older row, a direct insert): the
    preview and every caller of ``template_render`` get ``template_render_failed``."""
    template = SopTemplate.objects.create(code="old", name="old", kind=TemplateKind.WELCOME)
    version = SopTemplateVersion.objects.create(template=template, number=1, body="hi {{ nickname|truncate(2) }}")
    with pytest.raises(ApplicationError) as refused:
        template_selectors.template_preview(version=version)
    assert refused.value.code == "template_render_failed"
    r = _client(make_user("community_manager", "writer")).get(
        reverse("communities:template-preview", args=[version.pk]), {"preview": "1"}
    )
    assert r.status_code == 400
    assert "cannot be filled in" in r.content.decode()


# --- RE2 patterns -----------------------------------------------------------------------


def test_a_pattern_too_large_for_the_matchers_set_is_refused_with_the_reason():
    with translation.override("en"), pytest.raises(PatternError, match="too large"):
        pattern_compile(SET_BREAKER)
    with translation.override("zh-hans"), pytest.raises(PatternError, match="该模式过大"):
        pattern_compile(SET_BREAKER)


def test_the_admin_refuses_a_pattern_the_matchers_set_cannot_hold(make_user):
    r = _client(make_user("admin", "boss")).post(
        "/admin/communities/keywordrule/add/",
        {"name": "huge", "kind": "pattern", "pattern": SET_BREAKER, "severity": 4, "is_active": "on"},
    )
    assert r.status_code == 200
    assert "too large" in " ".join(r.context["adminform"].form.errors["pattern"])
    assert not KeywordRule.objects.filter(name="huge").exists()


def test_a_stored_pattern_the_set_cannot_hold_does_not_stop_the_scan():
    """A row written around the save's check: the matcher is still built and the other
    rules still match (before: ``failed to compile Set`` on every scan)."""
    KeywordRule.objects.create(name="huge", kind="pattern", pattern=SET_BREAKER, severity=5)
    refund = alert_services.keyword_rule_save(
        rule=KeywordRule(name="refund", kind="pattern", pattern="退款|refund", severity=5), actor=None
    )
    matcher, _info = alert_services.matcher_get()
    assert matcher.match("我要退 款") == [Hit(refund.pk, "退款")]


def test_patterns_match_whatever_the_case_they_are_written_in():
    """The text is case-folded before matching, so an upper-case pattern would never match."""
    matcher = Matcher.build([RuleSpec(1, "pattern", r"VIP\d+"), RuleSpec(2, "pattern", "Refund")])
    assert matcher.match("加 vip888 送 REFUND") == [Hit(1, "vip888"), Hit(2, "refund")]


def test_patterns_still_match_when_the_set_of_all_of_them_cannot_be_built():
    matcher = Matcher.build([RuleSpec(1, "pattern", "退款"), RuleSpec(2, "pattern", r"1[3-9]\d{9}")])
    matcher._set = None  # as when RE2 cannot build the set within its memory
    assert matcher.match("退款 138 0000 0000") == [Hit(1, "退款"), Hit(2, "13800000000")]


# --- dates at the ends of the calendar --------------------------------------------------


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01"])
def test_a_week_at_the_end_of_the_calendar_shows_this_week_with_a_message(world, week):
    client = _client(world["first"])
    for url in (reverse("communities:calendar"), reverse("communities:group-calendar", args=[world["group"].pk])):
        r = client.get(url, {"week": week})
        assert r.status_code == 200, url
        assert any("showing this week" in str(m) for m in r.context["messages"])


def test_a_post_due_in_year_9999_is_refused_and_nothing_is_planned(world):
    url = reverse("communities:post-plan", args=[world["group"].pk])
    data = {"due_on": "9999-12-31", "kind": TemplateKind.DAILY_TOPIC, "content_class": "value", "title": "far"}
    r = _client(world["first"]).post(url, data)
    assert r.status_code == 400
    assert "between 1970-01-01 and 2100-01-01" in r.content.decode()
    assert not ContentPost.objects.filter(title="far").exists()


def test_a_rollup_of_year_one_is_refused_and_nothing_is_queued(world, django_capture_on_commit_callbacks):
    url = reverse("communities:health-rollup", args=[world["group"].pk])
    with django_capture_on_commit_callbacks() as callbacks:
        r = _client(world["first"]).post(url, {"day_from": "0001-01-01", "day_to": "0001-01-01"})
    assert r.status_code == 400
    assert "between 1970-01-01 and 2100-01-01" in r.content.decode()
    assert callbacks == []
    with pytest.raises(ApplicationError) as refused:
        health_range_check(date(1, 1, 1), date(1, 1, 2))
    assert refused.value.code == "invalid_range"


# --- the member import is set-based -----------------------------------------------------

IMPORT_HEADERS = ["group", "customer", "role", "joined_at", "platform_member_id", "invited_by"]


def _import_queries(actor, group, customers) -> int:
    rows = [[group.code, c.external_id, "member", "", f"wx-{c.external_id}", ""] for c in customers]
    with CaptureQueriesContext(connection) as queries:
        result = MembershipResource(actor=actor).import_data(
            tablib.Dataset(*rows, headers=IMPORT_HEADERS), dry_run=False, use_transactions=True
        )
    assert not result.has_errors() and not result.has_validation_errors()
    return len(queries)


def test_the_member_imports_queries_do_not_grow_with_its_rows(make_user):
    """Before the review each row was a ``member_join`` call (a savepoint, the right,
    the insert, the audit row): 10,000 rows were some 50,000 queries."""
    owner, helper = make_user("community_manager", "mgr-one"), make_user("community_manager", "mgr-helper")
    small = group_services.group_save(group=CommunityGroup(code="small", name="small"), actor=owner)
    large = group_services.group_save(group=CommunityGroup(code="large", name="large"), actor=owner)
    for group in (small, large):
        group_services.staff_grant(group=group, user=helper, actor=owner, can_manage=True)
    few = _import_queries(helper, small, CustomerFactory.create_batch(3))
    many = _import_queries(helper, large, CustomerFactory.create_batch(60))
    assert many == few
    spans = Membership.objects.filter(group=large, left_at__isnull=True)
    assert spans.count() == 60
    joins = AuditEntry.objects.filter(action="membership.join", actor=helper)
    assert joins.count() == 63
    assert set(joins.values_list("object_id", flat=True)) >= {str(pk) for pk in spans.values_list("pk", flat=True)}


def test_members_join_many_refuses_the_whole_list_for_one_bad_join(make_user):
    owner = make_user("community_manager", "mgr-one")
    group = group_services.group_save(group=CommunityGroup(code="g", name="g"), actor=owner)
    ann, bob = CustomerFactory.create_batch(2)
    group_services.member_join(group=group, customer=bob)
    joins = [group_services.Join(group=group, customer=ann), group_services.Join(group=group, customer=bob)]
    with pytest.raises(ApplicationError) as refused:
        group_services.members_join_many(joins=joins, actor=owner)
    assert refused.value.code == "already_member"
    assert not Membership.objects.filter(group=group, customer=ann).exists()
    stranger = make_user("community_manager", "mgr-two")
    with pytest.raises(ApplicationError) as hidden:
        group_services.members_join_many(joins=joins[:1], actor=stranger)
    assert hidden.value.code == "unknown_group"


# --- a group admin's risk right covers removing ------------------------------------------


def test_a_group_admin_who_handles_risk_members_may_remove_one(world, make_user):
    """分级管理: "can handle risk members" is warn, mute *and* remove; before the review
    the removal asked for the manage right and the whole action was refused (403)."""
    group, first = world["group"], world["first"]
    guard = make_user("group_admin", "guard")
    group_services.staff_grant(group=group, user=guard, actor=first, can_post=False, can_handle_risk=True)
    spammer = CustomerFactory(external_id="spammer")
    group_services.member_join(group=group, customer=spammer)
    url = reverse("communities:risk-act", args=[group.pk])
    data = {"customer": "spammer", "requested_step": "remove", "reason": "marketing", "note": "ads every hour"}
    r = _client(guard).post(url, data)
    assert r.status_code == 302
    span = Membership.objects.get(group=group, customer=spammer)
    assert span.left_at is not None and span.left_reason.startswith("risk:marketing")
    leave = AuditEntry.objects.get(action="membership.leave", object_id=str(span.pk))
    assert leave.actor_id == guard.pk
    # The right covers risk removals only: leaving a member by hand is still the managers'.
    other = CustomerFactory()
    group_services.member_join(group=group, customer=other)
    with pytest.raises(ApplicationError) as refused:
        group_services.member_leave(group=group, customer=other, actor=guard)
    assert refused.value.status_code == 403


# --- the profile API in an operator's session ----------------------------------------------


def test_the_profile_api_in_a_second_managers_session_lists_none_of_the_first_ones_groups(world, api):
    """The 360 page already listed only the visible groups; the same profile over the
    API, read with an operator's session, listed every membership (codes and names)."""
    customer_id = world["fillers"]["external_id"]
    url = f"/api/v1/customers/{customer_id}"
    second = Client()
    second.force_login(world["second"])
    answer = second.get(url)
    assert answer.status_code == 200
    assert answer.json()["communities"] == []
    assert matrix.SECRET_CODE not in answer.content.decode()
    first = Client()
    first.force_login(world["first"])
    assert [m["group"] for m in first.get(url).json()["communities"]] == [matrix.SECRET_CODE]
    # An API key is the product backend's: it reads every membership.
    assert [m["group"] for m in api.get(url).json()["communities"]] == [matrix.SECRET_CODE]
