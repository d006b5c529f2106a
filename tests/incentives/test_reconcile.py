import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from incentives import services
from incentives.models import PointsAccount

from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _ledger():
    a, b = CustomerFactory(external_id="alice"), CustomerFactory(external_id="bob")
    services.points_post(customer=a, kind="earn", amount=100, reason="r", idempotency_key="k", now=NOW)
    services.points_post(customer=b, kind="earn", amount=50, reason="r", idempotency_key="k", now=NOW)
    services.points_post(customer=b, kind="spend", amount=20, reason="r", idempotency_key="s", now=NOW)
    return a, b


def test_clean_ledger_exits_zero_with_ok(capsys):
    _ledger()
    call_command("reconcile_points")  # no SystemExit
    assert capsys.readouterr().out.startswith("OK")


def test_drift_exits_one_and_names_the_customer(capsys):
    _, b = _ledger()
    PointsAccount.objects.filter(customer=b).update(balance=7)
    with pytest.raises(SystemExit) as exc:
        call_command("reconcile_points")
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "1 account(s)" in out
    assert f"customer {b.external_id} (id {b.pk}): balance 7, ledger sum 30, latest balance_after 30" in out


def test_drift_as_json(capsys):
    a, _ = _ledger()
    PointsAccount.objects.filter(customer=a).update(balance=101)
    with pytest.raises(SystemExit) as exc:
        call_command("reconcile_points", "--json")
    assert exc.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["drift_accounts"] == 1
    assert report["drift"] == [
        {"customer_id": a.pk, "balance": 101, "ledger": 100, "last_after": 100, "external_id": "alice"}
    ]
