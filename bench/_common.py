"""Shared pieces of the benchmarks: a fresh PostgreSQL database, a gunicorn
server on it, the server's peak memory, and the one JSON line a benchmark prints.

Everything talks to 127.0.0.1 only. Nothing here imports Django at import time, so a
benchmark's client side stays light; server-side setup runs ``manage.py``
in a subprocess with :func:`server_env`, or (the COPY loaders) in a process
that has set Django up.
"""

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").exists() else Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def database_recreate(name: str) -> str:
    """Drops (if present) and creates the database ``name``; returns its URL."""
    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return database_url(name)


def database_drop(name: str) -> None:
    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def server_env(database: str, **extra: str) -> dict[str, str]:
    """The environment of a production-shaped server process (base settings, DEBUG off)."""
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "ops_site.settings.base",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "OPS_VAR_DIR": os.environ.get("OPS_VAR_DIR", str(Path(tempfile.gettempdir()) / "opsdesk-bench-var")),
        **extra,
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Runs ``manage.py <args>``; returns its stdout, raises with its stderr on failure."""
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    ram_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram_kb = int(line.split()[1])
    return f"{os.cpu_count()} cores, {ram_kb / 1024 / 1024:.0f} GB RAM"


def load_average() -> float:
    """The 1-minute load average: other work on the machine skews a benchmark, so it is reported."""
    return round(os.getloadavg()[0], 2)


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def postgres_backends(database: str) -> list[int]:
    """Process ids of the PostgreSQL backends connected to ``database`` (same machine)."""
    conn = psycopg2.connect(PG_ADMIN_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


class CpuMeter:
    """CPU used by a changing set of processes (database backends come and go), sampled in a thread."""

    def __init__(self, pids, interval: float = 0.5):
        self._pids, self._interval = pids, interval
        self._baseline = {pid: cpu_seconds([pid]) for pid in pids()}
        self._last: dict[int, float] = dict(self._baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for pid in self._pids():
            used = cpu_seconds([pid])
            if used:
                self._last[pid] = max(self._last.get(pid, 0.0), used)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def stop(self) -> float:
        """Stops sampling; returns the CPU seconds used since the meter started."""
        self._sample()
        self._stop.set()
        self._thread.join()
        return sum(used - self._baseline.get(pid, 0.0) for pid, used in self._last.items())


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Gunicorn:
    """``with Gunicorn(env, workers=3) as server:`` — a gunicorn on 127.0.0.1, stopped on exit.

    While it runs, a thread samples the summed resident memory of the master
    and its workers; :meth:`memory` reports that peak and the per-process
    high-water marks (VmHWM) read before shutdown.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int,
        threads: int = 1,
        port: int | None = None,
        app: str = "ops_site.wsgi",
        timeout: int = 120,
    ):
        self.env, self.workers, self.threads = env, workers, threads
        self.port = port or free_port()
        self.app, self.timeout = app, timeout
        self.proc: subprocess.Popen | None = None
        self._peak_sum_kb = 0
        self._hwm_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the server writes to it until stop()
            prefix="bench-gunicorn-", suffix=".log", delete=False
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Gunicorn":
        cmd = [
            str(VENV_BIN / "gunicorn"),
            self.app,
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "--timeout",
            str(self.timeout),
            "--graceful-timeout",
            "10",
        ]
        if self.threads > 1:
            cmd += ["--threads", str(self.threads)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)] if self.proc else []

    def _wait_healthy(self, deadline_s: float = 60) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); log: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as r:
                    if r.status == 200 and len(children(self.proc.pid)) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /healthz within {deadline_s}s; log: {self.log_tail()}")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._read_memory()
            self._stop.wait(0.25)

    def _read_memory(self) -> None:
        pids = self.pids()
        total = sum(_status_kb(p, "VmRSS") for p in pids)
        self._peak_sum_kb = max(self._peak_sum_kb, total)
        for p in pids:
            self._hwm_kb[p] = max(self._hwm_kb.get(p, 0), _status_kb(p, "VmHWM"))

    def memory(self) -> dict[str, float]:
        """Peak summed RSS (sampled), and the sum and max of the processes' VmHWM, in MB."""
        self._read_memory()
        hwm = list(self._hwm_kb.values()) or [0]
        return {
            "peak_rss_sum_mb": round(self._peak_sum_kb / 1024, 1),
            "vmhwm_sum_mb": round(sum(hwm) / 1024, 1),
            "vmhwm_max_mb": round(max(hwm) / 1024, 1),
        }

    def stop(self) -> None:
        self._stop.set()
        if self.proc is None or self.proc.poll() is not None:
            self._log.close()
            return
        self._read_memory()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return Path(self._log.name).read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def copy_frame(cur, table: str, columns: str, frame) -> None:
    """COPYs a pandas frame into ``table`` (psycopg2 cursor)."""
    buf = io.StringIO()
    frame.to_csv(buf, header=False, index=False)
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH CSV", buf)


def load_customers_orders(*, customers: int, orders: int, seed: int) -> dict:
    """Synthetic, heavy-tailed population: gamma-distributed purchase rates while active,
    lognormal amounts, 4% refunded / 2% cancelled, customers stop buying at a personal point.
    Runs in a process where Django is set up (bench/segments.py, bench/admin.py), inside a transaction."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    started = time.monotonic()
    now = pd.Timestamp.now(tz="UTC").floor("s")
    horizon = 3 * 365 * 86400
    from django.db import connection

    from core.bulkload import bulk_load
    from users.models import Customer, Order

    cur = connection.cursor().cursor  # the psycopg2 cursor, for COPY
    cur.execute(
        """
        INSERT INTO users_customer (external_id, name, nickname, phone, email, gender, city, timezone, channel,
            consent_push, consent_sms, consent_email, consent_wechat, consent_in_app, do_not_contact,
            paid_orders, paid_amount, created_at, updated_at, signup_at)
        SELECT 'b' || g, '', 'nick' || g, '', '', 'unknown', '', 'Asia/Shanghai', 'organic',
            true, true, true, true, true, false, 0, 0,
            %s::timestamptz - make_interval(secs => (random() * %s)::int),
            %s::timestamptz, NULL
        FROM generate_series(1, %s) g
    """,
        [now.isoformat(), horizon, now.isoformat(), customers],
    )
    cur.execute("UPDATE users_customer SET signup_at = created_at")
    cur.execute("SELECT MIN(id), MAX(id) FROM users_customer")
    lo, hi = cur.fetchone()
    cur.execute(
        "SELECT id, EXTRACT(EPOCH FROM (%s::timestamptz - created_at))::int FROM users_customer ORDER BY id",
        [now.isoformat()],
    )
    ids_age = np.array(cur.fetchall(), dtype=np.int64)
    ids, age = ids_age[:, 0], ids_age[:, 1]
    # A BG/NBD-like process: each customer buys at a gamma-distributed daily rate while
    # active; activity ends at a personal stop point (silent and churned customers).
    stop = rng.beta(2, 0.7, size=customers)
    active_days = np.maximum(age / 86400 * stop, 0.5)
    rate = rng.gamma(0.6, 1.0, size=customers)
    expected = rate * active_days
    counts = rng.poisson(expected * orders / expected.sum()).astype(np.int64)
    diff = orders - int(counts.sum())
    if diff > 0:
        counts[rng.choice(customers, size=diff, replace=True, p=expected / expected.sum())] += 1
    elif diff < 0:
        buyers = np.repeat(np.arange(customers), counts)
        np.subtract.at(counts, rng.choice(buyers, size=-diff, replace=False), 1)
    cust = np.repeat(ids, counts)
    when_frac = rng.random(cust.size) * np.repeat(stop, counts)
    ago = (np.repeat(age, counts) * (1 - when_frac)).astype(np.int64)
    amount = np.round(np.exp(rng.normal(4.6, 1.0, size=cust.size)), 2)
    status = rng.choice(np.array([0, 1, 2], dtype=np.int8), size=cust.size, p=[0.94, 0.04, 0.02])
    cur.execute("DROP TABLE IF EXISTS bench_order_stage")
    cur.execute(
        "CREATE UNLOGGED TABLE bench_order_stage (customer_id bigint, amount numeric(12,2), status smallint, ago int)"
    )
    step = 2_000_000
    for start in range(0, cust.size, step):
        part = slice(start, start + step)
        copy_frame(
            cur,
            "bench_order_stage",
            "customer_id, amount, status, ago",
            pd.DataFrame({"c": cust[part], "a": amount[part], "s": status[part], "g": ago[part]}),
        )
    with bulk_load(Order, analyze=(Customer,)):
        cur.execute(
            """
            INSERT INTO users_order
                (external_id, customer_id, amount, currency, status, occurred_at, created_at, updated_at)
            SELECT 'o' || row_number() OVER (), customer_id, amount, 'CNY',
                   (ARRAY['paid', 'refunded', 'cancelled'])[status + 1],
                   %s::timestamptz - make_interval(secs => ago), %s::timestamptz, %s::timestamptz
            FROM bench_order_stage
        """,
            [now.isoformat()] * 3,
        )
    cur.execute("DROP TABLE bench_order_stage")
    return {"load_s": round(time.monotonic() - started, 1), "id_range": [lo, hi]}


EVENT_TYPES = ["page_view", "add_to_cart", "login", "checkin", "share", "invite_accepted"]


def load_events(*, events: int, seed: int, days: int = 365) -> dict:
    """``events`` synthetic events over the stored customers (page views most, invites fewest),
    COPYed as numbers into an unlogged staging table and built by one INSERT … SELECT, with
    the indexes built afterwards (``core.bulkload.bulk_load``). Needs Django set up."""
    import numpy as np
    import pandas as pd
    from django.db import connection

    from core.bulkload import bulk_load
    from users.models import Event

    rng = np.random.default_rng(seed)
    started = time.monotonic()
    now = pd.Timestamp.now(tz="UTC").floor("s")
    cur = connection.cursor().cursor
    cur.execute("SELECT id FROM users_customer ORDER BY id")
    ids = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
    cur.execute("DROP TABLE IF EXISTS bench_event_stage")
    cur.execute("CREATE UNLOGGED TABLE bench_event_stage (customer_id bigint, type smallint, ago int)")
    weights = np.array([0.55, 0.15, 0.15, 0.1, 0.04, 0.01])
    step = 2_000_000
    for start in range(0, events, step):
        n = min(step, events - start)
        copy_frame(
            cur,
            "bench_event_stage",
            "customer_id, type, ago",
            pd.DataFrame(
                {
                    "c": ids[rng.integers(0, ids.size, size=n)],
                    "t": rng.choice(len(EVENT_TYPES), size=n, p=weights),
                    "g": rng.integers(0, days * 86400, size=n),
                }
            ),
        )
    types = "ARRAY[" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + "]"
    with bulk_load(Event):
        cur.execute(
            f"""
            INSERT INTO users_event (customer_id, type, occurred_at, properties, external_id, dedupe_key, created_at)
            SELECT customer_id, ({types})[type + 1], %s::timestamptz - make_interval(secs => ago), '{{}}'::jsonb,
                   'e' || n, 'x:e' || n, %s::timestamptz
            FROM (SELECT *, row_number() OVER () AS n FROM bench_event_stage) s
        """,
            [now.isoformat()] * 2,
        )
    cur.execute("DROP TABLE bench_event_stage")
    return {"events_load_s": round(time.monotonic() - started, 1)}


def emit(result: dict) -> None:
    """The benchmark's one line of output."""
    print(json.dumps(result, ensure_ascii=False), flush=True)


class Pusher:
    """Sends bodies from several threads; each thread keeps one connection (reopened when the server closes it)."""

    def __init__(self, port: int, key: str, path: str):
        self.port, self.path = port, path
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def run(self, bodies: list[bytes], clients: int, check) -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        next_index = iter(range(len(bodies)))

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            mine = []
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None or len(failures) > 10:
                    break
                started = time.perf_counter()
                try:
                    conn.request("POST", self.path, body=bodies[i], headers=self.headers)
                    response = conn.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    with lock:
                        failures.append(f"batch {i}: {exc!r}")
                    continue
                mine.append(time.perf_counter() - started)
                problem = check(response.status, payload)
                if problem:
                    with lock:
                        failures.append(f"batch {i}: {problem}")
            conn.close()
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return latencies, failures, time.perf_counter() - started
