"""Groups, members and rules shared by the ingestion and alert tests."""

from datetime import UTC, datetime

from communities.models import CommunityGroup, KeywordRule, Membership
from communities.services import alerts as alert_services
from communities.services import groups as group_services
from tests.users.factories import CustomerFactory

AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def group_make(owner, code="runners", name="跑步群") -> CommunityGroup:
    return group_services.group_save(group=CommunityGroup(code=code, name=name, owner=owner), actor=owner)


def member_make(group, *, wxid: str, external_id: str | None = None, tz: str = "Asia/Shanghai") -> Membership:
    kwargs = {"timezone": tz}
    if external_id:
        kwargs["external_id"] = external_id
    customer = CustomerFactory(**kwargs)
    return group_services.member_join(group=group, customer=customer, platform_member_id=wxid, joined_at=AT)


def rule_make(pattern: str, *, severity: int = 5, kind: str = "keyword", name: str | None = None) -> KeywordRule:
    return alert_services.keyword_rule_save(
        rule=KeywordRule(name=name or pattern, kind=kind, pattern=pattern, severity=severity), actor=None
    )


def message(external_id: str, text: str, *, member: str | None = None, customer: str | None = None) -> dict:
    item = {"external_id": external_id, "sent_at": AT.isoformat(), "text": text}
    item["member" if member else "customer"] = member or customer
    return item
