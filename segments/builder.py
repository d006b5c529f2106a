"""What the segment builder's script needs to draw a condition row: the definition
fields (``definitions.FIELDS``), their comparisons, value kinds and choices, and the
builder's own words, all labelled in the operator's language."""

from django.utils.translation import gettext as _

from .definitions import COUNT_OPS, FIELDS, OPS, TAG_OPS
from .labels import FIELD_LABELS, OP_LABELS, label

EMPTY_DEFINITION = {"op": "and", "conditions": []}


def builder_meta() -> dict:
    """Fields, their comparisons, value kinds and choices, and the builder's words."""
    fields = []
    for name, f in FIELDS.items():
        if f.source == "tag":
            ops = TAG_OPS
        elif f.source in ("event", "orders"):
            ops = COUNT_OPS
        else:
            ops = OPS[f.kind]
        fields.append(
            {
                "name": name,
                "label": str(FIELD_LABELS.get(name, name)),
                "kind": f.kind,
                "source": f.source,
                "ops": [op for op in OP_LABELS if op in ops],
                "choices": [[c, label(c)] for c in f.choices],
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
        "event_type": _("event type, e.g. checkin"),
        "within": _("within the last"),
        "days": _("days"),
        "within_days": _("days"),
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
    }
    return {"fields": fields, "ops": {k: str(v) for k, v in OP_LABELS.items()}, "text": text}
