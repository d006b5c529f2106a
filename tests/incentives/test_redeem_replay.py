"""Issue 9: a redeem replayed after its redemption was cancelled answered 201 with the
first balance_after (90) while the balance was back to 100. Decided: 409
``redemption_cancelled`` with the current state in the details (README, OpenAPI)."""

import pytest

from incentives.models import PointsAccount, Redemption

from .factories import CustomerFactory, RewardFactory, seed_defaults
from .test_api import assert_error, post_entry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _defaults():
    seed_defaults()


def _redeem(api, reward_id, key="r-1"):
    return api.post(f"/api/v1/rewards/{reward_id}/redeem", {"customer": "c1", "idempotency_key": key}, format="json")


def test_a_replay_after_cancel_is_409_with_the_current_state(api):
    customer = CustomerFactory(external_id="c1")
    post_entry(api, customer="c1", amount=100)
    reward = RewardFactory(points_price=10, stock=5)
    first = _redeem(api, reward.pk)
    assert first.status_code == 201 and first.json()["balance_after"] == 90
    redemption_id = first.json()["redemption"]["id"]
    assert _redeem(api, reward.pk).json() == first.json()  # a replay before the cancel: the first answer

    assert api.post(f"/api/v1/redemptions/{redemption_id}/cancel").status_code == 200
    error = assert_error(_redeem(api, reward.pk), 409, "redemption_cancelled")
    assert error["details"]["redemption"] == redemption_id
    assert error["details"]["balance"] == 100 == PointsAccount.objects.get(customer=customer).balance
    assert error["details"]["cancelled_at"].endswith("+00:00")
    assert Redemption.objects.count() == 1  # the replay redeemed nothing

    again = _redeem(api, reward.pk, key="r-2")  # a new key redeems again
    assert again.status_code == 201 and again.json()["balance_after"] == 90
