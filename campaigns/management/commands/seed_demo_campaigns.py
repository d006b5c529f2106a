"""``manage.py seed_demo_campaigns``: the demo's campaigns, written through the
campaigns services so every row has what a real one has (audit rows, pinned template
versions, deliveries decided under the contact policy, results).

- Two approved SOP templates of the campaign kind (``demo-spring-sale`` A and B),
  written by the system and approved by ``admin``.
- **春季特惠（A/B）** (spring sale): a one-off push (run at night, Shanghai time, most of it waits
  for the morning: quiet hours) to the largest built-in lifecycle segment, sent
  now: the audience is decided (consent, caps, quiet hours — the demo customers'
  earlier pushes are the history), handed to the log backend, and a share of the sent
  ones report delivered, opened and clicked through the callback service.
- **每周精选** (weekly digest): recurring, Mondays 10:00 Shanghai time (scheduled).
- **新人欢迎** (welcome, day 1): triggered the day after signup (scheduled).
- **流失召回短信** (win-back SMS): a draft to the churn-warning customers, for an operator to finish.

Idempotent: a database with a ``[demo]`` campaign gets nothing new. ``--delete``
removes them (and their deliveries) for ``bin/demo --reset``."""

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from campaigns.models import Campaign
from campaigns.rows import CallbackRow
from campaigns.services import campaigns as services
from campaigns.services import dispatch, outbox, results
from communities import services as community_services
from communities.models import SopTemplate
from core.batch import ValidatedBatch
from segments import selectors as segment_selectors

TAG = "[demo]"
TEMPLATES = {
    "demo-spring-sale": "{{ nickname }}，春季特惠今天开始：全场满 199 减 30，仅限三天！",
    "demo-spring-sale-b": "{{ nickname }}，给你留了一张 30 元券，春季特惠三天内有效～",
}


def _template(code: str, body: str, approver) -> None:
    if SopTemplate.objects.filter(code=code).exists():
        return
    template = community_services.template_create(
        code=code, name=f"{TAG} {code}", kind="campaign", body=body, actor=None
    )
    community_services.version_approve(version=template.versions.get(), actor=approver)


def _largest(prefix: str) -> str | None:
    rows = [r for r in segment_selectors.segment_catalogue() if r["slug"].startswith(prefix) and r["size"]]
    return max(rows, key=lambda r: r["size"])["slug"] if rows else None


def _send_now(campaign: Campaign) -> int:
    """What the worker does for a one-off, here and now: write its chunks, hand over."""
    for chunk_id in dispatch.occurrence_start(campaign_id=campaign.pk, occurrence="once", due=campaign.start_at):
        dispatch.write_chunk(chunk_id=chunk_id)
    return outbox.outbox_drain().sent


def _report_results(campaign: Campaign, seed: int) -> int:
    rng = random.Random(seed)
    sent = list(campaign.deliveries.filter(status="sent").values_list("pk", "sent_at"))
    rows = []
    for pk, at in sent:
        if rng.random() < 0.92:
            rows.append({"delivery": pk, "event": "delivered", "at": at})
            if rng.random() < 0.3:
                opened = at + timedelta(minutes=rng.randint(1, 90))
                rows.append({"delivery": pk, "event": "opened", "at": opened})
                if rng.random() < 0.25:
                    rows.append({"delivery": pk, "event": "clicked", "at": opened + timedelta(minutes=5)})
    created = 0
    for start in range(0, len(rows), 1000):
        part = [(i, CallbackRow.model_validate(row)) for i, row in enumerate(rows[start : start + 1000])]
        created += results.callbacks_record(batch=ValidatedBatch(rows=part, errors=[], atomic=False)).created
    return created


def demo_campaigns_write(*, seed: int = 7) -> dict:
    admin = get_user_model().objects.filter(username="admin").first()
    operator = get_user_model().objects.filter(username="operator").first() or admin
    for code, body in TEMPLATES.items():
        _template(code, body, admin)
    audience = _largest("stage-") or _largest("tier-") or _largest("")
    churn = _largest("stage-churn") or audience
    counts = {}
    if audience:
        sale = services.campaign_create(
            data={"name": f"{TAG} 春季特惠（A/B）", "channel": "push", "segments": [audience], "cost": "1200.00"},
            variants=[
                services.VariantSpec("A", 50, "demo-spring-sale", subject="春季特惠"),
                services.VariantSpec("B", 50, "demo-spring-sale-b", subject="送你一张券"),
            ],
            actor=operator,
        )
        sale = services.campaign_launch(campaign=sale, actor=operator)
        counts["spring sale sent"] = _send_now(sale)
        counts["results reported"] = _report_results(sale, seed)
        digest = services.campaign_create(
            data={"name": f"{TAG} 每周精选", "channel": "push", "segments": [audience],
                  "schedule": "recurring", "cron": "0 10 * * 1", "schedule_timezone": "Asia/Shanghai",
                  "content_class": ""},
            variants=[services.VariantSpec("A", 100, "demo-spring-sale")],
            actor=operator,
        )  # fmt: skip
        services.campaign_launch(campaign=digest, actor=operator)
    welcome = services.campaign_create(
        data={"name": f"{TAG} 新人欢迎（注册第 1 天）", "channel": "push", "segments": [], "schedule": "triggered",
              "trigger": "signup_day", "trigger_value": "1"},
        variants=[services.VariantSpec("A", 100, "demo-spring-sale-b")],
        actor=operator,
    )  # fmt: skip
    services.campaign_launch(campaign=welcome, actor=operator)
    if churn:
        services.campaign_create(
            data={"name": f"{TAG} 流失召回短信", "channel": "sms", "segments": [churn], "on_hold": "suppress"},
            variants=[services.VariantSpec("A", 100, "demo-spring-sale-b")],
            actor=operator,
        )
    counts["campaigns"] = Campaign.objects.filter(name__startswith=TAG).count()
    return counts


def demo_campaigns_delete() -> dict:
    deleted, _by_model = Campaign.objects.filter(name__startswith=TAG).delete()
    SopTemplate.objects.filter(code__in=list(TEMPLATES)).delete()
    return {"rows": deleted}


class Command(BaseCommand):
    help = "Seeds the demo campaigns (a sent A/B push with results, a recurring, a triggered, a draft)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--delete", action="store_true", help="remove the demo campaigns")

    def handle(self, *args, seed, delete, **options):
        if delete:
            self.stdout.write(f"deleted {demo_campaigns_delete()}")
            return
        if Campaign.objects.filter(name__startswith=TAG).exists():
            self.stdout.write("demo campaigns: there already")
            return
        self.stdout.write(f"demo campaigns: {demo_campaigns_write(seed=seed)}")
