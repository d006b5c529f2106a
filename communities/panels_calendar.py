"""The content calendar's piece of the manager's home page: the posts due today in the
groups the user may see (``communities/calendar/_home_card.html``)."""

from datetime import datetime

from .models import PostStatus
from .selectors import calendar as selectors

# The card lists this many posts; the rest are counted ("and 12 more").
CARD_LIMIT = 12


def due_posts_card(user, *, now: datetime | None = None) -> dict | None:
    """Today's (the operators' today) due posts, planned and done, for the card; None
    for a user who may not see the calendar (the card is not shown)."""
    if not user.has_perm("communities.view_contentpost"):
        return None
    day = selectors.operator_today(now)
    posts = selectors.posts_due(user=user, day=day)
    return {
        "day": day,
        "posts": posts[:CARD_LIMIT],
        "more": max(len(posts) - CARD_LIMIT, 0),
        "planned": sum(1 for p in posts if p.status == PostStatus.PLANNED),
        "done": sum(1 for p in posts if p.status == PostStatus.DONE),
    }
