"""Every write of the communities app. Pages, the API, the admin, imports and tasks
call these; each writes its audit row and queues its side effects."""

# What other apps call (the import contracts let them reach ``communities.services`` only):
# the campaigns' demo writes its campaign templates through the same services.
from .templates import template_create, version_approve  # noqa: F401
