"""Writes for segments, by what they write:

- ``rule_sets``: the active rule set, saving an edit as a new version;
- ``recompute``: running a recompute (start, chunks, finish, the whole run in this
  process, the incremental run), its progress and stale-run detection, publishing,
  cleanup;
- ``membership``: custom segments (save, static upload) and their membership,
  materialised set-based.

The public names are re-exported here: ``from segments import services`` and
``services.recompute_sync(...)``.
"""

from .membership import (
    MAX_STATIC_ROWS,
    scope_close,
    scope_open,
    segment_materialize,
    segment_save,
    segments_materialize,
    static_segment_upload,
)
from .recompute import (
    STALE_AFTER,
    recompute_chunk,
    recompute_finish,
    recompute_incremental,
    recompute_start,
    recompute_sync,
    scores_vacuum,
    superseded_scores_cleanup,
)
from .rule_sets import rule_set_active, rule_set_save_new_version

__all__ = [
    "MAX_STATIC_ROWS",
    "STALE_AFTER",
    "recompute_chunk",
    "recompute_finish",
    "recompute_incremental",
    "recompute_start",
    "recompute_sync",
    "rule_set_active",
    "rule_set_save_new_version",
    "scope_close",
    "scope_open",
    "scores_vacuum",
    "segment_materialize",
    "segment_save",
    "segments_materialize",
    "static_segment_upload",
    "superseded_scores_cleanup",
]
