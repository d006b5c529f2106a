"""The demo's community groups (``seed_demo_communities``): written through the
communities services, visible to their owners only, with approved templates, the 7-2-1
calendar, bot traffic, alerts and one crisis ticket, health; once."""

from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from communities import access
from communities.models import (
    Activity,
    ActivitySignup,
    Alert,
    AlertStatus,
    CheckIn,
    CommunityGroup,
    ContentPost,
    GroupHealthDay,
    GroupMessage,
    GroupStaff,
    Incident,
    KeywordRule,
    Membership,
    PostStatus,
    RiskAction,
    SopTemplate,
    TemplateKind,
    VersionStatus,
)
from communities.services import templates as template_services
from core.errors import ApplicationError
from core.models import AuditEntry
from feedback.models import Priority, Source, Ticket
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SMALL = ["--members", "30", "--days", "6"]


@pytest.fixture
def demo_accounts(make_user):
    accounts = {
        "admin": make_user("admin", username="admin"),
        "community": make_user("community_manager", username="community"),
    }
    CustomerFactory.create_batch(60)
    return accounts


def test_the_demo_groups_their_members_staff_and_visibility(demo_accounts, make_user):
    call_command("seed_demo_communities", *SMALL)
    groups = CommunityGroup.objects.filter(code__startswith="demo-")
    assert groups.count() == 12
    assert len(set(groups.values_list("platform", flat=True))) >= 5
    owners = Counter(groups.values_list("owner__username", flat=True))
    assert owners == {"community": 10, "admin": 2}
    # The community manager sees their ten, not the admin's two; the admin sees all twelve.
    community, admin = demo_accounts["community"], demo_accounts["admin"]
    seen = set(access.groups_visible(community).values_list("owner__username", flat=True))
    assert access.groups_visible(community).count() == 10 and seen == {"community"}
    assert access.groups_visible(admin).count() == 12
    other = make_user("community_manager", username="second-manager")
    assert not access.groups_visible(other).exists()
    # Members from the customers, through member_join (an audit row each); some left, some rejoined.
    per_group = Membership.objects.values("group").annotate(n=Count("id"))
    assert all(row["n"] >= 30 for row in per_group)
    assert Membership.objects.filter(left_at__isnull=False).exists()
    two_spans = Membership.objects.values("group", "customer").annotate(n=Count("id")).filter(n__gt=1)
    assert two_spans.exists()
    assert set(Membership.objects.values_list("role", flat=True)) == {"member", "admin", "koc"}
    assert Membership.objects.filter(invited_by__isnull=False).exists()
    assert AuditEntry.objects.filter(action="membership.join").count() == Membership.objects.count()
    # The group admin account: two of the manager's groups, may post, sees just those.
    staff = GroupStaff.objects.select_related("user").filter(user__username="groupadmin")
    assert staff.count() == 2 and all(s.can_post and not s.can_manage for s in staff)
    group_admin = staff[0].user
    assert access.groups_visible(group_admin).count() == 2
    assert access.POST in access.rights_of(group_admin, staff[0].group)


def test_templates_rules_calendar_traffic_alerts_and_health(demo_accounts):
    call_command("seed_demo_communities", *SMALL)
    # Six approved templates of the SPEC's kinds, written by community and approved by admin.
    templates = SopTemplate.objects.filter(code__startswith="demo-").select_related("approved_version")
    assert {t.kind for t in templates} == {
        TemplateKind.WELCOME,
        TemplateKind.FAQ,
        TemplateKind.ACTIVITY,
        TemplateKind.DAILY_TOPIC,
        TemplateKind.CRISIS,
        TemplateKind.BIRTHDAY,
    }
    for template in templates:
        version = template.approved_version
        assert version is not None and version.status == VersionStatus.APPROVED
        assert version.written_by.username == "community" and version.reviewed_by.username == "admin"
    faq = templates.get(code="demo-faq-refund").approved_version
    assert "nickname" in faq.variables and {f["name"] for f in faq.fields} == {"order_no", "refund_days"}
    assert templates.get(code="demo-welcome").versions.filter(status=VersionStatus.PENDING).count() == 1
    # Four-eyes: the writer of a version cannot approve it.
    admin = demo_accounts["admin"]
    mine = template_services.version_write(template=templates.get(code="demo-crisis"), body="{{ group }}", actor=admin)
    with pytest.raises(ApplicationError) as refused:
        template_services.version_approve(version=mine, actor=admin)
    assert refused.value.code == "own_version"

    rules = KeywordRule.objects.all()
    assert rules.count() == 9 and set(rules.values_list("kind", flat=True)) == {"keyword", "pattern"}
    assert len(set(rules.values_list("severity", flat=True))) >= 4

    # Two weeks of posts per group in the 7-2-1 mix; past ones mostly done (who and when).
    posts = ContentPost.objects.filter(group__code__startswith="demo-")
    assert posts.count() == 12 * 2 * 10
    mix = Counter(posts.values_list("content_class", flat=True))
    assert mix == {"value": 12 * 2 * 7, "surprise": 12 * 2 * 2, "advanced": 12 * 2}
    done = posts.filter(status=PostStatus.DONE)
    assert done.exists() and not done.filter(done_by__isnull=True).exists() and not done.filter(done_at=None).exists()
    assert posts.filter(status=PostStatus.PLANNED).exists()

    # Bot traffic through the ingestion services.
    assert GroupMessage.objects.count() > 12 * 6
    assert CheckIn.objects.exists()
    assert Activity.objects.count() == 1 and ActivitySignup.objects.exists()
    assert RiskAction.objects.filter(step="mute", requested_step="warn").count() == 1  # the escalated repeat
    assert RiskAction.objects.filter(step="remove").count() == 1

    # The scan ran: alerts in several groups, one incident with a crisis ticket.
    assert Alert.objects.values("group").distinct().count() >= 3
    assert Alert.objects.filter(status=AlertStatus.DISMISSED).exclude(dismiss_reason="").count() == 1
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() >= 5
    crisis = Ticket.objects.filter(source=Source.COMMUNITY)
    assert crisis.count() == 1 and crisis.get().priority == Priority.CRISIS
    assert Incident.objects.filter(ticket_id=crisis.get().pk).get().group.code == "demo-wx-vip"

    # Health: one row per group and day (the six whole days and today).
    assert GroupHealthDay.objects.count() == 12 * 7
    assert GroupHealthDay.objects.filter(messages__gt=0, active_members__gt=0, checkins__gt=0).exists()


def test_a_second_run_adds_nothing_and_delete_removes_the_demo(demo_accounts):
    call_command("seed_demo_communities", *SMALL)
    counts = (CommunityGroup.objects.count(), GroupMessage.objects.count(), AuditEntry.objects.count())
    call_command("seed_demo_communities", *SMALL)
    assert (CommunityGroup.objects.count(), GroupMessage.objects.count(), AuditEntry.objects.count()) == counts
    call_command("seed_demo_communities", "--delete")
    assert not CommunityGroup.objects.exists() and not GroupMessage.objects.exists()
    assert not SopTemplate.objects.exists() and not KeywordRule.objects.exists()
    call_command("seed_demo_communities", *SMALL)  # and it can be seeded again
    assert CommunityGroup.objects.count() == 12


def test_refuses_without_customers_or_with_bad_sizes(make_user):
    make_user("admin", username="admin")
    make_user("community_manager", username="community")
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("seed_demo_communities", *SMALL)
    assert not CommunityGroup.objects.exists()
    with pytest.raises(CommandError, match="--members"):
        call_command("seed_demo_communities", "--members", "3")
