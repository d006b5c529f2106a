"""The recompute's SQL, by what it does:

- ``sql``: dialect helpers (PostgreSQL / SQLite), binary COPY of numpy columns, the
  tables written, statistics and planner settings;
- ``full``: a full run's phases (aggregate chunk, summary, model fit and predictions,
  scores, stage changes, size snapshots);
- ``incremental``: the incremental run (changed customers, re-ranking, patching the
  published run in place);
- ``maintenance``: clearing staging rows, deleting superseded scores, vacuum.

The orchestration (runs, chunks, publishing) is ``segments.services.recompute``.
"""
