"""``{% load display %}``: ``{{ customer.channel|display:"channel" }}`` shows a data
key by its admin-editable name in the operator's language (the key itself when none
is set); ``{{ event.properties|event_properties }}`` the properties as named pairs."""

import json

from django import template

from core.selectors import display_name

register = template.Library()


@register.filter
def display(value, kind: str) -> str:
    return display_name(kind, value)


@register.filter
def event_properties(properties) -> list[tuple[str, str]]:
    """``[(name, value), …]`` for an event's properties dict, names and known values
    shown in the operator's language; nested values as compact JSON."""
    if not isinstance(properties, dict):
        return []
    pairs = []
    for key in sorted(properties):
        value = properties[key]
        if isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
        elif isinstance(value, bool | str):
            shown = display_name("event_value", value)
        else:
            shown = "—" if value is None else str(value)
        pairs.append((display_name("event_property", key), shown))
    return pairs
