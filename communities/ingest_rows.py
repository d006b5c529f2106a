"""Shapes of what the group bots send (validated with pydantic, like ``users.rows``):
a message, a check-in, an activity sign-up. The same models describe the bodies in
the OpenAPI document.

A sender is named either by the customer's ``external_id`` (``customer``) or by the
member's id on the platform (``member``, ``Membership.platform_member_id`` in this
group) — exactly one of the two."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from core.validation import InputRow, Instant
from users.rows import BatchErrorOut, BatchIn, ExternalId

MAX_TEXT = 10_000

MessageId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
PlatformMemberId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _SenderRow(InputRow):
    customer: ExternalId | None = Field(None, description="The sender's customer external_id.")
    member: PlatformMemberId | None = Field(
        None, description="The sender's id on the platform (a WeChat wxid), as stored on their membership."
    )

    @model_validator(mode="after")
    def _one_sender(self):
        if (self.customer is None) == (self.member is None):
            raise ValueError("name the sender by exactly one of customer or member")
        return self


class MessageRow(_SenderRow):
    """One message from the group. Messages are append-only: a replay of a stored
    ``external_id`` is unchanged, whatever its text (the first write wins)."""

    external_id: MessageId = Field(description="The message's id on the platform; unique per group.")
    sent_at: Instant
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""


class CheckInRow(_SenderRow):
    """A daily check-in (签到). One per member, group and day (the customer's local day):
    a second check-in on the same day is unchanged."""

    at: Instant
    external_id: MessageId | None = Field(None, description="The bot's id for the check-in, kept for reference.")


class SignupRow(_SenderRow):
    """A sign-up for one of the group's activities; once per member and activity."""

    at: Instant


class ActivityIn(InputRow):
    """An activity of the group, as its bot announces it (created, or updated by code)."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    starts_at: Instant
    ends_at: Instant | None = None

    @model_validator(mode="after")
    def _ends_after_start(self):
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


class ActivityOut(BaseModel):
    code: str
    title: str
    starts_at: str
    ends_at: str | None
    created: bool


class MessageBatchIn(BatchIn):
    items: Annotated[list[MessageRow], Field(max_length=1000)]


class CheckInBatchIn(BatchIn):
    items: Annotated[list[CheckInRow], Field(max_length=1000)]


class SignupBatchIn(BatchIn):
    items: Annotated[list[SignupRow], Field(max_length=1000)]


class IngestBatchOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[BatchErrorOut]
