"""A campaign's figures: deliveries by status and suppression reason, and per variant
sent, delivered, open, click and conversion rates, attributed revenue, ROI, and the A/B
test of conversion (a chi-square test of the variants' converted/not-converted counts,
``scipy.stats.chi2_contingency``; "not enough data yet" below the admin-set sample)."""

from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from scipy.stats import chi2_contingency

from campaigns.models import HANDED_STATUSES, Campaign, Delivery, DeliveryStatus
from campaigns.selectors.policy import policy_settings


def campaign_list(*, status: str = "") -> QuerySet[Campaign]:
    qs = Campaign.objects.prefetch_related("variants").order_by("-created_at")
    return qs.filter(status=status) if status else qs


def campaign_status_counts(*, campaign: Campaign) -> dict:
    """``{"by_status": {status: n}, "by_reason": {reason: n}}`` of the held-back or suppressed."""
    rows = Delivery.objects.filter(campaign=campaign).values_list("status", "reason").annotate(n=Count("id")).order_by()
    by_status: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for status, reason, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if reason:
            key = f"{status}:{reason}"
            by_reason[key] = by_reason.get(key, 0) + n
    return {"by_status": by_status, "by_reason": by_reason}


HELD_STATUSES = [DeliveryStatus.DEFERRED, DeliveryStatus.SUPPRESSED]


def campaigns_sent_held(*, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Sent and held back (deferred or suppressed) per campaign, in one grouped read over
    the (campaign, status) index — for a list page of campaigns."""
    rows = (
        Delivery.objects.filter(campaign_id__in=campaign_ids)
        .values_list("campaign_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {pk: {"sent": 0, "held": 0} for pk in campaign_ids}
    for campaign_id, status, n in rows:
        if status in HANDED_STATUSES:
            counts[campaign_id]["sent"] += n
        elif status in HELD_STATUSES:
            counts[campaign_id]["held"] += n
    return counts


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def campaign_results(*, campaign: Campaign) -> dict:
    """Per variant and in total: sent, delivered, opened, clicked, converted (counts and
    rates over sent), revenue; ROI when a cost is entered; the A/B test."""
    handed = Q(status__in=HANDED_STATUSES) | Q(converted_at__isnull=False)
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .values("variant__code")
        .annotate(
            recipients=Count("id"),
            sent=Count("id", filter=handed),
            delivered=Count("id", filter=Q(delivered_at__isnull=False) | Q(opened_at__isnull=False)),
            opened=Count("id", filter=Q(opened_at__isnull=False) | Q(clicked_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            converted=Count("id", filter=Q(converted_at__isnull=False)),
            revenue=Sum("revenue"),
        )
        .order_by("variant__code")
    )
    variants = []
    for row in rows:
        sent = row["sent"]
        variants.append(
            {
                "variant": row["variant__code"] or "",
                "recipients": row["recipients"],
                "sent": sent,
                "delivered": row["delivered"],
                "opened": row["opened"],
                "clicked": row["clicked"],
                "converted": row["converted"],
                "delivery_rate": _rate(row["delivered"], sent),
                "open_rate": _rate(row["opened"], sent),
                "click_rate": _rate(row["clicked"], sent),
                "conversion_rate": _rate(row["converted"], sent),
                "revenue": str(row["revenue"] or Decimal("0.00")),
            }
        )
    revenue = sum((Decimal(v["revenue"]) for v in variants), Decimal("0"))
    roi = None
    if campaign.cost:
        roi = round(float((revenue - campaign.cost) / campaign.cost), 4)
    return {
        "variants": variants,
        "revenue": str(revenue.quantize(Decimal("0.01"))),
        "cost": str(campaign.cost) if campaign.cost is not None else None,
        "roi": roi,
        "ab_test": ab_test(variants, min_sample=policy_settings().ab_min_sample),
    }


def ab_test(variants: list[dict], *, min_sample: int) -> dict:
    """Is the difference in conversion between the variants more than chance?"""
    if len(variants) < 2:
        return {"status": "single_variant"}
    if any(v["sent"] < min_sample for v in variants):
        return {"status": "not_enough_data", "min_sample": min_sample}
    table = [[v["converted"], v["sent"] - v["converted"]] for v in variants]
    if all(row[0] == 0 for row in table) or all(row[1] == 0 for row in table):
        return {"status": "no_difference", "p_value": 1.0, "significant": False}
    _chi2, p_value, _dof, _expected = chi2_contingency(table)
    best = max(variants, key=lambda v: v["conversion_rate"] or 0)
    return {
        "status": "tested",
        "p_value": round(float(p_value), 6),
        "significant": bool(p_value < 0.05),
        "leader": best["variant"],
    }
