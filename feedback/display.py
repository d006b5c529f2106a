"""How the ticket pages say things, in the operator's language: durations ("3 小时 20
分钟"), each SLA target's cell in the queue and its panel on the ticket, how a priority
was reached, and the history's entries. Pure functions over rows already read."""

from datetime import datetime

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from segments.models import Tier

from . import workflow
from .models import Category, Difficulty, Impact, Priority, Severity, SlaTarget, Status, TeamCode, Ticket

KIND_SHORT = {
    SlaTarget.Kind.FIRST_RESPONSE: pgettext_lazy("SLA target, short", "Response"),
    SlaTarget.Kind.RESOLUTION: pgettext_lazy("SLA target, short", "Resolution"),
}
KIND_ORDER = {SlaTarget.Kind.FIRST_RESPONSE: 0, SlaTarget.Kind.RESOLUTION: 1}

ACTION_LABELS = {
    **workflow.ACTION_LABELS,
    "opened": gettext_lazy("Opened"),
    "replied": gettext_lazy("Replied to the customer"),
    "noted": gettext_lazy("Added an internal note"),
    "customer_replied": gettext_lazy("The customer replied"),
    "assigned": gettext_lazy("Assigned"),
    "updated": gettext_lazy("Changed"),
    "merged_into": gettext_lazy("Merged into another ticket"),
    "merged": gettext_lazy("Took in a duplicate"),
    "sla_warned": gettext_lazy("SLA warning"),
    "sla_escalated": gettext_lazy("SLA breached: priority raised"),
}

_VALUE_LABELS = {
    "status": dict(Status.choices),
    "priority": dict(Priority.choices),
    "category": dict(Category.choices),
    "impact": dict(Impact.choices),
    "severity": dict(Severity.choices),
    "difficulty": dict(Difficulty.choices),
    "team": dict(TeamCode.choices),
    "target": dict(SlaTarget.Kind.choices),
    "tier": dict(Tier.choices),
    # segments' RFM groups (their labels live in segments.labels, which is segments' own)
    "rfm_group": {
        "high_value": gettext_lazy("high value"),
        "potential": gettext_lazy("potential"),
        "silent": gettext_lazy("silent"),
        "general": gettext_lazy("general"),
    },
}
# Fields of the history that repeat what another entry says (the message is in the
# conversation; resolved_at is the status change's time).
_HIDDEN_FIELDS = {"message", "resolved_at"}
# Who acted when no operator did (``TicketEvent.actor_label``), in the operator's language.
_ACTOR_LABELS = {"system": gettext_lazy("system"), "customer": gettext_lazy("customer")}
_TICKET_FIELDS = (
    "status",
    "priority",
    "category",
    "impact",
    "severity",
    "difficulty",
    "team",
    "assignee",
    "merged_into",
)


def duration_text(seconds: float) -> str:
    """A duration in its two largest units: "12 min", "3 h 20 min", "2 days 4 h"."""
    seconds = abs(int(seconds))
    if seconds < 60:
        return _("under a minute")
    minutes_total = seconds // 60
    days, rest = divmod(minutes_total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(ngettext("%(count)d day", "%(count)d days", days) % {"count": days})
        if hours:
            parts.append(_("%(count)d h") % {"count": hours})
        return " ".join(parts)
    if hours:
        parts.append(_("%(count)d h") % {"count": hours})
    if minutes:
        parts.append(_("%(count)d min") % {"count": minutes})
    return " ".join(parts)


def label_of(field: str, value) -> str:
    if value is None or value == "":
        return "—"
    if field in ("merged", "merged_into", "ticket"):
        return f"#{value}"
    return str(_VALUE_LABELS.get(field, {}).get(value, value))


# --- the queue's SLA cells (from the prefetched SlaTarget rows) ---------------------


def target_cell(target: SlaTarget, now: datetime) -> dict:
    """One target in a queue row: ``state`` is ok / warning / breach / paused / met /
    missed; ``text`` the time to its due moment (wall time, as the sweep escalates) or
    what became of it."""
    cell = {"kind": target.kind, "label": KIND_SHORT.get(target.kind, target.kind)}
    if target.state == SlaTarget.State.RUNNING and target.due_at is not None:
        left = (target.due_at - now).total_seconds()
        if left <= 0 or target.breached_at is not None:
            return {**cell, "state": "breach", "text": _("overdue %(time)s") % {"time": duration_text(left)}}
        warned = target.warned_at is not None or (target.warn_at is not None and target.warn_at <= now)
        return {**cell, "state": "warning" if warned else "ok", "text": duration_text(left)}
    if target.state in (SlaTarget.State.RUNNING, SlaTarget.State.PAUSED):
        left = target.target_seconds - target.consumed_seconds
        if left <= 0:
            return {**cell, "state": "breach", "text": _("overdue %(time)s") % {"time": duration_text(left)}}
        return {**cell, "state": "paused", "text": _("paused, %(time)s left") % {"time": duration_text(left)}}
    if target.state == SlaTarget.State.MET and target.breached_at is None:
        return {**cell, "state": "met", "text": _("met")}
    return {**cell, "state": "missed", "text": _("missed")}


def queue_sla(ticket: Ticket, now: datetime) -> dict:
    """Both targets of a queue row and the row's badge (breach > warning > paused)."""
    cells = [target_cell(t, now) for t in sorted(ticket.sla_targets.all(), key=lambda t: KIND_ORDER.get(t.kind, 9))]
    states = {c["state"] for c in cells}
    badge = None
    if states & {"breach", "missed"}:
        badge = ("breach", _("Breached"))
    elif "warning" in states:
        badge = ("warning", _("Warning"))
    elif "paused" in states:
        badge = ("paused", _("Paused"))
    return {"cells": cells, "badge": badge}


def queue_rows(tickets: list[Ticket], now: datetime) -> list[dict]:
    """The queue's rows with their labels and links resolved once per page: 50 rows'
    ``get_status_display`` and ``{% url %}`` calls were a third of the page's time."""
    labels = {
        field: {value: str(label) for value, label in _VALUE_LABELS[field].items()}
        for field in ("status", "priority", "category", "team")
    }
    return [
        {
            "ticket": t,
            "url": reverse("feedback:ticket", args=[t.pk]),
            "customer_url": reverse("users:detail", args=[t.customer.external_id]) if t.customer_id else "",
            "status": labels["status"].get(t.status, t.status),
            "priority": labels["priority"].get(t.priority, t.priority),
            "category": labels["category"].get(t.category, t.category),
            "team": labels["team"].get(t.team.code, t.team.code) if t.team_id else "",
            "sla": queue_sla(t, now),
        }
        for t in tickets
    ]


# --- the ticket page's SLA panel (from sla_state rows) ------------------------------


def target_panel(row: dict, now: datetime) -> dict:
    """One row of ``feedback.selectors.sla.sla_state`` as the ticket page shows it."""
    kind = row.get("kind") or row.get("target")
    state, left = row.get("state"), row.get("seconds_left") or 0
    breached = bool(row.get("breached"))
    due_at = row.get("due_at")
    if breached:
        css = "breach"
    elif state == SlaTarget.State.MET:
        css = "met"
    elif state == SlaTarget.State.PAUSED:
        css = "paused"
    else:
        css = "warning" if row.get("warned") else "ok"
    if state in (SlaTarget.State.MET, SlaTarget.State.BREACHED):
        left_text = _("met") if state == SlaTarget.State.MET and not breached else _("missed")
    elif left < 0:
        left_text = _("overdue %(time)s") % {"time": duration_text(left)}
    else:
        left_text = duration_text(left)
    due_text = ""
    if due_at is not None:
        delta = (due_at - now).total_seconds()
        due_text = (_("in %(time)s") if delta >= 0 else _("%(time)s ago")) % {"time": duration_text(delta)}
    return {
        "kind": kind,
        "label": dict(SlaTarget.Kind.choices).get(kind, kind),
        "state": state,
        "state_label": dict(SlaTarget.State.choices).get(state, state),
        "css": css,
        "breached": breached,
        "warned": bool(row.get("warned")),
        "target": duration_text(row.get("target_seconds") or 0),
        "business_hours": row.get("business_hours"),
        "due_at": due_at,
        "due_text": due_text,
        "left_text": left_text,
        "paused": duration_text(row["paused_seconds"]) if row.get("paused_seconds") else "",
    }


# --- how the priority was reached ---------------------------------------------------


def _priority(value) -> str:
    return label_of("priority", value)


def basis_lines(basis: dict) -> list[str]:
    """``Ticket.priority_basis`` as sentences, in the order they applied."""
    basis = basis or {}
    lines = []
    if "given" in basis:
        lines.append(_("Given when the ticket was opened: %(priority)s.") % {"priority": _priority(basis["given"])})
    if isinstance(basis.get("matrix"), dict):
        m = basis["matrix"]
        lines.append(
            _("Priority matrix: %(impact)s × %(severity)s × %(difficulty)s → %(priority)s.")
            % {
                "impact": label_of("impact", m.get("impact")),
                "severity": label_of("severity", m.get("severity")),
                "difficulty": label_of("difficulty", m.get("difficulty")),
                "priority": _priority(m.get("priority")),
            }
        )
    if "default" in basis:
        lines.append(
            _("No matrix cell matched: the default, %(priority)s.") % {"priority": _priority(basis["default"])}
        )
    if isinstance(basis.get("vip"), dict):
        v = basis["vip"]
        who = ", ".join(label_of(f, v[f]) for f in ("tier", "rfm_group") if v.get(f))
        lines.append(
            _("VIP rule “%(rule)s” (%(who)s): %(from)s → %(to)s.")
            % {
                "rule": v.get("rule", ""),
                "who": who or "—",
                "from": _priority(v.get("from")),
                "to": _priority(v.get("to")),
            }
        )
    for step in basis.get("escalations") or []:
        if isinstance(step, dict):
            lines.append(
                _("Escalated at the %(target)s breach: %(from)s → %(to)s.")
                % {
                    "target": label_of("target", step.get("target")),
                    "from": _priority(step.get("from")),
                    "to": _priority(step.get("to")),
                }
            )
    if isinstance(basis.get("set_by"), dict):
        s = basis["set_by"]
        lines.append(
            _("Set by %(user)s: %(from)s → %(to)s.")
            % {"user": s.get("user", ""), "from": _priority(s.get("from")), "to": _priority(s.get("to"))}
        )
    return lines


# --- history ------------------------------------------------------------------------


def _field_label(field: str) -> str:
    if field in _TICKET_FIELDS:
        return str(Ticket._meta.get_field(field).verbose_name)
    if field == "merged":
        return _("duplicate")
    if field == "target":
        return _("SLA target")
    return field


def event_view(event) -> dict:
    """A ``TicketEvent`` as who, when, what, and each change from → to."""
    changes = []
    for field, value in (event.changes or {}).items():
        if field in _HIDDEN_FIELDS:
            continue
        if isinstance(value, list | tuple) and len(value) == 2:
            changes.append(
                {"field": _field_label(field), "from": label_of(field, value[0]), "to": label_of(field, value[1])}
            )
        else:
            changes.append({"field": _field_label(field), "from": None, "to": label_of(field, value)})
    if event.actor_id and event.actor:
        who = event.actor.get_username()
    else:
        who = str(_ACTOR_LABELS.get(event.actor_label, event.actor_label))
    return {
        "event": event,
        "who": who,
        "action": str(ACTION_LABELS.get(event.action, event.action)),
        "changes": changes,
    }
