"""The log backend: records what it would send, and sends nothing.

Each hand-over is one structured log line on the ``campaigns.channel`` logger and one
JSON line ``{"delivery", "key", "channel", "customer", "at"}`` appended to
``settings.OPS_CHANNEL_LOG_FILE``. Neither carries the address or the body (PII).

The file is opened ``O_APPEND`` and each line goes out in one ``os.write``: the kernel
places every such write at the then end of the file, so lines from concurrent workers
never interleave. ``os.write`` is unbuffered, so the line is in the file (visible to
any reader) when ``send`` returns."""

import json
import logging
import os
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .base import SENT, Handover, Outcome, json_bytes

logger = logging.getLogger("campaigns.channel")

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class LogBackend:
    name = "log"

    def __init__(self, path: str | os.PathLike | None = None):
        self._path = Path(path) if path is not None else None

    @property
    def path(self) -> Path:
        return self._path or _settings_path(str(settings.OPS_CHANNEL_LOG_FILE))

    def send(self, handover: Handover) -> Outcome:
        record = {
            "delivery": handover.delivery_id,
            "key": handover.idempotency_key,
            "channel": handover.channel,
            "customer": handover.customer,
        }
        # DEBUG: the file is the record; a million INFO lines would drown the worker's log.
        logger.debug("channel hand-over recorded", extra=record)
        append_line(self.path, json_bytes({**record, "at": timezone.now().isoformat()}) + b"\n")
        return Outcome(SENT)


@lru_cache(maxsize=16)
def _settings_path(value: str) -> Path:
    return Path(value)


# One descriptor per file and process, opened on first use (a million hand-overs, one
# open): O_APPEND makes every write land at the end whoever else writes; reopened in a
# forked child (the pid changes) and when the file was removed or replaced.
_open: dict[Path, tuple[int, int, int]] = {}  # path -> (pid, fd, inode)


def _fd(path: Path) -> int:
    held = _open.get(path)
    if held is not None and held[0] == os.getpid():
        try:
            if os.stat(str(path)).st_ino == held[2]:
                return held[1]
        except FileNotFoundError:
            pass
        os.close(held[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, _FLAGS, 0o640)
    _open[path] = (os.getpid(), fd, os.fstat(fd).st_ino)
    return fd


def append_line(path: Path, line: bytes) -> None:
    """``line`` at the end of ``path`` in one write (see the module's docstring)."""
    fd = _fd(path)
    written = os.write(fd, line)
    while written < len(line):  # only on a full disk or the like; finish what was started
        written += os.write(fd, line[written:])


def read_log(path: str | os.PathLike | None = None) -> list[dict]:
    """Every recorded hand-over, oldest first (for tests and benchmarks); ``[]`` when none."""
    path = Path(path if path is not None else settings.OPS_CHANNEL_LOG_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
