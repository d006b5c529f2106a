"""Reads for communities, one module per area (other apps use these, not the models)."""

# What other apps call (the import contracts let them reach ``communities.selectors``
# only): the feedback queue's canned replies, later the campaigns, render SOP templates.
from ..templating import VARIABLES  # noqa: F401
from .templates import (  # noqa: F401
    HTML,
    TEXT,
    sample_context,
    template_by_code,
    template_context,
    template_preview,
    template_render,
    templates_usable,
)
