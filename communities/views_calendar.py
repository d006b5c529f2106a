"""The content calendar pages: the week's 7-2-1 mix across the user's groups, a group's
week (prev/next), planning and editing a post, marking it done or skipped.

Who sees what is ``communities.access``: a group the user may not see is a 404 (a
second manager learns nothing of the first one's groups); writing needs the ``post``
right (group admins with "can post", the group's managers, admins) — a viewer of the
group gets a 403. Every write goes through ``communities.services.calendar``; a refused
write shows the service's message and writes nothing."""

from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import ApplicationError, NotFound
from core.validation import DATE_MAX, DATE_MIN

from . import access
from .forms_calendar import DoneForm, PostForm, SkipForm
from .models import CommunityGroup, ContentPost
from .selectors import calendar as selectors
from .services import calendar as services
from .views_access import page_group as _group


def _ctx(**extra) -> dict:
    return {"display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE, **extra}


def _post(group: CommunityGroup, post_id) -> ContentPost:
    try:
        return selectors.post_get(group=group, post_id=post_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _week(request) -> date:
    """The Monday of the week asked for (``?week=YYYY-MM-DD``, any day of it); this
    week when absent, and this week with a message when it is not a date."""
    raw = request.GET.get("week", "")[:40]
    if raw:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            messages.error(request, _("%(value)s is not a date (YYYY-MM-DD); showing this week.") % {"value": raw})
        else:
            # The weeks around it must be dates too (year 1 and 9999 have no neighbours).
            if DATE_MIN <= day <= DATE_MAX:
                return selectors.week_start(day)
            messages.error(
                request,
                _("%(value)s is not between %(min)s and %(max)s; showing this week.")
                % {"value": raw, "min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()},
            )
    return selectors.week_start(selectors.operator_today())


def _week_url(group: CommunityGroup, day: date) -> str:
    return f"{reverse('communities:group-calendar', args=[group.pk])}?week={selectors.week_start(day).isoformat()}"


@login_required
@permission_required("communities.view_contentpost", raise_exception=True)
def calendar_index(request):
    start = _week(request)
    return render(
        request,
        "communities/calendar/index.html",
        _ctx(
            start=start,
            prev=start - timedelta(days=7),
            next=start + timedelta(days=7),
            rows=selectors.mix_overview(user=request.user, start=start),
            today=selectors.operator_today(),
        ),
    )


@login_required
@permission_required("communities.view_contentpost", raise_exception=True)
def calendar_week(request, group_id: int):
    group = _group(request, group_id)
    week = selectors.group_week(group=group, start=_week(request))
    return render(
        request,
        "communities/calendar/week.html",
        _ctx(
            group=group,
            week=week,
            can_post=access.POST in access.rights_of(request.user, group),
            today=selectors.operator_today(),
            done_form=DoneForm(),
            skip_form=SkipForm(),
        ),
    )


def _form_page(request, group, form, *, post=None, status=200):
    return render(
        request,
        "communities/calendar/post_form.html",
        _ctx(group=group, form=form, post=post),
        status=status,
    )


@login_required
@permission_required("communities.change_contentpost", raise_exception=True)
def calendar_plan(request, group_id: int):
    group = _group(request, group_id, right=access.POST)
    if request.method != "POST":
        initial = {"due_on": request.GET.get("day") or selectors.operator_today()}
        return _form_page(request, group, PostForm(initial=initial))
    form = PostForm(request.POST)
    if not form.is_valid():
        return _form_page(request, group, form, status=400)
    try:
        post = services.post_plan(group=group, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _form_page(request, group, form, status=exc.status_code)
    messages.success(request, _("Post planned for %(day)s.") % {"day": post.due_on.isoformat()})
    return redirect(_week_url(group, post.due_on))


@login_required
@permission_required("communities.change_contentpost", raise_exception=True)
def calendar_post_edit(request, group_id: int, post_id: int):
    group = _group(request, group_id, right=access.POST)
    post = _post(group, post_id)
    if request.method != "POST":
        initial = {name: getattr(post, name) for name in services.POST_FIELDS}
        return _form_page(request, group, PostForm(initial=initial), post=post)
    form = PostForm(request.POST)
    if not form.is_valid():
        return _form_page(request, group, form, post=post, status=400)
    try:
        post = services.post_update(post=post, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _form_page(request, group, form, post=post, status=exc.status_code)
    messages.success(request, _("Post updated."))
    return redirect(_week_url(group, post.due_on))


@login_required
@require_POST
@permission_required("communities.change_contentpost", raise_exception=True)
def calendar_post_done(request, group_id: int, post_id: int):
    group = _group(request, group_id, right=access.POST)
    post = _post(group, post_id)
    form = DoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(_week_url(group, post.due_on))
    try:
        services.post_done(post=post, actor=request.user, posted_text=form.cleaned_data["posted_text"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("“%(title)s” marked done.") % {"title": post.title})
    return redirect(_week_url(group, post.due_on))


@login_required
@require_POST
@permission_required("communities.change_contentpost", raise_exception=True)
def calendar_post_skip(request, group_id: int, post_id: int):
    group = _group(request, group_id, right=access.POST)
    post = _post(group, post_id)
    form = SkipForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.post_skip(post=post, actor=request.user, reason=reason)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("“%(title)s” skipped.") % {"title": post.title})
    return redirect(_week_url(group, post.due_on))
