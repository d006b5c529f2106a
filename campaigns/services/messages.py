"""``POST /api/v1/messages``: one message now, through the same contact policy as every
campaign. The decision and the delivery row are written in one transaction under the
customer's contact-state lock; the sender picks the row up after the commit."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import rules
from campaigns.models import Category, Delivery, DeliveryStatus
from campaigns.services.policy import contact_states_lock, policy_load, send_decide
from communities import selectors as community_selectors
from core.errors import ApplicationError, NotFound
from users.models import Customer


@dataclass(frozen=True)
class MessageResult:
    delivery: Delivery
    created: bool


def delivery_fields(decision: rules.Decision) -> dict:
    """The columns a decision sets on a delivery row."""
    status = {
        rules.QUEUED: DeliveryStatus.QUEUED,
        rules.DEFERRED: DeliveryStatus.DEFERRED,
        rules.SUPPRESSED: DeliveryStatus.SUPPRESSED,
    }[decision.status]
    return {
        "status": status,
        "reason": decision.reason,
        "rule": decision.rule,
        "send_after": decision.send_after,
        "planned_at": decision.send_after,
    }


def _template_version(code: str):
    template = community_selectors.template_by_code(code=code)
    if template is None:
        raise ApplicationError(
            _("There is no template with the code “%(code)s”.") % {"code": code},
            code="unknown_template",
            details={"template": code},
            status=422,
        )
    if not template.is_active or template.approved_version_id is None:
        raise ApplicationError(
            _("The template “%(name)s” has no approved version in use.") % {"name": template.name},
            code="template_not_approved",
            details={"template": code},
            status=422,
        )
    return template.approved_version


def message_send(
    *,
    customer_external_id: str,
    channel: str,
    category: str,
    idempotency_key: str,
    content: str = "",
    template: str = "",
    subject: str = "",
    content_class: str = "",
    actor=None,
) -> MessageResult:
    """Decides and records one message. A replay of the same ``idempotency_key`` answers
    the delivery first written (and changes nothing); the same key with another
    customer or channel is a conflict."""
    if channel not in settings.OPS_CHANNELS:
        raise ApplicationError(
            _("Unknown channel “%(channel)s”.") % {"channel": channel},
            code="unknown_channel",
            details={"channel": channel},
        )
    if category not in Category.values:
        raise ApplicationError(_("Unknown category."), code="unknown_category", details={"category": category})
    if bool(content.strip()) == bool(template):
        raise ApplicationError(
            _("Give either a template or a content, not both and not neither."), code="content_or_template"
        )
    customer = Customer.objects.filter(external_id=customer_external_id).first()
    if customer is None:
        raise NotFound(
            _("No customer with the external id “%(id)s”.") % {"id": customer_external_id},
            code="unknown_customer",
            details={"customer": customer_external_id},
        )
    version = _template_version(template) if template else None
    key = f"msg:{idempotency_key}"
    existing = Delivery.objects.filter(key=key).first()
    if existing is not None:
        return _replayed(existing, customer=customer, channel=channel)

    now = timezone.now()
    send = rules.Send(
        channel=channel,
        category=category,
        due=now,
        content_class=content_class,
        # An API message is meant now: a hold longer than a day is no longer "now".
        max_delay=timedelta(hours=24),
    )
    try:
        with transaction.atomic():
            state = contact_states_lock(customer_ids=[customer.pk])[customer.pk]
            existing = Delivery.objects.filter(key=key).first()  # a racing replay won the lock first
            if existing is not None:
                return _replayed(existing, customer=customer, channel=channel)
            decision = send_decide(customer=customer, state=state, send=send, policy=policy_load())
            delivery = Delivery.objects.create(
                key=key,
                customer=customer,
                channel=channel,
                category=category,
                content_class=content_class,
                template_version=version,
                subject=subject,
                content=content,
                due_at=now,
                **delivery_fields(decision),
            )
    except IntegrityError:
        return _replayed(Delivery.objects.get(key=key), customer=customer, channel=channel)
    if delivery.status == DeliveryStatus.QUEUED:
        from campaigns.tasks import outbox_send_task  # the interface that runs the sender

        outbox_send_task.delay_on_commit(delivery_ids=[delivery.pk])
    return MessageResult(delivery=delivery, created=True)


def _replayed(delivery: Delivery, *, customer: Customer, channel: str) -> MessageResult:
    if delivery.customer_id != customer.pk or delivery.channel != channel:
        raise ApplicationError(
            _("This idempotency key was used for another message."),
            code="idempotency_key_reused",
            details={"delivery": delivery.pk},
            status=409,
        )
    return MessageResult(delivery=delivery, created=False)
