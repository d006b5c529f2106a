"""A channel's global send rate, shared by every worker: a token bucket.

``take(channel, n)`` answers 0 when ``n`` sends may go now (and counts them), or the
seconds to wait before asking again; it never sleeps itself, so a Celery task can
re-queue itself with that countdown instead of holding a worker. The rate is
``settings.OPS_CHANNEL_RATES[channel]`` tokens a second and the bucket holds
``max(1, rate)`` tokens (a burst of at most one second's worth); a channel without a
(positive) rate is not limited.

Where the bucket lives:

* With ``settings.REDIS_URL`` (production: several machines): a hash
  ``opsdesk:rate:<channel>`` (``tokens``, ``ts``) updated by one Lua script (EVALSHA
  via ``register_script``), so reading, refilling and taking are one atomic step, and
  the clock is Redis's ``TIME``, so workers on machines whose clocks differ still
  agree. The key expires once the bucket would be full again.
* Without Redis (the embedded default, one machine): a small file per channel under
  ``settings.VAR_DIR / "rate"``, read and rewritten under an exclusive ``fcntl.flock``
  — atomic across the processes of one machine (not across machines, nor on NFS),
  with the machine's clock. Taking the lock may wait the few microseconds another
  process holds it; nothing waits for tokens.

A clock that steps back never refills the bucket (nor drains it)."""

import fcntl
import math
import os
import re
import threading
import time
from pathlib import Path

from django.conf import settings

KEY_PREFIX = "opsdesk:rate:"

# KEYS[1] the bucket; ARGV rate (tokens/s), capacity, n. Answers the wait in seconds
# as a string (a Lua number would come back truncated to an integer).
_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= n then
  tokens = tokens - n
else
  wait = (n - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.6f', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return string.format('%.17g', wait)
"""

_local = threading.local()


def rate_for(channel: str) -> float | None:
    rate = settings.OPS_CHANNEL_RATES.get(channel)
    return float(rate) if rate and float(rate) > 0 else None


def key_for(channel: str) -> str:
    return KEY_PREFIX + channel


def take(channel: str, n: int = 1) -> float:
    """0 when ``n`` tokens are granted now, else the seconds to wait before trying again."""
    rate = rate_for(channel)
    if rate is None:
        return 0.0
    capacity = max(1.0, rate)
    if n < 1 or n > capacity:
        raise ValueError(f"n must be between 1 and the bucket's capacity ({capacity:g}), not {n}")
    if settings.REDIS_URL:
        return _take_redis(channel, rate, capacity, n)
    return _take_file(channel, rate, capacity, n)


def _take_redis(channel: str, rate: float, capacity: float, n: int) -> float:
    script = _redis_script(settings.REDIS_URL)
    return float(script(keys=[key_for(channel)], args=[repr(rate), repr(capacity), n]))


def _redis_script(url: str):
    """The registered script on this process's client for ``url`` (fresh after a fork)."""
    import redis

    cached = getattr(_local, "redis", None)
    if cached is None or cached[0] != (os.getpid(), url):
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        cached = ((os.getpid(), url), client.register_script(_LUA))
        _local.redis = cached
    return cached[1]


def bucket_path(channel: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", channel) or "_"
    return Path(settings.VAR_DIR) / "rate" / f"{safe}.bucket"


def _take_file(channel: str, rate: float, capacity: float, n: int) -> float:
    path = bucket_path(channel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        now = time.time()
        tokens, ts = _read_state(fd, capacity, now)
        if now > ts:
            tokens = min(capacity, tokens + (now - ts) * rate)
            ts = now
        wait = 0.0
        if tokens >= n:
            tokens -= n
        else:
            wait = (n - tokens) / rate
        state = f"{tokens!r} {ts!r}\n".encode()
        os.pwrite(fd, state.ljust(64), 0)  # fixed width: no truncate, no stale tail
        return wait
    finally:
        os.close(fd)  # releases the lock


def _read_state(fd: int, capacity: float, now: float) -> tuple[float, float]:
    """The stored (tokens, ts); a full bucket when the file is new or unreadable."""
    raw = os.pread(fd, 128, 0)
    try:
        tokens, ts = (float(part) for part in raw.split()[:2])
    except ValueError:
        return capacity, now
    if not (math.isfinite(tokens) and math.isfinite(ts)):
        return capacity, now
    return min(max(tokens, 0.0), capacity), ts
