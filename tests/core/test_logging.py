import io
import json
import logging
import re
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import quote, quote_plus, unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.logging import JsonFormatter, MaskPIIFilter
from core.pii import mask_text


@pytest.fixture
def log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskPIIFilter())
    logger = logging.getLogger("tests.core.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _lines(stream) -> list[str]:
    return stream.getvalue().splitlines()


def test_one_json_line_with_phone_and_email_masked(log):
    logger, stream = log
    logger.info("sent sms to %s and mail to %s", "13812341633", "zhang.wei@example.com", extra={"job": "dispatch"})
    [line] = _lines(stream)
    record = json.loads(line)
    assert record["level"] == "info"
    assert record["logger"] == "tests.core.logging"
    assert record["job"] == "dispatch"
    assert record["msg"] == "sent sms to 138****1633 and mail to z***@example.com"
    assert "13812341633" not in line and "zhang.wei@example.com" not in line
    assert record["ts"].endswith("+00:00")


def test_pii_in_extra_fields_is_masked_too(log):
    logger, stream = log
    logger.warning("delivery failed", extra={"to": "+86 138-1234-1633", "email": "li.na@example.com"})
    [line] = _lines(stream)
    record = json.loads(line)
    assert record["to"] == "+86****1633"
    assert record["email"] == "l***@example.com"


def test_exceptions_stay_on_one_line(log):
    logger, stream = log
    try:
        raise ValueError("bad phone 13812341633")
    except ValueError:
        logger.exception("failed")
    [line] = _lines(stream)
    record = json.loads(line)
    assert "ValueError" in record["exc"] and "13812341633" not in line


def test_non_json_values_are_rendered_as_text(log):
    logger, stream = log
    logger.info("counts", extra={"counts": {"sent": 3}, "obj": object()})
    record = json.loads(_lines(stream)[0])
    assert record["counts"] == {"sent": 3}
    assert record["obj"].startswith("<object object")


# --- Issue 9, class 11: PII in logs, decoded or not -------------------------------------

PHONES = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
EMAILS = st.builds(
    "{}.{}@{}.org".format,
    st.from_regex(r"[a-z]{3,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{3,8}", fullmatch=True),
    st.from_regex(r"[a-z]{3,8}", fullmatch=True),
)
ENCODINGS = [lambda v: v, quote, lambda v: quote(v, safe=""), quote_plus]


@settings(max_examples=150, deadline=None)
@given(phone=PHONES, email=EMAILS, encode=st.sampled_from(ENCODINGS), plus=st.booleans(), spaced=st.booleans())
def test_phones_and_emails_in_urls_are_masked_however_encoded(phone, email, encode, plus, spaced):
    shown = ("+86 " if plus else "") + (f"{phone[:3]} {phone[3:7]} {phone[7:]}" if spaced else phone)
    line = f'GET /customers/?q={encode(shown)}&mail={encode(email)}&page=2 HTTP/1.1" 200 "-" ref=/x?to={encode(email)}'
    masked = mask_text(line)
    compact = re.sub(r"%20|%2B|[ +]", "", masked)
    assert phone not in compact and phone[3:] not in compact  # at most the last four digits stay
    assert f"****{phone[7:]}" in masked
    local = email.partition("@")[0]
    assert local not in masked and local not in unquote_plus(masked)
    assert "page=2" in masked  # the rest of the line is left alone


def test_query_string_pii_is_masked_in_django_request_logs(log):
    logger, stream = log
    logger.warning("Not Found: %s", "/customers/?q=13912345678&e=secret.person%40example.org")
    line = _lines(stream)[0]
    assert "13912345678" not in line and "secret.person" not in line
    assert json.loads(line)["msg"] == "Not Found: /customers/?q=139****5678&e=s***@example.org"


def test_gunicorn_access_log_lines_are_masked():
    from gunicorn.config import Config

    from core.logging import GunicornLogger

    cfg = Config()
    cfg.set("accesslog", "-")
    glog = GunicornLogger(cfg)
    stream = io.StringIO()
    for handler in glog.access_log.handlers:
        handler.setStream(stream)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/customers/?q=13912345678&e=secret.person%40example.org",
        "PATH_INFO": "/customers/",
        "QUERY_STRING": "q=13912345678&e=secret.person%40example.org",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": "http://ops/customers/?q=%2B8613912345678",
        "HTTP_USER_AGENT": "test",
    }
    request = SimpleNamespace(headers=[], method="GET", path="/customers/", query=environ["QUERY_STRING"])
    response = SimpleNamespace(status="200 OK", sent=10, headers=[], response_length=10)
    glog.access(response, request, environ, timedelta(milliseconds=5))
    line = stream.getvalue()
    assert "GET /customers/?q=139****5678&e=s***@example.org HTTP/1.1" in line
    assert "13912345678" not in line and "secret.person" not in line and "8613912345678" not in line
    assert '"http://ops/customers/?q=+86****5678"' in line
    assert re.search(r"\[\d\d/\w+/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", line), line  # the timestamp is no phone


@pytest.mark.parametrize(
    "text",
    ["[01/Dec/2026:23:15:23 +0000]", "2026-03-01 10:00:00", "on 2026-03-01", "order 1234567", "took 12.5 s"],
)
def test_timestamps_dates_and_short_numbers_are_left_alone(text):
    assert mask_text(text) == text


def test_gunicorn_error_log_lines_are_masked():
    from gunicorn.config import Config

    from core.logging import GunicornLogger

    glog = GunicornLogger(Config())
    stream = io.StringIO()
    for handler in glog.error_log.handlers:
        handler.setStream(stream)
    glog.warning("Invalid request from ip=1.2.3.4: Invalid HTTP request line: %r", "GET /?q=13912345678")
    assert "13912345678" not in stream.getvalue() and "139****5678" in stream.getvalue()
