import io
import json
import logging

import pytest

from core.logging import JsonFormatter, MaskPIIFilter


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
