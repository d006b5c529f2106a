"""The channels' backends against real parts: a local HTTP gateway, a local SMTP
server, Django's locmem mail, concurrent processes on one log file, the file and
Redis token buckets."""

import hashlib
import hmac
import json
import multiprocessing
import os
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.backends import (
    Backend,
    EmailBackend,
    Handover,
    LogBackend,
    Outcome,
    WebhookBackend,
    backend_for,
    check_configuration,
    rate,
    read_log,
    sign,
    verify,
)
from campaigns.backends.webhook import retry_after

SECRET = "gateway-secret-ü"
PHONE = "+8613912345678"
EMAIL = "zhang.wei@example.com"
BODY = "双十一：会员专享 8 折，仅限今天"


def _handover(**overrides) -> Handover:
    values = {
        "delivery_id": 42,
        "idempotency_key": "delivery-42-attempt-key",
        "customer": "C-0042",
        "channel": "sms",
        "address": PHONE,
        "subject": "双十一",
        "body": BODY,
        "category": "marketing",
        "unsubscribe_url": "https://ops.example.test/u/42/signed-token",
    }
    return Handover(**(values | overrides))


def _no_pii(outcome: Outcome, handover: Handover) -> None:
    assert handover.address not in outcome.error
    assert handover.body not in outcome.error
    assert handover.address not in repr(outcome)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the webhook backend, against a real local gateway ----------------------------


class _Gateway:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/send"
        self.requests: list[dict] = []
        self.script: list[dict] = []

    def answers(self, *answers: dict) -> None:
        self.script.extend(answers)


def answer(status: int, body: bytes = b"", headers: dict | None = None, delay: float = 0) -> dict:
    return {"status": status, "body": body, "headers": headers or {}, "delay": delay}


class _GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the backend's pooled connections are used

    def do_POST(self):
        gateway = self.server.gateway
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # The gateway's own check, not the backend's verify().
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        gateway.requests.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "signature_ok": hmac.compare_digest(expected, self.headers.get("X-Ops-Signature", "")),
            }
        )
        reply = gateway.script.pop(0) if gateway.script else answer(200, b"{}")
        if reply["delay"]:
            time.sleep(reply["delay"])
        try:
            self.send_response(reply["status"])
            for name, value in reply["headers"].items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply["body"])))
            self.end_headers()
            self.wfile.write(reply["body"])
        except OSError:  # the client gave up (the time-out test)
            pass

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def gateway():
    server = _QuietServer(("127.0.0.1", 0), _GatewayHandler)
    server.gateway = _Gateway(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.gateway
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _webhook(url: str, **kwargs) -> WebhookBackend:
    return WebhookBackend(url, **({"secret": SECRET, "connect_timeout": 1, "read_timeout": 3} | kwargs))


def test_webhook_2xx_is_sent_signed_with_the_key_and_every_field(gateway):
    gateway.answers(answer(200, b'{"id": "gw-1"}', {"Content-Type": "application/json"}))
    handover = _handover()

    outcome = _webhook(gateway.url).send(handover)

    assert outcome == Outcome("sent", provider_id="gw-1")
    (seen,) = gateway.requests
    assert seen["path"] == "/send"
    assert seen["signature_ok"]
    assert seen["headers"]["Idempotency-Key"] == handover.idempotency_key
    assert seen["headers"]["X-Ops-Delivery"] == "42"
    assert seen["headers"]["Content-Type"] == "application/json"
    fields = {
        "delivery": 42,
        "idempotency_key": handover.idempotency_key,
        "customer": "C-0042",
        "channel": "sms",
        "address": PHONE,
        "subject": "双十一",
        "body": BODY,
        "category": "marketing",
        "unsubscribe_url": handover.unsubscribe_url,
    }
    assert json.loads(seen["body"]) == fields
    # Compact, sorted keys, UTF-8 as such (not \u escapes): the bytes the signature covers.
    assert seen["body"] == json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert verify(seen["body"], SECRET, seen["headers"]["X-Ops-Signature"])
    assert seen["headers"]["X-Ops-Signature"] == sign(seen["body"], SECRET)


def test_a_retry_of_the_same_delivery_carries_the_same_idempotency_key(gateway):
    gateway.answers(answer(503), answer(200, b'{"message_id": "m-9"}'))
    backend, handover = _webhook(gateway.url), _handover()

    assert backend.send(handover).status == "retry"
    assert backend.send(handover) == Outcome("sent", provider_id="m-9")
    first, second = gateway.requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"] == handover.idempotency_key
    assert first["body"] == second["body"]


@pytest.mark.parametrize(
    ("answer_body", "provider_id"),
    [
        (b'{"message_id": "m-1"}', "m-1"),
        (b'{"id": 12345}', "12345"),
        (b"not json at all", ""),
        (b'["gw-1"]', ""),
        (b"", ""),
    ],
)
def test_the_provider_id_comes_from_a_json_answer_or_is_left_empty(gateway, answer_body, provider_id):
    gateway.answers(answer(202, answer_body))
    assert _webhook(gateway.url).send(_handover()) == Outcome("sent", provider_id=provider_id)


def test_webhook_5xx_is_a_retry(gateway):
    gateway.answers(answer(500, b'{"error": "down", "to": "' + PHONE.encode() + b'"}'))
    handover = _handover()

    outcome = _webhook(gateway.url).send(handover)

    assert outcome == Outcome("retry", "HTTP 500")
    _no_pii(outcome, handover)


def test_webhook_429_is_a_retry_after_the_gateways_delay(gateway):
    gateway.answers(answer(429, headers={"Retry-After": "7"}))

    outcome = _webhook(gateway.url).send(_handover())

    assert outcome.status == "retry"
    assert outcome.retry_after == 7
    assert outcome.error == "HTTP 429"


def test_webhook_other_4xx_is_failed(gateway):
    gateway.answers(answer(400, b'{"error": "bad number ' + PHONE.encode() + b'"}'))
    handover = _handover()

    outcome = _webhook(gateway.url).send(handover)

    assert outcome == Outcome("failed", "HTTP 400")
    _no_pii(outcome, handover)


def test_webhook_does_not_follow_a_redirect(gateway):
    gateway.answers(answer(302, headers={"Location": gateway.url + "/elsewhere"}))

    outcome = _webhook(gateway.url).send(_handover())

    assert outcome == Outcome("failed", "HTTP 302")
    assert len(gateway.requests) == 1


def test_webhook_read_timeout_is_a_retry(gateway):
    gateway.answers(answer(200, b'{"id": "late"}', delay=1.0))
    handover = _handover()

    started = time.monotonic()
    outcome = _webhook(gateway.url, read_timeout=0.3).send(handover)

    assert outcome == Outcome("retry", "timeout")
    assert time.monotonic() - started < 0.9
    _no_pii(outcome, handover)


def test_webhook_closed_port_is_a_connection_error_retry():
    handover = _handover()

    outcome = _webhook(f"http://127.0.0.1:{_closed_port()}/send").send(handover)

    assert outcome == Outcome("retry", "connection error")
    _no_pii(outcome, handover)


def test_webhook_without_a_secret_sends_no_signature(gateway):
    assert _webhook(gateway.url, secret="").send(_handover()).status == "sent"
    assert "X-Ops-Signature" not in gateway.requests[0]["headers"]


def test_verify_refuses_a_tampered_body_a_wrong_secret_and_no_signature():
    body = b'{"delivery":1,"body":"hello"}'
    signature = sign(body, SECRET)

    assert signature.startswith("sha256=")
    assert verify(body, SECRET, signature)
    assert not verify(body.replace(b"hello", b"hellO"), SECRET, signature)
    assert not verify(body + b" ", SECRET, signature)
    assert not verify(body, "another-secret", signature)
    assert not verify(body, SECRET, None)
    assert not verify(body, SECRET, "")
    assert not verify(body, SECRET, "sha256=ünicode")
    assert not verify(body, "", signature)


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after("7") == 7
    assert retry_after(" 1.5 ") == 1.5
    assert retry_after("-3") == 0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("nan") is None
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 < retry_after(in_a_minute) <= 60


def test_a_lone_surrogate_in_the_body_still_encodes(gateway):
    outcome = _webhook(gateway.url).send(_handover(body="broken \udc00 text"))

    assert outcome.status == "sent"
    assert json.loads(gateway.requests[0]["body"])["body"] == "broken \ufffd text"
    assert gateway.requests[0]["signature_ok"]


# --- the email backend -------------------------------------------------------------


def _email_handover(**overrides) -> Handover:
    return _handover(**({"channel": "email", "address": EMAIL, "subject": "双十一 专享"} | overrides))


def test_marketing_email_carries_the_one_click_unsubscribe_headers(mailoutbox):
    handover = _email_handover()

    assert EmailBackend().send(handover) == Outcome("sent")

    (mail,) = mailoutbox
    assert mail.to == [EMAIL]
    assert mail.body == BODY
    message = mail.message()
    assert message["List-Unsubscribe"] == f"<{handover.unsubscribe_url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Ops-Delivery"] == "42"
    assert message["X-Ops-Idempotency-Key"] == handover.idempotency_key


@pytest.mark.parametrize(
    "overrides",
    [{"category": "transactional", "unsubscribe_url": ""}, {"category": "marketing", "unsubscribe_url": ""}],
)
def test_email_without_an_unsubscribe_link_has_no_list_unsubscribe(mailoutbox, overrides):
    assert EmailBackend().send(_email_handover(**overrides)).status == "sent"

    message = mailoutbox[0].message()
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert message["X-Ops-Delivery"] == "42"


@pytest.mark.parametrize("address", ["", "   ", "not-an-email", PHONE])
def test_email_without_a_usable_address_fails(mailoutbox, address):
    outcome = EmailBackend().send(_email_handover(address=address))

    assert outcome == Outcome("failed", "no address")
    assert mailoutbox == []


def test_a_line_break_in_a_subject_does_not_fail_the_email(mailoutbox):
    assert EmailBackend().send(_email_handover(subject="line one\nline two")).status == "sent"
    assert mailoutbox[0].subject == "line one line two"


class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self):
        server = self.server

        def reply(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")
            self.wfile.flush()

        reply(server.greeting)
        if not server.greeting.startswith("220"):
            return
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                reply("250 mini-smtp")
            elif command.startswith(("MAIL", "RSET", "NOOP")):
                reply("250 ok")
            elif command.startswith("RCPT"):
                reply(server.rcpt_reply)
            elif command == "DATA":
                reply("354 go on")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk)
                server.messages.append(b"".join(data))
                reply(server.data_reply)
            elif command.startswith("QUIT"):
                reply("221 bye")
                return
            else:
                reply("502 not here")


@pytest.fixture
def smtp_server(settings):
    """A real SMTP conversation on 127.0.0.1, with scripted replies, behind Django's SMTP backend."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.greeting, server.rcpt_reply, server.data_reply, server.messages = "220 ready", "250 ok", "250 queued", []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.server_address[1]
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_email_over_smtp_is_sent_with_its_headers(smtp_server):
    assert EmailBackend().send(_email_handover()) == Outcome("sent")

    (data,) = smtp_server.messages
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in data
    assert b"X-Ops-Idempotency-Key: delivery-42-attempt-key" in data


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ({"rcpt_reply": f"451 4.7.1 greylisted <{EMAIL}>, try later"}, Outcome("retry", "SMTP 451")),
        ({"rcpt_reply": f"550 5.1.1 <{EMAIL}>: no such user"}, Outcome("failed", "SMTP 550")),
        ({"data_reply": "452 4.3.1 insufficient storage"}, Outcome("retry", "SMTP 452")),
        ({"data_reply": "554 5.7.1 rejected as spam"}, Outcome("failed", "SMTP 554")),
        ({"greeting": "421 4.3.2 too busy"}, Outcome("retry", "connection error")),
    ],
)
def test_smtp_temporary_replies_retry_and_permanent_ones_fail(smtp_server, replies, expected):
    for name, value in replies.items():
        setattr(smtp_server, name, value)
    handover = _email_handover()

    outcome = EmailBackend().send(handover)

    assert outcome == expected
    _no_pii(outcome, handover)


def test_smtp_server_down_is_a_retry(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False

    assert EmailBackend().send(_email_handover()) == Outcome("retry", "connection error")


# --- the log backend -----------------------------------------------------------------


def test_log_backend_records_each_hand_over_without_pii(settings, tmp_path, caplog):
    settings.OPS_CHANNEL_LOG_FILE = tmp_path / "deep" / "er" / "channel-log.jsonl"
    backend = LogBackend()
    caplog.set_level("DEBUG", logger="campaigns.channel")

    assert backend.send(_handover()) == Outcome("sent")
    assert backend.send(_handover(delivery_id=43, idempotency_key="k-43", customer="C-0043")) == Outcome("sent")

    records = read_log()
    assert [(r["delivery"], r["key"], r["channel"], r["customer"]) for r in records] == [
        (42, "delivery-42-attempt-key", "sms", "C-0042"),
        (43, "k-43", "sms", "C-0043"),
    ]
    assert all(set(r) == {"delivery", "key", "channel", "customer", "at"} for r in records)
    datetime.fromisoformat(records[0]["at"])
    raw = settings.OPS_CHANNEL_LOG_FILE.read_text(encoding="utf-8")
    assert PHONE not in raw
    assert BODY not in raw
    logged = [r for r in caplog.records if r.name == "campaigns.channel"]
    assert [r.delivery for r in logged] == [42, 43]
    assert {r.channel for r in logged} == {"sms"}
    for record in logged:
        assert PHONE not in record.getMessage()
        assert PHONE not in str(vars(record))
        assert BODY not in str(vars(record))


def test_read_log_of_no_file_is_empty(tmp_path):
    assert read_log(tmp_path / "none.jsonl") == []


def _append_many(worker: int, count: int) -> None:
    import logging

    logging.getLogger("campaigns.channel").setLevel(logging.WARNING)
    backend = LogBackend()
    for i in range(count):
        # A long customer id makes a torn or interleaved line the likelier, were writes not atomic.
        backend.send(_handover(delivery_id=worker * 10_000 + i, customer=f"C-{worker}-" + "x" * 300))


def test_concurrent_processes_append_whole_lines(settings, tmp_path):
    settings.OPS_CHANNEL_LOG_FILE = tmp_path / "channel-log.jsonl"
    context = multiprocessing.get_context("fork")  # the children inherit the test's settings
    workers = [context.Process(target=_append_many, args=(w, 200)) for w in range(4)]

    for process in workers:
        process.start()
    for process in workers:
        process.join(60)

    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    lines = settings.OPS_CHANNEL_LOG_FILE.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]
    assert len(records) == 800
    assert sorted(r["delivery"] for r in records) == sorted(w * 10_000 + i for w in range(4) for i in range(200))


# --- backend_for and check_configuration -------------------------------------------


@pytest.fixture
def channels(settings):
    settings.OPS_CHANNELS = ["push", "sms", "email", "wechat", "in_app"]
    settings.OPS_CHANNEL_BACKENDS = {
        "push": "log",
        "sms": "https://gw.example.test/sms",
        "email": "email",
        "wechat": "log",
        "in_app": "log",
    }
    settings.OPS_CHANNEL_SECRETS = {"sms": "sms-secret"}
    settings.OPS_CHANNEL_RATES = {}
    settings.OPS_CHANNEL_CONNECT_TIMEOUT, settings.OPS_CHANNEL_READ_TIMEOUT = 2.5, 7.5
    return settings


def test_backend_for_picks_each_channels_backend(channels):
    assert isinstance(backend_for("push"), LogBackend)
    assert isinstance(backend_for("email"), EmailBackend)
    sms = backend_for("sms")
    assert isinstance(sms, WebhookBackend)
    assert (sms.url, sms.secret, sms.connect_timeout, sms.read_timeout) == (
        "https://gw.example.test/sms",
        "sms-secret",
        2.5,
        7.5,
    )
    assert "sms-secret" not in repr(sms)
    assert all(isinstance(backend_for(c), Backend) for c in channels.OPS_CHANNELS)
    assert check_configuration() == []


def test_backend_for_refuses_an_unknown_backend_and_an_unknown_channel(channels):
    channels.OPS_CHANNEL_BACKENDS = {**channels.OPS_CHANNEL_BACKENDS, "wechat": "carrier-pigeon"}

    with pytest.raises(ImproperlyConfigured, match="carrier-pigeon"):
        backend_for("wechat")
    with pytest.raises(ValueError, match="fax"):
        backend_for("fax")


def test_a_misspelt_url_with_credentials_is_not_echoed(channels):
    channels.OPS_CHANNEL_BACKENDS = {**channels.OPS_CHANNEL_BACKENDS, "sms": "htps://user:hunter2@gw.example.test"}

    with pytest.raises(ImproperlyConfigured) as raised:
        backend_for("sms")

    assert "hunter2" not in str(raised.value)
    assert all("hunter2" not in str(problem) for problem in check_configuration())


def test_check_configuration_reports_unknown_values_missing_secrets_and_bad_rates(channels):
    channels.OPS_CHANNEL_BACKENDS = {**channels.OPS_CHANNEL_BACKENDS, "wechat": "carrier-pigeon", "fax": "log"}
    channels.OPS_CHANNEL_SECRETS = {}
    channels.OPS_CHANNEL_RATES = {"push": 0, "telex": 3}

    problems = [str(p) for p in check_configuration()]

    assert len(problems) == 5, problems
    assert any("OPS_CHANNEL_WECHAT" in p and "carrier-pigeon" in p for p in problems)
    assert any("OPS_CHANNEL_SMS_SECRET" in p for p in problems)
    assert any("fax" in p for p in problems)
    assert any("telex" in p for p in problems)
    assert any("OPS_CHANNEL_PUSH_RATE" in p for p in problems)


# --- the rate -----------------------------------------------------------------------


def _five_then_wait(channel: str) -> None:
    assert [rate.take(channel) for _ in range(5)] == [0, 0, 0, 0, 0]
    wait = rate.take(channel)
    assert 0.15 < wait <= 0.2
    assert 0.15 < rate.take(channel) <= 0.2  # asking again took nothing
    time.sleep(wait + 0.02)
    assert rate.take(channel) == 0
    assert rate.take(channel) > 0.15


@pytest.fixture
def file_bucket(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.OPS_CHANNEL_RATES = {"sms": 5.0}
    return settings


def test_file_bucket_grants_the_rate_then_asks_to_wait(file_bucket, tmp_path):
    _five_then_wait("sms")
    assert (tmp_path / "rate" / "sms.bucket").exists()


def test_a_channel_without_a_rate_is_never_held_back(file_bucket):
    assert all(rate.take("push") == 0 for _ in range(500))


def test_taking_more_than_the_bucket_holds_is_an_error(file_bucket):
    with pytest.raises(ValueError):
        rate.take("sms", 6)
    with pytest.raises(ValueError):
        rate.take("sms", 0)
    assert rate.take("sms", 5) == 0
    assert rate.take("sms", 2) == pytest.approx(0.4, abs=0.01)


def _take_for(channel: str, seconds: float, results) -> None:
    granted, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        granted += rate.take(channel) == 0
    results.put(granted)


def _across_processes(channel: str) -> tuple[int, float, list]:
    """4 processes hammer one bucket for 0.5 s; answers (tokens granted in all, seconds
    taken, the processes' exit codes)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_take_for, args=(channel, 0.5, results)) for _ in range(4)]
    started = time.monotonic()
    for process in workers:
        process.start()
    granted = sum(results.get(timeout=30) for _ in workers)
    elapsed = time.monotonic() - started
    for process in workers:
        process.join(10)
    return granted, elapsed, [p.exitcode for p in workers]


def test_file_bucket_holds_across_processes(file_bucket):
    file_bucket.OPS_CHANNEL_RATES = {"sms": 40.0}
    granted, elapsed, exits = _across_processes("sms")
    assert exits == [0, 0, 0, 0]
    assert 40 <= granted <= 40 + 40 * elapsed + 1  # together: the burst plus the refill, no more


needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis to talk to)")


@pytest.fixture
def redis_channel(settings):
    """A channel of its own (so its key, opsdesk:rate:<channel>, is this test's alone) on real Redis."""
    import redis

    settings.REDIS_URL = os.environ["REDIS_URL"]
    channel = f"test-{uuid.uuid4().hex[:12]}"
    settings.OPS_CHANNEL_RATES = {channel: 5.0}
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        yield channel, client
    finally:
        client.delete(rate.key_for(channel))
        client.close()


@needs_redis
def test_redis_bucket_grants_the_rate_then_asks_to_wait(redis_channel):
    channel, client = redis_channel

    _five_then_wait(channel)

    key = rate.key_for(channel)
    assert key == f"opsdesk:rate:{channel}"
    assert 0 < client.pttl(key) <= 2100  # gone once the bucket would be full again


@needs_redis
def test_redis_bucket_holds_across_processes(redis_channel, settings):
    channel, _client = redis_channel
    settings.OPS_CHANNEL_RATES = {channel: 40.0}
    granted, elapsed, exits = _across_processes(channel)
    assert exits == [0, 0, 0, 0]
    assert 40 <= granted <= 40 + 40 * elapsed + 1  # together: the burst plus the refill, no more


def test_handover_and_outcome_are_frozen():
    handover = _handover()
    with pytest.raises(AttributeError):
        handover.address = "x"  # type: ignore[misc]
    assert replace(handover, delivery_id=7).delivery_id == 7
    assert Outcome("sent").retry_after is None
