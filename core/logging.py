"""Structured logs: one JSON object per line, with phone numbers and emails masked."""

import json
import logging
from datetime import UTC, datetime

from gunicorn.glogging import Logger as GunicornBaseLogger

from .pii import mask_text

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class MaskPIIFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return mask_text(json.dumps(payload, ensure_ascii=False, default=str))


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger with phone numbers and emails masked in its access and error
    logs: the access line carries the request's URL (``GET /customers/?q=…``) and its
    referer, the error log quotes bad request lines. Set by ``gunicorn.conf.py``."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, MaskPIIFilter) for f in log.filters):
                log.addFilter(MaskPIIFilter())
