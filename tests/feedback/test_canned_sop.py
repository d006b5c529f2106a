"""Canned replies from SOP templates in the ticket queue: approved templates of the
reply types are offered, the customer's and the ticket's variables are filled in, the
declared fields are asked of the operator (with the reason beside a refused value), and
pending, rejected, inactive or other-type templates are not offered. The legacy canned
replies keep working (tests/feedback/test_views.py)."""

import re

import pytest
from django.test import Client
from django.utils import translation

from communities.models import TemplateKind
from communities.services import templates as sop_services
from feedback.models import CannedReply, Team
from feedback.selectors import pages as page_selectors
from feedback.services import canned as canned_services
from feedback.services import tickets as ticket_services
from incentives.services import points_post
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

BODY = (
    "{{ nickname }} 您好，工单 #{{ ticket }}「{{ subject }}」：订单 {{ order_no }} 将于 {{ day }} 退款，"
    "积分 {{ points }}。—— {{ operator }}"
)
FIELDS = [
    {"name": "order_no", "label": "Order number", "type": "order_number", "required": True},
    {"name": "day", "label": "Refund date", "type": "date", "required": True},
]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def olga(make_user):
    user = make_user("operator", username="olga")
    Team.objects.get(code="operations").members.add(user)
    return user


@pytest.fixture
def writer(make_user):
    return make_user("community_manager", "writer")


@pytest.fixture
def approver(make_user):
    return make_user("admin", "approver")


def _approved(writer, approver, *, code="refund", kind=TemplateKind.TICKET_REPLY, body=BODY, fields=FIELDS):
    template = sop_services.template_create(
        code=code, name=f"Refund {code}", kind=kind, body=body, fields=fields, actor=writer
    )
    sop_services.version_approve(version=template.versions.get(), actor=approver)
    template.refresh_from_db()
    return template


@pytest.fixture
def ticket(db):
    customer = CustomerFactory(nickname="小美 <3")
    points_post(customer=customer, kind="earn", amount=300, reason="welcome", idempotency_key="cs-1")
    return ticket_services.ticket_open(
        customer=customer, category="question", subject="Where is my refund", body="?"
    ).ticket


def test_only_approved_active_templates_of_the_reply_types_are_offered(writer, approver):
    offered = _approved(writer, approver)
    faq = _approved(writer, approver, code="faq", kind=TemplateKind.FAQ, body="FAQ {{ nickname }}", fields=[])
    _approved(writer, approver, code="welcome", kind=TemplateKind.WELCOME, body="hi {{ nickname }}", fields=[])
    sop_services.template_create(code="pending", name="pending", kind="ticket_reply", body="p", actor=writer)
    CannedReply.objects.create(name="Legacy", body="Hi {{ customer_name }}")
    options = page_selectors.canned_replies()
    assert [(o.key, o.sop) for o in options] == [
        (f"sop-{faq.pk}", True),
        (f"sop-{offered.pk}", True),
        (str(CannedReply.objects.get().pk), False),
    ]
    assert [f["name"] for f in options[1].fields] == ["order_no", "day"]
    sop_services.template_update(template=offered, actor=approver, is_active=False)
    assert f"sop-{offered.pk}" not in [o.key for o in page_selectors.canned_replies()]


def test_the_service_fills_the_customer_ticket_operator_and_fields(writer, approver, ticket, olga):
    template = _approved(writer, approver)
    text = canned_services.canned_template_render(
        template=template, ticket=ticket, operator=olga, fields={"order_no": "SO-88", "day": "2026-12-05"}
    )
    # Plain text: the reply box escapes it when shown, so "<3" is not sent as "&lt;3".
    assert (
        text
        == f"小美 <3 您好，工单 #{ticket.pk}「Where is my refund」：订单 SO-88 将于 2026-12-05 退款，积分 300。—— olga"
    )


def test_the_page_asks_for_the_fields_then_fills_the_reply(writer, approver, ticket, olga):
    template = _approved(writer, approver)
    client = _client(olga)
    html = client.get(f"/feedback/{ticket.pk}/").content.decode()
    assert f'<option value="sop-{template.pk}" data-fields="2">' in html
    html = client.get(f"/feedback/{ticket.pk}/", {"canned": f"sop-{template.pk}"}).content.decode()
    assert 'data-role="canned-fields"' in html and 'name="cf-order_no"' in html and 'type="date"' in html
    textarea = re.search(r'<textarea name="reply-body".*?</textarea>', html, re.S).group(0)
    assert "退款" not in textarea
    r = client.get(
        f"/feedback/{ticket.pk}/",
        {"canned": f"sop-{template.pk}", "cf-filled": "1", "cf-order_no": "?", "cf-day": "tomorrow"},
    )
    html = r.content.decode()
    assert "is not an order number" in html and "is not a date" in html
    assert 'data-error="cf-order_no"' in html and 'data-error="cf-day"' in html
    r = client.get(
        f"/feedback/{ticket.pk}/",
        {"canned": f"sop-{template.pk}", "cf-filled": "1", "cf-order_no": "SO-88", "cf-day": "2026-12-05"},
    )
    textarea = re.search(r'<textarea name="reply-body".*?</textarea>', r.content.decode(), re.S).group(0)
    assert "小美 &lt;3 您好" in textarea and "订单 SO-88 将于 2026-12-05 退款" in textarea


def test_the_endpoint_fills_the_reply_or_says_which_field_is_wrong(writer, approver, ticket, olga):
    template = _approved(writer, approver)
    url = f"/feedback/{ticket.pk}/canned/sop-{template.pk}"
    r = _client(olga).get(url)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_fields" and set(error["details"]) == {"order_no", "day"}
    r = _client(olga).get(url, {"cf-order_no": "SO-1", "cf-day": "2026-12-05"})
    assert r.status_code == 200 and r.json()["body"].startswith("小美 <3 您好")


def test_a_template_without_fields_fills_at_once_and_unapproved_ones_are_404(writer, approver, ticket, olga):
    simple = _approved(writer, approver, code="thanks", body="谢谢 {{ nickname }}，#{{ ticket }}", fields=[])
    client = _client(olga)
    html = client.get(f"/feedback/{ticket.pk}/", {"canned": f"sop-{simple.pk}"}).content.decode()
    textarea = re.search(r'<textarea name="reply-body".*?</textarea>', html, re.S).group(0)
    assert f"谢谢 小美 &lt;3，#{ticket.pk}" in textarea
    pending = sop_services.template_create(code="p", name="p", kind="ticket_reply", body="secret", actor=writer)
    assert client.get(f"/feedback/{ticket.pk}/canned/sop-{pending.pk}").status_code == 404
    html = client.get(f"/feedback/{ticket.pk}/", {"canned": f"sop-{pending.pk}"}).content.decode()
    assert "secret" not in html


def test_a_viewer_cannot_use_them(writer, approver, ticket, make_user):
    template = _approved(writer, approver, code="thanks", body="谢谢 {{ nickname }}", fields=[])
    viewer = make_user("viewer", "vera")
    Team.objects.get(code="operations").members.add(viewer)
    assert _client(viewer).get(f"/feedback/{ticket.pk}/canned/sop-{template.pk}").status_code == 403
    html = _client(viewer).get(f"/feedback/{ticket.pk}/", {"canned": f"sop-{template.pk}"}).content.decode()
    assert "谢谢" not in html
