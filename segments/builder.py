"""What the segment builder's script needs to draw a condition row: the definition
fields (``definitions.FIELDS``), their comparisons, value kinds and choices, and the
builder's own words, all labelled in the operator's language.

Every value that can be listed is offered as a choice — a ``<select>`` whose options
show the operator's language and submit the internal key: the choice fields' values
(gender, tier, stage, operating class), the active rule set's RFM groups and
segments, the incentive levels (``incentives.selectors``), the known acquisition
channels and event types. A definition that holds a value outside the list keeps it
(the script adds it as an option), and the JSON under "Advanced" takes any value."""

from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from incentives import selectors as incentives_selectors

from .definitions import FIELDS, community_groups, community_roles, field_ops
from .labels import FIELD_LABELS, OP_LABELS, label
from .models import RuleSet

EMPTY_DEFINITION = {"op": "and", "conditions": []}

# Keys that come from the product's data. The built-in lists the builder offers until
# an admin-editable display name per language exists; a key not listed shows as is.
CHANNEL_LABELS = {
    "organic": pgettext_lazy("acquisition channel", "organic"),
    "app_store": pgettext_lazy("acquisition channel", "app store"),
    "wechat": pgettext_lazy("acquisition channel", "WeChat"),
    "douyin": pgettext_lazy("acquisition channel", "Douyin"),
    "xiaohongshu": pgettext_lazy("acquisition channel", "Xiaohongshu"),
    "referral": pgettext_lazy("acquisition channel", "referral"),
    "ads": pgettext_lazy("acquisition channel", "ads"),
}
EVENT_TYPE_LABELS = {
    "checkin": pgettext_lazy("event type", "check-in"),
    "login": pgettext_lazy("event type", "login"),
    "page_view": pgettext_lazy("event type", "page view"),
    "add_to_cart": pgettext_lazy("event type", "add to cart"),
    "share": pgettext_lazy("event type", "share"),
    "invite": pgettext_lazy("event type", "invite"),
    "message": pgettext_lazy("event type", "message"),
    "content_accepted": pgettext_lazy("event type", "post accepted"),
    "activity_joined": pgettext_lazy("event type", "joined an activity"),
    "invite_accepted": pgettext_lazy("event type", "invite accepted"),
}


def _rfm_codes() -> tuple[list[str], list[str]]:
    """The active rule set's RFM group and segment codes, each with its catch-all
    (``general``, ``other``) — what the next recompute can assign."""
    rule_set = RuleSet.objects.filter(is_active=True).order_by("-version").first()
    if rule_set is None:
        return [], []
    groups = [g["code"] for g in rule_set.rfm_groups if isinstance(g, dict) and g.get("code")]
    fine = [g["code"] for g in rule_set.rfm_segments if isinstance(g, dict) and g.get("code")]
    return [*groups, "general"], [*fine, "other"]


def _choices() -> dict[str, list[list[str]]]:
    """``{field: [[key, label], ...]}`` for every field whose values can be listed."""
    groups, fine = _rfm_codes()
    choices = {name: [[c, label(c)] for c in f.choices] for name, f in FIELDS.items() if f.choices}
    choices["rfm_group"] = [[c, label(c)] for c in groups]
    choices["rfm_segment"] = [[c, label(c)] for c in fine]
    choices["level"] = [[n, n] for n in incentives_selectors.level_names()]
    choices["channel"] = [[k, str(v)] for k, v in CHANNEL_LABELS.items()]
    # Registered by the layer above (console.apps): segments does not import communities.
    choices["community"] = [[code, f"{name} ({code})"] for code, name in community_groups().items()]
    return choices


def builder_meta() -> dict:
    """Fields, their comparisons, value kinds and choices, and the builder's words."""
    fields = []
    choices = _choices()
    for name, f in FIELDS.items():
        ops = field_ops(f)
        fields.append(
            {
                "name": name,
                "label": str(FIELD_LABELS.get(name, name)),
                "kind": f.kind,
                "source": f.source,
                "ops": [op for op in OP_LABELS if op in ops],
                "choices": choices.get(name, []),
                "min": f.minimum,
                "max": f.maximum,
            }
        )
    text = {
        "field": _("Field"),
        "op": _("Comparison"),
        "value": _("Value"),
        "low": _("from"),
        "high": _("to"),
        "and_word": _("and"),
        "comma_list": _("values, separated by commas"),
        "times_of": _("times the event"),
        "event_type": _("Event type"),
        "within": _("within the last"),
        "days": _("days"),
        "within_days": _("Number of days"),
        "not_listed": _("(not in the list)"),
        "incomplete": _("Fill in every condition's value to see the size."),
        "from_date": _("from"),
        "to_date": _("to"),
        "from": _("from date"),
        "to": _("to date"),
        "remove": _("Remove"),
        "yes": _("yes"),
        "no": _("no"),
        "bad_json": _("The JSON definition cannot be read."),
        "add_first": _("Add a condition to see the size."),
        "loading": _("Counting…"),
        "failed": _("The preview failed; try again."),
        "sample": _("First customers, by id:"),
        "role": _("with the role"),
    }
    return {
        "fields": fields,
        "ops": {k: str(v) for k, v in OP_LABELS.items()},
        "event_types": [[k, str(v)] for k, v in EVENT_TYPE_LABELS.items()],
        "community_roles": [["", _("any role")], *([k, str(v)] for k, v in community_roles())],
        "text": text,
    }
