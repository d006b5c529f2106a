"""Runs what a request queued on commit, as the worker would (no broker, no mocks)."""


def queued_tasks(callbacks) -> dict[str, list]:
    """``{task name: [call args, ...]}`` of the ``delay_on_commit`` callbacks captured."""
    out: dict[str, list] = {}
    for cb in callbacks:
        task = getattr(getattr(cb, "func", None), "__self__", None)
        if getattr(task, "name", None):
            out.setdefault(task.name, []).append(cb.args)
    return out


def run_queued(callbacks) -> dict[str, list]:
    """Calls each queued task's function with its arguments; returns what was queued."""
    for cb in callbacks:
        task = getattr(getattr(cb, "func", None), "__self__", None)
        if getattr(task, "name", None):
            task(*cb.args, **cb.keywords)
    return queued_tasks(callbacks)
