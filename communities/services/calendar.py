"""The content calendar: posts planned for a group's days, then done or skipped.

A post moves ``planned → done`` (who, when and the text as posted are kept) or
``planned → skipped`` (with the reason in the audit row); PostStatus has no
"cancelled", so skipping is how a plan is called off and nothing is ever deleted —
the 7-2-1 mix of past weeks stays true. Only a planned post can be edited, done or
skipped; doing it again is a conflict (409). Every write needs the ``post`` right on
the group (``communities.access``): group admins with ``can_post``, the group's
managers and the admins."""

from datetime import date, datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from core.services import audit_record, audit_snapshot

from .. import access
from ..models import CommunityGroup, ContentClass, ContentPost, PostStatus, SopTemplate, TemplateKind

POST_FIELDS = ["due_on", "due_time", "kind", "content_class", "title", "template"]
MAX_POSTED_TEXT = 10_000


def _check_choices(kind: str, content_class: str) -> None:
    if kind not in TemplateKind.values:
        raise ApplicationError(
            _("Unknown post type %(kind)s.") % {"kind": kind}, code="invalid", details={"kind": [kind]}
        )
    if content_class not in ContentClass.values:
        raise ApplicationError(
            _("Unknown content class %(cls)s; one of %(all)s.")
            % {"cls": content_class, "all": ", ".join(ContentClass.values)},
            code="invalid",
            details={"content_class": [content_class]},
        )


def _check_template(template: SopTemplate | None) -> None:
    if template is not None and not template.is_active:
        raise ApplicationError(
            _("The template %(name)s is not active.") % {"name": template.name},
            code="invalid",
            details={"template": ["inactive"]},
        )


def _validated(post: ContentPost) -> None:
    post.title = (post.title or "").strip()
    if not post.title:
        raise ApplicationError(_("A post needs a title."), code="invalid", details={"title": ["required"]})
    _check_choices(post.kind, post.content_class)
    _check_template(post.template)
    try:
        post.full_clean(exclude=["planned_by", "done_by", "group", "template"])
    except ValidationError as exc:
        details = exc.message_dict
        raise ApplicationError(str(next(iter(details.values()))[0]), code="invalid", details=details) from None


def post_plan(
    *,
    group: CommunityGroup,
    actor,
    due_on: date,
    kind: str,
    content_class: str,
    title: str,
    due_time: time | None = None,
    template: SopTemplate | None = None,
) -> ContentPost:
    """Plans a post on a group's day (past days too: a plan can be written down late)."""
    access.require(actor, group, access.POST)
    post = ContentPost(
        group=group,
        due_on=due_on,
        due_time=due_time,
        kind=kind,
        content_class=content_class,
        title=title,
        template=template,
        planned_by=actor if getattr(actor, "pk", None) else None,
    )
    _validated(post)
    with transaction.atomic():
        post.save()
        audit_record(
            actor=actor,
            action="content_post.plan",
            obj=post,
            before=None,
            after={**audit_snapshot(post, POST_FIELDS), "group": group.code},
        )
    return post


def _locked(post: ContentPost) -> ContentPost:
    """The stored row, locked for the rest of the transaction (two clicks on "done"
    cannot both pass the status check)."""
    return ContentPost.objects.select_for_update().select_related("group").get(pk=post.pk)


def _must_be_planned(post: ContentPost) -> None:
    if post.status != PostStatus.PLANNED:
        raise Conflict(
            _("This post is already %(status)s.") % {"status": post.get_status_display()}, code="post_not_planned"
        )


def post_update(*, post: ContentPost, actor, **changes) -> ContentPost:
    """Changes a planned post's day, time, type, class, title or template."""
    unknown = sorted(set(changes) - set(POST_FIELDS))
    if unknown:
        raise ApplicationError(
            _("Not editable on a post: %(fields)s.") % {"fields": ", ".join(unknown)}, code="invalid"
        )
    access.require(actor, post.group, access.POST)
    with transaction.atomic():
        stored = _locked(post)
        _must_be_planned(stored)
        before = audit_snapshot(stored, POST_FIELDS)
        for name, value in changes.items():
            setattr(stored, name, value)
        _validated(stored)
        after = audit_snapshot(stored, POST_FIELDS)
        if before != after:
            stored.save(update_fields=[name for name in POST_FIELDS if before[name] != after[name]])
            audit_record(actor=actor, action="content_post.update", obj=stored, before=before, after=after)
    return stored


def post_done(*, post: ContentPost, actor, posted_text: str = "", done_at: datetime | None = None) -> ContentPost:
    """Marks a planned post done: who, when, and the text as it was posted."""
    access.require(actor, post.group, access.POST)
    posted_text = (posted_text or "").strip()
    if len(posted_text) > MAX_POSTED_TEXT:
        raise ApplicationError(
            _("The posted text is longer than %(n)s characters.") % {"n": MAX_POSTED_TEXT},
            code="invalid",
            details={"posted_text": ["too long"]},
        )
    with transaction.atomic():
        stored = _locked(post)
        _must_be_planned(stored)
        stored.status = PostStatus.DONE
        stored.done_by = actor if getattr(actor, "pk", None) else None
        stored.done_at = done_at or timezone.now()
        stored.posted_text = posted_text
        stored.save(update_fields=["status", "done_by", "done_at", "posted_text"])
        audit_record(
            actor=actor,
            action="content_post.done",
            obj=stored,
            changes={"status": [PostStatus.PLANNED, PostStatus.DONE], "done_at": [None, stored.done_at.isoformat()]},
        )
    return stored


def post_skip(*, post: ContentPost, actor, reason: str = "") -> ContentPost:
    """Calls a planned post off (skipped); the reason goes into the audit row."""
    access.require(actor, post.group, access.POST)
    with transaction.atomic():
        stored = _locked(post)
        _must_be_planned(stored)
        stored.status = PostStatus.SKIPPED
        stored.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="content_post.skip",
            obj=stored,
            changes={"status": [PostStatus.PLANNED, PostStatus.SKIPPED], "reason": (reason or "").strip()[:300]},
        )
    return stored
