"""The community jobs; each task is a thin call into a service."""

from . import alerts, health  # noqa: F401
