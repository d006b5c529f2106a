"""The customer 360 page: users' profile, orders and events, with each engine's
panel (segments, points) and a generic card for the sections that have none.
Phone numbers, emails and event properties are masked unless the operator holds
``users.view_pii``."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from campaigns import selectors as campaign_selectors
from communities.panels_groups import customer_groups_panel_context
from communities.selectors.risk import customer_risk_actions
from core.errors import NotFound
from core.pii import mask_text
from incentives import selectors as incentives_selectors
from segments.panels import customer_panel_context as segments_panel_context
from users import selectors as users_selectors
from users.models import CONSENT_FIELDS, Channel
from users.views import pii_displays

from . import selectors

LEDGER_ROWS = 50

# Profile sections the 360 page shows in a panel of their own (segments, points); the
# rest (community groups, and any section a later engine adds) in the generic card,
# under its label here or, when it has none, its key.
PANELLED_SECTIONS = {
    "rfm",
    "tier",
    "stage",
    "operating_class",
    "churn",
    "segments",
    "points",
    "level",
    "badges",
    "communities",
}
SECTION_LABELS = {"communities": _("Community groups")}


def _points_panel(customer, profile: dict) -> dict:
    """The 360 page's points panel. Balance, level and badges come from the profile
    sections (already read through incentives.selectors), so they are not queried twice;
    only the ledger is an extra read."""
    points = profile.get("points") if isinstance(profile.get("points"), dict) else None
    level = profile.get("level") if isinstance(profile.get("level"), dict) else None
    following = (level or {}).get("next")
    return {
        "balance": (points or {}).get("balance", 0),
        "expiring_soon": (points or {}).get("expiring_soon", 0),
        "level": level,
        "next_level": following,
        "to_next_level": max(0, following["threshold"] - level["growth_value"]) if following else None,
        "badges": profile.get("badges") or [],
        "entries": incentives_selectors.customer_entries(customer=customer, limit=LEDGER_ROWS),
    }


def _reach_outs_panel(viewer, customer) -> list[dict] | None:
    """The customer's latest deliveries and why each went or did not (one query);
    None (no panel) for a viewer who may not see deliveries."""
    if not viewer.has_perm("campaigns.view_delivery"):
        return None
    return [
        {"delivery": delivery, "why": campaign_selectors.delivery_explain(delivery)}
        for delivery in campaign_selectors.customer_deliveries(customer=customer)
    ]


def _section(key: str, value) -> dict:
    """One computed section, shaped for a generic template: empty, a mapping, a list or a value."""
    if isinstance(value, dict):
        kind = "mapping" if value else "empty"
        # Keys are the engine's field names ("expiring_soon"); show them readably.
        value = [(k.replace("_", " "), v) for k, v in sorted(value.items())] if value else value
    elif isinstance(value, list | tuple | set):
        kind = "list" if value else "empty"
    else:
        kind = "empty" if value in (None, "") else "value"
    return {
        "key": key,
        "label": SECTION_LABELS.get(key, key.replace("_", " ").capitalize()),
        "kind": kind,
        "value": value,
    }


def _shown_properties(properties, *, can_see_pii: bool) -> dict:
    """An event's properties as the page shows them (a key/value list): every text
    value, nested ones too, masked unless the operator may see personal data."""
    if not isinstance(properties, dict):
        return {}
    if can_see_pii:
        return properties
    return {
        key: mask_text(value)
        if isinstance(value, str)
        else mask_text(json.dumps(value, ensure_ascii=False, sort_keys=True))
        if isinstance(value, dict | list)
        else value
        for key, value in properties.items()
    }


@login_required
@permission_required("users.view_customer", raise_exception=True)
def customer_detail(request, external_id):
    try:
        customer = users_selectors.customer_get(external_id=external_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    can_see_pii = request.user.has_perm("users.view_pii")
    consent = customer.consent()
    events = []
    for event in users_selectors.customer_recent_events(customer=customer, limit=50):
        events.append({"event": event, "properties": _shown_properties(event.properties, can_see_pii=can_see_pii)})
    profile = selectors.customer_profile_sections(customer=customer)
    return render(
        request,
        "console/customer_detail.html",
        {
            "customer": customer,
            **pii_displays(customer, can_see_pii=can_see_pii),
            "can_see_pii": can_see_pii,
            "consents": [{"label": Channel(channel).label, "granted": consent[channel]} for channel in CONSENT_FIELDS],
            "tags": [t.tag for t in customer.tags.all()],
            # One COUNT; users.selectors has no referral reader yet.
            "referral_count": customer.referrals.count(),
            "orders": users_selectors.customer_recent_orders(customer=customer, limit=20),
            "events": events,
            "sections": [_section(k, v) for k, v in profile.items() if k not in PANELLED_SECTIONS],
            "points": _points_panel(customer, profile),
            "segments_panel": segments_panel_context(customer=customer, profile=profile),
            "communities_panel": customer_groups_panel_context(
                viewer=request.user, memberships=profile.get("communities") or []
            ),
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
            "reach_outs": _reach_outs_panel(request.user, customer),
            "risk_actions": customer_risk_actions(customer_ids=[customer.pk], viewer=request.user).get(customer.pk, []),
        },
    )
