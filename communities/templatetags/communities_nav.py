"""``{% communities_nav %}``: the communities section's navigation, and on a page of one
group (its URL has a ``group_id``) that group's tabs — only when the user may see the
group, so a 404 page for another manager's group names nothing of it."""

from django import template

from ..access import groups_visible

register = template.Library()


@register.inclusion_tag("communities/_nav.html", takes_context=True)
def communities_nav(context):
    request = context["request"]
    match = request.resolver_match
    group_id = match.kwargs.get("group_id") if match else None
    nav_group = groups_visible(request.user).filter(pk=group_id).first() if group_id else None
    return {"request": request, "perms": context.get("perms"), "nav_group": nav_group}
