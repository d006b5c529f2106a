"""Operator pages of the ticket queue: the queue (filters, urgency order, bulk assign),
a ticket (conversation, SLA, the customer's 360 summary, replies with canned text,
notes, workflow buttons, assignment, re-prioritising, merge, history), a new ticket for
customer service, and attachment downloads.

Views validate, check permissions and call one service or selector; a refusal
(``ApplicationError``) is shown and nothing is written, since each service writes in one
transaction. Viewing needs ``feedback.view_ticket`` and the ticket in the viewer's
queues (404 otherwise); replying ``feedback.reply_ticket``; everything else that changes
a ticket ``feedback.change_ticket``."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError, NotFound

from . import workflow
from .display import basis_lines, event_view, queue_rows, target_panel
from .forms import (
    AssignForm,
    BulkAssignForm,
    MergeForm,
    NoteForm,
    QueueFilterForm,
    ReplyForm,
    TicketNewForm,
    TicketUpdateForm,
    TransitionForm,
)
from .forms_sop import CannedFieldsForm
from .models import Status, Ticket
from .selectors import pages as page_selectors
from .selectors import sla as sla_selectors
from .selectors import tickets as ticket_selectors
from .services import canned as canned_services
from .services import tickets as ticket_services


def _ctx(**extra) -> dict:
    return {"display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE, **extra}


def _ticket_or_404(request, ticket_id: int) -> Ticket:
    try:
        return ticket_selectors.ticket_get(viewer=request.user, ticket_id=ticket_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _back(ticket: Ticket):
    return redirect("feedback:ticket", ticket_id=ticket.pk)


def _refused(request, exc: ApplicationError, ticket: Ticket):
    messages.error(request, exc.message)
    return _back(ticket)


def _team(code: str):
    return next((t for t in page_selectors.teams_all() if t.code == code), None) if code else None


def _person(pk: str, rosters):
    return next((u for _t, users in rosters for u in users if str(u.pk) == pk), None) if pk else None


# --- the queue ----------------------------------------------------------------------


def _queue_url(filters: dict, **extra) -> str:
    query = urlencode({**filters, **extra})
    return reverse("feedback:queue") + (f"?{query}" if query else "")


@login_required
@permission_required("feedback.view_ticket", raise_exception=True)
def queue(request):
    viewer = request.user
    rosters = page_selectors.team_rosters()
    visible_ids = {t.pk for t in ticket_selectors.teams_visible(viewer=viewer)}
    teams = [team for team, _users in rosters]
    form = QueueFilterForm(
        request.GET,
        teams=[t for t in teams if t.pk in visible_ids],
        rosters=[(t, users) for t, users in rosters if t.pk in visible_ids],
    )
    filters = form.filters()
    now = timezone.now()
    page = page_selectors.queue_page(
        viewer=viewer, filters=filters, after=request.GET.get("after"), limit=page_selectors.PAGE_SIZE
    )
    can_change = viewer.has_perm("feedback.change_ticket")
    return render(
        request,
        "feedback/queue.html",
        _ctx(
            form=form,
            filters=filters,
            page=page,
            rows=queue_rows(page.tickets, now),
            next_url=_queue_url(filters, after=page.next_cursor) if page.next_cursor else None,
            first_url=_queue_url(filters) if request.GET.get("after") else None,
            here=request.get_full_path(),
            can_change=can_change,
            bulk_form=BulkAssignForm(teams=teams, rosters=rosters) if can_change else None,
        ),
    )


def _safe_next(request, url: str) -> str:
    ok = url and url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure())
    return url if ok else reverse("feedback:queue")


@login_required
@require_POST
@permission_required("feedback.change_ticket", raise_exception=True)
def bulk_assign(request):
    rosters = page_selectors.team_rosters()
    form = BulkAssignForm(request.POST, teams=[t for t, _u in rosters], rosters=rosters)
    back = _safe_next(request, request.POST.get("bulk-next", ""))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    ids = form.cleaned_data["tickets"]
    unseen = sorted(set(ids) - page_selectors.tickets_visible_ids(viewer=request.user, ticket_ids=ids))
    if unseen:
        messages.error(
            request,
            _("Unknown ticket(s): %(ids)s. Nothing was assigned.") % {"ids": ", ".join(f"#{i}" for i in unseen)},
        )
        return redirect(back)
    team, assignee = _team(form.cleaned_data["team"]), _person(form.cleaned_data["assignee"], rosters)
    try:
        count = ticket_services.tickets_assign_bulk(ticket_ids=ids, team=team, assignee=assignee, actor=request.user)
    except ApplicationError as exc:
        which = (exc.details or {}).get("ticket") if isinstance(exc.details, dict) else None
        prefix = _("Ticket #%(id)s: ") % {"id": which} if which else ""
        messages.error(request, prefix + exc.message + " " + _("Nothing was assigned."))
        return redirect(back)
    messages.success(
        request,
        _("%(count)s ticket(s) assigned to %(team)s, %(who)s.")
        % {"count": count, "team": team, "who": assignee.get_username() if assignee else _("nobody in particular")},
    )
    return redirect(back)


# --- one ticket ---------------------------------------------------------------------


def _follow_ups(status: str) -> set[str]:
    """What "send and …" can do from ``status``: a reply starts work on a new or triaged
    ticket first, then the workflow decides (a refused follow-up would undo the reply)."""
    after_reply = workflow.target_of("start", status) if status in (Status.NEW, Status.TRIAGED) else status
    return {then for then in ("wait", "resolve") if after_reply and workflow.target_of(then, after_reply)}


def _ticket_context(request, ticket: Ticket, *, reply_form=None, note_form=None) -> dict:
    user, now = request.user, timezone.now()
    can_reply, can_change = user.has_perm("feedback.reply_ticket"), user.has_perm("feedback.change_ticket")
    merged = ticket.merged_into_id is not None
    rosters = page_selectors.team_rosters() if can_change else []
    return _ctx(
        ticket=ticket,
        now=now,
        can_reply=can_reply,
        can_change=can_change,
        is_merged=merged,
        is_closed=ticket.status == Status.CLOSED,
        follow_ups=_follow_ups(ticket.status),
        actions=[]
        if merged or not can_change
        else [(a, workflow.ACTION_LABELS[a]) for a in workflow.actions_from(ticket.status)],
        basis=basis_lines(ticket.priority_basis),
        sla=[target_panel(row, now) for row in sla_selectors.sla_state(ticket=ticket, now=now)],
        summary=page_selectors.customer_summary(customer=ticket.customer),
        conversation=list(ticket_selectors.ticket_conversation(ticket=ticket, include_notes=True)),
        attachments=list(page_selectors.ticket_attachments(ticket=ticket)),
        merged=list(page_selectors.tickets_merged(ticket=ticket)),
        history=[event_view(e) for e in ticket_selectors.ticket_history(ticket=ticket)],
        canned=list(page_selectors.canned_replies()) if can_reply else [],
        reply_form=reply_form or ReplyForm(),
        note_form=note_form or NoteForm(),
        assign_form=AssignForm(
            teams=[t for t, _u in rosters],
            rosters=rosters,
            initial={"team": ticket.team.code if ticket.team else "", "assignee": ticket.assignee_id or ""},
        )
        if can_change
        else None,
        update_form=TicketUpdateForm(initial={f: getattr(ticket, f) for f in TicketUpdateForm.base_fields})
        if can_change
        else None,
        merge_form=MergeForm() if can_change else None,
    )


def _canned_text(request, ticket: Ticket, reply_id: str) -> str | None:
    """The legacy canned reply ``reply_id`` filled in for this ticket (without
    JavaScript the "insert" button reloads the page with ``?canned=``); a message when
    it cannot be."""
    if not reply_id.isdigit() or not request.user.has_perm("feedback.reply_ticket"):
        return None
    try:
        reply = page_selectors.canned_reply_get(reply_id=int(reply_id))
        return canned_services.canned_reply_render(reply=reply, ticket=ticket, operator=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return None


def _sop_id(key: str) -> int | None:
    rest = key.removeprefix(page_selectors.SOP_KEY)
    return int(rest) if key.startswith(page_selectors.SOP_KEY) and rest.isdigit() and len(rest) <= 9 else None


def _canned_sop(request, ticket: Ticket, template_id: int) -> tuple[str | None, CannedFieldsForm | None]:
    """An SOP template chosen as the reply: ``(text, None)`` once its declared fields are
    filled in (or when it has none); ``(None, form)`` to ask for them, with the reasons
    beside the boxes when they were refused."""
    try:
        template = page_selectors.canned_template_get(template_id=template_id)
    except NotFound as exc:
        messages.error(request, exc.message)
        return None, None
    declared = template.approved_version.fields or []
    asked = "cf-filled" in request.GET
    if declared and not asked:
        return None, CannedFieldsForm(declared=declared)
    form = CannedFieldsForm(request.GET, declared=declared)
    form.is_valid()  # plain text boxes: the types are checked by the template's rendering
    try:
        text = canned_services.canned_template_render(
            template=template, ticket=ticket, operator=request.user, fields=form.values()
        )
    except ApplicationError as exc:
        if exc.code == "invalid_fields":
            form.add_reasons(exc.details)
        else:
            messages.error(request, exc.message)
        return None, form if declared else None
    return text, None


@login_required
@permission_required("feedback.view_ticket", raise_exception=True)
def ticket_detail(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    key = request.GET.get("canned", "")
    text, fields_form = None, None
    if _sop_id(key) is not None and request.user.has_perm("feedback.reply_ticket"):
        text, fields_form = _canned_sop(request, ticket, _sop_id(key))
    else:
        text = _canned_text(request, ticket, key)
    reply_form = ReplyForm(initial={"body": text}) if text else None
    context = _ticket_context(request, ticket, reply_form=reply_form)
    context.update(canned_key=key, canned_fields_form=fields_form)
    return render(request, "feedback/ticket.html", context)


def _json_error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
        status=exc.status_code,
        json_dumps_params={"ensure_ascii": False},
    )


@login_required
@require_GET
@permission_required("feedback.reply_ticket", raise_exception=True)
def canned_render(request, ticket_id: int, reply_id: int):
    """``{"body"}``: a legacy canned reply filled in for the ticket (the reply form's
    select fetches it), or ``{"error": {"code", "message", "details"}}``."""
    ticket = _ticket_or_404(request, ticket_id)
    try:
        reply = page_selectors.canned_reply_get(reply_id=reply_id)
        body = canned_services.canned_reply_render(reply=reply, ticket=ticket, operator=request.user)
    except ApplicationError as exc:
        return _json_error(exc)
    return JsonResponse({"body": body}, json_dumps_params={"ensure_ascii": False})


@login_required
@require_GET
@permission_required("feedback.reply_ticket", raise_exception=True)
def canned_sop_render(request, ticket_id: int, template_id: int):
    """``{"body"}``: an approved SOP template filled in for the ticket with the declared
    fields given as ``?cf-<name>=`` (missing or ill-typed ones: 400 ``invalid_fields``
    with a reason per field in ``details``)."""
    ticket = _ticket_or_404(request, ticket_id)
    try:
        template = page_selectors.canned_template_get(template_id=template_id)
        form = CannedFieldsForm(request.GET, declared=template.approved_version.fields or [])
        form.is_valid()
        body = canned_services.canned_template_render(
            template=template, ticket=ticket, operator=request.user, fields=form.values()
        )
    except ApplicationError as exc:
        return _json_error(exc)
    return JsonResponse({"body": body}, json_dumps_params={"ensure_ascii": False})


@login_required
@require_POST
@permission_required("feedback.reply_ticket", raise_exception=True)
def ticket_reply(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    form = ReplyForm(request.POST)
    if form.is_valid():
        then = form.cleaned_data["then"] or None
        try:
            ticket_services.ticket_reply(ticket=ticket, body=form.cleaned_data["body"], actor=request.user, then=then)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            if then == "wait":
                messages.success(request, _("Reply sent; the ticket waits on the customer (its clock is paused)."))
            elif then == "resolve":
                messages.success(request, _("Reply sent; the ticket is resolved."))
            else:
                messages.success(request, _("Reply sent."))
            return _back(ticket)
    # The typed reply stays in the form with the error beside it.
    return render(request, "feedback/ticket.html", _ticket_context(request, ticket, reply_form=form))


@login_required
@require_POST
@permission_required("feedback.change_ticket", raise_exception=True)
def ticket_note(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            ticket_services.ticket_note(ticket=ticket, body=form.cleaned_data["body"], actor=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Internal note added."))
            return _back(ticket)
    return render(request, "feedback/ticket.html", _ticket_context(request, ticket, note_form=form))


@login_required
@require_POST
@permission_required("feedback.change_ticket", raise_exception=True)
def ticket_transition(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Unknown action."))
        return _back(ticket)
    try:
        moved = ticket_services.ticket_transition(ticket=ticket, action=form.cleaned_data["action"], actor=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, ticket)
    messages.success(request, _("The ticket is now %(status)s.") % {"status": moved.get_status_display()})
    return _back(ticket)


@login_required
@require_POST
@permission_required("feedback.change_ticket", raise_exception=True)
def ticket_assign(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    rosters = page_selectors.team_rosters()
    if "take" in request.POST:
        team, assignee = ticket.team, request.user
    else:
        form = AssignForm(request.POST, teams=[t for t, _u in rosters], rosters=rosters)
        if not form.is_valid():
            messages.error(request, _("Choose a team and a person from the lists."))
            return _back(ticket)
        team, assignee = _team(form.cleaned_data["team"]), _person(form.cleaned_data["assignee"], rosters)
    try:
        ticket_services.ticket_assign(ticket=ticket, team=team, assignee=assignee, actor=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, ticket)
    if assignee is not None and assignee.pk == request.user.pk:
        messages.success(request, _("You took this ticket."))
    else:
        messages.success(request, _("Assignment saved."))
    return _back(ticket)


@login_required
@require_POST
@permission_required("feedback.change_ticket", raise_exception=True)
def ticket_update(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    form = TicketUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose each value from its list."))
        return _back(ticket)
    changes = form.changes(ticket)
    if not changes:
        messages.info(request, _("Nothing changed."))
        return _back(ticket)
    try:
        ticket_services.ticket_update(ticket=ticket, actor=request.user, **changes)
    except ApplicationError as exc:
        return _refused(request, exc, ticket)
    messages.success(request, _("Ticket updated."))
    return _back(ticket)


@login_required
@require_POST
@permission_required("feedback.change_ticket", raise_exception=True)
def ticket_merge(request, ticket_id: int):
    ticket = _ticket_or_404(request, ticket_id)
    form = MergeForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["into"][0])
        return _back(ticket)
    try:
        into = ticket_selectors.ticket_get(viewer=request.user, ticket_id=form.cleaned_data["into"])
    except NotFound:
        messages.error(request, _("There is no ticket #%(id)s in your queues.") % {"id": form.cleaned_data["into"]})
        return _back(ticket)
    try:
        ticket_services.ticket_merge(duplicate=ticket, into=into, actor=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, ticket)
    messages.success(request, _("#%(dup)s was merged into this ticket.") % {"dup": ticket.pk})
    return _back(into)


@login_required
@permission_required("feedback.view_ticket", raise_exception=True)
def attachment_download(request, attachment_id: int):
    """A ticket's file, for operators who may see the ticket: files are private, so they
    are read from storage here and never linked from a public media URL."""
    try:
        attachment = page_selectors.attachment_get(viewer=request.user, attachment_id=attachment_id)
        handle = attachment.file.open("rb")
    except (NotFound, FileNotFoundError) as exc:
        raise Http404(_("No such attachment.")) from exc
    response = FileResponse(handle, as_attachment=True, filename=attachment.name, content_type=attachment.content_type)
    # Whatever a file claims to be, the browser neither sniffs nor runs it.
    response["Content-Security-Policy"] = "sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- a new ticket -------------------------------------------------------------------


@login_required
@permission_required("feedback.add_ticket", raise_exception=True)
def ticket_new(request):
    form = TicketNewForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            opened = ticket_services.ticket_open(
                customer=data["customer"],
                category=data["category"],
                subject=data["subject"],
                body=data["body"],
                source=data["source"],
                priority=data["priority"] or None,
                impact=data["impact"],
                severity=data["severity"],
                difficulty=data["difficulty"],
                attachments=form.attachments_in(settings.FEEDBACK_ATTACHMENT_MAX_BYTES),
                actor=request.user,
            )
        except ApplicationError as exc:
            field = (
                next((f for f in (exc.details or {}) if f in form.fields), None)
                if isinstance(exc.details, dict)
                else None
            )
            form.add_error("attachments" if exc.code.startswith(("attachment", "too_many")) else field, exc.message)
        else:
            ticket = opened.ticket
            team = ticket.team or _("triage")
            messages.success(request, _("Ticket #%(id)s opened for %(team)s.") % {"id": ticket.pk, "team": team})
            try:
                ticket_selectors.ticket_get(viewer=request.user, ticket_id=ticket.pk)
            except NotFound:
                # Routed to a team whose queue this operator does not see.
                return redirect("feedback:queue")
            return _back(ticket)
    return render(
        request,
        "feedback/ticket_new.html",
        _ctx(
            form=form,
            max_bytes=settings.FEEDBACK_ATTACHMENT_MAX_BYTES,
            allowed_types=", ".join(settings.FEEDBACK_ATTACHMENT_TYPES),
        ),
    )
