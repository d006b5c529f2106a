"""A campaign's preview before it goes (a dry run of the fan-out, so it lives with the
services): how many it reaches, how many the policy would send now, defer or suppress
and why (the same decisions, nothing written), and the message rendered for a sample
customer of the audience."""

from collections import Counter

from django.utils import timezone

from campaigns import content
from campaigns.models import Campaign
from campaigns.services import fanout
from campaigns.services.dispatch import campaign_send
from campaigns.services.policy import policy_load
from communities import selectors as community_selectors
from core.errors import ApplicationError
from users.models import Customer

CHUNK = 10_000


def campaign_preview(*, campaign: Campaign, now=None) -> dict:
    """``{"audience", "outcomes": {"queued": n, "deferred:cap": n, …}, "sample"}``; the
    sample is ``{"customer", "subject", "body"}`` per variant, or the reason it cannot
    render (an unapproved template, a variable the sample customer lacks)."""
    due = (
        campaign.start_at
        if campaign.start_at and campaign.start_at > (now or timezone.now())
        else now or timezone.now()
    )
    send = campaign_send(campaign, due)
    policy = policy_load()
    outcomes: Counter = Counter()
    audience = fanout.audience(campaign).order_by("pk").values_list("pk", flat=True)
    total, first_id = 0, None
    ids = list(audience)
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        first_id = first_id or part[0]
        for decision in fanout.decisions(ids=part, send=send, policy=policy).values():
            outcomes[decision.status if not decision.reason else f"{decision.status}:{decision.reason}"] += 1
        total += len(part)
    return {
        "audience": total,
        "outcomes": dict(sorted(outcomes.items())),
        "samples": _samples(campaign, first_id),
    }


def _samples(campaign: Campaign, customer_id: int | None) -> list[dict]:
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    out = []
    for variant in campaign.variants.select_related("template", "template__approved_version").order_by("code"):
        version = variant.template_version or variant.template.approved_version
        item = {"variant": variant.code, "share": variant.share, "template": variant.template.name}
        if version is None:
            item["error"] = "template_not_approved"
        else:
            try:
                if customer is None:
                    body = community_selectors.template_preview(version=version, fields=variant.field_values)
                    rendered = content.Rendered(subject=variant.subject or variant.template.name, body=body)
                else:
                    rendered = content.render(
                        customer=customer, version=version, content="", subject=variant.subject,
                        fields=variant.field_values or {},
                    )  # fmt: skip
                item.update(subject=rendered.subject, body=rendered.body)
                item["customer"] = customer.external_id if customer else ""
            except content.MissingVariable as missing:
                item["error"] = f"missing_variable:{missing.name}"
            except ApplicationError as exc:
                item["error"] = exc.code
        out.append(item)
    return out
