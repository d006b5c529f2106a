"""The demo campaigns are written through the services, once."""

from django.core.management import call_command

from campaigns.models import Campaign, Delivery
from tests.users.factories import CustomerFactory


def test_the_demo_campaigns_are_seeded_once_and_removed(db, make_user, static_segment, channel_log, no_quiet_hours):
    make_user("admin", username="admin")
    make_user("operator", username="operator")
    static_segment("demo-everyone", [CustomerFactory() for _ in range(30)])
    call_command("seed_demo_campaigns")
    campaigns = dict(Campaign.objects.values_list("name", "status"))
    assert campaigns == {
        "[demo] 春季特惠（A/B）": "running",
        "[demo] 每周精选": "scheduled",
        "[demo] 新人欢迎（注册第 1 天）": "scheduled",
        "[demo] 流失召回短信": "draft",
    }
    sale = Campaign.objects.get(name="[demo] 春季特惠（A/B）")
    assert sale.deliveries.filter(status__in=["sent", "delivered", "opened", "clicked"]).count() == 30
    assert sale.deliveries.exclude(delivered_at=None).exists()
    call_command("seed_demo_campaigns")  # again: nothing new
    assert Campaign.objects.count() == 4 and Delivery.objects.count() == 30
    call_command("seed_demo_campaigns", "--delete")
    assert not Campaign.objects.exists() and not Delivery.objects.exists()
