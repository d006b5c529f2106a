from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The composition layer: pages and endpoints built from several domain apps'
    selectors (the customer 360 page, the customer list and profile API), and the
    wiring of one app's hooks to another's reactions."""

    name = "console"
    verbose_name = _("Operator console")

    def ready(self):
        from campaigns import tasks as campaigns_tasks
        from communities.models import MemberRole
        from communities.selectors import groups as communities_groups
        from incentives import tasks as incentives_tasks
        from segments import definitions as segment_definitions
        from users import hooks as users_hooks

        # The segment condition "member of group X (with role R)": segments sits below
        # communities, so the groups and roles it offers and checks are handed down here.
        segment_definitions.community_groups_register(
            groups=communities_groups.group_codes, roles=list(MemberRole.choices)
        )

        # New or changed orders and new events earn (or take back) points. Segments
        # needs no hook: the incremental recompute reads what changed since its last run.
        users_hooks.orders_changed.subscribe(incentives_tasks.orders_changed_queue_rules)
        users_hooks.events_appended.subscribe(incentives_tasks.events_appended_queue_rules)
        # An unsubscribe (the API, a one-click link) is remembered by the contact policy.
        users_hooks.customer_unsubscribed.subscribe(campaigns_tasks.customer_unsubscribed_record)
        # A paid order after a campaign's message is its conversion (last touch).
        users_hooks.orders_changed.subscribe(campaigns_tasks.orders_changed_attribute)
