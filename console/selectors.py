"""Reads composed from several apps: the customer profile's computed sections."""

from communities.selectors import members as communities_members
from incentives import selectors as incentives_selectors
from segments import selectors as segments_selectors
from users.models import Customer


def customer_profile_sections(*, customer: Customer) -> dict:
    """The computed parts of a profile. Each is ``None`` (or empty) until its engine has
    produced something for this customer: segments fill ``rfm``/``tier``/``stage``/
    ``churn``/``segments``, incentives ``points``/``level``/``badges``, communities
    ``communities``. Each app's selector owns its queries; this only puts them together."""
    points = incentives_selectors.points_summary(customer=customer)
    return {
        **segments_selectors.customer_profile_segments(customer=customer),
        "points": {"balance": points["balance"], "expiring_soon": points["expiring_soon"]},
        "level": incentives_selectors.customer_level(customer=customer),
        "badges": incentives_selectors.customer_badges(customer=customer),
        "communities": communities_members.customer_communities(customer_ids=[customer.pk])[customer.pk],
    }
