"""The churn model through the real recompute: which fit is used, and what the
Gamma-Gamma model is fed (issue 8)."""

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from segments import churn, services
from segments.models import CustomerScore
from users.models import Order

from .factories import AS_OF, CustomerFactory, OrderFactory, ensure_rule_set, generate_history


@pytest.fixture(autouse=True)
def _rules(db):
    ensure_rule_set()


def three_buyers() -> list:
    """Three repeat buyers: far too few to identify BG/NBD (its fit runs off to a ≈ 1e8)."""
    people = []
    for repeats, last_days_ago, first_days_ago in ((2, 40, 100), (1, 50, 80), (3, 30, 120)):
        customer = CustomerFactory(signup_at=AS_OF - timedelta(days=400))
        first = AS_OF - timedelta(days=first_days_ago)
        last = AS_OF - timedelta(days=last_days_ago)
        times = [first + (last - first) * i / repeats for i in range(repeats + 1)]
        for at in times:
            OrderFactory(customer=customer, amount=Decimal("80.00"), occurred_at=at)
        people.append(customer)
    return people


def test_a_degenerate_fit_keeps_the_previous_parameters_and_says_why(db):
    generate_history()
    good = services.recompute_sync(as_of=AS_OF)
    assert good.model_params["refit"] is True
    assert "note" not in good.model_params

    Order.objects.update(status="refunded")  # only the three buyers below are left
    people = three_buyers()
    run = services.recompute_sync(as_of=AS_OF)
    params = run.model_params
    assert params["buyers"] == 3 and params["refit"] is False
    # The previous published fit is kept, untouched …
    assert params["bgnbd"] == good.model_params["bgnbd"]
    assert params["gamma_gamma"] == good.model_params["gamma_gamma"]
    # … the rejected one is recorded with the reason.
    assert "did not converge or is implausible" in params["note"] and "previous parameters kept" in params["note"]
    assert params["rejected"]["bgnbd"]["converged"] is False
    assert max(params["rejected"]["bgnbd"][k] for k in ("r", "alpha", "a", "b")) > 1e4

    # Predictions use the kept parameters.
    bg = churn.BgNbdParams.from_dict(good.model_params["bgnbd"])
    for customer in people:
        score = CustomerScore.objects.get(run=run, customer=customer)
        orders = sorted(Order.objects.filter(customer=customer).values_list("occurred_at", flat=True))
        x = len(orders) - 1
        t_x = (orders[-1] - orders[0]).total_seconds() / 86400
        age = (AS_OF - orders[0]).total_seconds() / 86400
        assert score.p_alive == pytest.approx(float(churn.p_alive(bg, x, t_x, age)), rel=1e-9)

    # The next run starts from the kept fit too (not from the rejected one).
    again = services.recompute_sync(as_of=AS_OF)
    assert again.model_params["bgnbd"] == good.model_params["bgnbd"]


def test_a_degenerate_fit_without_a_previous_one_gives_no_predictions(db):
    people = three_buyers()
    run = services.recompute_sync(as_of=AS_OF)
    params = run.model_params
    assert params["refit"] is False and "bgnbd" not in params and "gamma_gamma" not in params
    assert "no previous parameters: no predictions" in params["note"]
    assert params["rejected"]["bgnbd"]["converged"] is False
    for customer in people:
        score = CustomerScore.objects.get(run=run, customer=customer)
        assert score.p_alive is None and score.clv is None and score.expected_order_value is None
        assert score.stage  # stages still come from the inactivity thresholds


def test_plausibility_bounds():
    from segments import engine

    bg = churn.BgNbdParams(r=0.5, alpha=20.0, a=0.8, b=2.5)
    gg = churn.GammaGammaParams(p=6.25, q=3.74, v=15.44)  # population mean 35.22
    spend = (5.0, 200.0)
    assert engine._unusable(bg, gg, spend) == ""
    # q running off with a sensible population mean is the no-heterogeneity limit: usable.
    assert engine._unusable(bg, churn.GammaGammaParams(p=13.1, q=1.77e6, v=8.1e6, converged=False), (50.0, 80.0)) == ""
    assert "did not converge" in engine._unusable(dataclasses.replace(bg, converged=False), gg, spend)
    assert "a" in engine._unusable(dataclasses.replace(bg, a=1.5e8), gg, spend).split(": ")[-1].split(", ")
    assert "p" in engine._unusable(bg, dataclasses.replace(gg, p=2e4), spend).split(": ")[-1].split(", ")
    assert "outside the observed range" in engine._unusable(bg, gg, (40.0, 200.0))
    undefined = churn.GammaGammaParams(p=2.0, q=0.8, v=10.0, sample_mean=float("nan"), uses_sample_mean=True)
    assert "outside the observed range" in engine._unusable(bg, undefined, spend)
