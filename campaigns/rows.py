"""Shapes of what the product backend sends campaigns (validated with pydantic, like
``users.rows``): a message to send now, a delivery result."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from core.validation import InputRow, Instant
from users.rows import ExternalId

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
ChannelName = Literal["push", "sms", "email", "wechat", "in_app"]


class MessageIn(InputRow):
    """One message through Ops Desk: given ``content``, or an approved SOP ``template``
    by code, under the same contact policy as every campaign."""

    customer: ExternalId
    channel: ChannelName
    category: Literal["transactional", "marketing"]
    idempotency_key: IdempotencyKey
    template: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    content: Annotated[str, StringConstraints(min_length=1, max_length=5000)] | None = None
    subject: Annotated[str, StringConstraints(max_length=150)] = ""
    content_class: Literal["", "regular", "in_depth", "interactive"] = ""

    @model_validator(mode="after")
    def _one_body(self):
        if (self.template is None) == (self.content is None):
            raise ValueError("give exactly one of template or content")
        return self


class CallbackRow(InputRow):
    """A result for a delivery, as the gateway reports it."""

    delivery: int = Field(ge=1, description="The delivery's id (from the message or the hand-over).")
    event: Literal["delivered", "opened", "clicked", "responded", "failed"]
    at: Instant


class CallbackBatchIn(BaseModel):
    atomic: bool = False
    items: Annotated[list[CallbackRow], Field(max_length=1000)]


class DeliveryOut(BaseModel):
    id: int
    status: Literal["queued", "deferred", "suppressed", "sending", "sent", "failed"]
    reason: str = Field(
        description="Why it was held back or suppressed: do_not_contact, no_consent, unsubscribed, "
        "cap, backoff, quiet_hours; empty when queued on time."
    )
    rule: str = Field(description="The rule that decided, e.g. cap:push-3-7 or consent:sms.")
    send_after: str | None = Field(description="When it will be handed over (ISO 8601); null when suppressed.")


class MessageOut(BaseModel):
    delivery: DeliveryOut


class VariantIn(InputRow):
    code: Annotated[str, StringConstraints(min_length=1, max_length=8, pattern=r"^[A-Za-z0-9_-]+$")]
    share: int = Field(ge=1, le=100, description="Percent of the audience; the variants' shares add up to 100.")
    template: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The SOP template's code (its approved version is pinned at launch)."
    )
    subject: Annotated[str, StringConstraints(max_length=150)] = ""
    fields: dict[str, str] = Field(default_factory=dict, description="Values of the template's declared fields.")


class CampaignIn(InputRow):
    """A campaign for automation, created as a draft (``launch`` it after)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    channel: ChannelName
    category: Literal["marketing", "transactional"] = "marketing"
    content_class: Literal["", "regular", "in_depth", "interactive"] = ""
    segments: list[Annotated[str, StringConstraints(min_length=1, max_length=80)]] = Field(
        default_factory=list, max_length=50
    )
    excluded_segments: list[Annotated[str, StringConstraints(min_length=1, max_length=80)]] = Field(
        default_factory=list, max_length=50
    )
    schedule: Literal["once", "recurring", "triggered"] = "once"
    start_at: Instant | None = None
    cron: Annotated[str, StringConstraints(max_length=64)] = ""
    timezone: Annotated[str, StringConstraints(max_length=64)] = "Asia/Shanghai"
    trigger: Literal["", "signup_day", "birthday", "segment_enter", "points_expiring"] = ""
    trigger_value: Annotated[str, StringConstraints(max_length=64)] = ""
    on_hold: Literal["defer", "suppress"] = "defer"
    max_delay_hours: int = Field(24, ge=0, le=336)
    goal_days: int = Field(7, ge=1, le=90)
    cost: Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,2})?$")] | None = None
    variants: list[VariantIn] = Field(min_length=1, max_length=4)
