"""Group health per group and day (stub: the health work fills it in)."""

from datetime import date


def health_rollup(day_from: date, day_to: date) -> int:
    """Recompute GroupHealthDay for every group and each day in [day_from, day_to] with
    set-based SQL; returns the number of rows written."""
    raise NotImplementedError
