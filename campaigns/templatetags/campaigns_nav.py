"""``{% campaigns_nav %}``: the campaigns section's navigation, and on a page of one
campaign (its URL has a ``campaign_id``) that campaign's tabs — only when it exists,
so a 404 page names nothing."""

from django import template

from core.errors import NotFound

from ..services.campaigns import campaign_get

register = template.Library()


@register.inclusion_tag("campaigns/_nav.html", takes_context=True)
def campaigns_nav(context):
    request = context["request"]
    match = request.resolver_match
    campaign_id = match.kwargs.get("campaign_id") if match else None
    nav_campaign = None
    if campaign_id is not None and request.user.has_perm("campaigns.view_campaign"):
        try:
            nav_campaign = campaign_get(campaign_id=campaign_id)
        except NotFound:
            nav_campaign = None
    return {
        "request": request,
        "perms": context.get("perms"),
        "user": context.get("user"),
        "nav_campaign": nav_campaign,
    }
