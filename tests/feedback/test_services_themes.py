"""Theme writes (feedback.services.themes): the suggestion job — new groups become
suggested themes, new tickets join a live theme, confirmed and dismissed themes are
left as they are, duplicates and old closed tickets are not read — and an operator's
confirm, rename, dismiss, roadmap hand-off and roadmap status, each audited, each
refusal writing nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import ApplicationError, Conflict
from core.models import AuditEntry
from feedback.models import RoadmapItem, Status, Theme, Ticket
from feedback.services import themes as services
from tests.feedback.factories import RoadmapItemFactory, ThemeFactory, TicketFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=14)
RECENT = NOW - timedelta(days=2)

SMS = ["收不到验证码", "短信验证码一直收不到", "验证码收不到，等了十分钟", "手机收不到短信验证码怎么办"]
DARK = ["希望增加深色模式", "建议加一个深色模式", "求深色模式！"]
CRASH = ["打开APP就闪退", "app一打开就闪退，重装也没用", "更新后APP打开闪退"]


def tickets(subjects, **kwargs) -> list[Ticket]:
    kwargs.setdefault("created_at", RECENT)
    return [TicketFactory(subject=s, body=s, **kwargs) for s in subjects]


def theme_of(ticket: Ticket) -> int | None:
    return Ticket.objects.values_list("theme_id", flat=True).get(pk=ticket.pk)


def suggest():
    return services.themes_suggest(since=SINCE, now=NOW)


# --- themes_suggest ------------------------------------------------------------------


def test_groups_become_suggested_themes_named_after_their_most_central_ticket():
    sms, dark = tickets(SMS), tickets(DARK)
    (loner,) = tickets(["你们的线下门店在哪里"])
    counts = suggest()
    assert counts == {
        "tickets_read": 8,
        "seed_tickets": 0,
        "joined": 0,
        "themes_created": 2,
        "grouped": 7,
    }
    themes = {t.name: t for t in Theme.objects.all()}
    assert set(themes) == {"收不到验证码", "求深色模式！"}  # the subject as the customer wrote it
    assert all(t.status == Theme.Status.SUGGESTED for t in themes.values())
    assert {theme_of(t) for t in sms} == {themes["收不到验证码"].pk}
    assert {theme_of(t) for t in dark} == {themes["求深色模式！"].pk}
    assert theme_of(loner) is None
    audit = AuditEntry.objects.filter(action="theme.suggest")
    assert sorted(e.changes["tickets"] for e in audit) == [3, 4]
    assert all(e.actor is None and e.actor_label == "system" for e in audit)


def test_a_second_run_changes_nothing():
    tickets(SMS)
    suggest()
    before = list(Ticket.objects.order_by("pk").values_list("pk", "theme_id"))
    counts = suggest()
    assert counts["themes_created"] == 0 and counts["joined"] == 0 and counts["grouped"] == 0
    assert counts["tickets_read"] == 0  # every ticket has its theme now
    assert list(Ticket.objects.order_by("pk").values_list("pk", "theme_id")) == before
    assert Theme.objects.count() == 1


def test_new_tickets_like_a_confirmed_theme_join_it_and_it_stays_as_it_was():
    theme = ThemeFactory(name="验证码问题", status=Theme.Status.CONFIRMED)
    tickets(SMS[:2], theme=theme, created_at=NOW - timedelta(days=60))  # older than `since`: still its seed
    new = tickets(SMS[2:])
    counts = suggest()
    assert counts["joined"] == 2 and counts["themes_created"] == 0
    assert {theme_of(t) for t in new} == {theme.pk}
    theme.refresh_from_db()
    assert (theme.name, theme.status) == ("验证码问题", Theme.Status.CONFIRMED)
    assert theme.updated_at == NOW  # moved up the list: it grew


def test_a_new_ticket_joins_a_suggested_theme_too_rather_than_starting_another():
    tickets(SMS[:3])
    suggest()
    (theme,) = Theme.objects.all()
    (late,) = tickets(SMS[3:])
    counts = suggest()
    assert counts["joined"] == 1 and counts["themes_created"] == 0
    assert theme_of(late) == theme.pk


def test_the_body_counts_not_only_the_subject():
    subjects = ["求助", "紧急问题", "请尽快处理"]
    for subject, body in zip(subjects, SMS, strict=False):
        TicketFactory(subject=subject, body=body, created_at=RECENT)
    assert suggest()["grouped"] == 3


def test_a_dismissed_theme_keeps_its_tickets_and_draws_no_new_ones():
    dismissed = ThemeFactory(status=Theme.Status.DISMISSED)
    old = tickets(DARK, theme=dismissed)
    new = tickets(["能不能出个深色模式", "深色模式什么时候上线"])
    suggest()
    assert {theme_of(t) for t in old} == {dismissed.pk}
    assert theme_of(new[0]) == theme_of(new[1]) != dismissed.pk
    assert Theme.objects.get(pk=theme_of(new[0])).status == Theme.Status.SUGGESTED


def test_tickets_already_in_a_theme_are_not_moved():
    confirmed = ThemeFactory(status=Theme.Status.CONFIRMED)
    held = tickets(SMS[:1], theme=confirmed)
    tickets(SMS[1:])
    suggest()
    assert theme_of(held[0]) == confirmed.pk


def test_merged_duplicates_and_old_closed_tickets_are_not_read_but_old_open_ones_are():
    (original,) = tickets(CRASH[:1])
    tickets(CRASH[1:2], merged_into=original)
    tickets(CRASH[2:], status=Status.CLOSED, created_at=SINCE - timedelta(days=1))
    (old_open,) = tickets(["打开APP就闪退了"], status=Status.IN_PROGRESS, created_at=SINCE - timedelta(days=30))
    counts = suggest()
    assert counts["tickets_read"] == 2
    assert theme_of(original) == theme_of(old_open) is not None
    assert Ticket.objects.filter(theme__isnull=False).count() == 2


def test_tickets_created_after_now_are_left_for_a_later_run():
    tickets(DARK, created_at=NOW + timedelta(minutes=5))
    assert suggest()["tickets_read"] == 0
    assert Theme.objects.count() == 0


def test_the_writes_are_set_based_whatever_the_number_of_groups():
    def queries_for(groups: list[list[str]]) -> int:
        Ticket.objects.all().delete()
        Theme.objects.all().delete()
        for subjects in groups:
            tickets(subjects)
        with CaptureQueriesContext(connection) as ctx:
            counts = suggest()
        assert counts["themes_created"] == len(groups)
        return len(ctx.captured_queries)

    assert queries_for([SMS, DARK]) == queries_for([SMS, DARK, CRASH])


def test_nothing_to_group_writes_nothing():
    assert suggest() == {"tickets_read": 0, "seed_tickets": 0, "joined": 0, "themes_created": 0, "grouped": 0}
    tickets(["求深色模式"])
    assert suggest()["themes_created"] == 0
    assert not AuditEntry.objects.exists()


# --- an operator's decisions ---------------------------------------------------------


@pytest.fixture
def operator(make_user):
    return make_user("operator", username="op-lin")


def audit(action: str):
    return list(AuditEntry.objects.filter(action=action))


def test_confirm_is_audited_once(operator):
    theme = ThemeFactory()
    confirmed = services.theme_confirm(theme=theme, actor=operator)
    assert confirmed.status == Theme.Status.CONFIRMED
    services.theme_confirm(theme=theme, actor=operator)
    (entry,) = audit("theme.confirm")
    assert entry.changes == {"status": ["suggested", "confirmed"]}
    assert entry.actor == operator and entry.object_id == str(theme.pk)


def test_rename_tidies_the_name_and_records_from_and_to(operator):
    theme = ThemeFactory(name="收不到验证码")
    renamed = services.theme_rename(theme=theme, name="  短信验证码  收不到 ", actor=operator)
    assert renamed.name == "短信验证码 收不到"
    theme.refresh_from_db()
    assert theme.name == "短信验证码 收不到"
    (entry,) = audit("theme.rename")
    assert entry.changes == {"name": ["收不到验证码", "短信验证码 收不到"]}


@pytest.mark.parametrize(
    ("name", "code"), [("", "name_required"), ("   \n ", "name_required"), ("长" * 121, "name_too_long")]
)
def test_a_bad_name_is_refused_and_nothing_is_written(operator, name, code):
    theme = ThemeFactory(name="原名")
    with pytest.raises(ApplicationError) as refused:
        services.theme_rename(theme=theme, name=name, actor=operator)
    assert refused.value.code == code
    theme.refresh_from_db()
    assert theme.name == "原名"
    assert not AuditEntry.objects.exists()


def test_dismiss_and_confirm_again(operator):
    theme = ThemeFactory()
    assert services.theme_dismiss(theme=theme, actor=operator).status == Theme.Status.DISMISSED
    assert services.theme_confirm(theme=theme, actor=operator).status == Theme.Status.CONFIRMED
    assert audit("theme.dismiss")[0].changes == {"status": ["suggested", "dismissed"]}
    assert audit("theme.confirm")[0].changes == {"status": ["dismissed", "confirmed"]}


def test_a_theme_on_the_roadmap_cannot_be_dismissed(operator):
    item = RoadmapItemFactory()
    with pytest.raises(ApplicationError) as refused:
        services.theme_dismiss(theme=item.theme, actor=operator)
    assert refused.value.code == "theme_on_roadmap"
    item.theme.refresh_from_db()
    assert item.theme.status == Theme.Status.CONFIRMED
    assert not AuditEntry.objects.exists()


def test_a_confirmed_theme_goes_on_the_roadmap_as_proposed(operator):
    theme = ThemeFactory(status=Theme.Status.CONFIRMED)
    item = services.theme_to_roadmap(theme=theme, title=" 短信验证码通道 ", actor=operator)
    assert (item.theme_id, item.title, item.status) == (theme.pk, "短信验证码通道", RoadmapItem.Status.PROPOSED)
    (entry,) = audit("roadmap_item.create")
    assert entry.changes == {"title": [None, "短信验证码通道"], "status": [None, "proposed"], "theme": [None, theme.pk]}


@pytest.mark.parametrize(
    ("status", "title", "code"),
    [
        (Theme.Status.SUGGESTED, "深色模式", "theme_not_confirmed"),
        (Theme.Status.DISMISSED, "深色模式", "theme_not_confirmed"),
        (Theme.Status.CONFIRMED, "  ", "title_required"),
        (Theme.Status.CONFIRMED, "长" * 201, "title_too_long"),
    ],
)
def test_a_bad_hand_off_is_refused_and_nothing_is_written(operator, status, title, code):
    theme = ThemeFactory(status=status)
    with pytest.raises(ApplicationError) as refused:
        services.theme_to_roadmap(theme=theme, title=title, actor=operator)
    assert refused.value.code == code
    assert not RoadmapItem.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_theme_goes_on_the_roadmap_once(operator):
    item = RoadmapItemFactory(title="第一次")
    with pytest.raises(Conflict) as refused:
        services.theme_to_roadmap(theme=item.theme, title="第二次", actor=operator)
    assert refused.value.code == "already_on_roadmap" and refused.value.status_code == 409
    assert list(RoadmapItem.objects.values_list("title", flat=True)) == ["第一次"]
    assert not AuditEntry.objects.exists()


def test_roadmap_status_is_set_and_audited(operator):
    item = RoadmapItemFactory()
    changed = services.roadmap_item_set_status(item=item, status="planned", actor=operator)
    assert changed.status == RoadmapItem.Status.PLANNED
    services.roadmap_item_set_status(item=item, status="planned", actor=operator)  # no change, no row
    (entry,) = audit("roadmap_item.status")
    assert entry.changes == {"status": ["proposed", "planned"]}


@pytest.mark.parametrize("status", ["done", "", "PLANNED"])
def test_an_unknown_roadmap_status_is_refused_and_nothing_is_written(operator, status):
    item = RoadmapItemFactory()
    with pytest.raises(ApplicationError) as refused:
        services.roadmap_item_set_status(item=item, status=status, actor=operator)
    assert refused.value.code == "invalid_status"
    assert "planned" in refused.value.details["allowed"]
    item.refresh_from_db()
    assert item.status == RoadmapItem.Status.PROPOSED
    assert not AuditEntry.objects.exists()
