from django.core.management.base import BaseCommand

from incentives.models import Reward
from incentives.services import catalogue_save

# name, description, points price, stock (None = unlimited); data in both languages, like the default levels
DEMO_REWARDS = [
    ("满99减10元券 10-yuan coupon", "下单满99元可用 For an order over 99 yuan", 500, None),
    ("包邮券 Free shipping", "一笔订单免运费 Free shipping on one order", 300, None),
    ("帆布袋 Canvas tote", "随下一笔订单寄出 Shipped with the next order", 1500, 200),
    ("保温杯 Thermos cup", "350 ml 不锈钢 stainless steel", 3000, 50),
    ("会员日礼盒 Members' day gift box", "限量 While stock lasts", 8000, 10),
]


class Command(BaseCommand):
    help = (
        "Adds a few demo rewards to the points mall (积分商城) through the catalogue service (audited), "
        "so redeeming can be tried. Rewards already there (by name) are left as they are."
    )

    def handle(self, *args, **options):
        existing = set(Reward.objects.values_list("name", flat=True))
        added = 0
        for name, description, price, stock in DEMO_REWARDS:
            if name in existing:
                continue
            catalogue_save(obj=Reward(name=name, description=description, points_price=price, stock=stock))
            added += 1
        self.stdout.write(f"demo rewards: {added} added, {len(DEMO_REWARDS) - added} there already")
