"""The admin for communities, one module per area; each ModelAdmin writes through the
area's services."""

from . import alerts, calendar, groups, risk, templates  # noqa: F401
