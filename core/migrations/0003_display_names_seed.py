from django.db import migrations

# The built-in display names (key, English, Simplified Chinese); admins edit them or add more.
BUILTIN = {
    "channel": [
        ("organic", "Organic", "自然流量"),
        ("app_store", "App store", "应用商店"),
        ("wechat", "WeChat", "微信"),
        ("douyin", "Douyin", "抖音"),
        ("referral", "Referral", "好友推荐"),
        ("ads", "Paid ads", "广告投放"),
        ("xiaohongshu", "Xiaohongshu", "小红书"),
        ("weibo", "Weibo", "微博"),
        ("offline", "Offline store", "线下门店"),
        ("mini_program", "Mini program", "小程序"),
    ],
    "event_type": [
        ("login", "Login", "登录"),
        ("page_view", "Page view", "浏览页面"),
        ("add_to_cart", "Add to cart", "加入购物车"),
        ("checkin", "Check-in", "签到"),
        ("share", "Share", "分享"),
        ("invite", "Invite", "邀请好友"),
        ("message", "Message", "发送消息"),
        ("review", "Review", "评价"),
        ("signup", "Sign-up", "注册"),
        ("order", "Order", "下单"),
    ],
    "event_property": [
        ("sku", "SKU", "商品编码"),
        ("qty", "Quantity", "数量"),
        ("page", "Page", "页面"),
        ("platform", "Platform", "平台"),
        ("target", "Shared to", "分享到"),
        ("kind", "Kind", "类型"),
        ("invitee", "Invitee", "受邀人"),
        ("first", "First time", "首次"),
        ("amount", "Amount", "金额"),
        ("channel", "Channel", "渠道"),
    ],
    "event_value": [
        ("home", "Home", "首页"),
        ("search", "Search", "搜索"),
        ("category", "Category", "分类"),
        ("activity", "Campaign page", "活动页"),
        ("product", "Product", "商品详情"),
        ("ios", "iOS", "iOS"),
        ("android", "Android", "安卓"),
        ("mini_program", "Mini program", "小程序"),
        ("web", "Web", "网页"),
        ("wechat_friend", "WeChat friend", "微信好友"),
        ("wechat_moments", "WeChat Moments", "微信朋友圈"),
        ("weibo", "Weibo", "微博"),
        ("xiaohongshu", "Xiaohongshu", "小红书"),
        ("qq", "QQ", "QQ"),
        ("group_chat", "Group chat", "群聊"),
        ("customer_service", "Customer service", "客服"),
        ("true", "Yes", "是"),
        ("false", "No", "否"),
    ],
}


def seed(apps, schema_editor):
    DisplayName = apps.get_model("core", "DisplayName")
    existing = set(DisplayName.objects.values_list("kind", "key"))
    DisplayName.objects.bulk_create(
        DisplayName(kind=kind, key=key, name_en=en, name_zh_hans=zh)
        for kind, rows in BUILTIN.items()
        for key, en, zh in rows
        if (kind, key) not in existing
    )


def unseed(apps, schema_editor):
    DisplayName = apps.get_model("core", "DisplayName")
    for kind, rows in BUILTIN.items():
        DisplayName.objects.filter(kind=kind, key__in=[key for key, _en, _zh in rows]).delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0002_display_name")]

    operations = [migrations.RunPython(seed, unseed)]
