"""The admin-set community thresholds: one row, created with the defaults on first read."""

from ..models import CommunitySettings


def settings_get() -> CommunitySettings:
    row, _ = CommunitySettings.objects.get_or_create(pk=1)
    return row
