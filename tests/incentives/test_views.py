"""Operator points pages: the ledger on the 360 page, the manual adjustment, the
leaderboards and the points mall."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditEntry
from incentives import services
from incentives.models import CustomerBadge, EntryKind, EntrySource, Level, PointsAccount, PointsEntry
from tests.incentives.factories import BadgeFactory, LevelFactory, RewardFactory
from tests.users.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def customer(db):
    return CustomerFactory(external_id="cust-pts", nickname="积分王")


def login(client, make_user, role):
    user = make_user(role)
    client.force_login(user)
    return user


def earn(customer, amount, key, reason="welcome bonus"):
    return services.points_post(customer=customer, kind="earn", amount=amount, reason=reason, idempotency_key=key)


def balance(customer) -> int:
    account = PointsAccount.objects.filter(customer=customer).first()
    return account.balance if account else 0


def adjust_url(customer) -> str:
    return reverse("incentives:adjust", args=[customer.external_id])


def form_key(client, customer) -> str:
    """The hidden idempotency key the adjustment form was rendered with."""
    response = client.get(adjust_url(customer))
    assert response.status_code == 200
    match = re.search(r'name="key" value="([0-9a-f-]{36})"', response.content.decode())
    assert match, "the form carries a hidden idempotency key"
    return match.group(1)


# --- the 360 page ------------------------------------------------------------------


def test_customer_360_shows_balance_ledger_level_and_badges(client, make_user, customer):
    operator = make_user("operator", username="op-anna")
    Level.objects.all().delete()  # the seeded ladder; this test brings its own
    LevelFactory(name="Silver", threshold=50)
    LevelFactory(name="Gold", threshold=500)
    earn(customer, 120, "e1", reason="welcome bonus")
    services.points_post(
        customer=customer,
        kind="adjust",
        amount=-20,
        reason="goodwill correction",
        idempotency_key="a1",
        source=EntrySource.OPERATOR,
        operator=operator,
    )
    PointsAccount.objects.filter(customer=customer).update(growth_value=120)  # rules pay growth; points_post does not
    services.levels_update(customer_ids=[customer.pk])
    CustomerBadge.objects.create(
        customer=customer, badge=BadgeFactory(name="连续签到王者"), awarded_at=datetime.now(UTC)
    )
    client.force_login(make_user("viewer"))

    response = client.get(reverse("users:detail", args=[customer.external_id]), **EN)

    html = response.content.decode()
    assert re.search(r'data-field="points-balance">100<', html)
    panel = response.context["points"]
    assert [e.reason for e in panel["entries"]] == ["goodwill correction", "welcome bonus"]
    assert "goodwill correction" in html and "welcome bonus" in html
    assert "op-anna" in html  # the operator of the adjustment
    assert "+120" in html and "-20" in html
    ledger = html[html.index('data-table="points-ledger"') :]
    assert re.search(r'<td class="num">100</td>', ledger)  # balance_after of the latest entry
    # Growth value 120 reached Silver; Gold (500) is next.
    assert panel["level"]["name"] == "Silver"
    assert "Next level: Gold (380 growth value to go)" in html
    assert "连续签到王者" in html[html.index('data-field="points-badges"') :]
    # A viewer has no adjust_points: no button.
    assert adjust_url(customer) not in html


def test_customer_360_offers_the_adjustment_only_with_the_permission(client, make_user, customer):
    login(client, make_user, "operator")
    html = client.get(reverse("users:detail", args=[customer.external_id]), **EN).content.decode()
    assert adjust_url(customer) in html
    assert "No points entries yet." in html


def test_customer_360_ledger_is_capped_and_one_query(client, make_user, customer):
    login(client, make_user, "operator")
    url = reverse("users:detail", args=[customer.external_id])
    earn(customer, 1, "first")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(60):
        earn(customer, 1, f"k{i}")
    many = count()
    assert many == few  # the ledger does not cost a query per row
    assert len(client.get(url).context["points"]["entries"]) == 50


# --- the adjustment form ---------------------------------------------------------------


def test_operator_adjusts_with_a_reason_and_the_entry_records_them(client, make_user, customer):
    operator = login(client, make_user, "operator")
    assert operator.has_perm("incentives.adjust_points")
    key = form_key(client, customer)

    response = client.post(
        adjust_url(customer), {"amount": "250", "reason": "  compensation for ticket #42 ", "key": key}, **EN
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("users:detail", args=[customer.external_id])
    assert balance(customer) == 250
    entry = PointsEntry.objects.get(customer=customer)
    assert (entry.kind, entry.amount, entry.source) == (EntryKind.ADJUST, 250, EntrySource.OPERATOR)
    assert entry.reason == "compensation for ticket #42"
    assert entry.operator == operator
    assert entry.idempotency_key == f"op:{key}"
    assert AuditEntry.objects.filter(actor=operator, action="points.adjust").count() == 1
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Adjusted +250 points. New balance: 250."]


def test_negative_adjustment_within_the_balance_takes_points(client, make_user, customer):
    login(client, make_user, "operator")
    earn(customer, 100, "e1")
    response = client.post(
        adjust_url(customer), {"amount": "-40", "reason": "fraud clawback", "key": form_key(client, customer)}
    )
    assert response.status_code == 302
    assert balance(customer) == 60


def test_missing_reason_is_a_form_error_and_writes_nothing(client, make_user, customer):
    login(client, make_user, "operator")
    key = form_key(client, customer)

    response = client.post(adjust_url(customer), {"amount": "50", "reason": "   ", "key": key}, **EN)

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert 'data-error="reason"' in response.content.decode()
    assert not PointsEntry.objects.filter(customer=customer).exists()
    assert balance(customer) == 0
    # The re-rendered form keeps the same key, so fixing the reason and resubmitting stays idempotent.
    assert f'value="{key}"' in response.content.decode()


@pytest.mark.parametrize("amount", ["0", "10000001", "-10000001", "12.5", "lots"])
def test_bad_amounts_are_form_errors(client, make_user, customer, amount):
    login(client, make_user, "operator")
    response = client.post(adjust_url(customer), {"amount": amount, "reason": "r", "key": form_key(client, customer)})
    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert not PointsEntry.objects.exists()


def test_negative_adjustment_beyond_the_balance_is_refused(client, make_user, customer):
    login(client, make_user, "operator")
    earn(customer, 30, "e1")

    response = client.post(
        adjust_url(customer), {"amount": "-50", "reason": "clawback", "key": form_key(client, customer)}, **EN
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Not enough points: the balance (30) would go below zero."]
    assert "Not enough points" in response.content.decode()
    assert balance(customer) == 30
    assert PointsEntry.objects.filter(customer=customer).count() == 1  # only the earn


def test_double_submit_with_the_same_key_adjusts_once(client, make_user, customer):
    login(client, make_user, "operator")
    data = {"amount": "75", "reason": "double click", "key": form_key(client, customer)}

    first = client.post(adjust_url(customer), data, **EN)
    second = client.post(adjust_url(customer), data, **EN)

    assert first.status_code == second.status_code == 302
    assert PointsEntry.objects.filter(customer=customer).count() == 1
    assert balance(customer) == 75
    assert "already recorded" in " ".join(str(m) for m in get_messages(second.wsgi_request))


def test_same_key_with_other_values_is_refused(client, make_user, customer):
    login(client, make_user, "operator")
    key = form_key(client, customer)
    client.post(adjust_url(customer), {"amount": "75", "reason": "first", "key": key})

    response = client.post(adjust_url(customer), {"amount": "80", "reason": "first", "key": key}, **EN)

    assert response.status_code == 200
    assert "already submitted" in response.content.decode()
    assert balance(customer) == 75


def test_missing_key_is_refused(client, make_user, customer):
    login(client, make_user, "operator")
    response = client.post(adjust_url(customer), {"amount": "5", "reason": "no key"})
    assert response.status_code == 200
    assert "key" in response.context["form"].errors
    assert not PointsEntry.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "community_manager"])
def test_roles_without_adjust_points_get_403(client, make_user, customer, role):
    login(client, make_user, role)
    assert client.get(adjust_url(customer)).status_code == 403
    response = client.post(
        adjust_url(customer), {"amount": "5", "reason": "r", "key": "0b5e7d0e-8c1e-4f0e-9d55-9a3c9e4e4c11"}
    )
    assert response.status_code == 403
    assert not PointsEntry.objects.exists()


def test_anonymous_is_sent_to_login(client, customer):
    for response in (client.get(adjust_url(customer)), client.get(reverse("incentives:home"))):
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_unknown_customer_is_404(client, make_user):
    login(client, make_user, "operator")
    assert client.get(reverse("incentives:adjust", args=["nobody"])).status_code == 404


# --- leaderboards and the points mall -------------------------------------------------------


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def board_data(db):
    a, b, c = (CustomerFactory(external_id=x) for x in ("lb-a", "lb-b", "lb-c"))
    # Check-ins, period 2026-03-01..2026-03-07 in Asia/Shanghai = [02-28 16:00Z, 03-07 16:00Z).
    for when in (at(2026, 3, 1, 1), at(2026, 3, 2, 1), at(2026, 3, 7, 15, 59)):
        EventFactory(customer=b, type="checkin", occurred_at=when)
    for when in (at(2026, 3, 3, 1), at(2026, 3, 4, 1)):
        EventFactory(customer=a, type="checkin", occurred_at=when)
    EventFactory(customer=c, type="checkin", occurred_at=at(2026, 3, 5, 1))
    # Outside the period by a minute on either side.
    EventFactory(customer=c, type="checkin", occurred_at=at(2026, 2, 28, 15, 59))
    EventFactory(customer=c, type="checkin", occurred_at=at(2026, 3, 7, 16, 0))
    EventFactory(customer=c, type="checkin", occurred_at=at(2026, 3, 7, 16, 1))
    # Invites: c's two invitees accepted in the period, a's one; one of a's is outside.
    for n, (referrer, when) in enumerate(
        [(c, at(2026, 3, 2)), (c, at(2026, 3, 3)), (a, at(2026, 3, 4)), (a, at(2026, 4, 1))]
    ):
        invitee = CustomerFactory(external_id=f"inv-{n}", referred_by=referrer)
        EventFactory(customer=invitee, type="invite_accepted", occurred_at=when)
    return a, b, c


def test_leaderboards_rank_invites_and_checkins_in_the_period(client, make_user, board_data):
    login(client, make_user, "viewer")

    response = client.get(reverse("incentives:home"), {"start": "2026-03-01", "end": "2026-03-07"}, **EN)

    assert response.status_code == 200
    boards = response.context["boards"]
    assert [(r["rank"], r["customer"], r["score"]) for r in boards["checkins"]] == [
        (1, "lb-b", 3),
        (2, "lb-a", 2),
        (3, "lb-c", 1),
    ]
    assert [(r["rank"], r["customer"], r["score"]) for r in boards["invites"]] == [(1, "lb-c", 2), (2, "lb-a", 1)]
    html = response.content.decode()
    checkins = html[html.index('data-table="checkins"') :]
    assert re.search(r'data-rank="1" data-customer="lb-b"', checkins)
    assert 'data-rank="3" data-customer="lb-c"' in checkins
    assert "From 2026-03-01 to 2026-03-07" in html


def test_leaderboards_default_to_the_last_30_days(client, make_user, db):
    customer = CustomerFactory()
    EventFactory(customer=customer, type="checkin", occurred_at=datetime.now(UTC))
    login(client, make_user, "viewer")
    response = client.get(reverse("incentives:home"))
    period = response.context["period"]
    assert (period["end"] - period["start"]).days == 29
    assert [r["customer"] for r in response.context["boards"]["checkins"]] == [customer.external_id]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-13-45", "end": "2026-03-07"}, "Enter a valid date."),
        ({"start": "yesterday", "end": "2026-03-07"}, "Enter a valid date."),
        ({"start": "2026-03-08", "end": "2026-03-01"}, "The start date must not be after the end date."),
        ({"start": "2024-01-01", "end": "2026-03-01"}, "The period can be at most 366 days long."),
    ],
)
def test_bad_period_shows_an_error_and_no_board(client, make_user, board_data, params, message):
    login(client, make_user, "viewer")
    response = client.get(reverse("incentives:home"), params, **EN)
    assert response.status_code == 200
    assert response.context["boards"] is None
    assert message in response.content.decode()
    assert 'role="alert"' in response.content.decode()


def test_points_mall_lists_rewards_with_stock_and_validity(client, make_user, db):
    RewardFactory(name="Mug", points_price=300, stock=None)
    RewardFactory(name="Sticker", points_price=50, stock=0)
    RewardFactory(name="Old tote", points_price=500, valid_until=at(2021, 1, 1))
    login(client, make_user, "viewer")

    response = client.get(reverse("incentives:home"), **EN)

    states = {item["reward"].name: item["state"] for item in response.context["rewards"]}
    assert states == {"Mug": "available", "Sticker": "out_of_stock", "Old tote": "ended"}
    html = response.content.decode()
    mall = html[html.index('data-table="rewards"') :]
    assert mall.index("Sticker") < mall.index("Mug") < mall.index("Old tote")  # by price
    assert "unlimited" in mall and "out of stock" in mall and "2021-01-01" in mall


def test_points_page_and_nav_need_view_permission(client, make_user, db):
    login(client, make_user, None)
    assert client.get(reverse("incentives:home")).status_code == 403
    client.force_login(make_user("viewer", username="v2"))
    html = client.get(reverse("dashboards:home"), **EN).content.decode()
    assert f'href="{reverse("incentives:home")}"' in html


def test_pages_render_in_simplified_chinese(client, make_user, customer):
    login(client, make_user, "operator")
    home = client.get(reverse("incentives:home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "签到排行榜" in home and "积分商城" in home
    adjust = client.get(adjust_url(customer), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "调整积分" in adjust and "原因" in adjust
    detail = client.get(reverse("users:detail", args=[customer.external_id]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "暂无积分流水。" in detail.content.decode()
