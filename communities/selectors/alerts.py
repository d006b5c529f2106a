"""Reads for keyword alerts: the alerts of the groups a viewer may see (filtered), one
alert, and how noisy each rule is (hits against dismissals)."""

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from core.errors import NotFound

from .. import access
from ..models import Alert, AlertStatus, KeywordRule

PAGE_SIZE = 100


def alerts_visible(*, viewer) -> QuerySet[Alert]:
    """Alerts in the groups the viewer may see (none without ``communities.view_alert``)."""
    if not viewer.has_perm("communities.view_alert"):
        return Alert.objects.none()
    q = access.group_visible_q(viewer)
    qs = Alert.objects.all() if q is None else Alert.objects.filter(group__in=access.groups_visible(viewer))
    return qs.select_related("group", "rule", "message", "message__customer", "incident", "handled_by")


def alert_list(*, viewer, filters: dict) -> QuerySet[Alert]:
    """``filters``: ``status`` (absent: the alerts still to handle, open and
    acknowledged), ``severity`` (at least), ``group`` (id) — each optional. Newest first."""
    qs = alerts_visible(viewer=viewer)
    qs = qs.filter(status=filters["status"]) if filters.get("status") else qs.exclude(status=AlertStatus.DISMISSED)
    if filters.get("severity"):
        qs = qs.filter(severity__gte=int(filters["severity"]))
    if filters.get("group"):
        qs = qs.filter(group_id=int(filters["group"]))
    return qs.order_by("-raised_at", "-id")


def alert_get(*, viewer, alert_id) -> Alert:
    """The alert, if it is in a group the viewer may see; 404 ``unknown_alert`` otherwise
    (an alert of another manager's group is not found, as the group is not)."""
    try:
        return alerts_visible(viewer=viewer).get(pk=int(alert_id))
    except (Alert.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("No keyword alert %(id)s.") % {"id": alert_id}, code="unknown_alert") from None


def alerts_open(*, viewer, limit: int = 5) -> dict:
    """The dashboard's notice: how many alerts are open in the viewer's groups, and the latest."""
    qs = alerts_visible(viewer=viewer).filter(status=AlertStatus.OPEN)
    return {"count": qs.count(), "latest": list(qs.order_by("-raised_at", "-id")[:limit])}


def rule_noise(*, viewer) -> list[dict]:
    """Per rule, its alerts in the viewer's groups and how many were dismissed as false
    positives (one GROUP BY), with the rule's overall counters. Noisiest first."""
    rows = (
        alerts_visible(viewer=viewer)
        .values("rule_id")
        .annotate(hits=Count("id"), dismissed=Count("id", filter=Q(status=AlertStatus.DISMISSED)))
        .order_by()
    )
    counts = {r["rule_id"]: r for r in rows}
    rules = KeywordRule.objects.filter(pk__in=list(counts)).order_by("name")
    out = []
    for rule in rules:
        row = counts[rule.pk]
        out.append(
            {
                "rule": rule,
                "hits": row["hits"],
                "dismissed": row["dismissed"],
                "dismissed_share": row["dismissed"] / row["hits"] if row["hits"] else 0,
            }
        )
    return sorted(out, key=lambda r: (-r["dismissed_share"], -r["hits"]))
