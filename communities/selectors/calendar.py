"""Reads of the content calendar: a group's week, the 7-2-1 mix planned against done,
and the day's due posts of the groups a user may see.

The 7-2-1 mix (70% everyday value, 20% surprise, 10% advanced): "planned" counts the
week's posts that were not skipped (planned or done), "done" those marked done; each
class's share is of its own column's total, shown next to the target share. Weeks
start on Monday; days are the operators' days (``core.timezones``)."""

from datetime import date, datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound
from core.timezones import operator_timezone

from .. import access
from ..models import CommunityGroup, ContentClass, ContentPost, PostStatus, SopTemplate, TemplateKind

# The target share of each content class, in percent.
MIX_TARGET = {ContentClass.VALUE: 70, ContentClass.SURPRISE: 20, ContentClass.ADVANCED: 10}


def operator_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(operator_timezone()).date()


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def week_posts(*, group: CommunityGroup, start: date) -> QuerySet[ContentPost]:
    return (
        ContentPost.objects.filter(group=group, due_on__gte=start, due_on__lt=start + timedelta(days=7))
        .select_related("template", "planned_by", "done_by")
        .order_by("due_on", "due_time", "id")
    )


def group_week(*, group: CommunityGroup, start: date) -> dict:
    """The week from Monday ``start``: each day's posts, and the counts by type and by
    content class (skipped posts are listed but not counted)."""
    start = week_start(start)
    posts = list(week_posts(group=group, start=start))
    days = [{"day": start + timedelta(days=i), "posts": []} for i in range(7)]
    by_kind: dict[str, int] = {}
    by_class = dict.fromkeys(ContentClass.values, 0)
    for post in posts:
        days[(post.due_on - start).days]["posts"].append(post)
        if post.status != PostStatus.SKIPPED:
            by_kind[post.kind] = by_kind.get(post.kind, 0) + 1
            by_class[post.content_class] += 1
    return {
        "start": start,
        "end": start + timedelta(days=6),
        "prev": start - timedelta(days=7),
        "next": start + timedelta(days=7),
        "days": days,
        "by_kind": [{"kind": kind, "label": TemplateKind(kind).label, "n": n} for kind, n in sorted(by_kind.items())],
        "by_class": by_class,
        "mix": mix_for_groups(group_ids=[group.pk], start=start)[group.pk],
    }


def _share(n: int, total: int) -> float | None:
    return None if total == 0 else round(100 * n / total, 1)


def _mix_row(counts: dict[tuple[str, str], int]) -> dict:
    classes = []
    planned_total = sum(n for (cls, status), n in counts.items() if status != PostStatus.SKIPPED)
    done_total = sum(n for (cls, status), n in counts.items() if status == PostStatus.DONE)
    for cls in ContentClass:
        planned = counts.get((cls.value, PostStatus.PLANNED), 0) + counts.get((cls.value, PostStatus.DONE), 0)
        done = counts.get((cls.value, PostStatus.DONE), 0)
        classes.append(
            {
                "content_class": cls.value,
                "label": cls.label,
                "target_percent": MIX_TARGET[cls],
                "planned": planned,
                "planned_percent": _share(planned, planned_total),
                "done": done,
                "done_percent": _share(done, done_total),
            }
        )
    return {
        "classes": classes,
        "planned_total": planned_total,
        "done_total": done_total,
        "skipped_total": sum(n for (cls, status), n in counts.items() if status == PostStatus.SKIPPED),
    }


def mix_for_groups(*, group_ids: list[int], start: date) -> dict[int, dict]:
    """The week's 7-2-1 mix of each group, planned against done: one grouped query
    whatever the number of groups."""
    start = week_start(start)
    rows = (
        ContentPost.objects.filter(group_id__in=group_ids, due_on__gte=start, due_on__lt=start + timedelta(days=7))
        .values("group_id", "content_class", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[int, dict[tuple[str, str], int]] = {pk: {} for pk in group_ids}
    for row in rows:
        counts[row["group_id"]][(row["content_class"], row["status"])] = row["n"]
    return {pk: _mix_row(c) for pk, c in counts.items()}


def mix_overview(*, user, start: date) -> list[dict]:
    """The week's mix for every group the user may see, by group name."""
    groups = list(access.groups_visible(user).order_by("name", "id"))
    mixes = mix_for_groups(group_ids=[g.pk for g in groups], start=start)
    return [{"group": g, "mix": mixes[g.pk]} for g in groups]


def posts_due(*, user, day: date) -> list[ContentPost]:
    """The posts due on ``day`` (planned or done, not skipped) in the groups the user
    may see, by time; nothing for a user without the calendar's view permission."""
    if not user.has_perm("communities.view_contentpost"):
        return []
    return list(
        ContentPost.objects.filter(group__in=access.groups_visible(user), due_on=day)
        .exclude(status=PostStatus.SKIPPED)
        .select_related("group", "template", "done_by")
        .order_by("due_time", "group__name", "id")
    )


def post_get(*, group: CommunityGroup, post_id) -> ContentPost:
    """A post of that group (a post id from another group is not found)."""
    try:
        return ContentPost.objects.select_related("group", "template").get(group=group, pk=int(post_id))
    except (ContentPost.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("No post %(id)s.") % {"id": post_id}, code="unknown_post") from None


def templates_usable() -> QuerySet[SopTemplate]:
    """The SOP templates a post may be planned from: the active ones."""
    return SopTemplate.objects.filter(is_active=True).order_by("kind", "name")
