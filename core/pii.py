"""Masking of phone numbers and emails for viewers without the "view PII" permission."""

import re

_PHONE_RE = re.compile(r"(?<![\w])(\+?\d[\d\- ]{6,}\d)(?![\w])")
_EMAIL_RE = re.compile(r"([\w.+-])[\w.+-]*@([\w-]+\.[\w.-]+)")


def mask_phone(phone: str | None) -> str:
    """``13812341633`` → ``138****1633``; short values keep only their last two digits."""
    if not phone:
        return phone or ""
    if len(phone) <= 7:
        return "*" * (len(phone) - 2) + phone[-2:]
    return phone[:3] + "*" * 4 + phone[-4:]


def mask_email(email: str | None) -> str:
    """``zhang.wei@example.com`` → ``z***@example.com``."""
    if not email:
        return email or ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_text(text: str) -> str:
    """Masks every phone number and email inside free text (used for log lines)."""
    text = _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE_RE.sub(lambda m: mask_phone(re.sub(r"[\s-]", "", m.group(1))), text)
