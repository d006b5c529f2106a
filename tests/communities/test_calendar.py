"""The content calendar: planning, editing, marking done (who, when, the text) and
skipping through the services; the week and the 7-2-1 mix; the day's due posts on the
home page; and the pages with their rights (a viewer reads, a group admin with
"can post" writes, a second manager sees nothing: 404)."""

from datetime import date, time, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from communities.models import (
    CommunityGroup,
    ContentClass,
    ContentPost,
    PostStatus,
    SopTemplate,
    TemplateKind,
)
from communities.panels_calendar import due_posts_card
from communities.selectors import calendar as selectors
from communities.services import calendar as services
from communities.services import groups as group_services
from core.errors import ApplicationError, Conflict, NotFound
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

MONDAY = date(2026, 11, 2)


@pytest.fixture
def managers(make_user):
    return make_user("community_manager", "mgr-one"), make_user("community_manager", "mgr-two")


@pytest.fixture
def group(managers):
    return group_services.group_save(
        group=CommunityGroup(code="runners", name="跑步群", owner=managers[0]), actor=managers[0]
    )


@pytest.fixture
def template():
    return SopTemplate.objects.create(code="topic", name="每日话题", kind=TemplateKind.DAILY_TOPIC)


def _plan(group, actor, day=MONDAY, cls=ContentClass.VALUE, **extra):
    return services.post_plan(
        group=group,
        actor=actor,
        due_on=day,
        kind=extra.pop("kind", TemplateKind.DAILY_TOPIC),
        content_class=cls,
        title=extra.pop("title", "今日话题"),
        **extra,
    )


# --- services ---------------------------------------------------------------------------


def test_plan_then_done_records_who_when_and_the_text(group, managers, template):
    owner = managers[0]
    post = _plan(group, owner, due_time=time(9, 30), template=template)
    assert post.status == PostStatus.PLANNED and post.planned_by == owner and post.template == template
    done = services.post_done(post=post, actor=owner, posted_text="  早上好，今天聊跑鞋  ")
    stored = ContentPost.objects.get(pk=post.pk)
    assert stored.status == PostStatus.DONE
    assert stored.done_by == owner and stored.done_at == done.done_at and stored.done_at is not None
    assert stored.posted_text == "早上好，今天聊跑鞋"
    actions = list(AuditEntry.objects.filter(object_type="communities.contentpost").values_list("action", flat=True))
    assert sorted(actions) == ["content_post.done", "content_post.plan"]
    with pytest.raises(Conflict) as exc:
        services.post_done(post=post, actor=owner)
    assert exc.value.code == "post_not_planned"
    with pytest.raises(Conflict):
        services.post_update(post=post, actor=owner, title="late edit")
    assert ContentPost.objects.get(pk=post.pk).title == "今日话题"


def test_update_and_skip_a_planned_post(group, managers):
    owner = managers[0]
    post = _plan(group, owner)
    updated = services.post_update(post=post, actor=owner, title="换个话题", content_class=ContentClass.SURPRISE)
    assert (updated.title, updated.content_class) == ("换个话题", ContentClass.SURPRISE)
    entry = AuditEntry.objects.get(action="content_post.update")
    assert entry.changes["title"] == ["今日话题", "换个话题"]
    skipped = services.post_skip(post=post, actor=owner, reason="节假日")
    assert skipped.status == PostStatus.SKIPPED
    assert AuditEntry.objects.get(action="content_post.skip").changes["reason"] == "节假日"
    with pytest.raises(Conflict):
        services.post_skip(post=post, actor=owner)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "   "}, "title"),
        ({"content_class": "viral"}, "content_class"),
        ({"kind": "meme"}, "kind"),
    ],
)
def test_bad_posts_are_refused_and_nothing_is_written(group, managers, changes, field):
    with pytest.raises(ApplicationError) as exc:
        _plan(group, managers[0], **{"cls": changes.pop("content_class", ContentClass.VALUE), **changes})
    assert field in exc.value.details
    assert not ContentPost.objects.exists()
    assert not AuditEntry.objects.filter(action="content_post.plan").exists()


def test_an_inactive_template_and_unknown_fields_are_refused(group, managers, template):
    template.is_active = False
    template.save()
    with pytest.raises(ApplicationError) as exc:
        _plan(group, managers[0], template=template)
    assert exc.value.details == {"template": ["inactive"]}
    post = _plan(group, managers[0])
    with pytest.raises(ApplicationError):
        services.post_update(post=post, actor=managers[0], status="done")
    assert ContentPost.objects.get(pk=post.pk).status == PostStatus.PLANNED


def test_rights_a_second_manager_is_not_found_a_viewer_forbidden_a_posting_admin_allowed(group, managers, make_user):
    second = managers[1]
    with pytest.raises(NotFound):
        _plan(group, second)
    viewer = make_user("viewer", "look")
    with pytest.raises(ApplicationError) as exc:
        _plan(group, viewer)
    assert exc.value.status_code == 403
    helper = make_user("group_admin", "helper")
    group_services.staff_grant(group=group, user=helper, actor=managers[0], can_post=True)
    post = _plan(group, helper)
    assert services.post_done(post=post, actor=helper).done_by == helper
    quiet = make_user("group_admin", "quiet")
    group_services.staff_grant(group=group, user=quiet, actor=managers[0], can_post=False, can_handle_risk=True)
    with pytest.raises(ApplicationError) as exc:
        _plan(group, quiet)
    assert exc.value.status_code == 403
    assert ContentPost.objects.count() == 1


# --- selectors --------------------------------------------------------------------------


def test_the_week_and_its_7_2_1_mix_planned_against_done(group, managers):
    owner = managers[0]
    posts = [_plan(group, owner, MONDAY + timedelta(days=i % 7)) for i in range(7)]
    posts += [_plan(group, owner, MONDAY + timedelta(days=1), ContentClass.SURPRISE, kind=TemplateKind.ACTIVITY)]
    posts += [_plan(group, owner, MONDAY + timedelta(days=2), ContentClass.SURPRISE)]
    posts += [_plan(group, owner, MONDAY + timedelta(days=4), ContentClass.ADVANCED)]
    skipped = _plan(group, owner, MONDAY + timedelta(days=5), ContentClass.ADVANCED)
    services.post_skip(post=skipped, actor=owner)
    _plan(group, owner, MONDAY + timedelta(days=7))  # next week: not in this one
    for post in posts[:5] + posts[7:8]:
        services.post_done(post=post, actor=owner)

    week = selectors.group_week(group=group, start=MONDAY + timedelta(days=3))  # any day picks its Monday
    assert week["start"] == MONDAY and week["prev"] == MONDAY - timedelta(days=7)
    assert [len(d["posts"]) for d in week["days"]] == [1, 2, 2, 1, 2, 2, 1]
    assert week["by_class"] == {"value": 7, "surprise": 2, "advanced": 1}
    assert {k["kind"]: k["n"] for k in week["by_kind"]} == {"daily_topic": 9, "activity": 1}
    mix = {c["content_class"]: c for c in week["mix"]["classes"]}
    assert (week["mix"]["planned_total"], week["mix"]["done_total"], week["mix"]["skipped_total"]) == (10, 6, 1)
    assert mix["value"] == {
        **mix["value"],
        "target_percent": 70,
        "planned": 7,
        "planned_percent": 70.0,
        "done": 5,
        "done_percent": 83.3,
    }
    assert (mix["surprise"]["planned_percent"], mix["surprise"]["done"], mix["surprise"]["done_percent"]) == (
        20.0,
        1,
        16.7,
    )
    assert (mix["advanced"]["planned"], mix["advanced"]["done"], mix["advanced"]["done_percent"]) == (1, 0, 0.0)


def test_an_empty_week_has_no_percentages(group):
    mix = selectors.mix_for_groups(group_ids=[group.pk], start=MONDAY)[group.pk]
    assert mix["planned_total"] == 0
    assert all(c["planned_percent"] is None and c["done_percent"] is None for c in mix["classes"])


def test_the_mix_of_many_groups_is_one_query(group, managers, django_assert_num_queries):
    others = [
        group_services.group_save(
            group=CommunityGroup(code=f"g{i}", name=f"g{i}", owner=managers[0]), actor=managers[0]
        )
        for i in range(5)
    ]
    for g in [group, *others]:
        _plan(g, managers[0])
    with django_assert_num_queries(1):
        mixes = selectors.mix_for_groups(group_ids=[g.pk for g in [group, *others]], start=MONDAY)
    assert all(m["planned_total"] == 1 for m in mixes.values())


def test_todays_due_posts_are_those_of_the_users_groups(group, managers):
    today = selectors.operator_today()
    owner, second = managers
    theirs = group_services.group_save(group=CommunityGroup(code="other", name="别人的群", owner=second), actor=second)
    mine = _plan(group, owner, today, due_time=time(8))
    done = _plan(group, owner, today, due_time=time(7), title="早安")
    services.post_done(post=done, actor=owner)
    services.post_skip(post=_plan(group, owner, today), actor=owner)
    _plan(group, owner, today + timedelta(days=1))
    _plan(theirs, second, today)
    card = due_posts_card(owner)
    assert [p.pk for p in card["posts"]] == [done.pk, mine.pk]
    assert (card["planned"], card["done"], card["day"]) == (1, 1, today)
    assert [p.group_id for p in due_posts_card(second)["posts"]] == [theirs.pk]


# --- pages ------------------------------------------------------------------------------


def _week_url(group, day=MONDAY):
    return f"{reverse('communities:group-calendar', args=[group.pk])}?week={day.isoformat()}"


def test_the_week_page_shows_posts_the_mix_and_prev_next(client, group, managers):
    owner = managers[0]
    post = _plan(group, owner, title="周一话题")
    services.post_done(post=post, actor=owner, posted_text="发出去的文字")
    client.force_login(owner)
    response = client.get(_week_url(group, MONDAY + timedelta(days=2)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "周一话题" in body and "发出去的文字" in body and "mgr-one" in body
    assert f"?week={(MONDAY - timedelta(days=7)).isoformat()}" in body
    assert f"?week={(MONDAY + timedelta(days=7)).isoformat()}" in body
    assert response.context["week"]["mix"]["done_total"] == 1
    assert reverse("communities:post-plan", args=[group.pk]) in body


def test_a_bad_week_falls_back_to_this_week_with_a_message(client, group, managers):
    client.force_login(managers[0])
    response = client.get(f"{reverse('communities:group-calendar', args=[group.pk])}?week=next-tuesday")
    assert response.status_code == 200
    assert response.context["week"]["start"] == selectors.week_start(selectors.operator_today())
    assert "next-tuesday" in response.content.decode()


def test_planning_and_marking_done_through_the_pages(client, group, managers, template):
    client.force_login(managers[0])
    url = reverse("communities:post-plan", args=[group.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "due_on": MONDAY.isoformat(),
            "due_time": "20:00",
            "kind": TemplateKind.ACTIVITY,
            "content_class": ContentClass.SURPRISE,
            "title": "周末夜跑报名",
            "template": template.pk,
        },
    )
    assert response.status_code == 302 and response["Location"] == _week_url(group)
    post = ContentPost.objects.get()
    assert (post.title, post.template, post.due_time) == ("周末夜跑报名", template, time(20))
    done_url = reverse("communities:post-done", args=[group.pk, post.pk])
    assert client.post(done_url, {"posted_text": "报名链接见群公告"}).status_code == 302
    post.refresh_from_db()
    assert post.status == PostStatus.DONE and post.done_by == managers[0] and post.posted_text == "报名链接见群公告"
    response = client.post(done_url, {"posted_text": "again"})
    assert [m.level_tag for m in get_messages(response.wsgi_request)][-1] == "error"  # after two successes
    post.refresh_from_db()
    assert post.posted_text == "报名链接见群公告"


def test_the_plan_form_refuses_bad_input_with_the_reason(client, group, managers):
    client.force_login(managers[0])
    url = reverse("communities:post-plan", args=[group.pk])
    response = client.post(url, {"due_on": "2026-13-45", "kind": "meme", "content_class": "value", "title": ""})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"due_on", "kind", "title"}
    assert not ContentPost.objects.exists()


def test_edit_and_skip_through_the_pages(client, group, managers):
    post = _plan(group, managers[0])
    client.force_login(managers[0])
    edit = reverse("communities:post-edit", args=[group.pk, post.pk])
    assert client.get(edit).context["form"].initial["title"] == "今日话题"
    data = {
        "due_on": (MONDAY + timedelta(days=1)).isoformat(),
        "kind": "faq",
        "content_class": "advanced",
        "title": "进阶",
    }
    assert client.post(edit, data).status_code == 302
    post.refresh_from_db()
    assert (post.due_on, post.kind, post.content_class) == (MONDAY + timedelta(days=1), "faq", "advanced")
    skip = reverse("communities:post-skip", args=[group.pk, post.pk])
    assert client.post(skip, {"reason": "下雨"}).status_code == 302
    post.refresh_from_db()
    assert post.status == PostStatus.SKIPPED


def test_a_second_manager_gets_404_on_every_calendar_page(client, group, managers):
    post = _plan(group, managers[0])
    client.force_login(managers[1])
    pages = [
        ("get", _week_url(group)),
        ("get", reverse("communities:post-plan", args=[group.pk])),
        ("post", reverse("communities:post-plan", args=[group.pk])),
        ("get", reverse("communities:post-edit", args=[group.pk, post.pk])),
        ("post", reverse("communities:post-done", args=[group.pk, post.pk])),
        ("post", reverse("communities:post-skip", args=[group.pk, post.pk])),
    ]
    for method, url in pages:
        assert getattr(client, method)(url).status_code == 404, url
    index = client.get(reverse("communities:calendar"))
    assert index.status_code == 200 and index.context["rows"] == []
    assert "跑步群" not in index.content.decode()
    assert ContentPost.objects.get(pk=post.pk).status == PostStatus.PLANNED


def test_a_viewer_reads_but_may_not_write(client, group, managers, make_user):
    post = _plan(group, managers[0], title="只读")
    client.force_login(make_user("viewer", "look"))
    response = client.get(_week_url(group))
    assert response.status_code == 200 and "只读" in response.content.decode()
    assert response.context["can_post"] is False
    assert reverse("communities:post-plan", args=[group.pk]) not in response.content.decode()
    assert client.post(reverse("communities:post-done", args=[group.pk, post.pk])).status_code == 403
    assert client.get(reverse("communities:post-plan", args=[group.pk])).status_code == 403
    assert ContentPost.objects.get(pk=post.pk).status == PostStatus.PLANNED


def test_a_group_admin_without_can_post_is_forbidden_and_with_it_may_post(client, group, managers, make_user):
    post = _plan(group, managers[0])
    helper = make_user("group_admin", "helper")
    staff = group_services.staff_grant(group=group, user=helper, actor=managers[0], can_post=False)
    client.force_login(helper)
    done_url = reverse("communities:post-done", args=[group.pk, post.pk])
    assert client.get(_week_url(group)).status_code == 200
    assert client.post(done_url).status_code == 403
    group_services.staff_grant(group=group, user=helper, actor=managers[0], can_post=True)
    assert staff.pk == group.staff.get().pk
    assert client.post(done_url).status_code == 302
    assert ContentPost.objects.get(pk=post.pk).done_by == helper


def test_a_post_of_another_group_is_not_found_under_this_one(client, group, managers):
    other = group_services.group_save(group=CommunityGroup(code="b", name="b", owner=managers[0]), actor=managers[0])
    post = _plan(other, managers[0])
    client.force_login(managers[0])
    assert client.post(reverse("communities:post-done", args=[group.pk, post.pk])).status_code == 404
    assert ContentPost.objects.get(pk=post.pk).status == PostStatus.PLANNED


def test_the_home_page_lists_todays_posts_of_ones_own_groups(client, group, managers):
    today = selectors.operator_today()
    _plan(group, managers[0], today, title="今天要发的帖")
    client.force_login(managers[0])
    body = client.get(reverse("dashboards:home")).content.decode()
    assert 'data-card="calendar"' in body and "今天要发的帖" in body
    client.force_login(managers[1])
    body = client.get(reverse("dashboards:home")).content.decode()
    assert 'data-card="calendar"' in body and "今天要发的帖" not in body


def test_the_index_shows_the_mix_of_the_users_groups(client, group, managers):
    _plan(group, managers[0])
    client.force_login(managers[0])
    response = client.get(f"{reverse('communities:calendar')}?week={MONDAY.isoformat()}")
    assert response.status_code == 200
    assert [r["group"] for r in response.context["rows"]] == [group]
    assert response.context["rows"][0]["mix"]["planned_total"] == 1


def test_the_pages_speak_chinese_and_english(group, managers):
    for language, words in [
        ("zh-hans", ["内容日历", "本周 7-2-1 内容配比"]),
        ("en", ["Content calendar", "7-2-1 mix"]),
    ]:
        client = Client(HTTP_ACCEPT_LANGUAGE=language)
        client.force_login(managers[0])
        body = client.get(_week_url(group)).content.decode()
        assert all(w in body for w in words), language


def test_the_week_costs_the_same_queries_with_more_posts(group, managers):
    for i in range(3):
        _plan(group, managers[0], MONDAY + timedelta(days=i))
    with CaptureQueriesContext(connection) as few:
        selectors.group_week(group=group, start=MONDAY)
    for i in range(20):
        services.post_done(post=_plan(group, managers[0], MONDAY + timedelta(days=i % 7)), actor=managers[0])
    with CaptureQueriesContext(connection) as many:
        week = selectors.group_week(group=group, start=MONDAY)
    assert sum(len(d["posts"]) for d in week["days"]) == 23
    assert len(many) == len(few) == 2
