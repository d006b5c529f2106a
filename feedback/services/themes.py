"""Themes: recurring feedback grouped by similar text (the grouping is
``feedback.themes``), confirmed, renamed or dismissed by an operator, and handed to
the product roadmap with a status.

``themes_suggest`` is the periodic job. It reads the tickets no theme holds yet (recent
or still open, duplicates merged into another ticket left out) and the most recent
members of every live theme (suggested or confirmed); those members seed their theme,
so a new ticket like a theme's joins it, and the rest form new *suggested* themes. It
never takes a ticket out of a theme, renames one or changes its status. A dismissed
theme keeps its tickets (so the same lines are not suggested again) but draws no new
ones: a fresh wave of the same complaint is suggested anew."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber, Substr
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict, NotFound
from core.services import audit_record, audit_record_many, audit_snapshot

from ..models import OPEN_STATUSES, RoadmapItem, Theme, Ticket
from ..themes import DEFAULT_THRESHOLD, central_member, themes_grow

#: at most this many unthemed tickets (the most recent) are grouped per run, so a run's
#: cost stays bounded: the grouping took about 5 s for 5,000 varied texts and 14 s for
#: 10,000 on one core here; an outage that makes a third of them near-identical costs
#: more (a dense graph: about a minute for 5,000)
SUGGEST_MAX_TICKETS = 5000
#: a theme is represented by its most recent members, this many
SEED_MEMBERS = 20
#: characters of a ticket's body that are compared (with its subject)
BODY_CHARS = 400
LIVE_STATUSES = [Theme.Status.SUGGESTED, Theme.Status.CONFIRMED]
#: ticket ids per UPDATE statement (bound parameters stay well under SQLite's limit)
UPDATE_CHUNK = 500

_THEME_AUDITED = ("name", "status")
_ROADMAP_AUDITED = ("title", "status")


def ticket_text(subject: str, body: str) -> str:
    return f"{subject}\n{(body or '')[:BODY_CHARS]}"


def _pool(*, since: datetime, now: datetime) -> list[tuple[int, str, str]]:
    rows = (
        Ticket.objects.filter(merged_into__isnull=True, theme__isnull=True, created_at__lte=now)
        .filter(Q(created_at__gte=since) | Q(status__in=OPEN_STATUSES))
        .order_by("-created_at", "-id")
        .values_list("id", "subject", Substr("body", 1, BODY_CHARS))[:SUGGEST_MAX_TICKETS]
    )
    return list(rows)


def _seed_rows() -> list[tuple[int, int, str, str]]:
    """(ticket id, theme id, subject, body) of each live theme's most recent members."""
    rank = Window(RowNumber(), partition_by=[F("theme_id")], order_by=[F("created_at").desc(), F("id").desc()])
    return list(
        Ticket.objects.filter(theme__status__in=LIVE_STATUSES, merged_into__isnull=True)
        .annotate(rank=rank)
        .filter(rank__lte=SEED_MEMBERS)
        .values_list("id", "theme_id", "subject", Substr("body", 1, BODY_CHARS))
    )


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _tickets_theme_set(assignment: dict[int, int]) -> int:
    """Sets ``theme_id`` of the tickets in ``{ticket id: theme id}``: one UPDATE per
    chunk of ids, a CASE picking each ticket's theme. A ticket that has got a theme
    since it was read (an operator, a concurrent run) keeps it."""
    updated = 0
    for chunk in _chunks(sorted(assignment), UPDATE_CHUNK):
        by_theme: dict[int, list[int]] = {}
        for ticket_id in chunk:
            by_theme.setdefault(assignment[ticket_id], []).append(ticket_id)
        case = Case(
            *(When(id__in=ids, then=Value(theme_id)) for theme_id, ids in by_theme.items()),
            output_field=IntegerField(),
        )
        updated += Ticket.objects.filter(id__in=chunk, theme__isnull=True).update(theme_id=case)
    return updated


def _label(group: list[int], texts: dict[int, str], subjects: dict[int, str]) -> str:
    name = " ".join(subjects[central_member(group, texts)].split())
    max_length = Theme._meta.get_field("name").max_length
    return name if len(name) <= max_length else name[: max_length - 1] + "…"


def themes_suggest(*, since: datetime, now: datetime | None = None, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Groups the unthemed tickets created since ``since`` (and any still open): those
    like a live theme join it, the other groups become suggested themes named after
    their most central ticket's subject. Returns the counts."""
    now = now or timezone.now()
    pool = _pool(since=since, now=now)
    seed_rows = _seed_rows()
    texts = {tid: ticket_text(subject, body) for tid, subject, body in pool}
    subjects = {tid: subject for tid, subject, _body in pool}
    seeds: dict[int, list[int]] = {}
    for tid, theme_id, subject, body in seed_rows:
        texts[tid] = ticket_text(subject, body)
        seeds.setdefault(theme_id, []).append(tid)
    counts = {"tickets_read": len(pool), "seed_tickets": len(seed_rows), "joined": 0, "themes_created": 0}
    if not pool or (len(pool) < 2 and not seeds):
        return {**counts, "grouped": 0}
    joins, groups = themes_grow(texts, seeds=seeds, threshold=threshold)
    with transaction.atomic():
        # A theme dismissed while the texts were being compared draws nobody.
        live = set(Theme.objects.filter(pk__in=list(joins), status__in=LIVE_STATUSES).values_list("pk", flat=True))
        assignment = {tid: theme_id for theme_id, ids in joins.items() if theme_id in live for tid in ids}
        joined = _tickets_theme_set(assignment)
        created = Theme.objects.bulk_create(
            [Theme(name=_label(g, texts, subjects), created_at=now, updated_at=now) for g in groups]
        )
        new_assignment = {tid: theme.pk for theme, group in zip(created, groups, strict=True) for tid in group}
        grouped = _tickets_theme_set(new_assignment)
        if assignment:
            Theme.objects.filter(pk__in=set(assignment.values())).update(updated_at=now)
        audit_record_many(
            actor=None,
            action="theme.suggest",
            items=[
                (theme, {"name": [None, theme.name], "tickets": len(group)})
                for theme, group in zip(created, groups, strict=True)
            ],
        )
    return {**counts, "joined": joined, "themes_created": len(created), "grouped": grouped}


# --- an operator's decisions ---------------------------------------------------------


def _theme_locked(theme: Theme) -> Theme:
    try:
        return Theme.objects.select_for_update().get(pk=theme.pk)
    except Theme.DoesNotExist as exc:
        raise NotFound(_("This theme no longer exists."), code="theme_not_found") from exc


def _theme_save(*, theme: Theme, actor, action: str, **changes) -> Theme:
    """Locks the theme, applies ``changes`` and audits them from → to; no change, no write."""
    with transaction.atomic():
        current = _theme_locked(theme)
        before = audit_snapshot(current, _THEME_AUDITED)
        for name, value in changes.items():
            setattr(current, name, value)
        after = audit_snapshot(current, _THEME_AUDITED)
        if before == after:
            return current
        current.updated_at = timezone.now()
        current.save(update_fields=[*changes, "updated_at"])
        audit_record(actor=actor, action=action, obj=current, before=before, after=after)
    return current


def theme_confirm(*, theme: Theme, actor) -> Theme:
    """A suggested (or dismissed) theme becomes confirmed; confirming twice changes nothing."""
    return _theme_save(theme=theme, actor=actor, action="theme.confirm", status=Theme.Status.CONFIRMED)


def theme_rename(*, theme: Theme, name: str, actor) -> Theme:
    name = " ".join((name or "").split())
    if not name:
        raise ApplicationError(_("A theme needs a name."), code="name_required")
    max_length = Theme._meta.get_field("name").max_length
    if len(name) > max_length:
        raise ApplicationError(
            _("A theme's name has at most %(max)d characters.") % {"max": max_length},
            code="name_too_long",
            details={"max_length": max_length},
        )
    return _theme_save(theme=theme, actor=actor, action="theme.rename", name=name)


def theme_dismiss(*, theme: Theme, actor) -> Theme:
    """Not a theme after all. Its tickets stay linked (the grouping does not suggest them
    again); a theme on the roadmap cannot be dismissed."""
    with transaction.atomic():
        current = _theme_locked(theme)
        if RoadmapItem.objects.filter(theme=current).exists():
            raise ApplicationError(
                _("This theme is on the product roadmap; it cannot be dismissed."), code="theme_on_roadmap"
            )
        return _theme_save(theme=current, actor=actor, action="theme.dismiss", status=Theme.Status.DISMISSED)


def theme_to_roadmap(*, theme: Theme, title: str, actor) -> RoadmapItem:
    """Hands a confirmed theme to the product roadmap as a proposed item."""
    title = " ".join((title or "").split())
    if not title:
        raise ApplicationError(_("A roadmap item needs a title."), code="title_required")
    max_length = RoadmapItem._meta.get_field("title").max_length
    if len(title) > max_length:
        raise ApplicationError(
            _("A roadmap item's title has at most %(max)d characters.") % {"max": max_length},
            code="title_too_long",
            details={"max_length": max_length},
        )
    with transaction.atomic():
        current = _theme_locked(theme)
        if current.status != Theme.Status.CONFIRMED:
            raise ApplicationError(
                _("Only a confirmed theme can go on the roadmap; confirm it first."), code="theme_not_confirmed"
            )
        if RoadmapItem.objects.filter(theme=current).exists():
            raise Conflict(_("This theme is already on the roadmap."), code="already_on_roadmap")
        now = timezone.now()
        try:
            with transaction.atomic():
                item = RoadmapItem.objects.create(theme=current, title=title, created_at=now, updated_at=now)
        except IntegrityError as exc:  # a concurrent hand-off won the one-to-one
            raise Conflict(_("This theme is already on the roadmap."), code="already_on_roadmap") from exc
        audit_record(
            actor=actor,
            action="roadmap_item.create",
            obj=item,
            before={},
            after={**audit_snapshot(item, _ROADMAP_AUDITED), "theme": current.pk},
        )
    return item


def roadmap_item_set_status(*, item: RoadmapItem, status: str, actor) -> RoadmapItem:
    if status not in RoadmapItem.Status.values:
        raise ApplicationError(
            _("Unknown roadmap status: %(status)s.") % {"status": status},
            code="invalid_status",
            details={"allowed": list(RoadmapItem.Status.values)},
        )
    with transaction.atomic():
        try:
            current = RoadmapItem.objects.select_for_update().get(pk=item.pk)
        except RoadmapItem.DoesNotExist as exc:
            raise NotFound(_("This roadmap item no longer exists."), code="roadmap_item_not_found") from exc
        if current.status == status:
            return current
        before = audit_snapshot(current, _ROADMAP_AUDITED)
        current.status = status
        current.updated_at = timezone.now()
        current.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="roadmap_item.status",
            obj=current,
            before=before,
            after=audit_snapshot(current, _ROADMAP_AUDITED),
        )
    return current
