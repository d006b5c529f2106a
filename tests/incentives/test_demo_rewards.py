"""The demo's points mall has rewards to redeem (issue 10): added through the
catalogue service (audited), once."""

import pytest
from django.core.management import call_command

from core.models import AuditEntry
from incentives.management.commands.seed_demo_rewards import DEMO_REWARDS
from incentives.models import Reward

pytestmark = pytest.mark.django_db


def test_seed_demo_rewards_fills_the_mall_once_and_audited():
    call_command("seed_demo_rewards")
    call_command("seed_demo_rewards")
    names = sorted(Reward.objects.filter(is_active=True).values_list("name", flat=True))
    assert names == sorted(r[0] for r in DEMO_REWARDS)
    assert AuditEntry.objects.filter(object_type="incentives.reward").count() == len(DEMO_REWARDS)
