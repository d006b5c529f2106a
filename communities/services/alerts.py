"""Keyword alerts (危机预警): scanning new messages, incidents and their crisis tickets,
acknowledging and dismissing alerts, and saving keyword rules.

**The scan** (``messages_scan``, run by the ``communities.messages_scan`` task right
after ingestion) matches the messages with one ``communities.keywords.Matcher`` built
from the active rules — built once per process and rebuilt only when the rules
change (their latest ``updated_at``, count and highest id) — and writes, in one
transaction:

- one ``Alert`` per (message, rule), at most once: a second run of the same ids finds
  the alerts there and does nothing (the messages are row-locked for the scan, so two
  runs never race on them);
- the rules' ``hit_count`` moved by one UPDATE for the whole scan;
- the hits of one group attached to its **incident**: an incident whose last hit is
  within ``CommunitySettings.incident_window_minutes`` of now takes them (its window
  slides with each hit), otherwise a new one opens. The group row is locked while
  this is decided, so concurrent scans of one group agree on the incident;
- from ``CommunitySettings.ticket_severity`` on, **one feedback ticket per incident**
  (source ``community``, priority ``crisis`` — the crisis SLA: first response within an
  hour around the clock), idempotent by the incident; later hits in the same incident
  add an internal note to that ticket instead of a second ticket;
- one audit row per incident touched (the system is the actor).

After the commit the group's owner gets an email when an incident opens or its ticket
does (not for every repeated hit), and the dashboard's alerts card shows the open alerts.

Times: an incident's window is judged by when the alerts are raised (now), not by the
messages' ``sent_at``: a bot catching up on old messages should still alert today."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Max, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from core.services import audit_record, audit_snapshot
from feedback.models import Category, Priority, Source, Team, TeamCode, Ticket
from feedback.services import MAX_BODY, MAX_SUBJECT, ticket_note, ticket_open
from users.models import Customer

from .. import access
from ..keywords.matcher import Matcher, PatternError, RuleSpec, keyword_problem, pattern_compile
from ..models import Alert, AlertStatus, CommunityGroup, GroupMessage, Incident, KeywordRule, RuleKind, Severity
from ..selectors.settings import settings_get

RULE_FIELDS = ["name", "kind", "pattern", "severity", "is_active"]
#: at most this many hits are listed in a ticket's body or note (the rest are counted)
TICKET_HIT_LINES = 20

# The process's matcher: (rules version, matcher or None, {rule id: (severity, name)}).
_matcher_cache: dict[str, tuple] = {}


# --- the matcher ------------------------------------------------------------------


def _rules_version() -> tuple:
    """Changes whenever a rule is saved (``updated_at``), added or deleted (count, max id)."""
    agg = KeywordRule.objects.aggregate(changed=Max("updated_at"), n=Count("id"), top=Max("id"))
    return agg["changed"], agg["n"], agg["top"]


def matcher_get() -> tuple[Matcher | None, dict[int, tuple[int, str]]]:
    """The matcher of the active rules and each rule's severity and name; one aggregate
    query when the rules have not changed since it was built."""
    version = _rules_version()
    cached = _matcher_cache.get("rules")
    if cached is not None and cached[0] == version:
        return cached[1], cached[2]
    rules = list(KeywordRule.objects.filter(is_active=True).values_list("id", "kind", "pattern", "severity", "name"))
    matcher = Matcher.build([RuleSpec(rid, kind, text) for rid, kind, text, _s, _n in rules]) if rules else None
    info = {rid: (severity, name) for rid, _k, _t, severity, name in rules}
    _matcher_cache["rules"] = (version, matcher, info)
    return matcher, info


# --- the scan -------------------------------------------------------------------------


def _hit_counts_add(counts: Counter) -> None:
    """Every rule's new hits in one UPDATE (``hit_count + n`` chosen per row)."""
    if not counts:
        return
    KeywordRule.objects.filter(pk__in=list(counts)).update(
        hit_count=F("hit_count")
        + Case(
            *(When(pk=rid, then=Value(n)) for rid, n in counts.items()), default=Value(0), output_field=IntegerField()
        )
    )


def _incident_for(group_id: int, severity: int, now: datetime, window: timedelta) -> tuple[Incident, bool]:
    incident = (
        Incident.objects.select_for_update()
        .filter(group_id=group_id, last_hit_at__gte=now - window)
        .order_by("-last_hit_at")
        .first()
    )
    if incident is None:
        return Incident.objects.create(group_id=group_id, opened_at=now, last_hit_at=now, severity=severity), True
    incident.last_hit_at = now
    incident.severity = max(incident.severity, severity)
    incident.save(update_fields=["last_hit_at", "severity"])
    return incident, False


def _hit_lines(alerts: list[Alert], texts: dict[int, str], info: dict[int, tuple[int, str]]) -> str:
    lines = [
        f"[{Severity(a.severity).label}] {info[a.rule_id][1]}: {a.matched} — {texts.get(a.message_id, '')[:300]}"
        for a in alerts[:TICKET_HIT_LINES]
    ]
    if len(alerts) > TICKET_HIT_LINES:
        lines.append(_("… and %(n)s more hits.") % {"n": len(alerts) - TICKET_HIT_LINES})
    return "\n".join(lines)


def _ticket_open(incident: Incident, group: CommunityGroup, alerts: list[Alert], body: str, customer_id) -> int:
    top = max(alerts, key=lambda a: a.severity)
    subject = _("Crisis keyword in %(group)s: %(matched)s") % {"group": group.name, "matched": top.matched}
    team = Team.objects.filter(code=TeamCode.OPERATIONS).first()
    opened = ticket_open(
        customer=Customer.objects.filter(pk=customer_id).first() if customer_id else None,
        category=Category.COMPLAINT,
        subject=subject[:MAX_SUBJECT],
        body=(_("Keyword alerts in the community group %(group)s:") % {"group": group.name} + "\n" + body)[:MAX_BODY],
        source=Source.COMMUNITY,
        priority=Priority.CRISIS,
        team=team,
        idempotency_key=f"community-incident:{incident.pk}",
    )
    return opened.ticket.pk


def _owner_notify(group: CommunityGroup, incident: Incident, count: int) -> None:
    """Queued on commit: the group's owner hears of a new incident (or its new ticket)."""
    email = group.owner.email
    if not email:
        return
    link = settings.OPS_SITE_URL.rstrip("/") + reverse("communities:alerts") + f"?group={group.pk}"
    subject = _("Keyword alert in %(group)s") % {"group": group.name}
    body = _(
        "%(count)s new keyword alert(s) in %(group)s (severity %(severity)s).\n"
        "Ticket: %(ticket)s\nSee and handle them: %(link)s"
    ) % {
        "count": count,
        "group": group.name,
        "severity": Severity(incident.severity).label,
        "ticket": f"#{incident.ticket_id}" if incident.ticket_id else _("none (below the ticket severity)"),
        "link": link,
    }
    transaction.on_commit(lambda: send_mail(subject, body, None, [email]), robust=True)


def _group_hits_apply(
    group: CommunityGroup, alerts: list[Alert], messages: dict[int, dict], info, now: datetime, cfg
) -> None:
    window = timedelta(minutes=cfg.incident_window_minutes)
    incident, created = _incident_for(group.pk, max(a.severity for a in alerts), now, window)
    Alert.objects.filter(
        group_id=group.pk, message_id__in={a.message_id for a in alerts}, incident__isnull=True
    ).update(incident=incident)
    texts = {mid: m["text"] for mid, m in messages.items()}
    body = _hit_lines(alerts, texts, info)
    ticket_opened = False
    if incident.severity >= cfg.ticket_severity:
        if incident.ticket_id is None:
            first = min(alerts, key=lambda a: a.message_id)
            incident.ticket_id = _ticket_open(incident, group, alerts, body, messages[first.message_id]["customer_id"])
            incident.save(update_fields=["ticket_id"])
            ticket_opened = True
        else:
            note = _("%(n)s more keyword hit(s) in this incident:") % {"n": len(alerts)} + "\n" + body
            ticket_note(ticket=Ticket.objects.get(pk=incident.ticket_id), body=note[:MAX_BODY], actor=None, now=now)
    audit_record(
        actor=None,
        action="community_incident.open" if created else "community_incident.hit",
        obj=incident,
        changes={
            "alerts": [None, len(alerts)],
            "severity": [None, incident.severity],
            "ticket": [None, incident.ticket_id],
        },
    )
    if created or ticket_opened:
        _owner_notify(group, incident, len(alerts))


def messages_scan(*, message_ids: list[int], now: datetime | None = None) -> int:
    """Raises the alerts of these messages (see the module's docstring); returns how many
    were new. Safe to run twice."""
    now = now or timezone.now()
    matcher, info = matcher_get()
    if matcher is None or not message_ids:
        return 0
    with transaction.atomic():
        messages = {
            m["id"]: m
            for m in GroupMessage.objects.select_for_update()
            .filter(pk__in=message_ids)
            .values("id", "group_id", "customer_id", "text")
            .order_by("id")
        }
        hits = [(m, hit) for m in messages.values() if m["text"] for hit in matcher.match(m["text"])]
        hits = [(m, hit) for m, hit in hits if hit.rule_id in info]
        if not hits:
            return 0
        already = set(
            Alert.objects.filter(message_id__in={m["id"] for m, _h in hits}).values_list("message_id", "rule_id")
        )
        new = [
            Alert(
                group_id=m["group_id"],
                message_id=m["id"],
                rule_id=hit.rule_id,
                severity=info[hit.rule_id][0],
                matched=hit.matched,
                raised_at=now,
            )
            for m, hit in hits
            if (m["id"], hit.rule_id) not in already
        ]
        if not new:
            return 0
        Alert.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        _hit_counts_add(Counter(a.rule_id for a in new))
        by_group: dict[int, list[Alert]] = defaultdict(list)
        for alert in new:
            by_group[alert.group_id].append(alert)
        cfg = settings_get()
        # Locked in id order, so two scans touching the same groups cannot deadlock.
        groups = (
            CommunityGroup.objects.select_for_update(of=("self",)).select_related("owner").filter(pk__in=list(by_group))
        )
        for group in groups.order_by("pk"):
            _group_hits_apply(group, by_group[group.pk], messages, info, now, cfg)
    return len(new)


# --- handling alerts ------------------------------------------------------------------


def _locked_alert(alert: Alert) -> Alert:
    return Alert.objects.select_for_update(of=("self",)).select_related("group", "incident").get(pk=alert.pk)


def alert_acknowledge(*, alert: Alert, actor, now: datetime | None = None) -> Alert:
    """An open alert seen and being handled; anything else is a conflict (409)."""
    access.require(actor, alert.group, access.HANDLE_ALERTS)
    with transaction.atomic():
        locked = _locked_alert(alert)
        if locked.status != AlertStatus.OPEN:
            raise Conflict(
                _("This alert is %(status)s already.") % {"status": locked.get_status_display()}, code="not_open"
            )
        locked.status = AlertStatus.ACKNOWLEDGED
        locked.handled_by = actor
        locked.handled_at = now or timezone.now()
        locked.save(update_fields=["status", "handled_by", "handled_at"])
        audit_record(
            actor=actor, action="community_alert.acknowledge", obj=locked, changes={"status": ["open", locked.status]}
        )
    return locked


def alert_dismiss(*, alert: Alert, reason: str, actor, now: datetime | None = None) -> Alert:
    """A false positive, with the reason: the rule's dismissal count moves (rules that
    are dismissed often are noisy), and the incident's ticket, if any, gets a note."""
    access.require(actor, alert.group, access.HANDLE_ALERTS)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(
            _("Say why the alert is a false positive."), code="invalid", details={"reason": ["required"]}
        )
    if len(reason) > 300:
        raise ApplicationError(
            _("The reason is at most 300 characters."), code="invalid", details={"reason": ["too long"]}
        )
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked_alert(alert)
        if locked.status == AlertStatus.DISMISSED:
            raise Conflict(_("This alert was dismissed already."), code="already_dismissed")
        before = locked.status
        locked.status = AlertStatus.DISMISSED
        locked.dismiss_reason = reason
        locked.handled_by = actor
        locked.handled_at = now
        locked.save(update_fields=["status", "dismiss_reason", "handled_by", "handled_at"])
        KeywordRule.objects.filter(pk=locked.rule_id).update(dismissed_count=F("dismissed_count") + 1)
        if locked.incident is not None and locked.incident.ticket_id:
            note = _("Alert “%(matched)s” dismissed as a false positive by %(who)s: %(reason)s") % {
                "matched": locked.matched,
                "who": actor.get_username(),
                "reason": reason,
            }
            ticket_note(ticket=Ticket.objects.get(pk=locked.incident.ticket_id), body=note, actor=actor, now=now)
        audit_record(
            actor=actor,
            action="community_alert.dismiss",
            obj=locked,
            changes={"status": [before, locked.status], "dismiss_reason": [None, reason]},
        )
    return locked


# --- keyword rules ----------------------------------------------------------------------


def keyword_rule_problem(*, kind: str, pattern: str) -> str | None:
    """Why a rule cannot be watched, in the admin's words (None when it can): a keyword
    that normalises to nothing, a pattern RE2 refuses or that matches empty text."""
    if kind == RuleKind.KEYWORD:
        problem = keyword_problem(pattern or "")
        return _("The keyword cannot be watched: %(reason)s.") % {"reason": problem} if problem else None
    if kind == RuleKind.PATTERN:
        try:
            pattern_compile(pattern or "")
        except PatternError as exc:
            return _("The pattern cannot be watched: %(reason)s.") % {"reason": exc}
        return None
    return _("Unknown rule kind %(kind)s.") % {"kind": kind}


def keyword_rule_save(*, rule: KeywordRule, actor) -> KeywordRule:
    """Creates or updates a rule (the admin's one path); an invalid keyword or pattern
    is refused with the reason and nothing is saved. Saving moves ``updated_at``, so
    every worker rebuilds its matcher on its next scan."""
    problem = keyword_rule_problem(kind=rule.kind, pattern=rule.pattern)
    if problem:
        raise ApplicationError(problem, code="invalid_pattern", details={"pattern": [problem]})
    stored = KeywordRule.objects.filter(pk=rule.pk).first() if rule.pk else None
    before = audit_snapshot(stored, RULE_FIELDS) if stored is not None else None
    with transaction.atomic():
        created = rule.pk is None
        # The counts are the scans' and the dismissals': an edit never writes them back.
        rule.save(update_fields=None if created else [*RULE_FIELDS, "updated_at"])
        audit_record(
            actor=actor,
            action="keyword_rule.create" if created else "keyword_rule.update",
            obj=rule,
            before=before,
            after=audit_snapshot(rule, RULE_FIELDS),
        )
    return rule
